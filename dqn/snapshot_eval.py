"""Training-time evaluation (the learning curves of Fig. 2), run beside training on its snapshots.

Training writes `DIR/snapshots/frames_{frames:012d}.pt` every `eval_interval_frames` and, when
it has written its last one, the marker `DIR/snapshots/COMPLETE`. This module scores each
snapshot the way DeepMind's `train_agent.lua` scored the network during training:
`eval_length_frames` (500k frames = 125,000 agent steps) of play at `eval_epsilon` (0.05); the
result is the mean raw score of the episodes *completed* within that budget (NaN if none; the
Lua code reported 0 then). It writes one row per snapshot to `DIR/eval/frames_{frames:012d}.parquet`,
atomically, so the evaluator can be killed and restarted at any time and evaluates only what is
missing.

Choices where the protocol is silent:

- No cap on episode length here. `train_agent.lua` played its `eval_steps` with no per-episode
  limit (the 5-minute cut belongs to the final evaluation of Extended Data Table 2); the budget
  itself bounds the play, and an episode still running when it ends is not counted.
- The budget is split over `num_envs` environments (8 by default) that play side by side, so the
  forward pass is batched; each plays episodes back to back for 1/num_envs of the agent steps.
  DeepMind used one environment for the same agent steps. More environments lose more
  unfinished episodes at the end of the budget; with 8, each still plays 62,500 frames (17 minutes
  of game), so every episode shorter than that can complete. The number is fixed (not the
  number of cores) because it is part of the result.
- Each new episode starts with a random no-op start, as `nextRandomGame` did in the Lua code.
- Seeds come from (run seed, snapshot frames, environment index): re-evaluating a snapshot
  gives the same score, whatever the number of worker processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.evaluate import (
    DQNPolicy,
    EnvSpec,
    Policy,
    RunResult,
    Slot,
    hyperparameters_from_dict,
    log_to_stderr,
    resolve_device,
    run_slots,
    slot_seeds,
)

TRAINING_EVAL_ENVS = 8
SNAPSHOT_NAME = re.compile(r"^frames_(\d{12})\.pt$")
EVAL_NAME = re.compile(r"^frames_(\d{12})\.parquet$")
COMPLETE_MARKER = "COMPLETE"
EVAL_COLUMNS = ("game", "seed", "frames", "eval_score_mean", "eval_episodes", "eval_frames", "wall_seconds")


# --------------------------------------------------------------------------------------------
# Paths of a run folder


def snapshot_path(run_dir: str | os.PathLike, frames: int) -> Path:
    return Path(run_dir) / "snapshots" / f"frames_{frames:012d}.pt"


def eval_path(run_dir: str | os.PathLike, frames: int) -> Path:
    return Path(run_dir) / "eval" / f"frames_{frames:012d}.parquet"


def list_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(frames, path) of every complete snapshot, by frames. Temporary files (".frames_...tmp") are not listed."""
    folder = Path(run_dir) / "snapshots"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := SNAPSHOT_NAME.match(p.name))]
    return sorted(found)


def pending_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    return [(frames, path) for frames, path in list_snapshots(run_dir) if not eval_path(run_dir, frames).exists()]


# --------------------------------------------------------------------------------------------
# Playing a budget of frames


