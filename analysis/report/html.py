"""The self-contained HTML report: tables as HTML, figures as base64 PNG, CSS and JS inline.

Every numeric cell carries its full-precision value in `data-value` (what the sort uses and what
the tests compare with the Parquet inputs); the text shows it rounded. Empty `data-value` means
the value is missing.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from string import Template
from typing import Any, Callable, Sequence

import pandas as pd

from analysis.report.comparability import Comparability
from analysis.report.tables import NO_INTERVAL_ONE_SEED

MISSING = "\u2014"  # em dash
# The pixels per inch at which a figure is laid out on the page (a browser's CSS inch is 96 px; 100
# keeps figure sizes round): a PNG drawn at a higher dpi is shown at this size, and so stays sharp.
PAGE_DPI = 100


@dataclass(frozen=True)
class FigureItem:
    name: str  # file name, e.g. normalized_scores.png
    png: bytes
    title: str
    caption: str
    dpi: int = PAGE_DPI  # the dpi the PNG was drawn at


@dataclass(frozen=True)
class ReportContent:
    """Everything the page shows, computed beforehand (no computation happens while rendering)."""

    experiment: str
    preset: str
    reference_label: str  # e.g. "Nature 2015 paper (Extended Data Table 2)"
    citation: str
    normalization: str
    runs_complete: int
    runs_total: int
    game_table: pd.DataFrame
    aggregates: pd.DataFrame
    missing_runs: pd.DataFrame
    runs: pd.DataFrame
    hours: pd.DataFrame
    deviations: pd.DataFrame
    protocol_notes: list[dict[str, Any]]
    provenance: dict[str, Any]
    figures: list[FigureItem]
    bootstrap_reps: int
    bootstrap_seed: int
    results_path: str
    warnings: list[str] = field(default_factory=list)
    best_episodes: pd.DataFrame | None = None  # tables.best_episode_table; None: the paper reports none
    best_episodes_where: str = ""  # where the paper prints them, e.g. "Table 1, lower part"
    comparability: Comparability | None = None  # tables.comparability; None: not checked, no banner
    on_track_headline: str = ""  # tables.on_track_headline; empty: the reference has no same-protocol curves


# ---------------------------------------------------------------- number formats


def _finite(value: Any) -> bool:
    try:
        return value is not None and not pd.isna(value) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def data_value(value: Any) -> str:
    """The full-precision value for data-value (repr round-trips a float exactly); "" when missing."""
    if not _finite(value):
        return ""
    number = float(value)
    return repr(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _unsigned_zero(text: str) -> str:
    # A value that rounds to zero is shown as 0, not -0.0.
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0.0 else text


def format_score(value: Any) -> str:
    """A raw game score: thousands separated and whole from 1,000 up, one decimal below."""
    if not _finite(value):
        return MISSING
    number = float(value)
    return _unsigned_zero(f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.1f}")


def format_percent(value: Any) -> str:
    if not _finite(value):
        return MISSING
    return _unsigned_zero(f"{float(value):,.1f}")


def format_int(value: Any) -> str:
    if not _finite(value):
        return MISSING
    return f"{int(value):,}"


def format_hours(value: Any) -> str:
    if not _finite(value):
        return MISSING
    return f"{float(value):,.2f}"


# ---------------------------------------------------------------- HTML pieces


def num_cell(value: Any, formatter: Callable[[Any], str], css: str = "num") -> str:
    return f'<td class="{css}" data-value="{data_value(value)}">{escape(formatter(value))}</td>'


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def text_cell(text: Any, css: str = "text", sort_value: str | None = None) -> str:
    text = "" if _is_missing(text) else str(text)
    sort_attr = f' data-value="{escape(sort_value)}"' if sort_value is not None else ""
    return f'<td class="{css}"{sort_attr}>{escape(text)}</td>'


def header_cell(label: str, *, numeric: bool, title: str = "", css: str = "") -> str:
    title_attr = f' title="{escape(title)}"' if title else ""
    # Only the game column's class goes on its header (it stays in view when the table scrolls).
    class_attr = ' class="game"' if css == "game" else ""
    kind = "number" if numeric else "text"
    return f'<th data-type="{kind}" scope="col"{class_attr}{title_attr}>{escape(label)}</th>'


def simple_table(frame: pd.DataFrame, columns: Sequence[tuple[str, str, Callable[[Any], str] | None]], *,
                 css: str = "", table_id: str = "") -> str:
    """A table of `frame` with (column, header, formatter) columns; formatter None means text."""
    head = "".join(header_cell(header, numeric=fmt is not None) for _, header, fmt in columns)
    body = []
    for _, row in frame.iterrows():
        cells = "".join(num_cell(row[c], fmt) if fmt is not None else text_cell(row[c]) for c, _, fmt in columns)
        body.append(f"<tr>{cells}</tr>")
    id_attr = f' id="{table_id}"' if table_id else ""
    class_attr = f' class="{css}"' if css else ""
    return f"<table{id_attr}{class_attr}><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"


# The per-game table: (column of game_table, header, formatter or None for text, tooltip, extra css).
EPISODE_SD = "\u00b1 s.d. episodes"
SEED_SD = "\u00b1 s.d. seeds"
_OUR_EPISODE_SD_TIP = (
    "s.d. over single evaluation episodes, the paper's kind of s.d.: each seed's s.d. over its episodes "
    "(scores.parquet std), pooled over seeds as their root mean square"
)
_SEED_SD_TIP = (
    "s.d. across seeds of the seed means (ddof 1): how far a mean moves from one seed to another, not the "
    "spread of single episodes; n/a with one seed"
)
GAME_COLUMNS: list[tuple[str, str, Callable[[Any], str] | None, str, str]] = [
    ("display_name", "Game", None, "game as printed in the paper", "game"),
    ("status", "Status", None, "complete: every planned seed trained and scored; partial; missing: no DQN score", "status"),
    ("random_score", "Random", format_score, "the paper's random agent", ""),
    ("human_score", "Human", format_score, "the paper's professional human tester", ""),
    ("paper_dqn_mean", "DQN", format_score, "the paper's DQN: mean over 30 episodes", ""),
    ("paper_dqn_std", EPISODE_SD, format_score,
     "the paper's s.d. over its 30 evaluation episodes (one trained agent): the spread of single episodes", "sd"),
    ("random_mean", "Random", format_score, "this run's random agent: mean of seed means", ""),
    ("best_mean", "DQN best", format_score, "best-intermediate weights: mean of seed means (each over 30 episodes)", ""),
    ("best_episode_std", EPISODE_SD, format_score, f"best-intermediate weights: {_OUR_EPISODE_SD_TIP}", "sd"),
    ("best_std", SEED_SD, format_score, f"best-intermediate weights: {_SEED_SD_TIP}", "sd"),
    ("final_mean", "DQN final", format_score, "final weights: mean of seed means (each over 30 episodes)", ""),
    ("final_episode_std", EPISODE_SD, format_score, f"final weights: {_OUR_EPISODE_SD_TIP}", "sd"),
    ("final_std", SEED_SD, format_score, f"final weights: {_SEED_SD_TIP}", "sd"),
    ("paper_normalized", "Paper", format_percent, "the paper's DQN, human-normalized (%)", ""),
    ("best_normalized", "Best", format_percent, "this run, best-intermediate weights, human-normalized (%)", ""),
    ("final_normalized", "Final", format_percent, "this run, final weights, human-normalized (%)", ""),
    ("higher", "Higher", None, "whose DQN score is higher: this run (best-intermediate) or the paper", ""),
]
# Group headers over GAME_COLUMNS: (label, number of columns, css).
# The game's own cell stands alone, so that it can stay in view while the table scrolls sideways.
GAME_GROUPS = [("", 1, "game"), ("", 1, ""), ("Paper", 4, "group-paper"), ("This run", 7, "group-ours"),
               ("Human-normalized (%)", 3, ""), ("", 1, "")]
# The columns PFRL's reproduction adds where the reference shows it (tables.game_table has pfrl_dqn_mean):
# (the GAME_COLUMNS column it follows, its own column).
_PFRL_TIP = (
    "PFRL's reproduction of the Nature DQN: its best intermediate agent re-evaluated for 30 episodes of at most "
    "5 minutes at \u03b5 0.05, mean over its seeds (200M frames, no sticky actions)"
)
STANDS_HEADER = "Vs. paper & PFRL"
PFRL_COLUMNS = [
    ("paper_dqn_std", ("pfrl_dqn_mean", "DQN", format_score, _PFRL_TIP, "")),
    ("paper_normalized", ("pfrl_normalized", "PFRL", format_percent, f"{_PFRL_TIP}, human-normalized (%)", "")),
    ("higher", ("stands", STANDS_HEADER, None,
                "where this run's best-intermediate score stands against the paper's DQN and PFRL's reproduction: "
                "below both, between (a tie counts as between) or above both", "")),
]
PFRL_GROUPS = [("", 1, "game"), ("", 1, ""), ("Paper", 4, "group-paper"), ("PFRL", 1, "group-paper"),
               ("This run", 7, "group-ours"), ("Human-normalized (%)", 4, ""), ("", 2, "")]


ON_TRACK_COLUMN = ("on_track", "On track", None,
                   "the game's training-time evaluations (mean over seeds, at the frames every seed reached) against "
                   "nnabla-rl's 3 seeds under the paper's protocol at the same frames: their mean so far below, within "
                   "or above the range of the seeds' means; hover a cell for the numbers", "")


def game_columns(table: pd.DataFrame) -> tuple[list, list]:
    """(columns, groups) of the per-game table: GAME_COLUMNS and GAME_GROUPS, with PFRL's and the
    on-track column where `table` has them."""
    columns, groups = list(GAME_COLUMNS), list(GAME_GROUPS)
    if "pfrl_dqn_mean" in table.columns:
        after = dict(PFRL_COLUMNS)
        columns = []
        for column in GAME_COLUMNS:
            columns.append(column)
            if column[0] in after:
                columns.append(after[column[0]])
        groups = list(PFRL_GROUPS)
    if "on_track" in table.columns:
        columns.append(ON_TRACK_COLUMN)
        groups.append(("Same protocol", 1, ""))
    return columns, groups


def status_text(row: pd.Series) -> str:
    if row["status"] == "complete":
        return "complete"
    scored = int(min(row["best_seeds"], row["final_seeds"]))
    return f"{row['status']} ({scored} of {int(row['seeds_planned'])} seeds scored)"


def _class(css: str) -> str:
    return f' class="{css}"' if css else ""


def _group_row(groups: Sequence[tuple[str, int, str]], reference_label: str) -> str:
    return "".join(
        f'<th colspan="{span}"{_class(css)}>{escape(reference_label if label == "Paper" else label)}</th>'
        for label, span, css in groups
    )


def _game_cell(row: pd.Series, column: str) -> str | None:
    """The game and status cells every per-game table shares; None for any other column."""
    if column == "display_name":
        return text_cell(row["display_name"], css="text game", sort_value=str(row["display_name"]))
    if column == "status":
        return text_cell(status_text(row), css="text status", sort_value=str(row["status"]))
    return None


def _game_row(row: pd.Series, cells: Sequence[str]) -> str:
    # The status class colours a partial or missing game the same in every per-game table.
    return f'<tr class="status-{escape(str(row["status"]))}" data-game="{escape(str(row["game"]))}">{"".join(cells)}</tr>'


def seed_sd_cell(row: pd.Series, weights: str) -> str:
    """The s.d. across seeds: "n/a (1 seed)" where one seed is scored (there is no spread to measure)."""
    if int(row[f"{weights}_seeds"]) == 1:
        return f'<td class="num sd na" data-value="">{escape(NO_INTERVAL_ONE_SEED)}</td>'
    return num_cell(row[f"{weights}_std"], format_score, css="num sd")


def stands_cell(stands: str) -> str:
    """Where this run stands, sorted by its order (below both, between, above both) rather than alphabetically."""
    from analysis.report.reproductions import STANDINGS

    if stands not in STANDINGS:
        return '<td class="text" data-value=""></td>'
    css = f"text stands-{stands.replace(' ', '-')}"
    return f'<td class="{css}" data-value="{STANDINGS.index(stands)}">{escape(stands)}</td>'


def on_track_cell(row: pd.Series) -> str:
    """The game's standing, sorted below < within < above, its numbers in the tooltip."""
    from baselines.on_track import NOT_COMPARABLE, STANDINGS

    standing = str(row["on_track"])
    if standing not in STANDINGS:
        # Short in the cell, so that the column stays narrow; the reason in the tooltip.
        short = "n/a" if str(row["on_track_text"]).startswith(NOT_COMPARABLE) else "not yet"
        return f'<td class="text on-track-none" data-value="" title="{escape(str(row["on_track_text"]))}">{short}</td>'
    return (f'<td class="text on-track-{standing}" data-value="{STANDINGS.index(standing)}" '
            f'title="{escape(str(row["on_track_text"]))}">{escape(standing)}</td>')


