"""The report: aggregate metrics checked by hand, and the rendered HTML checked against its Parquet inputs."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
import shutil
import struct
import subprocess
import sys
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from analysis.report import FIGURE_FILES, build_report, metrics
from analysis.report import tables as report_tables
from analysis.numbers import MISSING, format_percent, format_score
from analysis.report import comparability as report_comparability
from analysis.report.paper import human_normalized, paper_best_episodes, paper_columns
from analysis.report.results import load_results
from baselines.on_track import BELOW_CAVEAT
from baselines.reference import nature_table, nips2013_table, pfrl_table
from dqn.errors import UserError
from helpers.synthetic_results import (
    DEMO_GAMES,
    SMALL_GAMES,
    SMALL_MISSING,
    write_demo,
    write_full,
    write_results,
    write_small,
)

REPO = Path(__file__).resolve().parents[1]
REPS = 300


# ---------------------------------------------------------------- metrics on tiny matrices

# Two runs (rows) x four games (columns); per-game means 10, 80, 120, 400.
TINY = np.array([[0.0, 70.0, 100.0, 300.0], [20.0, 90.0, 140.0, 500.0]])


def test_median_mean_and_counts_of_a_tiny_matrix():
    np.testing.assert_array_equal(metrics.game_scores(TINY), [10.0, 80.0, 120.0, 400.0])
    assert metrics.aggregate_median(TINY) == 100.0  # (80 + 120) / 2
    assert metrics.aggregate_mean(TINY) == 152.5  # 610 / 4
    assert metrics.count_at_or_above(TINY, 100.0) == 2  # 120, 400
    assert metrics.count_at_or_above(TINY, 75.0) == 3  # 80, 120, 400
    assert metrics.count_at_or_above(TINY, 80.0) == 3  # "at or above" includes the threshold


def test_iqm_cuts_a_quarter_of_the_scores_from_each_end():
    # 8 scores sorted: 0 20 70 90 | 100 140 300 500 -> cut 2 each end -> mean(70, 90, 100, 140).
    assert metrics.aggregate_iqm(TINY) == 100.0
    assert metrics.aggregate_iqm(np.arange(8.0)[:, None]) == 3.5  # mean(2, 3, 4, 5)
    # rliable's IQM is scipy's trim_mean over all run x game scores.
    rng = np.random.default_rng(3)
    for n in range(1, 23):
        scores = rng.normal(100.0, 80.0, size=(n, 1))
        assert metrics.aggregate_iqm(scores) == pytest.approx(scipy.stats.trim_mean(scores, 0.25, axis=None))


def test_missing_runs_are_not_scores():
    # Game 0 has runs 10 and (missing); game 1 has 0 and 100.
    scores = np.array([[10.0, 0.0], [np.nan, 100.0]])
    np.testing.assert_array_equal(metrics.game_scores(scores), [10.0, 50.0])
    assert metrics.aggregate_mean(scores) == 30.0
    assert metrics.aggregate_iqm(scores) == pytest.approx(110.0 / 3.0)  # 3 scores, int(0.75) = 0 cut
    with pytest.raises(ValueError, match="at least one run"):
        metrics.aggregate_mean(np.array([[1.0, np.nan], [2.0, np.nan]]))


def test_batch_axes_give_one_value_per_batch_entry():
    batch = np.stack([TINY, TINY + 10.0])
    np.testing.assert_array_equal(metrics.aggregate_median(batch), [100.0, 110.0])
    np.testing.assert_array_equal(metrics.aggregate_iqm(batch), [100.0, 110.0])


def test_bootstrap_of_one_game_with_two_runs_matches_the_hand_computed_distribution():
    # Resampling runs (0, 10) with replacement: means 0, 5, 10 with probabilities 1/4, 1/2, 1/4.
    scores = np.array([[0.0], [10.0]])
    draws = metrics.stratified_bootstrap(scores, metrics.aggregate_mean, reps=8000, seed=1)
    assert set(np.unique(draws)) == {0.0, 5.0, 10.0}
    assert np.mean(draws == 5.0) == pytest.approx(0.5, abs=0.02)
    assert np.mean(draws == 0.0) == pytest.approx(0.25, abs=0.02)
    assert metrics.interval_estimate(scores, metrics.aggregate_mean, reps=8000, seed=1) == (5.0, 0.0, 10.0)


def test_bootstrap_resamples_within_each_game():
    # Game 0 always scores 0, game 1 always 100: a stratified resample keeps one of each per run,
    # so the mean over games is 50 in every resample (a pooled bootstrap would vary).
    scores = np.array([[0.0, 100.0], [0.0, 100.0], [0.0, 100.0]])
    draws = metrics.stratified_bootstrap(scores, metrics.aggregate_mean, reps=500, seed=0)
    np.testing.assert_array_equal(draws, 50.0)
    # One run per game: nothing to resample, the interval is the point.
    single = np.array([[20.0, 60.0, 90.0]])
    assert metrics.interval_estimate(single, metrics.aggregate_median, reps=200, seed=0) == (60.0, 60.0, 60.0)


def test_bootstrap_is_seeded():
    scores = np.random.default_rng(0).normal(100.0, 50.0, size=(3, 10))
    a = metrics.interval_estimate(scores, metrics.aggregate_iqm, reps=500, seed=7)
    b = metrics.interval_estimate(scores, metrics.aggregate_iqm, reps=500, seed=7)
    c = metrics.interval_estimate(scores, metrics.aggregate_iqm, reps=500, seed=8)
    assert a == b and a != c
    assert a[1] <= a[0] <= a[2]


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    # scipy.stats.bootstrap with one sample per game is the same stratified bootstrap (it needs >= 2 runs).
    rng = np.random.default_rng(5)
    scores = rng.normal(100.0, 40.0, size=(6, 4))
    _, low, high = metrics.interval_estimate(scores, metrics.aggregate_mean, reps=20000, seed=0)
    reference = scipy.stats.bootstrap(
        tuple(scores.T), lambda *games, axis=-1: np.mean([g.mean(axis=axis) for g in games], axis=0),
        method="percentile", n_resamples=20000, rng=1, vectorized=True,
    ).confidence_interval  # fmt: skip
    assert low == pytest.approx(reference.low, abs=1.0)
    assert high == pytest.approx(reference.high, abs=1.0)


def test_paper_aggregates_from_extended_data_table_2():
    paper = paper_columns("nature")
    assert len(paper) == 49
    normalized = human_normalized(paper["paper_dqn_mean"], paper["random_score"], paper["human_score"])
    scores = normalized.to_numpy()[np.newaxis, :]
    assert round(float(metrics.aggregate_median(scores)), 1) == 93.5
    assert round(float(metrics.aggregate_mean(scores)), 1) == 241.1
    assert metrics.count_at_or_above(scores, 75.0) == 29
    assert metrics.count_at_or_above(scores, 100.0) == 23


def test_reference_columns_of_both_papers_come_from_the_csvs():
    nature, table = paper_columns("nature").set_index("game"), nature_table().set_index("ale_id")
    assert list(nature.index) == list(table.index)
    assert nature.loc["breakout", "paper_dqn_mean"] == 401.2 and nature.loc["breakout", "paper_dqn_std"] == 26.9
    np.testing.assert_array_equal(nature["human_score"], table["human_score"])
    nips, table13 = paper_columns("nips2013").set_index("game"), nips2013_table().set_index("ale_id")
    assert len(nips) == 7
    assert (nips.loc["breakout", "random_score"], nips.loc["breakout", "human_score"], nips.loc["breakout", "paper_dqn_mean"]) == (1.2, 31.0, 168.0)
    np.testing.assert_array_equal(nips["paper_dqn_mean"], table13["dqn"])
    assert nips["paper_dqn_std"].isna().all()  # Table 1 gives no s.d.
    with pytest.raises(UserError, match="unknown reference"):
        paper_columns("atari100k")


def test_best_episode_columns_come_from_table_1_and_the_nature_paper_has_none():
    best = paper_best_episodes("nips2013").set_index("game")
    table13 = nips2013_table().set_index("ale_id")
    assert list(best.index) == list(table13.index)
    assert (best.loc["breakout", "paper_dqn_best"], best.loc["breakout", "paper_hneat_best"]) == (225.0, 52.0)
    assert (best.loc["pong", "paper_dqn_best"], best.loc["pong", "paper_hneat_best"]) == (21.0, 19.0)
    np.testing.assert_array_equal(best["paper_dqn_best"], table13["dqn_best"])
    np.testing.assert_array_equal(best["paper_hneat_best"], table13["hneat_best"])
    assert paper_best_episodes("nature") is None  # Extended Data Table 2 reports averages only


# ---------------------------------------------------------------- parsing the rendered HTML


class _Tables(HTMLParser):
    """Every <table id=...>: rows of (attributes, text) cells, header rows apart; and every <img src>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, list]] = {}
        self.images: list[str] = []
        self.external: list[str] = []
        self._table = None
        self._section = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for name in ("src", "href"):
            if tag in ("img", "script", "link", "iframe") and re.match(r"(https?:)?//", attrs.get(name, "")):
                self.external.append(attrs[name])
        if tag == "table" and "id" in attrs:
            self._table = self.tables.setdefault(attrs["id"], {"head": [], "body": [], "class": attrs.get("class", "")})
        elif self._table is not None and tag in ("thead", "tbody"):
            self._section = "head" if tag == "thead" else "body"
        elif self._table is not None and tag == "tr":
            self._row = {"attrs": attrs, "cells": []}
        elif self._row is not None and tag in ("td", "th"):
            self._cell = {"attrs": attrs, "text": ""}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._cell["text"] = self._cell["text"].strip()
            self._row["cells"].append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table[self._section].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def parse(html_text: str) -> _Tables:
    parser = _Tables()
    parser.feed(html_text)
    return parser


