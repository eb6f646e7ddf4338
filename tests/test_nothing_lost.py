"""Nothing a run made is lost, end to end through `python -m dqn.train`: a damaged newest checkpoint
is moved aside and the previous generation resumes; with every generation damaged, or the
checkpoint folder deleted, the rerun refuses in one line and touches nothing until
--restart-from-zero moves the progress to discarded_*/; a disk that fills up mid-run ends it with
one line, the last complete checkpoint intact, and a rerun with space resumes from it. Every
finished run ends with the train_log of one uninterrupted run (timing columns dropped).

Cost: one reference run, one run stopped by SIGTERM with two checkpoint generations (copied for
each damage), and a rerun per case: 50-80 s on two shared cores.
"""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dqn.checkpoint import Checkpointer
from helpers.processes import in_background, mounted_tmpfs

SETS = [
    "training_length_frames=2400",  # 600 agent steps
    "replay_memory_size_transitions=1000",
    "replay_start_size_steps=200",
    "eval_interval_frames=800",  # rows and snapshots at agent steps 200, 400 and 600
    "eval_length_frames=400",
    "heldout_states=32",
    "final_exploration_frame_steps=500",
    "target_network_update_frequency_steps=100",
    "checkpoint_interval_minutes=0.005",  # a checkpoint every 0.3 s: several generations per run
]
CHECKPOINT_INTERVAL_SECONDS = 0.3
FRAMES = [800, 1600, 2400]
TIMING_COLUMNS = ["agent_steps_per_second", "wall_seconds"]
# A record of dqn.train's logging (logging.basicConfig in dqn.train.main): every stderr line but the error.
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [\w.]+ (DEBUG|INFO|WARNING) ")


def cmd(out, *extra):
    return [sys.executable, "-m", "dqn.train", "--game", "breakout", "--seed", "5", "--out", str(out),
            "--no-side-eval", "--threads", "1", *extra, "--set", *SETS]


def rerun(out, *extra):
    return subprocess.run(cmd(out, *extra), capture_output=True, text=True, timeout=600)


def step_dirs(out: Path) -> list[Path]:
    return sorted((out / "checkpoint").glob("step_*"))


def complete_steps(out: Path) -> list[int]:
    return sorted(int(p.parent.name[len("step_"):]) for p in (out / "checkpoint").glob("step_*/COMPLETE"))


def wait_until(proc, condition, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the run ended before the moment to interrupt it: " + proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def file_bytes(root: Path, *names: str) -> dict[str, bytes]:
    """{relative path: bytes} of every file under root/name for each name (a file or a folder)."""
    found = {}
    for name in names:
        top = root / name
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_file():
                found[str(path.relative_to(root))] = path.read_bytes()
    return found


def read_log(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "train_log.parquet")


def assert_reference_log(out: Path, reference: Path):
    resumed, uninterrupted = read_log(out), read_log(reference)
    assert resumed["frames"].tolist() == FRAMES  # no gap, no duplicate
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING_COLUMNS), uninterrupted.drop(columns=TIMING_COLUMNS),
                                  check_exact=True)


