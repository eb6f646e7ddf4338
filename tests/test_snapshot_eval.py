"""Training-time evaluation: a budget of frames, one result per snapshot, resumable, best snapshot, learning curve."""

import json
import math
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from dqn.config import NATURE
from dqn.errors import cli_main
from dqn.fileio import write_torch
from dqn.networks import build_network
from dqn.policy import DQNPolicy
from dqn.run_folder import (
    EVAL_COLUMNS,
    best_choice_score,
    best_snapshot,
    eval_path,
    learning_curve,
    read_eval_results,
    snapshot_path,
)
from dqn.snapshot_eval import evaluate_for_frames, evaluate_pending, main, play_for_frames
from helpers.fake_ale import FakeGames

# Fake games alternate between 100 and 60 frames; a reward of 1 on every 10th frame gives scores
# 10 and 6. With no no-op start (noop_max_frames 0) and 4 frames a step, they last 25 and 15 steps.
EPISODE_LENGTHS = [100, 60] * 50


def alternating_games():
    return FakeGames(episode_lengths_frames=EPISODE_LENGTHS, reward=lambda f: 1 if f % 10 == 0 else 0)


def random_policy(seed=0):
    torch.manual_seed(seed)
    return DQNPolicy(build_network("nature", (4, 84, 84), 4), 4)


class ConstantPolicy:
    """Always action 0, with no network: long budgets cost only the emulation."""

    num_actions = 4
    history_length_frames = 4

    def act(self, states, rngs, epsilon):
        return np.zeros(len(states), dtype=np.int64)


def test_budget_counts_only_completed_episodes():
    # 480 frames = 120 steps in one env: 25+15+25+15+25 = 105 steps, then a 15-step episode ends
    # on the 120th, last, step: it is complete and counts; 6 episodes, mean (10+6)/2 = 8.
    result = play_for_frames(random_policy(), "breakout", seed=1, total_frames=480, noop_max_frames=0,
                             env_factory=alternating_games())
    assert [e.score for e in result.episodes] == [10.0, 6.0] * 3
    assert (result.frames, result.agent_steps, result.unfinished_episodes) == (480, 120, 0)
    assert evaluate_for_frames(random_policy(), "breakout", seed=1, total_frames=480, noop_max_frames=0,
                               env_factory=alternating_games()) == (8.0, 6)
    # 400 frames = 100 steps: 25+15+25+15 = 80, then 20 steps of a 25-step episode: discarded.
    result = play_for_frames(random_policy(), "breakout", seed=1, total_frames=400, noop_max_frames=0,
                             env_factory=alternating_games())
    assert [e.score for e in result.episodes] == [10.0, 6.0, 10.0, 6.0] and result.unfinished_episodes == 1


def test_one_environment_plays_the_whole_budget_and_discards_the_last_episode():
    # Episodes of 3,000 agent steps (12,000 frames, no no-op start), a budget of 10,000 steps:
    # exactly 3 complete (9,000 steps) and the 4th, 1,000 steps in, is discarded.
    games = FakeGames(episode_lengths_frames=[12_000] * 10, reward=lambda f: 1 if f % 1_000 == 0 else 0)
    result = play_for_frames(ConstantPolicy(), "breakout", seed=2, total_frames=40_000, noop_max_frames=0,
                             env_factory=games)
    assert len(result.episodes) == 3 and result.unfinished_episodes == 1
    assert [e.length_frames for e in result.episodes] == [12_000] * 3
    assert [e.score for e in result.episodes] == [12.0] * 3
    assert (result.agent_steps, result.frames) == (10_000, 40_000)
    assert len(games.ales) == 1  # one environment, not a budget cut into pieces

    # Episodes of 12,000 agent steps: none completes; the best choice counts such a score as 0.
    mean, episodes = evaluate_for_frames(ConstantPolicy(), "breakout", seed=2, total_frames=40_000,
                                         noop_max_frames=0, env_factory=FakeGames(episode_lengths_frames=[48_000] * 2))
    assert math.isnan(mean) and episodes == 0
    assert best_choice_score(mean, episodes) == 0.0
    assert best_choice_score(-3.5, 2) == -3.5


def test_no_episode_cap_during_training_time_evaluation():
    # A game that never ends, over 40,000 frames: more than twice the final evaluation's 5-minute
    # cap (18,000 frames), which would cut it into 2 scored episodes; train_agent.lua had no cap.
    mean, episodes = evaluate_for_frames(ConstantPolicy(), "breakout", seed=1, total_frames=40_000,
                                         env_factory=FakeGames())
    assert math.isnan(mean) and episodes == 0


