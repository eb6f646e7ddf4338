"""The report's tables as rows of cells for the page's templates: each cell's text, tag and
attributes are decided here; templates/table.html writes them out (and escapes them).

Every numeric cell carries its full-precision value in `data-value` (what the sort uses and what
the tests compare with the Parquet inputs); the text shows it rounded. Empty `data-value` means
the value is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from analysis.numbers import data_value
from analysis.report.columns import Column, Formatter, Group

Attributes = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Cell:
    text: str
    attrs: Attributes = ()
    tag: str = "td"


@dataclass(frozen=True)
class Row:
    cells: Sequence[Cell]
    attrs: Attributes = ()


@dataclass(frozen=True)
class Table:
    head: Sequence[Row]  # the group row (if any), then the column headers
    rows: Sequence[Row]
    attrs: Attributes = ()


def table_attrs(table_id: str = "", css: str = "") -> Attributes:
    return tuple((name, value) for name, value in (("id", table_id), ("class", css)) if value)


def num_cell(value: Any, formatter: Formatter, css: str = "num") -> Cell:
    return Cell(formatter(value), (("class", css), ("data-value", data_value(value))))


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def text_cell(text: Any, css: str = "text", sort_value: str | None = None, title: str = "") -> Cell:
    attrs = (("class", css),) + ((("data-value", sort_value),) if sort_value is not None else ())
    return Cell("" if _is_missing(text) else str(text), attrs + ((("title", title),) if title else ()))


def header_cell(column: Column, *, numeric: bool) -> Cell:
    # Only the game column's class goes on its header (it stays in view when the table scrolls).
    attrs = (("data-type", "number" if numeric else "text"), ("scope", "col"))
    attrs += (("class", "game"),) if column.css == "game" else ()
    return Cell(column.header, attrs + ((("title", column.tip),) if column.tip else ()), tag="th")


def group_row(groups: Sequence[Group], paper_label: str) -> Row:
    """The group headers, "Paper" written as the reference paper's name."""
    cells = [Cell(paper_label if label == "Paper" else label,
                  (("colspan", str(span)),) + ((("class", css),) if css else ()), tag="th")
             for label, span, css in groups]
    return Row(cells, (("class", "group"),))


def cell_of(row: pd.Series, column: Column) -> Cell:
    """A plain table's cell: the number formatted, or the text."""
    return num_cell(row[column.key], column.fmt) if column.fmt is not None else text_cell(row[column.key])


def simple_table(frame: pd.DataFrame, columns: Sequence[Column], *, css: str = "", table_id: str = "") -> Table:
    """A table of `frame`, one row per row, one cell per column."""
    head = Row([header_cell(column, numeric=column.fmt is not None) for column in columns])
    rows = [Row([cell_of(row, column) for column in columns]) for _, row in frame.iterrows()]
    return Table([head], rows, table_attrs(table_id, css))
