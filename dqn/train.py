"""Train DQN on one game with one seed into one output folder; resumable at any moment.

    python -m dqn.train --game breakout --seed 0 --out results/dqn/breakout/seed0 \\
        [--preset nature] [--set key=value ...] [--device auto|cpu|cuda] [--threads N] \\
        [--eval-workers N] [--no-side-eval]

This module is the entry point: it reads the flags and the config once, checks everything before
any work, builds the parts (env, frame stack, replay, learner, schedule) and passes them to
`dqn.loop.train_loop`, which reads top to bottom as the algorithm of Mnih et al. (2015). What it
adds around the loop is keeping a run safe: the run folder's lock, resuming, refusing to discard
progress, rebuilding a finished run's outputs, the disk.

Files under --out are named in dqn/run_folder.py and listed in docs/DESIGN.md. Re-running the same
command resumes from the newest valid checkpoint (dqn/checkpoint.py), rebuilds the final outputs
of a finished training, or exits at once when the run is already complete. SIGTERM or SIGINT (Slurm's time limit, preemption, Ctrl-C) write a
checkpoint and exit non-zero so that a scheduler's retry resumes the run.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dqn import fileio
from dqn.config import PRESETS, Hyperparameters, parse_overrides, resolve
from dqn.loop import Parts, StopSignal, TrainState, WallClock, restore, train_loop
from dqn.run_folder import (
    RunFiles,
    best_snapshot,
    config_difference,
    frames_of,
    last_snapshot_frames,
    learning_curve,
    read_existing_config,
    run_config,
    training_finished,
    write_train_log,
)
from dqn.devices import resolve_device
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.games import check_game

log = logging.getLogger("dqn.train")

PROGRESS_INTERVAL_SECONDS = 30.0
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


# ---------------------------------------------------------------------------- checks before work
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


def estimate_disk_bytes(hp: Hyperparameters) -> int:
    """Disk the whole run needs at its peak: two checkpoint generations (the next one is written
    beside the previous one, which is removed only once the new one is complete), each with the
    replay memory, the learner and the held-out transitions; every snapshot, the final and best
    weights; the train log and evaluation rows."""
    from dqn.atari import FRAME_SHAPE
    from dqn.networks import build_network
    from dqn.replay import ReplayMemory

    history = hp.agent_history_length_frames
    # A memory of history+1 entries costs nothing and has the real per-transition layout.
    per_transition = ReplayMemory(history + 1, history, FRAME_SHAPE, seed=0).bytes_per_transition
    replay_bytes = int(per_transition * hp.replay_memory_size_transitions)
    max_actions = 18  # the full Atari action set bounds every game's minimal set
    weights_bytes = 4 * sum(p.numel() for p in build_network(hp.network, (history, *FRAME_SHAPE), max_actions).parameters())
    learner_bytes = 4 * weights_bytes  # online, target and two RMSProp running averages
    heldout_bytes = hp.heldout_states * (2 * history * math.prod(FRAME_SHAPE) + 16)  # s and s', uint8
    checkpoint_bytes = replay_bytes + learner_bytes + heldout_bytes + (1 << 20)  # + state.pt's small objects
    periods = math.ceil(hp.training_length_frames / hp.eval_interval_frames)
    snapshots = periods + 2  # + final and best
    log_bytes = periods * 8 * 1024  # a train_log row and an evaluation row (a small Parquet file) per period
    return 2 * checkpoint_bytes + snapshots * weights_bytes + log_bytes


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (what a run already holds of its estimate)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total


# ---------------------------------------------------------------------------- side evaluation
def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the trainer dies (even by SIGKILL), Linux only."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start_side_evaluator(run_dir: Path, workers: int) -> subprocess.Popen:
    """Training-time evaluation of snapshots as they appear, in a process of its own (one thread)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # A 1 s poll: the end of training waits for the evaluator to notice the last snapshot.
    cmd = [sys.executable, "-m", "dqn.snapshot_eval", "--run", str(run_dir), "--follow", "--workers", str(workers),
           "--poll-seconds", "1"]
    log.info("side evaluation: %s", " ".join(cmd))
    kwargs: dict[str, Any] = {"env": env}
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _die_with_parent
    return subprocess.Popen(cmd, **kwargs)


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def finish(parts: Parts, evaluator: subprocess.Popen | None, *, eval_workers: int, device: str) -> None:
    """Mark training complete, wait for the side evaluation, write the final outputs; then drop the checkpoint."""
    files = parts.files
    # After the last snapshot (written by the period's end): from here on the run is finished,
    # whatever happens to the outputs below (rebuild_finished_run makes them again).
    fileio.atomic_write(files.snapshots_complete, lambda tmp: tmp.write_text("training complete\n"))
    if evaluator is not None:
        log.info("waiting for the side evaluation to finish")
        code = evaluator.wait()
        if code != 0:
            log.warning("side evaluation exited with code %d; evaluating the remaining snapshots here", code)
    write_final_outputs(files, parts.hp, eval_workers=eval_workers, device=device)
    parts.checkpointer.remove_all()


