"""Kill-and-resume: a run killed at any moment and restarted with the same command continues from
its last complete checkpoint and ends with exactly the train_log of an uninterrupted run."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.processes import in_background

SETS = [
    "training_length_frames=2400",  # 600 agent steps
    "replay_memory_size_transitions=1000",
    "replay_start_size_steps=200",
    "eval_interval_frames=800",  # 3 rows: 200 random steps, then two periods of learning
    "eval_length_frames=400",
    "heldout_states=32",
    "final_exploration_frame_steps=500",
    "target_network_update_frequency_steps=100",
    "checkpoint_interval_minutes=0.02",  # a checkpoint every 1.2 s
]
FRAMES = [800, 1600, 2400]
TIMING_COLUMNS = ["agent_steps_per_second", "wall_seconds"]


def cmd(out):
    return [sys.executable, "-m", "dqn.train", "--game", "breakout", "--seed", "5", "--out", str(out),
            "--no-side-eval", "--threads", "1", "--set", *SETS]


def complete_checkpoint_steps(out: Path) -> list[int]:
    return sorted(int(p.parent.name[len("step_"):]) for p in (out / "checkpoint").glob("step_*/COMPLETE"))


def wait_until(proc, condition, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the run ended before the moment to interrupt it"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run; started in the background while the interrupted ones play."""
    out = tmp_path_factory.mktemp("reference") / "run"
    with in_background(cmd(out), out) as finished:
        yield finished


def read_log(out):
    return pd.read_parquet(out / "train_log.parquet")


def assert_same_learning(resumed: pd.DataFrame, uninterrupted: pd.DataFrame):
    assert resumed["frames"].tolist() == FRAMES  # no gap, no duplicate
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING_COLUMNS), uninterrupted.drop(columns=TIMING_COLUMNS),
                                  check_exact=True)
    # Cumulative wall time carries over the resume.
    assert resumed["wall_seconds"].is_monotonic_increasing


def test_sigkill_then_rerun_matches_an_uninterrupted_run(tmp_path, reference):
    out = tmp_path / "run"
    started = time.monotonic()
    proc = subprocess.Popen(cmd(out), stderr=subprocess.PIPE, text=True)
    # Kill once learning has started, the first row is written and a checkpoint after it exists.
    wait_until(proc, lambda: (out / "train_log.parquet").exists() and any(s > 200 for s in complete_checkpoint_steps(out)))
    proc.kill()
    proc.communicate()
    kept = complete_checkpoint_steps(out)[-1]
    assert 200 < kept < 600

    rerun = subprocess.run(cmd(out), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert re.search(rf"resuming from \S*step_{kept:012d} \(agent step {kept}", rerun.stderr)
    wall = time.monotonic() - started

    resumed, uninterrupted = read_log(out), read_log(reference())
    assert_same_learning(resumed, uninterrupted)
    assert (out / "final.pt").is_file() and (out / "best.pt").is_file() and not (out / "checkpoint").exists()
    print(f"\nkill-and-resume: {wall:.1f} s wall (killed at checkpoint step {kept})")


def test_sigterm_writes_a_checkpoint_and_exits_nonzero_then_rerun_finishes(tmp_path, reference):
    out = tmp_path / "run"
    proc = subprocess.Popen(cmd(out), stderr=subprocess.PIPE, text=True)
    wait_until(proc, lambda: (out / "train_log.parquet").exists())
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    match = re.search(r"SIGTERM received: checkpoint at agent step (\d+) written", stderr)
    assert match, stderr
    step = int(match.group(1))
    # The checkpoint is of the very step the signal stopped at (not an older periodic one).
    # Two generations are kept: the newest is of that step, the one before it (if any) older.
    steps = complete_checkpoint_steps(out)
    assert steps[-1] == step and len(steps) <= 2 and 200 <= step < 600
    manifest = json.loads((out / "checkpoint" / f"step_{step:012d}" / "COMPLETE").read_text())
    assert manifest["agent_steps"] == step

    rerun = subprocess.run(cmd(out), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"agent step {step}," in rerun.stderr
    assert_same_learning(read_log(out), read_log(reference()))
    # Updates while DeepMind's numSteps n (before the step) has n > 200 and n % 4 == 0: n = 204,
    # 208, ..., so none by the row at 200 steps, then (S - 1)//4 - 50 by the row at S.
    np.testing.assert_array_equal(read_log(out)["parameter_updates"], [0, 399 // 4 - 50, 599 // 4 - 50])


def test_fast_path_resumes_exactly_in_process(tmp_path):
    """The fast path (device replay, FastLearner; eager on the CPU) through checkpoint and restore."""
    from dqn import loop, train
    from dqn.config import resolve
    from dqn.run_folder import RunFiles

    overrides = dict(item.split("=") for item in SETS)
    hp = resolve("nature", overrides).for_game("breakout")

    def build(folder):
        parts, first = train.build_parts(hp, "breakout", 5, "cpu", RunFiles(tmp_path / folder), fast_path=True)
        return parts, loop.TrainState(s_t=parts.stack.reset(first))

    uninterrupted, st_u = build("uninterrupted")
    assert loop.train_loop(uninterrupted, st_u) is None

    stopped, st_s = build("resumed")
    schedule = stopped.epsilon

    def epsilon_then_stop(agent_step):  # the flag a SIGTERM handler sets, raised at step 300
        if agent_step == 300:
            stopped.stop.signum = signal.SIGTERM
        return schedule(agent_step)

    stopped.epsilon = epsilon_then_stop
    assert loop.train_loop(stopped, st_s) == 128 + signal.SIGTERM
    assert st_s.agent_steps == 301 and len(st_s.rows) == 1  # stops at the top of the next step

    resumed, _ = build("resumed")
    _, state = resumed.checkpointer.load_latest()
    st_r = loop.restore(resumed, state)
    assert st_r.agent_steps == 301
    assert loop.train_loop(resumed, st_r) is None
    rows_u, rows_r = (pd.DataFrame(st.rows).drop(columns=TIMING_COLUMNS) for st in (st_u, st_r))
    assert rows_r["frames"].tolist() == FRAMES
    pd.testing.assert_frame_equal(rows_r, rows_u, check_exact=True)
    # No update by the first row (numSteps 200 is not past the replay start of 200), one after.
    assert np.isnan(rows_r["loss_mean"].iloc[0]) and np.isfinite(rows_r["loss_mean"].iloc[1:]).all()
