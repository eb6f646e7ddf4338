"""Is a run on track? Its training-time evaluations against nnabla-rl's three seeds at the same frames.

nnabla-rl's reproduction scored every 1M frames under the paper's own protocol (500,000 frames at
epsilon 0.05, the unfinished last episode discarded: `baselines.reference.nnabla_curves`), the
same measurement as this harness's learning curves. So at any budget a run can be placed among its
three seeds, defined once here and used by `analysis.status`, the results tables and the report:

- at each evaluation at frames F where the reference has a point: the run's score below all three
  seeds' scores at F, within their range, or above all three (`standing`);
- for the run so far: the mean of its scores over those evaluations against each reference seed's
  mean over the same frames (robust to the up and down of single evaluations).

Only a run with the paper's hyperparameters is comparable: every field of the `nature` preset but
the training length (and what does not change the training: checkpoints, the final evaluation);
a replay capacity of at least the run's agent steps counts as the paper's, since the memory never
wraps. Anything else is "not comparable", naming the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from baselines.reference import NNABLA_SEEDS, nnabla_curves
from dqn.config import NATURE, Hyperparameters

STANDINGS = ("below", "within", "above")
# Why "below" early is not yet a bug (docs/ROAD_RUNNER.md measures it on Road Runner).
BELOW_CAVEAT = ("nnabla-rl's network starts from He-normal weights, DeepMind's from Lua's uniform draw, so early "
                "points can stand below it without a bug: see docs/ROAD_RUNNER.md")
NO_POINT_YET = "no evaluation at a reference point yet (the first is at 1M frames)"
NOT_COMPARABLE = "not comparable"
# Fields that do not change what training computes, or that the comparison allows to differ.
_FREE_FIELDS = ("training_length_frames", "checkpoint_interval_minutes", "final_eval_episodes",
                "final_eval_max_episode_frames")
ON_TRACK_COLUMNS = ("game", "seed", "frames", "kind", "score", "reference_min", "reference_mean", "reference_max",
                    "standing")


def differing_keys(hp: Hyperparameters) -> list[str]:
    """The fields by which `hp` is not the paper's for this comparison (empty: comparable)."""
    keys = []
    for name, paper in NATURE.to_dict().items():
        ours = hp.to_dict()[name]
        if name in _FREE_FIELDS or ours == paper:
            continue
        if name == "replay_memory_size_transitions" and ours >= hp.training_length_steps:
            continue  # never wraps within this run: the same contents as the paper's 1M
        keys.append(name)
    return keys


def standing(score: float, reference: Sequence[float]) -> str:
    """"below" all reference scores, "above" all, or "within" their range (ends included)."""
    low, high = min(reference), max(reference)
    return "below" if score < low else "above" if score > high else "within"


def reference_points(reference: pd.DataFrame) -> pd.DataFrame:
    """The reference's scores as a frames x seed table (rows of nnabla_curves(game))."""
    return reference.pivot_table(index="frames", columns="seed", values="eval_return_mean")


