"""python -m analysis.compare: statistics by hand, synthetic pairs of experiments, bad input."""

from __future__ import annotations

import html
import math
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.compare import build_comparison, configs, tables
from analysis.compare import statistics as stats
from analysis.compare.build import compute
from analysis.compare.inputs import load_pair
from analysis.report import metrics
from dqn.errors import UserError
from helpers.synthetic_comparison import copy_as, edit_provenance, set_seed_means, shift_scores
from helpers.synthetic_results import write_results

REPO = Path(__file__).resolve().parents[1]
GAMES = ("breakout", "pong", "seaquest")
REPS = 300


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.compare", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=180)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("results") / "base", games=GAMES, seeds=(0, 1, 2), preset="nature")


# ---------------------------------------------------------------- statistics by hand


def test_mann_whitney_probability_of_two_games_with_ties_by_hand():
    # Game 1: A 1, 2, 3 against B 2, 3, 4: of 9 pairs B wins 6 (2>1, 3>1, 3>2, 4>1, 4>2, 4>3), ties 2 (2=2, 3=3),
    # so (6 + 2/2) / 9 = 7/9. Game 2: A 5, 5, 5 against B 5, 4, 6: wins 3 (6 over each 5), ties 3: (3 + 1.5) / 9 = 1/2.
    a = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    b = np.array([[2.0, 5.0], [3.0, 4.0], [4.0, 6.0]])
    assert stats.mann_whitney_probability(a, b) == pytest.approx([7 / 9, 1 / 2], abs=1e-15)
    assert stats.probability_of_improvement(a, b) == pytest.approx((7 / 9 + 1 / 2) / 2, abs=1e-15)  # 23/36
    # The other way round the probabilities are their complements.
    assert stats.probability_of_improvement(b, a) == pytest.approx(13 / 36, abs=1e-15)


def test_mann_whitney_probability_skips_absent_seeds():
    # A 1, (absent), 3 against B 2, 2, 2: 6 pairs, B wins the 3 against 1 and loses the 3 against 3.
    a = np.array([[1.0], [np.nan], [3.0]])
    b = np.array([[2.0], [2.0], [2.0]])
    assert stats.mann_whitney_probability(a, b) == pytest.approx([0.5])


def test_run_score_profile_by_hand():
    # Game 1 runs 50, 150 (half at or above 100); game 2 one run of 100 (all of it): (1/2 + 1) / 2 = 3/4 at tau 100.
    scores = np.array([[50.0, 100.0], [150.0, np.nan]])
    assert stats.run_score_profile(scores, np.array([0.0, 100.0, 120.0, 200.0])) == pytest.approx([1.0, 0.75, 0.25, 0.0])


def test_seeds_needed_from_the_standard_error_by_hand():
    # 3 seeds, s.e. 5 points: a difference of 10 needs 3 x (1.96 x 5 / 10)^2 = 2.88 -> 3 seeds, of 5 needs 11.52 -> 12.
    assert stats.seeds_needed(5.0, 3, 10.0) == 3
    assert stats.seeds_needed(5.0, 3, 5.0) == 12
    assert stats.seeds_needed(5.0, 3, -5.0) == 12
    assert stats.seeds_needed(math.nan, 3, 5.0) is None
    # 3 x (1.96 x 0.7 / 11.1)^2 = 0.05: still 2, since one seed gives no interval.
    assert stats.seeds_needed(0.7, 3, 11.1) == 2


def test_bootstrap_standard_error_of_a_difference_shrinks_as_one_over_root_seeds():
    # The seeds-needed note rests on this: the same spread over 4x the seeds (each seed's scores
    # repeated 4 times) halves the bootstrap s.e. of the mean difference (the variance of a mean of
    # 4n draws from the same seeds is a quarter of that of n draws).
    rng = np.random.default_rng(0)
    a, b = rng.normal(100.0, 20.0, (3, 10)), rng.normal(110.0, 20.0, (3, 10))
    few = stats.Bootstrap.draw(a, b, reps=4000, seed=0)
    many = stats.Bootstrap.draw(np.tile(a, (4, 1)), np.tile(b, (4, 1)), reps=4000, seed=0)
    ratio = many.difference_standard_error(metrics.aggregate_mean) / few.difference_standard_error(metrics.aggregate_mean)
    assert ratio == pytest.approx(0.5, rel=0.05)


def test_game_verdict_needs_the_interval_clear_of_zero():
    assert stats.game_verdict(0.1, 3.0) == "better"
    assert stats.game_verdict(-3.0, -0.1) == "worse"
    assert stats.game_verdict(-0.1, 3.0) == "can't tell"
    assert stats.game_verdict(0.0, 3.0) == "can't tell"
    assert stats.game_verdict(math.nan, math.nan) == "can't tell"


# ---------------------------------------------------------------- pairs of experiments


