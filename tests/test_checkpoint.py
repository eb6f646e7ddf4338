"""Checkpoints are complete or ignored, verified on load, kept in two generations, and a full disk
leaves the previous one intact: the sentinel, the checksums, the choice of the newest, the pruning."""

import builtins
import errno
import json
import logging
import os
import shutil
import zlib

import numpy as np
import pytest
import torch

from dqn import checkpoint, checksummed
from dqn.checkpoint import (
    REJECTED_NOTE,
    SENTINEL,
    STATE_FILE,
    Checkpointer,
    CheckpointWriteError,
    NoValidCheckpointError,
    step_dir_name,
)
from dqn.errors import UserError
from helpers.processes import mounted_tmpfs


def _state(step: int) -> dict:
    big = np.arange(600_000, dtype=np.int32).reshape(1000, 600) + step  # 2.4 MB: its own .npy file
    return {
        "counters": {"agent_steps": step, "frames": 4 * step},
        "replay": {"frames": big, "rng_state": np.random.default_rng(step).bit_generator.state},
        "small": np.array([step, 2, 3], dtype=np.uint8),
        "learner": {"w": torch.full((3,), float(step))},
        "rows": [{"frames": 4, "loss_mean": float("nan")}],
        "env": {"ale_state": b"\x00\x01" * 10},
    }


def test_round_trip_keeps_values_types_and_big_arrays_as_npy(tmp_path):
    ckpt = Checkpointer(tmp_path / "checkpoint")
    folder = ckpt.save(7, _state(7))
    assert folder.name == "step_000000000007"
    assert sorted(p.name for p in folder.iterdir()) == [SENTINEL, "replay.frames.npy", STATE_FILE]
    manifest = json.loads((folder / SENTINEL).read_text())
    assert manifest["agent_steps"] == 7

    # Sizes and checksums by hand: a (1000, 600) int32 array is 2,400,000 bytes after a 128-byte
    # .npy header; the CRC32 is zlib's over the whole file.
    npy = manifest["files"]["replay.frames.npy"]
    assert npy["bytes"] == 2_400_128
    assert int(npy["crc32"], 16) == zlib.crc32((folder / "replay.frames.npy").read_bytes())
    state_bytes = (folder / STATE_FILE).read_bytes()
    assert manifest["files"][STATE_FILE] == {"bytes": len(state_bytes), "crc32": f"{zlib.crc32(state_bytes):08x}"}
    assert ckpt.last_save_bytes == 2_400_128 + len(state_bytes)

    path, state = ckpt.load_latest()
    assert path == folder and ckpt.rejected == []
    frames = state["replay"]["frames"]
    assert frames.dtype == np.int32 and frames.shape == (1000, 600)
    assert frames[999, 599] == 599_999 + 7
    # Big arrays come back read-only memory maps: the consumer copies what it keeps.
    assert not frames.flags.writeable
    assert state["small"].tolist() == [7, 2, 3] and state["small"].dtype == np.uint8
    assert state["replay"]["rng_state"] == np.random.default_rng(7).bit_generator.state
    assert torch.equal(state["learner"]["w"], torch.full((3,), 7.0))
    assert state["counters"] == {"agent_steps": 7, "frames": 28}
    assert np.isnan(state["rows"][0]["loss_mean"])
    assert state["env"]["ale_state"] == b"\x00\x01" * 10


