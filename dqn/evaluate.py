"""The paper's final evaluation (Extended Data Table 2) and its CLI, `python -m dqn.evaluate`.

Protocol: 30 episodes, each cut at 18,000 emulator frames (5 minutes), a uniform random no-op
start of 1..30 frames, epsilon-greedy with epsilon 0.05, loss of life not terminal, raw game
score of the whole game. One function, `evaluate`, scores every agent: an agent is a *policy*
(dqn.policy: `DQNPolicy`, or `baselines.random_agent`'s), played by the lockstep runner of
dqn.runner with one slot per episode, so the rows do not depend on the number of workers.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from dqn.cli import (
    EPISODES_OUT_HELP,
    EVALUATION_SEED_HELP,
    add_device,
    add_game,
    add_out,
    add_seed,
    add_workers,
    check_out_file,
    check_out_path,
    check_run_arguments,
    log_to_stderr,
)
from dqn.config import NATURE
from dqn.devices import resolve_device
from dqn.errors import ArgumentParser, UserError, cli_main
from dqn.policy import DQNPolicy, Policy
from dqn.runner import EnvSpec, Slot, run_slots, slot_seeds

if TYPE_CHECKING:  # pandas and pyarrow are imported where rows are built: worker processes never need them
    import pandas as pd

# The protocol's constants are the paper preset's (Extended Data Table 2): defined once, in dqn/presets.py.
FINAL_EVAL_EPSILON = NATURE.eval_epsilon


def evaluate(
    policy: Policy,
    game: str,
    *,
    seed: int,
    episodes: int = NATURE.final_eval_episodes,
    epsilon: float = FINAL_EVAL_EPSILON,
    max_episode_frames: int | None = NATURE.final_eval_max_episode_frames,
    noop_max_frames: int = NATURE.noop_max_frames,
    action_repeat_frames: int = NATURE.action_repeat_frames,
    preprocessing: str = "nature",
    num_workers: int | None = None,
    env_factory: Callable[..., Any] | None = None,
    agent: str | None = None,
    weights: str = "none",
    log: Callable[[str], None] | None = None,
) -> "pd.DataFrame":
    """Score `policy` on `game` by the Extended Data Table 2 protocol: one row per episode
    (dqn.run_folder.EPISODE_COLUMNS), sorted by episode.

    Episode i depends only on (seed, i): its environment seed and exploration generator come
    from SeedSequence([seed, i]), so the rows do not depend on `num_workers` (None: every core;
    0 or 1: in this process). `agent` defaults to `policy.agent`; `weights` labels the rows
    ("best", "final", "none"). `env_factory` replaces dqn.atari.AtariEnv (tests).
    """
    if episodes < 1:
        raise UserError(f"the number of episodes must be at least 1, got {episodes}")
    if seed < 0:
        raise UserError(f"the seed must be 0 or more, got {seed}")
    if not 0.0 <= epsilon <= 1.0:
        raise UserError(f"epsilon must lie in [0, 1], got {epsilon}")
    from dqn.games import check_game

    game = check_game(game)
    spec = EnvSpec(game, action_repeat_frames, noop_max_frames, preprocessing, max_episode_frames, env_factory)
    slots = [Slot(episode, *slot_seeds(seed, episode), max_episodes=1) for episode in range(episodes)]
    result = run_slots(policy, spec, slots, epsilon=epsilon, num_workers=num_workers, log=log, label=f"{game}: ")
    import pandas as pd

    from dqn.run_folder import EPISODE_COLUMNS

    rows = pd.DataFrame(
        {
            "game": [game] * len(result.episodes),
            "agent": [agent or policy.agent] * len(result.episodes),
            "seed": np.full(len(result.episodes), seed, dtype=np.int64),
            "weights": [weights] * len(result.episodes),
            "episode": np.array([r.slot for r in result.episodes], dtype=np.int64),
            "score": np.array([r.score for r in result.episodes], dtype=np.float64),
            "length_frames": np.array([r.length_frames for r in result.episodes], dtype=np.int64),
            "noop_frames": np.array([r.noop_frames for r in result.episodes], dtype=np.int64),
            "truncated": np.array([r.truncated for r in result.episodes], dtype=bool),
        },
        columns=list(EPISODE_COLUMNS),
    )
    return rows


def summarize(rows: "pd.DataFrame") -> str:
    """One line: mean and s.d. of the scores (the table's two numbers), truncated episodes."""
    return (f"{len(rows)} episodes: mean {rows['score'].mean():.1f}, s.d. {rows['score'].std(ddof=0):.1f}, "
            f"{int(rows['truncated'].sum())} cut at the frame limit")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m dqn.evaluate",
        description="Evaluate DQN weights by the Nature protocol: 30 episodes of at most 5 minutes (18,000 frames), "
        "epsilon 0.05, random no-op start; one Parquet row per episode.",
    )
    add_game(parser)
    parser.add_argument("--weights", required=True, help="weights file written by dqn.train (best.pt, final.pt)")
    parser.add_argument("--label", required=True, help="the `weights` label of the rows, e.g. best or final")
    add_seed(parser, help=EVALUATION_SEED_HELP)
    add_out(parser, help=EPISODES_OUT_HELP)
    parser.add_argument("--episodes", type=int, default=None, help="episodes (default: the weights' final_eval_episodes, 30)")
    add_workers(parser)
    add_device(parser, exact=False)
    parser.add_argument("--epsilon", type=float, default=FINAL_EVAL_EPSILON, help="exploration rate (default 0.05)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.fileio import remove_stale_temporaries, removed_if_failed, write_parquet
    from dqn.games import check_game

    # Order: every argument first, then the weights file, and the output folder last, so a
    # refused command has read nothing it did not need and leaves no folder behind.
    args = _parser().parse_args(argv)
    check_run_arguments(seed=args.seed, episodes=args.episodes, epsilon=args.epsilon, workers=args.workers)
    if not args.label.strip():
        raise UserError("--label must not be empty; use best or final")
    game = check_game(args.game)
    out = check_out_file(args.out)
    device = resolve_device(args.device)
    # One intra-op thread: a batch of at most 30 states takes a few ms on one core, and idle
    # OpenMP threads spinning in this process would slow the worker processes that step the games.
    import torch

    torch.set_num_threads(1)
    policy = DQNPolicy.from_weights(args.weights, device)
    if policy.game != game:
        raise UserError(f"weights {args.weights!r} were trained on {policy.game!r}, not {game!r}; pass --game {policy.game}")
    hp = policy.hyperparameters
    episodes = hp.final_eval_episodes if args.episodes is None else args.episodes
    with removed_if_failed() as created:
        check_out_path(out, created=created)
        # Only this command's own leftovers: other files of the folder belong to other jobs.
        remove_stale_temporaries(out.parent, recursive=False, targets=[out.name])
        log_to_stderr(f"{game}: evaluating {args.weights} ({policy.frames:,} frames of training) on {device}, "
                      f"{episodes} episodes, seed {args.seed}")
        rows = evaluate(
            policy, game, seed=args.seed, episodes=episodes, epsilon=args.epsilon,
            max_episode_frames=hp.final_eval_max_episode_frames, noop_max_frames=hp.noop_max_frames,
            action_repeat_frames=hp.action_repeat_frames, preprocessing=hp.preprocessing,
            num_workers=args.workers, weights=args.label, log=log_to_stderr,
        )
        write_parquet(rows, out)
    log_to_stderr(f"{game}: {summarize(rows)}; wrote {out}")
    return 0


if __name__ == "__main__":
    cli_main(main)