def on_track(curve: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """ON_TRACK_COLUMNS rows of one run: `curve` holds its evaluations (frames, eval_score_mean,
    game, seed), `reference` the reference's rows of that game (nnabla_curves(game)).

    kind "evaluation": one row per evaluation at frames the reference has, the reference's
    min/mean/max over its seeds there; kind "mean so far": one row at the last such frames, the
    run's mean over those evaluations against each reference seed's mean over the same frames."""
    scored = curve.dropna(subset=["eval_score_mean"])
    points = reference_points(reference)
    scored = scored[scored["frames"].isin(points.index)].sort_values("frames")
    if scored.empty:
        return pd.DataFrame(columns=list(ON_TRACK_COLUMNS))
    game, seed = scored["game"].iloc[0], int(scored["seed"].iloc[0])
    rows = []
    for frames, score in zip(scored["frames"], scored["eval_score_mean"]):
        at = points.loc[frames].to_numpy()
        rows.append((game, seed, int(frames), "evaluation", float(score), at.min(), at.mean(), at.max(),
                     standing(score, at)))
    seed_means = points.loc[scored["frames"]].mean(axis=0).to_numpy()
    run_mean = float(scored["eval_score_mean"].mean())
    rows.append((game, seed, int(scored["frames"].iloc[-1]), "mean so far", run_mean, seed_means.min(),
                 seed_means.mean(), seed_means.max(), standing(run_mean, seed_means)))
    return pd.DataFrame(rows, columns=list(ON_TRACK_COLUMNS))


def summary(rows: pd.DataFrame) -> str:
    """One phrase for a run's rows: "within 3/3 evaluations", "below since 6M frames", ..."""
    evaluations = rows[rows["kind"] == "evaluation"]
    if evaluations.empty:
        return NO_POINT_YET
    overall = rows.loc[rows["kind"] == "mean so far", "standing"].iloc[-1]
    latest = evaluations["standing"].iloc[-1]
    same = (evaluations["standing"] == latest).to_numpy()[::-1]
    streak = int(np.argmin(same)) if not same.all() else len(same)
    if streak == len(same):
        latest_text = f"{latest} {len(same)}/{len(same)} evaluations"
    else:
        since = int(evaluations["frames"].iloc[-streak])
        latest_text = f"{latest} since {since / 1e6:g}M frames"
    return f"{latest_text}; mean so far {overall}"


def game_curve(curves: pd.DataFrame) -> pd.DataFrame:
    """One game's learning curve averaged over its seeds, at the frames every one of its seeds has
    evaluated (a seed that is behind holds the game back rather than thinning the mean): game,
    seed (-1), frames, eval_score_mean, seeds."""
    scored = curves.dropna(subset=["eval_score_mean"])
    seeds = scored["seed"].nunique()
    by_frames = scored.groupby("frames")["eval_score_mean"].agg(["mean", "count"])
    common = by_frames[by_frames["count"] == seeds]
    return pd.DataFrame({"game": curves["game"].iloc[0] if len(curves) else "", "seed": -1,
                         "frames": common.index.astype(np.int64), "eval_score_mean": common["mean"].to_numpy(),
                         "seeds": seeds})


@dataclass(frozen=True)
class GameVerdict:
    game: str
    standing: str  # one of STANDINGS, or "" before the reference's first point
    frames: int  # the last frames of the mean so far (0: none yet)
    evaluations: int
    seeds: int
    text: str


def game_verdict(curves: pd.DataFrame, reference: pd.DataFrame) -> GameVerdict:
    """The game's standing: its seeds' mean curve (`game_curve`) placed by `on_track`, the mean so far."""
    curve = game_curve(curves)
    game = str(curves["game"].iloc[0])
    seeds = int(curve["seeds"].iloc[0]) if len(curve) else int(curves["seed"].nunique())
    rows = on_track(curve, reference) if len(curve) else pd.DataFrame(columns=list(ON_TRACK_COLUMNS))
    evaluations = rows[rows["kind"] == "evaluation"]
    if evaluations.empty:
        return GameVerdict(game, "", 0, 0, seeds, NO_POINT_YET)
    overall = rows[rows["kind"] == "mean so far"].iloc[-1]
    frames = int(overall["frames"])
    count = len(evaluations)
    text = (f"{overall['standing']}: mean {overall['score']:,.0f} over {count} evaluation{'s' if count > 1 else ''} "
            f"to {frames / 1e6:g}M frames ({seeds} seed{'s' if seeds > 1 else ''}); the reference's seeds "
            f"{overall['reference_min']:,.0f} to {overall['reference_max']:,.0f}")
    return GameVerdict(game, str(overall["standing"]), frames, count, seeds, text)


def experiment_on_track(curves: pd.DataFrame, hp: Hyperparameters) -> pd.DataFrame:
    """ON_TRACK_COLUMNS rows of every run in `curves` (learning_curves.parquet) whose game the
    reference has; none when `hp` is not comparable (`differing_keys`)."""
    tables = []
    if not differing_keys(hp) and len(curves):
        known = set(nnabla_curves()["ale_id"])
        for (game, _), runs in curves.groupby(["game", "seed"], sort=True):
            if game in known:
                tables.append(on_track(runs, nnabla_curves(game)))
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=list(ON_TRACK_COLUMNS))
    return pd.concat(tables, ignore_index=True)


def game_verdicts(curves: pd.DataFrame, games: Sequence[str]) -> dict[str, GameVerdict]:
    """`game_verdict` of each of `games` that the reference has and `curves` has a run of."""
    wanted = set(nnabla_curves()["ale_id"]) & set(games)
    return {game: game_verdict(runs, nnabla_curves(game)) for game, runs in curves.groupby("game", sort=False)
            if game in wanted}


def headline(verdicts: dict[str, GameVerdict], display: dict[str, str], differing: Sequence[str]) -> str:
    """One sentence for a report's top: how many games are within or above the reference, and which are below."""
    if differing:
        verb = "differs" if len(differing) == 1 else "differ"
        return (f"Not comparable with nnabla-rl's same-protocol learning curves: this experiment's {', '.join(differing)} "
                f"{verb} from the paper's, and only the training length may.")
    placed = {g: v for g, v in verdicts.items() if v.standing}
    if not placed:
        return "On track: no game has an evaluation at the same-protocol reference's first point (1M frames) yet."
    below = sorted((g for g, v in placed.items() if v.standing == "below"), key=lambda g: display.get(g, g))
    on = len(placed) - len(below)
    frames = sorted({v.frames for v in placed.values()})
    span = f"{frames[0] / 1e6:g}M" if len(frames) == 1 else f"{frames[0] / 1e6:g}M to {frames[-1] / 1e6:g}M"
    below_text = ("; below: " + ", ".join(f"{display.get(g, g)} ({placed[g].frames / 1e6:g}M)" for g in below)
                  + f" ({BELOW_CAVEAT})") if below else ""
    pending = len(verdicts) - len(placed)
    pending_text = (f"; {pending} game{'s' if pending > 1 else ''} without an evaluation at 1M frames yet"
                    if pending else "")
    return (f"On track: {on} of {len(placed)} games within or above the range of nnabla-rl's {len(NNABLA_SEEDS)} "
            f"seeds under the paper's protocol, on each game's mean over its evaluations up to its frames ({span})"
            f"{below_text}{pending_text}.")
