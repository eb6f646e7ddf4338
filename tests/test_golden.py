"""Golden outputs: a fixed-seed CPU training of 2,400 frames (train log, training-time evaluation
rows, final weights), a final evaluation of its weights, and the report's tables of a synthetic
experiment, compared with the values stored in tests/golden/. A change of the code's layout must
leave them as they are; a change of what the harness computes shows here first, and is then
stored again on purpose with

    DQN_WRITE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.synthetic_results import write_small

GOLDEN = Path(__file__).resolve().parent / "golden"
WRITE = os.environ.get("DQN_WRITE_GOLDEN") == "1"
SETS = [
    "training_length_frames=2400",  # 600 agent steps: 200 random, then 400 of learning
    "replay_memory_size_transitions=1000",
    "replay_start_size_steps=200",
    "eval_interval_frames=800",
    "eval_length_frames=400",
    "heldout_states=32",
    "final_exploration_frame_steps=500",
    "target_network_update_frequency_steps=100",
    "final_eval_max_episode_frames=2000",
]
TIMING_COLUMNS = ["agent_steps_per_second", "wall_seconds"]


def golden_frame(name: str, frame: pd.DataFrame) -> None:
    """`frame` against tests/golden/<name>.csv (written instead with DQN_WRITE_GOLDEN=1)."""
    path = GOLDEN / f"{name}.csv"
    frame = frame.reset_index(drop=True)
    if WRITE:
        frame.to_csv(path, index=False, float_format="%.17g")
        return
    stored = pd.read_csv(path, keep_default_na=True)
    assert list(frame.columns) == list(stored.columns)
    for column in frame.columns:
        ours, theirs = frame[column], stored[column]
        if pd.api.types.is_float_dtype(ours) or pd.api.types.is_float_dtype(theirs):
            np.testing.assert_allclose(ours.to_numpy(dtype=float), theirs.to_numpy(dtype=float), rtol=1e-6,
                                       atol=1e-9, equal_nan=True, err_msg=f"{name}.{column}")
        else:
            assert ours.astype(str).tolist() == theirs.astype(str).tolist(), f"{name}.{column}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden") / "run"
    cmd = [sys.executable, "-m", "dqn.train", "--game", "breakout", "--seed", "3", "--out", str(out),
           "--no-side-eval", "--threads", "1", "--set", *SETS]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_training_gives_the_golden_train_log_and_evaluation_rows(trained):
    golden_frame("train_log", pd.read_parquet(trained / "train_log.parquet").drop(columns=TIMING_COLUMNS))
    curve = pd.read_parquet(trained / "learning_curve.parquet").drop(columns=TIMING_COLUMNS)
    golden_frame("learning_curve", curve)


def test_training_gives_the_golden_final_weights(trained):
    blob = torch.load(trained / "final.pt", map_location="cpu", weights_only=False)
    sums = pd.DataFrame({"tensor": list(blob["state_dict"]),
                         "sum": [float(t.double().sum()) for t in blob["state_dict"].values()],
                         "abs_sum": [float(t.double().abs().sum()) for t in blob["state_dict"].values()]})
    golden_frame("final_weights", sums)
    # final.pt is the last snapshot; best.pt one of the snapshots, by the stored evaluation rows.
    assert (trained / "final.pt").read_bytes() == (trained / "snapshots" / "frames_000000002400.pt").read_bytes()
    assert (trained / "best.pt").read_bytes() in [p.read_bytes() for p in (trained / "snapshots").glob("frames_*.pt")]


def test_final_evaluation_gives_the_golden_episodes(trained, tmp_path):
    out = tmp_path / "final.parquet"
    cmd = [sys.executable, "-m", "dqn.evaluate", "--game", "breakout", "--weights", str(trained / "final.pt"),
           "--label", "final", "--seed", "0", "--out", str(out), "--episodes", "3", "--workers", "1", "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    golden_frame("final_episodes", pd.read_parquet(out))


def report_tables(html: str) -> list[str]:
    """The text of the report's tables, up to the run-by-run ones (which hold hours and hosts)."""
    tables = re.findall(r"<table.*?</table>", html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", table).split()) for table in tables[:5]]


def test_report_of_synthetic_results_gives_the_golden_tables(tmp_path):
    results = write_small(tmp_path / "results")
    done = subprocess.run([sys.executable, "-m", "analysis.report", "--results", str(results), "--out",
                           str(tmp_path / "report.html"), "--figures-dir", str(tmp_path / "figures")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    tables = report_tables((tmp_path / "report.html").read_text())
    path = GOLDEN / "report_tables.json"
    if WRITE:
        path.write_text(json.dumps(tables, indent=1, ensure_ascii=False) + "\n")
        return
    assert tables == json.loads(path.read_text())
