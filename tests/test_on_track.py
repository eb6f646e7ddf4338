"""The on-track verdict (baselines/on_track.py) on runs built by hand against a hand-built reference."""

import dataclasses

import pandas as pd
import pytest

from baselines.on_track import NOT_COMPARABLE, differing_keys, on_track, standing, summary
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
    assert rows.empty and summary(rows) == "no reference point yet (the first is at 1M frames)"
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
