"""The check before the big run, read from its run folders: each evaluation against nnabla-rl's seeds, and its cost.

    python -m benchmarks.check_runs RUN [RUN ...]

For run folders written by `dqn.train` (any place, e.g. a check run outside `results/`), two tables:

- every training-time evaluation at frames where the same-protocol reference has a point: the run's
  score and episodes, nnabla-rl's three seeds there and the standing (`baselines.on_track`), then
  the run's mean so far against each seed's mean over the same frames;
- what the run cost: frames and agent steps done, the training's wall hours (train_log's
  wall_seconds, downtime between resumed attempts excluded), the evaluations' wall hours (the sum
  of each evaluation's wall_seconds), and the CPU hours they make with one torch thread for the
  learner and one evaluation worker (a `--threads 1 --eval-workers 1` run keeps one core busy per
  process: its CPU time is its wall time).

A run whose config is not the paper's but for its length is listed as "not comparable", naming the keys;
`--despite KEY...` places it anyway when it differs only in those keys (a variant measured against the
reference, e.g. nnabla-rl's own departures from DeepMind's code: `--despite network_init td_error_clip
min_squared_gradient`), and each of its standings names the keys.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmarks.common import print_table
from dqn.errors import ArgumentParser, UserError, cli_main

STANDING_COLUMNS = ("run", "game", "frames", "score", "episodes", "nnabla-rl seeds", "standing")
COST_COLUMNS = ("run", "frames done", "agent steps", "training wall h", "evaluation wall h", "CPU h",
                "mean agent steps/s")


def read_run(run: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(config.json, train_log.parquet, the evaluations) of one run folder."""
    from dqn.run_folder import RunFiles, read_eval_results

    files = RunFiles(run)
    if not files.config.is_file():
        raise UserError(f"{str(run)!r} is not a run folder (no config.json); pass folders written by dqn.train")
    config = json.loads(files.config.read_text())
    log = pd.read_parquet(files.train_log) if files.train_log.is_file() else pd.DataFrame()
    return config, log, read_eval_results(run)


def standing_rows(run: Path, config: dict, evaluations: pd.DataFrame, despite: Sequence[str] = ()) -> list[list]:
    from baselines.on_track import NOT_COMPARABLE, differing_keys, on_track, reference_points
    from baselines.reference import nnabla_curves
    from dqn.config import Hyperparameters

    game = config["game"]
    differing = differing_keys(Hyperparameters.from_dict(config["hyperparameters"]))
    if set(differing) - set(despite):
        return [[run.name, game, "-", "-", "-", "-", f"{NOT_COMPARABLE}: {', '.join(differing)}"]]
    variant = f" (differs: {', '.join(differing)})" if differing else ""
    reference = nnabla_curves(game)
    rows = on_track(evaluations.assign(game=game, seed=config["seed"]), reference)
    episodes = dict(zip(evaluations["frames"], evaluations["eval_episodes"]))
    seeds = reference_points(reference)
    table = []
    for row in rows.itertuples():
        if row.kind == "evaluation":
            at = " / ".join(f"{x:,.1f}" for x in sorted(seeds.loc[row.frames]))
            table.append([run.name, game, f"{row.frames / 1e6:g}M", f"{row.score:,.1f}",
                          f"{episodes[row.frames]:,}", at, row.standing + variant])
        else:
            table.append([run.name, game, f"mean to {row.frames / 1e6:g}M", f"{row.score:,.1f}", "",
                          f"seed means {row.reference_min:,.1f} to {row.reference_max:,.1f}", row.standing + variant])
    return table


def cost_row(run: Path, log: pd.DataFrame, evaluations: pd.DataFrame) -> list:
    if log.empty:
        return [run.name, 0, 0, 0.0, 0.0, 0.0, "-"]
    last = log.iloc[-1]
    training_h = float(last["wall_seconds"]) / 3600
    evaluation_h = float(evaluations["wall_seconds"].sum()) / 3600
    rate = float(last["agent_steps"]) / float(last["wall_seconds"])
    return [run.name, f"{int(last['frames']):,}", f"{int(last['agent_steps']):,}", f"{training_h:.2f}",
            f"{evaluation_h:.2f}", f"{training_h + evaluation_h:.2f}", f"{rate:.0f}"]


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.check_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders written by dqn.train")
    p.add_argument("--despite", nargs="+", default=[], metavar="KEY",
                   help="hyperparameters a run may differ in from the paper's and still be placed (each standing names them)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dqn.config import field_names

    unknown = sorted(set(args.despite) - set(field_names()))
    if unknown:
        raise UserError(f"--despite {' '.join(unknown)}: not a hyperparameter; name fields of dqn.config.Hyperparameters")
    standings, costs = [], []
    for run in args.runs:
        config, log, evaluations = read_run(run)
        standings += standing_rows(run, config, evaluations, args.despite)
        costs.append(cost_row(run, log, evaluations))
    print_table("Training-time evaluations against nnabla-rl's three seeds at the same frames", STANDING_COLUMNS,
                standings)
    print_table("What each run cost on this machine", COST_COLUMNS, costs)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main(main))
