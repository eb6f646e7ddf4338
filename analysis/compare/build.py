"""Build the comparison: read both results folders, compute, draw, and write the page and its figures.

Everything is read and computed before any folder is made or file written, so bad input leaves
nothing behind; each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from dqn.errors import UserError
from dqn.games import display_name
from dqn.fileio import check_output_dirs, remove_stale_temporaries, removed_if_failed
from dqn.run_folder import WEIGHTS
from analysis.compare import configs, tables
from analysis.compare import figures as figs
from analysis.compare.inputs import Common, load_pair
from analysis.compare.page import PageContent, Side, render_page
from analysis.report.build import check_report_arguments, write_readable
from analysis.report.figures import DPI, png_bytes
from analysis.report.content import FigureItem
from analysis.report.paper import get_reference
from analysis.report.tables import WEIGHTS_LABELS

FIGURE_FILES = ("performance_profile.png", "learning_curves.png")


def figures_dir_for(out: str | Path) -> Path:
    """The default figures folder: beside the page, named after it (A_vs_B.html -> A_vs_B_figures/)."""
    out = Path(out)
    return out.with_name(f"{out.stem}_figures")


def check_arguments(out: str | Path, figures_dir: str | Path | None, *, weights: str, reps: int,
                    seed: int) -> tuple[Path, Path]:
    """The arguments, checked before any file is read (the report's checks, then the comparison's own);
    (out, figures_dir) as Paths."""
    out, figures_dir = check_report_arguments(out, figures_dir if figures_dir is not None else figures_dir_for(out),
                                              bootstrap_reps=reps, seed=seed)
    if weights not in WEIGHTS:
        raise UserError(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if reps < 2:
        raise UserError(f"--bootstrap-reps must be at least 2 resamples, got {reps}")
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {str(out)!r} must name an HTML file, e.g. reports/compare/A_vs_B.html")
    return out, figures_dir


def seeds_note(result: tables.Aggregates) -> str:
    if not math.isfinite(result.iqm_standard_error):  # a single seed
        return ("With one seed per game the bootstrap has nothing to resample, so there is no interval and no "
                "estimate of the seeds a difference needs: run at least two seeds of each experiment.")
    seeds = result.seeds[1]
    return (f"With {seeds} seed{'s' if seeds > 1 else ''} per game the bootstrap standard error of the IQM difference "
            f"is {result.iqm_standard_error:.1f} points. It shrinks as 1/\u221aseeds, so the 95 % interval of a "
            f"difference d clears 0 with about {seeds} \u00d7 (1.96 \u00d7 {result.iqm_standard_error:.1f} / d)\u00b2 "
            "seeds per game, on these games and with the spread these runs show:")


def method_lines(common: Common, weights: str, reps: int) -> list[str]:
    return [
        "A game's score is the mean over its seeds of each seed's mean over its evaluation episodes "
        "(scores.parquet), with best-intermediate and with final weights, as in each experiment's report.",
        f"Per-game difference B \u2212 A: of those means; its 95 % interval is the percentile interval of {reps} "
        "bootstrap resamples in which each experiment's seeds of the game are drawn with replacement, A's and B's "
        "independently (a seed number of one experiment shares nothing with the same number of the other).",
        f"Verdict per game ({WEIGHTS_LABELS[weights]} weights): better when that interval lies above 0, worse when "
        "below, can't tell when it holds 0 or a game has a single seed in either experiment (no interval).",
        f"Human-normalized score: 100 \u00d7 (score \u2212 random) / (human \u2212 random) with the random and human "
        f"scores of the {common.reference} reference table, per seed, then averaged.",
        "Median and mean: over games of the per-game scores; IQM: the mean of the middle 50 % of all seed \u00d7 game "
        "scores. Their intervals come from the report's stratified bootstrap (seeds resampled within each game), "
        "each experiment resampled independently; the difference's interval is that of the resampled differences.",
        "P(B > A): for each game, the probability that a seed of B scores above a seed of A, ties counted half "
        "(the Mann-Whitney statistic over all pairs of seeds, divided by their number), averaged over games "
        "(Agarwal et al. 2021); its interval from the same resamples.",
        "The one-sentence verdict calls B better or worse only when the 95 % interval of the IQM difference "
        "excludes 0; otherwise not distinguishable.",
        "Performance profile: for each \u03c4, the fraction of a game's seeds with a human-normalized score at or "
        "above \u03c4, averaged over games (the fraction of games when each has one seed), with its 95 % band.",
    ]


def compute(common: Common, weights: str, *, reps: int, seed: int) -> PageContent:
    """Every number and figure of the page."""
    a, b = common.a.experiment, common.b.experiment
    results = {w: tables.aggregates(common, w, reps=reps, seed=seed) for w in WEIGHTS}
    primary, boot = results[weights]
    taus = figs.taus_for(boot.a, boot.b)
    reference = get_reference(common.reference)
    profile = figs.profile_figure(taus, boot.profiles(taus), (a, b), bands=boot.interval)
    curves = figs.curves_figure((common.a.learning_curves, common.b.learning_curves), common.games,
                                [display_name(game) for game in common.games], (a, b),
                                same_protocol_reference=reference.nnabla)
    figures = [
        FigureItem("performance_profile.png", png_bytes(profile), "Performance profiles",
               f"Fraction of runs (seeds) at or above each human-normalized score \u03c4, every game weighted equally, "
               f"{WEIGHTS_LABELS[weights]} weights, {figs.taus_caption(taus)}; bands: 95 % stratified-bootstrap "
               "intervals. A curve above the "
               "other over a range of \u03c4 scores higher there.", DPI),
        FigureItem("learning_curves.png", png_bytes(curves), "Learning curves, overlaid",
               "Training-time evaluation score against emulator frames, per game: line, the mean over seeds; band, "
               "the range (min to max) over seeds." + (" Green behind, from its first point at 1M frames: the "
               "same-protocol reference seeds, as in the report." if reference.nnabla else ""), DPI),
    ]
    return PageContent(
        a=Side(a, str(common.a.path)), b=Side(b, str(common.b.path)), weights=weights,
        verdict=tables.verdict_sentence(primary, a, b),
        config_difference=configs.config_difference(common.a, common.b),
        games=common.games, seeds=common.seeds, left_out=common.left_out,
        reference_label=f"{reference.label}, {reference.table_label}",
        aggregates=[results[w][0] for w in WEIGHTS], seeds_note=seeds_note(primary),
        seeds_needed=tables.seeds_needed_table(primary),
        game_table=tables.game_table(common, weights, reps=reps, seed=seed),
        figures=figures, method=method_lines(common, weights, reps), reps=reps, seed=seed,
    )


class Written(NamedTuple):
    page: Path
    verdict: str  # the page's one-sentence verdict, for the command line to print


def build_comparison(folder_a: str | Path, folder_b: str | Path, out: str | Path, *, figures_dir: str | Path | None = None,
                     weights: str = "best", reps: int = 2000, seed: int = 0) -> Written:
    """Write the comparison page `out` and its figures (FIGURE_FILES) into `figures_dir`."""
    out, figures_dir = check_arguments(out, figures_dir, weights=weights, reps=reps, seed=seed)
    content = compute(load_pair(folder_a, folder_b), weights, reps=reps, seed=seed)
    document = render_page(content)
    with removed_if_failed() as created:
        check_output_dirs([out.parent, figures_dir], created=created)
        remove_stale_temporaries(out.parent, recursive=False, targets=[out.name])
        remove_stale_temporaries(figures_dir, recursive=False, targets=FIGURE_FILES)
        for figure in content.figures:
            write_readable(figures_dir / figure.name, figure.png)
        write_readable(out, document.encode("utf-8"))
    return Written(out, content.verdict)
