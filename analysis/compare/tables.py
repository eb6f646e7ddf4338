"""The comparison's numbers: the per-game table, the aggregates, the verdict and the seeds-needed note.

Differences are always B - A (B the experiment with the change, A the one it is compared with).
A per-game difference is of the means over seeds of the raw scores; its interval resamples each
experiment's seeds of that game. The aggregates are of human-normalized scores, their intervals
from the stratified bootstrap (analysis/compare/statistics.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dqn.games import display_name
from dqn.run_folder import WEIGHTS
from analysis.compare import statistics as stats
from analysis.compare.inputs import Common
from analysis.report import metrics
from analysis.report.tables import WEIGHTS_LABELS

# The IQM differences (points of human-normalized score) the seeds-needed note is worked out for.
NOTE_DIFFERENCES_POINTS = (5.0, 10.0, 25.0)


@dataclass(frozen=True)
class Aggregates:
    """One weights' aggregate numbers of human-normalized scores."""

    weights: str
    each: dict[str, tuple[stats.Estimate, stats.Estimate]]  # statistic -> (A, B)
    difference: dict[str, stats.Estimate]  # statistic -> B - A
    improvement: stats.Estimate  # P(B > A)
    iqm_standard_error: float  # bootstrap s.e. of the IQM difference; NaN with one seed
    games: int
    seeds: tuple[int, int]  # the fewest and the most seeds a game has, over both experiments


def seed_range(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    counts = np.concatenate([(~np.isnan(a)).sum(axis=0), (~np.isnan(b)).sum(axis=0)])
    return int(counts.min()), int(counts.max())


def aggregates(common: Common, weights: str, *, reps: int, seed: int) -> tuple[Aggregates, stats.Bootstrap]:
    """The aggregates of `weights` and the bootstrap they came from (for the performance profile)."""
    a, b = common.normalized("a", weights), common.normalized("b", weights)
    boot = stats.Bootstrap.draw(a, b, reps=reps, seed=seed)
    result = Aggregates(
        weights=weights,
        each={name: boot.each(statistic) for name, statistic in metrics.AGGREGATES.items()},
        difference={name: boot.difference(statistic) for name, statistic in metrics.AGGREGATES.items()},
        improvement=boot.probability_of_improvement(),
        iqm_standard_error=boot.difference_standard_error(metrics.aggregate_iqm),
        games=len(common.games),
        seeds=seed_range(a, b),
    )
    return result, boot


def game_table(common: Common, weights: str, *, reps: int, seed: int) -> pd.DataFrame:
    """One row per common game.

    Columns: game, display_name, seeds_a, seeds_b; for each weights w: a_{w}_mean, b_{w}_mean,
    {w}_difference, {w}_difference_low, {w}_difference_high (raw scores; NaN bounds for a game with
    one seed in either); a_normalized, b_normalized (human-normalized means over seeds of `weights`);
    verdict ("better" | "can't tell" | "worse", from `weights`' difference interval).
    """
    table = pd.DataFrame({"game": common.games, "display_name": [display_name(g) for g in common.games]})
    for which in ("a", "b"):
        table[f"seeds_{which}"] = (~np.isnan(common.seed_means(which, weights))).sum(axis=0).astype(np.int64)
    for w in WEIGHTS:
        a, b = common.seed_means("a", w), common.seed_means("b", w)
        table[f"a_{w}_mean"], table[f"b_{w}_mean"] = np.nanmean(a, axis=0), np.nanmean(b, axis=0)
        # Each weights from its own seed offset, so that best and final are not resampled alike.
        boot = stats.Bootstrap.draw(a, b, reps=reps, seed=seed + 2 * WEIGHTS.index(w))
        difference, low, high = boot.game_differences()
        table[f"{w}_difference"], table[f"{w}_difference_low"], table[f"{w}_difference_high"] = difference, low, high
    for which in ("a", "b"):
        table[f"{which}_normalized"] = np.nanmean(common.normalized(which, weights), axis=0)
    table["verdict"] = [stats.game_verdict(low, high) for low, high in
                        zip(table[f"{weights}_difference_low"], table[f"{weights}_difference_high"])]
    return table


def _interval(estimate: stats.Estimate, digits: int) -> str:
    if not estimate.has_interval:
        return "(no interval: one seed)"
    return f"[{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"


def _seeds_text(seeds: tuple[int, int]) -> str:
    low, high = seeds
    count = str(low) if low == high else f"{low} to {high}"
    return f"{count} seed{'' if high == 1 else 's'}"


def verdict_sentence(result: Aggregates, name_a: str, name_b: str) -> str:
    """One sentence: B's IQM against A's with its interval, whether that tells them apart, and P(B > A).

    B is "better" or "worse" than A only when the 95 % interval of the IQM difference excludes 0.
    """
    iqm = result.difference["iqm"]
    if iqm.value == 0:
        change = f"{name_b}'s IQM equals {name_a}'s (difference 0.0 {_interval(iqm, 1)})"
    else:
        direction = "higher" if iqm.value > 0 else "lower"
        change = f"{name_b}'s IQM is {abs(iqm.value):.1f} points {direction} than {name_a}'s {_interval(iqm, 1)}"
    if iqm.excludes(0.0):
        tells = f"{name_b} is {'better' if iqm.value > 0 else 'worse'}"
    else:
        tells = f"not distinguishable from {name_a}"
    p = result.improvement
    return (f"With {_seeds_text(result.seeds)} on {result.games} game{'' if result.games == 1 else 's'} "
            f"({WEIGHTS_LABELS[result.weights]} weights), {change}: {tells}; "
            f"P({name_b} > {name_a}) = {p.value:.2f} {_interval(p, 2)}.")


def seeds_needed_table(result: Aggregates) -> pd.DataFrame:
    """Seeds per game for the IQM difference's interval to clear 0, for NOTE_DIFFERENCES_POINTS and the
    observed difference (columns difference, seeds); empty with one seed (no standard error)."""
    if not np.isfinite(result.iqm_standard_error):
        return pd.DataFrame(columns=["difference", "seeds"])
    observed = abs(result.difference["iqm"].value)
    differences = sorted(set(NOTE_DIFFERENCES_POINTS) | ({round(observed, 1)} if observed >= 0.05 else set()))
    seeds = result.seeds[1]
    return pd.DataFrame({
        "difference": differences,
        "seeds": [stats.seeds_needed(result.iqm_standard_error, seeds, d) for d in differences],
    })
