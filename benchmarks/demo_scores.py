"""Does the demo learn? Train the demo's games for several seeds, evaluate each run's
best-intermediate weights as the workflow does (30 episodes of at most 5 minutes at epsilon 0.05,
random no-op starts) and the random agent on the same seeds, then print one row per game and seed
against the target margin.

    python -m benchmarks.demo_scores --seeds 0 1 2 --out demo-scores

Each training is the workflow's command with the config's preset (`dqn.train --preset demo`);
`--parallel` of them run at once (2 on a 2-core machine, as the demo does). Everything is resumable:
a finished training, evaluation or random-agent file is kept, so re-running prints the table
without training again. The training-time evaluation of each run happens after its training here
(`--no-side-eval`): its seeds come from the run's seed and the snapshot's frames, so the best
weights are the ones the workflow picks.

The target, for every game and seed: the best weights' mean at least TARGET_RATIO times the random
agent's mean, and the difference at least TARGET_STANDARD_ERRORS standard errors (Welch's: the
two 30-episode means' sampling errors combined), so the gap is neither small nor luck.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import pandas as pd
import yaml

from benchmarks.common import format_table
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.games import check_game

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 5.0
TARGET_STANDARD_ERRORS = 5.0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m benchmarks.demo_scores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.yaml",
                        help="workflow config whose games and preset to measure (default: config/demo.yaml)")
    parser.add_argument("--games", nargs="+", help="games to measure instead of the config's")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and episode files (reused)")
    parser.add_argument("--parallel", type=int, default=2, help="trainings at once (one core each)")
    return parser


def run_logged(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        raise UserError(f"{' '.join(command[2:5])} failed (exit {done.returncode}); see {log}")


def measure(game: str, seed: int, preset: str, out: Path) -> None:
    """Train, evaluate the best weights, play the random agent; each step skipped when its output exists."""
    folder = out / game / f"seed{seed}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    log = out / game / f"seed{seed}.log"
    py = [sys.executable, "-m"]
    run_logged([*py, "dqn.train", "--game", game, "--seed", str(seed), "--out", str(folder), "--preset", preset,
                "--threads", "1", "--no-side-eval", "--device", "cpu"], log)
    best = out / game / f"seed{seed}.best.parquet"
    if not best.exists():
        run_logged([*py, "dqn.evaluate", "--game", game, "--weights", str(folder / "best.pt"), "--label", "best",
                    "--seed", str(seed), "--out", str(best), "--workers", "1", "--device", "cpu"], log)
    random = out / game / f"seed{seed}.random.parquet"
    if not random.exists():
        run_logged([*py, "baselines.random_agent", "--game", game, "--seed", str(seed), "--out", str(random),
                    "--workers", "1"], log)


COLUMNS = ("game", "seed", "best: mean (s.d.)", "random: mean (s.d.)", "best / random", "gap in random s.d.",
           "gap in standard errors", "target met")


def margin_row(game: str, seed: int, best: pd.Series, random: pd.Series) -> list[object]:
    """One table row: both means and s.d.s (over episodes), their ratio, and the gap in standard errors."""
    gap = best.mean() - random.mean()
    standard_error = math.sqrt(best.var() / len(best) + random.var() / len(random))
    ratio = best.mean() / random.mean() if random.mean() > 0 else math.inf
    errors = gap / standard_error if standard_error > 0 else math.inf
    met = ratio >= TARGET_RATIO and errors >= TARGET_STANDARD_ERRORS
    return [game, seed, f"{best.mean():,.1f} ({best.std():,.1f})", f"{random.mean():,.1f} ({random.std():,.1f})",
            "inf" if math.isinf(ratio) else f"{ratio:,.1f}x",
            f"{gap / random.std():,.1f}" if random.std() > 0 else "inf", f"{errors:,.1f}", "yes" if met else "NO"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = yaml.safe_load(args.config.read_text())
    except OSError as err:
        raise UserError(f"cannot read --config {args.config}: {err.strerror}") from None
    if config.get("hyperparameters"):
        raise UserError(f"{args.config} overrides hyperparameters; measure a config that uses its preset alone")
    if args.parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {args.parallel}")
    games, preset = [check_game(g) for g in args.games or config["games"]], config["preset"]
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(game, seed) for seed in args.seeds for game in games]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        list(pool.map(lambda job: measure(*job, preset, args.out), jobs))
    rows = []
    for game, seed in [(game, seed) for game in games for seed in args.seeds]:
        best = pd.read_parquet(args.out / game / f"seed{seed}.best.parquet")["score"]
        random = pd.read_parquet(args.out / game / f"seed{seed}.random.parquet")["score"]
        rows.append(margin_row(game, seed, best, random))
    print(f"Demo scores: preset {preset}, best-intermediate weights vs the random agent, 30 episodes each; "
          f"target: >= {TARGET_RATIO:g}x the random mean and >= {TARGET_STANDARD_ERRORS:g} standard errors above it")
    print(format_table(COLUMNS, rows))
    return 0 if all(row[-1] == "yes" for row in rows) else 1


if __name__ == "__main__":
    cli_main(main)
