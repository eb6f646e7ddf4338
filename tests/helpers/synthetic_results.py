"""Synthetic workflow results folders (`results/{experiment}/`) with the shape of docs/DESIGN.md.

Scores are drawn around the paper's numbers so that the report's figures look like a real run;
nothing here is a claim about DQN. Two sets:

- `write_small(path)`: 3 games x 2 seeds, Breakout's DQN runs unfinished (status `missing`, no DQN
  scores, no learning curve) while its random-agent baseline is present.
- `write_full(path)`: all 49 paper games x 3 seeds, every run complete.
- `write_demo(path)`: a first run of the `demo` preset: 2 games x 1 seed, its 2 evaluations per run.

Run `python tests/helpers/synthetic_results.py OUT_DIR [--full | --demo]` to write one for a look in a browser.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.aggregate import value_text
from baselines.reference import human_normalized, reference_table
from dqn.config import PRESETS, deviations
from dqn.fileio import write_json, write_parquet
from dqn.games import PAPER_GAME_IDS, display_name

EPISODES = 30
SMALL_GAMES = ("pong", "breakout", "seaquest")
SMALL_MISSING = ("breakout",)


def _learning_curve(game: str, seed: int, final_score: float, random_score: float, frames_planned: int,
                    points: int, rng: np.random.Generator) -> pd.DataFrame:
    frames = np.linspace(frames_planned / points, frames_planned, points).astype(np.int64)
    progress = 1.0 - np.exp(-4.0 * frames / frames_planned)
    spread = abs(final_score - random_score) * 0.08 + 0.5
    eval_score = random_score + (final_score - random_score) * progress + rng.normal(0.0, spread, points)
    steps = frames // 4
    return pd.DataFrame(
        {
            "game": game,
            "seed": np.int64(seed),
            "frames": frames,
            "agent_steps": steps.astype(np.int64),
            "parameter_updates": (steps // 4).astype(np.int64),
            "epsilon": np.maximum(0.1, 1.0 - 0.9 * frames / (0.4 * frames_planned)),
            "train_episode_return_mean": eval_score * 0.8,
            "train_episodes": rng.integers(1, 40, points).astype(np.int64),
            "loss_mean": np.abs(rng.normal(0.01, 0.002, points)),
            "average_max_q": 0.2 + 4.0 * progress + rng.normal(0.0, 0.1, points),
            "heldout_td_error_abs_mean": np.abs(rng.normal(0.05, 0.01, points)),
            "agent_steps_per_second": rng.normal(150.0, 5.0, points),
            "wall_seconds": np.cumsum(rng.normal(3600.0, 60.0, points)),
            "eval_score_mean": eval_score,
            "eval_episodes": rng.integers(5, 30, points).astype(np.int64),
            "eval_frames": np.full(points, 500_000, dtype=np.int64),
        }
    )


def _episodes(game: str, agent: str, seed: int, weights: str, center: float, spread: float,
              rng: np.random.Generator) -> pd.DataFrame:
    # Scores rounded to whole points, as Atari scores are.
    scores = np.round(rng.normal(center, spread, EPISODES))
    return pd.DataFrame(
        {
            "game": game,
            "agent": agent,
            "seed": np.int64(seed),
            "weights": weights,
            "episode": np.arange(EPISODES, dtype=np.int64),
            "score": scores.astype(np.float64),
            "length_frames": rng.integers(2_000, 18_001, EPISODES).astype(np.int64),
            "noop_frames": rng.integers(1, 31, EPISODES).astype(np.int64),
            "truncated": rng.random(EPISODES) < 0.1,
        }
    )


def write_results(path: str | Path, *, games: Sequence[str], seeds: Sequence[int], missing_games: Sequence[str] = (),
                  missing_runs: Sequence[tuple[str, int]] = (), preset: str = "demo", reference: str = "nature", experiment: str | None = None,
                  curve_points: int = 12, rng_seed: int = 0, frames_planned: int | None = None) -> Path:
    """Write every file of a results folder for `games` x `seeds`.

    Every DQN run of `missing_games`, and each (game, seed) of `missing_runs`, is unfinished: status
    `missing` in runs.parquet, no DQN scores, no learning curve; its random-agent baseline is present.
    `frames_planned`: every run trains this many frames instead of its preset's (a run of a length
    between the demo's and the paper's, as a `--set training_length_frames=...` gives).
    """
    path = Path(path)
    rng = np.random.default_rng(rng_seed)
    table = reference_table(reference).set_index("ale_id")
    random_col, human_col, dqn_col = ("random_score", "human_score", "dqn_mean") if reference == "nature" else ("random", "human", "dqn")
    hp = PRESETS[preset]

    episodes, curves, runs, run_provenance = [], [], [], []
    for game in games:
        # As analysis.aggregate plans a run: a game with its own action repeat keeps the agent steps.
        game_frames_planned = frames_planned or hp.for_game(game).training_length_frames
        paper_random, paper_human, paper_dqn = (float(table.loc[game, c]) for c in (random_col, human_col, dqn_col))
        random_spread = abs(paper_random) * 0.3 + 1.0
        for seed in seeds:
            episodes.append(_episodes(game, "random", seed, "none", paper_random, random_spread, rng))
            missing = game in missing_games or (game, seed) in set(missing_runs)
            if not missing:
                # Some games beat the paper, some fall short: a factor in [0.4, 1.6].
                final_score = paper_random + (paper_dqn - paper_random) * rng.uniform(0.4, 1.6)
                best_score = final_score + abs(final_score - paper_random) * 0.05
                dqn_spread = abs(paper_dqn - paper_random) * 0.2 + 1.0
                episodes.append(_episodes(game, "dqn", seed, "best", best_score, dqn_spread, rng))
                episodes.append(_episodes(game, "dqn", seed, "final", final_score, dqn_spread, rng))
                curves.append(_learning_curve(game, seed, final_score, paper_random, game_frames_planned, curve_points, rng))
                frames_done = game_frames_planned
            elif seed % 2 == 0:
                # An unfinished run: its partial train log, no training-time evaluation yet (as analysis.aggregate writes it).
                partial = _learning_curve(game, seed, paper_dqn, paper_random, game_frames_planned, curve_points, rng)
                partial = partial.iloc[: curve_points // 2].assign(eval_score_mean=np.nan, eval_episodes=np.int64(0),
                                                                 eval_frames=np.int64(0))
                curves.append(partial)
                frames_done = int(partial["frames"].iloc[-1])
            else:
                frames_done = 0  # never started: no log, no device
            started = frames_done > 0
            runs.append(
                {
                    "game": game,
                    "seed": np.int64(seed),
                    "status": "missing" if missing else "complete",
                    "frames_done": np.int64(frames_done),
                    "frames_planned": np.int64(game_frames_planned),
                    "wall_hours": float(rng.uniform(60.0, 90.0) * frames_done / 200_000_000) if started else np.nan,
                    "device": ("cpu" if seed % 2 else "cuda") if started else None,
                }
            )
            if started:
                run_provenance.append({"game": game, "seed": int(seed), "device": runs[-1]["device"], "hostname": f"node{seed}",
                                       "versions": {"torch": "2.13.0", "ale-py": "0.12.1"}})

    episodes_df = pd.concat(episodes, ignore_index=True)
    grouped = episodes_df.groupby(["game", "agent", "seed", "weights"], sort=False)["score"]
    scores_df = grouped.agg(mean="mean", std=lambda s: float(np.std(s, ddof=0)), episodes="count").reset_index()
    scores_df.insert(1, "display_name", scores_df["game"].map(display_name))
    scores_df["episodes"] = scores_df["episodes"].astype(np.int64)
    # As analysis.aggregate does: the random and human scores of the experiment's reference table.
    scores_df["human_normalized"] = human_normalized(scores_df["game"], scores_df["mean"], reference).astype(np.float64)
    scores_df = scores_df[["game", "display_name", "agent", "seed", "weights", "mean", "std", "episodes", "human_normalized"]]

    curves_df = pd.concat(curves, ignore_index=True) if curves else _learning_curve("x", 0, 0, 0, 1, 1, rng).iloc[:0]
    runs_df = pd.DataFrame(runs).astype({"device": "string"})
    deviations_df = pd.DataFrame(
        [
            {"field": d.field, "paper_value": value_text(d.paper_value), "this_value": value_text(d.this_value), "unit": d.unit,
             "note": d.note}
            # As analysis.aggregate writes them: against the experiment's reference paper.
            for d in deviations(hp, reference)
        ],
        columns=["field", "paper_value", "this_value", "unit", "note"],
    )
    provenance = {
        "experiment": experiment or path.name,
        "preset": preset,
        "reference": reference,
        "versions": {"python": "3.11.7", "torch": "2.13.0", "ale-py": "0.12.1", "gymnasium": "1.4.0", "snakemake": "9.1.0",
                     "numpy": "2.4.6", "pandas": "3.1.1", "pyarrow": "21.0.0", "dqn-harness": "0.1.0"},
        "overrides": {},
        "games": list(games),
        "seeds": [int(s) for s in seeds],
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "git_dirty": False,
        "hardware": {"cpu": "AMD EPYC 9654 (16 cores)", "gpu": "NVIDIA H100 80GB HBM3", "memory_gib": 128,
                     "hostname": "login1", "platform": "Linux-6.1-x86_64"},
        "runs": run_provenance,
    }

    path.mkdir(parents=True, exist_ok=True)
    write_parquet(scores_df, path / "scores.parquet")
    write_parquet(episodes_df, path / "episodes.parquet")
    write_parquet(curves_df, path / "learning_curves.parquet")
    write_parquet(runs_df, path / "runs.parquet")
    write_parquet(deviations_df, path / "deviations.parquet")
    write_json(provenance, path / "provenance.json")
    return path


def write_episode_files(results: str | Path, episodes: pd.DataFrame) -> Path:
    """Write `episodes` (the columns of episodes.parquet) as the evaluation files analysis.aggregate reads
    under `results`: one file per DQN (game, seed, weights) and per random-agent (game, seed)."""
    from analysis.aggregate import conform
    from dqn.run_folder import EPISODE_SCHEMA, dqn_episodes_path, random_episodes_path

    results = Path(results)
    for (game, agent, seed, weights), rows in episodes.groupby(["game", "agent", "seed", "weights"], sort=False):
        if agent == "random":
            target = random_episodes_path(results, game, int(seed))
        else:
            target = dqn_episodes_path(results, game, int(seed), weights)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(conform(rows.reset_index(drop=True), EPISODE_SCHEMA), target)
    return results


def write_small(path: str | Path, **kwargs) -> Path:
    """3 games x 2 seeds; Breakout's DQN runs are unfinished."""
    return write_results(path, games=SMALL_GAMES, seeds=(0, 1), missing_games=SMALL_MISSING, **kwargs)


def write_full(path: str | Path, **kwargs) -> Path:
    """All 49 paper games x 3 seeds, every run complete, the nature preset."""
    kwargs.setdefault("preset", "nature")
    return write_results(path, games=PAPER_GAME_IDS, seeds=(0, 1, 2), **kwargs)


DEMO_GAMES = ("pong", "breakout")


def write_demo(path: str | Path, **kwargs) -> Path:
    """The demo preset's first run: 2 games x 1 seed, as many learning-curve points as the preset evaluates."""
    hp = PRESETS["demo"]
    kwargs.setdefault("curve_points", hp.training_length_frames // hp.eval_interval_frames)
    return write_results(path, games=DEMO_GAMES, seeds=(0,), preset="demo", **kwargs)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    writer = write_full if "--full" in sys.argv[2:] else write_demo if "--demo" in sys.argv[2:] else write_small
    writer(out)
    print(out)
