"""A run folder's life around the training loop: claiming it (its lock, a finished run, leftovers
of a killed run, the disk), choosing where to start (a checkpoint, or step 0 only where that
discards nothing unasked), dropping outputs from after the checkpoint, the final outputs, and a
full disk as one line.

The folder's file names and columns are dqn/run_folder.py's; this module decides what happens to
them when `python -m dqn.train` starts, resumes, finishes or is run again on a finished run.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import IO, Any

from dqn import fileio
from dqn.config import Hyperparameters
from dqn.errors import UserError
from dqn.run_folder import (
    RunFiles,
    best_snapshot,
    config_difference,
    frames_of,
    last_snapshot_frames,
    learning_curve,
    training_finished,
    write_train_log,
)

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


# ---------------------------------------------------------------------------- claiming the folder
def claim_run_folder(files: RunFiles, config: dict[str, Any], existing: dict[str, Any] | None,
                     hp: Hyperparameters, *, eval_workers: int, device: str) -> IO | None:
    """The run folder's lock, held until this process exits, once the folder is fit to train in;
    None when there is nothing to train (the run is complete, or a finished training's outputs
    were rebuilt). `existing` is the folder's config.json, None for a new run."""
    from dqn.checkpoint import Checkpointer

    lock = None
    if existing is not None:
        difference = config_difference(existing, config)
        if difference is not None:
            raise UserError(f"{str(files.root)!r} holds a run with another config ({difference}); use a new --out")
        if all(path.is_file() for path in files.final_outputs()):
            log.info("%s: already complete, nothing to do", files.root)
            Checkpointer(files.checkpoints).remove_all()  # keeps damaged ones set aside for inspection
            return None
        lock = lock_run_folder(files)
        log_to_run_folder(files)
        if training_finished(files, hp):
            rebuild_finished_run(files, hp, eval_workers=eval_workers, device=device)
            return None
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
    return lock


def lock_run_folder(files: RunFiles) -> IO:
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


# ---------------------------------------------------------------------------- where to start
def checkpoint_to_resume(files: RunFiles, hp: Hyperparameters, *, restart_from_zero: bool):
    """The newest valid checkpoint (its folder and state), or None to start from step 0: after
    moving the run's progress aside with --restart-from-zero, or where starting over loses nothing."""
    from dqn.checkpoint import Checkpointer

    checkpointer = Checkpointer(files.checkpoints)
    loaded = checkpointer.load_latest()
    if loaded is None:
        if restart_from_zero:
            discard_progress(files)
        else:
            refuse_to_discard_progress(files, checkpointer, hp)
    return loaded


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

    moved = [path for path in (files.train_log, files.snapshots, files.eval,
                               *Checkpointer(files.checkpoints).corrupt_folders())
             if path.exists()]
    if not moved:
        return
    target = files.root / time.strftime("discarded_%Y%m%d-%H%M%S")
    target.mkdir()
    for path in moved:
        path.rename(target / path.name)
    log.warning("--restart-from-zero: moved %s to %s; training from step 0", ", ".join(p.name for p in moved), target)


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


# ---------------------------------------------------------------------------- the final outputs
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


# ---------------------------------------------------------------------------- the disk
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
    network = build_network(hp.network, (history, *FRAME_SHAPE), max_actions)
    weights_bytes = 4 * sum(p.numel() for p in network.parameters())
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
