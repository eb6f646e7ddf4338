"""python -m analysis.status: one row per run in each state, read from synthetic run folders."""

import fcntl
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.status import main, run_status
from dqn.errors import cli_main

PLANNED_FRAMES = 400_000


def make_run(results: Path, game: str, seed: int = 0, *, percent: float | None = None, rate: float = 100.0,
             eval_rows: list[tuple[int, float, int]] = (), complete: bool = False, outputs: bool = False,
             episodes: bool = False) -> Path:
    run = results / "runs" / "dqn" / game / f"seed{seed}"
    run.mkdir(parents=True)
    hp = {"training_length_frames": PLANNED_FRAMES, "action_repeat_frames": 4, "replay_start_size_steps": 50_000}
    (run / "config.json").write_text(json.dumps({"game": game, "seed": seed, "hyperparameters": hp}))
    (run / ".train.lock").write_text("")
    if percent is not None:
        done = PLANNED_FRAMES * percent / 100
        # As dqn.progress records them beside each progress line.
        (run / "progress.json").write_text(json.dumps({
            "frames": done, "frames_planned": PLANNED_FRAMES, "agent_steps": done / 4, "agent_steps_per_second": rate,
            "eta_seconds": 60.0, "epsilon": 0.5, "unix_time": 0.0}))
    for frames, score, count in eval_rows:
        (run / "eval").mkdir(exist_ok=True)
        pd.DataFrame({"game": [game], "seed": np.array([seed]), "frames": np.array([frames]),
                      "eval_score_mean": [score], "eval_episodes": np.array([count]),
                      "eval_frames": np.array([500_000]), "wall_seconds": [80.0]}
                     ).to_parquet(run / "eval" / f"frames_{frames:012d}.parquet")
    if complete:
        (run / "snapshots").mkdir()
        (run / "snapshots" / "COMPLETE").write_text("training complete\n")
    if outputs:
        for name in ("final.pt", "best.pt", "learning_curve.parquet"):
            (run / name).write_bytes(b"x")
    if episodes:
        for weights in ("best", "final"):
            path = results / "episodes" / "dqn" / game / f"seed{seed}" / f"{weights}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
    return run


@pytest.fixture
def experiment(tmp_path):
    results = tmp_path / "results" / "exp"
    runs = {
        "starting": make_run(results, "alien"),
        "random start": make_run(results, "amidar", percent=25.0, rate=200.0),  # 25,000 steps < 50,000
        "learning": make_run(results, "breakout", percent=50.0, rate=100.0, eval_rows=[(100_000, 1.5, 9), (200_000, 3.25, 7)]),
        "evaluating": make_run(results, "pong", percent=100.0, complete=True, eval_rows=[(400_000, float("nan"), 0)]),
        "done": make_run(results, "boxing", percent=100.0, complete=True, outputs=True, episodes=True),
        "stopped": make_run(results, "enduro", percent=60.0),
    }
    held = []
    for state in ("starting", "random start", "learning", "evaluating"):  # as a running dqn.train holds it
        handle = open(runs[state] / ".train.lock", "a+")
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.append(handle)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"games": ["alien", "breakout", "seaquest"], "seeds": [0]}))
    yield results, config
    for handle in held:
        handle.close()


def test_each_state_is_read_from_the_run_folder(experiment):
    results, _ = experiment
    states = {game: run_status(results, game, 0) for game in ("alien", "amidar", "breakout", "pong", "boxing", "enduro")}
    assert {game: s.state for game, s in states.items()} == {
        "alien": "starting", "amidar": "random start", "breakout": "learning", "pong": "evaluating",
        "boxing": "done", "enduro": "stopped"}
    learning = states["breakout"]
    # 50% of 400,000 frames; 200,000 frames = 50,000 agent steps left at 100 steps/s: 500 s.
    assert (learning.frames_done, learning.frames_planned) == (200_000, 400_000)
    assert learning.eta_seconds == pytest.approx(500.0)
    assert learning.row() == ["breakout", "0", "learning", "200.0k/400.0k", "100", "8m 20s", "3.2 at 200.0k",
                              "no evaluation at a reference point yet (the first is at 1M frames)"]
    assert states["amidar"].eta_seconds == pytest.approx(300_000 / 4 / 200.0)
    # An evaluation that completed no episode says so; a finished training has no ETA.
    assert states["pong"].row()[2:7] == ["evaluating", "400.0k/400.0k", "100", "-", "no episode at 400.0k"]
    assert states["enduro"].row()[5] == "-"  # a stopped run has no ETA
    assert run_status(results, "seaquest", 0).state == "queued"


