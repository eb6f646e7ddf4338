"""The paper's random agent: a uniformly random action chosen at 10 Hz, scored like DQN.

The Nature paper's Methods describe it as choosing a uniform random action at 10 Hz (every 6th
frame) and repeating its last action on the frames between. Here it is a policy played through `dqn.evaluate.evaluate`
with an action repeat of 6 frames: the environment repeats each choice for 6 frames, so the
action can change only on every 6th frame, and the 5-minute cut (18,000 frames) is 3,000
choices. Everything else is the DQN protocol: 30 episodes, random no-op start of 1..30 frames,
loss of life not terminal, raw score.
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from dqn.cli import EPISODES_OUT_HELP, EVALUATION_SEED_HELP, add_game, add_out, add_seed, add_workers
from dqn.config import NATURE
from dqn.errors import ArgumentParser, cli_main

RANDOM_AGENT_ACTION_REPEAT_FRAMES = 6  # 60 Hz / 10 Hz
# The rest of the protocol is the paper preset's (dqn/config.py), the DQN evaluation's own.
RANDOM_AGENT_EPISODES = NATURE.final_eval_episodes
RANDOM_AGENT_MAX_EPISODE_FRAMES = NATURE.final_eval_max_episode_frames
RANDOM_AGENT_NOOP_MAX_FRAMES = NATURE.noop_max_frames


class RandomPolicy:
    """Uniform over the game's minimal action set, from each episode's own generator; ignores
    the states and epsilon (it is epsilon-greedy with epsilon 1)."""

    agent = "random"

    def __init__(self, num_actions: int):
        if num_actions < 1:
            raise ValueError(f"num_actions must be positive, got {num_actions}")
        self.num_actions = int(num_actions)

    def act(self, states: np.ndarray, rngs: Sequence[np.random.Generator], epsilon: float) -> np.ndarray:
        return np.array([rng.integers(self.num_actions) for rng in rngs], dtype=np.int64)


def num_actions_of(game: str) -> int:
    """The size of `game`'s minimal action set."""
    from dqn.atari import AtariEnv

    return AtariEnv(game, seed=0).num_actions


def evaluate_random_agent(game: str, *, seed: int, episodes: int = RANDOM_AGENT_EPISODES,
                          num_workers: int | None = None, env_factory=None, log=None,
                          max_episode_frames: int = RANDOM_AGENT_MAX_EPISODE_FRAMES,
                          num_actions: int | None = None):
    """One row per episode (dqn.run_folder.EPISODE_COLUMNS) with agent "random" and weights "none"."""
    from dqn.evaluate import evaluate

    policy = RandomPolicy(num_actions_of(game) if num_actions is None else num_actions)
    return evaluate(
        policy, game, seed=seed, episodes=episodes, epsilon=1.0,
        max_episode_frames=max_episode_frames, noop_max_frames=RANDOM_AGENT_NOOP_MAX_FRAMES,
        action_repeat_frames=RANDOM_AGENT_ACTION_REPEAT_FRAMES, preprocessing="nature",
        num_workers=num_workers, env_factory=env_factory, agent="random", weights="none", log=log,
    )


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m baselines.random_agent",
        description="Score the paper's random agent (a uniform random action every 6th frame) by the DQN protocol: "
        "30 episodes of at most 5 minutes with a random no-op start; one Parquet row per episode.",
    )
    add_game(parser)
    add_seed(parser, help=EVALUATION_SEED_HELP)
    add_out(parser, help=EPISODES_OUT_HELP)
    parser.add_argument("--episodes", type=int, default=RANDOM_AGENT_EPISODES, help="episodes (default 30)")
    add_workers(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.cli import check_out_file, check_out_path, check_run_arguments, log_to_stderr
    from dqn.evaluate import summarize
    from dqn.fileio import remove_stale_temporaries, removed_if_failed, write_parquet
    from dqn.games import check_game

    # Order: every argument first, then the ROM (for its action set), the output folder last, so
    # a refused command leaves no folder behind.
    args = _parser().parse_args(argv)
    check_run_arguments(seed=args.seed, episodes=args.episodes, workers=args.workers)
    game = check_game(args.game)
    out = check_out_file(args.out)
    num_actions = num_actions_of(game)
    with removed_if_failed() as created:
        check_out_path(out, created=created)
        # Only this command's own leftovers: other files of the folder belong to other jobs.
        remove_stale_temporaries(out.parent, recursive=False, targets=[out.name])
        rows = evaluate_random_agent(game, seed=args.seed, episodes=args.episodes, num_workers=args.workers,
                                     log=log_to_stderr, num_actions=num_actions)
        write_parquet(rows, out)
    log_to_stderr(f"{game}: random agent, {summarize(rows)}; wrote {out}")
    return 0


if __name__ == "__main__":
    cli_main(main)