def game_table_html(table: pd.DataFrame, reference_label: str) -> str:
    columns, groups = game_columns(table)
    groups = _group_row(groups, reference_label)
    head = "".join(header_cell(h, numeric=fmt is not None or column in ("stands", "on_track"), title=tip, css=css)
                   for column, h, fmt, tip, css in columns)
    body = []
    for _, row in table.iterrows():
        cells = []
        for column, _, fmt, _, css in columns:
            shared = _game_cell(row, column)
            if shared is not None:
                cells.append(shared)
            elif column in ("best_std", "final_std"):
                cells.append(seed_sd_cell(row, column.removesuffix("_std")))
            elif column == "higher":
                higher = str(row["higher"])
                cells.append(text_cell(higher, css=f"text higher-{higher.replace(' ', '-')}" if higher else "text"))
            elif column == "stands":
                cells.append(stands_cell(str(row["stands"])))
            elif column == "on_track":
                cells.append(on_track_cell(row))
            else:
                cells.append(num_cell(row[column], fmt, css=f"num {css}".strip()))
        body.append(_game_row(row, cells))
    return (
        '<table id="game-table" class="sortable">'
        f'<thead><tr class="group">{groups}</tr><tr>{head}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table>"
    )


# The best-episode table: (column of tables.best_episode_table, header, formatter or None for text, tooltip).
BEST_EPISODE_COLUMNS: list[tuple[str, str, Callable[[Any], str] | None, str]] = [
    ("display_name", "Game", None, "game as printed in the paper"),
    ("status", "Status", None, GAME_COLUMNS[1][3]),
    ("paper_dqn_best", "DQN Best", format_score, "the paper's DQN: score of its single best episode"),
    ("paper_hneat_best", "HNeat Best", format_score, "the paper's HyperNEAT (HNeat Best row): score of its single best episode"),
    # Not "DQN best": beside the paper's "DQN Best" that would read as the same quantity.
    ("best_max_score", "Best-intermediate weights", format_score, "highest score of any evaluation episode, over every seed"),
    ("final_max_score", "Final weights", format_score, "highest score of any evaluation episode, over every seed"),
]
BEST_EPISODE_GROUPS = [("", 1, "game"), ("", 1, ""), ("Paper", 2, "group-paper"), ("This run, best single episode", 2, "group-ours")]


