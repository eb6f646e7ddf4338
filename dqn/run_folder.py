"""One training run's folder, and the results tree of an experiment: every file name, the tables'
columns, the weights format and the config.json, in one place.

    RUN/config.json                    the resolved config (read_existing_config, config_difference)
    RUN/train_log.parquet              one row per evaluation period (TRAIN_LOG_COLUMNS)
    RUN/train.log                      the training's log lines, every attempt appended
    RUN/snapshots/frames_{frames:012d}.pt, RUN/snapshots/COMPLETE
    RUN/eval/frames_{frames:012d}.parquet  one training-time evaluation row (EVAL_COLUMNS)
    RUN/learning_curve.parquet, RUN/final.pt, RUN/best.pt   the final outputs
    RUN/checkpoint/                    dqn.checkpoint's folders
    RUN/progress.json                  the last progress line's numbers (frames, agent steps/s, ETA)
    RUN/.train.lock

An experiment's results (results/<experiment>/) hold each run under RUN_DIR and its evaluation
episodes under DQN_EPISODES and RANDOM_EPISODES (patterns the workflow's rules fill in too).
docs/DESIGN.md lists every column.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import re
import socket
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa

from dqn import fileio
from dqn.config import Hyperparameters
from dqn.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

# The results tree of an experiment, relative to results/<experiment>/.
RUN_DIR = "runs/dqn/{game}/seed{seed}"
DQN_EPISODES = "episodes/dqn/{game}/seed{seed}/{weights}.parquet"
RANDOM_EPISODES = "episodes/random/{game}/seed{seed}.parquet"
# The weights of a run that the final evaluation scores ({weights} of DQN_EPISODES).
WEIGHTS = ("best", "final")
# Files that dqn.train writes last: a run is complete when all of them exist.
FINAL_OUTPUTS = ("final.pt", "best.pt", "learning_curve.parquet")


def run_dir(results: str | os.PathLike, game: str, seed: int) -> Path:
    return Path(results) / RUN_DIR.format(game=game, seed=seed)


def dqn_episodes_path(results: str | os.PathLike, game: str, seed: int, weights: str) -> Path:
    return Path(results) / DQN_EPISODES.format(game=game, seed=seed, weights=weights)


def random_episodes_path(results: str | os.PathLike, game: str, seed: int) -> Path:
    return Path(results) / RANDOM_EPISODES.format(game=game, seed=seed)


# ---------------------------------------------------------------------------- tables
# The Parquet tables, exactly as docs/DESIGN.md lists them.
TRAIN_LOG_SCHEMA = pa.schema([
    ("game", pa.string()), ("seed", pa.int64()), ("frames", pa.int64()), ("agent_steps", pa.int64()),
    ("parameter_updates", pa.int64()), ("epsilon", pa.float64()), ("train_episode_return_mean", pa.float64()),
    ("train_episodes", pa.int64()), ("loss_mean", pa.float64()), ("average_max_q", pa.float64()),
    ("heldout_td_error_abs_mean", pa.float64()), ("agent_steps_per_second", pa.float64()),
    ("wall_seconds", pa.float64()),
])
EVAL_SCHEMA = pa.schema([
    ("game", pa.string()), ("seed", pa.int64()), ("frames", pa.int64()), ("eval_score_mean", pa.float64()),
    ("eval_episodes", pa.int64()), ("eval_frames", pa.int64()), ("wall_seconds", pa.float64()),
])
# The train log with its period's training-time evaluation (learning_curve.parquet).
LEARNING_CURVE_SCHEMA = pa.schema(list(TRAIN_LOG_SCHEMA) + [
    EVAL_SCHEMA.field("eval_score_mean"), EVAL_SCHEMA.field("eval_episodes"), EVAL_SCHEMA.field("eval_frames"),
])
# One evaluation episode (dqn.evaluate, baselines.random_agent).
EPISODE_SCHEMA = pa.schema([
    ("game", pa.string()), ("agent", pa.string()), ("seed", pa.int64()), ("weights", pa.string()),
    ("episode", pa.int64()), ("score", pa.float64()), ("length_frames", pa.int64()),
    ("noop_frames", pa.int64()), ("truncated", pa.bool_()),
])
TRAIN_LOG_COLUMNS = tuple(TRAIN_LOG_SCHEMA.names)
EVAL_COLUMNS = tuple(EVAL_SCHEMA.names)
EPISODE_COLUMNS = tuple(EPISODE_SCHEMA.names)
# Columns that depend on the machine's speed, not on the trajectory.
TIMING_COLUMNS = ("agent_steps_per_second", "wall_seconds")
# Hyperparameters that change how a run is kept safe, not what it computes: a resume may change them.
PLUMBING_HYPERPARAMETERS = ("checkpoint_interval_minutes",)

SNAPSHOT_NAME = re.compile(r"^frames_(\d{12})\.pt$")
EVAL_NAME = re.compile(r"^frames_(\d{12})\.parquet$")


# ---------------------------------------------------------------------------- the run folder
@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.parquet"

    @property
    def train_log_text(self) -> Path:
        return self.root / "train.log"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def snapshots_complete(self) -> Path:
        """Written after the last snapshot: training has finished."""
        return self.snapshots / "COMPLETE"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def learning_curve(self) -> Path:
        return self.root / "learning_curve.parquet"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    @property
    def final(self) -> Path:
        return self.root / "final.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoint"

    @property
    def lock(self) -> Path:
        return self.root / ".train.lock"

    @property
    def progress(self) -> Path:
        """The last progress line's numbers (dqn.progress), rewritten every 30 s while training."""
        return self.root / "progress.json"

    @property
    def evaluator_lock(self) -> Path:
        return self.eval / ".evaluator.lock"

    def snapshot(self, frames: int) -> Path:
        return self.snapshots / f"frames_{frames:012d}.pt"

    def eval_row(self, frames: int) -> Path:
        return self.eval / f"frames_{frames:012d}.parquet"

    def final_outputs(self) -> tuple[Path, ...]:
        return (self.train_log, *(self.root / name for name in FINAL_OUTPUTS))


