"""The report's learning-curve figures (Fig. 2 style): one panel per game of a learning_curves.parquet
column against emulator frames, the seeds as a band, with the paper's score, this run's random agent
and the published reproductions' curves behind (analysis.report.reproductions). None saves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.numbers import number_text
from analysis.report import reproductions
from analysis.report.figures import (
    DOPAMINE_COLOR,
    NNABLA_COLOR,
    NO_EPISODE_COLOR,
    PAPER_COLOR,
    RANDOM_COLOR,
    THIS_RUN_COLOR,
    new_figure,
)

# A learning curve with at most this many evaluations in a run draws a dot on each.
MARKER_POINTS = 12


def _grid(n: int, max_columns: int = 7) -> tuple[Figure, list, int]:
    columns = max(1, min(max_columns, n))
    rows = max(1, math.ceil(n / columns))
    # 2.3 inch panels for a full grid; fewer games get larger panels, up to a figure about 12.5 inches wide.
    panel_inches = min(4.5, max(2.3, 12.5 / columns))
    fig = new_figure(panel_inches * columns + 0.4, panel_inches * 0.8 * rows + 0.8)
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
    drawn = Drawn({reference.label: False for reference in references}, {reference.label: {} for reference in references})
    for k, (ax, (_, row)) in enumerate(zip(axes, table.iterrows())):
        complete = row.get("status", "complete") == "complete"
        ax.set_title(row["display_name"] + ("" if complete else f" ({row['status']})"), fontsize=9,
                     color="black" if complete else "firebrick")
        ax.tick_params(labelsize=7)
        if k % columns == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        if k >= len(axes) - columns:
            ax.set_xlabel(xlabel, fontsize=8)
        game = curves["game"] == row["game"]
        draw_panel(ax, row, curves[game & curves[column].notna()], curves[game & no_episode], column=column,
                   scale=scale, paper_line=paper_line, random_line=random_line, references=references, drawn=drawn)
    # A legend on the figure itself, so that the PNG reads on its own (the workflow shows it alone).
    handles = legend_handles(drawn, one_seed=bool(len(curves)) and int(curves.groupby("game")["seed"].nunique().max()) < 2,
                             paper_label=paper_label, random_label=random_label if random_line is not None else None)
    labels = [handle.get_label() for handle in handles]
    reference_handles, reference_labels = _reference_legend(references, drawn.references, drawn.short)
    fit_legend(fig, handles + reference_handles, labels=labels + reference_labels)
    return fig


@dataclass
class Drawn:
    """What the panels of a curves figure drew, for its legend."""

    references: dict[str, bool]  # reference label -> drawn in some panel
    short: dict[str, dict[str, float]]  # reference label -> {display name -> frames covered} under its first point
    no_episode: bool = False
    markers: bool = False
    paper_line: bool = False
    paper_note: bool = False


def draw_panel(ax, row: pd.Series, game_curves: pd.DataFrame, game_no_episode: pd.DataFrame, *, column: str,
               scale: float, paper_line: str | None, random_line: str | None, references: Sequence[ReferenceCurve],
               drawn: Drawn) -> None:
    """One game's panel: its evaluations without an episode, the reproductions behind, this run's band and mean,
    the random agent and the paper's score; what it drew is noted in `drawn`."""
    if not game_no_episode.empty:
        drawn.no_episode = True
        ax.plot(game_no_episode["frames"] / scale, np.zeros(len(game_no_episode)), linestyle="none", marker="x",
                color=NO_EPISODE_COLOR, markersize=5)
    if game_curves.empty and game_no_episode.empty:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="dimgray")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if game_curves.empty:
        return
    band = seed_band(game_curves, column)
    x = band["frames"] / scale
    few = int(game_curves.groupby("seed").size().max()) <= MARKER_POINTS
    drawn.markers |= few
    covered_frames = float(max(game_curves["frames"].max(), game_no_episode["frames"].max()
                               if not game_no_episode.empty else 0))
    for reference in (r for r in references if row["game"] in r.games()):
        if draw_reference(ax, reference, row["game"], covered_frames, scale):
            drawn.references[reference.label] = True
        else:
            drawn.short[reference.label][str(row["display_name"])] = covered_frames
    # This run in front of any reference curve.
    ax.fill_between(x, band["low"], band["high"], color=THIS_RUN_COLOR, alpha=0.25, linewidth=0, zorder=2)
    ax.plot(x, band["mean"], color=THIS_RUN_COLOR, linewidth=1.3, marker="o" if few else None, markersize=3.5,
            zorder=3)
    if random_line is not None and np.isfinite(row[random_line]):
        ax.axhline(row[random_line], color=RANDOM_COLOR, linestyle=":", linewidth=1.4)
    if paper_line is not None and np.isfinite(row[paper_line]):
        if draw_paper_score(ax, float(row[paper_line])):
            drawn.paper_line = True
        else:
            drawn.paper_note = True
    ax.set_xlim(left=0.0)  # training starts at 0 frames: a curve of two evaluations still reads as progress
    ax.yaxis.set_major_locator(_locator(4))
    ax.xaxis.set_major_locator(_locator(5))


def legend_handles(drawn: Drawn, *, one_seed: bool, paper_label: str, random_label: str | None) -> list:
    """The legend's entries of this run, the paper's score, the random agent and evaluations without an episode."""
    handles = [Line2D([], [], color=THIS_RUN_COLOR, linewidth=1.3, marker="o" if drawn.markers else None,
                      markersize=3.5, label="mean over seeds" + (" (dots: evaluations)" if drawn.markers else ""))]
    if not one_seed:  # one seed: no band is drawn, so the legend names none
        handles.append(Patch(color=THIS_RUN_COLOR, alpha=0.25, label="range over seeds (min to max)"))
    if drawn.paper_line:
        handles.append(Line2D([], [], color=PAPER_COLOR, linestyle="--", label=paper_label))
    if drawn.paper_note:
        handles.append(Line2D([], [], linestyle="none", label=f"{paper_label}: off this run's scale, written in the panel \u2191"))
    if random_label is not None:
        handles.append(Line2D([], [], color=RANDOM_COLOR, linestyle=":", linewidth=1.4, label=random_label))
    if drawn.no_episode:
        handles.append(Line2D([], [], color=NO_EPISODE_COLOR, linestyle="none", marker="x",
                              label="no episode completed (0 for the best snapshot)"))
    return handles


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
        ax.text(0.98, 0.97, f"paper's final: {number_text(score)} \u2191", transform=ax.transAxes, ha="right", va="top",
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
