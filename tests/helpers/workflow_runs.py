"""Running the workflow as a user would, for the tests of the workflow, the demo, the check config
and the Slurm cluster: `snakemake` in a temporary folder, what it printed, its job counts, a config
file written from values, and the tiny experiment whose tables a local and a Slurm run both check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
PAPER_CONFIG = REPO / "config" / "config.yaml"


def snakemake(workdir: Path, *args: str, snakefile: Path = SNAKEFILE, timeout: int = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`snakemake` on the repository's Snakefile with `workdir` as working directory (so results/
    of the repository stay untouched); profiles/default applies, as for a user."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir), *args]
    env = dict(env or os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


def output_of(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


def job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running (or dry-running) jobs."""
    match = re.search(r"Job stats:\njob\s+count\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", text, re.S)
    assert match, f"no job stats in the output:\n{text[-3000:]}"
    counts = {name: int(n) for name, n in (line.split() for line in match.group(1).splitlines())}
    assert sum(counts.values()) == int(match.group(2))
    return counts


def write_config(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


# docs/DESIGN.md, "Workflow results" and the files they gather.
STRING, INT, FLOAT, BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()
EPISODE_COLUMNS = {"game": STRING, "agent": STRING, "seed": INT, "weights": STRING, "episode": INT, "score": FLOAT,
                   "length_frames": INT, "noop_frames": INT, "truncated": BOOL}
EXPECTED_SCHEMAS = {
    "scores.parquet": {"game": STRING, "display_name": STRING, "agent": STRING, "seed": INT, "weights": STRING,
                       "mean": FLOAT, "std": FLOAT, "episodes": INT, "human_normalized": FLOAT},
    "episodes.parquet": EPISODE_COLUMNS,
    "learning_curves.parquet": {"game": STRING, "seed": INT, "frames": INT, "agent_steps": INT,
                                "parameter_updates": INT, "epsilon": FLOAT, "train_episode_return_mean": FLOAT,
                                "train_episodes": INT, "loss_mean": FLOAT, "average_max_q": FLOAT,
                                "heldout_td_error_abs_mean": FLOAT, "agent_steps_per_second": FLOAT,
                                "wall_seconds": FLOAT, "eval_score_mean": FLOAT, "eval_episodes": INT,
                                "eval_frames": INT},
    "runs.parquet": {"game": STRING, "seed": INT, "status": STRING, "frames_done": INT, "frames_planned": INT,
                     "wall_hours": FLOAT, "device": STRING},
    "deviations.parquet": {"field": STRING, "paper_value": STRING, "this_value": STRING, "unit": STRING, "note": STRING},
}
TINY_FRAMES = 2_000
TINY = {
    "experiment": "tiny",
    "preset": "demo",
    # A few hundred agent steps, a tiny replay, two short evaluation episodes.
    "hyperparameters": {
        "training_length_frames": TINY_FRAMES,
        "replay_memory_size_transitions": 1_000,
        "replay_start_size_steps": 100,
        "heldout_states": 50,
        "final_exploration_frame_steps": 200,
        "target_network_update_frequency_steps": 100,
        "eval_interval_frames": 1_000,
        "eval_length_frames": 500,
        "final_eval_episodes": 2,
        "final_eval_max_episode_frames": 1_000,
    },
    "games": ["breakout", "pong"],
    "seeds": [0],
    "device": "cpu",
    "evaluation_workers": 1,
    "report": {"bootstrap_repetitions": 20, "bootstrap_seed": 0},
}

def schema_of(path: Path) -> dict[str, pa.DataType]:
    """Column -> Arrow type; Arrow's two string types (pandas may write either) count as one."""
    return {field.name: STRING if field.type == pa.large_string() else field.type for field in pq.read_schema(path)}
