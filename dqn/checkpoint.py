"""Verified checkpoints in two generations: files first, a sentinel with checksums, then a rename.

A checkpoint is the folder `ROOT/step_{agent_steps:012d}/`:

    state.pt            torch.save of the state tree, big arrays replaced by references
    <key.path>.npy      each big numpy array, uncompressed (.npy format), e.g. replay.frames.npy
    COMPLETE            JSON: the step, and every file's size and CRC32

Writing (`save`): every file goes into `ROOT/incomplete_step_.../`, is fsynced, then the sentinel
`COMPLETE`, and only then is the folder renamed to `step_...` (and ROOT fsynced). A process
killed at any moment therefore leaves either a complete checkpoint or an `incomplete_` folder,
which the next save or `remove_incomplete` deletes; a `step_` folder whose files do not match its
sentinel has been damaged after it was written.

Checksums (CRC32, taken while the data is written) and the byte-level writing are
dqn/checksummed.py's; this module is the store's policy on top of them.

Two generations: the previous complete checkpoint is kept until the next one is complete; then
everything but those two is removed. So a damaged newest checkpoint still leaves one to resume
from. Disk: three generations during a save (two complete, one being written), two between
saves. When the disk has no room for the third, `save` first drops the older complete
generation (never the only one) and raises `CheckpointWriteError` if even that is not enough.

Loading (`load_latest`): the newest `step_` folder is verified (sentinel, sizes, CRC32 of every
file), then loaded; if anything fails (a file zero-filled, truncated, a flipped byte, the
sentinel missing or malformed, state.pt that does not unpickle), the folder is renamed to
`corrupt_step_...` with a note `REJECTED.txt` saying why (never deleted: the user can inspect
it, or move it back if the cause was, say, a torch version that cannot read it), one warning is
logged, and the previous generation is tried. Moved-aside folders stay until the user deletes
them: while any is there and no valid checkpoint is, `check_fresh_start` refuses, so a run never
silently restarts from zero over checkpoints it could not read.

Big arrays bypass pickling: each is its own .npy file, written from the array's own buffer and
loaded back memory-mapped (read-only; dqn/checksummed.py's `released_chunks` copies them out).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dqn import fileio
# CHUNK_BYTES, _write_npy, _split_arrays, file_crc32 and the writers are read here by
# benchmarks/checksum.py too.
from dqn.checksummed import (  # noqa: F401
    CHUNK_BYTES,
    SENTINEL,
    SENTINEL_FORMAT,
    _write_npy,
    file_crc32,
    first_line,
    fsync_path,
    join_arrays,
    payload_bytes,
    released_chunks,
    sizes_match,
    split_arrays,
    verify_folder,
    write_file_with_crc32,
    write_npy_with_crc32,
    write_sentinel,
)
from dqn.checksummed import split_arrays as _split_arrays  # noqa: F401
from dqn.errors import UserError

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
REJECTED_NOTE = "REJECTED.txt"  # inside a moved-aside folder: why it was rejected
_STEP_DIR = re.compile(r"^step_(\d{12})$")
_INCOMPLETE_DIR = re.compile(r"^incomplete_step_(\d{12})$")
_CORRUPT_DIR = re.compile(r"^corrupt_step_(\d{12})(?:\.\d+)?$")
_FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (a full disk, an I/O error); the previous one is intact."""


class NoValidCheckpointError(UserError):
    """Checkpoints exist but none passed verification: resuming is impossible, restarting would discard them."""


@dataclass(frozen=True)
class Rejection:
    """A checkpoint that failed verification: where it was, why, and where it was moved (None: left in place)."""

    folder: Path
    reason: str
    moved_to: Path | None


def step_dir_name(agent_steps: int) -> str:
    return f"step_{agent_steps:012d}"

def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


