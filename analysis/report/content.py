"""What the report shows, computed beforehand by analysis.report.build: the page is rendered from
this alone (analysis.report.page), no computation on the results happens while rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.report.comparability import Comparability

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
