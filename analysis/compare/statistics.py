"""The statistics of a comparison of two experiments A and B: pure functions on score arrays.

One data shape throughout, as in analysis/report/metrics.py: an array `[..., runs, games]` (one
row per seed, one column per game, NaN where a game lacks that seed; leading axes are bootstrap
resamples). The resampling is the report's stratified bootstrap (seeds drawn with replacement
within each game, metrics.stratified_bootstrap); A's and B's seeds are drawn independently of each
other, because a seed of one experiment shares nothing with the same seed number of the other.

- Mann-Whitney probability of a game: P(b > a) + P(b = a) / 2 over every pair of one of A's seeds
  and one of B's (a tie counts half), so that two identical sets of seeds give exactly 1/2.
- Probability of improvement P(B > A) (Agarwal et al. 2021): that probability averaged over games.
- Performance profile: for each threshold tau, the fraction of runs with a score at or above tau,
  each game weighted equally (the run-score distribution of Agarwal et al.; the fraction of games
  when every game has one seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from analysis.report import metrics

CONFIDENCE = 0.95
# The normal quantile of a two-sided 95 % interval, for the seeds-needed estimate.
Z_95 = 1.959963984540054


def resamples(scores: np.ndarray, *, reps: int, seed: int) -> np.ndarray:
    """`reps` stratified-bootstrap resamples of `scores` `[runs, games]`: `[reps, runs, games]`."""
    return metrics.stratified_bootstrap(scores, lambda resampled: resampled, reps=reps, seed=seed)


def percentile_interval(distribution: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) percentile bounds over the first axis of `distribution`."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(distribution, [tail, 100.0 - tail], axis=0)
    return low, high


def mann_whitney_probability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per game, P(b > a) + P(b = a) / 2 over all pairs of present runs: `[..., runs, games]` x2 -> `[..., games]`."""
    a = np.asarray(a, dtype=np.float64)[..., :, None, :]
    b = np.asarray(b, dtype=np.float64)[..., None, :, :]
    pairs = (~np.isnan(a) & ~np.isnan(b)).sum(axis=(-3, -2))
    # NaN compares False both ways, so an absent run adds nothing to either count.
    wins = (b > a).sum(axis=(-3, -2)) + 0.5 * (b == a).sum(axis=(-3, -2))
    return wins / pairs


def probability_of_improvement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(B > A): the games' Mann-Whitney probabilities averaged: `[..., runs, games]` x2 -> `[...]`."""
    return mann_whitney_probability(a, b).mean(axis=-1)


def run_score_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of runs at or above each tau, games weighted equally: `[..., runs, games]` -> `[..., taus]`."""
    scores = np.asarray(scores, dtype=np.float64)
    present = (~np.isnan(scores)).sum(axis=-2)
    at_or_above = (scores[..., None] >= np.asarray(taus)).sum(axis=-3)
    return (at_or_above / present[..., None]).mean(axis=-2)


def single_seed(scores: np.ndarray) -> bool:
    """True when every game has at most one run: a bootstrap over seeds then has nothing to resample."""
    return bool(((~np.isnan(scores)).sum(axis=0) <= 1).all())


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95 % interval; `low` and `high` are NaN where there is no interval."""

    value: float
    low: float
    high: float

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def excludes(self, point: float) -> bool:
        """Whether the interval lies wholly above or below `point`."""
        return self.has_interval and (self.low > point or self.high < point)


def estimate(point: float, distribution: np.ndarray, *, interval: bool) -> Estimate:
    if not interval:
        return Estimate(float(point), math.nan, math.nan)
    low, high = percentile_interval(distribution)
    return Estimate(float(point), float(low), float(high))


@dataclass(frozen=True)
class Bootstrap:
    """A's and B's scores `[runs, games]` and their independent resamples `[reps, runs, games]`."""

    a: np.ndarray
    b: np.ndarray
    a_resampled: np.ndarray
    b_resampled: np.ndarray

    @classmethod
    def draw(cls, a: np.ndarray, b: np.ndarray, *, reps: int, seed: int) -> "Bootstrap":
        # A's resamples are drawn as the report draws them with the same seed; B's from the next seed.
        return cls(a, b, resamples(a, reps=reps, seed=seed), resamples(b, reps=reps, seed=seed + 1))

    @property
    def interval(self) -> bool:
        """Whether intervals mean anything: both experiments have a second seed in some game."""
        return not (single_seed(self.a) or single_seed(self.b))

    def each(self, statistic: metrics.Statistic) -> tuple[Estimate, Estimate]:
        """`statistic` of A and of B, each with its own interval."""
        return tuple(
            estimate(statistic(scores), statistic(resampled), interval=not single_seed(scores))
            for scores, resampled in ((self.a, self.a_resampled), (self.b, self.b_resampled))
        )

    def difference(self, statistic: metrics.Statistic) -> Estimate:
        """statistic(B) - statistic(A), its interval from the two independent resamples."""
        point = statistic(self.b) - statistic(self.a)
        distribution = statistic(self.b_resampled) - statistic(self.a_resampled)
        return estimate(point, distribution, interval=self.interval)

    def difference_standard_error(self, statistic: metrics.Statistic) -> float:
        """The bootstrap standard error of statistic(B) - statistic(A) (s.d. of its resampled values)."""
        if not self.interval:
            return math.nan
        return float(np.std(statistic(self.b_resampled) - statistic(self.a_resampled), ddof=1))

    def probability_of_improvement(self) -> Estimate:
        point = probability_of_improvement(self.a, self.b)
        distribution = probability_of_improvement(self.a_resampled, self.b_resampled)
        return estimate(point, distribution, interval=self.interval)

    def game_differences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per game, the difference of the means over seeds (B - A) and its interval `[games]` x3;
        NaN bounds for a game with one seed in either experiment."""
        point = np.nanmean(self.b, axis=0) - np.nanmean(self.a, axis=0)
        low, high = percentile_interval(np.nanmean(self.b_resampled, axis=1) - np.nanmean(self.a_resampled, axis=1))
        one = ((~np.isnan(self.a)).sum(axis=0) < 2) | ((~np.isnan(self.b)).sum(axis=0) < 2)
        return point, np.where(one, np.nan, low), np.where(one, np.nan, high)

    def profiles(self, taus: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """{"a", "b"}: (profile, lower, upper) over `taus`."""
        out = {}
        for key, scores, resampled in (("a", self.a, self.a_resampled), ("b", self.b, self.b_resampled)):
            low, high = percentile_interval(run_score_profile(resampled, taus))
            out[key] = (run_score_profile(scores, taus), low, high)
        return out


def seeds_needed(standard_error: float, seeds: int, difference: float, z: float = Z_95) -> int | None:
    """Seeds per game for a 95 % interval of half-width |difference|, from the bootstrap standard error
    measured with `seeds` seeds and its 1/sqrt(seeds) scaling: ceil(seeds x (z se / difference)^2),
    and at least 2, since one seed gives no interval at all; None when the error is unknown (one
    seed) or the difference is 0."""
    if not (math.isfinite(standard_error) and difference) or seeds < 1:
        return None
    return max(2, math.ceil(seeds * (z * standard_error / abs(difference)) ** 2))


VERDICTS = ("better", "can't tell", "worse")


def game_verdict(low: float, high: float) -> str:
    """B "better" when the 95 % interval of B - A lies above 0, "worse" when below, else "can't tell"."""
    if math.isfinite(low) and low > 0:
        return "better"
    if math.isfinite(high) and high < 0:
        return "worse"
    return "can't tell"