def write_final_outputs(files: RunFiles, hp: Hyperparameters, *, eval_workers: int, device: str) -> None:
    """final.pt (the last snapshot), the complete learning curve and best.pt, from the run folder alone."""
    from dqn import snapshot_eval

    # Always: a no-op when the side evaluator did everything, the whole job after --no-side-eval
    # or a dead evaluator, so the learning curve is never missing a point.
    evaluated = snapshot_eval.evaluate_pending(files.root, follow=False, num_workers=eval_workers, device=device,
                                               log=log.info)
    if evaluated:
        log.info("evaluated %d snapshot(s) in this process", evaluated)
    # The last snapshot holds the weights at the end of training: final.pt is a copy of it, byte for byte.
    fileio.atomic_write(files.final, lambda tmp: shutil.copyfile(files.snapshot(last_snapshot_frames(hp)), tmp))
    fileio.write_parquet(learning_curve(files.root), files.learning_curve)
    best = best_snapshot(files.root)
    source = files.final if best is None else Path(best)
    fileio.atomic_write(files.best, lambda tmp: shutil.copyfile(source, tmp))
    log.info("best weights: %s", source.name)


def build_parts(hp: Hyperparameters, game: str, seed: int, device: str, files: RunFiles, *,
                fast_path: bool = False, compile_step: bool = False,
                channels_last: bool = False) -> tuple[Parts, np.ndarray]:
    """The env, stack, replay, learner and actor of one run, seeded from `seed`; and the env's first frame.

    fast_path: the replay memory on the learner's device and the FastLearner (captured CUDA graphs,
    no host wait per update); same algorithm, another random stream for the minibatches.
    compile_step: torch.compile the RMSProp step (same maths up to float rounding).
    channels_last: the CNN in NHWC memory format (same maths up to float rounding).
    """
    import torch

    from dqn.agent import Learner, epsilon_greedy
    from dqn.atari import AtariEnv, FrameStack
    from dqn.checkpoint import Checkpointer
    from dqn.progress import Progress
    from dqn.replay import ReplayMemory
    from dqn.schedules import LinearEpsilon

    # Independent streams from one seed: the env (ALE and no-op starts), the replay's sampling,
    # the actor's epsilon-greedy draws and the network's initialisation (and, on the fast path,
    # the device replay's sampling, from torch's generator of that device).
    env_seed, replay_seed, actor_seed, torch_seed = (
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(4)
    )
    torch.manual_seed(torch_seed)
    # A lost life that is terminal for learning also ends the action repeat at that frame.
    env = AtariEnv(game, seed=env_seed, action_repeat_frames=hp.action_repeat_frames,
                   noop_max_frames=hp.noop_max_frames, preprocessing=hp.preprocessing,
                   end_step_at_life_loss=hp.lost_life_terminal)
    first_frame = env.reset()
    frame_shape = tuple(first_frame.shape)
    history = hp.agent_history_length_frames
    learner = Learner(hp, env.num_actions, device=device, in_shape=(history, *frame_shape),
                      channels_last=channels_last)
    if compile_step:
        from dqn.speed.compiled_step import compile_optimizer_step

        compile_optimizer_step(learner.optimizer)
    if fast_path:
        from dqn.speed.device_replay import DeviceReplay
        from dqn.speed.fast_learner import FastLearner

        replay = DeviceReplay(hp.replay_memory_size_transitions, history, frame_shape, device=device)
        learner = FastLearner(learner)
    else:
        replay = ReplayMemory(hp.replay_memory_size_transitions, history, frame_shape, seed=replay_seed)
    parts = Parts(
        hp=hp, game=game, seed=seed, env=env,
        stack=FrameStack(history, frame_shape),
        replay=replay,
        learner=learner,
        epsilon=LinearEpsilon.from_hyperparameters(hp),
        epsilon_greedy=epsilon_greedy,
        rng=np.random.default_rng(actor_seed),
        files=files,
        checkpointer=Checkpointer(files.checkpoints),
        progress=Progress(hp.training_length_frames, label=f"{game} seed {seed}: ", interval_seconds=PROGRESS_INTERVAL_SECONDS,
                          record=lambda numbers: fileio.write_json(numbers, files.progress)),
        clock=WallClock(),
        stop=StopSignal(),
        fast_path=fast_path,
    )
    return parts, first_frame


