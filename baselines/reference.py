"""The papers' reference scores and the human-normalized score.

`nature_table()` is Extended Data Table 2 of Mnih et al. (2015) for the 49 games, exactly as
printed: random, human, and DQN mean and s.d. over 30 episodes, with the ale-py ROM id of each
game. `nips2013_table()` is Table 1 of Mnih et al. (2013). Both ship as package data; see
`data/CITATION.md` for the citations and how every number was checked.

Three public reproductions ship beside them, each measured under its own protocol (see
`data/CITATION.md` and the licence notices in `data/LICENSES.md`): `pfrl_table()`, PFRL's
re-run of the Nature protocol on the 49 games (one score per game, the mean over its seeds),
`nnabla_curves()`, nnabla-rl's training-time evaluations under the paper's own protocol (3 seeds,
every 1M frames up to 200M: the same measurement as this harness's learning curves), and
`dopamine_curves()`, Dopamine's DQN training returns (5 runs x 199 iterations of 1M frames per
game, with sticky actions: a learning-curve shape, not a score to normalize). A game a table
lacks is a UserError, as for the papers' tables, never NaN.

Human-normalized score = 100 x (agent - random) / (human - random), with the random and human
columns of the chosen paper's table. The Nature table is the default: the later 57-game human
table that post-2016 papers use differs for 33 of these 49 games and moves the median. The 2013
paper defines no normalized score, but its Table 1 prints a random and a human score (an
expert's median) for each of its 7 games, so the same formula applies to them with no gap to
fill; the Nature table's random and human scores for those games differ and are not mixed in.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from dqn.errors import UserError

_FILES = {
    "nature": "nature2015_extended_data_table2.csv",
    "nips2013": "nips2013_table1.csv",
}
# (random column, human column) of each table.
_BASELINE_COLUMNS = {
    "nature": ("random_score", "human_score"),
    "nips2013": ("random", "human"),
}


@lru_cache(maxsize=None)
def _load(table: str) -> pd.DataFrame:
    with resources.files("baselines").joinpath("data", _FILES[table]).open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, dtype={"game": str, "ale_id": str})
    return df


def _check_table(table: str) -> str:
    if table not in _FILES:
        raise UserError(f"unknown reference table {table!r}; valid tables: {', '.join(_FILES)}")
    return table


def nature_table() -> pd.DataFrame:
    """Extended Data Table 2: game, ale_id, random_score, human_score, dqn_mean, dqn_std (49 rows)."""
    return _load("nature").copy()


def nips2013_table() -> pd.DataFrame:
    """Table 1 of the 2013 paper: game, ale_id, random, sarsa, contingency, dqn, human,
    hneat_best, hneat_pixel, dqn_best (7 rows)."""
    return _load("nips2013").copy()


def reference_table(table: str = "nature") -> pd.DataFrame:
    """The table named `table` ("nature" or "nips2013")."""
    return _load(_check_table(table)).copy()


@lru_cache(maxsize=None)
def _baselines(table: str) -> dict[str, tuple[float, float]]:
    random_col, human_col = _BASELINE_COLUMNS[table]
    df = _load(table)
    return {g: (float(r), float(h)) for g, r, h in zip(df["ale_id"], df[random_col], df[human_col])}


def _lookup(game: str, table: str) -> tuple[float, float]:
    baselines = _baselines(table)
    key = str(game).strip().lower().replace("-", "_")
    if key not in baselines:
        raise UserError(
            f"no {table} reference scores for game {game!r}; games with reference scores: {', '.join(baselines)}"
        )
    return baselines[key]


# ---------------------------------------------------------------- the published reproductions

_PFRL_FILE = "pfrl_dqn_reproduction.csv"
_DOPAMINE_FILE = "dopamine_dqn_training_returns.csv"
_NNABLA_FILE = "nnabla_rl_dqn_evaluation_returns.csv"
# nnabla-rl's seeds, and its training-time evaluation interval (250,000 agent steps of 4 frames).
NNABLA_SEEDS = (1, 10, 100)
NNABLA_EVAL_INTERVAL_FRAMES = 1_000_000
# Dopamine's training iteration: 250,000 agent steps of 4 frames; iteration i covers frames [i*1M, (i+1)*1M).
DOPAMINE_ITERATION_FRAMES = 1_000_000
DOPAMINE_RUNS = 5
DOPAMINE_ITERATIONS = 199


def _read_data(name: str, dtypes: dict[str, Any]) -> pd.DataFrame:
    with resources.files("baselines").joinpath("data", name).open("r", encoding="utf-8") as f:
        return pd.read_csv(f, dtype=dtypes)


@lru_cache(maxsize=None)
def _pfrl() -> pd.DataFrame:
    return _read_data(_PFRL_FILE, {"game": str, "ale_id": str, "pfrl_dqn_mean": np.float64})


@lru_cache(maxsize=None)
def _dopamine() -> pd.DataFrame:
    return _read_data(_DOPAMINE_FILE, {"ale_id": str, "iteration": np.int64, "run": np.int64,
                                       "training_return_mean": np.float64})


@lru_cache(maxsize=None)
def _nnabla() -> pd.DataFrame:
    return _read_data(_NNABLA_FILE, {"ale_id": str, "seed": np.int64, "frames": np.int64, "eval_return_mean": np.float64,
                                     "eval_return_std": np.float64, "eval_return_min": np.float64,
                                     "eval_return_max": np.float64, "eval_episodes": np.int64})


def _game_key(game: Any) -> str:
    return str(game).strip().lower().replace("-", "_")


def pfrl_table() -> pd.DataFrame:
    """PFRL's Nature-protocol reproduction: game, ale_id, pfrl_dqn_mean (49 rows, Extended Data Table 2's order).

    pfrl_dqn_mean is, per game, the mean over PFRL's seeds of a 30-episode, 5-minute, epsilon 0.05
    re-evaluation of the best intermediate agent after 200M frames without sticky actions.
    """
    return _pfrl().copy()


def pfrl_score(game: str) -> float:
    """PFRL's reproduction score of `game` (an ALE id); a game PFRL did not run is a UserError."""
    table = _pfrl()
    found = table.loc[table["ale_id"] == _game_key(game), "pfrl_dqn_mean"]
    if found.empty:
        raise UserError(f"no PFRL reproduction score for game {game!r}; games with one: {', '.join(table['ale_id'])}")
    return float(found.iloc[0])


