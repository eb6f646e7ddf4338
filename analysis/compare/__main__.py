"""CLI: python -m analysis.compare results/A results/B --out reports/compare/A_vs_B.html"""

from __future__ import annotations

import argparse
from typing import Sequence

from dqn.cli import add_out, add_seed
from dqn.errors import ArgumentParser, cli_main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m analysis.compare",
        description="Compare two experiments game by game: B (the one with the change) against A. Writes a "
                    "self-contained HTML page and its PNG figures.",
    )
    parser.add_argument("a", help="results folder of the experiment compared with, e.g. results/nature")
    parser.add_argument("b", help="results folder of the experiment with the change, e.g. results/lr_high")
    add_out(parser, help="HTML file to write, e.g. reports/compare/nature_vs_lr_high.html")
    parser.add_argument("--figures-dir", default=None,
                        help="folder for the PNG figures (default: beside --out, named after it: A_vs_B_figures/)")
    parser.add_argument("--weights", default="best", choices=("best", "final"),
                        help="weights of the verdicts, aggregates and profiles (default best, as the report)")
    parser.add_argument("--bootstrap-reps", type=int, default=2000,
                        help="bootstrap resamples of the 95%% intervals (default 2000)")
    add_seed(parser, default=0, help="seed of the bootstrap (default 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from analysis.compare.build import build_comparison, check_arguments
    from analysis.report.results import check_results_folder

    # Every argument and both folders are looked at before anything heavy is imported or computed.
    check_arguments(args.out, args.figures_dir, weights=args.weights, reps=args.bootstrap_reps, seed=args.seed)
    check_results_folder(args.a)
    check_results_folder(args.b)
    written = build_comparison(args.a, args.b, args.out, figures_dir=args.figures_dir, weights=args.weights,
                               reps=args.bootstrap_reps, seed=args.seed)
    print(written.verdict)
    print(f"wrote {written.page}")
    return 0


if __name__ == "__main__":
    cli_main(main)