# ---------------------------------------------------------------------------- entry point
# config.json keys of the speed choices: each changes float rounding (the fast path also the
# replay's random stream), so "auto" on a resume keeps what the run started with.
SPEED_CHOICE_KEYS = ("fast_path", "compiled_optimizer_step", "channels_last")


def speed_choices(args: argparse.Namespace, started: dict[str, Any], device: str,
                  hp: Hyperparameters) -> tuple[bool, bool, bool]:
    """--fast-path, --compile and --channels-last resolved; `started` is the config.json of the run so far."""
    from dqn.speed.auto import channels_last_enabled, compile_enabled, fast_path_enabled

    def kept(choice: str, key: str) -> bool | None:
        return bool(started[key]) if choice == "auto" and key in started else None

    fast_path = kept(args.fast_path, "fast_path")
    if fast_path is None:
        fast_path, why = fast_path_enabled(args.fast_path, device, hp.replay_memory_size_transitions,
                                           trainings_per_gpu=args.trainings_per_gpu)
        if why:
            log.info("%s (%d training(s) per GPU)", why, args.trainings_per_gpu)
    compile_step = kept(args.compile, "compiled_optimizer_step")
    if compile_step is None:
        compile_step = not fast_path and compile_enabled(args.compile, device, hp.training_length_frames)
    channels_last = kept(args.channels_last, "channels_last")
    if channels_last is None:
        channels_last = not fast_path and channels_last_enabled(args.channels_last, device, hp.network)
    return fast_path, compile_step, channels_last


def remove_stale_outputs(files: RunFiles, rows: list[dict[str, Any]], frames_kept: int, training_done: bool) -> None:
    """On (re)start, drop outputs from after the checkpoint: they are recomputed, never duplicated."""
    for folder, suffix in ((files.snapshots, ".pt"), (files.eval, ".parquet")):
        if folder.is_dir():
            for path in folder.iterdir():
                frames = frames_of(path)
                if path.name.endswith(suffix) and frames is not None and frames > frames_kept:
                    path.unlink()
    if not training_done:
        files.snapshots_complete.unlink(missing_ok=True)
    for path in (files.final, files.best, files.learning_curve):
        path.unlink(missing_ok=True)
    if rows:
        write_train_log(rows, files.train_log)
    else:
        files.train_log.unlink(missing_ok=True)