def _episode_counts_text(table: pd.DataFrame) -> str:
    """How many episodes each game's maximum is over, e.g. "60 episodes per game and weights, except 30 for Pong"."""
    games_by_count: dict[str, list[str]] = {}
    for _, row in table.iterrows():
        best, final = int(row["best_episodes"]), int(row["final_episodes"])
        if best == final == 0:
            continue
        count = f"{best:,}" if best == final else f"{best:,} (best-intermediate) and {final:,} (final)"
        games_by_count.setdefault(count, []).append(str(row["display_name"]))
    if not games_by_count:
        return "no DQN episode has been evaluated yet"
    # The most common count first; the others name their games.
    (common, _), *others = sorted(games_by_count.items(), key=lambda item: -len(item[1]))
    text = f"{common} episodes per game and weights"
    if others:
        text += ", except " + "; ".join(f"{count} for {', '.join(games)}" for count, games in others)
    return text


def best_episode_note(table: pd.DataFrame, paper_label: str) -> str:
    return (
        f"The {paper_label} reports the score of the single best episode; this run's columns are the maximum over "
        f"all its evaluation episodes of a game and weights, over every seed ({_episode_counts_text(table)}), so "
        "unlike a mean they grow with the number of episodes and seeds evaluated."
    )


def best_episodes_html(content: ReportContent) -> str:
    """The single-best-episode comparison, or "" when the reference paper reports none."""
    table = content.best_episodes
    if table is None:
        return ""
    paper_label = content.reference_label.split(" (")[0]
    groups = _group_row(BEST_EPISODE_GROUPS, paper_label)
    head = "".join(header_cell(h, numeric=fmt is not None, title=tip, css="game" if column == "display_name" else "")
                   for column, h, fmt, tip in BEST_EPISODE_COLUMNS)
    body = []
    for _, row in table.iterrows():
        cells = [_game_cell(row, column) or num_cell(row[column], fmt) for column, _, fmt, _ in BEST_EPISODE_COLUMNS]
        body.append(_game_row(row, cells))
    return (
        f"<h3>Single best episode ({escape(content.best_episodes_where)})</h3>\n"
        '<div class="table-wrap"><table id="best-episodes" class="sortable">'
        f'<thead><tr class="group">{groups}</tr><tr>{head}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table></div>\n"
        f"<p>{escape(best_episode_note(table, paper_label))}</p>"
    )


