"""The workflow's results tables, built from whatever run folders and episode files exist.

    python -m analysis.aggregate --results results/nature --seeds 0 1 2 [--games breakout pong] \\
        [--preset nature] [--set key=value ...] [--games-sheet config/games.tsv] [--out DIR]

Reads the fixed layout under --results (docs/DESIGN.md, "Workflow results"):

    runs/dqn/{game}/seed{seed}/                            a training folder of dqn.train
    episodes/dqn/{game}/seed{seed}/{best,final}.parquet    final evaluations (dqn.evaluate)
    episodes/random/{game}/seed{seed}.parquet              the random agent (baselines.random_agent)

and writes scores, episodes, learning_curves, runs and deviations (Parquet) and provenance.json
beside them (or into --out: a look at a running experiment that leaves the workflow's files alone). Only the planned games and seeds are read. A planned run without a finished training
is `missing` in runs.parquet, with the frames and wall time of its partial train log and its
partial learning curve, so a report can be drawn while runs go on or after some failed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from baselines.on_track import experiment_on_track
from analysis.report.paper import get_reference, human_normalized, paper_columns
from dqn import fileio
from dqn.cli import add_out
from dqn.config import PRESET_REFERENCE, PRESETS, Hyperparameters, deviations, parse_overrides, resolve
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.games import PAPER_GAME_IDS
from dqn.games import display_name as paper_display_name
from analysis.numbers import format_int
from analysis.provenance import provenance, read_json
from analysis.results_files import (
    DEVIATIONS_SCHEMA,
    ON_TRACK_SCHEMA,
    PROVENANCE_FILE,
    RUN_COMPLETE,
    RUN_MISSING,
    RUNS_SCHEMA,
    SCORES_SCHEMA,
    TABLES,
)
from dqn.run_folder import (
    EPISODE_SCHEMA,
    FINAL_OUTPUTS,
    LEARNING_CURVE_SCHEMA,
    WEIGHTS,
    RunFiles,
    dqn_episodes_path,
    learning_curve,
    random_episodes_path,
    run_dir,
)

RANDOM_WEIGHTS = "none"


# ---------------------------------------------------------------------------- reading
def conform(df: pd.DataFrame | None, schema: pa.Schema) -> pd.DataFrame:
    """`df` with exactly the schema's columns, in order and of its types (an empty table if None)."""
    if df is None or len(df) == 0:
        return pa.Table.from_pylist([], schema=schema).to_pandas()
    missing = [name for name in schema.names if name not in df.columns]
    if missing:
        raise UserError(f"a results file lacks column(s) {', '.join(missing)}; regenerate it (docs/DESIGN.md lists the columns)")
    return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False).to_pandas()


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"cannot read {str(path)!r} as Parquet ({type(exc).__name__}); delete it and re-run its job") from None


# ---------------------------------------------------------------------------- episodes and scores
def read_episodes(results: str | os.PathLike, games: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """Every evaluation episode of the planned runs that exists: DQN (best, final) then random."""
    frames = []
    for game in games:
        for seed in seeds:
            paths = [dqn_episodes_path(results, game, seed, w) for w in WEIGHTS] + [random_episodes_path(results, game, seed)]
            frames += [conform(_read(p), EPISODE_SCHEMA) for p in paths if p.is_file()]
    if not frames:
        return conform(None, EPISODE_SCHEMA)
    episodes = pd.concat(frames, ignore_index=True)
    return episodes.sort_values(["game", "agent", "seed", "weights", "episode"], kind="stable", ignore_index=True)


def check_reference_games(games: Sequence[str], reference: str) -> None:
    """Refuse a game without random and human scores in the reference paper's table: its
    human-normalized score would be undefined, and a NaN would silently leave it out of the means."""
    ref = get_reference(reference)
    paper = paper_columns(reference).set_index("game")
    for game in games:
        if game not in paper.index or paper.loc[game, ["random_score", "human_score"]].isna().any():
            raise UserError(
                f"game {game!r} has no random and human scores in {ref.table_label} of the {ref.label} (reference "
                f"{reference!r}), so it has no human-normalized score; plan only that table's games: "
                f"{', '.join(paper.index)}"
            )


def normalize_scores(games: Sequence[str], scores: Sequence[float], reference: str = "nature") -> np.ndarray:
    """100 x (score - random) / (human - random) per game, in percent, with the random and human
    columns of the reference paper's table exactly as the report takes them (analysis.report.paper):
    Extended Data Table 2 for "nature", Table 1 of the 2013 paper for "nips2013". A game without
    a row there is a UserError (check_reference_games)."""
    games = [str(g) for g in games]
    check_reference_games(games, reference)
    paper = paper_columns(reference).set_index("game")
    return human_normalized(np.asarray(scores, dtype=np.float64), paper.loc[games, "random_score"].to_numpy(),
                            paper.loc[games, "human_score"].to_numpy())


def scores_table(episodes: pd.DataFrame, display_names: Mapping[str, str] | None = None,
                 reference: str = "nature") -> pd.DataFrame:
    """One row per (game, agent, seed, weights): mean and population s.d. (ddof=0) of the raw
    scores, the episode count, and the human-normalized mean in percent against the `reference`
    paper's random and human scores (normalize_scores; a game outside its table is a UserError)."""
    if len(episodes) == 0:
        return conform(None, SCORES_SCHEMA)
    names = dict(display_names or {})
    grouped = episodes.groupby(["game", "agent", "seed", "weights"], sort=True)["score"]
    scores = grouped.agg(mean="mean", std=lambda s: float(np.std(s.to_numpy(), ddof=0)), episodes="count").reset_index()
    scores["display_name"] = [names.get(g) or paper_display_name(g) for g in scores["game"]]
    scores["human_normalized"] = normalize_scores(scores["game"], scores["mean"], reference)
    return conform(scores, SCORES_SCHEMA)


# ---------------------------------------------------------------------------- runs and learning curves
def run_is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FINAL_OUTPUTS)