def lock_run_folder(files: RunFiles):
    """An exclusive lock on the run folder: two trainings writing one folder would corrupt it.

    The holder writes its PID and host into the lock file, so that the refusal names them.
    """
    import fcntl

    handle = open(files.lock, "a+")
    try:
        if not fileio.try_flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB):
            log.warning("%s: this file system has no flock, so nothing keeps a second dqn.train out of this run "
                        "folder; start one training per folder", files.root)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "a process"
        handle.close()
        raise UserError(
            f"another dqn.train ({holder}) is still running in {str(files.root)!r}; wait for it to finish (it "
            "writes the outputs itself), or stop it (kill that PID) and run this command again to resume"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"PID {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


def log_to_run_folder(files: RunFiles) -> None:
    """Append this process's log lines to RUN/train.log too, once it holds the run's lock.

    The run folder keeps the whole history of its trainings, attempt after attempt: a scheduler's
    log file can be replaced under a training that outlived its `snakemake` (Snakemake recreates
    a job's log when it runs the job again), the run folder's is never.
    """
    handler = logging.FileHandler(files.train_log_text, mode="a")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)


def rebuild_finished_run(files: RunFiles, hp: Hyperparameters, *, eval_workers: int, device: str) -> None:
    """The outputs of a finished training from what its folder keeps (snapshots, evaluation rows,
    train log), when something (e.g. Snakemake marking a killed job's outputs incomplete) deleted
    them: no agent step is played again."""
    from dqn.checkpoint import Checkpointer

    started = time.monotonic()
    missing = [path.name for path in (files.final, files.best, files.learning_curve) if not path.is_file()]
    write_final_outputs(files, hp, eval_workers=eval_workers, device=device)
    Checkpointer(files.checkpoints).remove_all()
    log.info("%s: training had finished; rebuilt %s from its snapshots, evaluations and train log in %.1f s "
             "(no training step replayed)", files.root, ", ".join(missing) or "nothing", time.monotonic() - started)


def refuse_to_discard_progress(files: RunFiles, checkpointer, hp: Hyperparameters) -> None:
    """Before starting from step 0 in a folder with progress: refuse (one line) where that would
    throw away more than the work since a checkpoint, i.e. damaged checkpoints are there, or the
    train log outlasted a checkpoint interval (its checkpoint was removed)."""
    from dqn.checkpoint import NoValidCheckpointError

    try:
        checkpointer.check_fresh_start()
    except NoValidCheckpointError as exc:
        raise UserError(f"{exc}; or run again with --restart-from-zero, which moves them with the train log, "
                        "snapshots and evaluations to discarded_*/ and trains from step 0") from None
    if not files.train_log.is_file():
        return
    import pandas as pd

    try:
        rows = pd.read_parquet(files.train_log, columns=["agent_steps", "wall_seconds"])
    except Exception:  # an unreadable log protects nothing: it is rewritten from step 0
        return
    if len(rows) and float(rows["wall_seconds"].max()) > 60.0 * hp.checkpoint_interval_minutes:
        raise UserError(
            f"{str(files.root)!r} has trained {int(rows['agent_steps'].max()):,} agent steps but holds no checkpoint "
            f"under {str(files.checkpoints)!r} to resume them from; run again with --restart-from-zero to move the "
            "train log, snapshots and evaluations to discarded_*/ and train from step 0")


def discard_progress(files: RunFiles) -> None:
    """--restart-from-zero: move what the run made so far into one discarded_<time>/ folder, never delete it."""
    from dqn.checkpoint import Checkpointer

    moved = [path for path in (files.train_log, files.snapshots, files.eval, *Checkpointer(files.checkpoints).corrupt_folders())
             if path.exists()]
    if not moved:
        return
    target = files.root / time.strftime("discarded_%Y%m%d-%H%M%S")
    target.mkdir()
    for path in moved:
        path.rename(target / path.name)
    log.warning("--restart-from-zero: moved %s to %s; training from step 0", ", ".join(p.name for p in moved), target)


