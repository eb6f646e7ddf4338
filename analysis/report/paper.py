"""The reference columns of the report (random, human, paper DQN) for the paper an experiment reproduces.

Every reference is read from the tables shipped in `baselines/data/` (through
`baselines.reference`), so each number in the report's paper columns is traceable to a CSV row.
A new reference is one entry in `REFERENCES`; one that prints single best episodes (the 2013
Table 1) names their columns in `best_episodes`; one whose protocol PFRL reproduced sets `pfrl`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from baselines import reference as tables
from dqn.errors import UserError

# The columns every reference yields, one row per game.
COLUMNS = ("game", "display_name", "random_score", "human_score", "paper_dqn_mean", "paper_dqn_std")
# The columns of a reference that also prints each method's single best episode (the 2013 Table 1).
BEST_EPISODE_COLUMNS = ("paper_dqn_best", "paper_hneat_best")


@dataclass(frozen=True)
class BestEpisodes:
    """Where a paper prints the score of its single best episode per game, and in which table columns."""

    columns: dict[str, str]  # BEST_EPISODE_COLUMNS name -> the table's column; one may be absent
    where: str  # how the report names the place, e.g. "Table 1, lower part"


@dataclass(frozen=True)
class Reference:
    name: str
    label: str  # how the report names the paper, e.g. "Nature 2015 paper"
    table: str  # the baselines.reference table name
    columns: dict[str, str]  # COLUMNS name -> the table's column; paper_dqn_std may be absent
    citation: str
    table_label: str
    normalization: str
    best_episodes: BestEpisodes | None = None  # None: the paper reports averages only
    # Whether PFRL's reproduction (the Nature protocol re-run on the 49 games) is shown beside the paper.
    pfrl: bool = False
    # Whether nnabla-rl's training-time evaluations, measured under this paper's protocol, are drawn
    # behind the learning curves (and decide whether a run is on track).
    nnabla: bool = False


REFERENCES: dict[str, Reference] = {
    "nature": Reference(
        name="nature",
        label="Nature 2015 paper",
        table="nature",
        columns={
            "display_name": "game",
            "random_score": "random_score",
            "human_score": "human_score",
            "paper_dqn_mean": "dqn_mean",
            "paper_dqn_std": "dqn_std",
        },
        citation="Mnih et al., Human-level control through deep reinforcement learning, Nature 518, 529-533 (2015)",
        table_label="Extended Data Table 2",
        normalization=(
            "human-normalized score = 100 x (score - random) / (human - random), with the random and human "
            "scores of Extended Data Table 2 of the Nature paper (not the later 57-game human table)"
        ),
        pfrl=True,
        nnabla=True,
    ),
    "nips2013": Reference(
        name="nips2013",
        label="NIPS 2013 workshop paper",
        table="nips2013",
        columns={
            "display_name": "game",
            "random_score": "random",
            "human_score": "human",
            "paper_dqn_mean": "dqn",
        },
        citation="Mnih et al., Playing Atari with Deep Reinforcement Learning, NIPS Deep Learning Workshop (2013)",
        table_label="Table 1",
        normalization=(
            "human-normalized score = 100 x (score - random) / (human - random): the Nature paper's formula, since "
            "the 2013 paper defines no normalized score, applied to the random and human scores of Table 1 of the "
            "2013 workshop paper; the paper's DQN column is its average total reward (Table 1 gives no standard "
            "deviation)"
        ),
        best_episodes=BestEpisodes(
            columns={"paper_dqn_best": "dqn_best", "paper_hneat_best": "hneat_best"},
            where="Table 1, lower part",
        ),
    ),
}


def get_reference(name: str) -> Reference:
    if name not in REFERENCES:
        raise UserError(f"unknown reference {name!r} in provenance.json; known references: {', '.join(REFERENCES)}")
    return REFERENCES[name]


def paper_columns(reference: str) -> pd.DataFrame:
    """One row per game of the reference's table: game (ALE id), display_name, random_score,
    human_score, paper_dqn_mean, paper_dqn_std (NaN where the paper gives none), in the table's order."""
    ref = get_reference(reference)
    table = tables.reference_table(ref.table)
    out = pd.DataFrame({"game": table["ale_id"].astype(str)})
    for column in COLUMNS[1:]:
        source = ref.columns.get(column)
        out[column] = table[source].to_numpy() if source else np.nan
    for column in COLUMNS[2:]:
        out[column] = out[column].astype(np.float64)
    return out.reset_index(drop=True)


def paper_best_episodes(reference: str) -> pd.DataFrame | None:
    """One row per game of the reference's table: game (ALE id), paper_dqn_best, paper_hneat_best
    (NaN where the paper gives none), in the table's order; None when the paper reports no best episode."""
    ref = get_reference(reference)
    if ref.best_episodes is None:
        return None
    table = tables.reference_table(ref.table)
    out = pd.DataFrame({"game": table["ale_id"].astype(str)})
    for column in BEST_EPISODE_COLUMNS:
        source = ref.best_episodes.columns.get(column)
        out[column] = table[source].to_numpy(dtype=np.float64) if source else np.nan
    return out.reset_index(drop=True)


def human_normalized(score, random_score, human_score):
    """100 x (score - random) / (human - random), in percent; arrays broadcast."""
    return 100.0 * (np.asarray(score, dtype=np.float64) - random_score) / (np.asarray(human_score) - random_score)
