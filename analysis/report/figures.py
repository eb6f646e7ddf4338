"""The report's figures. Each function takes tables and returns a matplotlib Figure; none saves.

Figures are built on `matplotlib.figure.Figure` directly (the Agg canvas, no pyplot), so making
one touches no global state and needs no display.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.report import reproductions
from analysis.report.tables import WEIGHTS_LABELS

# Human-normalized bars are drawn up to this value; longer ones are cut and labelled with their value.
BAR_CLIP_PERCENT = 600.0
# Scores are drawn on symmetric-log axes: linear within +-SYMLOG_LINEAR_WIDTH points, logarithmic outside.
SYMLOG_LINEAR_WIDTH = 10.0
# The scatter of scores names this many games, those farthest from the paper on the symlog scale.
SCATTER_LABELS = 12
# A learning curve with at most this many evaluations in a run draws a dot on each.
MARKER_POINTS = 12
# PNG resolution: the page lays a figure out at 100 px an inch (html.PAGE_DPI), so 150 is sharp there
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


def _new_figure(width_inches: float, height_inches: float) -> Figure:
    return Figure(figsize=(width_inches, height_inches), layout="constrained")


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """The figure encoded as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _whole(value: float) -> str:
    """A value rounded to a whole number, without the sign of a negative zero."""
    text = f"{value:,.0f}"
    return "0" if text == "-0" else text


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
    fig = _new_figure(9.0, 1.4 + 0.3 * n)
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
            ax.text(x + 0.01 * right, yi + height / 2, f"{_whole(value)} %" + (" \u2192" if cut else ""),
                    va="center", ha="left", fontsize=7, color="black", fontweight="bold" if cut else "normal")
    if has_pfrl:
        # PFRL's score on the paper's bar (a tick across it), so that the two published numbers read together.
        shown = np.isfinite(pfrl)
        ax.plot(np.clip(pfrl[shown], left, BAR_CLIP_PERCENT), y[shown] - height / 2, linestyle="none", marker="|",
                markersize=9, markeredgewidth=2.2, color=PFRL_COLOR, label="PFRL's reproduction", zorder=3)
    for yi, value, pfrl_value in zip(y, paper, pfrl):
        # Values off either end of the axis are written out after the paper's bar.
        cut = [f"{_whole(value)} % \u2192"] if np.isfinite(value) and value > BAR_CLIP_PERCENT else []
        if np.isfinite(pfrl_value) and pfrl_value > BAR_CLIP_PERCENT:
            cut.append(f"PFRL {_whole(pfrl_value)} % \u2192")
        elif np.isfinite(pfrl_value) and pfrl_value < left:
            cut.append(f"PFRL {_whole(pfrl_value)} % \u2190")
        if cut:
            end = min(max(value, 0.0), BAR_CLIP_PERCENT) if np.isfinite(value) else 0.0
            ax.text(end + 0.01 * right, yi - height / 2, ", ".join(cut), va="center", ha="left", fontsize=7,
                    color="dimgray")
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


def _grid(n: int, max_columns: int = 7) -> tuple[Figure, list, int]:
    columns = max(1, min(max_columns, n))
    rows = max(1, math.ceil(n / columns))
    # 2.3 inch panels for a full grid; fewer games get larger panels, up to a figure about 12.5 inches wide.
    panel_inches = min(4.5, max(2.3, 12.5 / columns))
    fig = _new_figure(panel_inches * columns + 0.4, panel_inches * 0.8 * rows + 0.8)
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n], columns


