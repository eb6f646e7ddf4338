"""Has a network learned state-dependent values? Q-value spread of run snapshots, and their scores.

    python -m benchmarks.q_spread RUN [RUN ...] [--states 500] [--seed 0] [--actions LEFT UPLEFT ...]

For every snapshot of every run folder (all trainings of one game): the Q-values of the same
`--states` states, played by a uniform random policy from the game's start with the Nature
preprocessing (one fixed trajectory per game and seed, so runs are compared on the same inputs),
and the run's training-time evaluation of that snapshot. A network that has learned nothing gives
nearly the same Q-values to every state and action: one greedy action everywhere, a spread over
states near 0. Columns:

- mean max Q: the mean over states of max_a Q(s, a);
- s.d. of max Q over states, and the mean over actions of each action's s.d. over states;
- action gap: the mean over states of (max Q - second largest Q);
- greedy actions: how many distinct greedy actions the states get, and the share of the most common;
- score, episodes: the snapshot's training-time evaluation (mean over completed episodes);
- nnabla-rl seeds at these frames: the same-protocol reference's three scores, where it has a point;
- with `--actions` (names of the game's actions, e.g. Road Runner's six that run left): the group's
  advantage, the mean over states of (mean Q of the group - mean Q of the other actions), and the
  share of states whose greedy action is in the group: whether the network has learned that those
  actions are better (benchmarks.constant_actions says what each action scores held alone).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.common import print_table, setup_process
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("run", "frames", "mean max Q", "s.d. max Q over states", "mean s.d. per action", "action gap",
           "greedy actions", "most common greedy %", "score", "episodes", "nnabla-rl seeds at these frames")
GROUP_COLUMNS = ("group advantage", "greedy in group %")


def random_states(game: str, count: int, seed: int) -> np.ndarray:
    """`count` stacked states of one uniform random trajectory of `game` (new games as needed)."""
    from dqn.atari import AtariEnv, FrameStack

    env = AtariEnv(game, seed=seed)
    stack = FrameStack()
    rng = np.random.default_rng(seed)
    states = [stack.reset(env.reset())]
    while len(states) < count:
        step = env.step(int(rng.integers(env.num_actions)))
        states.append(stack.reset(env.reset()) if step.game_over else stack.push(step.frame))
    return np.stack(states)


def spread(q: np.ndarray) -> dict[str, float]:
    """The columns of one snapshot's Q-values over the states, [states, actions]."""
    ordered = np.sort(q, axis=1)
    greedy = q.argmax(axis=1)
    return {
        "mean_max_q": float(ordered[:, -1].mean()),
        "sd_max_q": float(ordered[:, -1].std()),
        "sd_per_action": float(q.std(axis=0).mean()),
        "action_gap": float((ordered[:, -1] - ordered[:, -2]).mean()),
        "greedy_actions": int(len(np.unique(greedy))),
        "most_common_percent": float(100 * np.bincount(greedy).max() / len(greedy)),
    }


def group_preference(q: np.ndarray, group: Sequence[int]) -> tuple[float, float]:
    """(mean over states of mean Q of `group` - mean Q of the other actions, % of states greedy in `group`)."""
    inside = np.zeros(q.shape[1], bool)
    inside[list(group)] = True
    advantage = q[:, inside].mean(axis=1) - q[:, ~inside].mean(axis=1)
    return float(advantage.mean()), float(100 * inside[q.argmax(axis=1)].mean())


def reference_scores(game: str) -> dict[int, list[float]]:
    """frames -> nnabla-rl's three seeds' training-time evaluation scores (baselines.reference)."""
    from baselines.reference import nnabla_curves

    rows = nnabla_curves(game)
    return {int(f): sorted(g["eval_return_mean"].round(1).tolist()) for f, g in rows.groupby("frames")}


def run_rows(run: Path, states: dict[str, np.ndarray], args: argparse.Namespace) -> list[list]:
    import pandas as pd

    from dqn.policy import DQNPolicy
    from dqn.run_folder import eval_path, list_snapshots

    config = run / "config.json"
    if not config.is_file():
        raise UserError(f"{str(run)!r} is not a run folder (no config.json); pass folders written by dqn.train")
    game = json.loads(config.read_text())["game"]
    if game not in states:
        states[game] = random_states(game, args.states, args.seed)
    reference = reference_scores(game)
    rows = []
    group = None
    if args.actions:
        from dqn.atari import AtariEnv

        names = AtariEnv(game, seed=0).action_names
        unknown = [a for a in args.actions if a not in names]
        if unknown:
            raise UserError(f"{game} has no action {', '.join(unknown)}; its actions: {', '.join(names)}")
        group = [names.index(a) for a in args.actions]
    for frames, path in list_snapshots(run):
        policy = DQNPolicy.from_weights(path)
        q = policy.q_values(states[game])
        s = spread(q)
        score, episodes = float("nan"), 0
        if eval_path(run, frames).is_file():
            evaluation = pd.read_parquet(eval_path(run, frames)).iloc[0]
            score, episodes = float(evaluation["eval_score_mean"]), int(evaluation["eval_episodes"])
        rows.append([run.name, frames, s["mean_max_q"], s["sd_max_q"], s["sd_per_action"], s["action_gap"],
                     s["greedy_actions"], s["most_common_percent"], score, episodes,
                     " / ".join(f"{x:,.0f}" for x in reference.get(frames, [])) or "-",
                     *(group_preference(q, group) if group else ())])
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.q_spread", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders written by dqn.train")
    p.add_argument("--states", type=int, default=500, help="states of the random trajectory (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random trajectory")
    p.add_argument("--actions", nargs="+", default=None, help="a group of the game's actions by name (e.g. LEFT UPLEFT)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.states < 2:
        raise UserError(f"--states must be at least 2, got {args.states}")
    setup_process(1)
    states: dict[str, np.ndarray] = {}
    rows = [row for run in args.runs for row in run_rows(run, states, args)]
    columns = COLUMNS + (GROUP_COLUMNS if args.actions else ())
    print_table(f"Q-values of each snapshot on {args.states} states of a random trajectory (seed {args.seed})", columns, rows)
    return 0


if __name__ == "__main__":
    cli_main(main)
