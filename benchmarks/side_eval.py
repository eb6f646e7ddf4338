"""What training-time evaluation costs a training run: none, beside training, or after it.

    python -m benchmarks.side_eval [--game breakout] [--frames 24000] [--eval-interval-frames 8000]
        [--eval-length-frames 4000] [--learning-start-steps 500] [--rounds 2] [--threads 1]
        [--device auto|cpu|cuda]

Each run is the real `python -m dqn.train` in a subprocess of its own, into a fresh folder, with
the demo preset shrunk to --frames (replay 20,000, learning from --learning-start-steps so that
updates dominate as in a real run), in three modes:

- (a) no training-time evaluation: `--no-side-eval --set eval_length_frames=0`. dqn.train has no
  switch that turns evaluation off; this is the closest honest baseline: no evaluator process,
  and the in-process evaluation after training plays zero frames (it still loads each snapshot
  and writes an empty row, well under a second). Snapshots and train_log rows are written as
  in the other modes: they are part of training.
- (b) side evaluation, dqn.train's default: `python -m dqn.snapshot_eval --follow` beside
  training, one process on one thread.
- (c) evaluation after training: `--no-side-eval`, every snapshot evaluated in-process at the end.

The order of the modes alternates from round to round, so that a drift in the machine's load
hits each mode alike; overheads are ratios to (a) within a round, then the median over rounds.

Measured per run:
- training phase: the run's own clock (`wall_seconds` of the last train_log row), from building
  the parts to the last snapshot: what side evaluation can slow down by competing for cores;
- agent steps/s while learning: over the periods after the first (the first holds the replay
  start's random steps and the evaluator's start-up); in mode (b) every one of them overlaps the
  evaluation of the previous snapshot, as every period but the first of a Nature run does;
- total: wall seconds from launching dqn.train to its exit with every final output written
  (train_log, final.pt, learning_curve, best.pt): interpreter start, the final checkpoint and
  whatever evaluation is left once training ends (in (b) the last snapshot's, plus up to the
  evaluator's 5 s poll; in (c) all of them);
- evaluation seconds: the sum of the snapshots' `wall_seconds` in DIR/eval/.

Settings fixed for every mode: `--compile off` (the compile's one-off cost would dilute every
percentage alike), checkpoint interval 600 minutes (only the end-of-training checkpoint, the same
in each mode), held-out states capped at the replay start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import print_table
from dqn.cli import add_device, add_game, add_seed, add_threads
from dqn.errors import ArgumentParser, UserError, cli_main

PRESET = "demo"
MODES: dict[str, str] = {
    "none": "(a) no training-time evaluation",
    "side": "(b) side evaluation (default)",
    "after": "(c) evaluation after training (--no-side-eval)",
}
COLUMNS = ("mode", "training phase s", "agent steps/s while learning", "total s to final outputs",
           "evaluation s", "training phase vs (a) %", "total vs (a) %", "total vs (a) % per round")


def overrides(args: argparse.Namespace, mode: str) -> list[str]:
    """The --set values of one mode's dqn.train run."""
    from dqn.config import PRESETS

    heldout = min(PRESETS[PRESET].heldout_states, args.learning_start_steps)
    return [f"training_length_frames={args.frames}", f"eval_interval_frames={args.eval_interval_frames}",
            f"eval_length_frames={0 if mode == 'none' else args.eval_length_frames}",
            f"replay_start_size_steps={args.learning_start_steps}", f"heldout_states={heldout}",
            "checkpoint_interval_minutes=600"]


def train_command(args: argparse.Namespace, mode: str, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "dqn.train", "--game", args.game, "--seed", str(args.seed), "--out", str(out),
           "--preset", PRESET, "--device", args.device, "--threads", str(args.threads), "--compile", "off",
           "--set", *overrides(args, mode)]
    return cmd + (["--no-side-eval"] if mode in ("none", "after") else [])