def test_newer_checkpoint_without_sentinel_is_ignored_and_moved_aside(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(100, _state(100))
    # Two newer saves killed before their sentinel: one with all its files, one cut mid-file.
    whole = tmp_path / step_dir_name(200)
    shutil.copytree(tmp_path / step_dir_name(100), whole)
    (whole / SENTINEL).unlink()
    cut = tmp_path / step_dir_name(300)
    cut.mkdir()
    (cut / STATE_FILE).write_bytes(b"partial")
    assert ckpt.latest() == tmp_path / step_dir_name(100)

    path, state = ckpt.load_latest()
    assert path.name == step_dir_name(100)
    assert state["counters"]["agent_steps"] == 100
    assert not whole.exists() and not cut.exists()
    # A step_ folder is renamed into place only once complete: without a sentinel it is damaged.
    assert [p.name for p in ckpt.corrupt_folders()] == [f"corrupt_{step_dir_name(s)}" for s in (200, 300)]


def test_sentinel_with_wrong_sizes_is_not_complete(tmp_path):
    ckpt = Checkpointer(tmp_path)
    good = ckpt.save(10, _state(10))
    assert Checkpointer.is_complete(good)
    with open(good / "replay.frames.npy", "r+b") as f:
        f.truncate(1000)
    assert not Checkpointer.is_complete(good)
    assert ckpt.load_latest() is None


def test_older_complete_checkpoints_are_pruned_after_a_new_one_completes(tmp_path):
    ckpt = Checkpointer(tmp_path)
    for step in (10, 20, 30):
        ckpt.save(step, _state(step))
    # Two generations: the new one and the previous one, in case the new one turns out damaged.
    assert sorted(p.name for p in tmp_path.iterdir()) == [step_dir_name(20), step_dir_name(30)]
    _, state = ckpt.load_latest()
    assert state["counters"]["agent_steps"] == 30
    assert state["replay"]["frames"][0, 0] == 30


def test_saving_the_same_step_again_keeps_the_complete_checkpoint(tmp_path):
    ckpt = Checkpointer(tmp_path)
    first = ckpt.save(50, _state(50))
    mtime = (first / SENTINEL).stat().st_mtime_ns
    again = ckpt.save(50, {"anything": "else"})
    assert again == first and (first / SENTINEL).stat().st_mtime_ns == mtime
    assert ckpt.load_latest()[1]["counters"]["agent_steps"] == 50


def test_remove_all(tmp_path):
    ckpt = Checkpointer(tmp_path / "checkpoint")
    ckpt.save(1, _state(1))
    ckpt.remove_all()
    assert not (tmp_path / "checkpoint").exists()
    assert ckpt.load_latest() is None


# ---------------------------------------------------------------- damage found on load

def _zero_fill(path):
    path.write_bytes(bytes(path.stat().st_size))


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(1000)


def _flip_middle_byte(path):
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte ^ 0xFF]))