def make_run(run_dir, snapshot_frames, *, game="breakout", seed=3, **hp_overrides):
    hp = NATURE.to_dict()
    hp.update({"eval_length_frames": 480, "noop_max_frames": 0, "eval_interval_frames": 40_000}, **hp_overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"game": game, "seed": seed, "preset": "test", "hyperparameters": hp}))
    for i, frames in enumerate(snapshot_frames):
        add_snapshot(run_dir, frames, hp, game=game, seed=i)
    return run_dir


def add_snapshot(run_dir, frames, hp=None, *, game="breakout", seed=0):
    torch.manual_seed(seed)
    network = build_network("nature", (4, 84, 84), 4)
    hp = hp or json.loads((run_dir / "config.json").read_text())["hyperparameters"]
    # Atomically, as training writes them: a follower never sees a half-written snapshot.
    write_torch({"state_dict": network.state_dict(), "network": "nature", "num_actions": 4, "game": game,
                "frames": frames, "hyperparameters": hp}, snapshot_path(run_dir, frames))


def test_evaluate_pending_writes_one_result_per_snapshot_and_resumes(tmp_path):
    run = make_run(tmp_path / "run", [40_000, 80_000, 120_000])
    games = alternating_games()
    assert evaluate_pending(run, env_factory=games) == 3
    rows = pd.concat([pd.read_parquet(eval_path(run, f)) for f in (40_000, 80_000, 120_000)], ignore_index=True)
    assert tuple(rows.columns) == EVAL_COLUMNS
    assert list(rows["frames"]) == [40_000, 80_000, 120_000]
    assert set(rows["game"]) == {"breakout"} and set(rows["seed"]) == {3}
    assert list(rows["eval_score_mean"]) == [8.0] * 3 and list(rows["eval_episodes"]) == [6] * 3
    assert list(rows["eval_frames"]) == [480] * 3
    assert str(rows["eval_episodes"].dtype) == "int64" and (rows["wall_seconds"] > 0).all()

    # A second call finds nothing to do and rewrites nothing.
    mtimes = [eval_path(run, f).stat().st_mtime_ns for f in (40_000, 80_000, 120_000)]
    assert evaluate_pending(run, env_factory=games) == 0
    assert mtimes == [eval_path(run, f).stat().st_mtime_ns for f in (40_000, 80_000, 120_000)]

    # A lost result (an evaluator killed before its write) is redone alone, with the same numbers.
    eval_path(run, 80_000).unlink()
    add_snapshot(run, 160_000)
    assert evaluate_pending(run, env_factory=games) == 2
    redone = pd.read_parquet(eval_path(run, 80_000))
    pd.testing.assert_frame_equal(redone.drop(columns="wall_seconds"), rows.iloc[[1]].reset_index(drop=True).drop(columns="wall_seconds"))
    assert mtimes[0] == eval_path(run, 40_000).stat().st_mtime_ns


def test_re_evaluation_on_a_real_game_is_reproducible_across_worker_counts(tmp_path):
    run = make_run(tmp_path / "run", [40_000, 80_000], eval_length_frames=800, noop_max_frames=30)
    assert evaluate_pending(run) == 2
    first = read_eval_results(run)
    for frames in (40_000, 80_000):
        eval_path(run, frames).unlink()
    # Two snapshots at once, each in a worker process of its own: the same rows.
    assert evaluate_pending(run, num_workers=2) == 2
    second = read_eval_results(run)
    pd.testing.assert_frame_equal(first.drop(columns="wall_seconds"), second.drop(columns="wall_seconds"))
    # 800 frames of agent steps, plus the no-op start of 1..30 frames of each episode started.
    assert (802 <= first["eval_frames"]).all()
    assert (first["eval_frames"] <= 800 + 30 * (1 + first["eval_episodes"])).all()


def test_follow_waits_for_new_snapshots_until_training_is_complete(tmp_path):
    run = make_run(tmp_path / "run", [40_000])
    counts = []
    thread = threading.Thread(target=lambda: counts.append(
        evaluate_pending(run, follow=True, poll_seconds=0.02, env_factory=alternating_games())))
    thread.start()
    try:
        assert _wait_for(lambda: eval_path(run, 40_000).exists())
        assert thread.is_alive()  # no COMPLETE marker yet: it keeps polling
        add_snapshot(run, 80_000)
        assert _wait_for(lambda: eval_path(run, 80_000).exists())
        add_snapshot(run, 120_000)
        (run / "snapshots" / "COMPLETE").write_text("training complete\n")
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert counts == [3] and eval_path(run, 120_000).exists()