def _with_ci(row: pd.Series, name: str) -> str:
    point = format_percent(row[name])
    if row.get("ci_note"):
        return f"{point} [{row['ci_note']}]"
    if _finite(row.get(f"{name}_low")):
        return f"{point} [{format_percent(row[f'{name}_low'])}, {format_percent(row[f'{name}_high'])}]"
    return point


def _title(tip: str) -> str:
    return f' title="{escape(tip)}"' if tip else ""


def aggregates_html(aggregates: pd.DataFrame) -> str:
    head = ["", "games", "runs", "median (%)", "mean (%)", "IQM (%)", "games \u2265 100 %", "games \u2265 75 %"]
    ci = "with its 95 % confidence interval in brackets (stratified bootstrap over seeds; n/a with one seed per game)"
    tips = ["", "games with a score", "run x game scores", f"median over games {ci}", f"mean over games {ci}",
            f"interquartile mean of all run x game scores {ci}", "", ""]
    body = []
    for _, row in aggregates.iterrows():
        cells = [
            f'<th scope="row" class="text">{escape(str(row["label"]))}</th>',
            num_cell(row["games"], format_int),
            num_cell(row["runs"], format_int),
        ]
        for name in ("median", "mean", "iqm"):
            cells.append(f'<td class="num" data-value="{data_value(row[name])}" data-low="{data_value(row[f"{name}_low"])}" '
                         f'data-high="{data_value(row[f"{name}_high"])}">{escape(_with_ci(row, name))}</td>')
        cells.append(num_cell(row["at_or_above_100"], format_int))
        cells.append(num_cell(row["at_or_above_75"], format_int))
        body.append(f'<tr class="kind-{escape(str(row["kind"]).replace(" ", "-"))}">{"".join(cells)}</tr>')
    header = "".join(f'<th scope="col"{_title(tip)}>{escape(h)}</th>' for h, tip in zip(head, tips))
    return f'<table id="aggregates"><thead><tr>{header}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table>"


def percent_of(fraction: float) -> str:
    """A share in percent with two significant digits below 10 % (0.032 %), whole numbers above."""
    percent = 100.0 * fraction
    if percent >= 10.0 or percent == 0.0:
        return f"{percent:,.0f} %"
    decimals = max(0, 1 - math.floor(math.log10(percent)))
    return f"{percent:.{decimals}f} %"