# (file to damage, how, words the warning and the rejection must hold)
DAMAGE = {
    "zero-filled npy": ("replay.frames.npy", _zero_fill, "replay.frames.npy checksum mismatch"),
    "zero-filled state.pt": (STATE_FILE, _zero_fill, "state.pt checksum mismatch"),
    "truncated npy": ("replay.frames.npy", _truncate, "replay.frames.npy is 1,000 bytes, COMPLETE says 2,400,128"),
    "truncated state.pt": (STATE_FILE, _truncate, "state.pt is 1,000 bytes, COMPLETE says"),
    "flipped byte in npy": ("replay.frames.npy", _flip_middle_byte, "replay.frames.npy checksum mismatch"),
    "flipped byte in state.pt": (STATE_FILE, _flip_middle_byte, "state.pt checksum mismatch"),
    "npy deleted": ("replay.frames.npy", lambda p: p.unlink(), "replay.frames.npy missing"),
    "sentinel deleted": (SENTINEL, lambda p: p.unlink(), "no COMPLETE sentinel"),
    "sentinel malformed": (SENTINEL, lambda p: p.write_text('{"format": 2, "agent_st'), "COMPLETE sentinel malformed"),
    "sentinel without file list": (SENTINEL, lambda p: p.write_text('{"format": 2}'), "COMPLETE sentinel malformed"),
}


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "dqn.checkpoint" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_newest_checkpoint_is_moved_aside_and_the_previous_one_loads(tmp_path, caplog, damage):
    file_name, damage_file, reason = DAMAGE[damage]
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    newest = ckpt.save(20, _state(20))
    damage_file(newest / file_name)

    caplog.set_level(logging.WARNING, logger="dqn.checkpoint")
    path, state = ckpt.load_latest()
    assert path.name == step_dir_name(10)
    assert state["counters"] == {"agent_steps": 10, "frames": 40}
    assert state["replay"]["frames"][999, 599] == 599_999 + 10
    assert torch.equal(state["learner"]["w"], torch.full((3,), 10.0))

    moved = tmp_path / ("corrupt_" + step_dir_name(20))
    [warning] = _warnings(caplog)
    assert warning.startswith(f"checkpoint {newest}: {reason}")
    assert warning.endswith(f"moved aside to {moved.name}; using {step_dir_name(10)}")
    # Moved aside with its files as they were, never deleted; a note says why.
    assert not newest.exists() and moved.is_dir()
    assert (moved / REJECTED_NOTE).read_text().startswith(reason)
    [rejection] = ckpt.rejected
    assert rejection.folder == newest and rejection.moved_to == moved and rejection.reason.startswith(reason)
    ckpt.check_fresh_start()  # a valid checkpoint remains: nothing to refuse


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_single_damaged_checkpoint_loads_nothing_and_a_fresh_start_is_refused(tmp_path, caplog, damage):
    file_name, damage_file, reason = DAMAGE[damage]
    ckpt = Checkpointer(tmp_path)
    only = ckpt.save(10, _state(10))
    damage_file(only / file_name)

    caplog.set_level(logging.WARNING, logger="dqn.checkpoint")
    assert ckpt.load_latest() is None
    [warning] = _warnings(caplog)
    assert warning.startswith(f"checkpoint {only}: {reason}") and warning.endswith("no valid checkpoint is left")
    assert [r.reason[:len(reason)] for r in ckpt.rejected] == [reason]
    assert ckpt.corrupt_folders() == [tmp_path / ("corrupt_" + step_dir_name(10))]

    with pytest.raises(NoValidCheckpointError) as refused:
        ckpt.check_fresh_start()
    message = str(refused.value)
    assert isinstance(refused.value, UserError) and "\n" not in message
    assert f"corrupt_{step_dir_name(10)} ({reason}" in message
    assert "delete them to start this run again from zero" in message

    # A rerun (a new process) finds no step_ folder but still refuses, reading the note left behind.
    rerun = Checkpointer(tmp_path)
    assert rerun.load_latest() is None and rerun.rejected == []
    with pytest.raises(NoValidCheckpointError, match=f"corrupt_{step_dir_name(10)} \\({reason}"):
        rerun.check_fresh_start()


