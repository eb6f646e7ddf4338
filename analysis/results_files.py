"""The one definition of an experiment's results files (`results/{experiment}/`): each table's
columns and their types, and the states a planned run can be in.

analysis.aggregate writes the tables with these exact types; analysis.report refuses a file that
lacks one of these columns; docs/DESIGN.md ("Workflow results") describes them, and a test holds
it to this module. Episodes and learning curves keep dqn.run_folder's own schemas, which define
the run folder's files they are gathered from.
"""

from __future__ import annotations

import pyarrow as pa

from dqn.run_folder import EPISODE_SCHEMA, LEARNING_CURVE_SCHEMA

# A planned run is complete (its training finished and wrote every final output) or missing.
RUN_COMPLETE, RUN_MISSING = "complete", "missing"
RUN_STATUSES = (RUN_COMPLETE, RUN_MISSING)

SCORES_SCHEMA = pa.schema([
    ("game", pa.string()), ("display_name", pa.string()), ("agent", pa.string()), ("seed", pa.int64()),
    ("weights", pa.string()), ("mean", pa.float64()), ("std", pa.float64()), ("episodes", pa.int64()),
    ("human_normalized", pa.float64()),
])
RUNS_SCHEMA = pa.schema([
    ("game", pa.string()), ("seed", pa.int64()), ("status", pa.string()), ("frames_done", pa.int64()),
    ("frames_planned", pa.int64()), ("wall_hours", pa.float64()), ("device", pa.string()),
])
DEVIATIONS_SCHEMA = pa.schema([
    ("field", pa.string()), ("paper_value", pa.string()), ("this_value", pa.string()),
    ("unit", pa.string()), ("note", pa.string()),
])
ON_TRACK_SCHEMA = pa.schema([
    ("game", pa.string()), ("seed", pa.int64()), ("frames", pa.int64()), ("kind", pa.string()),
    ("score", pa.float64()), ("reference_min", pa.float64()), ("reference_mean", pa.float64()),
    ("reference_max", pa.float64()), ("standing", pa.string()),
])
# File name -> schema, in the order analysis.aggregate writes them.
TABLES = {
    "scores.parquet": SCORES_SCHEMA,
    "episodes.parquet": EPISODE_SCHEMA,
    "learning_curves.parquet": LEARNING_CURVE_SCHEMA,
    "runs.parquet": RUNS_SCHEMA,
    "deviations.parquet": DEVIATIONS_SCHEMA,
    "on_track.parquet": ON_TRACK_SCHEMA,
}
# The tables the report reads (on_track.parquet it recomputes from the learning curves).
REPORT_TABLES = tuple(name for name in TABLES if name != "on_track.parquet")
PROVENANCE_FILE = "provenance.json"

# A game of the report is complete (every planned seed trained and scored with both weights), missing
# (no DQN score) or partial in between.
GAME_PARTIAL = "partial"
GAME_STATUSES = (RUN_COMPLETE, GAME_PARTIAL, RUN_MISSING)