def _length_text(length) -> str:
    steps = f" ({length.steps:,} agent steps)" if length.steps is not None else ""
    return (f"{length.frames:,} emulator frames{steps}, {percent_of(length.fraction)} of the paper's "
            f"{length.paper_frames:,} frames ({length.paper_steps:,} agent steps)")


def training_length_text(comparability: Comparability) -> str:
    """The training length per run beside the paper's, e.g. "Each run trained 400,000 emulator frames (100,000 agent
    steps), 0.20 % of the paper's 200,000,000 frames (50,000,000 agent steps) per run."
    """
    lengths = comparability.lengths
    if not lengths:
        return "No run is planned yet, so the frames per run are unknown."
    text = f"Each run trained {_length_text(lengths[0])} per run"
    if len(lengths) > 1:
        text += "; " + "; ".join(f"{', '.join(length.games)}: {_length_text(length)}" for length in lengths[1:])
    return text + "."


def banner_html(content: ReportContent, element_id: str, *, full: bool) -> str:
    """The note that this is not the paper's experiment, or "" when it is (or was not checked).

    `full` adds why (preset, deviating fields); the short one heads the page, the full one the summary.
    """
    comparability = content.comparability
    if comparability is None or comparability.comparable:
        return ""
    paper = content.reference_label.split(" (")[0]
    parts = [f"<strong>Not the paper's experiment: the scores are not comparable to the {escape(paper)}'s.</strong>",
             escape(training_length_text(comparability))]
    if full:
        why = []
        if comparability.preset != comparability.paper_preset:
            why.append(f"preset <code>{escape(comparability.preset)}</code>, not the paper's "
                       f"<code>{escape(comparability.paper_preset)}</code>")
        if comparability.deviations:
            fields = comparability.deviations
            shown = ", ".join(f"<code>{escape(f)}</code>" for f in fields[:6]) + (f" and {len(fields) - 6} more" if len(fields) > 6 else "")
            why.append(f"{len(fields)} hyperparameter{'s' if len(fields) > 1 else ''} differ{'' if len(fields) > 1 else 's'} "
                       f"from the paper's (<a href=\"#deviations-heading\">deviations</a>: {shown})")
        parts.append("Why: " + "; ".join(why) + ".")
    else:
        parts.append('<a href="#summary">Details in the summary.</a>')
    return f'<div class="banner" id="{escape(element_id)}" role="note">' + " ".join(parts) + "</div>"


def headline_html(content: ReportContent) -> str:
    ours = content.aggregates[content.aggregates["kind"] == "this run"]
    papers = content.aggregates[content.aggregates["kind"] == "paper"]
    # Where the learning curves stand needs no final evaluation: it shows while the runs are partial.
    on_track = f'<p class="headline" id="on-track">{escape(content.on_track_headline)}</p>' if content.on_track_headline else ""
    if ours.empty:
        return ('<p class="headline">No DQN run has been scored yet, so there is nothing to compare with the paper.</p>'
                + on_track)
    row = ours.iloc[0]
    paper = papers.iloc[0]
    table = content.game_table
    compared = table[table["higher"].isin(["this run", "paper", "tie"])]
    wins = int((compared["higher"] == "this run").sum())
    if row.get("ci_note"):
        interval = f"95 % CI {escape(str(row['ci_note']))}"
    else:
        interval = f"95 % CI {format_percent(row['median_low'])} to {format_percent(row['median_high'])} %"
    reproduction = content.aggregates[content.aggregates["kind"] == "reproduction"]
    pfrl = ""
    if not reproduction.empty:
        pfrl = f" and <strong>{format_percent(reproduction.iloc[0]['median'])} %</strong> for PFRL's reproduction"
    caveat = ""
    if content.comparability is not None and not content.comparability.comparable:
        caveat = " These numbers are not comparable with the paper's: see the note above."
    return (
        '<p class="headline">'
        f"Median human-normalized score of this run: <strong>{format_percent(row['median'])} %</strong> "
        f"({escape(str(row['label']).split(', ', 1)[1])}; {interval}) "
        f"against <strong>{format_percent(paper['median'])} %</strong> for DQN in the paper{pfrl} "
        f"on the same {int(paper['games'])} games. This run scores higher than the paper on "
        f"<strong>{wins} of {len(compared)}</strong> games (best-intermediate weights).{caveat}"
        f"{random_agent_text(table)}</p>{on_track}"
    )


# Up to this many games, the headline lists each game's score against its random agent's.
HEADLINE_GAMES_LISTED = 6


def random_agent_text(table: pd.DataFrame) -> str:
    """Whether this run learned at all, whatever its length: its best-intermediate weights against
    the random agent it played beside them (" Against this run's random agent: Kangaroo 406.7 vs 60.0; ...")."""
    both = table[table["best_mean"].notna() & table["random_mean"].notna()]
    if both.empty:
        return ""
    higher = int((both["best_mean"] > both["random_mean"]).sum())
    text = (f" Against this run's random agent, the best-intermediate weights score higher on "
            f"<strong>{higher} of {len(both)}</strong> games")
    if len(both) <= HEADLINE_GAMES_LISTED:
        text += ": " + "; ".join(f"{escape(str(r['display_name']))} {r['best_mean']:,.1f} vs {r['random_mean']:,.1f}"
                                 for _, r in both.iterrows())
    return text + "."