def test_cli_prints_a_row_per_run_and_the_totals(experiment, capsys):
    results, config = experiment
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, [str(results), "--config", str(config)])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["game", "seed", "state", "frames", "agent", "steps/s", "ETA", "latest", "eval", "score",
                                "on", "track"]
    games = [line.split()[0] for line in lines[1:-2]]
    assert games == ["alien", "breakout", "seaquest", "amidar", "boxing", "enduro", "pong"]  # the plan first
    assert "queued" in lines[3]
    # 7 runs; two training (amidar 375 s, breakout 500 s) at a mean 150 steps/s; alien, seaquest
    # (its plan unknown: the largest, 400k) and enduro (160k left) wait: 875 + (100k + 100k + 40k) / 150 = 2,475 s.
    assert lines[-1].startswith("7 runs: 1 starting, 1 learning, 1 queued, 1 random start, 1 done, 1 stopped, 1 evaluating")
    assert lines[-1].endswith("training ETA 20m 38s at 2 at once")


def test_an_empty_or_missing_results_folder_prints_one_line(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        done = subprocess.run([sys.executable, "-m", "analysis.status", str(folder)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stderr == ""
        assert done.stdout.count("\n") == 1 and done.stdout.startswith("no training runs under")
    bad = subprocess.run([sys.executable, "-m", "analysis.status", str(tmp_path), "--watch", "0"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --watch") and bad.stderr.count("\n") == 1


# nnabla-rl's Breakout seeds (1, 10, 100): 0.32 / 2.3 / 0.823 at 1M frames, 4.274 / 1.291 / 5.636
# at 2M, 13.607 / 8.582 / 14.305 at 3M; their means over 1M-3M: 6.067, 4.058, 6.921.
@pytest.mark.parametrize("scores, phrase", [
    ((1.0, 3.0, 10.0), "within 3/3 evaluations; mean so far within"),  # mean 4.67 in [4.06, 6.92]
    ((0.1, 0.5, 2.0), "below 3/3 evaluations; mean so far below"),
    ((3.0, 6.0, 20.0), "above 3/3 evaluations; mean so far above"),
    ((1.0, 0.5, 1.0), "below since 2M frames; mean so far below"),  # within at 1M, then below
])
def test_the_on_track_column_places_each_run_among_the_same_protocol_seeds(tmp_path, scores, phrase):
    results = tmp_path / "results"
    make_run(results, "breakout", percent=10.0,
             eval_rows=[(f, score, 100) for f, score in zip((1_000_000, 2_000_000, 3_000_000), scores)])
    assert run_status(results, "breakout", 0).on_track == phrase


def test_a_run_off_the_paper_hyperparameters_is_not_comparable_and_says_why(tmp_path):
    results = tmp_path / "results"
    run = make_run(results, "breakout", percent=10.0, eval_rows=[(1_000_000, 1.0, 100)])
    config = json.loads((run / "config.json").read_text())
    config["hyperparameters"].update(learning_rate=0.0001, target_network_update_frequency_steps=2_000)
    (run / "config.json").write_text(json.dumps(config))
    assert run_status(results, "breakout", 0).on_track == (
        "not comparable (target_network_update_frequency_steps, learning_rate)")


def test_the_old_command_names_the_new_one_in_one_line(tmp_path):
    old = subprocess.run([sys.executable, "-m", "dqn.status", str(tmp_path), "--watch"], capture_output=True, text=True,
                         timeout=60)
    assert old.returncode == 2 and old.stdout == "" and old.stderr.count("\n") == 1
    assert old.stderr.strip() == (f"error: python -m dqn.status is now python -m analysis.status; run: "
                                  f"python -m analysis.status {tmp_path} --watch")