def _wait_for(condition, timeout_seconds=30.0):
    import time

    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def write_eval(run, frames, score, episodes):
    eval_path(run, frames).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"game": ["breakout"], "seed": np.array([3]), "frames": np.array([frames]),
                  "eval_score_mean": [float(score)], "eval_episodes": np.array([episodes]),
                  "eval_frames": np.array([500_000]), "wall_seconds": [60.0]}).to_parquet(eval_path(run, frames))


def test_best_snapshot_keeps_the_earlier_one_on_ties_and_scores_no_episode_as_zero(tmp_path):
    run = make_run(tmp_path / "run", [40_000, 80_000, 120_000, 160_000])
    assert best_snapshot(run) is None  # nothing evaluated yet
    write_eval(run, 40_000, math.nan, 0)
    # DeepMind's code: the first evaluation is always the best so far, at 0 without an episode.
    assert best_snapshot(run) == snapshot_path(run, 40_000)
    write_eval(run, 80_000, 5.0, 3)
    write_eval(run, 120_000, 7.0, 4)
    write_eval(run, 160_000, 7.0, 5)
    # Scores 0, 5, 7, 7: the first 7 (the 3rd snapshot) wins; the later tie does not replace it.
    assert best_snapshot(run) == snapshot_path(run, 120_000)
    snapshot_path(run, 120_000).unlink()  # a best snapshot that is gone cannot be chosen
    assert best_snapshot(run) == snapshot_path(run, 160_000)


def test_best_snapshot_ties_keep_the_second_of_scores_5_7_7(tmp_path):
    run = make_run(tmp_path / "run", [40_000, 80_000, 120_000])
    for frames, score in ((40_000, 5.0), (80_000, 7.0), (120_000, 7.0)):
        write_eval(run, frames, score, 2)
    assert best_snapshot(run) == snapshot_path(run, 80_000)
    # A score of 0 beats a negative mean: "no episode" is 0, not minus infinity.
    run = make_run(tmp_path / "negative", [40_000, 80_000])
    write_eval(run, 40_000, -21.0, 3)
    write_eval(run, 80_000, math.nan, 0)
    assert best_snapshot(run) == snapshot_path(run, 80_000)


def test_learning_curve_joins_the_train_log_on_frames(tmp_path):
    run = make_run(tmp_path / "run", [])
    train_log = pd.DataFrame({"game": ["breakout"] * 3, "seed": np.array([3, 3, 3]),
                              "frames": np.array([40_000, 80_000, 120_000]), "epsilon": [0.9, 0.8, 0.7]})
    train_log.to_parquet(run / "train_log.parquet")
    write_eval(run, 40_000, 2.5, 7)
    write_eval(run, 120_000, 4.0, 6)
    write_eval(run, 160_000, 9.0, 6)  # a snapshot whose train-log row does not exist: not in the curve
    curve = learning_curve(run)
    assert list(curve.columns) == ["game", "seed", "frames", "epsilon", "eval_score_mean", "eval_episodes", "eval_frames"]
    assert list(curve["frames"]) == [40_000, 80_000, 120_000]
    np.testing.assert_array_equal(curve["eval_score_mean"], [2.5, np.nan, 4.0])
    assert list(curve["eval_episodes"]) == [7, 0, 6] and str(curve["eval_episodes"].dtype) == "int64"
    assert list(curve["eval_frames"]) == [500_000, 0, 500_000]  # 0: not evaluated yet
    assert list(curve["epsilon"]) == [0.9, 0.8, 0.7]


def test_cli_evaluates_a_run_and_refuses_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, ["--run", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1

    run = make_run(tmp_path / "run", [40_000], eval_length_frames=400)
    (run / "snapshots" / "COMPLETE").write_text("training complete\n")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, ["--run", str(run), "--follow"])
    assert exit_info.value.code == 0
    row = pd.read_parquet(eval_path(run, 40_000))
    assert row["frames"][0] == 40_000 and row["eval_frames"][0] >= 400
    assert "evaluated 1 snapshots" in capsys.readouterr().err
