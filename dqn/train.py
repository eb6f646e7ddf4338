"""Train DQN on one game with one seed into one output folder; resumable at any moment.

    python -m dqn.train --game breakout --seed 0 --out results/dqn/breakout/seed0 \\
        [--preset nature] [--set key=value ...] [--device auto|cpu|cuda] [--threads N] \\
        [--eval-workers N] [--no-side-eval]

This module is the entry point and reads as the life of a run: parse the flags and the config
once, check everything before any work, claim the run folder, build the parts (dqn/build.py),
resume from a checkpoint or start from step 0, run `dqn.loop.train_loop` (the algorithm of Mnih
et al. 2015, top to bottom) and finish. Keeping the run safe around the loop (the folder's lock,
refusing to discard progress, rebuilding a finished run's outputs, the disk) is
dqn/run_lifecycle.py; the side evaluator is dqn/side_eval.py; the speed choices and the fast
path's fallback are dqn/speed/.

Files under --out are named in dqn/run_folder.py and listed in docs/DESIGN.md. Re-running the same
command resumes from the newest valid checkpoint (dqn/checkpoint.py), rebuilds the final outputs
of a finished training, or exits at once when the run is already complete. SIGTERM or SIGINT
(Slurm's time limit, preemption, Ctrl-C) write a checkpoint and exit non-zero so that a
scheduler's retry resumes the run.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dqn import fileio
from dqn.build import build_parts
from dqn.config import PRESETS, Hyperparameters, parse_overrides, resolve
from dqn.devices import resolve_device
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.games import check_game
from dqn.loop import Parts, TrainState, WallClock, restore, train_loop
from dqn.run_folder import RunFiles, read_existing_config, run_config
from dqn.run_lifecycle import (
    LOG_FORMAT,
    checkpoint_to_resume,
    claim_run_folder,
    disk_full_as_one_line,
    remove_stale_outputs,
    write_final_outputs,
)
from dqn.side_eval import start_side_evaluator, stop_side_evaluator, wait_for_side_evaluator
from dqn.speed.choices import SPEED_CHOICE_KEYS, speed_choices

log = logging.getLogger("dqn.train")


# ---------------------------------------------------------------------------- parse and check
def build_parser() -> argparse.ArgumentParser:
    from dqn.cli import add_device, add_game, add_out, add_seed, add_switch, add_workers

    p = ArgumentParser(prog="python -m dqn.train", description="Train DQN on one Atari game with one seed.")
    add_game(p)
    add_seed(p, help="seed of the env, replay, actor and network init")
    add_out(p, help="output folder of this run (re-running resumes it)")
    p.add_argument("--preset", default="nature", help=f"hyperparameter preset: {', '.join(sorted(PRESETS))}")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override hyperparameters (repeatable)")
    add_device(p)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads of training (default: $OMP_NUM_THREADS if set, else the cores this "
                        "process may use minus one per side-evaluation worker)")
    add_workers(p, flag="--eval-workers", default=1, help="processes of training-time evaluation")
    add_switch(p, "--fast-path", help="replay memory and captured update graphs on the device (auto: on for CUDA "
               "when the replay fits); a run resumes on the path it started on")
    add_switch(p, "--compile", help="torch.compile the optimizer step (auto: on for CPU runs of 10M frames or more)")
    add_switch(p, "--channels-last", help="run the CNN in channels-last (NHWC) memory format (auto: on for the CPU); "
               "a run resumes in the format it started with")
    p.add_argument("--trainings-per-gpu", type=int, default=1, metavar="N",
                   help="trainings sharing this GPU: under --fast-path auto the replay memory goes on the GPU only "
                        "while N replays fit its memory (default 1)")
    p.add_argument("--no-side-eval", action="store_true",
                   help="evaluate snapshots at the end of training instead of beside it")
    p.add_argument("--restart-from-zero", action="store_true",
                   help="when no valid checkpoint is left, move the run's damaged checkpoints, train log, snapshots "
                        "and evaluations to discarded_*/ in the run folder and train again from step 0")
    return p


@dataclass(frozen=True)
class Run:
    """What the flags ask for, checked: one game, one seed, one folder."""

    args: argparse.Namespace
    game: str
    hp: Hyperparameters
    device: str
    files: RunFiles

    @property
    def seed(self) -> int:
        return self.args.seed


def checked_run(args: argparse.Namespace) -> Run:
    """Every check of the flags and the config, before any work."""
    game = check_game(args.game)
    if args.seed < 0:
        raise UserError(f"--seed must be zero or positive, got {args.seed}")
    for flag, value in (("--eval-workers", args.eval_workers), ("--threads", args.threads),
                        ("--trainings-per-gpu", args.trainings_per_gpu)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    hp = resolve(args.preset, parse_overrides(args.set)).for_game(game)
    return Run(args, game, hp, resolve_device(args.device), RunFiles(Path(args.out)))


def learner_threads(requested: int | None, side_eval_workers: int) -> int:
    """Torch threads for training: leave a core to each side-evaluation worker.

    More OpenMP threads than free cores makes every update wait on a preempted thread, which on
    a busy machine costs far more than the extra thread gains.
    """
    if requested is not None:
        return requested
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - side_eval_workers)


def set_torch_threads(run: Run) -> None:
    import torch

    torch.set_num_threads(learner_threads(run.args.threads, 0 if run.args.no_side_eval else run.args.eval_workers))
    if run.device == "cuda":
        # Reproducible convolutions; the rest of the speed comes from the GPU itself.
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def chosen_speed(run: Run, config: dict[str, Any], existing: dict[str, Any] | None) -> tuple[bool, bool, bool]:
    """The run's speed choices; a new run records them in its config.json beside the config."""
    choices = speed_choices(run.args, existing or {}, run.device, run.hp)
    if existing is None:
        fileio.write_json({**config, **dict(zip(SPEED_CHOICE_KEYS, choices))}, run.files.config)
    elif existing.get("device") != run.device:
        log.warning("resuming on %s a run started on %s: results may differ in the last bits", run.device,
                    existing.get("device"))
    return choices