def missing_html(missing: pd.DataFrame, table: pd.DataFrame) -> str:
    games = table[table["status"] != "complete"]
    if missing.empty and games.empty:
        return "<p>None: every planned run trained to the end and was scored with both weights.</p>"
    listed = ", ".join(f"{escape(str(r['display_name']))} ({escape(status_text(r))})" for _, r in games.iterrows())
    intro = f"<p>Games not complete: {listed}. They stay in the per-game table; aggregates use the scored seeds only.</p>"
    columns = [
        ("display_name", "game", None), ("seed", "seed", format_int), ("status", "status", None),
        ("frames_done", "frames done", format_int), ("frames_planned", "frames planned", format_int),
        ("reason", "reason", None),
    ]  # fmt: skip
    return intro + simple_table(missing, columns, table_id="missing-runs")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, read from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def figures_html(figures: Sequence[FigureItem]) -> str:
    parts = []
    for item in figures:
        encoded = base64.b64encode(item.png).decode("ascii")
        # Laid out at PAGE_DPI (the CSS caps the width at the page's): a PNG drawn at a higher dpi is sharp.
        width, height = (round(n * PAGE_DPI / item.dpi) for n in png_size(item.png))
        parts.append(
            f'<figure id="figure-{escape(item.name.removesuffix(".png"))}">'
            f"<h3>{escape(item.title)}</h3>"
            f'<img src="data:image/png;base64,{encoded}" width="{width}" height="{height}" alt="{escape(item.title)}">'
            f"<figcaption>{escape(item.caption)} (file <code>{escape(item.name)}</code>)</figcaption></figure>"
        )
    return "\n".join(parts)


def _kv(items: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(_plain(v))}</dd>" for k, v in items)
    return f'<dl class="kv">{rows}</dl>'


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return MISSING if value is None or value == "" else str(value)


