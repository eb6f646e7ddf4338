"""The comparison's figures: both experiments' performance profiles, and their learning curves overlaid.

Each function returns a matplotlib Figure and never saves; the report's helpers (the seeds' band,
the frames unit, the legend that fits, the same-protocol reference curve) draw what the report draws.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.report import curve_figures
from analysis.report import figures as report_figures

# A is the experiment compared with (orange), B the one with the change (the report's blue).
A_COLOR = sns.color_palette("colorblind")[1]
B_COLOR = report_figures.THIS_RUN_COLOR
TAU_POINTS = 201
PROFILE_MIN_TOP_PERCENT = 200.0


def taus_for(*scores: np.ndarray) -> np.ndarray:
    """The thresholds of a profile, in percent: from 0 (or the lowest score) to the 95th percentile of
    all scores rounded up, so that a few games far above human level do not squeeze the range where
    most runs lie into the axis's first tenth. Above human level it is rounded up to 50 and the axis
    shows at least 200 % (human level in view); below, runs of a short budget that all score a few
    percent get an axis of their own, 10 % past that percentile rounded up to 10."""
    values = np.concatenate([s[np.isfinite(s)] for s in scores])
    low = min(0.0, float(values.min()))
    top = float(np.percentile(values, 95))
    if top > 100.0:
        high = max(PROFILE_MIN_TOP_PERCENT, 50.0 * math.ceil(top / 50.0))
    else:
        high = max(10.0, 10.0 * math.ceil(1.1 * top / 10.0))
    return np.linspace(low, high, TAU_POINTS)


def taus_caption(taus: np.ndarray) -> str:
    """Where the profile's axis stops, and why, for the figure's caption."""
    rule = "rounded up to 50, at least 200 %" if taus[-1] >= PROFILE_MIN_TOP_PERCENT else "and 10 % more, rounded up to 10"
    return f"up to \u03c4 = {taus[-1]:,.0f} % (the 95th percentile of both experiments' scores {rule})"


def profile_figure(taus: np.ndarray, profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                   names: tuple[str, str], *, bands: bool) -> Figure:
    """Fraction of runs at or above each human-normalized score tau, A and B, with their 95 % bands."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot()
    for key, name, color in (("a", names[0], A_COLOR), ("b", names[1], B_COLOR)):
        point, low, high = profiles[key]
        if bands:
            ax.fill_between(taus, low, high, color=color, alpha=0.22, linewidth=0, step="post")
        ax.step(taus, point, where="post", color=color, linewidth=1.6, label=name)
    human_in_view = taus[-1] >= 100.0
    if human_in_view:
        ax.axvline(100.0, color=report_figures.HUMAN_COLOR, linestyle="--", linewidth=1.0, label="human level (100 %)")
    ax.set_xlim(taus[0], taus[-1])
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("human-normalized score \u03c4 (%)")
    ax.set_ylabel("fraction of runs with score \u2265 \u03c4")
    handles = [Line2D([], [], color=A_COLOR, linewidth=1.6, label=names[0]),
               Line2D([], [], color=B_COLOR, linewidth=1.6, label=names[1])]
    if bands:
        handles.append(Patch(color="grey", alpha=0.3, label="95 % stratified-bootstrap interval"))
    if human_in_view:
        handles.append(Line2D([], [], color=report_figures.HUMAN_COLOR, linestyle="--", label="human level (100 %)"))
    curve_figures.fit_legend(fig, handles)
    return fig


def _grid(n: int, max_columns: int) -> tuple[Figure, list]:
    columns = max(1, min(max_columns, n))
    rows = math.ceil(n / columns)
    panel_inches = min(4.0, max(2.3, 12.0 / columns))
    fig = Figure(figsize=(panel_inches * columns + 0.4, panel_inches * 0.8 * rows + 1.0), layout="constrained")
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _draw_experiment(ax, curves: pd.DataFrame, color, scale: float) -> float:
    """One experiment's mean over seeds and min-max band; returns the last frame drawn (0 if none)."""
    if curves.empty:
        return 0.0
    band = curve_figures.seed_band(curves, "eval_score_mean")
    x = band["frames"] / scale
    ax.fill_between(x, band["low"], band["high"], color=color, alpha=0.22, linewidth=0, zorder=2)
    ax.plot(x, band["mean"], color=color, linewidth=1.3, zorder=3)
    return float(band["frames"].max())


def curves_figure(curves: tuple[pd.DataFrame, pd.DataFrame], games: list[str], titles: list[str],
                  names: tuple[str, str], *, same_protocol_reference: bool) -> Figure:
    """One panel per game: A's and B's training-time evaluation score against frames (mean over seeds, and
    the range over seeds as a band), behind them the same-protocol reference where it has the game."""
    a, b = (c.assign(game=c["game"].astype(str))[c["eval_score_mean"].notna()] for c in curves)
    fig, axes = _grid(len(games), max_columns=6)
    longest = max([float(c["frames"].max()) for c in (a, b) if len(c)] or [0.0])
    scale, xlabel = curve_figures.frames_unit(longest)
    reference = curve_figures.NNABLA
    drawn = False
    for ax, game, title in zip(axes, games, titles):
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        covered = max(_draw_experiment(ax, a[a["game"] == game], A_COLOR, scale),
                      _draw_experiment(ax, b[b["game"] == game], B_COLOR, scale))
        if covered == 0.0:
            ax.text(0.5, 0.5, "no curve yet", transform=ax.transAxes, ha="center", va="center", fontsize=8)
            continue
        if same_protocol_reference and game in reference.games():
            drawn |= curve_figures.draw_reference(ax, reference, game, covered, scale)
        ax.set_xlim(left=0.0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(xlabel, fontsize=7)
    handles = [(Patch(color=A_COLOR, alpha=0.22, linewidth=0), Line2D([], [], color=A_COLOR, linewidth=1.3)),
               (Patch(color=B_COLOR, alpha=0.22, linewidth=0), Line2D([], [], color=B_COLOR, linewidth=1.3))]
    labels = [f"{names[0]}: mean over seeds, min to max", f"{names[1]}: mean over seeds, min to max"]
    if drawn:
        handles.append((Patch(color=reference.color, alpha=reference.alpha, linewidth=0),
                        Line2D([], [], color=reference.color, linewidth=1.0)))
        labels.append(reference.label)
    curve_figures.fit_legend(fig, handles, labels=labels)
    return fig
