"""What each section of the report states, computed from ReportContent: the numbers and lists its
template (templates/*.html) writes into its prose, and its tables as rows of cells.

No sentence is written here and no number is typed into a template: a count, a share or a setting
the page quotes is computed here (or read from the module that defines it) and passed in.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from analysis.numbers import MISSING, format_hours, format_int, format_percent, number_text, percent_of, setting_text
from analysis.report import columns as cols
from analysis.report import game_tables
from analysis.report.cells import Table, simple_table
from analysis.report.comparability import Comparability, TrainingLength
from analysis.report.content import PAGE_DPI, FigureItem, ReportContent
from analysis.results_files import RUN_COMPLETE

# Up to this many games, the headline lists each game's score against its random agent's.
HEADLINE_GAMES_LISTED = 6
# Up to this many deviating fields, the banner names each.
BANNER_FIELDS_LISTED = 6


def paper_name(content: ReportContent) -> str:
    """The reference paper's short name, e.g. "Nature 2015 paper" of "Nature 2015 paper (Extended Data Table 2)"."""
    return content.reference_label.split(" (")[0]


def length_facts(length: TrainingLength) -> dict[str, Any]:
    return {"games": ", ".join(length.games), "frames": format_int(length.frames),
            "steps": None if length.steps is None else format_int(length.steps), "share": percent_of(length.fraction),
            "paper_frames": format_int(length.paper_frames), "paper_steps": format_int(length.paper_steps)}


def banner(comparability: Comparability | None) -> dict[str, Any] | None:
    """The note that this is not the paper's experiment, or None when it is (or was not checked)."""
    if comparability is None or comparability.comparable:
        return None
    fields = list(comparability.deviations)
    return {
        "lengths": [length_facts(length) for length in comparability.lengths],
        "preset": comparability.preset if comparability.preset != comparability.paper_preset else None,
        "paper_preset": comparability.paper_preset,
        "fields": fields[:BANNER_FIELDS_LISTED],
        "more_fields": max(0, len(fields) - BANNER_FIELDS_LISTED),
        "field_count": len(fields),
    }


@dataclass(frozen=True)
class GameScore:
    name: str
    this_run: str
    random_agent: str


def random_agent_facts(table: pd.DataFrame) -> dict[str, Any] | None:
    """Whether this run learned at all, whatever its length: its best-intermediate weights against
    the random agent it played beside them; None without a game scored by both."""
    both = table[table["best_mean"].notna() & table["random_mean"].notna()]
    if both.empty:
        return None
    listed = [GameScore(str(r["display_name"]), number_text(r["best_mean"], 1), number_text(r["random_mean"], 1))
              for _, r in both.iterrows()] if len(both) <= HEADLINE_GAMES_LISTED else []
    return {"higher": int((both["best_mean"] > both["random_mean"]).sum()), "games": len(both), "listed": listed}


def headline(content: ReportContent) -> dict[str, Any] | None:
    """The summary's numbers: this run's median against the paper's on the same games; None before any score."""
    aggregates = content.aggregates
    ours = aggregates[aggregates["kind"] == "this run"]
    if ours.empty:
        return None
    row, paper = ours.iloc[0], aggregates[aggregates["kind"] == "paper"].iloc[0]
    reproduction = aggregates[aggregates["kind"] == "reproduction"]
    compared = content.game_table[content.game_table["higher"].isin(["this run", "paper", "tie"])]
    return {
        "median": format_percent(row["median"]),
        "weights": str(row["label"]).split(", ", 1)[1],
        "ci_note": str(row["ci_note"]) if row.get("ci_note") else "",
        "low": format_percent(row["median_low"]), "high": format_percent(row["median_high"]),
        "paper_median": format_percent(paper["median"]),
        "pfrl_median": None if reproduction.empty else format_percent(reproduction.iloc[0]["median"]),
        "games": format_int(paper["games"]),
        "wins": int((compared["higher"] == "this run").sum()), "compared": len(compared),
        "random_agent": random_agent_facts(content.game_table),
    }


def episode_counts(table: pd.DataFrame) -> list[dict[str, Any]]:
    """How many episodes each game's maximum is over, the most common count first with no games named:
    [{"best": "60", "final": "60", "games": []}, {"best": "30", "final": "30", "games": ["Pong"]}]."""
    games_by_count: dict[tuple[int, int], list[str]] = {}
    for _, row in table.iterrows():
        best, final = int(row["best_episodes"]), int(row["final_episodes"])
        if best or final:
            games_by_count.setdefault((best, final), []).append(str(row["display_name"]))
    ordered = sorted(games_by_count.items(), key=lambda item: -len(item[1]))
    return [{"best": format_int(best), "final": format_int(final), "games": games if i else []}
            for i, ((best, final), games) in enumerate(ordered)]