def column_index(table: dict, header: str, occurrence: int = 0) -> int:
    labels = [c["text"] for c in table["head"][-1]["cells"]]
    return [i for i, label in enumerate(labels) if label == header][occurrence]


def number(cell: dict) -> float:
    value = cell["attrs"]["data-value"]
    return math.nan if value == "" else float(value)


def render(results: Path, out: Path) -> tuple[str, _Tables]:
    build_report(results, out / "report.html", out / "figures", bootstrap_reps=REPS, seed=0)
    text = (out / "report.html").read_text(encoding="utf-8")
    return text, parse(text)


def written_and_rendered(tmp_path_factory, name: str, writer, **kwargs):
    """A synthetic result set written by `writer` and its report: (folder, out, text, parsed)."""
    folder = writer(tmp_path_factory.mktemp("results") / name, **kwargs)
    out = tmp_path_factory.mktemp(f"report-{name}")
    return (folder, out, *render(folder, out))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return written_and_rendered(tmp_path_factory, "small", write_small)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return written_and_rendered(tmp_path_factory, "full", write_full)


def expected_rows(folder: Path) -> pd.DataFrame:
    """The per-game numbers computed straight from scores.parquet with pandas, independently of analysis.report."""
    scores = pd.read_parquet(folder / "scores.parquet")
    paper = nature_table().set_index("ale_id")
    out = {}
    for (game, agent, weights), rows in scores.groupby(["game", "agent", "weights"]):
        prefix = "random" if agent == "random" else weights
        out.setdefault(game, {})[f"{prefix}_mean"] = rows["mean"].mean()
        out[game][f"{prefix}_std"] = rows["mean"].std(ddof=1)
        out[game][f"{prefix}_seeds"] = len(rows)
        # The s.d. over episodes pooled over seeds: the root mean square of the seeds' s.d.s.
        out[game][f"{prefix}_episode_std"] = math.sqrt((rows["std"] ** 2).mean())
        if agent == "dqn":
            random_score, human_score = paper.loc[game, "random_score"], paper.loc[game, "human_score"]
            normalized = 100.0 * (rows["mean"] - random_score) / (human_score - random_score)
            out[game][f"{weights}_normalized"] = normalized.mean()
            # The workflow's own column must say the same.
            np.testing.assert_allclose(normalized, rows["human_normalized"], rtol=1e-12)
    return pd.DataFrame.from_dict(out, orient="index")


EPISODE_SD, SEED_SD = "\u00b1 s.d. episodes", "\u00b1 s.d. seeds"
GAME_COLUMNS = {  # (header, occurrence among equal headers) -> expected column
    ("Random", 0): "random_score", ("Human", 0): "human_score", ("DQN", 0): "paper_dqn_mean",
    (EPISODE_SD, 0): "paper_dqn_std", ("Random", 1): "random_mean", ("DQN best", 0): "best_mean",
    (EPISODE_SD, 1): "best_episode_std", (SEED_SD, 0): "best_std", ("DQN final", 0): "final_mean",
    (EPISODE_SD, 2): "final_episode_std", (SEED_SD, 1): "final_std",
    ("Best", 0): "best_normalized", ("Final", 0): "final_normalized",
}  # fmt: skip


def check_game_table(folder: Path, parsed: _Tables) -> dict[str, dict]:
    table = parsed.tables["game-table"]
    expected = expected_rows(folder)
    paper = nature_table().set_index("ale_id")
    rows = {row["attrs"]["data-game"]: row for row in table["body"]}
    for game, row in rows.items():
        cells = row["cells"]
        want = {"random_score": paper.loc[game, "random_score"], "human_score": paper.loc[game, "human_score"],
                "paper_dqn_mean": paper.loc[game, "dqn_mean"], "paper_dqn_std": paper.loc[game, "dqn_std"]}
        want.update({c: expected.loc[game, c] if c in expected.columns and game in expected.index else math.nan
                     for c in ("random_mean", "best_mean", "best_std", "best_episode_std", "final_mean", "final_std",
                               "final_episode_std", "best_normalized", "final_normalized")})
        want_copied = {"random_score", "human_score", "paper_dqn_mean", "paper_dqn_std"}
        for (header, occurrence), column in GAME_COLUMNS.items():
            cell = cells[column_index(table, header, occurrence)]
            got, value = number(cell), want[column]
            if pd.isna(value):
                # An s.d. across seeds of a single seed reads so; any other missing value is a dash.
                one_seed = column in ("best_std", "final_std") and game in expected.index and \
                    expected.loc[game].get(column.replace("std", "seeds")) == 1
                assert math.isnan(got) and cell["text"] == ("n/a (1 seed)" if one_seed else "\u2014"), (game, column)
            elif column.endswith("normalized"):
                assert got == pytest.approx(value, rel=1e-12), (game, column)
                assert cell["text"] == format_percent(value)
            elif column in want_copied:
                assert got == value, (game, column)  # data-value round-trips the float exactly
                assert cell["text"] == format_score(value), (game, column)
            else:
                # Means and s.d.s over seeds: equal up to the order of floating-point summation.
                assert got == pytest.approx(value, rel=1e-12, abs=1e-12), (game, column)
                assert cell["text"] == format_score(got), (game, column)
        paper_normalized = 100.0 * (want["paper_dqn_mean"] - want["random_score"]) / (want["human_score"] - want["random_score"])
        assert number(cells[column_index(table, "Paper")]) == pytest.approx(paper_normalized, rel=1e-12)
        # PFRL's score (the second "DQN" column) straight from its CSV, normalized with the same random and human.
        pfrl = pfrl_table().set_index("ale_id").loc[game, "pfrl_dqn_mean"]
        assert number(cells[column_index(table, "DQN", 1)]) == pfrl and cells[column_index(table, "DQN", 1)]["text"] == format_score(pfrl)
        pfrl_normalized = 100.0 * (pfrl - want["random_score"]) / (want["human_score"] - want["random_score"])
        assert number(cells[column_index(table, "PFRL")]) == pytest.approx(pfrl_normalized, rel=1e-12)
    return rows


# ---------------------------------------------------------------- the small set: 3 games, Breakout missing


def test_small_report_table_matches_the_parquet_inputs(small):
    folder, _, _, parsed = small
    rows = check_game_table(folder, parsed)
    assert sorted(rows) == sorted(SMALL_GAMES)  # the missing game is a row, not dropped
    # Spot values worked out by hand from scores.parquet.
    scores = pd.read_parquet(folder / "scores.parquet")
    pong = scores[(scores["game"] == "pong") & (scores["weights"] == "best")]["mean"].to_numpy()
    table = parsed.tables["game-table"]
    assert number(rows["pong"]["cells"][column_index(table, "DQN best")]) == (pong[0] + pong[1]) / 2
    assert number(rows["pong"]["cells"][column_index(table, SEED_SD)]) == pytest.approx(abs(pong[0] - pong[1]) / math.sqrt(2))


def test_small_report_lists_missing_games_and_runs(small):
    folder, _, text, parsed = small
    table = parsed.tables["game-table"]
    rows = {row["attrs"]["data-game"]: row for row in table["body"]}
    (missing,) = SMALL_MISSING
    status = rows[missing]["cells"][column_index(table, "Status")]["text"]
    assert status == "missing (0 of 2 seeds scored)"
    assert rows[missing]["attrs"]["class"] == "status-missing"
    assert rows["pong"]["cells"][column_index(table, "Status")]["text"] == "complete"
    # Breakout's random baseline exists and is shown; its DQN cells are empty.
    assert not math.isnan(number(rows[missing]["cells"][column_index(table, "Random", 1)]))
    assert rows[missing]["cells"][column_index(table, "Higher")]["text"] == ""
    runs = pd.read_parquet(folder / "runs.parquet")
    listed = parsed.tables["missing-runs"]["body"]
    assert [(r["cells"][0]["text"], int(r["cells"][1]["text"])) for r in listed] == [("Breakout", 0), ("Breakout", 1)]
    run = runs.set_index(["game", "seed"]).loc[(missing, 0)]
    assert run["frames_done"] < run["frames_planned"]
    expected = f"training unfinished: {run['frames_done']:,} of {run['frames_planned']:,} frames"
    assert expected in [c["text"] for c in listed[0]["cells"]]
    assert "partial: 4 of 6 runs complete" in text


