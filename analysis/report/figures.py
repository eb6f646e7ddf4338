"""The report's figures of scores (bars per game, scatter against the paper), the palette and the PNG
encoding all figures share; the learning curves are in curve_figures. Each function takes tables
and returns a matplotlib Figure; none saves.

Figures are built on `matplotlib.figure.Figure` directly (the Agg canvas, no pyplot), so making
one touches no global state and needs no display.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from analysis.numbers import number_text
from analysis.report.tables import WEIGHTS_LABELS

# Human-normalized bars are drawn up to this value; longer ones are cut and labelled with their value.
BAR_CLIP_PERCENT = 600.0
# Scores are drawn on symmetric-log axes: linear within +-SYMLOG_LINEAR_WIDTH points, logarithmic outside.
SYMLOG_LINEAR_WIDTH = 10.0
# The scatter of scores names this many games, those farthest from the paper on the symlog scale.
SCATTER_LABELS = 12
# PNG resolution: the page lays a figure out at 100 px an inch (content.PAGE_DPI), so 150 is sharp there
# and on a 1.5x screen; a panel grid of 7 columns is then about 2,500 px wide.
DPI = 150

_PALETTE = sns.color_palette("colorblind")
THIS_RUN_COLOR = _PALETTE[0]
FINAL_COLOR = _PALETTE[2]
PAPER_COLOR = (0.62, 0.62, 0.62)
HUMAN_COLOR = _PALETTE[3]
NO_EPISODE_COLOR = "firebrick"
RANDOM_COLOR = _PALETTE[1]
PFRL_COLOR = "black"
DOPAMINE_COLOR = _PALETTE[4]
NNABLA_COLOR = _PALETTE[2]


def new_figure(width_inches: float, height_inches: float) -> Figure:
    return Figure(figsize=(width_inches, height_inches), layout="constrained")


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """The figure encoded as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _write_off_axis_values(ax, y, paper: np.ndarray, pfrl: np.ndarray, *, left: float, right: float) -> None:
    """The paper's and PFRL's values off either end of the axis, written out after the paper's bar at `y`."""
    for yi, value, pfrl_value in zip(y, paper, pfrl):
        cut = [f"{number_text(value)} % \u2192"] if np.isfinite(value) and value > BAR_CLIP_PERCENT else []
        if np.isfinite(pfrl_value) and pfrl_value > BAR_CLIP_PERCENT:
            cut.append(f"PFRL {number_text(pfrl_value)} % \u2192")
        elif np.isfinite(pfrl_value) and pfrl_value < left:
            cut.append(f"PFRL {number_text(pfrl_value)} % \u2190")
        if cut:
            end = min(max(value, 0.0), BAR_CLIP_PERCENT) if np.isfinite(value) else 0.0
            ax.text(end + 0.01 * right, yi, ", ".join(cut), va="center", ha="left", fontsize=7, color="dimgray")


def normalized_scores_figure(table: pd.DataFrame, *, weights: str = "best", reference_label: str = "paper") -> Figure:
    """Fig. 3 of the paper: human-normalized score per game, sorted, this run's beside the paper's.

    `table` is `tables.game_table()`. Games without this run's score are drawn last, marked
    "no score". Bars longer than BAR_CLIP_PERCENT are cut at it and labelled with their value.
    """
    ours = table[f"{weights}_normalized"].to_numpy(dtype=np.float64)
    paper = table["paper_normalized"].to_numpy(dtype=np.float64)
    has_pfrl = "pfrl_normalized" in table.columns
    pfrl = table["pfrl_normalized"].to_numpy(dtype=np.float64) if has_pfrl else np.full(len(table), np.nan)
    # Highest first, missing last; reversed below because barh draws its first bar at the bottom.
    order = sorted(range(len(table)), key=lambda i: (math.isnan(ours[i]), -ours[i] if not math.isnan(ours[i]) else 0.0))
    names = [str(table["display_name"].iloc[i]) + ("  (no score)" if math.isnan(ours[i]) else "") for i in order]
    ours, paper, pfrl = ours[order][::-1], paper[order][::-1], pfrl[order][::-1]
    names = names[::-1]

    n = len(names)
    fig = new_figure(9.0, 1.4 + 0.3 * n)
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot()
    finite = np.concatenate([ours[np.isfinite(ours)], paper[np.isfinite(paper)], pfrl[np.isfinite(pfrl)], [100.0]])
    right = min(max(finite.max() * 1.08, 110.0), BAR_CLIP_PERCENT * 1.12)
    left = min(0.0, max(finite.min() * 1.1, -100.0)) - 0.02 * right
    y = np.arange(n)
    height = 0.4
    ax.barh(y - height / 2, np.clip(np.nan_to_num(paper), left, BAR_CLIP_PERCENT), height=height,
            color=PAPER_COLOR, label=f"DQN in the {reference_label}")
    ax.barh(y + height / 2, np.clip(np.nan_to_num(ours), left, BAR_CLIP_PERCENT), height=height,
            color=THIS_RUN_COLOR, label=f"this run ({WEIGHTS_LABELS[weights]} weights)")
    for yi, value in zip(y, ours):
        if np.isfinite(value):
            cut = value > BAR_CLIP_PERCENT
            x = min(value, BAR_CLIP_PERCENT) if value >= 0 else 0.0
            ax.text(x + 0.01 * right, yi + height / 2, f"{number_text(value)} %" + (" \u2192" if cut else ""),
                    va="center", ha="left", fontsize=7, color="black", fontweight="bold" if cut else "normal")
    if has_pfrl:
        # PFRL's score on the paper's bar (a tick across it), so that the two published numbers read together.
        shown = np.isfinite(pfrl)
        ax.plot(np.clip(pfrl[shown], left, BAR_CLIP_PERCENT), y[shown] - height / 2, linestyle="none", marker="|",
                markersize=9, markeredgewidth=2.2, color=PFRL_COLOR, label="PFRL's reproduction", zorder=3)
    _write_off_axis_values(ax, y - height / 2, paper, pfrl, left=left, right=right)
    ax.axvline(100.0, color=HUMAN_COLOR, linestyle="--", linewidth=1.2, label="human level (100 %)")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(left, right)
    ax.set_xlabel("human-normalized score (%)")
    ax.xaxis.set_ticks_position("both")
    ax.tick_params(axis="x", labeltop=True)
    handles, labels = ax.get_legend_handles_labels()
    # In the order of the bars from the paper down: the published numbers, this run, then the human line.
    order = [f"DQN in the {reference_label}", "PFRL's reproduction", f"this run ({WEIGHTS_LABELS[weights]} weights)",
             "human level (100 %)"]
    entries = sorted(zip(handles, labels), key=lambda entry: order.index(entry[1]))
    fig.legend(*zip(*entries), loc="outside upper center", ncols=len(entries), fontsize=8, frameon=False)
    return fig


