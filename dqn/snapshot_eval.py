"""Training-time evaluation (the learning curves of Fig. 2), run beside training on its snapshots.

Training writes `DIR/snapshots/frames_{frames:012d}.pt` every `eval_interval_frames` and, when
it has written its last one, the marker `DIR/snapshots/COMPLETE`. This module scores each
snapshot the way DeepMind's `train_agent.lua` scored the network during training:
`eval_length_frames` (500k frames = 125,000 agent steps) of play at `eval_epsilon` (0.05); the
result is the mean raw score of the episodes *completed* within that budget (NaN if none; the
Lua code reported 0 then). It writes one row per snapshot to `DIR/eval/frames_{frames:012d}.parquet`,
atomically, so the evaluator can be killed and restarted at any time and evaluates only what is
missing.

As DeepMind's code played it (`train_agent.lua`'s evaluation loop):

- One environment plays the whole budget, episodes back to back, each starting with a random
  no-op start (`nextRandomGame`); an episode still running when the budget ends is discarded.
  Splitting the budget over several environments would lose more unfinished episodes, bias the
  mean towards short episodes and, with the 2013 budget, complete none on a long game: the
  number of environments is therefore not a parameter. Parallelism is across snapshots
  (`--workers`), never within one.
- No cap on episode length: the 5-minute cut belongs to the final evaluation of Extended Data
  Table 2; the budget itself bounds the play.
- The best snapshot is the first one with the highest score: a later one replaces it only when
  strictly higher (`total_reward > max(reward_history)`), and an evaluation with no completed
  episode counts as 0 there (`total_reward / max(1, nepisodes)`). The learning curve keeps NaN
  and the episode count for such a point, so the report can mark it.
- Seeds come from (run seed, snapshot frames): re-evaluating a snapshot gives the same score,
  whatever the number of workers.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from dqn.cli import add_device, add_workers, log_to_stderr
from dqn.devices import resolve_device
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.policy import DQNPolicy, Policy
from dqn.run_folder import EVAL_COLUMNS, RunFiles, eval_path, pending_snapshots, read_run_config, snapshot_path
from dqn.runner import EnvSpec, RunResult, Slot, run_slots, slot_seeds

if TYPE_CHECKING:
    import pandas as pd


# --------------------------------------------------------------------------------------------
# Playing a budget of frames


def play_for_frames(
    policy: Policy,
    game: str,
    *,
    seed: int | Sequence[int],
    total_frames: int,
    epsilon: float = 0.05,
    action_repeat_frames: int = 4,
    noop_max_frames: int = 30,
    preprocessing: str = "nature",
    env_factory: Callable[..., Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Play total_frames // action_repeat_frames agent steps in one environment seeded by `seed`,
    episodes back to back; the episode running when the budget ends is not completed."""
    entropy = (seed,) if isinstance(seed, (int, np.integer)) else tuple(seed)
    if any(e < 0 for e in entropy):
        raise UserError(f"seeds must be 0 or more, got {entropy}")
    total_steps = total_frames // action_repeat_frames
    slots = [Slot(0, *slot_seeds(*entropy, 0), max_episodes=None, budget_steps=total_steps)]
    spec = EnvSpec(game, action_repeat_frames, noop_max_frames, preprocessing, None, env_factory)
    # One environment in this process: a worker process would only add a pipe round trip per step.
    return run_slots(policy, spec, slots, epsilon=epsilon, num_workers=1, log=log, label=f"{game}: ")


def evaluate_for_frames(policy: Policy, game: str, *, seed: int | Sequence[int], total_frames: int,
                        epsilon: float = 0.05, **kwargs) -> tuple[float, int]:
    """(mean raw score of the completed episodes or NaN, number of completed episodes) after
    total_frames of play at `epsilon`; the keyword arguments are those of `play_for_frames`."""
    result = play_for_frames(policy, game, seed=seed, total_frames=total_frames, epsilon=epsilon, **kwargs)
    return _mean_score(result), len(result.episodes)


def _mean_score(result: RunResult) -> float:
    return float(np.mean([e.score for e in result.episodes])) if result.episodes else math.nan


# --------------------------------------------------------------------------------------------
# Evaluating the snapshots of a run


