"""Complete-or-ignored checkpoints: files first, a sentinel last (Dopamine's scheme).

A checkpoint is the folder `ROOT/step_{agent_steps:012d}/`:

    state.pt            torch.save of the state tree, big arrays replaced by references
    <key.path>.npy      each big numpy array, uncompressed (np.save), e.g. replay.frames.npy
    COMPLETE            written last: JSON with the step and every file's size

Every file is fsynced, then the folder, and only then is `COMPLETE` written (and fsynced), so a
process killed at any moment leaves either a complete checkpoint or a folder without a sentinel.
On load the newest folder with a valid sentinel wins and folders without one are removed; once
a new checkpoint is complete the older ones are removed.

Big arrays bypass pickling: the replay memory's frames (~7 GB for 1M transitions) are written by
np.save straight from the memory's own buffer and read back memory-mapped, so neither saving nor
loading holds a second copy in RAM. Loaded arrays are therefore read-only maps: a consumer copies
what it keeps, through `released_chunks`, which hands each mapped page back once copied. Without
that a resume's resident set peaks at the memory plus the whole mapped file (13.8 GiB against
7.0 GiB for a Nature run, benchmarks/README.md), which a scheduler that counts resident pages
against the job's limit can kill.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger(__name__)

SENTINEL = "COMPLETE"
STATE_FILE = "state.pt"
# Arrays at least this big are written as their own .npy file; smaller ones ride in state.pt.
SEPARATE_ARRAY_BYTES = 1 << 20
_STEP_DIR = re.compile(r"^step_(\d{12})$")
_ARRAY_REF = "__checkpoint_npy__"


def step_dir_name(agent_steps: int) -> str:
    return f"step_{agent_steps:012d}"


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """Writes, finds, loads and prunes the checkpoints of one run under `root`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ------------------------------------------------------------------ finding
    def _step_dirs(self) -> list[tuple[int, Path]]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return sorted(found)

    @staticmethod
    def is_complete(folder: Path) -> bool:
        """True when the sentinel exists and every file it lists has the size it records."""
        try:
            manifest = json.loads((folder / SENTINEL).read_text())
            return all((folder / name).stat().st_size == size for name, size in manifest["files"].items())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        for _, path in reversed(self._step_dirs()):
            if self.is_complete(path):
                return path
        return None

    def remove_incomplete(self) -> list[Path]:
        """Delete every checkpoint folder without a valid sentinel (a save cut short)."""
        removed = []
        for _, path in self._step_dirs():
            if not self.is_complete(path):
                log.warning("removing incomplete checkpoint %s", path)
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    # ------------------------------------------------------------------ writing
    def save(self, agent_steps: int, state: Mapping[str, Any]) -> Path:
        """Write `state` as the checkpoint of `agent_steps`, then remove every other checkpoint.

        A complete checkpoint of the same step is kept as it is: the training state at one agent
        step is the same whenever it is saved.
        """
        folder = self.root / step_dir_name(agent_steps)
        if self.is_complete(folder):
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

        import torch

        arrays: dict[str, np.ndarray] = {}
        tree = _split_arrays(dict(state), "", arrays)
        sizes: dict[str, int] = {}
        for name, array in arrays.items():
            path = folder / f"{name}.npy"
            with open(path, "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            sizes[path.name] = path.stat().st_size
        path = folder / STATE_FILE
        with open(path, "wb") as f:
            torch.save(tree, f)
            f.flush()
            os.fsync(f.fileno())
        sizes[path.name] = path.stat().st_size
        _fsync_path(folder)

        # The sentinel: its presence (with matching sizes) is what makes the folder a checkpoint.
        sentinel = folder / SENTINEL
        with open(sentinel, "w") as f:
            json.dump({"agent_steps": int(agent_steps), "files": sizes}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_path(folder)
        _fsync_path(self.root)

        for _, other in self._step_dirs():
            if other != folder:
                shutil.rmtree(other, ignore_errors=True)
        return folder

    # ------------------------------------------------------------------ reading
    def load_latest(self) -> tuple[Path, dict[str, Any]] | None:
        """(folder, state) of the newest complete checkpoint, after removing incomplete ones; None if none."""
        self.remove_incomplete()
        folder = self.latest()
        if folder is None:
            return None
        return folder, self.load(folder)

    @staticmethod
    def load(folder: Path) -> dict[str, Any]:
        import torch

        # Our own file, holding numpy RNG states and plain Python objects besides tensors.
        tree = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
        return _join_arrays(tree, folder)

    def remove_all(self) -> None:
        """Delete the checkpoints (a finished run no longer needs them: they hold the whole replay)."""
        for _, path in self._step_dirs():
            shutil.rmtree(path, ignore_errors=True)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