def best_episodes(content: ReportContent) -> dict[str, Any] | None:
    """The single-best-episode comparison, or None when the reference paper reports none."""
    if content.best_episodes is None:
        return None
    return {"where": content.best_episodes_where, "counts": episode_counts(content.best_episodes),
            "table": game_tables.best_episode_table(content.best_episodes, paper_name(content))}


def missing(content: ReportContent) -> dict[str, Any]:
    games = content.game_table[content.game_table["status"] != RUN_COMPLETE]
    return {
        "games": [f"{r['display_name']} ({game_tables.status_text(r)})" for _, r in games.iterrows()],
        "table": simple_table(content.missing_runs, cols.MISSING_RUN_COLUMNS, table_id="missing-runs")
        if not (content.missing_runs.empty and games.empty) else None,
    }


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, read from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def figures(items: Sequence[FigureItem]) -> list[dict[str, Any]]:
    shown = []
    for item in items:
        # Laid out at PAGE_DPI (the CSS caps the width at the page's): a PNG drawn at a higher dpi is sharp.
        width, height = (round(n * PAGE_DPI / item.dpi) for n in png_size(item.png))
        shown.append({"id": item.name.removesuffix(".png"), "name": item.name, "title": item.title,
                      "caption": item.caption, "width": width, "height": height,
                      "src": "data:image/png;base64," + base64.b64encode(item.png).decode("ascii")})
    return shown


def compute(content: ReportContent) -> dict[str, Any]:
    """The hours of the provenance section: totals and the two detail tables."""
    totals = content.hours[["gpu_hours", "cpu_hours"]].sum()
    return {"gpu_hours": format_hours(totals["gpu_hours"]), "cpu_hours": format_hours(totals["cpu_hours"]),
            "hours": simple_table(content.hours, cols.HOURS_COLUMNS, css="sortable", table_id="hours"),
            "runs": simple_table(content.runs, cols.RUN_COLUMNS, css="sortable", table_id="runs")}


def game_scores(content: ReportContent) -> Table:
    return game_tables.game_table(content.game_table, paper_name(content))


def plain(value: Any) -> str:
    """A provenance value as one line of text."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return MISSING if value is None or value == "" else str(value)


# Software listed first in the provenance, in this order; any other recorded version after them.
KNOWN_SOFTWARE = ("torch", "ale-py", "gymnasium", "snakemake", "python")


def provenance_items(provenance: dict[str, Any], results_path: str) -> list[tuple[str, str]]:
    """(label, text) of every provenance.json entry but the runs (the runs table shows them)."""
    prov = dict(provenance)
    versions = prov.pop("versions", {}) or {}
    items = [(f"{name} version", versions.get(name)) for name in KNOWN_SOFTWARE]
    items += [(f"{name} version", value) for name, value in versions.items() if name not in KNOWN_SOFTWARE]
    commit, dirty = prov.pop("git_commit", None), prov.pop("git_dirty", None)
    if commit and dirty:
        commit = f"{commit} (with uncommitted changes to tracked files)"
    items += [("git commit", commit), ("hardware", prov.pop("hardware", None))]
    items += [(key, prov.pop(key, None)) for key in ("experiment", "preset", "reference")]
    overrides = prov.pop("overrides", None)
    if overrides is not None:
        items.append(("overrides (--set)", overrides or "none"))
    for key in ("games", "seeds"):
        if isinstance(prov.get(key), list):
            items.append((f"planned {key}", ", ".join(map(str, prov.pop(key)))))
    prov.pop("runs", None)  # each run's device, host and versions are in the runs table
    items += [(key, prov[key]) for key in sorted(prov)]
    items.append(("results folder", results_path))
    return [(str(label), plain(value)) for label, value in items]


def provenance(content: ReportContent) -> dict[str, Any]:
    deviations = None
    if not content.deviations.empty:
        readable = content.deviations.assign(paper_value=content.deviations["paper_value"].map(setting_text),
                                             this_value=content.deviations["this_value"].map(setting_text))
        deviations = simple_table(readable, cols.DEVIATION_COLUMNS, table_id="deviations")
    notes = None
    if content.protocol_notes:
        frame = pd.DataFrame(content.protocol_notes)
        notes = simple_table(frame.assign(value=frame["value"].map(setting_text)), cols.PROTOCOL_NOTE_COLUMNS,
                             table_id="protocol-notes")
    return {"deviations": deviations, "protocol_notes": notes,
            "entries": provenance_items(content.provenance, content.results_path), **compute(content)}
