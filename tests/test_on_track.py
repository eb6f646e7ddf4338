"""The on-track verdict (baselines/on_track.py) on runs built by hand against a hand-built reference."""

import dataclasses

import pandas as pd
import pytest

from baselines.on_track import (
    BELOW_CAVEAT,
    NOT_COMPARABLE,
    GameVerdict,
    differing_keys,
    experiment_on_track,
    game_curve,
    game_verdict,
    headline,
    on_track,
    standing,
    summary,
)
from baselines.reference import nnabla_curves
from dqn.config import NATURE
from dqn.errors import UserError

# Three reference seeds: 10 / 20 / 30 at 1M frames, 40 / 50 / 60 at 2M, 70 / 80 / 90 at 3M.
REFERENCE = pd.DataFrame([(seed, frames, base + 10 * i)
                          for frames, base in ((1_000_000, 10), (2_000_000, 40), (3_000_000, 70))
                          for i, seed in enumerate((1, 10, 100))],
                         columns=["seed", "frames", "eval_return_mean"]).assign(ale_id="pong")


def curve(scores, frames=(1_000_000, 2_000_000, 3_000_000)):
    return pd.DataFrame({"game": "pong", "seed": 0, "frames": list(frames), "eval_score_mean": list(scores)})


def test_a_score_stands_below_within_or_above_the_reference_seeds_ends_included():
    assert [standing(s, [10, 20, 30]) for s in (9.9, 10, 25, 30, 30.1)] == ["below", "within", "within", "within", "above"]


def test_each_evaluation_and_the_mean_so_far_against_the_seeds_at_the_same_frames():
    rows = on_track(curve([5, 55, 100]), REFERENCE)
    evaluations = rows[rows["kind"] == "evaluation"]
    assert evaluations["standing"].tolist() == ["below", "within", "above"]
    assert evaluations[["reference_min", "reference_mean", "reference_max"]].values.tolist() == [
        [10, 20, 30], [40, 50, 60], [70, 80, 90]]
    # Mean so far: (5 + 55 + 100) / 3 = 53.3 against the seeds' means over 1M-3M: 40, 50, 60.
    overall = rows[rows["kind"] == "mean so far"].iloc[0]
    assert overall["frames"] == 3_000_000 and overall["score"] == pytest.approx(160 / 3)
    assert (overall["reference_min"], overall["reference_max"], overall["standing"]) == (40, 60, "within")
    assert summary(rows) == "above since 3M frames; mean so far within"


def test_below_at_one_evaluation_but_within_on_the_mean():
    rows = on_track(curve([25, 35, 85]), REFERENCE)
    assert rows["standing"].tolist() == ["within", "below", "within", "within"]  # mean 48.3 in [40, 60]
    assert summary(rows) == "within since 3M frames; mean so far within"
    assert summary(on_track(curve([15, 45, 75]), REFERENCE)) == "within 3/3 evaluations; mean so far within"
    assert summary(on_track(curve([1, 2, 3]), REFERENCE)) == "below 3/3 evaluations; mean so far below"


def test_evaluations_between_reference_points_and_a_short_run_have_no_verdict():
    rows = on_track(curve([5, 7], frames=(400_000, 800_000)), REFERENCE)
    assert rows.empty and summary(rows) == "no evaluation at a reference point yet (the first is at 1M frames)"
    # A run evaluated every 500k frames is compared at 1M, 2M, ... only.
    rows = on_track(curve([5, 15, 18, 50], frames=(500_000, 1_000_000, 1_500_000, 2_000_000)), REFERENCE)
    assert rows.loc[rows["kind"] == "evaluation", "frames"].tolist() == [1_000_000, 2_000_000]


def test_only_the_paper_hyperparameters_are_comparable_and_the_difference_is_named():
    two_million = dataclasses.replace(NATURE, training_length_frames=2_000_000)  # 500,000 agent steps
    assert differing_keys(two_million) == []
    # A replay that never wraps within the run holds what the paper's 1M would.
    assert differing_keys(dataclasses.replace(two_million, replay_memory_size_transitions=500_000)) == []
    assert differing_keys(dataclasses.replace(two_million, replay_memory_size_transitions=499_999)) == [
        "replay_memory_size_transitions"]
    assert differing_keys(dataclasses.replace(two_million, learning_rate=1e-4, checkpoint_interval_minutes=5)) == [
        "learning_rate"]
    assert NOT_COMPARABLE == "not comparable"