def assert_finished(done: subprocess.CompletedProcess, out: Path, reference: Path):
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert_reference_log(out, reference)
    assert all((out / name).is_file() for name in ("final.pt", "best.pt", "learning_curve.parquet"))


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The run failed with exit code 2 and one error line: the last line of stderr, every line before
    it a log record of the run (no traceback, no second message). Returns that line."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), done.stderr
    assert all(LOG_RECORD.match(line) for line in lines[:-1]), done.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run; started in the background while the stopped one plays."""
    out = tmp_path_factory.mktemp("reference") / "run"
    with in_background(cmd(out), out) as finished:
        yield finished


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, reference):
    """A run stopped by SIGTERM after its second train_log row (agent step 400) and two checkpoints
    from there on: two complete generations, both from step 400 on; each test damages a copy. (The
    SIGTERM checkpoint may be of the step of the last periodic one: then that is the newest.)"""
    out = tmp_path_factory.mktemp("stopped") / "run"
    proc = subprocess.Popen(cmd(out), stderr=subprocess.PIPE, text=True)
    try:
        wait_until(proc, lambda: (out / "snapshots" / "frames_000000001600.pt").is_file()
                   and sum(step >= 400 for step in complete_steps(out)) >= 2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    previous, newest = complete_steps(out)
    assert 400 <= previous < newest < 600 and [p.name for p in step_dirs(out)] == [
        f"step_{previous:012d}", f"step_{newest:012d}"]
    assert read_log(out)["frames"].tolist() == FRAMES[:2]
    return out


def copy_of(stopped: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    return out


# ---------------------------------------------------------------------------- damage
def zero_fill(path: Path):
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(bytes(size))


def truncate(path: Path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def flip_bytes(path: Path):
    middle = path.stat().st_size // 2
    with open(path, "r+b") as f:
        f.seek(middle)
        data = f.read(16)
        f.seek(middle)
        f.write(bytes(b ^ 0xFF for b in data))


ATTACKS = {"zero_fill": zero_fill, "truncate": truncate, "flip_bytes": flip_bytes}


def checkpoint_files(folder: Path) -> list[str]:
    """The data files of one checkpoint, from the folder itself (state.pt and the arrays' .npy files)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "COMPLETE")


def test_a_checkpoint_holds_state_and_replay_files(stopped):
    """The cases below cover every file a checkpoint of this run holds: state.pt and the replay frames."""
    for folder in step_dirs(stopped):
        assert checkpoint_files(folder) == ["replay.frames.npy", "state.pt"], folder
        assert json.loads((folder / "COMPLETE").read_text())["files"].keys() == {"replay.frames.npy", "state.pt"}


@pytest.mark.parametrize("target, attack", [
    *((name, attack) for name in ("state.pt", "replay.frames.npy") for attack in ATTACKS),
    ("COMPLETE", "delete"),
])
def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_previous_one_resumes(stopped, reference, tmp_path,
                                                                                target, attack):
    out = copy_of(stopped, tmp_path)
    previous, newest = complete_steps(out)
    damaged = out / "checkpoint" / f"step_{newest:012d}"
    assert target == "COMPLETE" or target in checkpoint_files(damaged)
    if attack == "delete":
        (damaged / target).unlink()
    else:
        before = (damaged / target).read_bytes()
        ATTACKS[attack](damaged / target)
        assert (damaged / target).read_bytes() != before
    # What the rerun must keep: the outputs of everything up to the checkpoint it resumes from.
    kept = file_bytes(out, "snapshots")
    assert sorted(kept) == ["snapshots/frames_000000000800.pt", "snapshots/frames_000000001600.pt"]
    assert all(int(name[-15:-3]) <= 4 * previous for name in kept)

    done = rerun(out)

    assert_finished(done, out, reference())
    warning = re.search(rf"WARNING checkpoint {re.escape(str(damaged))}: (.*); moved aside to "
                        rf"corrupt_step_{newest:012d}; using step_{previous:012d}", done.stderr)
    assert warning, done.stderr
    assert target in warning.group(1)  # the reason names the damaged file (or the missing sentinel)
    assert re.search(rf"resuming from \S*step_{previous:012d} \(agent step {previous},", done.stderr), done.stderr
    # The damaged folder is kept for inspection, with its damage; the good generations are gone.
    corrupt = out / "checkpoint" / f"corrupt_step_{newest:012d}"
    assert [p.name for p in (out / "checkpoint").iterdir()] == [corrupt.name]
    assert (corrupt / "REJECTED.txt").is_file() and (corrupt / target).exists() == (attack != "delete")
    assert {name: data for name, data in file_bytes(out, "snapshots").items() if name in kept} == kept


# ---------------------------------------------------------------------------- refusals
def test_every_generation_damaged_is_refused_in_one_line_then_restart_from_zero_moves_the_progress_aside(
        stopped, reference, tmp_path):
    from dqn import snapshot_eval

    out = copy_of(stopped, tmp_path)
    # The evaluations a side evaluator would have written beside training.
    assert snapshot_eval.evaluate_pending(out, num_workers=1, device="cpu") == 2
    previous, newest = complete_steps(out)
    zero_fill(out / "checkpoint" / f"step_{newest:012d}" / "state.pt")
    (out / "checkpoint" / f"step_{previous:012d}" / "COMPLETE").unlink()
    progress = file_bytes(out, "train_log.parquet", "snapshots", "eval")
    assert {"train_log.parquet", "snapshots/frames_000000001600.pt", "eval/frames_000000001600.parquet"} <= set(progress)

    refused = rerun(out)

    line = one_error_line(refused)
    assert "--restart-from-zero" in line and "no valid checkpoint" in line
    assert f"corrupt_step_{previous:012d}" in line and f"corrupt_step_{newest:012d}" in line
    assert file_bytes(out, "train_log.parquet", "snapshots", "eval") == progress
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == [
        f"corrupt_step_{previous:012d}", f"corrupt_step_{newest:012d}"]

    restarted = rerun(out, "--restart-from-zero")

    assert_finished(restarted, out, reference())
    assert "--restart-from-zero: moved" in restarted.stderr and "resuming from" not in restarted.stderr
    discarded = list(out.glob("discarded_*"))
    assert len(discarded) == 1, discarded
    assert file_bytes(discarded[0], "train_log.parquet", "snapshots", "eval") == progress
    assert sorted(p.name for p in discarded[0].glob("corrupt_step_*")) == [
        f"corrupt_step_{previous:012d}", f"corrupt_step_{newest:012d}"]
    assert not (out / "checkpoint").exists()


def test_a_deleted_checkpoint_folder_after_an_interval_of_training_is_refused_in_one_line(stopped, tmp_path):
    out = copy_of(stopped, tmp_path)
    # The train log itself shows more than one checkpoint interval of training.
    assert read_log(out)["wall_seconds"].max() > CHECKPOINT_INTERVAL_SECONDS
    shutil.rmtree(out / "checkpoint")
    # .train.lock is rewritten with the PID of each run that takes it; train.log, if the run keeps
    # one, only grows: every other file must stay as it is.
    appended = (".train.lock", "train.log")
    before = file_bytes(out, ".")

    refused = rerun(out)

    line = one_error_line(refused)
    assert "--restart-from-zero" in line and "holds no checkpoint" in line
    after = file_bytes(out, ".")
    assert after.get("train.log", b"").startswith(before.get("train.log", b""))
    assert {k: v for k, v in after.items() if k not in appended} == {k: v for k, v in before.items() if k not in appended}


# ---------------------------------------------------------------------------- a full disk
@pytest.fixture
def tmpfs(tmp_path):
    """A real file system of its own (tmpfs) big enough for the run's start-up free-space check."""
    from dqn.config import resolve
    from dqn.run_lifecycle import estimate_disk_bytes

    hp = resolve("nature", dict(item.split("=") for item in SETS)).for_game("breakout")
    size_mib = estimate_disk_bytes(hp) // 2**20 + 16
    with mounted_tmpfs(tmp_path / "disk", size_mib, covered_by="tests/test_checkpoint.py's ENOSPC tests") as mount_point:
        yield mount_point


def fill(ballast: Path, leave_bytes: int = 0) -> None:
    """Grow `ballast` until its file system has at most `leave_bytes` free (to a 4 KiB page)."""
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        chunk = 1 << 20
        while chunk >= 4096:
            if shutil.disk_usage(ballast.parent).free - leave_bytes < chunk:
                chunk //= 2
                continue
            try:
                os.write(fd, bytes(chunk))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    finally:
        os.close(fd)


def settled(out: Path, generations: int) -> bool:
    """At least `generations` complete checkpoints past learning's start, and no write under way
    (no save, no pruning, no snapshot or train_log temporary)."""
    steps = complete_steps(out)
    return (generations <= len(steps) == len(step_dirs(out)) <= 2 and min(steps) > 200
            and not any((out / "checkpoint").glob("incomplete_*"))
            and not any(out.glob(".*.tmp")) and not any(out.glob("snapshots/.*.tmp")))


def stopped_process(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")


def pause_between_writes(proc, out: Path, generations: int) -> None:
    """SIGSTOP the run, still training (its last snapshot not written), at a moment when
    `settled(out, generations)`: the disk can be filled with no write of the run half done."""
    last_snapshot = out / "snapshots" / f"frames_{FRAMES[-1]:012d}.pt"

    def moment() -> bool:
        return settled(out, generations) and not last_snapshot.exists()

    while True:
        wait_until(proc, moment)
        proc.send_signal(signal.SIGSTOP)
        wait_until(proc, lambda: stopped_process(proc.pid), timeout=10)
        if moment():
            return
        proc.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("what_fills_up", ["checkpoint", "snapshot"])
def test_a_full_disk_ends_the_run_in_one_line_and_a_rerun_with_space_resumes(tmpfs, reference, what_fills_up):
    out = tmpfs / "run"
    ballast = tmpfs / "ballast"
    snapshot_bytes = (reference() / "final.pt").stat().st_size  # final.pt is the last snapshot
    proc = subprocess.Popen(cmd(out), stderr=subprocess.PIPE, text=True)
    try:
        if what_fills_up == "checkpoint":
            # After a complete checkpoint, not a free byte: the next save (0.3 s later, long before
            # the next snapshot at agent step 400) finds no room.
            pause_between_writes(proc, out, generations=1)
            fill(ballast)
        else:
            # Two generations, then room for a checkpoint once the older one goes, but not for a
            # snapshot (6.7 MB): the next end of an evaluation period fills the disk.
            pause_between_writes(proc, out, generations=2)
            fill(ballast, leave_bytes=snapshot_bytes - (1 << 20))
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)

    line = one_error_line(done)
    assert "is full" in line and "No space left on device" in line, line
    kept = Checkpointer(out / "checkpoint").latest()
    assert kept is not None and Checkpointer.verify(kept) is None
    assert not list((out / "checkpoint").glob("incomplete_*"))
    assert not (out / "final.pt").exists()

    ballast.unlink()
    resumed = rerun(out)

    assert_finished(resumed, out, reference())
    assert re.search(rf"resuming from {re.escape(str(kept))} ", resumed.stderr), resumed.stderr
