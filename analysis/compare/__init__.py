"""Two experiments compared game by game: `python -m analysis.compare results/A results/B --out reports/compare/A_vs_B.html`.

Modules: `inputs` reads both results folders and keeps the games and seeds they share, `configs`
lists the config keys that differ, `statistics` holds the pure functions (Mann-Whitney probability,
probability of improvement, performance profiles, the paired stratified bootstrap), `tables`
computes the page's numbers and verdict, `figures` draws, `page` renders, `build` writes the files.
"""

__all__ = ["build_comparison"]


def __getattr__(name: str):
    # Imported on first use: matplotlib takes seconds to import, and the CLI should refuse a wrong
    # folder before paying for it.
    if name in __all__:
        from analysis.compare import build

        return getattr(build, name)
    raise AttributeError(f"module 'analysis.compare' has no attribute {name!r}")