def test_a_game_outside_the_reference_is_one_line():
    with pytest.raises(UserError) as refused:
        nnabla_curves("defender")
    assert "\n" not in str(refused.value) and "breakout" in str(refused.value)


def test_a_game_is_placed_by_the_mean_of_its_seeds_at_the_frames_all_of_them_reached():
    # Seed 0 at 1M/2M/3M: 5, 55, 100; seed 1 at 1M/2M only: 15, 45. The game's curve stops at 2M
    # (seed 1 has not reached 3M): 10 at 1M, 50 at 2M; its mean so far (10 + 50) / 2 = 30 against
    # the seeds' means over 1M-2M: (10+40)/2 = 25, (20+50)/2 = 35, (30+60)/2 = 45 -> within [25, 45].
    runs = pd.concat([curve([5, 55, 100]), curve([15, 45], frames=(1_000_000, 2_000_000)).assign(seed=1)])
    game = game_curve(runs)
    assert game["frames"].tolist() == [1_000_000, 2_000_000] and game["eval_score_mean"].tolist() == [10, 50]
    verdict = game_verdict(runs, REFERENCE)
    assert (verdict.standing, verdict.frames, verdict.evaluations, verdict.seeds) == ("within", 2_000_000, 2, 2)
    assert verdict.text == "within: mean 30 over 2 evaluations to 2M frames (2 seeds); the reference's seeds 25 to 45"


def test_the_results_table_holds_each_seeds_rows_and_none_for_a_config_that_is_not_comparable():
    # Real reference rows: Pong's three seeds at 1M frames are -20.377 / -20.384 / -20.826 (the CSV).
    pong = nnabla_curves("pong")
    at_1m = sorted(pong.loc[pong["frames"] == 1_000_000, "eval_return_mean"])
    runs = pd.concat([curve([-21.0, -15.0], frames=(1_000_000, 2_000_000)),
                      curve([-20.5], frames=(1_000_000,)).assign(seed=1),
                      curve([3.0], frames=(1_000_000,)).assign(game="not_in_reference")])
    short = dataclasses.replace(NATURE, training_length_frames=2_000_000)
    rows = experiment_on_track(runs, short)
    assert rows.groupby("seed")["kind"].apply(list).to_dict() == {
        0: ["evaluation", "evaluation", "mean so far"], 1: ["evaluation", "mean so far"]}
    first = rows.iloc[0]
    assert (first["reference_min"], first["reference_max"]) == (at_1m[0], at_1m[-1]) == (-20.826, -20.377)
    assert first["standing"] == "below"  # -21.0 < -20.826
    assert rows.loc[rows["seed"] == 1, "standing"].tolist() == ["within", "within"]  # -20.5
    assert experiment_on_track(runs, dataclasses.replace(short, learning_rate=0.001)).empty


def test_the_headline_counts_games_within_or_above_and_names_those_below():
    def verdict(game, standing_, frames):
        return GameVerdict(game, standing_, frames, frames // 1_000_000, 3, "")

    verdicts = {"pong": verdict("pong", "within", 2_000_000), "breakout": verdict("breakout", "above", 4_000_000),
                "seaquest": verdict("seaquest", "below", 3_000_000), "alien": verdict("alien", "", 0)}
    text = headline(verdicts, {"seaquest": "Seaquest"}, [])
    assert text == ("On track: 2 of 3 games within or above the range of nnabla-rl's 3 seeds under the paper's "
                    "protocol, on each game's mean over its evaluations up to its frames (2M to 4M); below: "
                    f"Seaquest (3M) ({BELOW_CAVEAT}); 1 game without an evaluation at 1M frames yet.")
    assert headline({"alien": verdict("alien", "", 0)}, {}, []).startswith("On track: no game has an evaluation")
    assert "learning_rate" in headline(verdicts, {}, ["learning_rate"])