@contextlib.contextmanager
def _evaluator_lock(run_dir: Path, log: Callable[[str], None] | None) -> Iterator[None]:
    """One evaluator per run folder: a second one (e.g. started by a resumed training while an
    orphaned one finishes its snapshot) waits here, then finds that snapshot done."""
    import fcntl

    from dqn.fileio import try_flock
    from dqn.run_folder import RunFiles

    lock_path = RunFiles(run_dir).evaluator_lock
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        try:
            locked = try_flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"another evaluator holds {lock_path}; waiting for it to finish")
            locked = try_flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if locked:
                try_flock(f, fcntl.LOCK_UN)


def evaluate_snapshot(run_dir: str | os.PathLike, frames: int, *, device: str = "cpu",
                      log: Callable[[str], None] | None = None,
                      env_factory: Callable[..., Any] | None = None) -> "pd.DataFrame":
    """Score one snapshot and write its row to DIR/eval/; return the row."""
    import pandas as pd

    from dqn.fileio import write_parquet

    game, seed, hp = read_run_config(run_dir)
    policy = DQNPolicy.from_weights(snapshot_path(run_dir, frames), device)
    if policy.game != game:
        raise UserError(f"snapshot {snapshot_path(run_dir, frames)} is for {policy.game!r}, the run for {game!r}")
    result = play_for_frames(
        policy, game, seed=(seed, frames), total_frames=hp.eval_length_frames, epsilon=hp.eval_epsilon,
        action_repeat_frames=hp.action_repeat_frames, noop_max_frames=hp.noop_max_frames,
        preprocessing=hp.preprocessing, env_factory=env_factory,
    )
    row = pd.DataFrame(
        {
            "game": [game],
            "seed": np.array([seed], dtype=np.int64),
            "frames": np.array([frames], dtype=np.int64),
            "eval_score_mean": np.array([_mean_score(result)], dtype=np.float64),
            "eval_episodes": np.array([len(result.episodes)], dtype=np.int64),
            "eval_frames": np.array([result.frames], dtype=np.int64),
            "wall_seconds": np.array([result.wall_seconds], dtype=np.float64),
        },
        columns=list(EVAL_COLUMNS),
    )
    write_parquet(row, eval_path(run_dir, frames))
    if log:
        steps_per_second = result.agent_steps / result.wall_seconds if result.wall_seconds > 0 else math.nan
        log(f"{game}: snapshot at {frames:,} frames: mean score {row.eval_score_mean[0]:.2f} over "
            f"{len(result.episodes)} completed episodes ({result.frames:,} frames in {result.wall_seconds:.0f} s, "
            f"{steps_per_second:,.0f} agent steps/s)")
    return row


def _evaluate_in_worker(run_dir: str, frames: int, device: str) -> int:
    """evaluate_snapshot in a worker process, with its log lines on the worker's stderr."""
    import torch

    torch.set_num_threads(1)
    evaluate_snapshot(run_dir, frames, device=device, log=log_to_stderr)
    return frames


class _InlineEvaluator:
    """One snapshot at a time in this process (one worker)."""

    in_flight: frozenset = frozenset()
    free_workers = 1

    def __init__(self, run_dir: Path, device: str, log, env_factory):
        self.run_dir, self.device, self.log, self.env_factory = run_dir, device, log, env_factory

    def submit(self, frames: int) -> int:
        evaluate_snapshot(self.run_dir, frames, device=self.device, log=self.log, env_factory=self.env_factory)
        return 1

    def collect(self, timeout_seconds: float) -> int:
        return 0

    def close(self) -> None:
        pass