class Checkpointer:
    """Writes, verifies, loads and prunes the checkpoints of one run under `root`.

    The caller's protocol (dqn/run_lifecycle.py and dqn/loop.py):

        ckpt = Checkpointer(root)
        loaded = ckpt.load_latest()        # (folder, state) of the newest checkpoint that verifies
        if loaded is None:
            ckpt.check_fresh_start()       # NoValidCheckpointError (a UserError) if checkpoints were
                                           # there but none verified: refuse, never restart from zero
        ...
        ckpt.save(agent_steps, state)      # CheckpointWriteError (a UserError) on a full disk
        ...
        ckpt.remove_all()                  # at the end; moved-aside corrupt folders are kept

    After `load_latest`, `rejected` lists the folders it found damaged in that call (with the
    reason and where each was moved); `corrupt_folders()` lists every moved-aside folder present,
    from this call or earlier ones. `last_save_bytes` holds the size of the generation written by
    the last `save`; `estimate_bytes(state)` gives it before writing.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.rejected: list[Rejection] = []
        self.last_save_bytes: int | None = None

    # ------------------------------------------------------------------ finding
    def _folders(self, pattern: re.Pattern) -> list[tuple[int, Path]]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = pattern.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _step_dirs(self) -> list[tuple[int, Path]]:
        return self._folders(_STEP_DIR)

    def corrupt_folders(self) -> list[Path]:
        """Folders moved aside as damaged (`corrupt_step_...`), oldest step first; kept until the user deletes them."""
        return [path for _, path in self._folders(_CORRUPT_DIR)]

    @staticmethod
    def is_complete(folder: Path) -> bool:
        """True when the sentinel exists and every file it lists has the size it records (no checksums: cheap)."""
        return sizes_match(folder, STATE_FILE)

    @staticmethod
    def verify(folder: Path) -> str | None:
        """None when every file the sentinel lists has its recorded size and CRC32; else what failed, in a few words.

        Reads every file once: 3.8 s for a Nature checkpoint from disk, 1.3 s from the page cache
        (benchmarks/README.md).
        """
        return verify_folder(folder, STATE_FILE)

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder (sizes checked, not checksums), or None."""
        for _, path in reversed(self._step_dirs()):
            if self.is_complete(path):
                return path
        return None

    def remove_incomplete(self) -> list[Path]:
        """Delete what interrupted writes left: `incomplete_step_...` folders and temporary files
        (`.NAME.XXXX.tmp`) in ROOT and in checkpoint folders. Run it before a free-space check.

        A `step_` folder is never removed here, even without a sentinel: it was complete when
        renamed, so a missing sentinel is damage, which `load_latest` moves aside.
        """
        removed = []
        for _, path in self._folders(_INCOMPLETE_DIR):
            log.warning("removing incomplete checkpoint %s (a save that was cut short)", path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        if self.root.is_dir():
            # The one cleanup of temporaries (dqn/fileio.py): it skips any that a live writer
            # still holds under its flock.
            for folder in [self.root] + [path for _, path in self._step_dirs()]:
                for path in fileio.remove_stale_temporaries(folder, recursive=False, min_age_seconds=0.0):
                    log.warning("removing stale temporary file %s", path)
                    removed.append(path)
        return removed

    # ------------------------------------------------------------------ writing
    @staticmethod
    def estimate_bytes(state: Mapping[str, Any]) -> int:
        """Disk bytes one checkpoint of `state` will take, within about 1 MiB (pickling overhead)."""
        arrays: dict[str, np.ndarray] = {}
        tree = split_arrays(dict(state), "", arrays)
        npy_header_bytes = 128  # np.save pads the header to a multiple of 64; 128 for any usual shape
        return sum(a.nbytes + npy_header_bytes for a in arrays.values()) + payload_bytes(tree) + (1 << 20)

    def save(self, agent_steps: int, state: Mapping[str, Any]) -> Path:
        """Write `state` as the checkpoint of `agent_steps`; once it is complete, keep it and the
        previous complete one and remove every other `step_` folder.

        A complete checkpoint of the same step is kept as it is: the training state at one agent
        step is the same whenever it is saved. If the disk has less free space than
        `estimate_bytes(state)`, the oldest generations beyond the newest complete one are dropped
        first. Any failure (OSError, or anything else raised while writing) removes this save's
        own folder and leaves the existing checkpoints as they were; an OSError is raised as
        CheckpointWriteError, one line saying what filled up and the bytes needed and free.
        """
        name = step_dir_name(agent_steps)
        folder = self.root / name
        if self.is_complete(folder):
            return folder
        self.remove_incomplete()
        incomplete = self.root / f"incomplete_{name}"
        needed = self.estimate_bytes(state)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._make_room(needed, name)
            incomplete.mkdir()
            sizes = self._write_files(incomplete, agent_steps, state)
            if folder.exists():  # a damaged checkpoint of this very step: out of the way, kept
                self._move_aside(folder, "its files did not match its sentinel; a new save of its step replaced it")
            os.rename(incomplete, folder)
            fsync_path(self.root)
        except OSError as exc:
            shutil.rmtree(incomplete, ignore_errors=True)
            raise CheckpointWriteError(self._write_error(exc, name, needed)) from exc
        except BaseException:
            shutil.rmtree(incomplete, ignore_errors=True)
            raise
        self.last_save_bytes = sum(entry["bytes"] for entry in sizes.values())
        self._prune(keep=folder, agent_steps=agent_steps)
        return folder

    def _write_files(self, folder: Path, agent_steps: int, state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Every file of the checkpoint, then the sentinel; returns the sentinel's file entries."""

        arrays: dict[str, np.ndarray] = {}
        tree = split_arrays(dict(state), "", arrays)
        files: dict[str, dict[str, Any]] = {}
        for array_name, array in arrays.items():
            path = folder / f"{array_name}.npy"
            size, crc = write_npy_with_crc32(path, np.ascontiguousarray(array))
            files[path.name] = {"bytes": size, "crc32": f"{crc:08x}"}
        size, crc = write_file_with_crc32(folder / STATE_FILE, lambda f: fileio.torch_save(tree, f))
        files[STATE_FILE] = {"bytes": size, "crc32": f"{crc:08x}"}
        fsync_path(folder)
        write_sentinel(folder, {"format": SENTINEL_FORMAT, "agent_steps": int(agent_steps), "checksum": "crc32",
                                "files": files})
        return files

    def _make_room(self, needed_bytes: int, name: str) -> None:
        """Drop complete generations older than the newest one while the disk cannot hold `needed_bytes` more."""
        complete = [path for _, path in self._step_dirs() if self.is_complete(path)]
        for older in complete[:-1]:
            free = shutil.disk_usage(self.root).free
            if free >= needed_bytes:
                return
            log.warning("%s free under %s, %s needed for %s: removing the older checkpoint %s first",
                        f"{free:,}", self.root, f"{needed_bytes:,}", name, older.name)
            shutil.rmtree(older, ignore_errors=True)
        free = shutil.disk_usage(self.root).free
        if free < needed_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root))

    def _write_error(self, exc: OSError, name: str, needed_bytes: int) -> str:
        previous = self.latest()
        kept = f"the previous checkpoint {previous.name} is intact" if previous else "no earlier checkpoint exists"
        try:
            free = f"{shutil.disk_usage(self.root).free:,}"
        except OSError:
            free = "unknown"
        if exc.errno in _FULL_DISK_ERRNOS:
            return (f"checkpoint {name} not written: the file system at {_mount_point(self.root)} "
                    f"(holding {self.root}) is full ({exc.strerror}): {needed_bytes:,} bytes needed, {free} bytes free; {kept}; "
                    "free space there and rerun")
        return (f"checkpoint {name} not written under {self.root}: {exc.strerror or exc}"
                f"{f' ({exc.filename})' if exc.filename else ''}; {kept}; fix that and rerun")

    def _prune(self, keep: Path, agent_steps: int) -> None:
        """Remove every `step_` folder but `keep` and the newest complete one before it."""
        older = [path for step, path in self._step_dirs() if step < agent_steps and self.is_complete(path)]
        previous = older[-1] if older else None
        for _, path in self._step_dirs():
            if path not in (keep, previous):
                if not self.is_complete(path):  # damage found only now; a newer checkpoint supersedes it
                    log.warning("removing damaged checkpoint %s (its files do not match its sentinel); "
                                "%s supersedes it", path, keep.name)
                shutil.rmtree(path, ignore_errors=True)

    def _move_aside(self, folder: Path, reason: str) -> Path | None:
        """Rename a damaged checkpoint to `corrupt_<name>` (a free suffix if taken), with a note of why."""
        target = self.root / f"corrupt_{folder.name}"
        suffix = 1
        while target.exists():
            suffix += 1
            target = self.root / f"corrupt_{folder.name}.{suffix}"
        try:
            os.rename(folder, target)
            fsync_path(self.root)
        except OSError as exc:
            log.warning("could not move the damaged checkpoint %s aside: %s", folder, exc)
            return None
        try:
            (target / REJECTED_NOTE).write_text(f"{reason}\n")
        except OSError:
            pass  # the note is a convenience; the log has the reason too
        return target

    # ------------------------------------------------------------------ reading
    def load_latest(self) -> tuple[Path, dict[str, Any]] | None:
        """(folder, state) of the newest checkpoint that verifies and loads; None if there is none.

        Removes incomplete writes first. Each newer checkpoint that fails verification or whose
        state.pt does not load is moved aside (`corrupt_step_...`), logged with one warning, and
        recorded in `self.rejected`; the previous generation is tried next. None with
        `self.rejected` (or `corrupt_folders()`) non-empty means checkpoints existed but none
        was valid: call `check_fresh_start()` before starting from zero.
        """
        self.rejected = []
        self.remove_incomplete()
        loaded = None
        for _, folder in reversed(self._step_dirs()):
            reason = self.verify(folder)
            if reason is None:
                try:
                    loaded = folder, self.load(folder)
                    break
                except Exception as exc:  # any unpickling failure is damage, not a crash
                    reason = f"{STATE_FILE} does not load ({type(exc).__name__}: {first_line(str(exc), 100)})"
            self.rejected.append(Rejection(folder, reason, self._move_aside(folder, reason)))
        outcome = f"using {loaded[0].name}" if loaded else "no valid checkpoint is left"
        for r in self.rejected:
            where = f"moved aside to {r.moved_to.name}" if r.moved_to else "left in place"
            log.warning("checkpoint %s: %s; %s; %s", r.folder, r.reason, where, outcome)
        return loaded

    def check_fresh_start(self) -> None:
        """Raise NoValidCheckpointError if damaged checkpoints are present and no valid one is.

        For the caller about to start from zero because `load_latest` returned None: a run whose
        checkpoints were all damaged must not silently start over. The error's line names the
        folders and reasons and says how to proceed (delete them to restart from zero).
        """
        rejected = {r.folder for r in self.rejected}
        if any(self.is_complete(path) for _, path in self._step_dirs() if path not in rejected):
            return
        reasons = {r.moved_to or r.folder: r.reason for r in self.rejected}
        folders = list(dict.fromkeys(self.corrupt_folders() + list(reasons)))
        if not folders:
            return
        described = []
        for path in folders:
            reason = reasons.get(path)
            if reason is None:
                try:
                    reason = first_line((path / REJECTED_NOTE).read_text())
                except OSError:
                    reason = "rejected earlier"
            described.append(f"{path.name} ({reason})")
        raise NoValidCheckpointError(
            f"no valid checkpoint under {self.root}, only damaged ones: {'; '.join(described)}; inspect them, "
            "then delete them to start this run again from zero (or use a new --out)")

    @staticmethod
    def load(folder: Path) -> dict[str, Any]:
        """The state saved in `folder`, unverified (`load_latest` verifies); big arrays as read-only memory maps."""
        import torch

        # Our own file, holding numpy RNG states and plain Python objects besides tensors.
        tree = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
        return join_arrays(tree, folder)

    def remove_all(self) -> None:
        """Delete the checkpoints (a finished run no longer needs them: they hold the whole replay).

        Damaged folders moved aside are kept for the user to inspect, with a warning; ROOT is
        removed when nothing else is left in it.
        """
        for _, path in self._step_dirs() + self._folders(_INCOMPLETE_DIR):
            shutil.rmtree(path, ignore_errors=True)
        corrupt = self.corrupt_folders()
        if corrupt:
            log.warning("kept %d damaged checkpoint folder(s) for inspection: %s; delete them when done",
                        len(corrupt), ", ".join(str(p) for p in corrupt))
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