def test_state_file_that_does_not_unpickle_is_rejected_like_damage(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    newest = ckpt.save(20, _state(20))
    # Garbage whose size and checksum the sentinel records: only unpickling can find it.
    garbage = b"not a torch file at all"
    (newest / STATE_FILE).write_bytes(garbage)
    manifest = json.loads((newest / SENTINEL).read_text())
    manifest["files"][STATE_FILE] = {"bytes": len(garbage), "crc32": f"{zlib.crc32(garbage):08x}"}
    (newest / SENTINEL).write_text(json.dumps(manifest))
    assert Checkpointer.verify(newest) is None

    caplog.set_level(logging.WARNING, logger="dqn.checkpoint")
    path, state = ckpt.load_latest()
    assert path.name == step_dir_name(10) and state["counters"]["agent_steps"] == 10
    [warning] = _warnings(caplog)
    assert warning.startswith(f"checkpoint {newest}: state.pt does not load (")
    assert ckpt.rejected[0].moved_to == tmp_path / ("corrupt_" + step_dir_name(20))


def test_both_generations_damaged_are_both_moved_aside_and_named_in_the_refusal(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path)
    for step in (10, 20):
        _flip_middle_byte(ckpt.save(step, _state(step)) / "replay.frames.npy")
    caplog.set_level(logging.WARNING, logger="dqn.checkpoint")
    assert ckpt.load_latest() is None
    assert len(_warnings(caplog)) == 2
    assert [r.folder.name for r in ckpt.rejected] == [step_dir_name(20), step_dir_name(10)]
    with pytest.raises(NoValidCheckpointError) as refused:
        ckpt.check_fresh_start()
    assert (f"corrupt_{step_dir_name(10)} (replay.frames.npy checksum mismatch); "
            f"corrupt_{step_dir_name(20)} (replay.frames.npy checksum mismatch)") in str(refused.value)


def test_a_sentinel_of_format_1_with_sizes_only_still_loads(tmp_path):
    ckpt = Checkpointer(tmp_path)
    folder = ckpt.save(10, _state(10))
    files = json.loads((folder / SENTINEL).read_text())["files"]
    (folder / SENTINEL).write_text(json.dumps({"agent_steps": 10, "files": {n: e["bytes"] for n, e in files.items()}}))
    path, state = ckpt.load_latest()
    assert path == folder and state["counters"]["agent_steps"] == 10


def test_remove_all_keeps_moved_aside_folders(tmp_path):
    ckpt = Checkpointer(tmp_path / "checkpoint")
    _truncate(ckpt.save(1, _state(1)) / STATE_FILE)
    assert ckpt.load_latest() is None
    ckpt.save(2, _state(2))
    ckpt.remove_all()
    assert [p.name for p in (tmp_path / "checkpoint").iterdir()] == ["corrupt_" + step_dir_name(1)]


# ---------------------------------------------------------------- interrupted and failed writes

def test_a_killed_save_leaves_an_incomplete_folder_that_is_removed(tmp_path):
    ckpt = Checkpointer(tmp_path)
    good = ckpt.save(10, _state(10))
    killed = tmp_path / ("incomplete_" + step_dir_name(20))
    killed.mkdir()
    (killed / "replay.frames.npy").write_bytes(b"half")
    stale = [tmp_path / ".COMPLETE.k2j4.tmp", good / f".{STATE_FILE}.x8q1.tmp"]
    for path in stale:
        path.write_bytes(b"left by a killed write")

    assert sorted(ckpt.remove_incomplete()) == sorted([killed, *stale])
    assert not killed.exists() and not any(p.exists() for p in stale)
    # The complete checkpoint and its own files are untouched.
    assert sorted(p.name for p in good.iterdir()) == [SENTINEL, "replay.frames.npy", STATE_FILE]
    assert ckpt.load_latest()[0] == good


def test_removing_incomplete_writes_spares_a_temporary_that_a_live_writer_holds(tmp_path):
    """A temporary of a write still in progress (atomic_write holds its flock) is not a leftover:
    the checkpointer's cleanup, the same as dqn.fileio's, leaves it, and removes an unheld one."""
    from dqn import fileio

    ckpt = Checkpointer(tmp_path)
    good = ckpt.save(10, _state(10))
    leftover = good / f".{STATE_FILE}.x8q1.tmp"
    leftover.write_bytes(b"left by a killed write")
    seen = {}

    def write(tmp):
        tmp.write_bytes(b"being written")
        seen["removed"] = ckpt.remove_incomplete()
        seen["still there"] = tmp.is_file()

    fileio.atomic_write(tmp_path / "notes.json", write)
    assert seen["removed"] == [leftover] and seen["still there"]
    assert (tmp_path / "notes.json").read_bytes() == b"being written"


class _FillingFile:
    """A file opened for writing on a disk that holds `budget["bytes"]` more bytes, then ENOSPC."""

    def __init__(self, f, budget, error_number):
        self._f, self._budget, self._errno = f, budget, error_number

    def write(self, data):
        n = memoryview(data).nbytes
        if n > self._budget["bytes"]:
            raise OSError(self._errno, os.strerror(self._errno))
        self._budget["bytes"] -= n
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _fail_writes_after(monkeypatch, error_number, after_bytes):
    """Checkpoint files written from now on raise OSError(error_number) once `after_bytes` are written."""
    budget = {"bytes": after_bytes}

    def filling_open(path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)
        return _FillingFile(f, budget, error_number) if "w" in mode else f

    monkeypatch.setattr(checksummed, "open", filling_open, raising=False)


def test_full_disk_during_a_save_keeps_the_previous_checkpoint_and_says_so_in_one_line(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    _fail_writes_after(monkeypatch, errno.ENOSPC, after_bytes=1 << 20)  # 1 MiB into the 2.4 MB array

    with pytest.raises(CheckpointWriteError) as failed:
        ckpt.save(20, _state(20))
    message = str(failed.value)
    assert isinstance(failed.value, UserError) and "\n" not in message
    free = shutil.disk_usage(tmp_path).free
    needed = Checkpointer.estimate_bytes(_state(20))
    assert message.startswith(f"checkpoint {step_dir_name(20)} not written: the file system at ")
    assert f"(holding {tmp_path}) is full (No space left on device): {needed:,} bytes needed, " in message
    assert f"{step_dir_name(10)} is intact" in message
    # The free space in the message is the disk's at the time (other tests write here too).
    assert abs(int(message.split(" bytes needed, ")[1].split(" bytes free")[0].replace(",", "")) - free) < 1 << 30

    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [step_dir_name(10)]  # no incomplete folder left
    path, state = ckpt.load_latest()
    assert path.name == step_dir_name(10) and state["replay"]["frames"][999, 599] == 599_999 + 10


def test_any_other_write_error_is_a_checkpoint_write_error_too(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    _fail_writes_after(monkeypatch, errno.EIO, after_bytes=0)
    expected = (f"^checkpoint {step_dir_name(20)} not written under .*: Input/output error; "
                f"the previous checkpoint {step_dir_name(10)} is intact; fix that and rerun$")
    with pytest.raises(CheckpointWriteError, match=expected):
        ckpt.save(20, _state(20))
    assert [p.name for p in tmp_path.iterdir()] == [step_dir_name(10)]


def test_an_error_reported_only_by_fsync_fails_the_save_too(tmp_path, monkeypatch):
    """The big arrays are fsynced in a second thread (the checksum runs meanwhile): its error must not be lost."""
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".npy"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    with pytest.raises(CheckpointWriteError, match="is full \\(No space left on device\\)"):
        ckpt.save(20, _state(20))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [step_dir_name(10)]


def test_a_non_os_error_while_writing_removes_the_partial_folder_and_propagates(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("cannot pickle")))
    with pytest.raises(RuntimeError, match="cannot pickle"):
        ckpt.save(20, _state(20))
    assert [p.name for p in tmp_path.iterdir()] == [step_dir_name(10)]


def test_short_of_space_a_save_drops_the_older_generation_first_but_never_the_only_one(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    ckpt.save(20, _state(20))
    needed = Checkpointer.estimate_bytes(_state(30))
    # A disk with room for one more checkpoint only once step 10 is gone.
    usage = shutil.disk_usage(tmp_path)
    fake_free = lambda: needed if not (tmp_path / step_dir_name(10)).exists() else needed - 1  # noqa: E731
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: usage._replace(free=fake_free()))
    ckpt.save(30, _state(30))
    assert sorted(p.name for p in tmp_path.iterdir()) == [step_dir_name(20), step_dir_name(30)]

    # Now even dropping step 20 would not make room: step 30, the only one left, stays.
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(CheckpointWriteError, match=f"{needed:,} bytes needed, 1,000 bytes free; "
                                                   f"the previous checkpoint {step_dir_name(30)} is intact"):
        ckpt.save(40, _state(40))
    assert sorted(p.name for p in tmp_path.iterdir()) == [step_dir_name(30)]
    assert ckpt.load_latest()[1]["counters"]["agent_steps"] == 30


def test_estimate_bytes_is_within_a_mebibyte_above_the_saved_size(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(10, _state(10))
    estimate = Checkpointer.estimate_bytes(_state(10))
    assert ckpt.last_save_bytes <= estimate <= ckpt.last_save_bytes + (1 << 20) + 4096


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 4 MiB file system (tmpfs), for a real ENOSPC. Needs root and mount."""
    with mounted_tmpfs(tmp_path / "disk", 4, covered_by="the monkeypatched ENOSPC tests") as mount_point:
        yield mount_point


def test_a_real_full_tmpfs_keeps_the_previous_checkpoint(small_tmpfs, monkeypatch):
    ckpt = Checkpointer(small_tmpfs / "checkpoint")
    ckpt.save(10, _state(10))  # 2.4 MB of 4 MiB

    # The free-space check refuses before writing anything...
    with pytest.raises(CheckpointWriteError, match=f"the file system at {small_tmpfs} .* is full"):
        ckpt.save(20, _state(20))
    # ...and when the estimate misses (here: forced to 0), the kernel's ENOSPC mid-write does.
    monkeypatch.setattr(Checkpointer, "estimate_bytes", staticmethod(lambda state: 0))
    with pytest.raises(CheckpointWriteError, match="is full \\(No space left on device\\): 0 bytes needed") as failed:
        ckpt.save(20, _state(20))
    assert "\n" not in str(failed.value) and isinstance(failed.value.__cause__, OSError)
    assert failed.value.__cause__.errno == errno.ENOSPC
    assert [p.name for p in (small_tmpfs / "checkpoint").iterdir()] == [step_dir_name(10)]
    path, state = ckpt.load_latest()
    assert path.name == step_dir_name(10) and state["replay"]["frames"][999, 599] == 599_999 + 10


def _rss_file_bytes() -> int:
    """Resident pages of this process that map files (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssFile:"))


def test_released_chunks_copy_a_mapped_array_without_holding_its_pages(tmp_path):
    from dqn.checkpoint import released_chunks

    rows = np.random.default_rng(0).integers(0, 256, (1024, 84, 84), dtype=np.uint8)  # 7.2 MB
    frames = np.concatenate([rows] * 9)  # 65 MB, as a checkpoint's frames file
    np.save(tmp_path / "frames.npy", frames)
    del frames

    def peak_growth(copy) -> tuple[int, np.ndarray]:
        source = np.load(tmp_path / "frames.npy", mmap_mode="r")  # data starts 128 bytes into the file
        target = np.zeros(source.shape, np.uint8)
        target.fill(1)  # the target's own pages resident before measuring
        before, peak = _rss_file_bytes(), 0
        for _ in copy(source, target):
            peak = max(peak, _rss_file_bytes() - before)
        return peak, target

    def plain(source, target):
        for start in range(0, len(source), 1024):
            target[start:start + 1024] = source[start:start + 1024]
            yield

    def released(source, target):
        for start, stop, chunk in released_chunks(source, chunk_bytes=4 << 20):
            target[start:stop] = chunk
            yield

    plain_peak, plain_copy = peak_growth(plain)
    released_peak, released_copy = peak_growth(released)
    # The measurement sees a plain copy keep the whole file resident...
    assert plain_peak > 50 << 20
    # ...and the released copy hold at most about one 4 MB chunk of it, with the same contents.
    assert released_peak < 12 << 20
    assert np.array_equal(released_copy, plain_copy) and np.array_equal(released_copy[-1024:], rows)


def test_released_chunks_cover_odd_sizes_slices_and_in_memory_arrays(tmp_path):
    from dqn.checkpoint import released_chunks

    data = np.arange(1001 * 37, dtype=np.int32).reshape(1001, 37)
    np.save(tmp_path / "a.npy", data)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    for source in (mapped, mapped[:500], data):
        target = np.empty_like(np.asarray(source))
        spans = []
        for start, stop, chunk in released_chunks(source, chunk_bytes=1000):
            target[start:stop] = chunk
            spans.append((start, stop))
        assert np.array_equal(target, source)
        # 1000 bytes hold 6 rows of 148 bytes: consecutive spans cover every row exactly once.
        assert spans[0] == (0, 6) and spans[-1][1] == len(source)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
