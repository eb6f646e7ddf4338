"""Aggregate metrics of human-normalized scores and their stratified-bootstrap confidence intervals.

One data shape throughout, as in rliable: `scores` is an array `[..., runs, games]` of
human-normalized scores (percent), one column per game, one row per run (seed); NaN marks a run
that a game does not have (partial results: a game may have fewer seeds than another). Leading
axes are batch axes (bootstrap resamples). Every game must have at least one run.

Definitions (rliable's, Agarwal et al. 2021):
- per-game score: the mean over that game's runs;
- mean / median: the mean / median over games of the per-game scores;
- IQM: the mean of the middle 50 % of all run x game scores, cutting int(0.25 n) scores from each
  end (scipy.stats.trim_mean(scores, 0.25, axis=None), what rliable.metrics.aggregate_iqm does);
- confidence intervals: percentile intervals of a stratified bootstrap that resamples runs with
  replacement within each game (rliable's StratifiedBootstrap with task_bootstrap=False).

The bootstrap is written here rather than taken from rliable 1.2.0 (the latest release): its
`library` module needs `arch`, and with pandas 3 and numpy 2 arch 7.x fails on import (pandas'
`deprecate_kwarg` changed), arch 6.x is built for numpy 1, and arch 8.0 imports but dropped the
`random_state` argument that rliable's StratifiedBootstrap passes. scipy.stats.bootstrap with one
sample per game is the same stratified bootstrap (a test checks the two agree) but refuses games
with a single run, which partial results and one-seed experiments have.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]


def _check(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim < 2:
        raise ValueError(f"scores must have shape [..., runs, games], got shape {scores.shape}")
    if scores.shape[-1] == 0:
        raise ValueError("scores has no games")
    if np.isnan(scores).all(axis=-2).any():
        raise ValueError("every game needs at least one run (a column of scores is all NaN)")
    return scores


def game_scores(scores: np.ndarray) -> np.ndarray:
    """Per-game score, the mean over runs: `[..., runs, games]` -> `[..., games]`."""
    return np.nanmean(_check(scores), axis=-2)


def aggregate_mean(scores: np.ndarray) -> np.ndarray:
    """Mean over games of the per-game scores: `[..., runs, games]` -> `[...]`."""
    return game_scores(scores).mean(axis=-1)


def aggregate_median(scores: np.ndarray) -> np.ndarray:
    """Median over games of the per-game scores: `[..., runs, games]` -> `[...]`."""
    return np.median(game_scores(scores), axis=-1)


def aggregate_iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of all run x game scores: `[..., runs, games]` -> `[...]`.

    int(0.25 n) scores are cut from each end of the n present scores (NaN runs are not scores).
    """
    scores = _check(scores)
    flat = scores.reshape(scores.shape[:-2] + (-1,))
    counts = np.unique((~np.isnan(flat)).sum(axis=-1))
    if counts.size != 1:
        raise ValueError("every batch entry of scores must have the same runs present")
    n = int(counts[0])
    cut = int(0.25 * n)
    ordered = np.sort(flat, axis=-1)  # NaN sorts last, so the first n entries are the scores
    return ordered[..., cut : n - cut].mean(axis=-1)


def count_at_or_above(scores: np.ndarray, threshold_percent: float) -> np.ndarray:
    """Number of games whose per-game score is at least `threshold_percent`: `[..., runs, games]` -> `[...]`."""
    return (game_scores(scores) >= threshold_percent).sum(axis=-1)


def stratified_bootstrap(scores: np.ndarray, statistic: Statistic, *, reps: int, seed: int) -> np.ndarray:
    """`statistic` on `reps` resamples of `scores` `[runs, games]`, runs drawn with replacement within each game.

    A game keeps its number of present runs in every resample; returns an array `[reps]`.
    """
    scores = _check(scores)
    if scores.ndim != 2:
        raise ValueError(f"stratified_bootstrap takes scores of shape [runs, games], got {scores.shape}")
    if reps < 1:
        raise ValueError(f"reps must be positive, got {reps}")
    rng = np.random.default_rng(seed)
    runs, games = scores.shape
    resampled = np.full((reps, runs, games), np.nan)
    for game in range(games):
        present = scores[~np.isnan(scores[:, game]), game]
        draws = rng.integers(0, present.size, size=(reps, present.size))
        resampled[:, : present.size, game] = present[draws]
    return np.asarray(statistic(resampled), dtype=np.float64)


def interval_estimate(
    scores: np.ndarray, statistic: Statistic, *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(point estimate, lower, upper): `statistic` on `scores` `[runs, games]` and the percentile
    interval of its stratified-bootstrap distribution."""
    point = float(statistic(_check(scores)))
    distribution = stratified_bootstrap(scores, statistic, reps=reps, seed=seed)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(distribution, [tail, 100.0 - tail])
    return point, float(low), float(high)


# The aggregates of the report, in the order they are shown.
AGGREGATES: dict[str, Statistic] = {
    "median": aggregate_median,
    "mean": aggregate_mean,
    "iqm": aggregate_iqm,
}
THRESHOLDS_PERCENT = (100.0, 75.0)
