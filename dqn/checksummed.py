"""Checksummed files, written once and fsynced, and memory-mapped arrays handed back page by page:
the byte layer under dqn/checkpoint.py's store, and under the replay memory's resume.

A folder of such files is whole when its sentinel (`COMPLETE`: JSON listing every file's size
and CRC32) is there and matches (`write_sentinel`, `sizes_match`, `verify_folder`); a tree of
state with big numpy arrays is pickled with each big array as a .npy file of its own
(`split_arrays`, `join_arrays`). Which folders exist, and how many, is the store's business.

Checksums: zlib's CRC32 (~7 GB/s here, 1.0 s over a 7.06 GB Nature replay; xxhash's xxh3 takes
0.2 s but reading that file from disk takes 2.6 s either way, so the faster hash is not worth a
dependency). A big array's CRC32 is computed over the array in memory while a second thread waits
for its fsync: no re-read, no second copy of the 7 GB frames, and a Nature checkpoint saved in
2.7 s against 3.0 s without checksums (benchmarks/README.md, "Checksums of checkpoints").
Verifying on load reads every file once: 1.3 s from the page cache, 3.8 s from disk.

Big arrays bypass pickling: the replay memory's frames (~7 GB for 1M transitions) are written
straight from the memory's own buffer (`write_npy_with_crc32`) and read back memory-mapped, so
neither saving nor loading holds a second copy in RAM. Loaded arrays are therefore read-only
maps: a consumer copies what it keeps, through `released_chunks`, which hands each mapped page
back once copied. Without that a resume's resident set peaks at the memory plus the whole mapped
file (13.8 GiB against 7.0 GiB for a Nature run, benchmarks/README.md), which a scheduler that
counts resident pages against the job's limit can kill.
"""

from __future__ import annotations

import errno
import io
import json
import mmap
import os
import re
import threading
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from dqn import fileio

# Bytes per write, read and checksum call: the per-call cost vanishes (1,700 calls for a Nature
# replay) while a chunk still fits in cache (checksumming each chunk as it was written, 1 GiB here:
# 1-4 MiB chunks alike, 8 MiB 1.3x and 32 MiB 1.6x slower).
CHUNK_BYTES = 4 << 20
SENTINEL = "COMPLETE"
SENTINEL_FORMAT = 2  # 1: sizes only (read, sizes checked); 2: sizes and CRC32
# Arrays at least this big are written as their own .npy file; smaller ones ride in the pickle.
SEPARATE_ARRAY_BYTES = 1 << 20
ARRAY_REF = "__checkpoint_npy__"  # the stand-in of a separate array in the pickled tree


def fsync_path(path: Path) -> None:
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


# ---------------------------------------------------------------------------- a folder's sentinel
def write_sentinel(folder: Path, document: dict[str, Any]) -> None:
    """The sentinel of `folder` (its "files" entry lists every file's bytes and CRC32), written
    whole or not at all, and the folder fsynced."""
    fileio.atomic_write(folder / SENTINEL, lambda tmp: tmp.write_text(json.dumps(document, indent=1)))
    fsync_path(folder)


def read_manifest(folder: Path, required: str) -> dict[str, dict[str, Any]]:
    """The sentinel's files as {name: {"bytes": int, "crc32": int | None}}; ValueError if malformed
    or if it does not list `required`."""
    document = json.loads((folder / SENTINEL).read_text())
    files = document["files"] if isinstance(document, dict) else None
    if not isinstance(files, dict) or required not in files:
        raise ValueError(f"no file list with {required}")
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


def sizes_match(folder: Path, required: str) -> bool:
    """True when the sentinel exists and every file it lists has the size it records (no checksums: cheap)."""
    try:
        manifest = read_manifest(folder, required)
        return all((folder / name).stat().st_size == entry["bytes"] for name, entry in manifest.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def verify_folder(folder: Path, required: str) -> str | None:
    """None when every file the sentinel lists has its recorded size and CRC32; else what failed, in a few words."""
    try:
        manifest = read_manifest(folder, required)
    except FileNotFoundError:
        return f"no {SENTINEL} sentinel"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{SENTINEL} sentinel malformed ({first_line(str(exc), 80)})"
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


def first_line(text: str, limit: int = 160) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


# ---------------------------------------------------------------------------- a tree's big arrays
def split_arrays(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """`tree` with every big ndarray replaced by a reference to `arrays[name]`."""
    if isinstance(tree, np.ndarray) and tree.nbytes >= SEPARATE_ARRAY_BYTES and tree.dtype != object:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", prefix) or "array"
        while name in arrays:
            name += "_"
        arrays[name] = tree
        return {ARRAY_REF: name}
    if isinstance(tree, Mapping):
        return {k: split_arrays(v, f"{prefix}.{k}" if prefix else str(k), arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree))
    return tree


def join_arrays(tree: Any, folder: Path) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {ARRAY_REF}:
            return np.load(folder / f"{tree[ARRAY_REF]}.npy", mmap_mode="r", allow_pickle=False)
        return {k: join_arrays(v, folder) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_arrays(v, folder) for v in tree]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(join_arrays(v, folder) for v in tree)
    return tree


def payload_bytes(tree: Any) -> int:
    """Roughly the bytes `tree` takes in state.pt: its tensors, arrays and byte strings."""
    if isinstance(tree, np.ndarray):
        return tree.nbytes
    if hasattr(tree, "element_size") and hasattr(tree, "numel"):  # a torch.Tensor
        return tree.element_size() * tree.numel()
    if isinstance(tree, (bytes, bytearray, str)):
        return len(tree)
    if isinstance(tree, Mapping):
        return sum(payload_bytes(k) + payload_bytes(v) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return sum(payload_bytes(v) for v in tree)
    return 8
