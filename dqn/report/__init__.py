"""Aggregate metrics, figures and the self-contained HTML report of a results folder.

`python -m dqn.report --results results/demo --out reports/demo/report.html --figures-dir reports/demo/figures`

Modules: `results` reads the folder, `paper` gives the reference paper's columns, `metrics` holds
the pure aggregate functions, `tables` computes the report's tables, `figures` draws (never
saves), `html` renders, `build` ties them together and writes the files atomically.
"""

from dqn.report.build import FIGURE_FILES, build_report

__all__ = ["FIGURE_FILES", "build_report"]