def test_small_report_aggregates_cover_the_scored_games_beside_the_paper(small):
    folder, _, text, parsed = small
    rows = {r["cells"][0]["text"]: r["cells"] for r in parsed.tables["aggregates"]["body"]}
    # PFRL's row right under the paper's over the same games.
    assert list(rows) == ["This run, best-intermediate weights", "This run, final weights", "Paper, the same 2 games",
                          "PFRL reproduction, the same 2 games", "Paper, all 49 games (as published)"]
    scores = pd.read_parquet(folder / "scores.parquet")
    best = scores[(scores["agent"] == "dqn") & (scores["weights"] == "best")]
    matrix = best.pivot(index="seed", columns="game", values="human_normalized").to_numpy()
    ours = rows["This run, best-intermediate weights"]
    assert [int(ours[1]["text"]), int(ours[2]["text"])] == [2, 4]
    assert float(ours[3]["attrs"]["data-value"]) == pytest.approx(np.median(matrix.mean(axis=0)))
    assert float(ours[5]["attrs"]["data-value"]) == pytest.approx(scipy.stats.trim_mean(matrix, 0.25, axis=None))
    low, high = float(ours[3]["attrs"]["data-low"]), float(ours[3]["attrs"]["data-high"])
    assert low <= float(ours[3]["attrs"]["data-value"]) <= high
    paper = nature_table().set_index("ale_id").loc[["pong", "seaquest"]]
    paper_normalized = 100 * (paper["dqn_mean"] - paper["random_score"]) / (paper["human_score"] - paper["random_score"])
    same = rows["Paper, the same 2 games"]
    assert float(same[3]["attrs"]["data-value"]) == pytest.approx(paper_normalized.median())
    assert same[3]["attrs"]["data-low"] == ""  # no interval for one published number per game
    published = rows["Paper, all 49 games (as published)"]
    assert [published[3]["text"], published[4]["text"], published[6]["text"], published[7]["text"]] == ["93.5", "241.1", "23", "29"]
    # PFRL on Pong and Seaquest, by hand: 100 x (20.0 + 20.7) / (9.3 + 20.7) = 135.67 and
    # 100 x (6252 - 68.4) / (20182 - 68.4) = 30.74; median = mean = IQM (nothing cut from 2) = 83.21.
    pfrl = rows["PFRL reproduction, the same 2 games"]
    for cell in pfrl[3:6]:
        assert number(cell) == pytest.approx((4070.0 / 30.0 + 618360.0 / 20113.6) / 2, rel=1e-12)
        assert cell["text"] == "83.2" and cell["attrs"]["data-low"] == ""
    assert [pfrl[1]["text"], pfrl[2]["text"], pfrl[6]["text"], pfrl[7]["text"]] == ["2", "2", "1", "1"]
    assert "and <strong>83.2 %</strong> for PFRL's reproduction on the same 2 games" in text


def test_deviations_table_is_deviations_parquet(small):
    folder, _, _, parsed = small
    deviations = pd.read_parquet(folder / "deviations.parquet")
    assert len(deviations) > 0  # the demo preset deviates
    rows = [[c["text"] for c in r["cells"]] for r in parsed.tables["deviations"]["body"]]
    # Values are shown with thousands separators (1,000,000); otherwise exactly the Parquet text.
    assert [[cell.replace(",", "") if i in (1, 2) else cell for i, cell in enumerate(row)] for row in rows] \
        == deviations.astype(str).values.tolist()
    paper_replay = next(row for row in rows if row[0] == "replay_memory_size_transitions")[1]
    assert paper_replay == "1,000,000"
    assert [c["text"] for c in parsed.tables["deviations"]["head"][0]["cells"]] == ["field", "paper", "this run", "unit", "note"]


def test_provenance_versions_and_hours_are_shown(small):
    folder, _, text, parsed = small
    for expected in ("2.13.0", "0.12.1", "1.4.0", "9.1.0", "0123456789abcdef0123456789abcdef01234567", "AMD EPYC 9654"):
        assert expected in text
    runs = pd.read_parquet(folder / "runs.parquet")
    hours = {r["cells"][0]["text"]: r["cells"] for r in parsed.tables["hours"]["body"]}
    pong = runs[runs["game"] == "pong"]
    gpu = pong[pong["device"].str.startswith("cuda")]["wall_hours"].sum()
    cpu = pong[~pong["device"].str.startswith("cuda")]["wall_hours"].sum()
    assert float(hours["Pong"][3]["attrs"]["data-value"]) == pytest.approx(gpu)
    assert float(hours["Pong"][4]["attrs"]["data-value"]) == pytest.approx(cpu)
    assert int(hours["Breakout"][1]["attrs"]["data-value"]) == runs[runs["game"] == "breakout"]["frames_done"].sum()
    assert len(parsed.tables["runs"]["body"]) == len(runs)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_figures_are_valid_pngs_embedded_in_the_page(small):
    _, out, text, parsed = small
    from PIL import Image

    embedded = [base64.b64decode(src.split(",", 1)[1]) for src in parsed.images]
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    files = [(out / "figures" / name).read_bytes() for name in FIGURE_FILES]
    assert embedded == files  # the page shows exactly the files the workflow registers
    for data, name in zip(files, FIGURE_FILES):
        width, height = _png_size(data)
        assert width > 300 and height > 150, name
        with Image.open(out / "figures" / name) as image:
            image.load()  # decodes every pixel: a truncated file raises here
            assert image.size == (width, height)
    assert parsed.external == []  # self-contained: no network
    assert "<script src" not in text and "<link" not in text


# ---------------------------------------------------------------- the full set and others


def test_full_report_has_every_game_and_matches_the_parquet_inputs(full):
    folder, _, text, parsed = full
    rows = check_game_table(folder, parsed)
    assert len(rows) == 49
    assert list(rows) == list(nature_table()["ale_id"])  # the paper's order until a header is clicked
    assert "complete: 147 of 147 runs" in text and "partial:" not in text
    assert "None: every planned run trained to the end" in text
    aggregates = {r["cells"][0]["text"]: r["cells"] for r in parsed.tables["aggregates"]["body"]}
    assert "Paper, the same 49 games" not in aggregates  # same games as published: one paper row
    scores = pd.read_parquet(folder / "scores.parquet")
    final = scores[(scores["agent"] == "dqn") & (scores["weights"] == "final")]
    per_game = final.groupby("game")["human_normalized"].mean()
    ours = aggregates["This run, final weights"]
    assert float(ours[4]["attrs"]["data-value"]) == pytest.approx(per_game.mean())
    assert int(ours[6]["text"]) == int((per_game >= 100).sum())
    assert int(ours[7]["text"]) == int((per_game >= 75).sum())


# ---------------------------------------------------------------- a first demo run: one seed, not the paper's experiment


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return written_and_rendered(tmp_path_factory, "demo", write_demo)


def banners(text: str) -> dict[str, str]:
    """The text of every banner of the page, by id."""
    found = re.findall(r'<div class="banner" id="([^"]+)" role="note">(.*?)</div>', text, re.DOTALL)
    return {element_id: " ".join(unescape(re.sub(r"<[^>]+>", "", body)).split()) for element_id, body in found}


def test_demo_report_says_it_is_not_the_papers_experiment_with_its_frames(demo):
    folder, _, text, _ = demo
    provenance = json.loads((folder / "provenance.json").read_text())
    deviations = pd.read_parquet(folder / "deviations.parquet").set_index("field")
    assert provenance["preset"] == "demo" and provenance["reference"] == "nature"
    # By hand from the synthetic files: the demo trains deviations' training_length_frames per run, at the
    # paper's action repeat (not a deviation), against the paper's 200M frames = 50M agent steps.
    assert "action_repeat_frames" not in deviations.index
    frames = int(deviations.loc["training_length_frames", "this_value"])
    paper_frames = int(deviations.loc["training_length_frames", "paper_value"])
    assert (frames, paper_frames) == (400_000, 200_000_000)
    # 400,000 / 200,000,000 = 0.2 %, given to two significant digits.
    expected = ("Each run trained 400,000 emulator frames (100,000 agent steps), 0.20 % of the paper's "
                "200,000,000 frames (50,000,000 agent steps) per run.")
    found = banners(text)
    assert set(found) == {"banner-top", "banner-summary"}
    for banner in found.values():
        assert banner.startswith("Not the paper's experiment: the scores are not comparable to the Nature 2015 paper's.")
        assert expected in banner
    # At the top of the page (under the title) and at the top of the summary.
    assert text.index('id="banner-top"') < text.index("<nav>") and text.index('<section id="summary">') < text.index(
        'id="banner-summary"') < text.index('class="headline"')
    why = found["banner-summary"]
    assert "preset demo, not the paper's nature" in why
    assert f"{len(deviations)} hyperparameters differ from the paper's" in why
    assert "not comparable with the paper's" in text  # the headline says so too


