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

Checksums: zlib's CRC32 (~7 GB/s here, 1.0 s over a 7.06 GB Nature replay; xxhash's xxh3 takes
0.2 s but reading that file from disk takes 2.6 s either way, so the faster hash is not worth a
dependency). A big array's CRC32 is computed over the array in memory while a second thread waits
for its fsync: no re-read, no second copy of the 7 GB frames, and a Nature checkpoint saved in
2.7 s against 3.0 s without checksums (benchmarks/README.md, "Checksums of checkpoints").
Verifying on load reads every file once: 1.3 s from the page cache, 3.8 s from disk.

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

Big arrays bypass pickling: the replay memory's frames (~7 GB for 1M transitions) are written
straight from the memory's own buffer and read back memory-mapped, so neither saving nor
loading holds a second copy in RAM. Loaded arrays are therefore read-only maps: a consumer copies
what it keeps, through `released_chunks`, which hands each mapped page back once copied. Without
that a resume's resident set peaks at the memory plus the whole mapped file (13.8 GiB against
7.0 GiB for a Nature run, benchmarks/README.md), which a scheduler that counts resident pages
against the job's limit can kill.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import mmap
import os
import re
import shutil
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from dqn.errors import UserError

log = logging.getLogger(__name__)

SENTINEL = "COMPLETE"
SENTINEL_FORMAT = 2  # 1: sizes only (read, sizes checked); 2: sizes and CRC32
STATE_FILE = "state.pt"
REJECTED_NOTE = "REJECTED.txt"  # inside a moved-aside folder: why it was rejected
# Arrays at least this big are written as their own .npy file; smaller ones ride in state.pt.
SEPARATE_ARRAY_BYTES = 1 << 20
# Bytes per write, read and checksum call: the per-call cost vanishes (1,700 calls for a Nature
# replay) while a chunk still fits in cache (checksumming each chunk as it was written, 1 GiB here:
# 1-4 MiB chunks alike, 8 MiB 1.3x and 32 MiB 1.6x slower).
CHUNK_BYTES = 4 << 20
_STEP_DIR = re.compile(r"^step_(\d{12})$")
_INCOMPLETE_DIR = re.compile(r"^incomplete_step_(\d{12})$")
_CORRUPT_DIR = re.compile(r"^corrupt_step_(\d{12})(?:\.\d+)?$")
_TEMP_FILE = re.compile(r"^\..*\.tmp$")  # dqn.fileio's temporary names: .{name}.XXXX.tmp
_ARRAY_REF = "__checkpoint_npy__"
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


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ChecksumWriter:
    """A write-only file wrapper that runs every byte written through CRC32 on its way to the file."""

    def __init__(self, f):
        self._f = f
        self.crc32 = 0
        self.bytes = 0

    def write(self, data) -> int:
        view = memoryview(data)
        self.crc32 = zlib.crc32(view, self.crc32)
        self.bytes += view.nbytes
        self._f.write(view)
        return view.nbytes

    def flush(self) -> None:
        self._f.flush()


def _npy_chunks(array: np.ndarray):
    """The bytes of a C-contiguous `array` as CHUNK_BYTES views (no copy)."""
    flat = array.reshape(-1).view(np.uint8)
    for start in range(0, len(flat), CHUNK_BYTES):
        yield flat[start:start + CHUNK_BYTES]


def _write_npy(f, array: np.ndarray) -> bytes:
    """Write `array` (C-contiguous) to `f` in the .npy format of np.save; return the header written.

    The data goes out in views of the array's own buffer: np.save would copy each 16 MiB chunk
    (tobytes) when `f` is not a real file, and the checksum writer is not one.
    """
    buffer = io.BytesIO()
    fields = np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(buffer, fields)
    except ValueError:  # a header over 64 KiB (an enormous shape): the 2.0 format, as np.save does
        np.lib.format.write_array_header_2_0(buffer, fields)
    header = buffer.getvalue()
    f.write(header)
    for chunk in _npy_chunks(array):
        f.write(chunk)
    return header


def write_file_with_crc32(path: Path, write: Callable[[Any], None]) -> tuple[int, int]:
    """Call `write(file)` on a new file at `path`, each byte checksummed on its way; fsync it.
    Returns (bytes, CRC32) of what was written."""
    with open(path, "wb") as f:
        writer = _ChecksumWriter(f)
        write(writer)
        f.flush()
        os.fsync(f.fileno())
    size = path.stat().st_size
    if size != writer.bytes:  # a writer that seeked back and rewrote: checksum the file itself
        return file_crc32(path)
    return size, writer.crc32


