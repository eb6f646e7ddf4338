"""What one training-time evaluation costs, and whether one core keeps up with training.

    python -m benchmarks.eval_cost [--games breakout pong] [--frames 40000] [--preset nature]
        [--gpu-steps-per-second 1500] [--cpu-steps-per-second 150]

Plays `--frames` of the training-time evaluation (`dqn.snapshot_eval.play_for_frames`: one
environment, epsilon 0.05, one torch thread, the preset's network with random weights) on each
game, and projects the seconds of one evaluation of the preset's `eval_length_frames` (125,000
agent steps for Nature). Beside it, the seconds between two snapshots of a training at the given
rates (one snapshot every `eval_interval_frames`): the side evaluator keeps up on one core while
its seconds per evaluation stay below them. The share of a core is evaluation seconds over
snapshot interval; above 1 a training needs that many cores (rounded up) for `--eval-workers`.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Sequence

from benchmarks.common import print_table, setup_process
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("game", "agent steps/s", "s per evaluation", "s between snapshots (GPU)", "cores needed (GPU)",
           "s between snapshots (CPU)", "cores needed (CPU)")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.eval_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--games", nargs="+", default=["breakout", "pong"], help="ALE ROM ids")
    p.add_argument("--frames", type=int, default=40_000, help="frames played per game to measure the rate")
    p.add_argument("--preset", default="nature", choices=("nature", "nips2013"))
    p.add_argument("--gpu-steps-per-second", type=float, default=1_500.0, help="a training's rate on a GPU")
    p.add_argument("--cpu-steps-per-second", type=float, default=150.0, help="a training's rate on a CPU")
    return p


def measure(game: str, frames: int, preset: str) -> float:
    """Agent steps per second of the training-time evaluation on one core."""
    import torch

    from dqn.atari import AtariEnv
    from dqn.config import resolve
    from dqn.networks import build_network
    from dqn.policy import DQNPolicy
    from dqn.snapshot_eval import play_for_frames

    hp = resolve(preset, {}).for_game(game)
    num_actions = AtariEnv(game, seed=0).num_actions
    torch.manual_seed(0)
    network = build_network(hp.network, (hp.agent_history_length_frames, 84, 84), num_actions)
    policy = DQNPolicy(network, num_actions, history_length_frames=hp.agent_history_length_frames)
    started = time.perf_counter()
    result = play_for_frames(policy, game, seed=0, total_frames=frames, epsilon=hp.eval_epsilon,
                             action_repeat_frames=hp.action_repeat_frames, noop_max_frames=hp.noop_max_frames,
                             preprocessing=hp.preprocessing)
    return result.agent_steps / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.config import resolve
    from dqn.games import check_game

    args = build_parser().parse_args(argv)
    games = [check_game(g) for g in args.games]
    if args.frames < 1_000 or min(args.gpu_steps_per_second, args.cpu_steps_per_second) <= 0:
        raise UserError("--frames must be at least 1,000 and the rates positive")
    setup_process(threads=1)
    hp = resolve(args.preset, {})
    rows = []
    for game in games:
        rate = measure(game, args.frames, args.preset)
        eval_seconds = hp.for_game(game).eval_length_steps / rate
        interval_steps = hp.for_game(game).eval_interval_steps
        gpu_interval, cpu_interval = interval_steps / args.gpu_steps_per_second, interval_steps / args.cpu_steps_per_second
        rows.append([game, rate, eval_seconds, gpu_interval, math.ceil(eval_seconds / gpu_interval),
                     cpu_interval, math.ceil(eval_seconds / cpu_interval)])
    print_table(f"Training-time evaluation ({args.preset}: {hp.eval_length_frames:,} frames at epsilon "
                f"{hp.eval_epsilon}, one environment, one core) against the snapshot interval "
                f"({hp.eval_interval_frames:,} frames)", COLUMNS, rows)
    return 0


if __name__ == "__main__":
    cli_main(main)
