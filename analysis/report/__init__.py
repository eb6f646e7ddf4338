"""Aggregate metrics, figures and the self-contained HTML report of a results folder.

`python -m analysis.report --results results/demo --out reports/demo/report.html --figures-dir reports/demo/figures`

Modules: `results` reads the folder, `paper` gives the reference paper's columns, `reproductions`
PFRL's columns, where a run stands against the paper and PFRL, and Dopamine's curves, `metrics` holds
the pure aggregate functions, `tables` computes the report's tables and `comparability` whether the
experiment is the paper's, `figures` and `curve_figures` draw (never save); `columns`, `cells` and
`game_tables` lay the tables out as cells, `sections` and `method` compute what the prose quotes,
`page` renders the Jinja2 templates of templates/, `build` ties them together and writes the files
atomically.
"""

__all__ = ["FIGURE_FILES", "build_report"]


def __getattr__(name: str):
    # Imported on first use: matplotlib and seaborn take seconds to import, and the CLI should
    # refuse a wrong --results before paying for them.
    if name in __all__:
        from analysis.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'analysis.report' has no attribute {name!r}")
