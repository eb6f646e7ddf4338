"""Reference scores of the papers and the human-normalized score, with values checked by hand."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines.reference import (
    DOPAMINE_ITERATION_FRAMES,
    NNABLA_SEEDS,
    dopamine_curves,
    human_normalized,
    nature_table,
    nips2013_table,
    nnabla_curves,
    pfrl_score,
    pfrl_table,
)
from dqn.errors import UserError
from dqn.games import PAPER_GAME_IDS

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "baselines" / "data"


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


# ---------------------------------------------------------------- the published reproductions


# SHA-256 of each reference file as copied, byte for byte, from ../shared/reference/. Where that
# folder is present (the development checkout) the shipped file is also compared with it; where it
# is not (a clean clone), the pinned hash still proves the file is the one that was compared.
SHIPPED_SHA256 = {
    "pfrl_dqn_reproduction.csv": "a1ea87e9ccdfe2b247a039afda72a59605aaf4137aad856894537fe84620a0cb",
    "dopamine_dqn_training_returns.csv": "77d1cfc2447a494acc5be33868ef9a6ea5e892f5c84a13dff622356a4efbdd18",
    "nature2015_extended_data_table2.csv": "7446bae358979bc61411347d90f70d6c4df78c932cf9f67f88a98b34866ed734",
    "nips2013_table1.csv": "dd00b3c33432ce16627c608a6e5f4776d611c176cc9ed04abfa9853f23dac739",
    "nnabla_rl_dqn_evaluation_returns.csv": "a13ee3f59b9714724b85fb629db7716ab1c5c3a28335b5d01661b6b847991ac1",
}


@pytest.mark.parametrize("name", sorted(SHIPPED_SHA256))
def test_shipped_reference_files_are_the_files_copied_from_the_shared_reference(name):
    shipped = (PACKAGE_DATA / name).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == SHIPPED_SHA256[name]
    source = SHARED_REFERENCE / name
    if source.is_file():
        assert shipped == source.read_bytes()


def test_pfrl_table_holds_the_49_paper_games_in_order():
    table = pfrl_table()
    assert list(table.columns) == ["game", "ale_id", "pfrl_dqn_mean"]
    assert tuple(table["ale_id"]) == PAPER_GAME_IDS
    assert list(table["game"]) == list(nature_table()["game"])
    assert table["pfrl_dqn_mean"].notna().all()
    assert (pfrl_score("breakout"), pfrl_score("Pong"), pfrl_score("space-invaders")) == (352.5, 20.0, 1609.8)


def test_pfrl_aggregates_over_the_49_games_with_the_nature_random_and_human_scores():
    table = pfrl_table()
    normalized = human_normalized(table["ale_id"], table["pfrl_dqn_mean"])
    assert normalized.median() == pytest.approx(90.1, abs=0.05)
    assert normalized.mean() == pytest.approx(204.9, abs=0.05)
    assert int((normalized >= 75).sum()) == 28
    assert int((normalized >= 100).sum()) == 21
    # Breakout: 100 x (352.5 - 1.7) / (31.8 - 1.7) = 350.8 / 30.1 x 100 = 1165.448...
    assert human_normalized("breakout", pfrl_score("breakout")) == pytest.approx(350.8 / 30.1 * 100, rel=1e-12)
    assert round(human_normalized("breakout", pfrl_score("breakout")), 1) == 1165.4
    # PFRL scores higher than the paper on 28 of the 49 games.
    assert int((table["pfrl_dqn_mean"].to_numpy() > nature_table()["dqn_mean"].to_numpy()).sum()) == 28


def test_dopamine_curves_hold_5_runs_of_199_iterations_for_each_of_the_49_games():
    curves = dopamine_curves()
    assert list(curves.columns) == ["ale_id", "iteration", "run", "training_return_mean", "frames_end"]
    assert len(curves) == 49 * 5 * 199
    assert tuple(curves["ale_id"].unique()) == PAPER_GAME_IDS
    counts = curves.groupby("ale_id").agg(runs=("run", "nunique"), iterations=("iteration", "nunique"), rows=("run", "size"))
    assert (counts["runs"] == 5).all() and (counts["iterations"] == 199).all() and (counts["rows"] == 995).all()
    assert set(curves["iteration"]) == set(range(199)) and set(curves["run"]) == set(range(5))
    assert not curves.duplicated(["ale_id", "iteration", "run"]).any()
    assert curves["training_return_mean"].notna().all()


def test_a_dopamine_iteration_is_placed_at_its_last_frame():
    breakout = dopamine_curves("breakout")
    assert len(breakout) == 995 and set(breakout["ale_id"]) == {"breakout"}
    assert DOPAMINE_ITERATION_FRAMES == 1_000_000
    first = breakout[breakout["iteration"] == 0].sort_values("run")
    # Iteration 0 covers frames [0, 1M): drawn at 1M, its five runs as in the CSV's first rows.
    assert set(first["frames_end"]) == {1_000_000}
    np.testing.assert_allclose(first["training_return_mean"].min(), 1.57108)
    np.testing.assert_allclose(first["training_return_mean"].max(), 1.69933)
    assert breakout["frames_end"].max() == 199_000_000


@pytest.mark.parametrize("game", ["not_a_game", "defender"])
def test_a_game_outside_the_reproductions_is_a_user_error_never_nan(game):
    with pytest.raises(UserError, match=f"no PFRL reproduction score for game '{game}'.*breakout"):
        pfrl_score(game)
    with pytest.raises(UserError, match=f"no Dopamine DQN curves for game '{game}'.*breakout"):
        dopamine_curves(game)
    with pytest.raises(UserError, match=f"no nnabla-rl DQN evaluations for game '{game}'.*breakout") as refused:
        nnabla_curves(game)
    assert "\n" not in str(refused.value)


def test_nnabla_curves_hold_3_seeds_of_200_evaluations_for_each_of_the_49_games():
    curves = nnabla_curves()
    assert list(curves.columns) == ["ale_id", "seed", "frames", "eval_return_mean", "eval_return_std",
                                    "eval_return_min", "eval_return_max", "eval_episodes"]
    assert len(curves) == 49 * 3 * 200 and tuple(curves["ale_id"].unique()) == PAPER_GAME_IDS
    assert tuple(sorted(curves["seed"].unique())) == NNABLA_SEEDS == (1, 10, 100)
    assert set(curves["frames"]) == set(range(1_000_000, 200_000_001, 1_000_000))
    assert not curves.duplicated(["ale_id", "seed", "frames"]).any() and curves.notna().all().all()
    assert (curves["eval_return_min"] <= curves["eval_return_mean"]).all()
    assert (curves["eval_return_mean"] <= curves["eval_return_max"]).all()


def test_nnabla_early_points_agree_across_seeds_as_its_readme_says():
    # At 4M frames Breakout 17.7 / 20.0 / 22.5 and Pong -11.9 / -13.0 / -14.0; at 2M Frostbite 218 / 212 / 214.
    def at(game, frames):
        rows = nnabla_curves(game)
        return rows.loc[rows["frames"] == frames].sort_values("seed")["eval_return_mean"].round(1).tolist()

    assert at("breakout", 4_000_000) == [17.7, 20.0, 22.5]
    assert at("pong", 4_000_000) == [-11.9, -13.0, -14.0]
    assert [round(x) for x in at("frostbite", 2_000_000)] == [218, 212, 214]
    assert at("road_runner", 1_000_000) == [850.7, 1631.2, 1804.8]