def test_one_seed_confidence_intervals_read_not_available(demo):
    folder, _, text, parsed = demo
    rows = {r["cells"][0]["text"]: r["cells"] for r in parsed.tables["aggregates"]["body"]}
    for label in ("This run, best-intermediate weights", "This run, final weights"):
        for cell in rows[label][3:6]:  # median, mean, IQM
            assert cell["text"].endswith(" [n/a (1 seed)]"), cell["text"]
            assert cell["attrs"]["data-low"] == cell["attrs"]["data-high"] == ""  # no zero-width interval
            assert cell["text"] == f"{format_percent(number(cell))} [n/a (1 seed)]"
    assert "95 % CI n/a (1 seed)" in text
    # A zero-width interval such as [400.5, 400.5] appears nowhere.
    assert not re.search(r"\[(-?[\d,.]+), \1\]", text)
    table = report_tables.aggregate_table(load_results(folder), reps=REPS)
    ours = table[table["kind"] == "this run"]
    assert ours[["median_low", "median_high", "iqm_low", "iqm_high"]].isna().all().all()
    assert set(ours["ci_note"]) == {"n/a (1 seed)"}


def test_one_seed_table_shows_both_spreads_labelled_apart(demo):
    folder, _, _, parsed = demo
    table = parsed.tables["game-table"]
    rows = check_game_table(folder, parsed)
    assert sorted(rows) == sorted(DEMO_GAMES)
    headers = table["head"][-1]["cells"]
    episode_sd = [h for h in headers if h["text"] == EPISODE_SD]
    seed_sd = [h for h in headers if h["text"] == SEED_SD]
    assert len(episode_sd) == 3 and len(seed_sd) == 2  # the paper's; best and final for this run
    assert "paper's s.d. over its 30 evaluation episodes" in episode_sd[0]["attrs"]["title"]
    for header in episode_sd[1:]:
        assert "over single evaluation episodes, the paper's kind of s.d." in header["attrs"]["title"]
    for header in seed_sd:
        assert "across seeds of the seed means" in header["attrs"]["title"] and "not the" in header["attrs"]["title"]
    scores = pd.read_parquet(folder / "scores.parquet").set_index(["game", "agent", "seed", "weights"])
    for game, row in rows.items():
        cells = row["cells"]
        # One seed: this run's s.d. over episodes is the seed's own std; the s.d. across seeds does not exist.
        assert number(cells[column_index(table, EPISODE_SD, 1)]) == scores.loc[(game, "dqn", 0, "best"), "std"]
        assert number(cells[column_index(table, EPISODE_SD, 2)]) == scores.loc[(game, "dqn", 0, "final"), "std"]
        for occurrence in (0, 1):
            cell = cells[column_index(table, SEED_SD, occurrence)]
            assert cell["text"] == "n/a (1 seed)" and cell["attrs"]["data-value"] == ""


def test_the_papers_own_presets_show_no_banner(full, nips):
    for folder, _, text, _ in (full, nips):
        provenance = json.loads((folder / "provenance.json").read_text())
        assert provenance["preset"] == provenance["reference"]
        assert banners(text) == {} and "not comparable" not in text
    # The 2013 preset's deviations.parquet lists its readings of what the paper leaves unstated: not departures.
    assert len(pd.read_parquet(nips[0] / "deviations.parquet")) > 0
    assert report_comparability.comparability(load_results(nips[0])).deviations == ()


def test_a_paper_preset_with_an_override_shows_the_banner(tmp_path):
    folder = write_full(tmp_path / "nature")
    deviations = pd.DataFrame([{"field": "replay_memory_size_transitions", "paper_value": "1000000",
                                "this_value": "100000", "unit": "transitions", "note": ""}])
    deviations.to_parquet(folder / "deviations.parquet")
    comparability = report_comparability.comparability(load_results(folder))
    assert not comparability.comparable and comparability.deviations == ("replay_memory_size_transitions",)
    (length,) = comparability.lengths  # the full length: every game trains the paper's 200M frames
    assert (length.frames, length.steps, length.paper_frames, length.paper_steps) == (200_000_000, 50_000_000,
                                                                                      200_000_000, 50_000_000)
    assert len(length.games) == 49


def test_2013_frames_per_run_are_the_2013_papers_10m_agent_steps(tmp_path):
    folder = write_results(tmp_path / "nips", games=("breakout", "space_invaders"), seeds=(0,), preset="demo",
                           reference="nips2013", curve_points=2)
    comparability = report_comparability.comparability(load_results(folder))
    assert not comparability.comparable and comparability.preset == "demo" and comparability.paper_preset == "nips2013"
    lengths = {length.games: length for length in comparability.lengths}
    # The 2013 preset: 10M agent steps, at k = 4 (40M frames) and k = 3 for Space Invaders (30M frames).
    assert (lengths[("Breakout",)].paper_frames, lengths[("Breakout",)].paper_steps) == (40_000_000, 10_000_000)
    assert (lengths[("Space Invaders",)].paper_frames, lengths[("Space Invaders",)].paper_steps) == (30_000_000, 10_000_000)
    assert lengths[("Breakout",)].frames == 400_000 and lengths[("Breakout",)].steps == 100_000


def test_learning_curves_of_few_evaluations_have_dots_readable_frames_and_the_random_agent(demo):
    folder, _, _, _ = demo
    from analysis.report import curve_figures, figures

    results = load_results(folder)
    table = report_tables.game_table(results)
    fig = curve_figures.learning_curves_figure(results.learning_curves, table, reference_label="Nature 2015 paper")
    fig.canvas.draw()
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert "random agent (this run's mean score)" in labels
    assert labels[0] == "mean over seeds (dots: evaluations)"
    figure_box, legend_box = fig.bbox, legend.get_window_extent()
    assert figure_box.x0 <= legend_box.x0 and legend_box.x1 <= figure_box.x1
    assert figure_box.y0 <= legend_box.y0 and legend_box.y1 <= figure_box.y1
    for ax, (_, row) in zip(fig.axes, table.iterrows()):
        assert ax.get_xlabel() == "frames (thousands)"  # 400,000 frames: thousands, not 0.4 millions
        mean_line = ax.lines[0]
        assert mean_line.get_marker() == "o"  # 4 evaluations: each one drawn
        np.testing.assert_allclose(mean_line.get_xdata(), [100.0, 200.0, 300.0, 400.0])
        random_line = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert len(random_line) == 1 and random_line[0].get_ydata()[0] == pytest.approx(row["random_mean"])
    scores = pd.read_parquet(folder / "scores.parquet")
    pong_random = scores[(scores["game"] == "pong") & (scores["agent"] == "random")]["mean"].mean()
    assert table.set_index("game").loc["pong", "random_mean"] == pytest.approx(pong_random)
    # Drawn at 150 dpi: the PNG is 1.5 times the size the page lays it out at.
    assert figures.DPI == 150


def test_partial_seeds_and_the_2013_reference(tmp_path):
    games = tuple(nips2013_table()["ale_id"])
    folder = write_results(tmp_path / "nips", games=games, seeds=(0, 1), missing_runs=[("pong", 1)], reference="nips2013")
    text, parsed = render(folder, tmp_path / "report")
    table = parsed.tables["game-table"]
    rows = {r["attrs"]["data-game"]: r["cells"] for r in table["body"]}
    assert list(rows) == list(games)
    assert rows["pong"][column_index(table, "Status")]["text"] == "partial (1 of 2 seeds scored)"
    reference = nips2013_table().set_index("ale_id")
    for game, cells in rows.items():
        assert number(cells[column_index(table, "Random")]) == reference.loc[game, "random"]
        assert number(cells[column_index(table, "Human")]) == reference.loc[game, "human"]
        assert number(cells[column_index(table, "DQN")]) == reference.loc[game, "dqn"]
        assert cells[column_index(table, EPISODE_SD)]["text"] == "\u2014"
    # Pong's one scored seed: its mean, no s.d., normalized with Table 1's random and human.
    scores = pd.read_parquet(folder / "scores.parquet").set_index(["game", "agent", "seed", "weights"])
    pong = scores.loc[("pong", "dqn", 0, "best"), "mean"]
    assert number(rows["pong"][column_index(table, "DQN best")]) == pong
    seed_sd = rows["pong"][column_index(table, SEED_SD)]
    assert math.isnan(number(seed_sd)) and seed_sd["text"] == "n/a (1 seed)"
    # Its s.d. over episodes is that one seed's (scores.parquet std).
    assert number(rows["pong"][column_index(table, EPISODE_SD, 1)]) == pytest.approx(scores.loc[("pong", "dqn", 0, "best"), "std"])
    assert number(rows["pong"][column_index(table, "Best")]) == pytest.approx(100 * (pong + 20.4) / (-3 + 20.4))
    assert "NIPS 2013 workshop paper (Table 1)" in text and "Table 1 of the 2013 workshop paper" in text
    aggregates = {r["cells"][0]["text"]: r["cells"] for r in parsed.tables["aggregates"]["body"]}
    assert int(aggregates["This run, best-intermediate weights"][2]["text"]) == 13  # 7 games x 2 seeds - 1
    assert "Paper, all 7 games (as published)" in aggregates


