"""Where an experiment stands: one row per training run, read from the run folders alone.

    python -m analysis.status results/<experiment> [--config config/demo.yaml] [--watch [SECONDS]]

Each row: game, seed, state, frames done of planned, agent steps/s, ETA, the latest
training-time evaluation score, and whether the run is on track: its evaluations against
nnabla-rl's three seeds under the paper's protocol at the same frames (baselines/on_track.py:
"within 3/3 evaluations; mean so far within", "below since 6M frames; ...", or "not comparable"
naming the hyperparameters that differ from the paper's); a last line gives the experiment's
totals and ETA. It only
reads files (config.json, train.log's last progress line, train_log.parquet, eval/, the final
outputs and the evaluation episodes), so it works the same while the workflow runs locally or on
Slurm, and costs the runs nothing. With --config, the runs the workflow plans but has not started
are listed as queued.

States:
    queued        planned, no run folder yet (with --config)
    starting      a training holds the folder but has logged no progress yet
    random start  before the replay start: uniform random actions fill the replay memory
    learning      after the replay start
    evaluating    training finished; its snapshots' evaluation or the final evaluation (best and
                  final weights, 30 episodes each) is not done yet
    done          the final evaluation's episodes exist
    stopped       no training holds the folder and it is not finished: failed or interrupted
                  (its log, RUN/train.log, says which; the same command resumes it)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from analysis.numbers import number_text
from baselines.on_track import NOT_COMPARABLE, differing_keys, on_track, summary
from baselines.reference import nnabla_curves
from dqn.config import Hyperparameters
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.progress import format_count, format_duration
from dqn.run_folder import FINAL_OUTPUTS, RUN_DIR, WEIGHTS, RunFiles, dqn_episodes_path, read_eval_results, training_running

COLUMNS = ("game", "seed", "state", "frames", "agent steps/s", "ETA", "latest eval score", "on track")


@dataclass
class RunStatus:
    game: str
    seed: int
    state: str
    frames_done: int = 0
    frames_planned: int | None = None
    agent_steps_per_second: float = math.nan
    eta_seconds: float = math.nan
    eval_score: float = math.nan
    eval_frames: int | None = None
    action_repeat_frames: int = 4
    on_track: str = "-"

    def row(self) -> list[str]:
        planned = format_count(self.frames_planned) if self.frames_planned else "?"
        rate = number_text(self.agent_steps_per_second, 0, missing="-")
        eta = format_duration(self.eta_seconds) if self.state in ("random start", "learning") else "-"
        if self.eval_frames is None:
            score = "-"
        else:
            score = number_text(self.eval_score, 1, missing="no episode")
            score += f" at {format_count(self.eval_frames)}"
        return [self.game, str(self.seed), self.state, f"{format_count(self.frames_done)}/{planned}", rate, eta, score,
                self.on_track]


def on_track_phrase(game: str, values: dict, evals) -> str:
    """The run's standing against the same-protocol reference (baselines/on_track.py), in one phrase."""
    try:
        hp = Hyperparameters.from_dict(values)
    except UserError:
        return "-"
    differing = differing_keys(hp)
    if differing:
        return f"{NOT_COMPARABLE} ({', '.join(differing)})"
    try:
        reference = nnabla_curves(game)
    except UserError:
        return "no reference for this game"
    return summary(on_track(evals.assign(game=game), reference))


