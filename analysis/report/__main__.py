"""CLI: python -m analysis.report --results results/{experiment} --out report.html --figures-dir figures/"""

from __future__ import annotations

import argparse
from typing import Sequence

from dqn.cli import add_out, add_seed
from dqn.errors import ArgumentParser, cli_main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m analysis.report",
        description="Write the self-contained HTML report of a results folder and its PNG figures.",
    )
    parser.add_argument("--results", required=True, help="results folder of one experiment, e.g. results/demo")
    add_out(parser, help="HTML file to write, e.g. reports/demo/report.html")
    parser.add_argument("--figures-dir", required=True, help="folder for the PNG figures, e.g. reports/demo/figures")
    parser.add_argument("--bootstrap-reps", type=int, default=2000,
                        help="stratified-bootstrap resamples for the 95%% confidence intervals (default 2000)")
    add_seed(parser, default=0, help="seed of the bootstrap (default 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from analysis.report.build import build_report, check_report_arguments
    from analysis.report.results import check_results_folder

    # Every argument before the results folder is looked at; build_report makes the output folders last.
    check_report_arguments(args.out, args.figures_dir, bootstrap_reps=args.bootstrap_reps, seed=args.seed)
    check_results_folder(args.results)

    out = build_report(args.results, args.out, args.figures_dir, bootstrap_reps=args.bootstrap_reps, seed=args.seed)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli_main(main)