# ---------------------------------------------------------------------------- resume or start
def start(run: Run, loaded, *, fast_path: bool, compile_step: bool, channels_last: bool,
          leaving_fast_path: bool = False) -> tuple[Parts, TrainState]:
    """The parts of the run, and its state: from `loaded` (a checkpoint's folder and state) or from step 0."""
    import torch

    hp = run.hp
    parts, first_frame = build_parts(hp, run.game, run.seed, run.device, run.files, fast_path=fast_path,
                                     compile_step=compile_step, channels_last=channels_last)
    log.info("%s seed %d on %s (%d torch threads, %s path%s%s): %s frames planned, %d actions, "
             "replay memory of %s transitions",
             run.game, run.seed, run.device, torch.get_num_threads(), "fast" if fast_path else "plain",
             ", compiled optimizer step" if compile_step else "", ", channels-last" if channels_last else "",
             f"{hp.training_length_frames:,}", parts.learner.num_actions, f"{hp.replay_memory_size_transitions:,}")
    if loaded is None:
        return parts, TrainState(s_t=parts.stack.reset(first_frame), episode_start=True)
    folder, state = loaded
    st = restore(parts, state, leaving_fast_path=leaving_fast_path)
    parts.clock = WallClock(float(state["wall_seconds"]))
    log.info("resuming from %s (agent step %d, %d train_log rows)", folder, st.agent_steps, len(st.rows))
    return parts, st


def resume_or_start(run: Run, loaded, choices: tuple[bool, bool, bool]) -> tuple[Parts, TrainState]:
    """The run's parts and state on the chosen path; a fast path that fails its check falls back."""
    from dqn.speed.fallback import checked_fast_path

    fast_path, compile_step, channels_last = choices
    parts, st = start(run, loaded, fast_path=fast_path, compile_step=compile_step, channels_last=channels_last)
    if parts.fast_path:
        parts, st = checked_fast_path(parts, st, run.files, run.device, plain_start=lambda: start(
            run, loaded, fast_path=False, compile_step=False, channels_last=False, leaving_fast_path=True))
    return parts, st


# ---------------------------------------------------------------------------- loop and finish
def finish(parts: Parts, evaluator: subprocess.Popen | None, *, eval_workers: int, device: str) -> None:
    """Mark training complete, wait for the side evaluation, write the final outputs; then drop the checkpoint."""
    files = parts.files
    # After the last snapshot (written by the period's end): from here on the run is finished,
    # whatever happens to the outputs below (rebuild_finished_run makes them again).
    fileio.atomic_write(files.snapshots_complete, lambda tmp: tmp.write_text("training complete\n"))
    wait_for_side_evaluator(evaluator)
    write_final_outputs(files, parts.hp, eval_workers=eval_workers, device=device)
    parts.checkpointer.remove_all()


def loop_and_finish(run: Run, parts: Parts, st: TrainState) -> int:
    """The training loop beside its evaluator, then the final outputs; the exit code."""
    files, hp = run.files, run.hp
    evaluator = None if run.args.no_side_eval else start_side_evaluator(files.root, run.args.eval_workers)
    parts.stop.install()
    try:
        with disk_full_as_one_line(files, hp):
            code = train_loop(parts, st)
    except BaseException:
        stop_side_evaluator(evaluator)
        raise
    finally:
        parts.stop.restore()
    if code is not None:
        stop_side_evaluator(evaluator)
        return code
    with disk_full_as_one_line(files, hp):
        finish(parts, evaluator, eval_workers=run.args.eval_workers, device=run.device)
    fileio.remove_stale_temporaries(files.root, min_age_seconds=0.0)
    log.info("%s: training complete", files.root)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.speed.allocator import keep_freed_memory_mapped

    # Before any large allocation: an update's freed buffers stay mapped for the next one
    # (saves ~3,000 page faults and 15-40% of a CPU update; see dqn/speed/allocator.py).
    keep_freed_memory_mapped()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)
    run = checked_run(args)
    config = run_config(run.game, args.seed, args.preset, run.hp, run.device)
    existing = read_existing_config(run.files)
    lock = claim_run_folder(run.files, config, existing, run.hp, eval_workers=args.eval_workers, device=run.device)
    if lock is None:
        return 0  # complete, or its outputs rebuilt: nothing to train
    # From here on `lock` holds the run folder until this process exits.

    set_torch_threads(run)
    choices = chosen_speed(run, config, existing)
    loaded = checkpoint_to_resume(run.files, run.hp, restart_from_zero=args.restart_from_zero)
    parts, st = resume_or_start(run, loaded, choices)
    del loaded  # drop the memory maps of the checkpoint's arrays
    training_done = st.agent_steps >= run.hp.training_length_steps
    remove_stale_outputs(run.files, st.rows, st.agent_steps * run.hp.action_repeat_frames, training_done)
    return loop_and_finish(run, parts, st)


if __name__ == "__main__":
    cli_main(main)
