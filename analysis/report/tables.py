"""The report's tables, computed from a results folder and the reference paper's columns.

Across seeds, a game's score is the mean of the seed means (each seed mean is over that seed's
evaluation episodes, the `mean` column of scores.parquet) and its spread is the sample standard
deviation (ddof 1) of those seed means, NaN with one seed. Beside it, {weights}_episode_std is the
s.d. over evaluation episodes (the paper's kind of s.d.), pooled over seeds as the root mean square
of each seed's s.d. (scores.parquet `std`). Human-normalized scores are computed per seed with the
reference's random and human scores, then averaged the same way.

A bootstrap over seeds has nothing to resample when every game has a single seed: the aggregates
then carry no confidence interval (NaN bounds, `ci_note` "n/a (1 seed)") instead of a zero-width one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dqn.games import display_name
from dqn.run_folder import WEIGHTS
from analysis.report import metrics
from analysis.report import reproductions
from baselines import on_track
from analysis.report.paper import get_reference, human_normalized, paper_best_episodes, paper_columns
from analysis.report.comparability import on_track_differing_keys
from analysis.report.results import Results
from analysis.results_files import GAME_PARTIAL, RUN_COMPLETE, RUN_MISSING
from analysis.numbers import format_int

WEIGHTS_LABELS = {"best": "best-intermediate", "final": "final"}
# What a confidence interval reads when every game has one seed (a bootstrap over seeds has nothing to resample).
NO_INTERVAL_ONE_SEED = "n/a (1 seed)"


def _seed_stats(scores: pd.DataFrame, prefix: str) -> pd.DataFrame:
    grouped = scores.groupby("game", sort=False)["mean"]
    # The s.d. over episodes, pooled over seeds: the root mean square of the seeds' own s.d.s
    # (scores.parquet `std`, each over that seed's evaluation episodes), the paper's kind of s.d.
    variance = (scores["std"].astype(np.float64) ** 2).groupby(scores["game"], sort=False).mean()
    return pd.DataFrame(
        {
            f"{prefix}_mean": grouped.mean(),
            f"{prefix}_std": grouped.std(ddof=1),
            f"{prefix}_seeds": grouped.count().astype(np.int64),
            f"{prefix}_episode_std": np.sqrt(variance),
        }
    )


def experiment_games(results: Results, paper: pd.DataFrame) -> list[str]:
    """Every game of runs.parquet or scores.parquet, in the reference table's order, others after."""
    games = set(results.runs["game"].astype(str)) | set(results.scores["game"].astype(str))
    order = [g for g in paper["game"] if g in games]
    return order + sorted(games - set(order))


def normalized_scores(results: Results, paper: pd.DataFrame) -> pd.DataFrame:
    """scores.parquet's DQN rows with `normalized` recomputed from the reference (NaN for games it lacks)."""
    dqn = results.scores[results.scores["agent"] == "dqn"].copy()
    dqn["game"] = dqn["game"].astype(str)
    ref = paper.set_index("game")
    random_score = dqn["game"].map(ref["random_score"]).to_numpy(dtype=np.float64)
    human_score = dqn["game"].map(ref["human_score"]).to_numpy(dtype=np.float64)
    dqn["normalized"] = human_normalized(dqn["mean"].to_numpy(), random_score, human_score)
    return dqn