def test_two_identical_experiments(base, tmp_path):
    twin = copy_as(base, tmp_path / "twin", "twin")
    common = load_pair(base, twin)
    content = compute(common, "best", reps=REPS, seed=0)
    for result in content.aggregates:
        assert result.improvement.value == 0.5  # exactly: every pair of a seed with itself is a tie
        assert all(estimate.value == 0.0 for estimate in result.difference.values())
        assert result.difference["iqm"].low < 0.0 < result.difference["iqm"].high
    table = content.game_table
    for weights in ("best", "final"):
        assert (table[f"{weights}_difference"] == 0.0).all()
    assert set(table["verdict"]) == {"can't tell"}
    assert content.verdict.startswith("With 3 seeds on 3 games (best-intermediate weights), twin's IQM equals base's")
    assert "not distinguishable from base; P(twin > base) = 0.50 [" in content.verdict
    assert content.config_difference.empty and content.left_out == []


def test_b_is_a_plus_a_constant_on_every_episode(base, tmp_path):
    constant = 100_000.0  # above every game's spread of seed means, so every seed of B beats every seed of A
    shifted = shift_scores(copy_as(base, tmp_path / "shifted", "shifted"), constant)
    common = load_pair(base, shifted)
    content = compute(common, "best", reps=REPS, seed=0)
    table = content.game_table
    for weights in ("best", "final"):
        assert table[f"{weights}_difference"].to_numpy() == pytest.approx(np.full(len(GAMES), constant), rel=1e-12)
        assert (table[f"{weights}_difference_low"] > 0).all()
    assert set(table["verdict"]) == {"better"}
    for result in content.aggregates:
        assert result.improvement.value == 1.0 and result.improvement.low == 1.0
    assert ": shifted is better; P(shifted > base) = 1.00 [1.00, 1.00]." in content.verdict


def test_a_hand_computed_probability_reaches_the_page(tmp_path):
    games = ("breakout", "pong")
    a = write_results(tmp_path / "a", games=games, seeds=(0, 1, 2), preset="nature")
    b = write_results(tmp_path / "b", games=games, seeds=(0, 1, 2), preset="nature", rng_seed=5)
    set_seed_means(a, {"breakout": (1.0, 2.0, 3.0), "pong": (5.0, 5.0, 5.0)})
    set_seed_means(b, {"breakout": (2.0, 3.0, 4.0), "pong": (5.0, 4.0, 6.0)})
    out = build_comparison(a, b, tmp_path / "page" / "a_vs_b.html", reps=REPS).page
    page = unescape(out.read_text())
    assert "P(b > a) = 0.64 [" in page  # 23/36 = 0.639, from the seed means of both weights
    # The difference of the means, by hand: Breakout (2+3+4)/3 - (1+2+3)/3 = 1, Pong 5 - 5 = 0.
    table = compute(load_pair(a, b), "best", reps=REPS, seed=0).game_table.set_index("game")
    assert table.loc["breakout", "best_difference"] == pytest.approx(1.0)
    assert table.loc["pong", "best_difference"] == pytest.approx(0.0, abs=1e-12)


def test_mismatched_games_and_seeds_use_the_intersection_and_name_what_is_left_out(tmp_path):
    a = write_results(tmp_path / "a", games=("breakout", "pong", "seaquest"), seeds=(0, 1, 2), preset="nature")
    b = write_results(tmp_path / "b", games=("alien", "breakout", "pong"), seeds=(0, 1), preset="nature", rng_seed=3)
    common = load_pair(a, b)
    assert common.games == ["breakout", "pong"] and common.seeds == [0, 1]
    assert common.left_out == ["games only in a: seaquest", "games only in b: alien", "seeds only in a: 2"]
    out = build_comparison(a, b, tmp_path / "page.html", reps=REPS).page
    page = out.read_text()
    for line in common.left_out:
        assert f"<li>{line}</li>" in page
    assert "With 2 seeds on 2 games" in page
    assert (tmp_path / "page_figures" / "performance_profile.png").is_file()


@pytest.mark.parametrize("games_b, seeds_b, shared", [(("alien", "boxing"), (0, 1), "no game"),
                                                       (("breakout", "pong"), (5, 6), "no seed")])
