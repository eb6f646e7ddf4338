"""Pairs of synthetic results folders for the comparison's tests: a copy of one experiment under
another name, changed in a known way (scores shifted, seed means set, provenance edited)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import pandas as pd

from baselines.reference import human_normalized


def edit_provenance(folder: Path, **changes: Any) -> Path:
    path = folder / "provenance.json"
    provenance = json.loads(path.read_text())
    provenance.update(changes)
    path.write_text(json.dumps(provenance))
    return folder


def copy_as(source: Path, target: Path, experiment: str) -> Path:
    """A copy of `source`'s results under the experiment name `experiment`."""
    shutil.copytree(source, target)
    return edit_provenance(target, experiment=experiment)


def _renormalize(scores: pd.DataFrame, reference: str) -> pd.DataFrame:
    return scores.assign(human_normalized=human_normalized(scores["game"], scores["mean"], reference).astype(float))


def shift_scores(folder: Path, constant: float, reference: str = "nature", games: Sequence[str] | None = None) -> Path:
    """Every DQN evaluation episode (of `games`, default all) scores `constant` more; scores.parquet
    follows (its std unchanged)."""
    episodes = pd.read_parquet(folder / "episodes.parquet")
    dqn = (episodes["agent"] == "dqn") & (episodes["game"].isin(games) if games is not None else True)
    episodes.loc[dqn, "score"] = episodes.loc[dqn, "score"] + constant
    episodes.to_parquet(folder / "episodes.parquet")
    scores = pd.read_parquet(folder / "scores.parquet")
    dqn = (scores["agent"] == "dqn") & (scores["game"].isin(games) if games is not None else True)
    scores.loc[dqn, "mean"] = scores.loc[dqn, "mean"] + constant
    _renormalize(scores, reference).to_parquet(folder / "scores.parquet")
    return folder


def set_seed_means(folder: Path, means: Mapping[str, Sequence[float]], reference: str = "nature") -> Path:
    """Each game's DQN seed means (seeds 0, 1, ... in order) set to `means[game]`, for both weights."""
    scores = pd.read_parquet(folder / "scores.parquet")
    for game, values in means.items():
        for seed, value in enumerate(values):
            rows = (scores["agent"] == "dqn") & (scores["game"] == game) & (scores["seed"] == seed)
            scores.loc[rows, "mean"] = float(value)
    _renormalize(scores, reference).to_parquet(folder / "scores.parquet")
    return folder