def with_this_run(results: Results, table: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """`table` (indexed by game, with the reference's columns) with this run's seeds, scores and status."""
    runs = results.runs.assign(game=results.runs["game"].astype(str))
    table["seeds_planned"] = runs.groupby("game")["seed"].nunique().reindex(table.index).fillna(0).astype(np.int64)
    table["seeds_complete"] = (
        runs[runs["status"] == RUN_COMPLETE].groupby("game")["seed"].nunique().reindex(table.index).fillna(0).astype(np.int64)
    )

    scores = results.scores.assign(game=results.scores["game"].astype(str))
    table = table.join(_seed_stats(scores[scores["agent"] == "random"], "random"))
    dqn = normalized_scores(results, paper)
    for weights in WEIGHTS:
        rows = dqn[dqn["weights"] == weights]
        table = table.join(_seed_stats(rows, weights))
        table[f"{weights}_normalized"] = rows.groupby("game", sort=False)["normalized"].mean()
    for column in ("random_seeds", "best_seeds", "final_seeds"):
        table[column] = table[column].fillna(0).astype(np.int64)
    # Games in scores.parquet but not in runs.parquet count their scored seeds as planned.
    table["seeds_planned"] = np.maximum(table["seeds_planned"], table[["best_seeds", "final_seeds"]].max(axis=1))
    table["paper_normalized"] = human_normalized(table["paper_dqn_mean"], table["random_score"], table["human_score"])

    scored = np.minimum(table["best_seeds"], table["final_seeds"])
    complete = (table["seeds_complete"] == table["seeds_planned"]) & (scored == table["seeds_planned"])
    none = (table["best_seeds"] == 0) & (table["final_seeds"] == 0)
    table["status"] = np.where(complete, RUN_COMPLETE, np.where(none, RUN_MISSING, GAME_PARTIAL))
    return table


def game_table(results: Results, reference: str | None = None) -> pd.DataFrame:
    """One row per game of the experiment (missing ones included) with the paper's and this run's numbers.

    Columns: game, display_name, seeds_planned, seeds_complete, status (complete | partial | missing),
    random_score, human_score, paper_dqn_mean, paper_dqn_std (the reference's), random_mean,
    random_std, random_seeds (this run's random agent), best_mean, best_std, best_seeds,
    best_episode_std, final_mean, final_std, final_seeds, final_episode_std, paper_normalized,
    best_normalized, final_normalized, higher ("this run" when best_mean exceeds paper_dqn_mean, "paper" when below, "tie", or "").
    When the reference shows PFRL's reproduction (reproductions.has_pfrl), also pfrl_dqn_mean,
    pfrl_normalized and stands (where best_mean lies against paper_dqn_mean and pfrl_dqn_mean:
    reproductions.STANDINGS, or "" when one is missing).
    """
    reference = reference or results.reference
    paper = paper_columns(reference)
    games = experiment_games(results, paper)
    table = pd.DataFrame({"game": games}).merge(paper, on="game", how="left")
    table["display_name"] = [name if isinstance(name, str) else display_name(g) for g, name in zip(table["game"], table["display_name"])]
    table = table.set_index("game")

    table = with_this_run(results, table, paper)
    higher = np.where(
        table["best_mean"] > table["paper_dqn_mean"],
        "this run",
        np.where(table["best_mean"] < table["paper_dqn_mean"], "paper", "tie"),
    )
    table["higher"] = np.where(table["best_mean"].isna() | table["paper_dqn_mean"].isna(), "", higher)
    pfrl = reproductions.pfrl_columns(reference)
    if pfrl is not None:
        table = table.join(pfrl.set_index("game"))
        table["stands"] = reproductions.where_this_run_stands(table["best_mean"], table["paper_dqn_mean"], table["pfrl_dqn_mean"])
    columns = [
        "display_name", "seeds_planned", "seeds_complete", "status",
        "random_score", "human_score", "paper_dqn_mean", "paper_dqn_std",
        "random_mean", "random_std", "random_seeds",
        "best_mean", "best_std", "best_seeds", "best_episode_std",
        "final_mean", "final_std", "final_seeds", "final_episode_std",
        "paper_normalized", "best_normalized", "final_normalized", "higher",
    ]  # fmt: skip
    if pfrl is not None:
        columns += ["pfrl_dqn_mean", "pfrl_normalized", "stands"]
    if get_reference(reference).nnabla:
        table = with_on_track(results, table)
        columns += ["on_track", "on_track_frames", "on_track_text"]
    return table[columns].reset_index()


NO_CURVE_YET = "no learning curve yet"


def with_on_track(results: Results, table: pd.DataFrame) -> pd.DataFrame:
    """`table` (indexed by game) with on_track, on_track_frames (-1 without a curve) and on_track_text:
    each game's standing against the same-protocol curves (baselines/on_track.py)."""
    differing = on_track_differing_keys(results)
    verdicts = {} if differing else on_track.game_verdicts(
        results.learning_curves.assign(game=results.learning_curves["game"].astype(str)), list(table.index))
    # A config that is not the paper's gets no standing in any cell, as in on_track.parquet.
    missing = f"{on_track.NOT_COMPARABLE}: {', '.join(differing)} differ(s) from the paper's" if differing else NO_CURVE_YET
    table["on_track"] = [verdicts[g].standing if g in verdicts else "" for g in table.index]
    table["on_track_frames"] = [verdicts[g].frames if g in verdicts else -1 for g in table.index]
    table["on_track_text"] = [verdicts[g].text if g in verdicts else missing for g in table.index]
    return table


def on_track_headline(results: Results, table: pd.DataFrame) -> str:
    """The report's on-track sentence (baselines/on_track.headline); empty where the reference has no
    same-protocol curves (the 2013 paper) or the config cannot be resolved."""
    differing = on_track_differing_keys(results)
    if "on_track" not in table.columns or differing is None:
        return ""
    # Games without a learning curve yet (frames -1) are neither placed nor pending.
    verdicts = {game: on_track.GameVerdict(game, standing, int(frames), 0, 0, "") for game, standing, frames in zip(
        table["game"], table["on_track"], table["on_track_frames"]) if frames >= 0}
    return on_track.headline(verdicts, dict(zip(table["game"], table["display_name"])), differing)


def best_episode_table(results: Results, reference: str | None = None) -> pd.DataFrame | None:
    """The paper's single best episodes beside this run's, one row per game of the experiment; None
    when the reference reports no best episode.

    Columns: game, display_name, status, seeds_planned, best_seeds, final_seeds (as game_table),
    paper_dqn_best, paper_hneat_best (the reference's), and for each weights ("best", "final")
    {weights}_max_score, the highest score of any DQN evaluation episode of the game with those
    weights over every seed in episodes.parquet (NaN without one), and {weights}_episodes, how many
    episodes that maximum is over.
    """
    reference = reference or results.reference
    paper = paper_best_episodes(reference)
    if paper is None:
        return None
    # The same rows, names and status as the per-game table, so a partial game reads the same in both.
    table = game_table(results, reference)[["game", "display_name", "status", "seeds_planned", "best_seeds", "final_seeds"]]
    table = table.merge(paper, on="game", how="left").set_index("game")
    episodes = results.episodes[results.episodes["agent"] == "dqn"]
    episodes = episodes.assign(game=episodes["game"].astype(str))
    for weights in WEIGHTS:
        scores = episodes[episodes["weights"] == weights].groupby("game")["score"]
        table[f"{weights}_max_score"] = scores.max().reindex(table.index).astype(np.float64)
        table[f"{weights}_episodes"] = scores.count().reindex(table.index).fillna(0).astype(np.int64)
    return table.reset_index()


def normalization_mismatches(results: Results, *, tolerance_percent: float = 1e-6) -> list[str]:
    """Games whose scores.parquet `human_normalized` differs from 100 x (mean - random) / (human - random)
    with the random and human scores of the experiment's reference table, which is how analysis.aggregate
    defines that column (tables written before it did so used Extended Data Table 2 whatever the
    reference, and are flagged here for a 2013 experiment). Games outside the table are not checked."""
    dqn = normalized_scores(results, paper_columns(results.reference))
    checked = dqn[dqn["normalized"].notna()]
    differs = ~np.isclose(checked["normalized"], checked["human_normalized"], rtol=0.0, atol=tolerance_percent)
    return sorted(set(checked.loc[differs, "game"]))


def episode_mismatches(results: Results, *, tolerance: float = 1e-9) -> list[str]:
    """"game/agent/seed/weights" keys whose scores.parquet mean or episode count disagrees with episodes.parquet."""
    keys = ["game", "agent", "seed", "weights"]
    episodes = results.episodes.groupby(keys)["score"].agg(episode_mean="mean", episode_count="count")
    joined = results.scores.set_index(keys)[["mean", "episodes"]].join(episodes, how="outer")
    bad = ~np.isclose(joined["mean"], joined["episode_mean"], rtol=tolerance, atol=tolerance) | (
        joined["episodes"] != joined["episode_count"]
    )
    return ["/".join(map(str, key)) for key in joined.index[bad.to_numpy()]]


def score_matrix(results: Results, weights: str, reference: str | None = None) -> tuple[list[str], np.ndarray]:
    """(games, human-normalized scores `[runs, games]`) of the DQN `weights`, NaN where a game lacks a seed.

    Only games with at least one scored seed and with reference scores are included.
    """
    dqn = normalized_scores(results, paper_columns(reference or results.reference))
    dqn = dqn[(dqn["weights"] == weights) & dqn["normalized"].notna()]
    if dqn.empty:
        return [], np.zeros((0, 0))
    wide = dqn.pivot(index="seed", columns="game", values="normalized")
    games = [g for g in experiment_games(results, paper_columns(reference or results.reference)) if g in wide.columns]
    wide = wide[games]
    # Seeds are rows only to align runs; each column keeps its own present runs at the top.
    matrix = np.full(wide.shape, np.nan)
    for j, game in enumerate(games):
        present = wide[game].dropna().to_numpy()
        matrix[: present.size, j] = present
    return games, matrix


def this_run_row(weights: str, matrix: np.ndarray, *, reps: int, seed: int) -> dict:
    """The aggregate row of this run's `weights` from its scores `[runs, games]`, with bootstrap intervals
    unless every game has a single seed."""
    one_seed = int((~np.isnan(matrix)).sum(axis=0).max()) < 2
    row = {"label": f"This run, {WEIGHTS_LABELS[weights]} weights", "kind": "this run", "weights": weights,
           "games": matrix.shape[1], "runs": int((~np.isnan(matrix)).sum()),
           "ci_note": NO_INTERVAL_ONE_SEED if one_seed else ""}
    for name, statistic in metrics.AGGREGATES.items():
        if one_seed:
            # Every resample would be the sample itself: a zero-width interval that claims certainty.
            row.update({name: float(statistic(matrix)), f"{name}_low": np.nan, f"{name}_high": np.nan})
            continue
        point, low, high = metrics.interval_estimate(matrix, statistic, reps=reps, seed=seed)
        row.update({name: point, f"{name}_low": low, f"{name}_high": high})
    return _with_thresholds(row, matrix)


def _with_thresholds(row: dict, matrix: np.ndarray) -> dict:
    for threshold in metrics.THRESHOLDS_PERCENT:
        row[f"at_or_above_{threshold:.0f}"] = int(metrics.count_at_or_above(matrix, threshold))
    return row


def published_row(label: str, games: pd.DataFrame, column: str = "paper_normalized", kind: str = "paper") -> dict:
    """The aggregate row of one published number per game (`column` of `games`): a single "run", so no interval."""
    matrix = games[column].to_numpy(dtype=np.float64)[np.newaxis, :]
    row = {"label": label, "kind": kind, "weights": "", "games": matrix.shape[1], "runs": matrix.shape[1],
           "ci_note": ""}
    for name, statistic in metrics.AGGREGATES.items():
        row.update({name: float(statistic(matrix)), f"{name}_low": np.nan, f"{name}_high": np.nan})
    return _with_thresholds(row, matrix)


def aggregate_table(results: Results, *, reps: int = 2000, seed: int = 0, reference: str | None = None) -> pd.DataFrame:
    """The aggregate rows: this run (best, final weights) with 95 % CIs, the paper on the same games, the paper on all
    its games, and, when the reference shows it, PFRL's reproduction on the same games as this run (all of them
    before any game is scored).

    Columns: label, kind ("this run" | "paper" | "reproduction"), games, runs, median, median_low, median_high,
    mean, mean_low, mean_high, iqm, iqm_low, iqm_high, at_or_above_100, at_or_above_75, ci_note.
    CI columns are NaN for the paper and PFRL (one published number per game, ci_note "") and for this run
    when every game has a single seed (nothing to resample; ci_note NO_INTERVAL_ONE_SEED).
    """
    reference = reference or results.reference
    paper = paper_columns(reference)
    rows = []
    covered: set[str] = set()
    for weights in WEIGHTS:
        games, matrix = score_matrix(results, weights, reference)
        if games:
            covered |= set(games)
            rows.append(this_run_row(weights, matrix, reps=reps, seed=seed))

    paper = paper.assign(paper_normalized=human_normalized(paper["paper_dqn_mean"], paper["random_score"], paper["human_score"]))
    same = paper[paper["game"].isin(covered)]
    subset = bool(covered) and len(same) < len(paper)
    if subset:
        rows.append(published_row(f"Paper, the same {len(same)} games", same))
    pfrl = reproductions.pfrl_columns(reference)
    pfrl_rows = []
    if pfrl is not None:
        # Over the same games as this run, so that it reads beside this run's row; all of PFRL's before any is scored.
        pfrl_same = pfrl[pfrl["game"].isin(covered)] if covered else pfrl
        label = (f"{reproductions.PFRL_LABEL}, the same {len(pfrl_same)} games" if len(pfrl_same) < len(pfrl)
                 else f"{reproductions.PFRL_LABEL}, all {len(pfrl_same)} games")
        if len(pfrl_same):
            pfrl_rows.append(published_row(label, pfrl_same, "pfrl_normalized", "reproduction"))
    # PFRL's row right under the paper's row over the same games.
    if subset:
        rows += pfrl_rows
    rows.append(published_row(f"Paper, all {len(paper)} games (as published)", paper))
    if not subset:
        rows += pfrl_rows
    return pd.DataFrame(rows)


def runs_table(results: Results) -> pd.DataFrame:
    """runs.parquet in the table's game order with frames_percent and the scored weights of each run."""
    runs = results.runs.copy()
    runs["game"] = runs["game"].astype(str)
    paper = paper_columns(results.reference)
    order = {g: i for i, g in enumerate(experiment_games(results, paper))}
    dqn = results.scores[results.scores["agent"] == "dqn"]
    scored = dqn.groupby([dqn["game"].astype(str), "seed"])["weights"].agg(lambda w: ",".join(sorted(set(map(str, w)))))
    runs["scored_weights"] = [scored.get((g, s), "") for g, s in zip(runs["game"], runs["seed"])]
    runs["frames_percent"] = 100.0 * runs["frames_done"] / runs["frames_planned"].where(runs["frames_planned"] > 0)
    runs["display_name"] = runs["game"].map(display_name)
    # Each run's own host and versions, as its config.json recorded them (provenance.json "runs").
    recorded = {(str(r.get("game")), int(r.get("seed", -1))): r for r in results.provenance.get("runs") or [] if isinstance(r, dict)}
    runs["hostname"] = [recorded.get((g, int(s)), {}).get("hostname") for g, s in zip(runs["game"], runs["seed"])]
    runs["run_versions"] = [
        ", ".join(f"{k} {v}" for k, v in (recorded.get((g, int(s)), {}).get("versions") or {}).items()) or None
        for g, s in zip(runs["game"], runs["seed"])
    ]
    runs = runs.sort_values(["game", "seed"], key=lambda c: c.map(order) if c.name == "game" else c, kind="stable")
    return runs.reset_index(drop=True)


def missing_runs(results: Results) -> pd.DataFrame:
    """Runs without a complete training or without DQN scores for both weights, with the reason."""
    runs = runs_table(results)
    reasons = []
    for status, weights, done, planned in zip(runs["status"], runs["scored_weights"], runs["frames_done"], runs["frames_planned"]):
        absent = [w for w in WEIGHTS if w not in weights.split(",")]
        if status != RUN_COMPLETE:
            reasons.append(f"training unfinished: {format_int(done)} of {format_int(planned)} frames")
        elif absent:
            reasons.append(f"no evaluation scores for {' and '.join(absent)} weights")
        else:
            reasons.append("")
    runs["reason"] = reasons
    return runs[runs["reason"] != ""].reset_index(drop=True)


def device_hours(results: Results) -> pd.DataFrame:
    """Wall hours per game, split into GPU (device starting with "cuda") and CPU runs, with a total row."""
    runs = runs_table(results)
    gpu = runs["device"].astype(str).str.lower().str.startswith("cuda")
    runs["gpu_hours"] = np.where(gpu, runs["wall_hours"], 0.0)
    runs["cpu_hours"] = np.where(gpu, 0.0, runs["wall_hours"])
    per_game = runs.groupby("game", sort=False).agg(
        display_name=("display_name", "first"),
        frames_done=("frames_done", "sum"),
        frames_planned=("frames_planned", "sum"),
        gpu_hours=("gpu_hours", "sum"),
        cpu_hours=("cpu_hours", "sum"),
    )
    return per_game.reset_index()