def dopamine_curves(game: str | None = None) -> pd.DataFrame:
    """Dopamine's DQN training returns: ale_id, iteration, run, training_return_mean, frames_end.

    One row per game, iteration (0..198) and run (0..4); `frames_end` = (iteration + 1) x 1M is the
    last emulator frame of the iteration, the frames its agent had trained on when the iteration's
    episodes were over. With `game` (an ALE id), that game's 995 rows only; a game Dopamine's
    baselines do not hold is a UserError. Sticky actions, training episodes at epsilon 0.01, no
    no-op starts: not the Nature protocol, so never normalized or compared with a final score.
    """
    curves = _dopamine()
    if game is not None:
        key = _game_key(game)
        curves = curves[curves["ale_id"] == key]
        if curves.empty:
            raise UserError(
                f"no Dopamine DQN curves for game {game!r}; games with curves: {', '.join(_dopamine()['ale_id'].unique())}"
            )
    curves = curves.reset_index(drop=True)
    return curves.assign(frames_end=(curves["iteration"] + 1) * DOPAMINE_ITERATION_FRAMES)


def nnabla_curves(game: str | None = None) -> pd.DataFrame:
    """nnabla-rl's training-time evaluations of its Nature DQN: ale_id, seed, frames, eval_return_mean,
    eval_return_std, eval_return_min, eval_return_max, eval_episodes.

    One row per game, seed (1, 10, 100) and evaluation, every 1M frames from 1M to 200M: each is
    500,000 frames at epsilon 0.05 with no-op starts, the unfinished last episode discarded, raw
    scores, the weights taken at `frames` training frames; the paper's protocol, as this harness's
    learning curves. With `game` (an ALE id), that game's 600 rows; a game it lacks is a UserError.
    """
    curves = _nnabla()
    if game is not None:
        key = _game_key(game)
        curves = curves[curves["ale_id"] == key]
        if curves.empty:
            raise UserError(f"no nnabla-rl DQN evaluations for game {game!r}; games with them: "
                            f"{', '.join(_nnabla()['ale_id'].unique())}")
    return curves.reset_index(drop=True).copy()


def human_normalized(game: Any, score: Any, table: str = "nature") -> Any:
    """100 x (score - random) / (human - random), in percent, with the `table` paper's baselines.

    `game` is an ALE id (e.g. "breakout") and `score` a raw game score: a float gives a float.
    Vectorised forms: one game with an array or Series of scores, or equal-length arrays/Series
    of games and scores (pandas input gives a Series on the same index, otherwise an ndarray).
    A game missing from the table is a UserError, never NaN.
    """
    _check_table(table)
    if isinstance(game, str):
        random_score, human_score = _lookup(game, table)
        if np.ndim(score) == 0 and not isinstance(score, pd.Series):
            return 100.0 * (float(score) - random_score) / (human_score - random_score)
        random_arr, human_arr = random_score, human_score
    else:
        games = list(game)
        if np.ndim(score) == 0 or len(games) != len(score):
            raise UserError(
                f"human_normalized needs one score per game: got {len(games)} games and "
                f"{1 if np.ndim(score) == 0 else len(score)} scores"
            )
        pairs = [_lookup(g, table) for g in games]
        random_arr = np.array([p[0] for p in pairs], dtype=np.float64)
        human_arr = np.array([p[1] for p in pairs], dtype=np.float64)
    values = np.asarray(score, dtype=np.float64)
    normalized = 100.0 * (values - random_arr) / (human_arr - random_arr)
    index = score.index if isinstance(score, pd.Series) else game.index if isinstance(game, pd.Series) else None
    if index is not None:
        return pd.Series(normalized, index=index, name="human_normalized")
    return normalized