def seed_band(curves: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per frames value of one game: mean, min and max of `column` over seeds, and the seeds present."""
    grouped = curves.groupby("frames")[column]
    return pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(), "high": grouped.max(), "seeds": grouped.count()}).reset_index()


def frames_unit(max_frames: float) -> tuple[float, str]:
    """(divisor, axis label) for emulator frames up to `max_frames`: millions from 1M, thousands from 1,000."""
    if max_frames >= 1e6:
        return 1e6, "frames (millions)"
    if max_frames >= 1e3:
        return 1e3, "frames (thousands)"
    return 1.0, "frames"


def fit_legend(fig: Figure, handles: list, *, labels: list[str] | None = None, fontsize: float = 8):
    """A legend above the panels with as many entries a row as fit inside the figure's width; in one column,
    long labels are wrapped onto several lines until they fit.

    `labels` default to the handles' own; a tuple of artists is one entry drawn on top of each other.
    """
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = labels if labels is not None else [handle.get_label() for handle in handles]
    # Every column count from all entries in a row down to one, then one column with ever narrower labels.
    longest = max((len(label) for label in labels), default=0)
    layouts = [(ncols, None) for ncols in range(len(handles), 0, -1)]
    layouts += [(1, width) for width in range(min(longest - 1, 80), 19, -5)]
    for ncols, width in layouts:
        shown = labels if width is None else [textwrap.fill(label, width) for label in labels]
        legend = fig.legend(handles=handles, labels=shown, loc="outside upper center", ncols=ncols, fontsize=fontsize,
                            frameon=False)
        if (ncols, width) == layouts[-1] or legend.get_window_extent(renderer).width <= 0.97 * fig.bbox.width:
            return legend
        legend.remove()


def frames_text(frames: float) -> str:
    """Emulator frames in a few characters: 64k, 3M, 1.5M."""
    if frames >= 1e6:
        return f"{frames / 1e6:,.3g}M"
    if frames >= 1e3:
        return f"{frames / 1e3:,.3g}k"
    return f"{frames:,.0f}"


# Matplotlib gids of the reproductions' artists, so that a test can find them in a panel.
DOPAMINE_BAND_GID, DOPAMINE_MEAN_GID = "dopamine-band", "dopamine-mean"
NNABLA_BAND_GID, NNABLA_MEAN_GID = "nnabla-band", "nnabla-mean"


@dataclass(frozen=True)
class ReferenceCurve:
    """How one reproduction's curve is drawn behind a run's: the same-protocol one first (stronger band,
    solid line, in front of the other), the other-protocol one second (fainter, dash-dot)."""

    label: str  # the legend's entry
    short_label: str  # the reproduction's name in a "not drawn" note
    first_frames: float  # its first point
    games: Callable[[], frozenset[str]]
    band: Callable[[str, float], pd.DataFrame]
    color: Any
    alpha: float
    linestyle: str
    zorder: float
    gids: tuple[str, str]


def dopamine_label() -> str:
    return (f"{reproductions.DOPAMINE_LABEL}, {reproductions.DOPAMINE_RUNS} runs: mean, min to max "
            f"({reproductions.DOPAMINE_PROTOCOL})")


def nnabla_label() -> str:
    return (f"{reproductions.NNABLA_LABEL}, {reproductions.NNABLA_SEEDS} seeds, {reproductions.NNABLA_PROTOCOL}: "
            "mean, min to max")


NNABLA = ReferenceCurve(nnabla_label(), reproductions.NNABLA_LABEL, reproductions.NNABLA_FIRST_FRAMES,
                        reproductions.nnabla_games, reproductions.nnabla_band, NNABLA_COLOR, 0.28, "-", 1.5,
                        (NNABLA_BAND_GID, NNABLA_MEAN_GID))
DOPAMINE = ReferenceCurve(dopamine_label(), reproductions.DOPAMINE_LABEL, reproductions.DOPAMINE_FIRST_FRAMES,
                          reproductions.dopamine_games, reproductions.dopamine_band, DOPAMINE_COLOR, 0.14, "-.", 0.5,
                          (DOPAMINE_BAND_GID, DOPAMINE_MEAN_GID))


def reference_note(reference: ReferenceCurve, short: dict[str, float], *, every_game: bool) -> str:
    """The legend's note for the games whose run covers less than the reproduction's first point (display name ->
    frames); `every_game`: no panel has its curve, so the games need no naming."""
    first = frames_text(reference.first_frames)
    covered = frames_text(max(short.values()))
    where = "" if every_game else f" for {', '.join(short)}"
    return (f"{reference.short_label} not drawn{where}: its first point is at {first} frames, this run covers "
            f"{'up to ' if len(set(short.values())) > 1 else ''}{covered} frames")


def draw_reference(ax, reference: ReferenceCurve, game: str, covered_frames: float, scale: float) -> bool:
    """The reproduction's curve of `game` behind this run's, over the frames the run covers; False when none is drawn."""
    band = reference.band(game, covered_frames)
    if band.empty:
        return False
    x = band["frames"] / scale
    ax.fill_between(x, band["low"], band["high"], color=reference.color, alpha=reference.alpha, linewidth=0,
                    zorder=reference.zorder, gid=reference.gids[0])
    ax.plot(x, band["mean"], color=reference.color, linewidth=1.0, linestyle=reference.linestyle,
            zorder=reference.zorder + 0.1, gid=reference.gids[1], marker="D" if len(band) <= MARKER_POINTS else None,
            markersize=2.5)
    return True


def _reference_legend(references: Sequence[ReferenceCurve], drawn: dict[str, bool],
                      short: dict[str, dict[str, float]]) -> tuple[list, list[str]]:
    """Legend handles and labels of the reproductions drawn, and the notes of those not drawn somewhere."""
    handles, labels = [], []
    for reference in references:
        if drawn[reference.label]:
            # The band and the mean line as one entry: one reference, drawn twice.
            handles.append((Patch(color=reference.color, alpha=reference.alpha, linewidth=0),
                            Line2D([], [], color=reference.color, linewidth=1.0, linestyle=reference.linestyle)))
            labels.append(reference.label)
    for reference in references:
        if short[reference.label]:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append(reference_note(reference, short[reference.label], every_game=not drawn[reference.label]))
    return handles, labels


def curves_figure(curves: pd.DataFrame, table: pd.DataFrame, column: str, ylabel: str, *,
                  paper_line: str | None = None, paper_label: str = "paper", random_line: str | None = None,
                  random_label: str = "random agent", mark_no_episode: bool = False,
                  references: Sequence[ReferenceCurve] = ()) -> Figure:
    """One panel per game of `table` (missing games included): `column` of learning_curves.parquet against
    emulator frames, the mean over seeds as a line and the range over seeds (min to max) as a band.

    `paper_line` names a `table` column drawn as a dashed horizontal line (e.g. the paper's score),
    labelled `paper_label` in the legend; `random_line` one drawn dotted (e.g. this run's random
    agent), labelled `random_label`. `mark_no_episode`: an evaluation that completed no episode (no
    score; 0 in the choice of the best snapshot) is drawn as a cross at 0. A run with at most
    MARKER_POINTS evaluations gets a dot on each. Frames are in millions or thousands, from the data.
    `references`: reproductions' curves of the game behind this run's (draw_reference), over the frames
    this run covers, the first in front of the next; a run shorter than a reproduction's first point
    gets a note in the legend instead.
    """
    fig, axes, columns = _grid(len(table))
    curves = curves.assign(game=curves["game"].astype(str))
    scale, xlabel = frames_unit(float(curves["frames"].max()) if len(curves) else 0.0)
    no_episode = ((curves["eval_frames"] > 0) & (curves["eval_episodes"] == 0)
                  if mark_no_episode and "eval_frames" in curves else pd.Series(False, index=curves.index))
    any_no_episode = False
    any_markers = False
    drawn = {reference.label: False for reference in references}
    any_paper_line = any_paper_note = False
    # reference label -> {display name -> frames covered}, for games under the reproduction's first point
    short: dict[str, dict[str, float]] = {reference.label: {} for reference in references}
    for k, (ax, (_, row)) in enumerate(zip(axes, table.iterrows())):
        game_no_episode = curves[(curves["game"] == row["game"]) & no_episode]
        game_curves = curves[(curves["game"] == row["game"]) & curves[column].notna()]
        complete = row.get("status", "complete") == "complete"
        ax.set_title(row["display_name"] + ("" if complete else f" ({row['status']})"), fontsize=9,
                     color="black" if complete else "firebrick")
        ax.tick_params(labelsize=7)
        if k % columns == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        if k >= len(axes) - columns:
            ax.set_xlabel(xlabel, fontsize=8)
        if not game_no_episode.empty:
            any_no_episode = True
            ax.plot(game_no_episode["frames"] / scale, np.zeros(len(game_no_episode)), linestyle="none", marker="x",
                    color=NO_EPISODE_COLOR, markersize=5)
        if game_curves.empty and game_no_episode.empty:
            ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center",
                    fontsize=8, color="dimgray")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        if game_curves.empty:
            continue
        band = seed_band(game_curves, column)
        x = band["frames"] / scale
        few = int(game_curves.groupby("seed").size().max()) <= MARKER_POINTS
        any_markers |= few
        covered_frames = float(max(game_curves["frames"].max(), game_no_episode["frames"].max()
                                   if not game_no_episode.empty else 0))
        for reference in (r for r in references if row["game"] in r.games()):
            if draw_reference(ax, reference, row["game"], covered_frames, scale):
                drawn[reference.label] = True
            else:
                short[reference.label][str(row["display_name"])] = covered_frames
        # This run in front of any reference curve.
        ax.fill_between(x, band["low"], band["high"], color=THIS_RUN_COLOR, alpha=0.25, linewidth=0, zorder=2)
        ax.plot(x, band["mean"], color=THIS_RUN_COLOR, linewidth=1.3, marker="o" if few else None, markersize=3.5,
                zorder=3)
        if random_line is not None and np.isfinite(row[random_line]):
            ax.axhline(row[random_line], color=RANDOM_COLOR, linestyle=":", linewidth=1.4)
        if paper_line is not None and np.isfinite(row[paper_line]):
            if draw_paper_score(ax, float(row[paper_line])):
                any_paper_line = True
            else:
                any_paper_note = True
        ax.set_xlim(left=0.0)  # training starts at 0 frames: a curve of two evaluations still reads as progress
        ax.yaxis.set_major_locator(_locator(4))
        ax.xaxis.set_major_locator(_locator(5))
    # A legend on the figure itself, so that the PNG reads on its own (the workflow shows it alone).
    handles = [Line2D([], [], color=THIS_RUN_COLOR, linewidth=1.3, marker="o" if any_markers else None, markersize=3.5,
                      label="mean over seeds" + (" (dots: evaluations)" if any_markers else "")),
               Patch(color=THIS_RUN_COLOR, alpha=0.25, label="range over seeds (min to max)")]
    if len(curves) and int(curves.groupby("game")["seed"].nunique().max()) < 2:
        handles.pop()  # one seed: no band is drawn, so the legend names none
    if any_paper_line:
        handles.append(Line2D([], [], color=PAPER_COLOR, linestyle="--", label=paper_label))
    if any_paper_note:
        handles.append(Line2D([], [], linestyle="none", label=f"{paper_label}: off this run's scale, written in the panel \u2191"))
    if random_line is not None:
        handles.append(Line2D([], [], color=RANDOM_COLOR, linestyle=":", linewidth=1.4, label=random_label))
    if any_no_episode:
        handles.append(Line2D([], [], color=NO_EPISODE_COLOR, linestyle="none", marker="x",
                              label="no episode completed (0 for the best snapshot)"))
    labels = [handle.get_label() for handle in handles]
    reference_handles, reference_labels = _reference_legend(references, drawn, short)
    fit_legend(fig, handles + reference_handles, labels=labels + reference_labels)
    return fig


# A paper score more than this many times the top of everything else in a panel would flatten this
# run's curve into the axis (a short run against the score of 200M frames): it is written at the
# top of the panel instead of setting the scale.
PAPER_SCORE_OFF_SCALE_RATIO = 3.0


def draw_paper_score(ax, score: float) -> bool:
    """The paper's final score as a dashed line (True), or, when it is far above everything else
    drawn in `ax` (PAPER_SCORE_OFF_SCALE_RATIO), as a note "paper's final: N ↑" at the top of the
    panel (False)."""
    top = float(ax.dataLim.y1)
    if top > 0 and score > PAPER_SCORE_OFF_SCALE_RATIO * top:
        ax.text(0.98, 0.97, f"paper's final: {score:,.0f} \u2191", transform=ax.transAxes, ha="right", va="top",
                fontsize=7, color=PAPER_COLOR)
        ax.set_ylim(top=top * 1.25)  # room for the note above the curve
        return False
    ax.axhline(score, color=PAPER_COLOR, linestyle="--", linewidth=1.0)
    return True


def _locator(bins: int):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=bins)


def learning_curves_figure(curves: pd.DataFrame, table: pd.DataFrame, *, reference_label: str = "paper",
                           same_protocol_reference: bool = True) -> Figure:
    """Fig. 2 (a, b) for every game: training-time evaluation score against frames, seeds as a min-max band,
    the paper's final DQN score as a dashed grey line, this run's random agent (`random_mean`) dotted, and
    behind them, over the frames this run covers, nnabla-rl's 3 seeds under the Nature paper's protocol (the
    same measurement; `same_protocol_reference`, for a run of that protocol) and, fainter and behind it,
    Dopamine's DQN curve under its own protocol."""
    return curves_figure(curves, table, "eval_score_mean", "score", paper_line="paper_dqn_mean",
                         paper_label=f"final DQN score in the {reference_label}", random_line="random_mean",
                         random_label="random agent (this run's mean score)", mark_no_episode=True,
                         references=(NNABLA, DOPAMINE) if same_protocol_reference else (DOPAMINE,))


def average_max_q_figure(curves: pd.DataFrame, table: pd.DataFrame) -> Figure:
    """Fig. 2 (c, d) for every game: average over the held-out transitions of max_a Q_target(s', a),
    against frames, seeds as a min-max band."""
    return curves_figure(curves, table, "average_max_q", "average max Q")


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
    fig = _new_figure(9.0, 8.5)
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