@contextlib.contextmanager
def disk_full_as_one_line(files: RunFiles, hp: Hyperparameters):
    """A write that fills the disk (a snapshot, the train log, an evaluation row) ends the run with
    one line; the checkpointer raises its own (CheckpointWriteError). The previous checkpoint is
    intact either way, and a rerun with space resumes from it."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free_bytes = shutil.disk_usage(files.root).free
        needed_bytes = max(0, estimate_disk_bytes(hp) - folder_bytes(files.root))
        raise UserError(
            f"the disk under {str(files.root)!r} is full (writing {exc.filename or 'a file'}: {exc.strerror}); "
            f"{free_bytes / 2**30:.2f} GiB free, about {needed_bytes / 2**30:.2f} GiB more needed to finish; "
            "free space and run the same command again to resume from the last checkpoint") from None


def start(hp: Hyperparameters, game: str, seed: int, device: str, files: RunFiles, loaded, *, fast_path: bool,
          compile_step: bool, channels_last: bool, leaving_fast_path: bool = False) -> tuple[Parts, TrainState]:
    """The parts of the run, and its state: from `loaded` (a checkpoint's folder and state) or from step 0."""
    import torch

    parts, first_frame = build_parts(hp, game, seed, device, files, fast_path=fast_path, compile_step=compile_step,
                                     channels_last=channels_last)
    log.info("%s seed %d on %s (%d torch threads, %s path%s%s): %s frames planned, %d actions, replay memory of %s transitions",
             game, seed, device, torch.get_num_threads(), "fast" if fast_path else "plain",
             ", compiled optimizer step" if compile_step else "", ", channels-last" if channels_last else "",
             f"{hp.training_length_frames:,}",
             parts.learner.num_actions, f"{hp.replay_memory_size_transitions:,}")
    if loaded is None:
        return parts, TrainState(s_t=parts.stack.reset(first_frame), episode_start=True)
    folder, state = loaded
    st = restore(parts, state, leaving_fast_path=leaving_fast_path)
    parts.clock = WallClock(float(state["wall_seconds"]))
    log.info("resuming from %s (agent step %d, %d train_log rows)", folder, st.agent_steps, len(st.rows))
    return parts, st


def checked_fast_path(parts: Parts, st: TrainState, loaded, hp: Hyperparameters, game: str, seed: int, device: str,
                      files: RunFiles) -> tuple[Parts, TrainState]:
    """The fast path compared with the plain path from the run's state (dqn/speed/self_check.py); on a
    mismatch or an error, one warning, the fallback recorded in config.json, and the plain path's
    parts loaded with the same state (a run from step 0 is then exactly a --fast-path off run)."""
    import gc

    import torch

    from dqn.run_folder import record_fast_path_fallback
    from dqn.speed.self_check import check_fast_path

    verdict = check_fast_path(parts.learner, hp)
    if verdict.passed:
        log.info("fast path checked against the plain path: %d updates and %d acting passes agree (%.1f s)",
                 verdict.updates, verdict.acting_passes, verdict.seconds)
        return parts, st
    log.warning("the fast path failed its check against the plain path (%s); continuing on the plain path "
                "(recorded in config.json as fast_path_fallback)", verdict.reason)
    record_fast_path_fallback(files, reason=str(verdict.reason), agent_steps=st.agent_steps, device=device,
                              check_seconds=verdict.seconds)
    del parts, st
    gc.collect()  # the device replay's memory goes before the host replay is allocated
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return start(hp, game, seed, device, files, loaded, fast_path=False, compile_step=False, channels_last=False,
                 leaving_fast_path=True)


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.checkpoint import Checkpointer
    from dqn.speed.allocator import keep_freed_memory_mapped

    # Before any large allocation: an update's freed buffers stay mapped for the next one
    # (saves ~3,000 page faults and 15-40% of a CPU update; see dqn/speed/allocator.py).
    keep_freed_memory_mapped()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)

    # --- every check before any work
    game = check_game(args.game)
    if args.seed < 0:
        raise UserError(f"--seed must be zero or positive, got {args.seed}")
    if args.eval_workers < 1:
        raise UserError(f"--eval-workers must be at least 1, got {args.eval_workers}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if args.trainings_per_gpu < 1:
        raise UserError(f"--trainings-per-gpu must be at least 1, got {args.trainings_per_gpu}")
    hp = resolve(args.preset, parse_overrides(args.set)).for_game(game)
    device = resolve_device(args.device)
    files = RunFiles(Path(args.out))
    config = run_config(game, args.seed, args.preset, hp, device)
    existing = read_existing_config(files)
    lock = None  # held until this process exits
    if existing is not None:
        difference = config_difference(existing, config)
        if difference is not None:
            raise UserError(f"{str(files.root)!r} holds a run with another config ({difference}); use a new --out")
        if all(path.is_file() for path in files.final_outputs()):
            log.info("%s: already complete, nothing to do", files.root)
            Checkpointer(files.checkpoints).remove_all()  # keeps damaged ones set aside for inspection
            return 0
        lock = lock_run_folder(files)
        log_to_run_folder(files)
        if training_finished(files, hp):
            rebuild_finished_run(files, hp, eval_workers=args.eval_workers, device=device)
            return 0
    held_bytes = 0
    if files.root.is_dir():
        # Leftovers of a killed run go before the free-space check: that space is the run's again.
        lock = lock or lock_run_folder(files)
        Checkpointer(files.checkpoints).remove_incomplete()
        fileio.remove_stale_temporaries(files.root, min_age_seconds=0.0)  # live writers hold a flock
        held_bytes = folder_bytes(files.root)
    fileio.check_output_dir(files.root, min_free_bytes=max(0, estimate_disk_bytes(hp) - held_bytes))
    if lock is None:
        lock = lock_run_folder(files)
    if existing is None:
        log_to_run_folder(files)

    # --- composition: build the parts once, pass them down
    import torch

    torch.set_num_threads(learner_threads(args.threads, 0 if args.no_side_eval else args.eval_workers))
    if device == "cuda":
        # Reproducible convolutions; the rest of the speed comes from the GPU itself.
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    choices = speed_choices(args, existing or {}, device, hp)
    fast_path, compile_step, channels_last = choices
    if existing is None:
        fileio.write_json({**config, **dict(zip(SPEED_CHOICE_KEYS, choices))}, files.config)
    elif existing.get("device") != device:
        log.warning("resuming on %s a run started on %s: results may differ in the last bits", device, existing.get("device"))

    checkpointer = Checkpointer(files.checkpoints)
    loaded = checkpointer.load_latest()
    if loaded is None:
        if args.restart_from_zero:
            discard_progress(files)
        else:
            refuse_to_discard_progress(files, checkpointer, hp)
    parts, st = start(hp, game, args.seed, device, files, loaded, fast_path=fast_path, compile_step=compile_step,
                      channels_last=channels_last)
    if parts.fast_path:
        parts, st = checked_fast_path(parts, st, loaded, hp, game, args.seed, device, files)
    del loaded  # drop the memory maps of the checkpoint's arrays
    training_done = st.agent_steps >= hp.training_length_steps
    remove_stale_outputs(files, st.rows, st.agent_steps * hp.action_repeat_frames, training_done)

    evaluator = None if args.no_side_eval else start_side_evaluator(files.root, args.eval_workers)
    parts.stop.install()
    try:
        with disk_full_as_one_line(files, hp):
            code = train_loop(parts, st)
    except BaseException:
        stop_process(evaluator)
        raise
    finally:
        parts.stop.restore()
    if code is not None:
        stop_process(evaluator)
        return code
    with disk_full_as_one_line(files, hp):
        finish(parts, evaluator, eval_workers=args.eval_workers, device=device)
    fileio.remove_stale_temporaries(files.root, min_age_seconds=0.0)
    log.info("%s: training complete", files.root)
    return 0


if __name__ == "__main__":
    cli_main(main)