def partial_learning_curve(folder: Path) -> pd.DataFrame | None:
    """The learning curve of an unfinished run: its train log joined with the snapshot evaluations
    done so far (dqn.snapshot_eval), or the train log alone with no evaluation yet."""
    files = RunFiles(folder)
    if not files.train_log.is_file():
        return None
    try:
        return learning_curve(folder)
    except Exception:  # an unfinished run may hold a half-evaluated snapshot; the log still counts
        log = _read(files.train_log)
        log["eval_score_mean"] = math.nan
        log["eval_episodes"] = 0
        log["eval_frames"] = 0
        return log


def read_learning_curves(results: str | os.PathLike, games: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """Every planned run's learning curve: the finished curve, else the partial one, else nothing."""
    frames = []
    for game in games:
        for seed in seeds:
            folder = run_dir(results, game, seed)
            curve_path = RunFiles(folder).learning_curve
            curve = _read(curve_path) if curve_path.is_file() else partial_learning_curve(folder)
            if curve is not None and len(curve):
                frames.append(conform(curve, LEARNING_CURVE_SCHEMA))
    if not frames:
        return conform(None, LEARNING_CURVE_SCHEMA)
    return pd.concat(frames, ignore_index=True).sort_values(["game", "seed", "frames"], kind="stable", ignore_index=True)


def runs_table(results: str | os.PathLike, games: Sequence[str], seeds: Sequence[int], hp: Hyperparameters) -> pd.DataFrame:
    """One row per planned (game, seed): complete or missing, frames done and planned (with the
    game's own action repeat), wall hours, device."""
    rows = []
    for game in games:
        for seed in seeds:
            files = RunFiles(run_dir(results, game, seed))
            complete = run_is_complete(files.root)
            log_path = files.learning_curve if complete else files.train_log
            log = _read(log_path) if log_path.is_file() else None
            last = log.sort_values("frames").iloc[-1] if log is not None and len(log) else None
            config = read_json(files.config) or {}
            rows.append({
                "game": game,
                "seed": int(seed),
                "status": RUN_COMPLETE if complete else RUN_MISSING,
                "frames_done": int(last["frames"]) if last is not None else 0,
                "frames_planned": int(hp.for_game(game).training_length_frames),
                "wall_hours": float(last["wall_seconds"]) / 3600.0 if last is not None else math.nan,
                "device": config.get("device"),
            })
    return conform(pd.DataFrame(rows, columns=RUNS_SCHEMA.names), RUNS_SCHEMA)


# ---------------------------------------------------------------------------- deviations
def value_text(value: Any) -> str:
    """A hyperparameter value as one readable cell (mixed types share a string column)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(f"{game}: {frames}" for game, frames in value) or "none"
    return str(value)


def deviations_table(hp: Hyperparameters, reference: str = "nature") -> pd.DataFrame:
    """Every hyperparameter that differs from the reference paper's, generated from the values."""
    rows = [
        {"field": d.field, "paper_value": value_text(d.paper_value), "this_value": value_text(d.this_value),
         "unit": d.unit, "note": d.note}
        for d in deviations(hp, reference)
    ]
    return conform(pd.DataFrame(rows, columns=DEVIATIONS_SCHEMA.names), DEVIATIONS_SCHEMA)


# ---------------------------------------------------------------------------- all tables
def aggregate(results: str | os.PathLike, games: Sequence[str], seeds: Sequence[int], *, preset: str = "nature",
              overrides: Mapping[str, Any] | None = None,
              display_names: Mapping[str, str] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The six tables (file name -> DataFrame) and the provenance of the planned runs under `results`.

    Scores are human-normalized against the preset's reference paper (PRESET_REFERENCE), the
    paper its deviations are measured against; a planned game outside that paper's table is a
    UserError, before any file is read.
    """
    overrides = dict(overrides or {})
    hp = resolve(preset, overrides)
    reference = PRESET_REFERENCE.get(preset, "nature")
    check_reference_games(games, reference)
    episodes = read_episodes(results, games, seeds)
    curves = read_learning_curves(results, games, seeds)
    tables = {
        "scores.parquet": scores_table(episodes, display_names, reference),
        "episodes.parquet": episodes,
        "learning_curves.parquet": curves,
        "runs.parquet": runs_table(results, games, seeds, hp),
        "deviations.parquet": deviations_table(hp, reference),
        # Empty unless the experiment is the paper's but for its length (baselines/on_track.py).
        "on_track.parquet": conform(experiment_on_track(curves, hp), ON_TRACK_SCHEMA),
    }
    info = provenance(results, preset=preset, reference=reference, overrides=overrides, games=games, seeds=seeds,
                      experiment=Path(results).resolve().name)
    return tables, info


def write_tables(results: str | os.PathLike, tables: Mapping[str, pd.DataFrame], info: Mapping[str, Any]) -> None:
    """Each table through dqn.fileio (temp name + rename), with its schema's exact column types."""
    results = Path(results)
    for name, df in tables.items():
        table = pa.Table.from_pandas(df, schema=TABLES[name], preserve_index=False)
        fileio.atomic_write(results / name, lambda tmp, table=table: pq.write_table(table, tmp))
    fileio.write_json(dict(info), results / PROVENANCE_FILE)


def read_display_names(path: str | os.PathLike) -> dict[str, str]:
    """ale_id -> display_name from a games sheet (config/games.tsv)."""
    fileio.check_input_file(path, "games sheet")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"ale_id", "display_name"} <= set(sheet.columns):
        raise UserError(f"games sheet {str(path)!r} needs the columns ale_id and display_name (tab-separated)")
    return dict(zip(sheet["ale_id"], sheet["display_name"]))


# ---------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m analysis.aggregate", description="Build the results tables of one experiment.")
    p.add_argument("--results", required=True, help="results/{experiment} folder of the workflow")
    p.add_argument("--games", nargs="+", default=None,
                   help="planned games, ALE ids (default: every game of --games-sheet, else the paper's 49)")
    p.add_argument("--seeds", required=True, nargs="+", type=int, help="planned seeds")
    p.add_argument("--preset", default="nature", help=f"hyperparameter preset of the runs: {', '.join(sorted(PRESETS))}")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="hyperparameter overrides of the runs")
    p.add_argument("--games-sheet", default=None, help="TSV with ale_id and display_name (default: the paper's names)")
    add_out(p, required=False, help="folder for the tables (default: the --results folder)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Order: every argument first, then the inputs, the output folder last, so a refused command
    # leaves no folder behind.
    args = build_parser().parse_args(argv)
    if any(seed < 0 for seed in args.seeds):
        raise UserError(f"--seeds must be zero or positive, got {args.seeds}")
    overrides = parse_overrides(args.set)
    resolve(args.preset, overrides)  # a bad --preset or --set fails here, before any file is read
    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"results folder {str(results)!r} does not exist; pass --results results/<experiment>")
    names = read_display_names(args.games_sheet) if args.games_sheet else None
    games = args.games or list(names or PAPER_GAME_IDS)
    with fileio.removed_if_failed() as created:
        out = fileio.check_output_dir(args.out or results, created=created)
        # Only this command's own leftovers: the folder also holds the runs and episodes of other jobs.
        fileio.remove_stale_temporaries(out, recursive=False, targets=[*TABLES, PROVENANCE_FILE])
        tables, info = aggregate(results, games, args.seeds, preset=args.preset,
                                 overrides=overrides, display_names=names)
        write_tables(out, tables, info)
    runs = tables["runs.parquet"]
    missing = runs[runs["status"] == RUN_MISSING]
    print(f"{out}: {len(runs) - len(missing)}/{len(runs)} runs complete, "
          f"{len(tables['episodes.parquet'])} evaluation episodes", file=sys.stderr)
    for row in missing.itertuples():
        print(f"  missing: {row.game} seed {row.seed} ({format_int(row.frames_done)}/{format_int(row.frames_planned)} frames)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    cli_main(main)