def play_for_frames(
    policy: Policy,
    game: str,
    *,
    seed: int | Sequence[int],
    total_frames: int,
    epsilon: float = 0.05,
    num_workers: int | None = 1,
    num_envs: int = TRAINING_EVAL_ENVS,
    action_repeat_frames: int = 4,
    noop_max_frames: int = 30,
    preprocessing: str = "nature",
    max_episode_frames: int | None = None,
    env_factory: Callable[..., Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Play total_frames // action_repeat_frames agent steps, split over `num_envs` environments.

    Environment i gets an equal share of the agent steps (the first ones one more when they do
    not divide) and is seeded by (*seed, i).
    """
    if num_envs < 1:
        raise UserError(f"the number of evaluation environments must be at least 1, got {num_envs}")
    entropy = (seed,) if isinstance(seed, (int, np.integer)) else tuple(seed)
    if any(e < 0 for e in entropy):
        raise UserError(f"seeds must be 0 or more, got {entropy}")
    total_steps = total_frames // action_repeat_frames
    share, extra = divmod(total_steps, num_envs)
    slots = [
        Slot(i, *slot_seeds(*entropy, i), max_episodes=None, budget_steps=share + (1 if i < extra else 0))
        for i in range(num_envs)
    ]
    spec = EnvSpec(game, action_repeat_frames, noop_max_frames, preprocessing, max_episode_frames, env_factory)
    return run_slots(policy, spec, slots, epsilon=epsilon, num_workers=num_workers, log=log, label=f"{game}: ")


def evaluate_for_frames(policy: Policy, game: str, *, seed: int | Sequence[int], total_frames: int,
                        epsilon: float = 0.05, num_workers: int | None = 1, **kwargs) -> tuple[float, int]:
    """(mean raw score of the completed episodes or NaN, number of completed episodes) after
    total_frames of play at `epsilon`; the keyword arguments are those of `play_for_frames`."""
    result = play_for_frames(policy, game, seed=seed, total_frames=total_frames, epsilon=epsilon,
                             num_workers=num_workers, **kwargs)
    return _mean_score(result), len(result.episodes)


def _mean_score(result: RunResult) -> float:
    return float(np.mean([e.score for e in result.episodes])) if result.episodes else math.nan


# --------------------------------------------------------------------------------------------
# Evaluating the snapshots of a run


def read_run_config(run_dir: str | os.PathLike) -> tuple[str, int, Any]:
    """(game, seed, hyperparameters with the game's overrides) from DIR/config.json."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist; --run must be a folder written by dqn.train")
    try:
        config = json.loads(path.read_text())
        game, seed, values = config["game"], int(config["seed"]), config["hyperparameters"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{str(path)!r} is not a config.json of dqn.train ({type(exc).__name__}: {exc})") from None
    return game, seed, hyperparameters_from_dict(values).for_game(game)


@contextlib.contextmanager
def _evaluator_lock(run_dir: Path, log: Callable[[str], None] | None) -> Iterator[None]:
    """One evaluator per run folder: a second one (e.g. started by a resumed training while an
    orphaned one finishes its snapshot) waits here, then finds that snapshot done."""
    import fcntl

    lock_path = run_dir / "eval" / ".evaluator.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"another evaluator holds {lock_path}; waiting for it to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def evaluate_snapshot(run_dir: str | os.PathLike, frames: int, *, num_workers: int | None = 1, device: str = "cpu",
                      num_envs: int = TRAINING_EVAL_ENVS, log: Callable[[str], None] | None = None,
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
        num_workers=num_workers, num_envs=num_envs, action_repeat_frames=hp.action_repeat_frames,
        noop_max_frames=hp.noop_max_frames, preprocessing=hp.preprocessing, env_factory=env_factory,
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


def evaluate_pending(
    run_dir: str | os.PathLike,
    *,
    follow: bool = False,
    poll_seconds: float = 5.0,
    num_workers: int | None = 1,
    device: str = "cpu",
    num_envs: int = TRAINING_EVAL_ENVS,
    parent_pid: int | None = None,
    log: Callable[[str], None] | None = None,
    env_factory: Callable[..., Any] | None = None,
) -> int:
    """Evaluate every snapshot without a result, oldest first; return how many were evaluated.

    follow=True keeps polling every `poll_seconds` until `snapshots/COMPLETE` exists and every
    snapshot has its result. `parent_pid`: stop following (after the snapshots already there)
    when this process is no longer our parent, i.e. the training that spawned us has died.
    """
    run_dir = Path(run_dir)
    read_run_config(run_dir)  # refuse a folder that is not a run before waiting on anything
    evaluated = 0
    with _evaluator_lock(run_dir, log):
        while True:
            # The marker is read before the listing: training writes it after its last snapshot,
            # so when it was there, this listing holds every snapshot there will ever be.
            complete = (run_dir / "snapshots" / COMPLETE_MARKER).exists()
            orphaned = parent_pid is not None and os.getppid() != parent_pid
            pending = pending_snapshots(run_dir)
            for frames, _ in pending:
                evaluate_snapshot(run_dir, frames, num_workers=num_workers, device=device, num_envs=num_envs,
                                  log=log, env_factory=env_factory)
                evaluated += 1
            if not follow or complete:
                return evaluated
            if orphaned:
                if log:
                    log(f"the training process {parent_pid} is gone; stopping after {evaluated} snapshots")
                return evaluated
            if not pending:
                time.sleep(poll_seconds)


# --------------------------------------------------------------------------------------------
# Reading the results


def read_eval_results(run_dir: str | os.PathLike) -> "pd.DataFrame":
    """Every DIR/eval/frames_*.parquet row (EVAL_COLUMNS), by frames."""
    import pandas as pd

    folder = Path(run_dir) / "eval"
    files = sorted(p for p in folder.iterdir() if EVAL_NAME.match(p.name)) if folder.is_dir() else []
    if not files:
        return pd.DataFrame({
            "game": pd.Series([], dtype=str), "seed": pd.Series([], dtype=np.int64),
            "frames": pd.Series([], dtype=np.int64), "eval_score_mean": pd.Series([], dtype=np.float64),
            "eval_episodes": pd.Series([], dtype=np.int64), "eval_frames": pd.Series([], dtype=np.int64),
            "wall_seconds": pd.Series([], dtype=np.float64),
        })
    results = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    return results.sort_values("frames", kind="stable").reset_index(drop=True)


def learning_curve(run_dir: str | os.PathLike) -> "pd.DataFrame":
    """train_log.parquet with eval_score_mean and eval_episodes of the snapshot at the same frames.

    A period whose snapshot has no result yet gets eval_score_mean NaN and eval_episodes 0.
    """
    import pandas as pd

    log_path = Path(run_dir) / "train_log.parquet"
    if not log_path.is_file():
        raise UserError(f"{str(log_path)!r} does not exist; the run has not finished an evaluation period yet")
    train_log = pd.read_parquet(log_path)
    evals = read_eval_results(run_dir)[["frames", "eval_score_mean", "eval_episodes"]]
    curve = train_log.merge(evals, on="frames", how="left", validate="many_to_one")
    curve["eval_episodes"] = curve["eval_episodes"].fillna(0).astype(np.int64)
    curve["eval_score_mean"] = curve["eval_score_mean"].astype(np.float64)
    return curve


def best_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The snapshot with the highest eval_score_mean (ties: the later one), as DeepMind's code kept
    its best network; None when no snapshot that still exists has a score."""
    evals = read_eval_results(run_dir)
    evals = evals[np.isfinite(evals["eval_score_mean"].to_numpy(dtype=np.float64))]
    candidates = [(score, frames) for score, frames in zip(evals["eval_score_mean"], evals["frames"])
                  if snapshot_path(run_dir, int(frames)).is_file()]
    if not candidates:
        return None
    _, frames = max(candidates)
    return snapshot_path(run_dir, int(frames))


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
    parser.add_argument("--workers", type=int, default=1, help="environment processes (default 1: in-process, one core)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--envs", type=int, default=TRAINING_EVAL_ENVS,
                        help=f"environments played side by side (default {TRAINING_EVAL_ENVS}); part of the result, not of speed alone")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="seconds between looks for new snapshots (default 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserError(f"run folder {args.run!r} does not exist; pass the --out folder of dqn.train")
    read_run_config(run_dir)
    device = resolve_device(args.device)
    # One intra-op thread: the evaluator runs beside training and must not take its cores; a
    # batch of 8 states is too small for more threads to pay anyway.
    torch.set_num_threads(1)
    count = evaluate_pending(run_dir, follow=args.follow, poll_seconds=args.poll_seconds, num_workers=args.workers,
                             device=device, num_envs=args.envs, parent_pid=os.getppid() if args.follow else None,
                             log=log_to_stderr)
    log_to_stderr(f"{run_dir}: evaluated {count} snapshots")
    return 0


if __name__ == "__main__":
    cli_main(main)
