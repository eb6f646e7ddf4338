"""What does one action, repeated, score? Each action of a game held at epsilon 0.05 under the evaluation protocol.

    python -m benchmarks.constant_actions GAME [--episodes 3] [--seed 0] [--workers 1]

Early in training (epsilon still near 1, few updates) a network's greedy action is often the
same in every state, so an evaluation at epsilon 0.05 mostly measures what that one action
scores. On some games that is all-or-nothing: on Road Runner the six actions that run left score
700-1,300 in episodes of ~3,400 frames and the twelve others score 0 in 270-750 frames, which is
what separates a 1M-frame evaluation of 0 from one of ~1,000 (docs/ROAD_RUNNER.md). One row per
action: its name, the mean, min and max score over `--episodes` evaluation episodes (no-op starts,
the 18,000-frame cap) and their mean length in frames.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from benchmarks.common import print_table
from dqn.cli import add_workers
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("action", "name", "mean score", "min", "max", "mean frames")


class ConstantPolicy:
    """Always `action`; epsilon-greedy around it with each episode's own generator."""

    agent = "constant"

    def __init__(self, action: int, num_actions: int):
        self.action, self.num_actions = int(action), int(num_actions)

    def act(self, states: np.ndarray, rngs: Sequence[np.random.Generator], epsilon: float) -> np.ndarray:
        return np.array([rng.integers(self.num_actions) if rng.random() < epsilon else self.action for rng in rngs],
                        dtype=np.int64)


def action_rows(game: str, episodes: int, seed: int, workers: int, env_factory=None) -> list[list]:
    from dqn.atari import AtariEnv
    from dqn.evaluate import evaluate

    names = AtariEnv(game, seed=seed).action_names if env_factory is None else env_factory(seed=seed).action_names
    rows = []
    for action, name in enumerate(names):
        played = evaluate(ConstantPolicy(action, len(names)), game, seed=seed, episodes=episodes, num_workers=workers,
                          env_factory=env_factory)
        rows.append([action, name, float(played["score"].mean()), float(played["score"].min()),
                     float(played["score"].max()), float(played["length_frames"].mean())])
    return rows


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.constant_actions", description=__doc__.split("\n\n")[0])
    p.add_argument("game", help="ALE id, e.g. road_runner")
    p.add_argument("--episodes", type=int, default=3, help="evaluation episodes per action (default 3)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    add_workers(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.games import check_game

    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {args.episodes}")
    game = check_game(args.game)
    rows = action_rows(game, args.episodes, args.seed, args.workers or 1)
    print_table(f"{game}: each action held at epsilon 0.05, {args.episodes} evaluation episodes (seed {args.seed})",
                COLUMNS, rows)
    return 0


if __name__ == "__main__":
    cli_main(main)
