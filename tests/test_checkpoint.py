"""Checkpoints are complete or ignored: the sentinel, the choice of the newest, the pruning."""

import json
import shutil

import numpy as np
import torch

from dqn.checkpoint import SENTINEL, STATE_FILE, Checkpointer, step_dir_name


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

    path, state = ckpt.load_latest()
    assert path == folder
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


def test_newer_checkpoint_without_sentinel_is_ignored_and_removed(tmp_path):
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [step_dir_name(30)]
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