def snapshot_path(run_dir: str | os.PathLike, frames: int) -> Path:
    return RunFiles(Path(run_dir)).snapshot(frames)


def eval_path(run_dir: str | os.PathLike, frames: int) -> Path:
    return RunFiles(Path(run_dir)).eval_row(frames)


def frames_of(path: Path) -> int | None:
    """12 from 'frames_000000000012.pt' (or .parquet); None for any other name."""
    match = SNAPSHOT_NAME.match(path.name) or EVAL_NAME.match(path.name)
    return int(match.group(1)) if match else None


def list_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(frames, path) of every complete snapshot, by frames. Temporary files (".frames_...tmp") are not listed."""
    folder = RunFiles(Path(run_dir)).snapshots
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := SNAPSHOT_NAME.match(p.name))]
    return sorted(found)


def pending_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    return [(frames, path) for frames, path in list_snapshots(run_dir) if not eval_path(run_dir, frames).exists()]


def training_finished(files: RunFiles, hp: Hyperparameters) -> bool:
    """Training reached its last agent step: the marker written after the final snapshot, and that snapshot."""
    return files.snapshots_complete.is_file() and files.snapshot(last_snapshot_frames(hp)).is_file()


def last_snapshot_frames(hp: Hyperparameters) -> int:
    return hp.training_length_steps * hp.action_repeat_frames


# ---------------------------------------------------------------------------- config.json
def package_versions(distributions: Sequence[str]) -> dict[str, str | None]:
    """Python's version, then each installed distribution's version (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in distributions:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def run_config(game: str, seed: int, preset: str, hp: Hyperparameters, device: str) -> dict[str, Any]:
    versions = package_versions(("torch", "ale-py", "gymnasium", "numpy"))
    return json.loads(json.dumps({
        "game": game,
        "seed": seed,
        "preset": preset,
        "hyperparameters": hp.to_dict(),
        "device": device,
        "versions": versions,
        "hostname": socket.gethostname(),
    }, sort_keys=True, default=str))


# config.json's record of a fast path that failed its check (dqn/speed/self_check.py): the run went
# on on the plain path from that agent step; the report's provenance lists it.
FAST_PATH_FALLBACK = "fast_path_fallback"


def record_fast_path_fallback(files: RunFiles, *, reason: str, agent_steps: int, device: str,
                              check_seconds: float) -> dict[str, Any]:
    """Rewrite config.json with `fast_path` false and the fallback's record (returned)."""
    config = read_existing_config(files) or {}
    record = {"reason": reason, "agent_steps": int(agent_steps), "device": device, "hostname": socket.gethostname(),
              "check_seconds": round(float(check_seconds), 3)}
    fileio.write_json({**config, "fast_path": False, FAST_PATH_FALLBACK: record}, files.config)
    return record


def fast_path_fallback_text(config: dict[str, Any]) -> str | None:
    """One line for the report from a run's config.json, or None when it did not fall back."""
    record = config.get(FAST_PATH_FALLBACK)
    if not isinstance(record, dict):
        return None
    return f"plain path from agent step {int(record.get('agent_steps', 0)):,} on {record.get('device')}: {record.get('reason')}"


def config_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What differs between two configs in what the run computes (None if nothing)."""
    for key in ("game", "seed"):
        if old.get(key) != new[key]:
            return f"{key} {old.get(key)!r} there, {new[key]!r} here"
    old_hp, new_hp = old.get("hyperparameters") or {}, new["hyperparameters"]
    for name in sorted(set(old_hp) | set(new_hp)):
        if name in PLUMBING_HYPERPARAMETERS:
            continue
        if old_hp.get(name) != new_hp.get(name):
            return f"hyperparameter {name!r} is {old_hp.get(name)!r} there, {new_hp.get(name)!r} here"
    return None


def read_existing_config(files: RunFiles) -> dict[str, Any] | None:
    if not files.config.is_file():
        return None
    try:
        return json.loads(files.config.read_text())
    except (OSError, ValueError):
        raise UserError(f"{str(files.config)!r} is unreadable; use a new --out or delete that folder") from None


def read_run_config(run_dir: str | os.PathLike) -> tuple[str, int, Hyperparameters]:
    """(game, seed, hyperparameters with the game's overrides) from DIR/config.json."""
    path = RunFiles(Path(run_dir)).config
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist; --run must be a folder written by dqn.train")
    try:
        config = json.loads(path.read_text())
        game, seed, values = config["game"], int(config["seed"]), config["hyperparameters"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{str(path)!r} is not a config.json of dqn.train ({type(exc).__name__}: {exc})") from None
    return game, seed, Hyperparameters.from_dict(values).for_game(game)


# ---------------------------------------------------------------------------- files written
def write_train_log(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=TRAIN_LOG_SCHEMA)
    fileio.atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def weights_file(learner, hp: Hyperparameters, game: str, frames: int) -> dict[str, Any]:
    """The documented weights format: enough to evaluate with no other file."""
    return {
        "state_dict": {k: v.detach().cpu().clone() for k, v in learner.online.state_dict().items()},
        "network": hp.network,
        "num_actions": learner.num_actions,
        "game": game,
        "frames": int(frames),
        "hyperparameters": hp.to_dict(),
    }


# ---------------------------------------------------------------------------- results read back
def read_eval_results(run_dir: str | os.PathLike) -> "pd.DataFrame":
    """Every DIR/eval/frames_*.parquet row (EVAL_COLUMNS), by frames."""
    import pandas as pd

    folder = RunFiles(Path(run_dir)).eval
    files = sorted(p for p in folder.iterdir() if EVAL_NAME.match(p.name)) if folder.is_dir() else []
    if not files:
        return EVAL_SCHEMA.empty_table().to_pandas()
    results = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    return results.sort_values("frames", kind="stable").reset_index(drop=True)


def learning_curve(run_dir: str | os.PathLike) -> "pd.DataFrame":
    """train_log.parquet with eval_score_mean, eval_episodes and eval_frames of the snapshot at the
    same frames.

    A period whose snapshot has no result yet gets eval_score_mean NaN, eval_episodes 0 and
    eval_frames 0; an evaluation that completed no episode has NaN, 0 and the frames it played.
    """
    import pandas as pd

    log_path = RunFiles(Path(run_dir)).train_log
    if not log_path.is_file():
        raise UserError(f"{str(log_path)!r} does not exist; the run has not finished an evaluation period yet")
    train_log = pd.read_parquet(log_path)
    evals = read_eval_results(run_dir)[["frames", "eval_score_mean", "eval_episodes", "eval_frames"]]
    curve = train_log.merge(evals, on="frames", how="left", validate="many_to_one")
    for column in ("eval_episodes", "eval_frames"):
        curve[column] = curve[column].fillna(0).astype(np.int64)
    curve["eval_score_mean"] = curve["eval_score_mean"].astype(np.float64)
    return curve


def best_choice_score(score_mean: float, episodes: int) -> float:
    """The score that competes for the best snapshot: the mean, or 0 when no episode completed
    (DeepMind's `total_reward / math.max(1, nepisodes)` with a total of 0)."""
    return float(score_mean) if episodes > 0 and math.isfinite(score_mean) else 0.0


def best_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The snapshot DeepMind's code would have kept as its best network: in order of frames, a
    snapshot replaces the best only with a strictly higher `best_choice_score` (ties keep the
    earlier one; no completed episode scores 0). Only snapshots that still exist compete; None
    when none has a result."""
    evals = read_eval_results(run_dir)
    best_frames, best_score = None, -math.inf
    for frames, score, episodes in zip(evals["frames"], evals["eval_score_mean"], evals["eval_episodes"]):
        if not snapshot_path(run_dir, int(frames)).is_file():
            continue
        score = best_choice_score(score, int(episodes))
        if score > best_score:
            best_frames, best_score = int(frames), score
    return None if best_frames is None else snapshot_path(run_dir, best_frames)


def training_running(files: RunFiles) -> bool:
    """Whether a dqn.train holds the run folder's lock (a shared lock attempt fails)."""
    if not files.lock.is_file():
        return False
    try:
        with open(files.lock, "rb") as handle:
            try:
                locked = fileio.try_flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            if locked:
                fileio.try_flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False
