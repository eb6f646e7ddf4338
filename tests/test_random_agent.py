"""The 10 Hz random agent: actions change only on every 6th frame, scored by the DQN protocol."""

import math

import numpy as np
import pandas as pd
import pytest

from baselines.random_agent import RandomPolicy, evaluate_random_agent, main
from dqn.errors import cli_main
from dqn.run_folder import EPISODE_COLUMNS
from helpers.fake_ale import MINIMAL_ACTIONS, FakeGames


def test_action_changes_only_on_every_6th_frame_and_the_cut_is_3000_choices():
    games = FakeGames()  # a game that never ends: every episode runs into the 18,000-frame cut
    rows = evaluate_random_agent("breakout", seed=0, episodes=2, num_workers=1, env_factory=games, num_actions=4)
    assert list(rows["length_frames"]) == [18_000, 18_000] and rows["truncated"].all()
    for ale, noop in zip(games.ales, rows["noop_frames"]):
        per_frame = [MINIMAL_ACTIONS.index(a) for game, _, a in ale.actions if game == ale.game]
        assert len(per_frame) == 18_000
        assert per_frame[:noop] == [0] * noop  # the no-op start
        played = per_frame[noop:]
        changes = [i for i in range(1, len(played)) if played[i] != played[i - 1]]
        assert changes and all(i % 6 == 0 for i in changes)
        choices = [played[i] for i in range(0, len(played), 6)]
        # 3,000 choices in 18,000 frames, less the no-op start (the last choice may be cut short).
        assert len(choices) == math.ceil((18_000 - noop) / 6) and 2_995 <= len(choices) <= 3_000
        # Uniform over the 4 actions: each near 750 of 3,000 (4 binomial standard errors ~ 95).
        counts = np.bincount(choices, minlength=4)
        assert np.all(np.abs(counts - len(choices) / 4) < 4 * math.sqrt(len(choices) * 0.25 * 0.75))


def test_random_policy_draws_from_each_episode_generator_only():
    policy = RandomPolicy(18)
    rngs = [np.random.default_rng(1), np.random.default_rng(2)]
    first = policy.act(np.zeros((2, 4, 84, 84), np.uint8), rngs, epsilon=0.05)
    again = policy.act(np.zeros((1, 4, 84, 84), np.uint8), [np.random.default_rng(2)], epsilon=0.05)
    assert first[1] == again[0]
    assert [int(np.random.default_rng(1).integers(18))] == [first[0]]


def test_real_game_rows_are_labelled_reproducible_and_scored_raw():
    kwargs = dict(seed=3, episodes=2, num_workers=1, max_episode_frames=3_000)
    rows = evaluate_random_agent("breakout", **kwargs)
    assert tuple(rows.columns) == EPISODE_COLUMNS
    assert set(rows["agent"]) == {"random"} and set(rows["weights"]) == {"none"}
    assert (rows["noop_frames"].between(1, 30)).all()
    pd.testing.assert_frame_equal(rows, evaluate_random_agent("breakout", **kwargs))


def test_cli_writes_rows_and_refuses_a_bad_game(tmp_path, capsys):
    out = tmp_path / "random.parquet"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, ["--game", "not_a_game", "--seed", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: unknown game") and err.count("\n") == 1
    assert not out.exists()

    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, ["--game", "pong", "--seed", "1", "--out", str(out), "--episodes", "1", "--workers", "1"])
    assert exit_info.value.code == 0
    rows = pd.read_parquet(out)
    assert list(rows["episode"]) == [0] and rows["agent"][0] == "random" and rows["seed"][0] == 1
    # Random Pong loses 0-21 or close to it, within the 5-minute cut.
    assert -21 <= rows["score"][0] <= -15 and rows["length_frames"][0] <= 18_000


@pytest.mark.parametrize("flag, value", [("--episodes", "0"), ("--seed", "-1"), ("--workers", "-1")])
def test_bad_arguments_are_refused_before_the_rom_is_loaded_and_no_folder_is_made(tmp_path, capsys, monkeypatch, flag, value):
    import baselines.random_agent

    def no_rom(game):
        raise AssertionError("the ROM was loaded before the arguments were checked")

    monkeypatch.setattr(baselines.random_agent, "num_actions_of", no_rom)
    args = {"--game": "pong", "--seed": "0", "--out": str(tmp_path / "out" / "random.parquet"), flag: value}
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, [x for kv in args.items() for x in kv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith(f"error: {flag} ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_run_that_fails_removes_the_output_folder_it_made(tmp_path, capsys, monkeypatch):
    import baselines.random_agent
    from dqn.errors import UserError

    def fail(*args, **kwargs):
        raise UserError("an evaluation worker failed")

    monkeypatch.setattr(baselines.random_agent, "evaluate_random_agent", fail)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(main, ["--game", "pong", "--seed", "0", "--out", str(tmp_path / "out" / "random.parquet")])
    assert exit_info.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
