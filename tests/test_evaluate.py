"""The final evaluation: the 5-minute cut, no-op starts, the exploration rate, seeding, the CLI."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dqn.config import NATURE
from dqn.errors import UserError, cli_main
from dqn.evaluate import evaluate, main
from dqn.networks import build_network
from dqn.policy import DQNPolicy
from dqn.run_folder import EPISODE_COLUMNS
from helpers.fake_ale import MINIMAL_ACTIONS, FakeALE, FakeGames


class FixedQ(nn.Module):
    """Q-values that always prefer `action` (1 for it, 0 for the others), whatever the state."""

    def __init__(self, num_actions: int, action: int):
        super().__init__()
        q = torch.zeros(num_actions)
        q[action] = 1.0
        self.register_buffer("q", q)

    def forward(self, x):
        return self.q.expand(x.shape[0], -1)


def agent_actions(ale: FakeALE, noop_frames: int, action_repeat_frames: int) -> list[int]:
    """The action index chosen at each agent step of the (single) episode played on `ale`."""
    episode = [(frame, MINIMAL_ACTIONS.index(a)) for game, frame, a in ale.actions if game == ale.game]
    return [index for frame, index in episode if frame > noop_frames and (frame - noop_frames - 1) % action_repeat_frames == 0]


def test_a_game_that_never_ends_is_cut_at_exactly_18000_frames():
    games = FakeGames()  # the fake game never ends
    policy = DQNPolicy(FixedQ(4, 0), 4)
    rows = evaluate(policy, "breakout", seed=5, episodes=3, epsilon=0.05, num_workers=1, env_factory=games)
    assert list(rows["length_frames"]) == [18_000] * 3
    assert rows["truncated"].all()
    # The no-op start is inside the 18,000 frames: 18,000 - noop frames are left for agent steps,
    # which are not a multiple of 4 in general, so the last step is cut short.
    for ale, noop in zip(games.ales, rows["noop_frames"]):
        played = [frame for game, frame, _ in ale.actions if game == ale.game]
        assert played == list(range(1, 18_001))
        assert len(agent_actions(ale, noop, 4)) == math.ceil((18_000 - noop) / 4)


def test_a_game_that_ends_is_not_truncated_and_keeps_its_raw_score():
    # Game over at frame 1,000; rewards of 25 (unclipped) at every 100th frame: 10 of them.
    games = FakeGames(episode_lengths_frames=[1_000] * 5, reward=lambda f: 25 if f % 100 == 0 else 0)
    rows = evaluate(DQNPolicy(FixedQ(4, 0), 4), "pong", seed=0, episodes=2, num_workers=1, env_factory=games)
    assert list(rows["length_frames"]) == [1_000, 1_000]
    assert not rows["truncated"].any()
    assert list(rows["score"]) == [250.0, 250.0]


def test_noop_starts_lie_in_1_to_30_and_vary_over_30_episodes():
    games = FakeGames()
    policy = DQNPolicy(FixedQ(4, 1), 4)  # always FIRE, so the first non-NOOP frame ends the no-op start
    rows = evaluate(policy, "breakout", seed=11, episodes=30, epsilon=0.0, max_episode_frames=40,
                    num_workers=1, env_factory=games)
    noops = rows["noop_frames"].to_numpy()
    assert noops.min() >= 1 and noops.max() <= 30
    assert len(set(noops)) >= 10  # 30 draws from 1..30 give about 19 distinct values
    for ale, noop in zip(games.ales, noops):
        episode = [a for game, _, a in ale.actions if game == ale.game]
        assert episode[:noop] == [MINIMAL_ACTIONS[0]] * noop and episode[noop] == MINIMAL_ACTIONS[1]


def test_measured_exploration_rate_of_a_greedy_agent_is_0_05():
    # The Q-values always prefer action 0 of 4. With epsilon 0.05 a uniform random action (action
    # 0 included) replaces the greedy one, so P(action != 0) = 0.05 * 3/4 = 0.0375.
    games = FakeGames()
    rows = evaluate(DQNPolicy(FixedQ(4, 0), 4), "breakout", seed=3, episodes=30, epsilon=0.05,
                    max_episode_frames=1_631, num_workers=1, env_factory=games)
    actions = np.concatenate([agent_actions(ale, noop, 4) for ale, noop in zip(games.ales, rows["noop_frames"])])
    n = len(actions)
    assert n >= 12_000
    p_other = 0.05 * 3 / 4
    bound = 4 * math.sqrt(p_other * (1 - p_other) / n)  # 4 binomial standard errors
    measured_other = float(np.mean(actions != 0))
    assert abs(measured_other - p_other) < bound
    # Translated back to epsilon: 0.05 within 4/3 of the bound (a rule that drew the random action
    # among the other actions only would measure 0.0667 and fail).
    assert abs(measured_other * 4 / 3 - 0.05) < bound * 4 / 3
    counts = np.bincount(actions, minlength=4)[1:]
    assert counts.min() > 0.6 * counts.mean()  # the random actions are spread over all actions


def test_epsilon_zero_is_purely_greedy_and_ties_break_at_random():
    games = FakeGames()
    greedy = evaluate(DQNPolicy(FixedQ(4, 2), 4), "breakout", seed=1, episodes=2, epsilon=0.0,
                      max_episode_frames=431, num_workers=1, env_factory=games)
    for ale, noop in zip(games.ales, greedy["noop_frames"]):
        assert set(agent_actions(ale, noop, 4)) == {2}

    class AllEqual(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 4)

    games = FakeGames()
    ties = evaluate(DQNPolicy(AllEqual(), 4), "breakout", seed=1, episodes=1, epsilon=0.0,
                    max_episode_frames=431, num_workers=1, env_factory=games)
    chosen = agent_actions(games.ales[0], int(ties["noop_frames"][0]), 4)
    assert set(chosen) == {0, 1, 2, 3}


def save_weights(path, *, game="breakout", num_actions=4, seed=0, **hp_overrides):
    torch.manual_seed(seed)
    network = build_network("nature", (4, 84, 84), num_actions)
    hp = NATURE.to_dict()
    hp.update(hp_overrides)
    torch.save({"state_dict": network.state_dict(), "network": "nature", "num_actions": num_actions, "game": game,
                "frames": 1_000_000, "hyperparameters": hp}, path)
    return path


def test_scores_are_reproducible_and_independent_of_the_number_of_workers(tmp_path):
    # A real ROM and random weights: 3 short episodes of Breakout.
    policy = DQNPolicy.from_weights(save_weights(tmp_path / "w.pt"), "cpu")
    kwargs = dict(episodes=3, max_episode_frames=400, epsilon=0.05)
    one = evaluate(policy, "breakout", seed=7, num_workers=1, **kwargs)
    again = evaluate(policy, "breakout", seed=7, num_workers=1, **kwargs)
    two = evaluate(policy, "breakout", seed=7, num_workers=2, **kwargs)
    pd.testing.assert_frame_equal(one, again)
    pd.testing.assert_frame_equal(one, two)
    other_seed = evaluate(policy, "breakout", seed=8, num_workers=1, **kwargs)
    assert list(other_seed["noop_frames"]) != list(one["noop_frames"])
    # Episode i depends only on (seed, i): the first 2 of 3 episodes are the 2 episodes of a shorter run.
    first_two = evaluate(policy, "breakout", seed=7, num_workers=1, **{**kwargs, "episodes": 2})
    pd.testing.assert_frame_equal(first_two, one.iloc[:2])


def test_rows_follow_the_design_columns_and_types(tmp_path):
    games = FakeGames()
    rows = evaluate(DQNPolicy(FixedQ(4, 0), 4), "breakout", seed=2, episodes=2, max_episode_frames=100,
                    num_workers=1, env_factory=games, weights="best")
    assert tuple(rows.columns) == EPISODE_COLUMNS
    assert list(rows["episode"]) == [0, 1]
    assert set(rows["agent"]) == {"dqn"} and set(rows["weights"]) == {"best"} and set(rows["game"]) == {"breakout"}
    assert {c: str(rows[c].dtype) for c in ("seed", "episode", "score", "length_frames", "noop_frames", "truncated")} == {
        "seed": "int64", "episode": "int64", "score": "float64", "length_frames": "int64", "noop_frames": "int64",
        "truncated": "bool"}


def test_from_weights_applies_the_per_game_action_repeat(tmp_path):
    path = save_weights(tmp_path / "w.pt", game="space_invaders", num_actions=6,
                        action_repeat_frames_per_game={"space_invaders": 3})
    policy = DQNPolicy.from_weights(path, "cpu")
    assert policy.hyperparameters.action_repeat_frames == 3
    assert (policy.game, policy.frames, policy.num_actions) == ("space_invaders", 1_000_000, 6)


def test_a_policy_for_another_action_set_is_refused():
    games = FakeGames()  # the fake game has 4 actions
    with pytest.raises(UserError, match="6 actions"):
        evaluate(DQNPolicy(FixedQ(6, 0), 6), "breakout", seed=0, episodes=1, num_workers=1, env_factory=games)


# --- CLI ------------------------------------------------------------------------------------


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, argv)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--game": "not_a_game"}, "unknown game 'not_a_game'"),
        ({"--weights": "missing.pt"}, "does not exist"),
        ({"--game": "pong"}, "trained on 'breakout', not 'pong'"),
        ({"--out": "/proc/no/episodes.parquet"}, "cannot write to output folder"),
    ],
)
def test_cli_input_errors_are_one_line_with_exit_code_2_and_no_output(tmp_path, monkeypatch, capsys, change, message):
    monkeypatch.chdir(tmp_path)
    save_weights(tmp_path / "best.pt")
    args = {"--game": "breakout", "--weights": "best.pt", "--label": "best", "--seed": "0", "--out": "episodes.parquet"}
    args.update(change)
    code, err = run_cli([x for kv in args.items() for x in kv], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "episodes.parquet").exists()


def test_cli_writes_one_labelled_row_per_episode(tmp_path, capsys):
    weights = save_weights(tmp_path / "final.pt", final_eval_max_episode_frames=200)
    out = tmp_path / "results" / "episodes.parquet"
    code, err = run_cli(["--game", "breakout", "--weights", str(weights), "--label", "final", "--seed", "4",
                         "--out", str(out), "--episodes", "2", "--workers", "1", "--device", "cpu"], capsys)
    assert code == 0, err
    rows = pd.read_parquet(out)
    assert tuple(rows.columns) == EPISODE_COLUMNS
    assert list(rows["episode"]) == [0, 1] and set(rows["weights"]) == {"final"} and set(rows["seed"]) == {4}
    # The cut comes from the weights' hyperparameters (final_eval_max_episode_frames = 200).
    assert rows["length_frames"].max() <= 200
    assert "2/2 episodes done" in err
    assert [p.name for p in out.parent.iterdir()] == ["episodes.parquet"]  # no temporary file left


# --- malformed weights files and the order of checks -----------------------------------------


def edited_weights(path, edit):
    """A good weights file, loaded, passed through `edit(blob)` and saved again (a hand edit)."""
    save_weights(path)
    blob = torch.load(path, weights_only=True)
    torch.save(edit(blob), path)
    return path


def with_entry(key, value):
    return lambda blob: {**blob, key: value}


def with_state(change):
    def edit(blob):
        state = dict(blob["state_dict"])
        change(state)
        return {**blob, "state_dict": state}

    return edit


def first_weight(value):
    def change(state):
        name = next(iter(state))
        tensor = state[name].clone()
        tensor.view(-1)[0] = value
        state[name] = tensor

    return change


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def truncated(path):
    save_weights(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit(change):
    return lambda path: edited_weights(path, change)


def bad_hyperparameter(blob):
    return {**blob, "hyperparameters": {**blob["hyperparameters"], "lerning_rate": 1}}


# case: (make the file at path, part of the one-line message)
MALFORMED_WEIGHTS = {
    "random bytes": (random_bytes, "not a torch file"),
    "zero-filled": (lambda path: path.write_bytes(bytes(4096)), "not a torch file"),
    "truncated": (truncated, "damaged"),
    "empty": (lambda path: path.write_bytes(b""), "is empty"),
    "not a dict": (lambda path: torch.save([1, 2, 3], path), "holds a list"),
    "missing keys": (edit(lambda b: {k: v for k, v in b.items() if k not in ("network", "game")}), "lacks network, game"),
    "unknown network": (edit(with_entry("network", "resnet50")), "unknown network 'resnet50'"),
    "num_actions a string": (edit(with_entry("num_actions", "4")), "num_actions"),
    "frames negative": (edit(with_entry("frames", -1)), "frames"),
    "game not a string": (edit(with_entry("game", 3)), "game must be"),
    "hyperparameters a list": (edit(with_entry("hyperparameters", [1])), "hyperparameters must be a dict"),
    "unknown hyperparameter": (edit(bad_hyperparameter), "unknown hyperparameter 'lerning_rate'"),
    "state_dict not a dict": (edit(with_entry("state_dict", [])), "state_dict must be"),
    "state_dict entry not a tensor": (edit(with_state(lambda s: s.update(extra=1.5))), "not tensors: extra"),
    "state_dict for more actions": (edit(with_entry("num_actions", 6)), "head.2.weight (4, 512) where the network has (6, 512)"),
    "state_dict missing a layer": (edit(with_state(lambda s: s.pop(next(iter(s))))), "missing torso.0.weight"),
    "state_dict with an extra layer": (edit(with_state(lambda s: s.update(extra=torch.zeros(2)))), "unexpected extra"),
    "NaN weights": (edit(with_state(first_weight(float("nan")))), "NaN or infinite"),
    "infinite weights": (edit(with_state(first_weight(float("inf")))), "NaN or infinite"),
}


@pytest.mark.parametrize("case", list(MALFORMED_WEIGHTS))
def test_a_malformed_weights_file_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, case):
    make, message = MALFORMED_WEIGHTS[case]
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "hand_edited.pt")
    code, err = run_cli(["--game", "breakout", "--weights", "hand_edited.pt", "--label", "best", "--seed", "0",
                         "--out", "results/breakout/episodes.parquet", "--device", "cpu"], capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "hand_edited.pt" in err and message in err, err
    assert not (tmp_path / "results").exists()  # refused before the output folder was made


def test_a_weights_folder_is_refused_as_a_folder(tmp_path, capsys):
    code, err = run_cli(["--game", "breakout", "--weights", str(tmp_path), "--label", "best", "--seed", "0",
                         "--out", str(tmp_path / "out" / "e.parquet")], capsys)
    assert code == 2 and "is a folder" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_hand_edited_network_name_is_one_line_in_a_real_process(tmp_path):
    # The case that used to end in build_network's traceback.
    import subprocess
    import sys
    from pathlib import Path

    weights = edited_weights(tmp_path / "final.pt", with_entry("network", "resnet"))
    result = subprocess.run(
        [sys.executable, "-m", "dqn.evaluate", "--game", "breakout", "--weights", str(weights), "--label", "final",
         "--seed", "0", "--out", str(tmp_path / "out" / "episodes.parquet"), "--device", "cpu"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert str(weights) in result.stderr and "unknown network 'resnet'" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flag, value",
    [("--episodes", "0"), ("--epsilon", "2"), ("--epsilon", "nan"), ("--seed", "-1"), ("--workers", "-1"), ("--label", " ")],
)
def test_bad_arguments_are_refused_before_the_weights_are_read(tmp_path, capsys, flag, value):
    # The weights file does not exist: a message about it would mean it was looked at first.
    args = {"--game": "breakout", "--weights": str(tmp_path / "no_such.pt"), "--label": "best", "--seed": "0",
            "--out": str(tmp_path / "out" / "episodes.parquet")}
    args[flag] = value
    code, err = run_cli([x for kv in args.items() for x in kv], capsys)
    assert code == 2 and err.startswith(f"error: {flag} ") and err.count("\n") == 1, err
    assert "no_such.pt" not in err
    assert not (tmp_path / "out").exists()


def test_an_evaluation_that_fails_removes_the_output_folder_it_made(tmp_path, capsys, monkeypatch):
    import dqn.evaluate

    def fail(*args, **kwargs):
        raise UserError("the policy has 4 actions but breakout has 6; are these weights for another game?")

    monkeypatch.setattr(dqn.evaluate, "evaluate", fail)
    weights = save_weights(tmp_path / "best.pt")
    code, err = run_cli(["--game", "breakout", "--weights", str(weights), "--label", "best", "--seed", "0",
                         "--out", str(tmp_path / "out" / "deeper" / "episodes.parquet"), "--device", "cpu"], capsys)
    assert code == 2 and "another game" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_the_cli_clears_its_own_stale_temporary_and_leaves_the_others(tmp_path, capsys):
    import os
    import time

    weights = save_weights(tmp_path / "final.pt", final_eval_max_episode_frames=100)
    out = tmp_path / "results" / "episodes.parquet"
    out.parent.mkdir()
    an_hour_ago = time.time() - 7200
    own, other = out.parent / ".episodes.parquet.crash123.tmp", out.parent / ".other.parquet.crash456.tmp"
    for path in (own, other):
        path.write_text("left by a crash")
        os.utime(path, (an_hour_ago, an_hour_ago))
    code, err = run_cli(["--game", "breakout", "--weights", str(weights), "--label", "final", "--seed", "0",
                         "--out", str(out), "--episodes", "1", "--workers", "1", "--device", "cpu"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == [other.name, "episodes.parquet"]