def test_nothing_in_common_is_one_line_and_exit_2(tmp_path, games_b, seeds_b, shared):
    a = write_results(tmp_path / "a", games=("breakout", "pong"), seeds=(0, 1), preset="nature")
    b = write_results(tmp_path / "b", games=games_b, seeds=seeds_b, preset="nature")
    result = run_cli(str(a), str(b), "--out", str(tmp_path / "out" / "a_vs_b.html"), "--bootstrap-reps", "50")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: a (")
    assert f"have {shared} with a DQN score in common" in result.stderr
    assert not (tmp_path / "out").exists()


def test_config_difference_lists_exactly_the_changed_keys(base, tmp_path):
    changed = copy_as(base, tmp_path / "changed", "changed")
    versions = dict(pd.read_json(base / "provenance.json", typ="series")["versions"], torch="2.14.0")
    edit_provenance(changed, overrides={"learning_rate": "0.0005", "target_network_update_frequency_steps": "5000"},
                    git_commit="f" * 40, versions=versions)
    common = load_pair(base, changed)
    difference = configs.config_difference(common.a, common.b).set_index("key")
    assert sorted(difference.index) == ["git_commit", "learning_rate", "target_network_update_frequency_steps",
                                        "versions.torch"]
    assert difference.loc["learning_rate"].tolist() == ["0.00025", "0.0005"]
    assert difference.loc["target_network_update_frequency_steps"].tolist() == ["10000", "5000"]
    assert difference.loc["versions.torch"].tolist() == ["2.13.0", "2.14.0"]


def test_a_long_list_of_games_shows_its_length_and_what_the_other_lacks():
    games = [f"game{i}" for i in range(10)]
    assert configs.value_text(games, games[:9], "games") == "10 games; not in the other: game9"
    assert configs.value_text(games[:9], games, "games") == "9 games"
    assert configs.value_text([0, 1, 2], [0, 1], "seeds") == "0, 1, 2"


def test_one_seed_gives_no_interval_and_says_so(tmp_path):
    a = write_results(tmp_path / "a", games=GAMES, seeds=(0,), preset="nature")
    b = write_results(tmp_path / "b", games=GAMES, seeds=(0,), preset="nature", rng_seed=9)
    content = compute(load_pair(a, b), "best", reps=REPS, seed=0)
    assert "(no interval: one seed): not distinguishable from a" in content.verdict
    assert content.game_table["best_difference_low"].isna().all()
    assert set(content.game_table["verdict"]) == {"can't tell"}
    assert content.seeds_needed.empty and "nothing to resample" in content.seeds_note


# ---------------------------------------------------------------- command line and bad input


def test_cli_writes_the_page_and_its_figures(base, tmp_path):
    other = shift_scores(copy_as(base, tmp_path / "other", "other"), 3.0)
    out = tmp_path / "reports" / "compare" / "base_vs_other.html"
    result = run_cli(str(base), str(other), "--out", str(out), "--bootstrap-reps", "50", "--weights", "final")
    assert result.returncode == 0, result.stderr
    # The verdict sentence first, as the page has it, then the file written.
    verdict, wrote = result.stdout.splitlines()
    assert wrote == f"wrote {out}" and verdict.startswith("With 3 seeds on ")
    assert verdict in html.unescape(out.read_text())
    figures = out.with_name("base_vs_other_figures")
    assert sorted(p.name for p in figures.iterdir()) == ["learning_curves.png", "performance_profile.png"]
    page = out.read_text()
    assert "(final weights), other&#39;s IQM is" in page
    # Nothing left under a temporary name.
    assert not [p for p in out.parent.rglob("*.tmp")]


def test_bad_input_is_one_line_exit_2_and_nothing_written(base, tmp_path):
    out = tmp_path / "out" / "page.html"
    not_results = tmp_path / "not_results"
    not_results.mkdir()
    result = run_cli(str(base), str(not_results), "--out", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "scores.parquet" in result.stderr and "is missing" in result.stderr
    result = run_cli(str(base), str(tmp_path / "nowhere"), "--out", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    result = run_cli(str(base), str(base), "--out", str(tmp_path / "page.txt"))
    assert result.returncode == 2 and "must name an HTML file" in result.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="--weights must be one of best, final"):
        build_comparison(base, base, out, weights="last")


def test_aggregate_interval_of_a_matches_the_report_for_the_same_seed(base, tmp_path):
    # A's resamples are drawn as the report draws them: on the same games, the same interval.
    common = load_pair(base, copy_as(base, tmp_path / "twin", "twin"))
    result, _ = tables.aggregates(common, "best", reps=REPS, seed=4)
    point, low, high = metrics.interval_estimate(common.normalized("a", "best"), metrics.aggregate_iqm, reps=REPS, seed=4)
    assert (result.each["iqm"][0].value, result.each["iqm"][0].low, result.each["iqm"][0].high) == (point, low, high)


def test_the_profile_axis_stops_just_past_where_the_runs_lie():
    from analysis.compare.figures import taus_caption, taus_for

    # Short runs a few percent from the random agent: the 95th percentile of -0.8, 9.6, 10.3, 11.7 is
    # 11.49; 10 % more is 12.6, rounded up to 10: the axis runs from -0.8 to 20 %, not to 200 %.
    taus = taus_for(np.array([-0.8, 10.3]), np.array([9.6, 11.7]))
    assert (taus[0], taus[-1]) == (-0.8, 20.0)
    assert "up to \u03c4 = 20 %" in taus_caption(taus) and "10 % more" in taus_caption(taus)
    # Above human level: the 95th percentile of 50, 150, 400 is 375, rounded up to 50: 400 %.
    taus = taus_for(np.array([50.0, 150.0, 400.0]))
    assert (taus[0], taus[-1]) == (0.0, 400.0) and "at least 200 %" in taus_caption(taus)
    # Just above human level still shows 200 %.
    assert taus_for(np.array([101.0]))[-1] == 200.0
