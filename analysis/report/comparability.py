"""Whether an experiment is the reference paper's own, and if not, why: its preset, the
hyperparameters that differ, and the frames per run beside the paper's (all read from the results).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from analysis.aggregate import value_text  # the text deviations.parquet holds
from analysis.report.results import Results
from baselines import on_track
from dqn import config
from dqn.errors import UserError
from dqn.games import display_name


def experiment_hyperparameters(results: Results) -> config.Hyperparameters | None:
    """The experiment's resolved config (preset and overrides from provenance.json), None if unknown."""
    preset = str(results.provenance.get("preset") or "unknown")
    overrides = results.provenance.get("overrides") or {}
    try:
        return config.resolve(preset, overrides if isinstance(overrides, dict) else {})
    except (UserError, KeyError, TypeError, ValueError):
        return None


def on_track_differing_keys(results: Results) -> list[str] | None:
    """The keys by which the experiment, at its planned length, is not the paper's for the on-track
    verdict (baselines/on_track.differing_keys); None when its config cannot be resolved."""
    hp = experiment_hyperparameters(results)
    if hp is None:
        return None
    planned = results.runs["frames_planned"].max() if len(results.runs) else hp.training_length_frames
    return on_track.differing_keys(dataclasses.replace(hp, training_length_frames=int(planned)))


@dataclass(frozen=True)
class TrainingLength:
    """Frames (and agent steps) one run of a group of games trains, beside the paper's for them."""

    games: tuple[str, ...]  # display names
    frames: int
    steps: int | None  # None when this experiment's action repeat cannot be resolved
    paper_frames: int
    paper_steps: int

    @property
    def fraction(self) -> float:
        return self.frames / self.paper_frames


@dataclass(frozen=True)
class Comparability:
    """Whether an experiment is the reference paper's own, and if not, why (all read from the results).

    `deviations` are the deviations.parquet fields whose value is not the paper preset's own: the
    2013 preset's rows that only record its reading of a value the paper leaves unstated are the
    paper's experiment, not a departure from it.
    """

    preset: str
    paper_preset: str  # the preset that reproduces the reference paper (its name is the reference's)
    deviations: tuple[str, ...]
    lengths: tuple[TrainingLength, ...]  # the most common length first; empty without runs

    @property
    def comparable(self) -> bool:
        return self.preset == self.paper_preset and not self.deviations


def comparability(results: Results) -> Comparability:
    """Compare the experiment's preset, deviations and planned frames per run with the reference paper's."""
    reference = results.reference
    preset = str(results.provenance.get("preset") or "unknown")
    paper_hp = config.PRESETS[reference]
    own = {f: value_text(getattr(paper_hp, f)) for f in config.field_names()}
    departures = tuple(
        str(field) for field, value in zip(results.deviations["field"], results.deviations["this_value"])
        if own.get(str(field)) != str(value)
    )
    hp = experiment_hyperparameters(results)  # None for an unknown preset: frames only, no agent steps

    groups: dict[tuple[int, int | None, int, int], list[str]] = {}
    planned = results.runs.assign(game=results.runs["game"].astype(str))
    for game, frames in planned.groupby("game", sort=False)["frames_planned"].max().items():
        frames = int(frames)
        paper_game = paper_hp.for_game(game)
        steps = frames // hp.for_game(game).action_repeat_frames if hp is not None else None
        key = (frames, steps, paper_game.training_length_frames, paper_game.training_length_steps)
        groups.setdefault(key, []).append(display_name(game))
    lengths = [
        TrainingLength(tuple(games), frames, steps, paper_frames, paper_steps)
        for (frames, steps, paper_frames, paper_steps), games in groups.items()
        if paper_frames > 0
    ]
    lengths.sort(key=lambda length: -len(length.games))
    return Comparability(preset=preset, paper_preset=reference, deviations=departures, lengths=tuple(lengths))
