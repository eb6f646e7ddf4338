"""The report as one self-contained HTML document, rendered from the Jinja2 templates in
templates/ (shipped as package data) with the facts of analysis.report.sections; CSS and JS inline.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

import jinja2
from markupsafe import Markup

from analysis.report import columns as cols
from analysis.report import game_tables, method, sections
from analysis.report.cells import Table
from analysis.report.content import ReportContent


def _escaped(value: object) -> object:
    # Every value is escaped as the standard library's html.escape does it (an apostrophe as &#x27;, as
    # the report's tables always read); a fragment the templates built (Markup) passes unchanged.
    return value if hasattr(value, "__html__") else Markup(html.escape(str(value)))


def _asset(name: str) -> str:
    return resources.files("analysis.report").joinpath("templates", name).read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FunctionLoader(_asset), autoescape=True, finalize=_escaped,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render_table(table: Table) -> str:
    """One table of the report as HTML (what the page writes for it)."""
    return environment().get_template("table.html").module.table(table)


def render_report(content: ReportContent) -> str:
    """The report as one HTML document (no external resource)."""
    caveat = content.comparability is not None and not content.comparability.comparable
    headline = sections.headline(content)
    if headline is not None:
        headline["confidence"] = method.CONFIDENCE_PERCENT
    values = {
        "title": f"DQN reproduction report: {content.experiment}",
        "css": Markup(_asset("report.css")),
        "js": Markup(_asset("report.js")),
        "paper": sections.paper_name(content),
        "preset": content.preset,
        "reference_label": content.reference_label,
        "normalization_short": content.normalization.split(",", 1)[0],
        "runs": {"complete": content.runs_complete, "total": content.runs_total},
        "headers": {"episode_sd": cols.EPISODE_SD, "seed_sd": cols.SEED_SD, "stands": cols.STANDS_HEADER,
                    "higher": cols.GAME_COLUMNS[-1].header},
        "summary": {"banner": sections.banner(content.comparability), "warnings": content.warnings,
                    "headline": headline, "on_track": content.on_track_headline, "caveat": caveat,
                    "aggregates": game_tables.aggregates_table(content.aggregates)},
        "games": {"table": sections.game_scores(content), "pfrl": "pfrl_dqn_mean" in content.game_table.columns,
                  "best_episodes": sections.best_episodes(content)},
        "missing": sections.missing(content),
        "figures": sections.figures(content.figures),
        "provenance": sections.provenance(content),
        "method": method.method(content),
    }
    return environment().get_template("report.html").render(values)