def last_progress(files: RunFiles) -> tuple[float, float] | None:
    """(fraction done, agent steps/s) from RUN/progress.json (dqn.progress), or None before the first."""
    try:
        numbers = json.loads(files.progress.read_text())
        return numbers["frames"] / numbers["frames_planned"], float(numbers["agent_steps_per_second"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None


def run_status(results: Path, game: str, seed: int) -> RunStatus:
    files = RunFiles(results / RUN_DIR.format(game=game, seed=seed))
    if not files.root.is_dir():
        return RunStatus(game, seed, "queued")
    status = RunStatus(game, seed, "starting")
    replay_start_steps = 0
    values = None
    try:
        values = json.loads(files.config.read_text())["hyperparameters"]
        status.frames_planned = int(values["training_length_frames"])
        status.action_repeat_frames = int(values["action_repeat_frames"])
        replay_start_steps = int(values["replay_start_size_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    evals = read_eval_results(files.root)
    if len(evals):
        status.eval_score = float(evals["eval_score_mean"].iloc[-1])
        status.eval_frames = int(evals["frames"].iloc[-1])
    if values is not None:
        status.on_track = on_track_phrase(game, values, evals)
    progress = last_progress(files)
    if progress is not None and status.frames_planned:
        fraction, status.agent_steps_per_second = progress
        status.frames_done = int(round(fraction * status.frames_planned))
    finished = files.snapshots_complete.is_file()
    if finished and status.frames_planned:
        status.frames_done = status.frames_planned
    if all((files.root / name).is_file() for name in FINAL_OUTPUTS):
        done = all(dqn_episodes_path(results, game, seed, weights).is_file() for weights in WEIGHTS)
        status.state = "done" if done else "evaluating"
        return status
    running = training_running(files)
    if not running:
        status.state = "stopped"
    elif finished:
        status.state = "evaluating"
    elif progress is not None:
        steps_done = status.frames_done / status.action_repeat_frames
        status.state = "random start" if steps_done < replay_start_steps else "learning"
    if status.frames_planned and status.agent_steps_per_second > 0:
        remaining_steps = (status.frames_planned - status.frames_done) / status.action_repeat_frames
        status.eta_seconds = remaining_steps / status.agent_steps_per_second
    return status


def planned_runs(config_path: Path | None, results: Path) -> list[tuple[str, int]]:
    """(game, seed) of every run: the config's plan (if given), then every run folder found."""
    runs: list[tuple[str, int]] = []
    if config_path is not None:
        import yaml

        try:
            config = yaml.safe_load(config_path.read_text()) or {}
            runs = [(str(game), int(seed)) for game in config["games"] for seed in config["seeds"]]
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise UserError(f"cannot read the games and seeds of {str(config_path)!r} ({exc}); pass a workflow "
                            "config such as config/demo.yaml") from None
    pattern = re.compile(r"^seed(\d+)$")
    for folder in sorted((results / "runs" / "dqn").glob("*/seed*")):
        match = pattern.match(folder.name)
        if match and folder.is_dir() and (folder.parent.name, int(match.group(1))) not in runs:
            runs.append((folder.parent.name, int(match.group(1))))
    return runs


def format_status(statuses: list[RunStatus]) -> str:
    rows = [list(COLUMNS)] + [s.row() for s in statuses]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    counts = {state: sum(s.state == state for s in statuses) for state in dict.fromkeys(s.state for s in statuses)}
    planned = sum(s.frames_planned or 0 for s in statuses)
    done = sum(s.frames_done for s in statuses)
    running = [s for s in statuses if s.state in ("random start", "learning") and math.isfinite(s.eta_seconds)]
    summary = f"{len(statuses)} runs: " + ", ".join(f"{n} {state}" for state, n in counts.items())
    summary += f"; {format_count(done)}/{format_count(planned)} frames" if planned else ""
    if running:
        # What is left to train, at the mean rate of the runs training now, as many at once as now.
        rate = sum(s.agent_steps_per_second for s in running) / len(running)
        waiting = [s for s in statuses if s.state in ("queued", "stopped", "starting")]
        typical_frames = max(s.frames_planned or 0 for s in statuses)  # a queued run's plan is not on disk yet
        left_seconds = sum(s.eta_seconds for s in running) + sum(
            ((s.frames_planned or typical_frames) - s.frames_done) / s.action_repeat_frames / rate for s in waiting)
        summary += f"; training ETA {format_duration(left_seconds / len(running))} at {len(running)} at once"
    return "\n".join(lines + ["", summary])


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m analysis.status", description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="the experiment's results folder, e.g. results/demo")
    p.add_argument("--config", default=None, help="the workflow config, to list planned runs not started yet")
    p.add_argument("--watch", nargs="?", type=float, const=10.0, default=None, metavar="SECONDS",
                   help="print again every SECONDS (default 10) until Ctrl-C")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.watch is not None and args.watch <= 0:
        raise UserError(f"--watch must be a positive number of seconds, got {args.watch}")
    results = Path(args.results)
    config = Path(args.config) if args.config else None
    if config is not None and not config.is_file():
        raise UserError(f"config {args.config!r} does not exist; pass a workflow config such as config/demo.yaml")
    while True:
        runs = planned_runs(config, results)
        if not runs:
            print(f"no training runs under {str(results)!r} yet (a workflow writes them to results/<experiment>/runs/)")
        else:
            text = format_status([run_status(results, game, seed) for game, seed in runs])
            print(f"{time.strftime('%H:%M:%S')}  {results}\n{text}" if args.watch else text)
        sys.stdout.flush()
        if args.watch is None:
            return 0
        time.sleep(args.watch)


if __name__ == "__main__":
    cli_main(main)
