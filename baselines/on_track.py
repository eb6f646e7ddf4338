"""Is a run on track? Its training-time evaluations against nnabla-rl's three seeds at the same frames.

nnabla-rl's reproduction scored every 1M frames under the paper's own protocol (500,000 frames at
epsilon 0.05, the unfinished last episode discarded: `baselines.reference.nnabla_curves`), the
same measurement as this harness's learning curves. So at any budget a run can be placed among its
three seeds, defined once here and used by `analysis.status`, the results tables and the report:

- at each evaluation at frames F where the reference has a point: the run's score below all three
  seeds' scores at F, within their range, or above all three (`standing`);
- for the run so far: the mean of its scores over those evaluations against each reference seed's
  mean over the same frames (robust to the up and down of single evaluations).

Only a run with the paper's hyperparameters is comparable: every field of the `nature` preset but
the training length (and what does not change the training: checkpoints, the final evaluation);
a replay capacity of at least the run's agent steps counts as the paper's, since the memory never
wraps. Anything else is "not comparable", naming the keys.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from dqn.config import NATURE, Hyperparameters

STANDINGS = ("below", "within", "above")
NOT_COMPARABLE = "not comparable"
# Fields that do not change what training computes, or that the comparison allows to differ.
_FREE_FIELDS = ("training_length_frames", "checkpoint_interval_minutes", "final_eval_episodes",
                "final_eval_max_episode_frames")
ON_TRACK_COLUMNS = ("game", "seed", "frames", "kind", "score", "reference_min", "reference_mean", "reference_max",
                    "standing")


def differing_keys(hp: Hyperparameters) -> list[str]:
    """The fields by which `hp` is not the paper's for this comparison (empty: comparable)."""
    keys = []
    for name, paper in NATURE.to_dict().items():
        ours = hp.to_dict()[name]
        if name in _FREE_FIELDS or ours == paper:
            continue
        if name == "replay_memory_size_transitions" and ours >= hp.training_length_steps:
            continue  # never wraps within this run: the same contents as the paper's 1M
        keys.append(name)
    return keys


def standing(score: float, reference: Sequence[float]) -> str:
    """"below" all reference scores, "above" all, or "within" their range (ends included)."""
    low, high = min(reference), max(reference)
    return "below" if score < low else "above" if score > high else "within"


def on_track(curve: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """ON_TRACK_COLUMNS rows of one run: `curve` holds its evaluations (frames, eval_score_mean,
    game, seed), `reference` the reference's rows of that game (nnabla_curves(game)).

    kind "evaluation": one row per evaluation at frames the reference has, the reference's
    min/mean/max over its seeds there; kind "mean so far": one row at the last such frames, the
    run's mean over those evaluations against each reference seed's mean over the same frames."""
    scored = curve.dropna(subset=["eval_score_mean"])
    points = reference.pivot_table(index="frames", columns="seed", values="eval_return_mean")
    scored = scored[scored["frames"].isin(points.index)].sort_values("frames")
    if scored.empty:
        return pd.DataFrame(columns=list(ON_TRACK_COLUMNS))
    game, seed = scored["game"].iloc[0], int(scored["seed"].iloc[0])
    rows = []
    for frames, score in zip(scored["frames"], scored["eval_score_mean"]):
        at = points.loc[frames].to_numpy()
        rows.append((game, seed, int(frames), "evaluation", float(score), at.min(), at.mean(), at.max(),
                     standing(score, at)))
    seed_means = points.loc[scored["frames"]].mean(axis=0).to_numpy()
    run_mean = float(scored["eval_score_mean"].mean())
    rows.append((game, seed, int(scored["frames"].iloc[-1]), "mean so far", run_mean, seed_means.min(),
                 seed_means.mean(), seed_means.max(), standing(run_mean, seed_means)))
    return pd.DataFrame(rows, columns=list(ON_TRACK_COLUMNS))


def summary(rows: pd.DataFrame) -> str:
    """One phrase for a run's rows: "within 3/3 evaluations", "below since 6M frames", ..."""
    evaluations = rows[rows["kind"] == "evaluation"]
    if evaluations.empty:
        return "no reference point yet (the first is at 1M frames)"
    overall = rows.loc[rows["kind"] == "mean so far", "standing"].iloc[-1]
    latest = evaluations["standing"].iloc[-1]
    same = (evaluations["standing"] == latest).to_numpy()[::-1]
    streak = int(np.argmin(same)) if not same.all() else len(same)
    if streak == len(same):
        latest_text = f"{latest} {len(same)}/{len(same)} evaluations"
    else:
        since = int(evaluations["frames"].iloc[-streak])
        latest_text = f"{latest} since {since / 1e6:g}M frames"
    return f"{latest_text}; mean so far {overall}"