def write_npy_with_crc32(path: Path, array: np.ndarray) -> tuple[int, int]:
    """Write `array` (C-contiguous) as a .npy file at `path`, fsynced; return (bytes, CRC32).

    The checksum is taken over the array in memory while a second thread waits for fsync: the
    write itself is a copy into the page cache, the flush to disk leaves the CPU idle, and zlib
    releases the GIL. Here that makes a checksummed 1 GiB write cost what a plain one does,
    against +23-45% for checksumming each chunk as it is written (benchmarks/README.md).
    """
    with open(path, "wb") as f:
        header = _write_npy(f, array)
        f.flush()
        flush_errors: list[OSError] = []

        def flush_to_disk() -> None:
            try:
                os.fsync(f.fileno())
            except OSError as exc:  # e.g. ENOSPC reported only at writeback (NFS, delayed allocation)
                flush_errors.append(exc)

        flushing = threading.Thread(target=flush_to_disk, name="checkpoint-fsync")
        flushing.start()
        try:
            crc = zlib.crc32(header)
            for chunk in _npy_chunks(array):
                crc = zlib.crc32(chunk, crc)
        finally:
            flushing.join()
        if flush_errors:
            raise flush_errors[0]
    size = path.stat().st_size
    if size != len(header) + array.nbytes:
        raise OSError(errno.EIO, f"{size:,} bytes on disk, {len(header) + array.nbytes:,} written", str(path))
    return size, crc


def file_crc32(path: Path, chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int]:
    """(bytes, CRC32) of the file at `path`, read in chunks into one reused buffer."""
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    crc, size = 0, 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            crc = zlib.crc32(view[:n], crc)
            size += n
    return size, crc


def _payload_bytes(tree: Any) -> int:
    """Roughly the bytes `tree` takes in state.pt: its tensors, arrays and byte strings."""
    if isinstance(tree, np.ndarray):
        return tree.nbytes
    if hasattr(tree, "element_size") and hasattr(tree, "numel"):  # a torch.Tensor
        return tree.element_size() * tree.numel()
    if isinstance(tree, (bytes, bytearray, str)):
        return len(tree)
    if isinstance(tree, Mapping):
        return sum(_payload_bytes(k) + _payload_bytes(v) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return sum(_payload_bytes(v) for v in tree)
    return 8


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _first_line(text: str, limit: int = 160) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _split_arrays(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """`tree` with every big ndarray replaced by a reference to `arrays[name]`."""
    if isinstance(tree, np.ndarray) and tree.nbytes >= SEPARATE_ARRAY_BYTES and tree.dtype != object:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", prefix) or "array"
        while name in arrays:
            name += "_"
        arrays[name] = tree
        return {_ARRAY_REF: name}
    if isinstance(tree, Mapping):
        return {k: _split_arrays(v, f"{prefix}.{k}" if prefix else str(k), arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree))
    return tree


def _join_arrays(tree: Any, folder: Path) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY_REF}:
            return np.load(folder / f"{tree[_ARRAY_REF]}.npy", mmap_mode="r", allow_pickle=False)
        return {k: _join_arrays(v, folder) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_arrays(v, folder) for v in tree]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_join_arrays(v, folder) for v in tree)
    return tree


