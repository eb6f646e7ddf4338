"""The comparison's self-contained HTML page: Jinja2 template, the report's CSS and sorting script inline,
figures as base64 PNG.

Every numeric cell carries its full-precision value in `data-value`, as the report's do (what the
sort uses and what the tests read); the text shows it rounded.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from dqn.run_folder import WEIGHTS
from analysis.compare import statistics as stats
from analysis.compare.tables import Aggregates
from analysis.numbers import data_value, format_percent, format_score
from analysis.report.content import PAGE_DPI, FigureItem
from analysis.report.sections import png_size
from analysis.report.tables import WEIGHTS_LABELS

STATISTIC_LABELS = {"median": "Median", "mean": "Mean", "iqm": "IQM"}
VERDICT_ORDER = {"better": 1, "can't tell": 0, "worse": -1}


@dataclass(frozen=True)
class Side:
    name: str
    path: str


@dataclass(frozen=True)
class PageContent:
    """Everything the page shows, computed beforehand."""

    a: Side
    b: Side
    weights: str
    verdict: str
    config_difference: pd.DataFrame
    games: list[str]
    seeds: list[int]
    left_out: list[str]
    reference_label: str
    aggregates: list[Aggregates]
    seeds_note: str
    seeds_needed: pd.DataFrame
    game_table: pd.DataFrame
    figures: list[FigureItem]
    method: list[str]
    reps: int
    seed: int


def _interval_text(estimate: stats.Estimate, formatter) -> str:
    return f"[{formatter(estimate.low)}, {formatter(estimate.high)}]" if estimate.has_interval else "no interval (1 seed)"


def _estimate_cell(estimate: stats.Estimate, formatter) -> dict[str, str]:
    return {"value": data_value(estimate.value), "text": formatter(estimate.value),
            "interval": _interval_text(estimate, formatter)}


def _probability(value: Any) -> str:
    return f"{float(value):.2f}"


def aggregate_rows(results: list[Aggregates]) -> list[dict[str, Any]]:
    """One row per statistic; per weights in `results`' order, the cells A, B and B - A."""
    empty = {"value": "", "text": "", "interval": ""}
    rows = [{"statistic": STATISTIC_LABELS[name], "cells": [
        _estimate_cell(e, format_percent) for result in results for e in (*result.each[name], result.difference[name])]}
        for name in STATISTIC_LABELS]
    rows.append({"statistic": "P(B > A)", "cells": [
        cell for result in results for cell in (empty, empty, _estimate_cell(result.improvement, _probability))]})
    return rows


def game_headers(a: str, b: str, weights: str) -> list[dict[str, str]]:
    headers = [("Game", "text", "game", "game"),
               ("Verdict", "number", "", f"better / worse: the 95 % interval of B \u2212 A ({WEIGHTS_LABELS[weights]} "
                "weights) lies above / below 0; can't tell: it holds 0, or a game has one seed"),
               ("Seeds", "number", "", f"seeds with a score in {a} / in {b}")]
    for w in WEIGHTS:
        label = WEIGHTS_LABELS[w]
        headers += [(a, "number", "side-a", f"{a}, {label} weights: mean over seeds"),
                    (b, "number", "side-b", f"{b}, {label} weights: mean over seeds"),
                    ("B \u2212 A", "number", "", f"{label} weights: {b} minus {a}, 95 % bootstrap interval over seeds")]
    headers += [(a, "number", "side-a", f"{a}, {WEIGHTS_LABELS[weights]} weights: human-normalized mean over seeds (%)"),
                (b, "number", "side-b", f"{b}, {WEIGHTS_LABELS[weights]} weights: human-normalized mean over seeds (%)")]
    return [{"label": label, "type": kind, "css": css, "title": title} for label, kind, css, title in headers]


def _num(value: Any, formatter, css: str = "num") -> dict[str, str]:
    return {"css": css, "value": data_value(value), "text": formatter(value), "interval": ""}


def game_rows(table: pd.DataFrame) -> list[list[dict[str, str]]]:
    rows = []
    for _, row in table.iterrows():
        verdict = row["verdict"]
        cells = [{"css": "text game", "value": str(row["display_name"]), "text": str(row["display_name"]), "interval": ""},
                 {"css": f"text verdict-{verdict.replace(chr(39), '').replace(' ', '-')}",
                  "value": str(VERDICT_ORDER[verdict]), "text": verdict, "interval": ""},
                 {"css": "num", "value": str(min(row["seeds_a"], row["seeds_b"])),
                  "text": f"{row['seeds_a']} / {row['seeds_b']}", "interval": ""}]
        for w in WEIGHTS:
            difference = _num(row[f"{w}_difference"], format_score)
            low, high = row[f"{w}_difference_low"], row[f"{w}_difference_high"]
            difference["interval"] = (f"[{format_score(low)}, {format_score(high)}]" if pd.notna(low)
                                      else "no interval (1 seed)")
            cells += [_num(row[f"a_{w}_mean"], format_score), _num(row[f"b_{w}_mean"], format_score), difference]
        cells += [_num(row["a_normalized"], format_percent), _num(row["b_normalized"], format_percent)]
        rows.append(cells)
    return rows


def _asset(package: str, name: str) -> str:
    return resources.files(package).joinpath("templates", name).read_text(encoding="utf-8")


def figure_context(figure: FigureItem) -> dict[str, Any]:
    # Laid out at the report's PAGE_DPI (the CSS caps the width at the page's): a PNG drawn finer is sharp.
    width, height = (round(n * PAGE_DPI / figure.dpi) for n in png_size(figure.png))
    return {"id": figure.name.removesuffix(".png"), "name": figure.name, "title": figure.title,
            "caption": figure.caption, "width": width, "height": height,
            "data": base64.b64encode(figure.png).decode("ascii")}


def render_page(content: PageContent) -> str:
    """The page as one HTML string."""
    # The comparison's own templates first, then the report's (page.html, the frame both pages share).
    loader = jinja2.ChoiceLoader([jinja2.PackageLoader("analysis.compare", "templates"),
                                  jinja2.PackageLoader("analysis.report", "templates")])
    environment = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    # The report's stylesheet and sorting script, so the two pages look and sort alike.
    css = _asset("analysis.report", "report.css") + "\n" + _asset("analysis.compare", "compare.css")
    return environment.get_template("compare.html").render(
        title=f"{content.a.name} vs {content.b.name}",
        a=content.a, b=content.b,
        weights_label=WEIGHTS_LABELS[content.weights],
        verdict=content.verdict,
        config_rows=content.config_difference.to_dict("records"),
        games_count=len(content.games), seeds=content.seeds, left_out=content.left_out,
        reference_label=content.reference_label,
        reps=content.reps, seed=content.seed,
        aggregate_rows=aggregate_rows(content.aggregates),
        aggregate_weights=[WEIGHTS_LABELS[result.weights] for result in content.aggregates],
        seeds_note=content.seeds_note,
        seeds_rows=[{"difference": f"{d:.1f}", "seeds": f"{s:,}"} for d, s in
                    zip(content.seeds_needed["difference"], content.seeds_needed["seeds"])],
        game_headers=game_headers(content.a.name, content.b.name, content.weights),
        game_rows=game_rows(content.game_table),
        figures=[figure_context(figure) for figure in content.figures],
        method=content.method,
        css=Markup(css), js=Markup(_asset("analysis.report", "report.js")),
    )
