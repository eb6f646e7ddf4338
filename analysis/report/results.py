"""Reading a workflow results folder (`results/{experiment}/`, docs/DESIGN.md "Workflow results").

Every file and column the report needs is checked up front, so a wrong folder or a stale file
fails with one line that names it instead of a KeyError deep in a figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.results_files import PROVENANCE_FILE, REPORT_TABLES, RUN_STATUSES, TABLES
from dqn.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

# The columns the report needs are every column analysis.aggregate writes (analysis.results_files).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {name: tuple(TABLES[name].names) for name in REPORT_TABLES}


@dataclass(frozen=True)
class Results:
    """The tables of one results folder, as read (no row dropped, no value changed)."""

    path: Path
    scores: pd.DataFrame
    episodes: pd.DataFrame
    learning_curves: pd.DataFrame
    runs: pd.DataFrame
    deviations: pd.DataFrame
    provenance: dict[str, Any]

    @property
    def experiment(self) -> str:
        return str(self.provenance.get("experiment") or self.path.name)

    @property
    def reference(self) -> str:
        return str(self.provenance.get("reference") or "nature")


def _read_parquet(folder: Path, name: str) -> "pd.DataFrame":
    # pandas is imported here so that a wrong --results is refused without importing it.
    import pandas as pd

    path = folder / name
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"cannot read {str(path)!r} as Parquet ({type(exc).__name__}); regenerate it with the workflow") from None
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
    if missing:
        raise UserError(f"{str(path)!r} lacks column(s) {', '.join(missing)}; regenerate it with the workflow (docs/DESIGN.md lists the columns)")
    return df


def check_results_folder(folder: str | Path) -> Path:
    """The folder, if it exists and holds every results file; otherwise a one-line UserError naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"results folder {str(folder)!r} does not exist; pass --results results/<experiment> of a workflow run")
    for name in (*REQUIRED_COLUMNS, PROVENANCE_FILE):
        if not (folder / name).is_file():
            raise UserError(
                f"results file {str(folder / name)!r} is missing; run the workflow for this experiment first "
                "(docs/DESIGN.md lists the files)"
            )
    return folder


def load_results(folder: str | Path) -> Results:
    """Read every file of a results folder, or raise a one-line UserError naming what is wrong."""
    folder = check_results_folder(folder)
    tables = {name: _read_parquet(folder, name) for name in REQUIRED_COLUMNS}
    provenance_path = folder / PROVENANCE_FILE
    try:
        provenance = json.loads(provenance_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{str(provenance_path)!r} is not valid JSON ({exc}); regenerate it with the workflow") from None
    if not isinstance(provenance, dict):
        raise UserError(f"{str(provenance_path)!r} must hold a JSON object; regenerate it with the workflow")

    runs = tables["runs.parquet"]
    bad_status = sorted(set(runs["status"].astype(str)) - set(RUN_STATUSES))
    if bad_status:
        raise UserError(f"runs.parquet has unknown status {', '.join(bad_status)}; expected one of {', '.join(RUN_STATUSES)}")
    scores = tables["scores.parquet"]
    keys = ["game", "agent", "seed", "weights"]
    duplicated = scores[scores.duplicated(keys, keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise UserError(
            f"scores.parquet has {len(duplicated)} rows sharing game, agent, seed and weights "
            f"(e.g. {first['game']}/{first['agent']}/seed {first['seed']}/{first['weights']}); regenerate it with the workflow"
        )
    return Results(
        path=folder,
        scores=scores,
        episodes=tables["episodes.parquet"],
        learning_curves=tables["learning_curves.parquet"],
        runs=runs,
        deviations=tables["deviations.parquet"],
        provenance=provenance,
    )
