"""The published reproductions a run is held against: PFRL's scores, nnabla-rl's and Dopamine's learning curves.

The paper's numbers come from one run per game. Three public reproductions show the spread a
careful re-run gets (their data and protocols: `baselines/data/CITATION.md`):

- PFRL re-ran the Nature protocol on the 49 games: one score per game (the mean over its seeds),
  shown beside the paper's score, human-normalized with the same random and human scores, and
  aggregated over the same games as this run. Only a reference whose protocol PFRL reproduced
  (`Reference.pfrl`, the Nature paper) shows it: the 2013 paper's protocol and table differ.
- nnabla-rl's training-time evaluations (3 seeds per game, every 1M frames) under the paper's own
  protocol: the same measurement as this run's learning curve, drawn behind it first, and the
  reference of the on-track verdict (baselines/on_track.py).
- Dopamine's DQN learning curves (5 runs per game, 1M-frame iterations) under another protocol:
  sticky actions, training returns at epsilon 0.01, no no-op starts. They are a shape to hold a
  learning curve against, drawn behind it over the frames it covers, for any reference whose
  games Dopamine ran; never a score to normalize.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from baselines import reference as tables
from analysis.report.paper import get_reference, human_normalized, paper_columns

PFRL_LABEL = "PFRL reproduction"
DOPAMINE_LABEL = "Dopamine DQN"
# What sets Dopamine's curves apart from this run's, said wherever they are drawn.
DOPAMINE_PROTOCOL = "sticky actions, training returns at \u03b5 0.01, no no-op starts"
DOPAMINE_RUNS = tables.DOPAMINE_RUNS
DOPAMINE_FIRST_FRAMES = tables.DOPAMINE_ITERATION_FRAMES  # the end of Dopamine's first iteration, its first point
DOPAMINE_ITERATIONS = tables.DOPAMINE_ITERATIONS
# Dopamine's DQN settings that differ from the paper's protocol (its dqn_nature.gin and its runner).
DOPAMINE_SETTINGS = {
    "sticky_action_probability": 0.25,  # the emulator repeats the previous action with this probability
    "epsilon": 0.01,  # of its training episodes, the returns it publishes
    "epsilon_decay_frames": 1_000_000,
    "max_episode_steps": 27_000,  # 30 minutes of play
    "learning_starts_frames": 80_000,
    "target_update_frames": 32_000,
}
# PFRL's reproduction of the Nature protocol: its training length and its seeds per game (its README
# says both 5 and 6).
PFRL_TRAINING_FRAMES = 200_000_000
PFRL_SEED_COUNTS = (5, 6)
NNABLA_LABEL = "nnabla-rl DQN"
NNABLA_PROTOCOL = "the paper's evaluation protocol"
NNABLA_SEEDS = len(tables.NNABLA_SEEDS)
NNABLA_FIRST_FRAMES = tables.NNABLA_EVAL_INTERVAL_FRAMES
BAND_COLUMNS = ["frames", "mean", "low", "high", "runs"]

# Where this run's best-intermediate score stands against the paper's and PFRL's, in sort order.
BELOW_BOTH, BETWEEN, ABOVE_BOTH = "below both", "between", "above both"
STANDINGS = (BELOW_BOTH, BETWEEN, ABOVE_BOTH)


def has_pfrl(reference: str) -> bool:
    """Whether the report of an experiment against `reference` shows PFRL's reproduction."""
    return get_reference(reference).pfrl


def pfrl_columns(reference: str) -> pd.DataFrame | None:
    """One row per game PFRL ran: game (ALE id), pfrl_dqn_mean, pfrl_normalized (with the reference's
    random and human scores), in the reference table's order; None when the reference shows no PFRL."""
    if not has_pfrl(reference):
        return None
    paper = paper_columns(reference).set_index("game")
    pfrl = tables.pfrl_table()
    out = pd.DataFrame({"game": pfrl["ale_id"].astype(str), "pfrl_dqn_mean": pfrl["pfrl_dqn_mean"].astype(np.float64)})
    # Every PFRL game is in Extended Data Table 2 (the loader's tests check it): no NaN baseline here.
    random_score = paper.loc[out["game"], "random_score"].to_numpy()
    human_score = paper.loc[out["game"], "human_score"].to_numpy()
    out["pfrl_normalized"] = human_normalized(out["pfrl_dqn_mean"].to_numpy(), random_score, human_score)
    return out.reset_index(drop=True)


def where_this_run_stands(ours, paper, pfrl) -> np.ndarray:
    """Per game, where `ours` lies against `paper` and `pfrl` (raw scores, same length):
    BELOW_BOTH under the lower of the two, ABOVE_BOTH over the higher, BETWEEN otherwise (a tie with
    either counts as between); "" where any of the three is missing.

    Raw scores order games as their human-normalized scores do (the human score exceeds the
    random one in every game), so either gives the same answer.
    """
    ours, paper, pfrl = (np.asarray(v, dtype=np.float64) for v in (ours, paper, pfrl))
    low, high = np.minimum(paper, pfrl), np.maximum(paper, pfrl)
    stands = np.where(ours < low, BELOW_BOTH, np.where(ours > high, ABOVE_BOTH, BETWEEN))
    missing = np.isnan(ours) | np.isnan(paper) | np.isnan(pfrl)
    return np.where(missing, "", stands).astype(object)


def dopamine_games() -> frozenset[str]:
    return frozenset(tables.dopamine_curves()["ale_id"])


def nnabla_games() -> frozenset[str]:
    return frozenset(tables.nnabla_curves()["ale_id"])


def _band(values: pd.DataFrame, frames: str, value: str, covered_frames: float) -> pd.DataFrame:
    """Mean, min and max of `value` over the runs at each `frames` up to `covered_frames` (BAND_COLUMNS)."""
    grouped = values[values[frames] <= covered_frames].groupby(frames)[value]
    band = pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(), "high": grouped.max(), "runs": grouped.count()})
    return band.rename_axis("frames").reset_index()


def dopamine_band(game: str, covered_frames: float) -> pd.DataFrame:
    """Dopamine's DQN curve of `game` over the frames a run covers: one row per iteration that ended
    at or before `covered_frames`, with frames (the iteration's last frame), mean, low and high of
    the training returns over its runs, and runs. Empty when the run covers less than Dopamine's
    first iteration, or when Dopamine has no curve of the game (drawn as nothing, not as an error:
    the report shows every game of an experiment, with or without a reproduction)."""
    if game not in dopamine_games():
        return pd.DataFrame(columns=BAND_COLUMNS)
    return _band(tables.dopamine_curves(game), "frames_end", "training_return_mean", covered_frames)


def nnabla_band(game: str, covered_frames: float) -> pd.DataFrame:
    """nnabla-rl's training-time evaluations of `game` over the frames a run covers: one row per
    evaluation at or before `covered_frames` (every 1M frames), with the mean, low and high of its
    3 seeds' scores; empty under 1M frames or for a game it did not run."""
    if game not in nnabla_games():
        return pd.DataFrame(columns=BAND_COLUMNS)
    return _band(tables.nnabla_curves(game), "frames", "eval_return_mean", covered_frames)
