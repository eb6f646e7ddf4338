"""Reference scores of the papers and the human-normalized score, with values checked by hand."""

import numpy as np
import pandas as pd
import pytest

from baselines.reference import human_normalized, nature_table, nips2013_table
from dqn.errors import UserError
from dqn.games import PAPER_GAME_IDS


def test_nature_table_holds_the_49_paper_games_in_order():
    table = nature_table()
    assert list(table.columns) == ["game", "ale_id", "random_score", "human_score", "dqn_mean", "dqn_std"]
    assert tuple(table["ale_id"]) == PAPER_GAME_IDS
    breakout = table.set_index("ale_id").loc["breakout"]
    assert (breakout.random_score, breakout.human_score, breakout.dqn_mean, breakout.dqn_std) == (1.7, 31.8, 401.2, 26.9)
    # Pong's human score is 9.3 in Nature (14.6 in the later 57-game table, which must not be used).
    assert table.set_index("ale_id").loc["pong", "human_score"] == 9.3


def test_nips2013_table_holds_the_seven_games():
    table = nips2013_table()
    assert list(table["ale_id"]) == ["beam_rider", "breakout", "enduro", "pong", "qbert", "seaquest", "space_invaders"]
    assert table.set_index("ale_id").loc["breakout", ["random", "dqn", "human", "dqn_best"]].tolist() == [1.2, 168, 31, 225]


def test_breakout_paper_score_normalizes_to_1327_percent():
    # (401.2 - 1.7) / (31.8 - 1.7) * 100 = 399.5 / 30.1 * 100 = 1327.2425...
    value = human_normalized("breakout", 401.2)
    assert isinstance(value, float)
    assert value == pytest.approx(399.5 / 30.1 * 100, rel=1e-12)
    assert round(value, 1) == 1327.2


def test_baselines_map_to_0_and_100_percent():
    assert human_normalized("pong", -20.7) == pytest.approx(0.0)
    assert human_normalized("pong", 9.3) == pytest.approx(100.0)
    # The 2013 table has its own baselines: Breakout random 1.2, human 31.
    assert human_normalized("breakout", 31, table="nips2013") == pytest.approx(100.0)
    assert human_normalized("breakout", 168, table="nips2013") == pytest.approx(100 * 166.8 / 29.8)


def test_paper_summary_of_the_49_dqn_scores():
    table = nature_table()
    normalized = human_normalized(table["ale_id"], table["dqn_mean"])
    assert isinstance(normalized, pd.Series) and len(normalized) == 49
    assert normalized.median() == pytest.approx(93.5, abs=0.05)
    assert normalized.mean() == pytest.approx(241.1, abs=0.05)
    assert int((normalized >= 75).sum()) == 29  # "more than half of the games (29 games)"
    assert int((normalized >= 100).sum()) == 23


def test_vectorised_forms_agree_with_the_scalar_one():
    scores = np.array([1.7, 31.8, 401.2])
    np.testing.assert_allclose(human_normalized("breakout", scores), [0.0, 100.0, 1327.2425249169435])
    series = pd.Series([9.3, 31.8], index=["a", "b"])
    out = human_normalized(pd.Series(["pong", "breakout"], index=["a", "b"]), series)
    assert list(out.index) == ["a", "b"]
    np.testing.assert_allclose(out.to_numpy(), [100.0, 100.0])
    np.testing.assert_allclose(human_normalized(["pong", "breakout"], [9.3, 1.7]), [100.0, 0.0])


@pytest.mark.parametrize("game", ["not_a_game", "defender"])  # defender: an ALE ROM, not in the paper
def test_unknown_game_is_a_user_error_never_nan(game):
    with pytest.raises(UserError, match="breakout"):
        human_normalized(game, 10.0)
    with pytest.raises(UserError, match=game):
        human_normalized(["pong", game], [0.0, 0.0])


def test_unknown_table_and_mismatched_lengths_are_user_errors():
    with pytest.raises(UserError, match="nature"):
        human_normalized("pong", 0.0, table="atari57")
    with pytest.raises(UserError, match="one score per game"):
        human_normalized(["pong", "breakout"], [0.0])
