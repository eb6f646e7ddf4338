"""The two experiments' results, read and put on common ground: the games and seeds both have.

A game or seed counts for an experiment when scores.parquet holds a DQN score of it (best or final
weights). The comparison keeps the games and the seed numbers present in both, games with a score
of each weights in both on those seeds, and games of the normalization table; every game or seed
left out is named. Nothing in common is a one-line UserError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dqn.errors import UserError
from dqn.run_folder import WEIGHTS
from analysis.report.paper import human_normalized, paper_columns
from analysis.report.results import Results, load_results

# When the two experiments reproduce different papers, one table must normalize both: Extended Data
# Table 2 of the Nature paper holds all 49 games (the 2013 paper's 7 among them).
SHARED_REFERENCE = "nature"


@dataclass(frozen=True)
class Common:
    """Both experiments' results and what they share."""

    a: Results
    b: Results
    games: list[str]  # ALE ids, in the normalization table's order
    seeds: list[int]
    reference: str  # the reference whose random and human scores normalize both
    left_out: list[str]  # one sentence per kind of game or seed left out

    def seed_means(self, which: str, weights: str) -> np.ndarray:
        """Raw scores `[seeds, games]` of experiment `which` ("a" or "b"): each seed's mean over its
        evaluation episodes (scores.parquet `mean`), NaN where the run has none."""
        return score_matrix(getattr(self, which), self.games, self.seeds, weights)

    def normalized(self, which: str, weights: str) -> np.ndarray:
        """Human-normalized scores (percent) `[seeds, games]` of `seed_means`."""
        reference = paper_columns(self.reference).set_index("game").loc[self.games]
        return human_normalized(self.seed_means(which, weights), reference["random_score"].to_numpy(),
                                reference["human_score"].to_numpy())


def dqn_scores(results: Results) -> pd.DataFrame:
    scores = results.scores[results.scores["agent"] == "dqn"]
    return scores.assign(game=scores["game"].astype(str), seed=scores["seed"].astype(np.int64))


def score_matrix(results: Results, games: list[str], seeds: list[int], weights: str) -> np.ndarray:
    rows = dqn_scores(results)
    rows = rows[rows["weights"] == weights]
    wide = rows.pivot(index="seed", columns="game", values="mean")
    return wide.reindex(index=seeds, columns=games).to_numpy(dtype=np.float64)


def _names(items) -> str:
    return ", ".join(str(item) for item in items)


def _only_in(kind: str, a: Results, b: Results, in_a: set, in_b: set) -> list[str]:
    sentences = []
    for experiment, only in ((a.experiment, sorted(in_a - in_b)), (b.experiment, sorted(in_b - in_a))):
        if only:
            sentences.append(f"{kind} only in {experiment}: {_names(only)}")
    return sentences


def scored_in_both(a: Results, b: Results, games: list[str], seeds: list[int]) -> list[str]:
    """The games with a DQN score of every weights on at least one of `seeds` in both experiments."""
    kept = set(games)
    for results in (a, b):
        rows = dqn_scores(results)
        rows = rows[rows["seed"].isin(seeds)]
        for weights in WEIGHTS:
            kept &= set(rows.loc[rows["weights"] == weights, "game"])
    return [game for game in games if game in kept]


def common_ground(a: Results, b: Results) -> Common:
    """The games and seeds both experiments have, or a one-line UserError when they share none."""
    a_rows, b_rows = dqn_scores(a), dqn_scores(b)
    a_games, b_games = set(a_rows["game"]), set(b_rows["game"])
    a_seeds, b_seeds = set(a_rows["seed"].tolist()), set(b_rows["seed"].tolist())
    games, seeds = a_games & b_games, sorted(a_seeds & b_seeds)
    if not games or not seeds:
        shared = "no game" if not games else "no seed"
        raise UserError(
            f"{a.experiment} ({str(a.path)!r}) and {b.experiment} ({str(b.path)!r}) have {shared} with a DQN score in "
            f"common (games {_names(sorted(a_games)) or 'none'} against {_names(sorted(b_games)) or 'none'}; seeds "
            f"{_names(sorted(a_seeds)) or 'none'} against {_names(sorted(b_seeds)) or 'none'}); compare experiments "
            "run on the same games and seeds"
        )
    reference = a.reference if a.reference == b.reference else SHARED_REFERENCE
    table = list(paper_columns(reference)["game"])
    left_out = _only_in("games", a, b, a_games, b_games) + _only_in("seeds", a, b, a_seeds, b_seeds)
    unknown = sorted(games - set(table))
    if unknown:
        left_out.append(f"games without random and human scores in the {reference} reference table: {_names(unknown)}")
    ordered = [game for game in table if game in games]
    kept = scored_in_both(a, b, ordered, seeds)
    unscored = [game for game in ordered if game not in kept]
    if unscored:
        left_out.append(f"games without a score of both weights on the common seeds in both: {_names(unscored)}")
    if not kept:
        raise UserError(
            f"{a.experiment} and {b.experiment} have no game with scores of both weights on their common seeds "
            f"({_names(seeds)}) and in the {reference} reference table; compare experiments run on the same games and seeds"
        )
    return Common(a=a, b=b, games=kept, seeds=seeds, reference=reference, left_out=left_out)


def load_pair(folder_a, folder_b) -> Common:
    """Read both results folders (each a one-line UserError when it is not one) and find their common ground."""
    return common_ground(load_results(folder_a), load_results(folder_b))
