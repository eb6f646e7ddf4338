"""Checksums of checkpoints: how fast CRC32 (zlib) and xxh3 (xxhash, if installed) hash, and what
the checksum adds to writing and verifying a checkpoint.

    python -m benchmarks.checksum [--size-gib 1] [--rounds 3] [--checkpoint-transitions 0] [--dir DIR]

On one file of --size-gib of random bytes (in --dir, default $TMPDIR), the median over --rounds:
- hash in memory: the hash alone over the bytes in RAM, in dqn.checkpoint.CHUNK_BYTES chunks;
- hash the file, page cache: re-read in chunks into one buffer and hashed (dqn.checkpoint.file_crc32);
- hash the file, from disk: the same after the file's pages are dropped (posix_fadvise DONTNEED):
  what `load_latest`'s verification costs on a resume after a reboot;
- write, no checksum: np.save to the file, flushed and fsynced (the checkpoint's writer before
  checksums);
- write, CRC32 during fsync: dqn.checkpoint.write_npy_with_crc32, as `Checkpointer.save` writes
  its arrays: the checksum over the array in memory while a second thread waits for fsync;
- write, CRC32 of each chunk as written: each chunk checksummed on its way to the file
  (dqn.checkpoint.write_file_with_crc32, as state.pt is written);
- write, then re-read for CRC32: the plain write followed by file_crc32 from the page cache.
Each row gives GB/s (1 GB = 10^9 bytes) and the seconds projected for a Nature replay of 7.06 GB
(1M transitions x 7,066 bytes); write rows also their cost over the plain write.

--checkpoint-transitions N adds a real `Checkpointer.save` of a replay of N transitions (its
arrays, 7,066 bytes a transition) and a Nature learner, against the same state written as before
checksums (np.save and torch.save, each fsynced), alternating which goes first; then
`Checkpointer.verify` of that checkpoint from the page cache and from disk. It needs N x 7,066
bytes of memory and of disk (1,000,000: 7.1 GB each); every file is deleted after it is timed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmarks.common import print_table
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("measure", "hash", "GB/s", "seconds for this file", "projected seconds, 7.06 GB replay", "vs plain write %")
NATURE_REPLAY_BYTES = 1_000_000 * 7_066


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.checksum", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gib", type=float, default=1.0, help="size of the test file in GiB")
    p.add_argument("--rounds", type=int, default=3, help="repetitions of each measurement (the median is shown)")
    p.add_argument("--checkpoint-transitions", type=int, default=0,
                   help="also time a real checkpoint save of a replay of this many transitions (0: skip)")
    p.add_argument("--dir", default=None, help="folder for the test files (default: $TMPDIR or /tmp)")
    return p


def hashers() -> dict[str, Callable[[], Any]]:
    """Streaming hashers by name: each returns an object with update(bytes)."""

    class Crc32:
        def __init__(self):
            self.value = 0

        def update(self, data) -> None:
            self.value = zlib.crc32(data, self.value)

    found: dict[str, Callable[[], Any]] = {"zlib.crc32": Crc32}
    try:
        import xxhash

        found["xxhash.xxh3_64"] = xxhash.xxh3_64
    except ImportError:
        pass
    return found


def drop_cached_pages(path: Path) -> None:
    """Evict the file's clean pages from the page cache, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def hash_memory(data: np.ndarray, new_hasher: Callable[[], Any]) -> float:
    from dqn.checkpoint import CHUNK_BYTES

    started = time.perf_counter()
    h = new_hasher()
    for start in range(0, len(data), CHUNK_BYTES):
        h.update(data[start:start + CHUNK_BYTES])
    return time.perf_counter() - started


def hash_file(path: Path, new_hasher: Callable[[], Any]) -> float:
    from dqn.checkpoint import CHUNK_BYTES

    started = time.perf_counter()
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    h = new_hasher()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            h.update(view[:n])
    return time.perf_counter() - started


