"""Build the report: read a results folder, compute the tables, draw the figures, write the files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dqn.errors import UserError
from dqn.fileio import atomic_write, check_output_dirs, remove_stale_temporaries, removed_if_failed
from analysis.report import curve_figures as curve_figs
from analysis.report import figures as figs
from analysis.report import captions, tables
from analysis.report.content import FigureItem, ReportContent
from analysis.report.page import render_report
from analysis.report.comparability import comparability
from analysis.report.paper import get_reference
from analysis.report.results import Results, load_results

# The figure files the workflow registers with Snakemake's report(), in the order the page shows them.
FIGURE_FILES = ("normalized_scores.png", "learning_curves.png", "average_max_q.png", "scores_vs_paper.png")


def protocol_notes(reference: str) -> list[dict]:
    """The config's protocol notes for `reference`, or none when the config registers no such paper."""
    from dqn import config

    if reference not in config.PAPER_PRESETS:
        return []
    # Values as written in the config (an int stays "10000", not "10000.0" in a float column).
    return [{**dataclasses.asdict(note), "value": str(note.value)} for note in config.protocol_notes(reference)]


def report_figures(results: Results, table, reference_label: str) -> list[FigureItem]:
    """The four figures of the report, drawn and encoded as PNG."""
    curves = results.learning_curves
    pfrl = "pfrl_normalized" in table.columns
    same_protocol = get_reference(results.reference).nnabla
    drawn = [
        ("normalized_scores.png", "Human-normalized score per game (Fig. 3 style)",
         figs.normalized_scores_figure(table, reference_label=reference_label),
         captions.normalized_scores(reference_label, pfrl=pfrl)),
        ("learning_curves.png", "Learning curves (Fig. 2 a, b style)",
         curve_figs.learning_curves_figure(curves, table, reference_label=reference_label,
                                           same_protocol_reference=same_protocol),
         captions.learning_curves(same_protocol=same_protocol)),
        ("average_max_q.png", "Average max Q on held-out transitions (Fig. 2 c, d style)",
         curve_figs.average_max_q_figure(curves, table), captions.AVERAGE_MAX_Q),
        ("scores_vs_paper.png", "This run's scores against the paper's",
         figs.scores_vs_paper_figure(table, reference_label=reference_label), captions.scores_vs_paper(pfrl=pfrl)),
    ]  # fmt: skip
    return [FigureItem(name=name, png=figs.png_bytes(figure), title=title, caption=caption, dpi=figs.DPI)
            for name, title, figure, caption in drawn]


def build_report(results_dir: str | Path, out: str | Path, figures_dir: str | Path, *,
                 bootstrap_reps: int = 2000, seed: int = 0) -> Path:
    """Write the HTML report `out` and the PNG figures of FIGURE_FILES into `figures_dir`; return `out`.

    Arguments are checked first, then the results are read, and the output folders are made
    last; if anything fails after that, the folders made here are removed again (if still empty).
    """
    out, figures_dir = check_report_arguments(out, figures_dir, bootstrap_reps=bootstrap_reps, seed=seed)
    results = load_results(results_dir)
    with removed_if_failed() as created:
        check_output_dirs([out.parent, figures_dir], created=created)
        # Only the leftovers of this report's own files: the folders may hold other files.
        remove_stale_temporaries(out.parent, recursive=False, targets=[out.name])
        remove_stale_temporaries(figures_dir, recursive=False, targets=FIGURE_FILES)
        return write_report(results, out, figures_dir, bootstrap_reps=bootstrap_reps, seed=seed)


def check_report_arguments(out: str | Path, figures_dir: str | Path, *, bootstrap_reps: int,
                           seed: int) -> tuple[Path, Path]:
    """The report's arguments, checked before any file is read or folder made; (out, figures_dir) as Paths."""
    out, figures_dir = Path(out), Path(figures_dir)
    if bootstrap_reps < 1:
        raise UserError(f"--bootstrap-reps must be a positive number of resamples, got {bootstrap_reps}")
    if seed < 0:
        raise UserError(f"--seed of the bootstrap must be 0 or more, got {seed}")
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name such as reports/demo/report.html")
    if figures_dir.exists() and not figures_dir.is_dir():
        raise UserError(f"--figures-dir {str(figures_dir)!r} is a file; give a folder such as reports/demo/figures")
    return out, figures_dir


def write_report(results: Results, out: Path, figures_dir: Path, *, bootstrap_reps: int, seed: int) -> Path:
    """Compute the tables, draw the figures and write them into folders that exist; return `out`."""
    reference = get_reference(results.reference)
    reference_label = f"{reference.label} ({reference.table_label})"
    table = tables.game_table(results)
    warnings = []
    mismatched = tables.normalization_mismatches(results)
    if mismatched:
        warnings.append(
            f"scores.parquet human_normalized differs from 100 x (mean - random) / (human - random) with the random "
            f"and human scores of {reference.table_label} of the {reference.label} for {', '.join(mismatched)}; this "
            f"report recomputes it from the mean column; regenerate the tables with the workflow's aggregate step."
        )
    inconsistent = tables.episode_mismatches(results)
    if inconsistent:
        shown = ", ".join(inconsistent[:5]) + (f" and {len(inconsistent) - 5} more" if len(inconsistent) > 5 else "")
        warnings.append(
            f"scores.parquet disagrees with episodes.parquet (mean or episode count) for {shown}; "
            "regenerate the tables with the workflow's aggregate step."
        )
    unknown = table.loc[table["human_score"].isna(), "game"].tolist()
    if unknown:
        warnings.append(f"no reference scores in the {reference.label} for {', '.join(unknown)}; these games are left out of the aggregates.")

    runs = tables.runs_table(results)
    figure_items = report_figures(results, table, reference.label)
    content = ReportContent(
        experiment=results.experiment,
        preset=str(results.provenance.get("preset", "unknown")),
        reference_label=reference_label,
        citation=reference.citation,
        normalization=reference.normalization,
        runs_complete=int((runs["status"] == "complete").sum()),
        runs_total=len(runs),
        game_table=table,
        aggregates=tables.aggregate_table(results, reps=bootstrap_reps, seed=seed),
        missing_runs=tables.missing_runs(results),
        runs=runs,
        hours=tables.device_hours(results),
        deviations=results.deviations.astype(str),
        protocol_notes=protocol_notes(results.reference),
        provenance=results.provenance,
        figures=figure_items,
        bootstrap_reps=bootstrap_reps,
        bootstrap_seed=seed,
        results_path=str(results.path),
        warnings=warnings,
        best_episodes=tables.best_episode_table(results),
        best_episodes_where=reference.best_episodes.where if reference.best_episodes else "",
        comparability=comparability(results),
        on_track_headline=tables.on_track_headline(results, table),
    )
    document = render_report(content)
    for item in figure_items:
        write_readable(figures_dir / item.name, item.png)
    write_readable(out, document.encode("utf-8"))
    return out


def write_readable(path: Path, data: bytes) -> Path:
    """Write `data` atomically, readable by everyone: a report is meant to be shared or served."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
        # The temporary file is created private (0600); the report should not stay so.
        os.chmod(tmp, 0o644)

    return atomic_write(path, write)
