"""The report's tables with a row per game (per-game scores, single best episodes) and the
aggregates table, as rows of cells (analysis.report.cells) from the computed tables
(analysis.report.tables).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from analysis.numbers import data_value, format_int, format_percent, format_score, is_number
from analysis.report import columns as cols
from analysis.report.cells import Cell, Row, Table, cell_of, group_row, header_cell, num_cell, table_attrs, text_cell
from analysis.report.tables import NO_INTERVAL_ONE_SEED
from analysis.results_files import RUN_COMPLETE


def status_text(row: pd.Series) -> str:
    if row["status"] == RUN_COMPLETE:
        return RUN_COMPLETE
    scored = int(min(row["best_seeds"], row["final_seeds"]))
    return f"{row['status']} ({format_int(scored)} of {format_int(row['seeds_planned'])} seeds scored)"


def _game_cell(row: pd.Series, column: str) -> Cell | None:
    """The game and status cells every per-game table shares; None for any other column."""
    if column == "display_name":
        return text_cell(row["display_name"], css="text game", sort_value=str(row["display_name"]))
    if column == "status":
        return text_cell(status_text(row), css="text status", sort_value=str(row["status"]))
    return None


def _game_row(row: pd.Series, cells: Sequence[Cell]) -> Row:
    # The status class colours a partial or missing game the same in every per-game table.
    return Row(cells, (("class", f"status-{row['status']}"), ("data-game", str(row["game"]))))


def seed_sd_cell(row: pd.Series, weights: str) -> Cell:
    """The s.d. across seeds: "n/a (1 seed)" where one seed is scored (there is no spread to measure)."""
    if int(row[f"{weights}_seeds"]) == 1:
        return Cell(NO_INTERVAL_ONE_SEED, (("class", "num sd na"), ("data-value", "")))
    return num_cell(row[f"{weights}_std"], format_score, css="num sd")


def stands_cell(stands: str) -> Cell:
    """Where this run stands, sorted by its order (below both, between, above both) rather than alphabetically."""
    from analysis.report.reproductions import STANDINGS

    if stands not in STANDINGS:
        return Cell("", (("class", "text"), ("data-value", "")))
    return text_cell(stands, css=f"text stands-{stands.replace(' ', '-')}", sort_value=str(STANDINGS.index(stands)))


def on_track_cell(row: pd.Series) -> Cell:
    """The game's standing, sorted below < within < above, its numbers in the tooltip."""
    from baselines.on_track import NOT_COMPARABLE, STANDINGS

    standing, tip = str(row["on_track"]), str(row["on_track_text"])
    if standing not in STANDINGS:
        # Short in the cell, so that the column stays narrow; the reason in the tooltip.
        short = "n/a" if tip.startswith(NOT_COMPARABLE) else "not yet"
        return text_cell(short, css="text on-track-none", sort_value="", title=tip)
    return text_cell(standing, css=f"text on-track-{standing}", sort_value=str(STANDINGS.index(standing)), title=tip)


def _score_cell(row: pd.Series, column: cols.Column) -> Cell:
    shared = _game_cell(row, column.key)
    if shared is not None:
        return shared
    if column.key in ("best_std", "final_std"):
        return seed_sd_cell(row, column.key.removesuffix("_std"))
    if column.key == "higher":
        higher = str(row["higher"])
        return text_cell(higher, css=f"text higher-{higher.replace(' ', '-')}" if higher else "text")
    if column.key == "stands":
        return stands_cell(str(row["stands"]))
    if column.key == "on_track":
        return on_track_cell(row)
    return num_cell(row[column.key], column.fmt, css=f"num {column.css}".strip())


def game_table(table: pd.DataFrame, paper_label: str) -> Table:
    """The per-game scores (tables.game_table), with PFRL's and the on-track columns where it has them."""
    columns, groups = cols.game_columns(table)
    head = Row([header_cell(c, numeric=c.fmt is not None or c.key in cols.RANKED_COLUMNS) for c in columns])
    rows = [_game_row(row, [_score_cell(row, c) for c in columns]) for _, row in table.iterrows()]
    return Table([group_row(groups, paper_label), head], rows, table_attrs("game-table", "sortable"))


def best_episode_table(table: pd.DataFrame, paper_label: str) -> Table:
    """The paper's single best episodes beside this run's (tables.best_episode_table)."""
    columns = cols.BEST_EPISODE_COLUMNS
    head = Row([header_cell(c, numeric=c.fmt is not None) for c in columns])
    rows = [_game_row(row, [_game_cell(row, c.key) or cell_of(row, c) for c in columns]) for _, row in table.iterrows()]
    return Table([group_row(cols.BEST_EPISODE_GROUPS, paper_label), head], rows, table_attrs("best-episodes", "sortable"))


def with_interval(row: pd.Series, name: str) -> str:
    """A statistic with its 95 % interval in brackets, or the reason it has none."""
    point = format_percent(row[name])
    if row.get("ci_note"):
        return f"{point} [{row['ci_note']}]"
    if is_number(row.get(f"{name}_low")):
        return f"{point} [{format_percent(row[f'{name}_low'])}, {format_percent(row[f'{name}_high'])}]"
    return point


def _statistic_cell(row: pd.Series, name: str) -> Cell:
    attrs = (("class", "num"), ("data-value", data_value(row[name])), ("data-low", data_value(row[f"{name}_low"])),
             ("data-high", data_value(row[f"{name}_high"])))
    return Cell(with_interval(row, name), attrs)


def aggregates_table(aggregates: pd.DataFrame) -> Table:
    """The aggregate rows (tables.aggregate_table): this run's, the paper's, PFRL's."""
    columns = [cols.AGGREGATE_LABEL, *cols.AGGREGATE_COUNTS, *cols.AGGREGATE_STATISTICS, *cols.AGGREGATE_THRESHOLDS]
    head = Row([Cell(c.header, (("scope", "col"),) + ((("title", c.tip),) if c.tip else ()), tag="th") for c in columns])
    rows = []
    for _, row in aggregates.iterrows():
        cells = [Cell(str(row["label"]), (("scope", "row"), ("class", "text")), tag="th")]
        cells += [num_cell(row[c.key], c.fmt) for c in cols.AGGREGATE_COUNTS]
        cells += [_statistic_cell(row, c.key) for c in cols.AGGREGATE_STATISTICS]
        cells += [num_cell(row[c.key], c.fmt) for c in cols.AGGREGATE_THRESHOLDS]
        rows.append(Row(cells, (("class", f"kind-{str(row['kind']).replace(' ', '-')}"),)))
    return Table([head], rows, table_attrs("aggregates"))