def run_mode(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """One dqn.train run in `mode`, timed from launch to exit, read back from its output folder."""
    import pandas as pd

    from dqn.run_folder import RunFiles, read_eval_results

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory(prefix="dqn-side-eval-") as tmp:
        files = RunFiles(Path(tmp) / "run")
        started = time.perf_counter()
        proc = subprocess.run(train_command(args, mode, files.root), capture_output=True, text=True, env=env, check=False)
        total_seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"dqn.train in mode {mode!r} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        missing = [p.name for p in files.final_outputs() if not p.is_file()]
        if missing:
            raise RuntimeError(f"dqn.train in mode {mode!r} exited without {', '.join(missing)}")
        log = pd.read_parquet(files.train_log)
        evals = read_eval_results(files.root)
    steps, wall = log["agent_steps"].to_numpy(), log["wall_seconds"].to_numpy()
    return {
        "mode": mode,
        "training_phase_seconds": float(wall[-1]),
        "learning_agent_steps_per_second": float((steps[-1] - steps[0]) / (wall[-1] - wall[0])),
        "total_seconds": total_seconds,
        "evaluation_seconds": float(evals["wall_seconds"].sum()),
        "evaluation_frames": int(evals["eval_frames"].sum()),
        "snapshots_evaluated": len(evals),
    }


def _percent_over(value: float, baseline: float) -> float:
    return 100.0 * (value / baseline - 1.0)


def summarize(runs: dict[str, list[dict[str, Any]]]) -> list[list]:
    """Table rows: medians over rounds; overheads are ratios to (a) within each round, then their median."""
    rows = []
    base = runs["none"]
    for mode, label in MODES.items():
        these = runs[mode]
        median = {key: statistics.median(r[key] for r in these)
                  for key in ("training_phase_seconds", "learning_agent_steps_per_second", "total_seconds",
                              "evaluation_seconds")}
        if mode == "none":
            phase, total, per_round = "baseline", "baseline", ""
        else:
            phase = statistics.median(_percent_over(r["training_phase_seconds"], b["training_phase_seconds"])
                                      for r, b in zip(these, base))
            totals = [_percent_over(r["total_seconds"], b["total_seconds"]) for r, b in zip(these, base)]
            # Signed, one decimal: the sign is the finding, more digits would be noise.
            phase, total = f"{phase:+.1f}", f"{statistics.median(totals):+.1f}"
            per_round = ", ".join(f"{x:+.1f}" for x in totals)
        rows.append([label, median["training_phase_seconds"], median["learning_agent_steps_per_second"],
                     median["total_seconds"], median["evaluation_seconds"], phase, total, per_round])
    return rows


def nature_projection(runs: dict[str, list[dict[str, Any]]], action_repeat_frames: int) -> dict[str, float]:
    """Evaluation time as a share of training time at the Nature preset's budgets, from this run's rates:
    training's agent steps/s while learning in (a), evaluation's agent steps/s alone in (c)."""
    from dqn.config import NATURE

    training_rate = statistics.median(r["learning_agent_steps_per_second"] for r in runs["none"])
    evaluation_rate = statistics.median(r["evaluation_frames"] / action_repeat_frames / r["evaluation_seconds"]
                                        for r in runs["after"])
    steps_ratio = NATURE.eval_length_steps / NATURE.eval_interval_steps
    return {"training_rate": training_rate, "evaluation_rate": evaluation_rate,
            "evaluation_share": steps_ratio * training_rate / evaluation_rate, "steps_ratio": steps_ratio}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.side_eval", description=__doc__.split("\n\n")[0])
    add_game(p, default="breakout")
    add_seed(p, default=0)
    p.add_argument("--frames", type=int, default=24_000, help="training length of every run (default 6,000 agent steps)")
    p.add_argument("--eval-interval-frames", type=int, default=8_000, help="frames between snapshots")
    p.add_argument("--eval-length-frames", type=int, default=4_000,
                   help="frames of play per snapshot (default: half the interval, the Nature preset's ratio)")
    p.add_argument("--learning-start-steps", type=int, default=500, help="the replay start, in agent steps")
    p.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternating their order")
    add_threads(p, help="torch threads of training (dqn.train --threads)")
    add_device(p, help="dqn.train --device")
    return p


def check(args: argparse.Namespace) -> int:
    """Refuse budgets that cannot give the table; return the game's action repeat in frames."""
    from dqn.config import parse_overrides, resolve
    from dqn.games import check_game

    if args.rounds < 1 or args.threads < 1:
        raise UserError("--rounds and --threads must be at least 1")
    if args.eval_length_frames < 1:
        raise UserError("--eval-length-frames must be at least 1: mode (a) already plays none")
    hp = resolve(PRESET, parse_overrides(overrides(args, "side"))).for_game(check_game(args.game))
    if hp.training_length_steps // hp.eval_interval_steps < 2:
        raise UserError(f"--frames ({args.frames:,}) must hold at least two evaluation periods of "
                        f"--eval-interval-frames ({args.eval_interval_frames:,}): the rate while learning "
                        "is taken over the periods after the first")
    if args.learning_start_steps >= hp.eval_interval_steps:
        raise UserError(f"--learning-start-steps ({args.learning_start_steps:,}) must end within the first "
                        f"evaluation period ({hp.eval_interval_steps:,} agent steps)")
    return hp.action_repeat_frames


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    action_repeat_frames = check(args)
    started = time.monotonic()
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for r in range(args.rounds):
        for mode in (list(MODES) if r % 2 == 0 else list(MODES)[::-1]):
            result = run_mode(args, mode)
            runs[mode].append(result)
            print(f"round {r + 1}: {MODES[mode]}: training phase {result['training_phase_seconds']:.1f} s, "
                  f"{result['learning_agent_steps_per_second']:.1f} agent steps/s while learning, total "
                  f"{result['total_seconds']:.1f} s, {result['snapshots_evaluated']} snapshots evaluated in "
                  f"{result['evaluation_seconds']:.1f} s", file=sys.stderr, flush=True)
    print_table(f"Training-time evaluation on {args.game}: {args.rounds} round(s), {args.frames:,} frames, a snapshot "
                f"every {args.eval_interval_frames:,} frames evaluated for {args.eval_length_frames:,} frames, learning "
                f"from agent step {args.learning_start_steps:,}, {args.threads} torch thread(s)", COLUMNS, summarize(runs))
    projection = nature_projection(runs, action_repeat_frames)
    print(f"\nAt the Nature preset's budgets ({projection['steps_ratio']:g} evaluation agent steps per training step), "
          f"training at {projection['training_rate']:.1f} agent steps/s and evaluating at "
          f"{projection['evaluation_rate']:.0f} agent steps/s on one core (both as measured in (a) and (c); the "
          "latter counts each snapshot's start-up, which a 500,000-frame evaluation amortises), evaluation takes "
          f"at most {100 * projection['evaluation_share']:.1f}% of training's time: what (c) adds, and the share "
          "of a spare core that (b) keeps busy.")
    print(f"(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    cli_main(main)