def _symlog(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.log10(1.0 + np.abs(values) / SYMLOG_LINEAR_WIDTH)


def scores_vs_paper_figure(table: pd.DataFrame, *, reference_label: str = "paper") -> Figure:
    """This run's raw scores (best and final weights; the random agent) against the paper's, on symmetric-log axes,
    with PFRL's reproduction against the paper's where `table` has it (a horizontal tick at each game).

    The axes are linear within +-SYMLOG_LINEAR_WIDTH points and logarithmic outside, so negative
    scores (Pong, Tennis, ...) are drawn without shifting; error bars are the s.d. across seeds.
    The SCATTER_LABELS games farthest from equality (best weights) are named.
    """
    fig = new_figure(9.0, 8.5)
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot()
    series = [
        ("random_score", "random_mean", "random_std", "random agent", PAPER_COLOR, "x"),
        ("paper_dqn_mean", "final_mean", "final_std", f"DQN, {WEIGHTS_LABELS['final']} weights", FINAL_COLOR, "s"),
        ("paper_dqn_mean", "best_mean", "best_std", f"DQN, {WEIGHTS_LABELS['best']} weights", THIS_RUN_COLOR, "o"),
    ]
    values = []
    for paper_col, ours_col, std_col, label, color, marker in series:
        present = table[table[paper_col].notna() & table[ours_col].notna()]
        if present.empty:
            continue
        ax.errorbar(present[paper_col], present[ours_col], yerr=present[std_col].fillna(0.0), fmt=marker, color=color,
                    markersize=5, elinewidth=0.8, capsize=0, alpha=0.9, label=label,
                    markerfacecolor="none" if marker == "s" else color)
        values.extend(present[paper_col].tolist() + present[ours_col].tolist())
    if "pfrl_dqn_mean" in table.columns:
        # PFRL's score on the same vertical as this run's (both against the paper's): another careful re-run.
        present = table[table["paper_dqn_mean"].notna() & table["pfrl_dqn_mean"].notna()]
        ax.plot(present["paper_dqn_mean"], present["pfrl_dqn_mean"], linestyle="none", marker="_", markersize=11,
                markeredgewidth=1.8, color=PFRL_COLOR, alpha=0.75, label="PFRL's reproduction", zorder=1.5)
        values.extend(present["paper_dqn_mean"].tolist() + present["pfrl_dqn_mean"].tolist())
    best = table[table["paper_dqn_mean"].notna() & table["best_mean"].notna()]
    # Labelling all 49 points makes the dense middle unreadable: name only those farthest from equality.
    distance = pd.Series(np.abs(_symlog(best["best_mean"]) - _symlog(best["paper_dqn_mean"])), index=best.index)
    for _, row in best.loc[distance.sort_values(ascending=False).index[:SCATTER_LABELS]].iterrows():
        ax.annotate(row["display_name"], (row["paper_dqn_mean"], row["best_mean"]), xytext=(5, -3),
                    textcoords="offset points", fontsize=7.5, color="black")
    ax.set_xscale("symlog", linthresh=SYMLOG_LINEAR_WIDTH)
    ax.set_yscale("symlog", linthresh=SYMLOG_LINEAR_WIDTH)
    if values:
        low, high = min(min(values), 0.0), max(max(values), 1.0)
        lim = (low * 1.5 if low < 0 else -1.0, high * 1.5)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.plot(lim, lim, color="black", linewidth=0.8, linestyle=":", label="equal to the paper")
    ax.set_xlabel(f"score in the {reference_label} (symmetric log: linear within \u00b1{SYMLOG_LINEAR_WIDTH:.0f})")
    ax.set_ylabel(f"score in this run (symmetric log: linear within \u00b1{SYMLOG_LINEAR_WIDTH:.0f})")
    handles, labels = ax.get_legend_handles_labels()
    # This run's points first, then the references they are read against.
    rank = {"PFRL's reproduction": 1, "equal to the paper": 2}
    entries = sorted(zip(handles, labels), key=lambda entry: rank.get(entry[1], 0))
    ax.legend(*zip(*entries), loc="upper left", fontsize=8)
    ax.set_title("Raw scores: this run against the paper (error bars: s.d. across seeds)", fontsize=10)
    return fig