def plain_write(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def file_rows(folder: Path, size_bytes: int, rounds: int) -> list[list]:
    from dqn.checkpoint import _write_npy, file_crc32, write_file_with_crc32, write_npy_with_crc32

    data = np.random.default_rng(0).integers(0, 256, size_bytes, dtype=np.uint8)
    path = folder / "data.npy"
    plain_write(path, data)
    file_bytes = path.stat().st_size
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        for name, new_hasher in hashers().items():
            times.setdefault(("hash in memory", name), []).append(hash_memory(data, new_hasher))
            hash_file(path, new_hasher)  # the file's pages in the cache
            times.setdefault(("hash the file, page cache", name), []).append(hash_file(path, new_hasher))
            drop_cached_pages(path)
            times.setdefault(("hash the file, from disk", name), []).append(hash_file(path, new_hasher))
        # The four ways to write, in an order that rotates from round to round (the disk's state drifts).
        writes = [("write, no checksum", "", lambda: plain_write(path, data)),
                  ("write, CRC32 during fsync", "zlib.crc32", lambda: write_npy_with_crc32(path, data)),
                  ("write, CRC32 of each chunk as written", "zlib.crc32",
                   lambda: write_file_with_crc32(path, lambda f: _write_npy(f, data))),
                  ("write, then re-read for CRC32", "zlib.crc32", lambda: (plain_write(path, data), file_crc32(path)))]
        for measure, name, write in writes[r % 4:] + writes[:r % 4]:
            path.unlink()
            times.setdefault((measure, name), []).append(timed(write))
    path.unlink()

    plain = statistics.median(times[("write, no checksum", "")])
    rows = []
    for (measure, name), seconds in times.items():
        s = statistics.median(seconds)
        overhead: Any = float("nan")
        if measure.startswith("write,"):
            overhead = 100.0 * (s / plain - 1.0) if name else "baseline"
        rows.append([measure, name or "none", file_bytes / s / 1e9, s, s * NATURE_REPLAY_BYTES / file_bytes, overhead])
    return rows


def replay_state(transitions: int) -> dict[str, Any]:
    """A checkpoint's state with a full replay of `transitions` (the memory's arrays) and a Nature learner."""
    from dqn.agent import Learner
    from dqn.config import NATURE

    pool = np.random.default_rng(0).integers(0, 256, (256, 84, 84), dtype=np.uint8)
    frames = np.empty((transitions, 84, 84), dtype=np.uint8)
    for start in range(0, transitions, 256):
        frames[start:start + 256] = pool[:transitions - start]
    replay = {"frames": frames, "actions": np.zeros(transitions, np.int32), "rewards": np.zeros(transitions, np.float32),
              "terminals": np.zeros(transitions, bool), "episode_starts": np.zeros(transitions, bool)}
    return {"replay": replay, "learner": Learner(NATURE, 4, device="cpu").state_dict()}


def save_before_checksums(folder: Path, state: dict[str, Any]) -> None:
    """The checkpoint writer before checksums: np.save of each big array and torch.save, each fsynced."""
    import torch

    from dqn.checkpoint import _split_arrays

    folder.mkdir()
    arrays: dict[str, np.ndarray] = {}
    tree = _split_arrays(state, "", arrays)
    for name, array in arrays.items():
        plain_write(folder / f"{name}.npy", array)
    with open(folder / "state.pt", "wb") as f:
        torch.save(tree, f)
        f.flush()
        os.fsync(f.fileno())


def checkpoint_rows(folder: Path, transitions: int, rounds: int) -> list[list]:
    from dqn.checkpoint import Checkpointer

    state = replay_state(transitions)
    times: dict[str, list[float]] = {"save before checksums": [], "Checkpointer.save (CRC32)": [],
                                     "Checkpointer.verify, page cache": [], "Checkpointer.verify, from disk": []}
    total_bytes = 0

    def old() -> None:
        times["save before checksums"].append(timed(lambda: save_before_checksums(folder / "old", state)))
        shutil.rmtree(folder / "old")

    def new() -> None:
        nonlocal total_bytes
        root = folder / "checkpoint"
        times["Checkpointer.save (CRC32)"].append(timed(lambda: Checkpointer(root).save(1, state)))
        saved = root / "step_000000000001"
        total_bytes = sum(p.stat().st_size for p in saved.iterdir())
        times["Checkpointer.verify, page cache"].append(timed(lambda: Checkpointer.verify(saved)))
        for path in saved.iterdir():
            drop_cached_pages(path)
        times["Checkpointer.verify, from disk"].append(timed(lambda: Checkpointer.verify(saved)))
        shutil.rmtree(root)

    for r in range(rounds):
        # Alternating which goes first; each copy is deleted before the next is written.
        for measure in (old, new) if r % 2 == 0 else (new, old):
            measure()

    plain = statistics.median(times["save before checksums"])
    rows = []
    for name, seconds in times.items():
        s = statistics.median(seconds)
        overhead: Any = float("nan")
        if "save" in name:
            overhead = 100.0 * (s / plain - 1.0) if name.startswith("Checkpointer") else "baseline"
        rows.append([f"{name}, {transitions:,} transitions", "zlib.crc32" if "Checkpointer" in name else "none",
                     total_bytes / s / 1e9, s, s * NATURE_REPLAY_BYTES / total_bytes, overhead])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size_gib <= 0 or args.rounds < 1 or args.checkpoint_transitions < 0:
        raise UserError("--size-gib must be positive, --rounds at least 1 and --checkpoint-transitions zero or more")
    size_bytes = int(args.size_gib * 2**30)
    folder = Path(args.dir or os.environ.get("TMPDIR") or tempfile.gettempdir())
    needed = max(size_bytes, args.checkpoint_transitions * 7_066) + (64 << 20)
    if not folder.is_dir() or shutil.disk_usage(folder).free < needed:
        raise UserError(f"--dir {folder} must be a folder with {needed / 1e9:.1f} GB free; choose another --dir")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dqn-checksum-", dir=folder) as tmp:
        rows = file_rows(Path(tmp), size_bytes, args.rounds)
        if args.checkpoint_transitions:
            rows += checkpoint_rows(Path(tmp), args.checkpoint_transitions, args.rounds)
    names = ", ".join(hashers())
    print_table(f"Checksums for checkpoints ({names}): a {size_bytes / 1e9:.2f} GB file in {folder}, "
                f"median of {args.rounds} round(s), projected to a 7.06 GB Nature replay", COLUMNS, rows)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    cli_main(main)