class _PoolEvaluator:
    """Up to `workers` snapshots at once, one process (and one core) each."""

    def __init__(self, run_dir: Path, device: str, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.run_dir, self.device, self.workers = run_dir, device, workers
        # spawn: a forked child would inherit torch's thread pools and locks mid-use.
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self._futures: dict[int, Any] = {}

    @property
    def in_flight(self) -> frozenset:
        return frozenset(self._futures)

    @property
    def free_workers(self) -> int:
        return self.workers - len(self._futures)

    def submit(self, frames: int) -> int:
        self._futures[frames] = self._pool.submit(_evaluate_in_worker, str(self.run_dir), frames, self.device)
        return 0

    def collect(self, timeout_seconds: float) -> int:
        """Wait up to timeout_seconds for an evaluation to end; return how many did (re-raising their errors)."""
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self._futures.values()), timeout=timeout_seconds, return_when=FIRST_COMPLETED)
        for frames in [f for f, future in self._futures.items() if future in done]:
            self._futures.pop(frames).result()
        return len(done)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def evaluate_pending(
    run_dir: str | os.PathLike,
    *,
    follow: bool = False,
    poll_seconds: float = 5.0,
    num_workers: int = 1,
    device: str = "cpu",
    parent_pid: int | None = None,
    log: Callable[[str], None] | None = None,
    env_factory: Callable[..., Any] | None = None,
) -> int:
    """Evaluate every snapshot without a result, oldest first, `num_workers` at once; return how
    many were evaluated.

    follow=True keeps polling every `poll_seconds` until `snapshots/COMPLETE` exists and every
    snapshot has its result. `parent_pid`: stop following (after the snapshots already there)
    when this process is no longer our parent, i.e. the training that spawned us has died.
    `env_factory` (tests) needs num_workers=1: it is not sent to worker processes.
    """
    run_dir = Path(run_dir)
    read_run_config(run_dir)  # refuse a folder that is not a run before waiting on anything
    if num_workers < 1:
        raise UserError(f"the number of evaluation workers must be at least 1, got {num_workers}")
    evaluated = 0
    with _evaluator_lock(run_dir, log):
        evaluator = (_InlineEvaluator(run_dir, device, log, env_factory) if num_workers == 1
                     else _PoolEvaluator(run_dir, device, num_workers))
        try:
            while True:
                # The marker is read before the listing: training writes it after its last
                # snapshot, so when it was there, this listing holds every snapshot there will be.
                complete = RunFiles(run_dir).snapshots_complete.exists()
                orphaned = parent_pid is not None and os.getppid() != parent_pid
                listed = [frames for frames, _ in pending_snapshots(run_dir) if frames not in evaluator.in_flight]
                started = listed[:evaluator.free_workers]
                for frames in started:
                    evaluated += evaluator.submit(frames)
                if evaluator.in_flight:
                    # Back after an evaluation ends, or after a poll to start a new snapshot on a free worker.
                    evaluated += evaluator.collect(timeout_seconds=poll_seconds)
                    continue
                if len(listed) > len(started):
                    continue
                if not follow or complete:
                    return evaluated
                if orphaned:
                    if log:
                        log(f"the training process {parent_pid} is gone; stopping after {evaluated} snapshots")
                    return evaluated
                if not started:
                    time.sleep(poll_seconds)
        finally:
            evaluator.close()


# --------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m dqn.snapshot_eval",
        description="Evaluate the snapshots of a training run (eval_length_frames of play at eval_epsilon each), "
        "writing DIR/eval/frames_*.parquet; with --follow, keep going until training marks the run complete.",
    )
    parser.add_argument("--run", required=True, help="the run folder written by dqn.train")
    parser.add_argument("--follow", action="store_true", help="poll for new snapshots until snapshots/COMPLETE exists")
    add_workers(parser, default=1,
                help="snapshots evaluated at once, one process and one core each (default 1: in this process)")
    add_device(parser, default="cpu", exact=False)
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="seconds between looks for new snapshots (default 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.poll_seconds <= 0:
        raise UserError(f"--poll-seconds must be positive, got {args.poll_seconds}")
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserError(f"run folder {args.run!r} does not exist; pass the --out folder of dqn.train")
    read_run_config(run_dir)
    device = resolve_device(args.device)
    # One intra-op thread: the evaluator runs beside training and must not take its cores; a
    # batch of one state is too small for more threads to pay anyway.
    torch.set_num_threads(1)
    count = evaluate_pending(run_dir, follow=args.follow, poll_seconds=args.poll_seconds, num_workers=args.workers,
                             device=device, parent_pid=os.getppid() if args.follow else None,
                             log=log_to_stderr)
    log_to_stderr(f"{run_dir}: evaluated {count} snapshots")
    return 0


if __name__ == "__main__":
    cli_main(main)