def setting_text(value: Any) -> str:
    """A config value as read in a table: whole numbers with thousands separators (200,000,000)."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and abs(number) >= 1000 and "e" not in text.lower():
        return f"{int(number):,}"
    return text


def provenance_html(content: ReportContent) -> str:
    prov = dict(content.provenance)
    parts = ['<h3 id="deviations-heading">Deviations of the resolved config from the paper</h3>']
    if content.deviations.empty:
        parts.append("<p>None: every hyperparameter equals the paper's (deviations.parquet has no rows).</p>")
    else:
        parts.append("<p>Generated from the config that ran (<code>deviations.parquet</code>), one row per field that differs.</p>")
        readable = content.deviations.assign(
            paper_value=content.deviations["paper_value"].map(setting_text),
            this_value=content.deviations["this_value"].map(setting_text),
        )
        columns = [("field", "field", None), ("paper_value", "paper", None), ("this_value", "this run", None),
                   ("unit", "unit", None), ("note", "note", None)]
        parts.append(simple_table(readable, columns, table_id="deviations"))

    parts.append("<h3>Protocol notes</h3>")
    if content.protocol_notes:
        parts.append("<p>Where the paper's text, its code or its silence leave a choice, the reading the preset follows "
                     "(from <code>dqn.config.protocol_notes</code>).</p>")
        notes = pd.DataFrame(content.protocol_notes)
        notes["value"] = notes["value"].map(setting_text)
        parts.append(simple_table(notes, [("field", "field", None), ("value", "value", None), ("unit", "unit", None),
                                          ("note", "note", None)], table_id="protocol-notes"))
    else:
        parts.append("<p>No protocol notes are registered for this reference.</p>")

    parts.append("<h3>Software and hardware</h3>")
    parts.append("<p>From <code>provenance.json</code>, written when the results tables were built.</p>")
    versions = prov.pop("versions", {}) or {}
    known = ["torch", "ale-py", "gymnasium", "snakemake", "python"]
    items = [(f"{name} version", versions.get(name)) for name in known]
    items += [(f"{name} version", value) for name, value in versions.items() if name not in known]
    commit, dirty = prov.pop("git_commit", None), prov.pop("git_dirty", None)
    if commit and dirty:
        commit = f"{commit} (with uncommitted changes to tracked files)"
    items += [("git commit", commit), ("hardware", prov.pop("hardware", None))]
    for key in ("experiment", "preset", "reference"):
        items.append((key, prov.pop(key, None)))
    overrides = prov.pop("overrides", None)
    if overrides is not None:
        items.append(("overrides (--set)", overrides or "none"))
    for key in ("games", "seeds"):
        if isinstance(prov.get(key), list):
            items.append((f"planned {key}", ", ".join(map(str, prov.pop(key)))))
    prov.pop("runs", None)  # each run's device, host and versions are in the runs table below
    items += [(key, prov[key]) for key in sorted(prov)]
    items.append(("results folder", content.results_path))
    parts.append(_kv(items))

    parts.append("<h3>Compute: frames and hours per game</h3>")
    totals = content.hours[["gpu_hours", "cpu_hours"]].sum()
    parts.append(f"<p>Total: {format_hours(totals['gpu_hours'])} GPU hours and {format_hours(totals['cpu_hours'])} CPU hours "
                 f"of training wall time (runs.parquet <code>wall_hours</code>, by <code>device</code>).</p>")
    parts.append("<details><summary>Frames and hours of every game</summary>")
    parts.append(simple_table(content.hours, [
        ("display_name", "game", None), ("frames_done", "frames done (all seeds)", format_int),
        ("frames_planned", "frames planned (all seeds)", format_int), ("gpu_hours", "GPU hours", format_hours),
        ("cpu_hours", "CPU hours", format_hours),
    ], css="sortable", table_id="hours"))  # fmt: skip
    parts.append("</details>")
    parts.append("<details><summary>Every run</summary>")
    parts.append(simple_table(content.runs, [
        ("display_name", "game", None), ("seed", "seed", format_int), ("status", "status", None),
        ("frames_done", "frames done", format_int), ("frames_planned", "frames planned", format_int),
        ("frames_percent", "% of plan", format_percent), ("wall_hours", "wall hours", format_hours),
        ("device", "device", None), ("hostname", "host", None), ("run_versions", "versions", None),
        ("scored_weights", "scored weights", None),
    ], css="sortable", table_id="runs"))  # fmt: skip
    parts.append("</details>")
    return "\n".join(parts)


def method_html(content: ReportContent) -> str:
    items = [
        f"Reference: {content.citation}. {content.normalization[0].upper() + content.normalization[1:]}.",
        "This run's score of a game is the <em>mean of the seed means</em>: each seed's mean over its evaluation "
        "episodes (<code>scores.parquet</code> <code>mean</code>; 30 episodes of at most 5 minutes at \u03b5 = 0.05 by the "
        "protocol) averaged over the seeds. Its \u00b1 is the <em>standard deviation across seeds</em> of those seed "
        "means (sample s.d., ddof 1; n/a with one seed). The paper's \u00b1 is the s.d. over the 30 episodes of its "
        "single agent, a different quantity; this run's counterpart is the \u201c\u00b1 s.d. episodes\u201d column: "
        "each seed's s.d. over its episodes (<code>scores.parquet</code> <code>std</code>) pooled over seeds as the "
        "root mean square.",
        "Human-normalized scores are computed per seed from that seed's mean, then averaged over seeds.",
        "\u201cHigher\u201d compares this run's best-intermediate mean with the paper's DQN mean.",
        "Aggregates follow rliable (Agarwal et al., 2021): median and mean over games of the per-game scores; "
        "the IQM is the mean of the middle 50 % of all run \u00d7 game scores (int(0.25 n) cut from each end). "
        f"95 % confidence intervals are percentile intervals of a stratified bootstrap over seeds "
        f"(seeds resampled with replacement within each game; {content.bootstrap_reps:,} resamples, seed "
        f"{content.bootstrap_seed}); with one seed per game there is nothing to resample and the interval reads "
        f"\u201c{NO_INTERVAL_ONE_SEED}\u201d. The paper's aggregates use its one published score per game.",
        "Games \u2265 100 % and \u2265 75 % count games whose mean of seed scores reaches that human-normalized level.",
        "The note that heads the page when the experiment is not the paper's is generated from "
        "<code>provenance.json</code> (<code>preset</code>), <code>deviations.parquet</code> and <code>runs.parquet</code> "
        "(<code>frames_planned</code>), against the paper's preset in <code>dqn.config</code>; the 2013 preset's "
        "readings of values the paper leaves unstated are the paper's experiment, not a deviation from it.",
        "Games without a DQN score are listed as missing and left out of this run's aggregates; the "
        "\u201cPaper, the same games\u201d row then compares like with like.",
        f"Every number comes from the files in <code>{escape(content.results_path)}</code> and the reference CSVs "
        "in <code>baselines/data/</code> (their sources, licences and checks: <code>baselines/data/CITATION.md</code>).",
    ]
    items += reproduction_items(content)
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def reproduction_items(content: ReportContent) -> list[str]:
    """What the method section says of the published reproductions the report shows, and why their numbers differ."""
    from analysis.report import reproductions

    items = []
    if "pfrl_dqn_mean" in content.game_table.columns:
        items.append(
            "<strong>PFRL reproduction</strong> (pfnet/pfrl, MIT licence; Fujita et al., JMLR 22(77), 2021): PFRL re-ran "
            "the paper's protocol on the 49 games, the closest public re-run of it: 50M agent steps (200M frames) "
            "without sticky actions, then its best intermediate agent re-evaluated for 30 episodes of at most 5 minutes "
            "at \u03b5 = 0.05; each score is the mean over its seeds (5 or 6: its README says both). Its column and its "
            "human-normalized score (with the same random and human scores) stand beside the paper's; its aggregate "
            "row is over the same games as this run's, one number per game, so without an interval. It scores higher "
            "than the paper on 28 of the 49 games: the paper's numbers come from one run per game, PFRL's are means "
            "over seeds, and the best intermediate agent is picked on a noisy training-time evaluation, so two careful "
            "runs of one protocol differ by this much. "
            f"\u201c{escape(STANDS_HEADER)}\u201d says where this run's best-intermediate mean lies against the two "
            "published numbers: below both, between (a tie with either counts as between) or above both; it sorts in "
            "that order."
        )
    elif content.game_table["game"].isin(reproductions.pfrl_columns("nature")["game"]).any():
        items.append(
            "PFRL's reproduction is not shown: it re-ran the Nature paper's protocol and is normalized with Extended "
            "Data Table 2, not the protocol and table of this reference."
        )
    if content.game_table["game"].isin(reproductions.dopamine_games()).any():
        items.append(
            "<strong>Dopamine DQN</strong> (google/dopamine, Apache License 2.0; Castro et al., arXiv:1812.06110, "
            f"2018): the learning curves of Dopamine's published DQN baseline, {reproductions.DOPAMINE_RUNS} runs per "
            "game, 199 iterations of 1M frames. Iteration i covers frames [i \u00d7 1M, (i + 1) \u00d7 1M) and is drawn "
            "at (i + 1) \u00d7 1M, the frames its agent had trained on when the iteration ended, as this run's "
            "evaluations are drawn at the frames of their snapshot; it is drawn only over the frames this run covers. "
            "It follows another protocol, so its curve is a shape to hold this run's against, not a score: sticky "
            "actions (the emulator repeats the previous action with probability 0.25) make every game stochastic and "
            "usually lower the scores; its numbers are training returns, the episodes played while learning at "
            "\u03b5 = 0.01 (annealed over the first 1M frames), where this run's curve is a separate evaluation at "
            "\u03b5 = 0.05; its episodes are cut at 30 minutes (27,000 agent steps), an evaluation here at 5 minutes, "
            "so in games with long episodes it can score more than a 5-minute evaluation can; it plays no no-op "
            "starts, starts learning after 80k frames and updates its target network every 32k frames; and it is a "
            "range over 5 runs, where the paper printed one run per game."
        )
    return items


def _asset(name: str) -> str:
    return resources.files("analysis.report").joinpath("templates", name).read_text(encoding="utf-8")


def render_report(content: ReportContent) -> str:
    """The report as one HTML document (no external resource)."""
    partial = content.runs_complete < content.runs_total
    badge = (
        f'<span class="badge partial">partial: {content.runs_complete} of {content.runs_total} runs complete</span>'
        if partial
        else f'<span class="badge complete">complete: {content.runs_complete} of {content.runs_total} runs</span>'
    )
    header_meta = (
        f'<p class="meta">{badge} &nbsp; preset <code>{escape(content.preset)}</code>, compared with the '
        f"{escape(content.reference_label)}; {escape(content.normalization.split(',', 1)[0])} "
        f"(see <a href=\"#method\">how the numbers are computed</a>).</p>"
    )
    warnings = ""
    if content.warnings:
        warnings = '<div class="warnings"><strong>Check these:</strong><ul>' + "".join(
            f"<li>{escape(w)}</li>" for w in content.warnings) + "</ul></div>"
    table_note = (
        "Scores are raw game scores; this run's are the mean of seed means. Two different spreads: "
        f"\u201c{EPISODE_SD}\u201d is the s.d. over single evaluation episodes, as the paper's \u00b1 (this run's "
        f"pooled over seeds); \u201c{SEED_SD}\u201d is the s.d. of the seed means across seeds, how much a mean "
        "moves from seed to seed. Hover a header for its definition."
    )
    if "pfrl_dqn_mean" in content.game_table.columns:
        table_note += (
            " PFRL is a public reproduction of the paper's protocol (see <a href=\"#method\">how the numbers are "
            f"computed</a>); \u201c{escape(STANDS_HEADER)}\u201d says whether this run's best-intermediate score lies "
            "below both published numbers, between them or above both."
        )
    values = {
        "title": escape(f"DQN reproduction report: {content.experiment}"),
        "css": _asset("report.css"),
        "js": _asset("report.js"),
        "header_meta": header_meta,
        "banner_top": banner_html(content, "banner-top", full=False),
        "banner_summary": banner_html(content, "banner-summary", full=True),
        "warnings": warnings,
        "headline": headline_html(content),
        "aggregates": aggregates_html(content.aggregates),
        "table_note": table_note,
        "game_table": game_table_html(content.game_table, content.reference_label.split(" (")[0]),
        "best_episodes": best_episodes_html(content),
        "missing": missing_html(content.missing_runs, content.game_table),
        "figures": figures_html(content.figures),
        "provenance": provenance_html(content),
        "method": method_html(content),
    }
    return Template(_asset("report.html")).substitute(values)