def _file_map(array: np.ndarray) -> mmap.mmap | None:
    """The mmap under `array` (a loaded array or a slice of one), or None for an in-memory array."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def released_chunks(source: np.ndarray, chunk_bytes: int = 64 << 20):
    """Yield (start, stop, source[start:stop]) along the first axis; for a memory-mapped `source`,
    each chunk's pages leave this process's resident set once the consumer has copied it.

    The consumer must copy a chunk before asking for the next one: its pages are dropped then
    (a later read would fault them in again from the file, so nothing is lost, only re-read).
    """
    rows = len(source)
    row_bytes = max(source[:1].nbytes, 1)
    step = max(1, chunk_bytes // row_bytes)
    file_map = _file_map(source) if source.flags.c_contiguous else None
    offset = 0
    if file_map is not None:
        # Where the array's data starts inside the mapping (numpy aligns the map, not the array).
        map_start = np.frombuffer(file_map, dtype=np.uint8).__array_interface__["data"][0]
        offset = source.__array_interface__["data"][0] - map_start
    released = 0  # bytes of the mapping already handed back, a multiple of the page size
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        yield start, stop, source[start:stop]
        if file_map is not None and hasattr(mmap, "MADV_DONTNEED"):
            end = offset + stop * row_bytes
            until = end if stop == rows else end - end % mmap.PAGESIZE
            if until > released:
                file_map.madvise(mmap.MADV_DONTNEED, released, until - released)
                released = until


class Checkpointer:
    """Writes, verifies, loads and prunes the checkpoints of one run under `root`.

    The caller's protocol (dqn/train.py):

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
    def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
        """The sentinel's files as {name: {"bytes": int, "crc32": int | None}}; ValueError if malformed."""
        document = json.loads((folder / SENTINEL).read_text())
        files = document["files"] if isinstance(document, dict) else None
        if not isinstance(files, dict) or STATE_FILE not in files:
            raise ValueError(f"no file list with {STATE_FILE}")
        manifest = {}
        for name, entry in files.items():
            if isinstance(entry, int):  # format 1: the size alone
                entry = {"bytes": entry}
            bad_name = "/" in name or name.startswith(".")
            if bad_name or not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int):
                raise ValueError(f"bad entry for {name!r}")
            crc = int(entry["crc32"], 16) if "crc32" in entry else None
            manifest[name] = {"bytes": entry["bytes"], "crc32": crc}
        return manifest

    @classmethod
    def is_complete(cls, folder: Path) -> bool:
        """True when the sentinel exists and every file it lists has the size it records (no checksums: cheap)."""
        try:
            manifest = cls._manifest(folder)
            return all((folder / name).stat().st_size == entry["bytes"] for name, entry in manifest.items())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    @classmethod
    def verify(cls, folder: Path) -> str | None:
        """None when every file the sentinel lists has its recorded size and CRC32; else what failed, in a few words.

        Reads every file once: 3.8 s for a Nature checkpoint from disk, 1.3 s from the page cache
        (benchmarks/README.md).
        """
        try:
            manifest = cls._manifest(folder)
        except FileNotFoundError:
            return f"no {SENTINEL} sentinel"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"{SENTINEL} sentinel malformed ({_first_line(str(exc), 80)})"
        for name, entry in manifest.items():
            path = folder / name
            try:
                size = path.stat().st_size
                if size != entry["bytes"]:
                    return f"{name} is {size:,} bytes, {SENTINEL} says {entry['bytes']:,}"
                if entry["crc32"] is not None and file_crc32(path)[1] != entry["crc32"]:
                    return f"{name} checksum mismatch"
            except FileNotFoundError:
                return f"{name} missing"
            except OSError as exc:
                return f"{name} unreadable ({exc.strerror or exc})"
        return None

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
            for folder in [self.root] + [path for _, path in self._step_dirs()]:
                for path in folder.iterdir():
                    if _TEMP_FILE.match(path.name) and path.is_file():
                        log.warning("removing stale temporary file %s", path)
                        path.unlink(missing_ok=True)
                        removed.append(path)
        return removed

    # ------------------------------------------------------------------ writing
    @staticmethod
    def estimate_bytes(state: Mapping[str, Any]) -> int:
        """Disk bytes one checkpoint of `state` will take, within about 1 MiB (pickling overhead)."""
        arrays: dict[str, np.ndarray] = {}
        tree = _split_arrays(dict(state), "", arrays)
        npy_header_bytes = 128  # np.save pads the header to a multiple of 64; 128 for any usual shape
        return sum(a.nbytes + npy_header_bytes for a in arrays.values()) + _payload_bytes(tree) + (1 << 20)

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
            _fsync_path(self.root)
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
        from dqn import fileio

        arrays: dict[str, np.ndarray] = {}
        tree = _split_arrays(dict(state), "", arrays)
        files: dict[str, dict[str, Any]] = {}
        for array_name, array in arrays.items():
            path = folder / f"{array_name}.npy"
            size, crc = write_npy_with_crc32(path, np.ascontiguousarray(array))
            files[path.name] = {"bytes": size, "crc32": f"{crc:08x}"}
        size, crc = write_file_with_crc32(folder / STATE_FILE, lambda f: fileio.torch_save(tree, f))
        files[STATE_FILE] = {"bytes": size, "crc32": f"{crc:08x}"}
        _fsync_path(folder)
        # The sentinel, under a temporary name first so that it is whole or absent.
        document = {"format": SENTINEL_FORMAT, "agent_steps": int(agent_steps), "checksum": "crc32",
                    "files": files}
        tmp = folder / f".{SENTINEL}.tmp"
        with open(tmp, "w") as f:
            json.dump(document, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, folder / SENTINEL)
        _fsync_path(folder)
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
            _fsync_path(self.root)
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
                    reason = f"{STATE_FILE} does not load ({type(exc).__name__}: {_first_line(str(exc), 100)})"
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
                    reason = _first_line((path / REJECTED_NOTE).read_text())
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
        return _join_arrays(tree, folder)

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