# ---------------------------------------------------------------- the 2013 single best episode


def _hand_episodes() -> pd.DataFrame:
    """Episodes small enough to check by hand: each maximum is in a different seed than the mean suggests."""
    rows = [
        ("breakout", "dqn", 0, "best", [10.0, 300.0, 20.0]),
        ("breakout", "dqn", 1, "best", [250.0, 5.0]),
        ("breakout", "dqn", 0, "final", [7.0, 8.0]),
        ("breakout", "dqn", 1, "final", [400.0, 1.0]),
        ("breakout", "random", 0, "none", [9999.0]),  # the random agent (weights "none"): not a DQN episode
        ("pong", "dqn", 0, "best", [-21.0, 21.0, 3.0]),
        ("pong", "dqn", 0, "final", [-5.0, 19.0]),
        ("seaquest", "random", 0, "none", [100.0]),
    ]
    frames = [
        pd.DataFrame({"game": game, "agent": agent, "seed": np.int64(seed), "weights": weights,
                      "episode": np.arange(len(scores), dtype=np.int64), "score": scores})
        for game, agent, seed, weights, scores in rows
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_best_episode_table_is_the_max_over_seeds_and_episodes_of_each_weights(tmp_path):
    folder = write_results(tmp_path / "nips", games=("breakout", "pong", "seaquest"), seeds=(0, 1),
                           missing_games=("seaquest",), missing_runs=[("pong", 1)], preset="nips2013", reference="nips2013")
    results = dataclasses.replace(load_results(folder), episodes=_hand_episodes())
    table = report_tables.best_episode_table(results).set_index("game")
    assert list(table.index) == ["breakout", "pong", "seaquest"]
    # Breakout: best 300 (seed 0; mean 117), final 400 (seed 1; mean 104); the random agent's 9999 ignored.
    assert (table.loc["breakout", "best_max_score"], table.loc["breakout", "final_max_score"]) == (300.0, 400.0)
    assert (table.loc["breakout", "best_episodes"], table.loc["breakout", "final_episodes"]) == (5, 4)
    assert (table.loc["pong", "best_max_score"], table.loc["pong", "final_max_score"]) == (21.0, 19.0)
    assert (table.loc["pong", "best_episodes"], table.loc["pong", "final_episodes"]) == (3, 2)
    assert math.isnan(table.loc["seaquest", "best_max_score"]) and math.isnan(table.loc["seaquest", "final_max_score"])
    assert table.loc["seaquest", "best_episodes"] == table.loc["seaquest", "final_episodes"] == 0
    assert list(table["status"]) == ["complete", "partial", "missing"]
    assert (table.loc["breakout", "paper_dqn_best"], table.loc["breakout", "paper_hneat_best"]) == (225.0, 52.0)
    assert (table.loc["pong", "paper_dqn_best"], table.loc["pong", "paper_hneat_best"]) == (21.0, 19.0)
    assert report_tables.best_episode_table(results, "nature") is None


@pytest.fixture(scope="module")
def nips(tmp_path_factory):
    """All 7 games of Table 1 x 2 seeds: Enduro never scored, Pong's seed 1 unfinished."""
    return written_and_rendered(tmp_path_factory, "nips", write_results, games=tuple(nips2013_table()["ale_id"]),
                                seeds=(0, 1), missing_games=("enduro",), missing_runs=[("pong", 1)], preset="nips2013",
                                reference="nips2013")


def test_2013_report_shows_the_single_best_episodes_beside_table_1(nips):
    folder, _, text, parsed = nips
    assert "<h3>Single best episode (Table 1, lower part)</h3>" in text
    table = parsed.tables["best-episodes"]
    rows = {r["attrs"]["data-game"]: r for r in table["body"]}
    assert list(rows) == list(nips2013_table()["ale_id"])
    reference = nips2013_table().set_index("ale_id")
    episodes = pd.read_parquet(folder / "episodes.parquet")
    dqn = episodes[episodes["agent"] == "dqn"]
    for game, row in rows.items():
        cells = row["cells"]
        assert number(cells[column_index(table, "DQN Best")]) == reference.loc[game, "dqn_best"]
        assert number(cells[column_index(table, "HNeat Best")]) == reference.loc[game, "hneat_best"]
        for header, weights in (("Best-intermediate weights", "best"), ("Final weights", "final")):
            cell = cells[column_index(table, header)]
            scores = dqn[(dqn["game"] == game) & (dqn["weights"] == weights)]["score"]
            if scores.empty:
                assert cell["attrs"]["data-value"] == "" and cell["text"] == MISSING, (game, weights)
                continue
            assert number(cell) == scores.max() and cell["text"] == format_score(scores.max()), (game, weights)
            assert scores.max() > scores.mean()  # so a mean in its place would fail the line above
    breakout, pong = rows["breakout"]["cells"], rows["pong"]["cells"]
    assert [breakout[column_index(table, h)]["text"] for h in ("DQN Best", "HNeat Best")] == ["225.0", "52.0"]
    assert [pong[column_index(table, h)]["text"] for h in ("DQN Best", "HNeat Best")] == ["21.0", "19.0"]


def test_2013_best_episodes_of_missing_and_partial_games_look_so(nips):
    folder, _, text, parsed = nips
    table = parsed.tables["best-episodes"]
    rows = {r["attrs"]["data-game"]: r for r in table["body"]}
    assert rows["enduro"]["attrs"]["class"] == "status-missing"
    assert rows["enduro"]["cells"][column_index(table, "Status")]["text"] == "missing (0 of 2 seeds scored)"
    assert rows["pong"]["attrs"]["class"] == "status-partial"
    assert rows["pong"]["cells"][column_index(table, "Status")]["text"] == "partial (1 of 2 seeds scored)"
    assert rows["breakout"]["cells"][column_index(table, "Status")]["text"] == "complete"
    # Pong's maximum is over its one scored seed's 30 episodes, the others' over 2 x 30.
    pong = pd.read_parquet(folder / "episodes.parquet").query("game == 'pong' and agent == 'dqn'")
    assert set(pong["seed"]) == {0} and len(pong[pong["weights"] == "best"]) == 30
    note = re.search(r'id="best-episodes".*?</table></div>\s*<p>(.*?)</p>', text, re.DOTALL).group(1)
    assert unescape(note) == (
        "The NIPS 2013 workshop paper reports the score of the single best episode; this run's columns are the maximum "
        "over all its evaluation episodes of a game and weights, over every seed (60 episodes per game and weights, "
        "except 30 for Pong), so unlike a mean they grow with the number of episodes and seeds evaluated."
    )


def test_nature_report_has_no_best_episode_table(small):
    folder, _, text, parsed = small
    assert "best-episodes" not in parsed.tables
    assert "Single best episode" not in text and "HNeat" not in text
    assert report_tables.best_episode_table(load_results(folder)) is None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.report", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_cli_missing_results_folder_is_a_one_line_error(tmp_path):
    result = run_cli("--results", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html"), "--figures-dir", str(tmp_path / "f"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: results folder") and "does not exist" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_missing_file_or_column_is_a_one_line_error(small, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(small[0], folder)
    (folder / "runs.parquet").unlink()
    result = run_cli("--results", str(folder), "--out", str(tmp_path / "r.html"), "--figures-dir", str(tmp_path / "f"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "runs.parquet" in result.stderr and "is missing" in result.stderr
    shutil.copy(small[0] / "runs.parquet", folder / "runs.parquet")
    scores = pd.read_parquet(folder / "scores.parquet").drop(columns=["weights"])
    scores.to_parquet(folder / "scores.parquet")
    with pytest.raises(UserError, match=r"scores.parquet' lacks column\(s\) weights"):
        build_report(folder, tmp_path / "r.html", tmp_path / "f")
    with pytest.raises(UserError, match="bootstrap-reps"):
        build_report(small[0], tmp_path / "r.html", tmp_path / "f", bootstrap_reps=0)


def test_cli_writes_the_report_and_the_figures(small, tmp_path):
    out = tmp_path / "reports" / "demo"
    result = run_cli("--results", str(small[0]), "--out", str(out / "report.html"), "--figures-dir", str(out / "figures"),
                     "--bootstrap-reps", "50", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out / 'report.html'}"
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(FIGURE_FILES)  # no temporary file left
    assert "50 resamples, seed 3" in (out / "report.html").read_text(encoding="utf-8")


def test_scores_that_disagree_with_their_episodes_are_flagged(small, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(small[0], folder)
    scores = pd.read_parquet(folder / "scores.parquet")
    row = (scores["game"] == "pong") & (scores["seed"] == 1) & (scores["weights"] == "final")
    scores.loc[row, "mean"] += 1.0
    scores.to_parquet(folder / "scores.parquet")
    text, _ = render(folder, tmp_path / "report")
    assert "scores.parquet disagrees with episodes.parquet (mean or episode count) for pong/dqn/1/final;" in text
    assert "Check these:" not in small[2]  # the untouched set raises no warning



def test_2013_scores_normalized_with_the_nature_table_are_flagged_against_table_1(nips, tmp_path):
    folder, _, text, _ = nips
    # scores.parquet as analysis.aggregate writes it: Table 1's random and human scores, no warning.
    scores = pd.read_parquet(folder / "scores.parquet")
    pong = scores[(scores["game"] == "pong") & (scores["agent"] == "dqn")].iloc[0]
    assert pong["human_normalized"] == pytest.approx(100 * (pong["mean"] + 20.4) / (-3 + 20.4))
    assert report_tables.normalization_mismatches(load_results(folder)) == []
    assert "Check these:" not in text
    # As written before aggregate used the reference: Extended Data Table 2's Pong (-20.7, 9.3), and so on.
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    scores["human_normalized"] = [100 * (m - r) / (h - r) for m, (r, h) in zip(
        scores["mean"], nature_table().set_index("ale_id").loc[scores["game"], ["random_score", "human_score"]].to_numpy())]
    scores.to_parquet(stale / "scores.parquet")
    scored = sorted(set(scores.loc[scores["agent"] == "dqn", "game"]))  # every game but Enduro, never scored
    assert report_tables.normalization_mismatches(load_results(stale)) == scored
    stale_text, _ = render(stale, tmp_path / "report")
    assert "human scores of Table 1 of the NIPS 2013 workshop paper for beam_rider, breakout, pong" in unescape(stale_text)


# ---------------------------------------------------------------- the published reproductions: PFRL and Dopamine


def test_pfrl_aggregate_row_over_the_49_games_of_a_full_run(full):
    _, _, text, parsed = full
    rows = {r["cells"][0]["text"]: r for r in parsed.tables["aggregates"]["body"]}
    assert list(rows)[-2:] == ["Paper, all 49 games (as published)", "PFRL reproduction, all 49 games"]
    pfrl = rows["PFRL reproduction, all 49 games"]
    assert pfrl["attrs"]["class"] == "kind-reproduction"
    cells = pfrl["cells"]
    # Checked by hand with Extended Data Table 2's random and human scores (baselines/data/CITATION.md).
    assert [c["text"] for c in cells[1:]] == ["49", "49", "90.1", "204.9", "103.9", "21", "28"]
    assert number(cells[3]) == pytest.approx(90.11385726, abs=1e-6)
    assert number(cells[4]) == pytest.approx(204.89188252, abs=1e-6)
    assert cells[3]["attrs"]["data-low"] == "" and cells[3]["attrs"]["data-high"] == ""  # one number per game
    table = report_tables.game_table(load_results(full[0])).set_index("game")
    assert round(table.loc["breakout", "pfrl_normalized"], 1) == 1165.4


def test_a_report_before_any_score_shows_pfrl_over_all_its_games(tmp_path):
    folder = write_results(tmp_path / "none", games=("pong", "breakout"), seeds=(0,), missing_games=("pong", "breakout"))
    aggregates = report_tables.aggregate_table(load_results(folder), reps=REPS)
    assert list(aggregates["label"]) == ["Paper, all 49 games (as published)", "PFRL reproduction, all 49 games"]
    assert round(float(aggregates.iloc[1]["median"]), 1) == 90.1


# Hand-picked best-intermediate means against the paper's and PFRL's scores of each game:
# Pong: paper 18.9, PFRL 20.0, this run 15 -> below both; Breakout: paper 401.2, PFRL 352.5, this run 380 -> between;
# Seaquest: paper 5,286, PFRL 6,252, this run 7,000 -> above both.
STANDING_MEANS = {"pong": 15.0, "breakout": 380.0, "seaquest": 7000.0}


@pytest.fixture(scope="module")
def standings(tmp_path_factory):
    folder = write_results(tmp_path_factory.mktemp("results") / "stands", games=("pong", "breakout", "seaquest", "enduro"),
                           seeds=(0, 1), missing_games=("enduro",))
    results = load_results(folder)
    scores = results.scores.copy()
    best = (scores["agent"] == "dqn") & (scores["weights"] == "best")
    scores.loc[best, "mean"] = scores.loc[best, "game"].map(STANDING_MEANS)
    return dataclasses.replace(results, scores=scores)


def test_where_this_run_stands_against_the_paper_and_pfrl(standings):
    from analysis.report import reproductions

    table = report_tables.game_table(standings).set_index("game")
    assert table.loc[["pong", "breakout", "seaquest"], "best_mean"].tolist() == [15.0, 380.0, 7000.0]
    assert table.loc[["pong", "breakout", "seaquest"], "pfrl_dqn_mean"].tolist() == [20.0, 352.5, 6252.0]
    assert table["stands"].to_dict() == {"pong": "below both", "breakout": "between", "seaquest": "above both",
                                         "enduro": ""}  # enduro: no score of this run, no standing
    # Ties with either published number count as between; a missing number gives no standing.
    stands = reproductions.where_this_run_stands([18.9, 20.0, 18.0, 21.0, np.nan, 19.0], [18.9, 18.9, 18.9, 18.9, 18.9, np.nan],
                                                 [20.0, 20.0, 20.0, 20.0, 20.0, 20.0])
    assert stands.tolist() == ["between", "between", "below both", "above both", "", ""]


def test_where_this_run_stands_is_a_sortable_column_in_its_order(standings):
    from analysis.report import columns, game_tables, page

    table = report_tables.game_table(standings)
    parsed = parse(page.render_table(game_tables.game_table(table, "Nature 2015 paper")))
    game_table = parsed.tables["game-table"]
    assert "sortable" in game_table["class"]
    index = column_index(game_table, columns.STANDS_HEADER)
    header = game_table["head"][-1]["cells"][index]
    assert header["attrs"]["data-type"] == "number" and "below both, between" in header["attrs"]["title"]
    cells = {row["attrs"]["data-game"]: row["cells"][index] for row in game_table["body"]}
    # Text for the reader, its rank for the sort: below both < between < above both, missing last.
    assert {game: (cell["text"], cell["attrs"]["data-value"], cell["attrs"]["class"]) for game, cell in cells.items()} == {
        "pong": ("below both", "0", "text stands-below-both"), "breakout": ("between", "1", "text stands-between"),
        "seaquest": ("above both", "2", "text stands-above-both"), "enduro": ("", "", "text")}
    # The groups span every column: PFRL's group over its one score column, four human-normalized columns,
    # and the same-protocol reference's on-track column last.
    groups = [(c["text"], int(c["attrs"]["colspan"])) for c in game_table["head"][0]["cells"]]
    assert sum(span for _, span in groups) == len(game_table["head"][-1]["cells"]) == 21
    assert groups[-1] == ("Same protocol", 1) and game_table["head"][-1]["cells"][-1]["text"] == "On track"
    assert ("PFRL", 1) in groups and ("Human-normalized (%)", 4) in groups


def test_2013_report_shows_no_pfrl_but_labelled_dopamine_curves(nips):
    folder, _, text, parsed = nips
    table = parsed.tables["game-table"]
    headers = [c["text"] for c in table["head"][-1]["cells"]]
    # Neither PFRL's columns nor the on-track column: nnabla-rl's curves are the Nature protocol's.
    assert "PFRL" not in headers and "Vs. paper & PFRL" not in headers and "On track" not in headers and len(headers) == 17
    assert headers.count("DQN") == 1
    assert not any("PFRL" in r["cells"][0]["text"] for r in parsed.tables["aggregates"]["body"])
    assert "PFRL's reproduction is not shown: it re-ran the Nature paper's protocol" in text
    assert "for PFRL's reproduction" not in text  # nor in the headline
    from analysis.report import curve_figures, figures

    results = load_results(folder)
    game_table = report_tables.game_table(results)
    assert "pfrl_dqn_mean" not in game_table.columns
    bars = figures.normalized_scores_figure(game_table, reference_label="NIPS 2013 workshop paper")
    assert "PFRL's reproduction" not in [t.get_text() for t in bars.legends[0].get_texts()]
    curves = curve_figures.learning_curves_figure(results.learning_curves, game_table, reference_label="NIPS 2013 workshop paper")
    labels = [t.get_text() for t in curves.legends[0].get_texts()]
    assert curve_figures.dopamine_label() in labels
    assert "sticky actions, training returns at \u03b5 0.01, no no-op starts" in curve_figures.dopamine_label()
    # Breakout trains 40M frames in the 2013 preset: Dopamine's first 40 iterations, drawn at 1M ... 40M frames.
    breakout = next(ax for ax in curves.axes if ax.get_title() == "Breakout")
    (mean_line,) = [line for line in breakout.lines if line.get_gid() == curve_figures.DOPAMINE_MEAN_GID]
    np.testing.assert_allclose(mean_line.get_xdata(), np.arange(1, 41))


def dopamine_artists(ax):
    from analysis.report import curve_figures

    bands = [c for c in ax.collections if c.get_gid() == curve_figures.DOPAMINE_BAND_GID]
    means = [line for line in ax.lines if line.get_gid() == curve_figures.DOPAMINE_MEAN_GID]
    return bands, means


def test_learning_curves_of_a_3m_frame_run_draw_dopamine_over_3_iterations(tmp_path):
    from analysis.report import curve_figures, figures

    folder = write_results(tmp_path / "three", games=("breakout", "pong"), seeds=(0, 1), frames_planned=3_000_000)
    results = load_results(folder)
    assert results.learning_curves["frames"].max() == 3_000_000
    fig = curve_figures.learning_curves_figure(results.learning_curves, report_tables.game_table(results),
                                         reference_label="Nature 2015 paper")
    breakout = next(ax for ax in fig.axes if ax.get_title() == "Breakout")
    (band,), (mean_line,) = dopamine_artists(breakout)
    # Iterations 0, 1, 2 at their last frame, 1M, 2M, 3M; by hand from the CSV's 5 runs of each:
    # iteration 0: 1.57108 1.65099 1.64711 1.63583 1.69933 -> mean 8.20434 / 5; min 1.57108; max 1.69933.
    np.testing.assert_allclose(mean_line.get_xdata(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(mean_line.get_ydata(), [8.20434 / 5, 15.29527 / 5, 19.69055 / 5])
    vertices = band.get_paths()[0].vertices
    assert set(np.round(vertices[:, 0], 9)) == {1.0, 2.0, 3.0}
    assert vertices[:, 1].min() == pytest.approx(1.57108) and vertices[:, 1].max() == pytest.approx(4.50959)
    # Behind this run's band and line.
    ours = [line for line in breakout.lines if line.get_color() == figures.THIS_RUN_COLOR]
    assert ours and all(line.get_zorder() > mean_line.get_zorder() for line in ours)
    assert band.get_zorder() < min(c.get_zorder() for c in breakout.collections if c is not band)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Dopamine DQN, 5 runs: mean, min to max (sticky actions, training returns at \u03b5 0.01, no no-op starts)" in labels
    assert not any("not drawn" in label for label in labels)


def reference_artists(ax, band_gid, mean_gid):
    return ([c for c in ax.collections if c.get_gid() == band_gid], [line for line in ax.lines if line.get_gid() == mean_gid])


def test_learning_curves_draw_the_same_protocol_reproduction_first_over_the_frames_covered(tmp_path):
    from analysis.report import curve_figures, figures

    folder = write_results(tmp_path / "three", games=("breakout", "pong"), seeds=(0, 1), frames_planned=3_000_000)
    results = load_results(folder)
    fig = curve_figures.learning_curves_figure(results.learning_curves, report_tables.game_table(results),
                                         reference_label="Nature 2015 paper")
    breakout = next(ax for ax in fig.axes if ax.get_title() == "Breakout")
    (band,), (mean_line,) = reference_artists(breakout, curve_figures.NNABLA_BAND_GID, curve_figures.NNABLA_MEAN_GID)
    # nnabla-rl's Breakout seeds 1 / 10 / 100: 0.32 / 2.3 / 0.823 at 1M, 4.274 / 1.291 / 5.636 at 2M,
    # 13.607 / 8.582 / 14.305 at 3M frames (its CSV); no point after this run's last frames.
    np.testing.assert_allclose(mean_line.get_xdata(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(mean_line.get_ydata(), [3.443 / 3, 11.201 / 3, 36.494 / 3])
    vertices = band.get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(0.32) and vertices[:, 1].max() == pytest.approx(14.305)
    # In front of Dopamine's (another protocol), behind this run's.
    (dopamine_band,), (dopamine_mean,) = dopamine_artists(breakout)
    assert dopamine_band.get_zorder() < band.get_zorder() and dopamine_mean.get_zorder() < mean_line.get_zorder()
    ours = [line for line in breakout.lines if line.get_color() == figures.THIS_RUN_COLOR]
    assert ours and all(line.get_zorder() > mean_line.get_zorder() for line in ours)
    assert band.get_alpha() > dopamine_band.get_alpha()  # visually first
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.index("nnabla-rl DQN, 3 seeds, the paper's evaluation protocol: mean, min to max") < labels.index(
        curve_figures.dopamine_label())
    # The 2013 protocol is not nnabla-rl's: its report draws Dopamine's curve only.
    fig = curve_figures.learning_curves_figure(results.learning_curves, report_tables.game_table(results),
                                         reference_label="NIPS 2013 workshop paper", same_protocol_reference=False)
    breakout = next(ax for ax in fig.axes if ax.get_title() == "Breakout")
    assert reference_artists(breakout, curve_figures.NNABLA_BAND_GID, curve_figures.NNABLA_MEAN_GID) == ([], [])
    assert curve_figures.nnabla_label() not in [t.get_text() for t in fig.legends[0].get_texts()]


def test_learning_curves_of_a_64k_frame_run_draw_no_dopamine_and_say_why(demo, tmp_path):
    from analysis.report import curve_figures

    _, _, text, _ = demo
    results = load_results(write_results(tmp_path / "short", games=("pong", "breakout"), seeds=(0,),
                                         frames_planned=64_000, curve_points=2))
    fig = curve_figures.learning_curves_figure(results.learning_curves, report_tables.game_table(results),
                                         reference_label="Nature 2015 paper")
    for ax in fig.axes:
        assert dopamine_artists(ax) == ([], [])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    note = "Dopamine DQN not drawn: its first point is at 1M frames, this run covers 64k frames"
    assert note in labels
    assert "nnabla-rl DQN not drawn: its first point is at 1M frames, this run covers 64k frames" in labels
    assert curve_figures.dopamine_label() not in labels and curve_figures.nnabla_label() not in labels
    for ax in fig.axes:
        assert reference_artists(ax, curve_figures.NNABLA_BAND_GID, curve_figures.NNABLA_MEAN_GID) == ([], [])
    fig.canvas.draw()
    legend, box = fig.legends[0].get_window_extent(), fig.bbox
    assert box.x0 <= legend.x0 and legend.x1 <= box.x1  # the note fits inside the figure
    # The caption says what the band is and that a short run gets the note.
    assert "only over the frames this run covers (none, and a note in the legend, where this run covers less" in unescape(text)


def test_a_run_partly_under_1m_frames_names_its_short_games(tmp_path):
    from analysis.report import curve_figures

    short = write_results(tmp_path / "short", games=("pong",), seeds=(0,), frames_planned=500_000)
    long = write_results(tmp_path / "long", games=("breakout",), seeds=(0,), frames_planned=2_000_000)
    results = load_results(short)
    curves = pd.concat([results.learning_curves, load_results(long).learning_curves], ignore_index=True)
    table = pd.concat([report_tables.game_table(results), report_tables.game_table(load_results(long))], ignore_index=True)
    fig = curve_figures.learning_curves_figure(curves, table, reference_label="Nature 2015 paper")
    pong, breakout = fig.axes[:2]
    assert dopamine_artists(pong) == ([], []) and len(dopamine_artists(breakout)[1]) == 1
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Dopamine DQN not drawn for Pong: its first point is at 1M frames, this run covers 500k frames" in labels
    assert curve_figures.dopamine_label() in labels


def test_fig3_and_the_scatter_mark_pfrl_beside_the_paper_for_every_game(full):
    from analysis.report import figures

    table = report_tables.game_table(load_results(full[0]))
    bars = figures.normalized_scores_figure(table, reference_label="Nature 2015 paper")
    ax = bars.axes[0]
    (ticks,) = [line for line in ax.lines if line.get_label() == "PFRL's reproduction"]
    # One tick per game on the paper's bar, at PFRL's normalized score clipped to the axis.
    assert len(ticks.get_xdata()) == 49
    left, _ = ax.get_xlim()
    expected = np.clip(table["pfrl_normalized"], left, figures.BAR_CLIP_PERCENT)
    np.testing.assert_allclose(sorted(ticks.get_xdata()), sorted(expected))
    texts = [t.get_text() for t in ax.texts]
    assert "1,327 % \u2192, PFRL 1,165 % \u2192" in texts  # Breakout: both off the right end, written out
    assert any(t.endswith("PFRL -181 % \u2190") for t in texts)  # Video Pinball: PFRL below the random agent
    legend = [t.get_text() for t in bars.legends[0].get_texts()]
    assert legend == ["DQN in the Nature 2015 paper", "PFRL's reproduction", "this run (best-intermediate weights)",
                      "human level (100 %)"]
    scatter = figures.scores_vs_paper_figure(table, reference_label="Nature 2015 paper").axes[0]
    (pfrl,) = [line for line in scatter.lines if line.get_label() == "PFRL's reproduction"]
    np.testing.assert_array_equal(pfrl.get_xdata(), table["paper_dqn_mean"])
    np.testing.assert_array_equal(pfrl.get_ydata(), table["pfrl_dqn_mean"])


def test_method_section_describes_each_reference_and_why_they_differ(small):
    _, _, text, _ = small
    method = unescape(re.sub(r"<[^>]+>", "", text[text.index('<section id="method">'):]))
    for phrase in ("PFRL reproduction (pfnet/pfrl, MIT licence", "best intermediate agent re-evaluated for 30 episodes",
                   "higher than the paper on 28 of the 49 games", "one run per game",
                   "Dopamine DQN (google/dopamine, Apache License 2.0", "sticky actions", "training returns",
                   "\u03b5 = 0.01", "cut at 30 minutes (27,000 agent steps), an evaluation here at 5 minutes",
                   "no no-op starts", "drawn at (i + 1) \u00d7 1M"):
        assert phrase in method, phrase


def test_a_paper_score_far_above_a_short_run_is_written_in_the_panel_not_drawn_to_scale():
    from analysis.report import curve_figures

    frames = np.array([100_000, 200_000, 300_000, 400_000])
    curves = pd.DataFrame({
        "game": ["kangaroo"] * 4 + ["pong"] * 4, "seed": 0, "frames": np.concatenate([frames, frames]),
        "eval_score_mean": [0.0, 0.0, 111.0, 400.0, -21.0, -10.0, 5.0, 18.0],
        "eval_frames": 40_000, "eval_episodes": 10,
    })
    table = pd.DataFrame({"game": ["kangaroo", "pong"], "display_name": ["Kangaroo", "Pong"],
                          "status": "complete", "paper_dqn_mean": [6_740.0, 18.9], "random_mean": [60.0, -20.7]})
    fig = curve_figures.learning_curves_figure(curves, table, reference_label="Nature 2015 paper")
    kangaroo, pong = fig.axes[:2]
    dashed = lambda ax: [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"]  # noqa: E731
    # Kangaroo: 6,740 > 3 x 400 (the top of its curve and random line): a note, and the axis ends at 1.25 x 400.
    assert dashed(kangaroo) == [] and [t.get_text() for t in kangaroo.texts] == ["paper's final: 6,740 \u2191"]
    assert kangaroo.get_ylim()[1] == pytest.approx(500.0)
    # Pong: 18.9 is within the scale of a curve reaching 18: the dashed line, no note.
    assert dashed(pong) == [18.9] and len(pong.texts) == 0
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "final DQN score in the Nature 2015 paper" in labels
    assert "final DQN score in the Nature 2015 paper: off this run's scale, written in the panel \u2191" in labels
    # Frames in thousands with a tick at every 100k, as the evaluations fall.
    np.testing.assert_allclose([t for t in kangaroo.get_xticks() if 0 <= t <= 400], [0, 100, 200, 300, 400])


def test_headline_gives_each_games_best_weights_against_its_random_agent(demo):
    folder, _, text, _ = demo
    headline = re.search(r'<p class="headline">(.*?)</p>', text, re.S).group(1)
    sentence = unescape(re.sub(r"<[^>]+>", "", headline.split("Against this run's random agent")[1]))
    # The synthetic demo's best weights lie between its random agent's score and 1.7x the paper's: above it.
    table = report_tables.game_table(load_results(folder))
    expected = "; ".join(f"{r.display_name} {r.best_mean:,.1f} vs {r.random_mean:,.1f}" for r in table.itertuples())
    assert sentence == f", the best-intermediate weights score higher on 2 of 2 games: {expected}."


@pytest.fixture(scope="module")
def on_track_report(tmp_path_factory):
    """The paper's preset cut to 2M frames, 2 seeds; Pong's curve below nnabla-rl's seeds, Breakout's
    at their mean, Seaquest's above them; Boxing's runs unfinished, with no evaluation yet."""
    from baselines.reference import nnabla_curves

    folder = write_results(tmp_path_factory.mktemp("results") / "check", games=("pong", "breakout", "seaquest", "boxing"),
                           seeds=(0, 1), preset="nature", frames_planned=2_000_000, curve_points=2,
                           missing_games=("boxing",))
    curves = pd.read_parquet(folder / "learning_curves.parquet")
    assert sorted(curves["frames"].unique()) == [1_000_000, 2_000_000]
    for game in ("pong", "breakout", "seaquest"):
        reference = nnabla_curves(game).groupby("frames")["eval_return_mean"].mean()
        rows = curves["game"] == game
        score = {"pong": lambda f: -22.0, "breakout": lambda f: reference[f], "seaquest": lambda f: 1e5}[game]
        curves.loc[rows, "eval_score_mean"] = [score(f) for f in curves.loc[rows, "frames"]]
    curves.to_parquet(folder / "learning_curves.parquet")
    out = tmp_path_factory.mktemp("report-check")
    return (folder, out, *render(folder, out))


def test_on_track_headline_and_column_place_each_game_against_the_same_protocol_reference(on_track_report):
    from baselines.reference import nnabla_curves

    _, _, text, parsed = on_track_report
    headline = re.search(r'<p class="headline" id="on-track">(.*?)</p>', text).group(1)
    assert headline == ("On track: 2 of 3 games within or above the range of nnabla-rl&#x27;s 3 seeds under the "
                        "paper&#x27;s protocol, on each game&#x27;s mean over its evaluations up to its frames (2M); "
                        f"below: Pong (2M) ({escape(BELOW_CAVEAT)}); 1 game without an evaluation at 1M frames yet.")
    table = parsed.tables["game-table"]
    index = column_index(table, "On track")
    cells = {row["attrs"]["data-game"]: row["cells"][index] for row in table["body"]}
    assert {g: (c["text"], c["attrs"]["data-value"]) for g, c in cells.items()} == {
        "pong": ("below", "0"), "breakout": ("within", "1"), "seaquest": ("above", "2"),
        "boxing": ("not yet", "")}
    assert cells["boxing"]["attrs"]["title"] == "no evaluation at a reference point yet (the first is at 1M frames)"
    # The tooltip's numbers, by hand from the CSV: Breakout's seeds' means over 1M-2M frames.
    breakout = nnabla_curves("breakout")
    seed_means = breakout[breakout["frames"] <= 2_000_000].groupby("seed")["eval_return_mean"].mean()
    assert cells["breakout"]["attrs"]["title"] == (
        f"within: mean {seed_means.mean():,.0f} over 2 evaluations to 2M frames (2 seeds); the reference's seeds "
        f"{seed_means.min():,.0f} to {seed_means.max():,.0f}")


def test_on_track_headline_of_a_config_that_is_not_the_papers_names_what_differs(demo):
    _, _, text, parsed = demo
    # No cell of the per-game column places a game either: "n/a", the keys in the tooltip.
    table = parsed.tables["game-table"]
    index = column_index(table, "On track")
    cells = [row["cells"][index] for row in table["body"]]
    assert cells and all(c["text"] == "n/a" and c["attrs"]["title"].startswith("not comparable: replay_memory_size_transitions")
                         for c in cells)
    headline = unescape(re.search(r'<p class="headline" id="on-track">(.*?)</p>', text).group(1))
    # The demo preset's six shortened schedules, in the config's field order (its 50,000-transition
    # replay is below its 100,000 agent steps, so it wraps: not the paper's memory).
    assert headline == ("Not comparable with nnabla-rl's same-protocol learning curves: this experiment's "
                        "replay_memory_size_transitions, target_network_update_frequency_steps, "
                        "final_exploration_frame_steps, replay_start_size_steps, eval_interval_frames, eval_length_frames "
                        "differ from the paper's, and only the training length may.")


def test_the_design_document_lists_the_results_tables_columns_and_run_statuses_as_defined():
    # One definition (analysis/results_files.py); docs/DESIGN.md describes it and must not drift from it.
    from analysis.results_files import RUN_STATUSES, TABLES

    design = (Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md").read_text()
    section = design.split("## Workflow results", 1)[1]
    rows = dict(re.findall(r"^\| `([a-z_]+\.parquet)` \| (.*?) \|$", section, re.M))
    for name in ("scores.parquet", "runs.parquet", "deviations.parquet", "on_track.parquet"):
        described = rows[name].split(":", 1)[0]  # on_track's row goes on to say what it holds
        columns = [re.sub(r"\s*\(.*", "", item).strip() for item in re.sub(r"\([^)]*\)", "", described).split(",")]
        assert columns == TABLES[name].names, name
    assert re.findall(r"`([a-z]+)`", rows["runs.parquet"].split("status", 1)[1].split(",", 1)[0]) == list(RUN_STATUSES)
