"""The `nips2013` preset (Mnih et al. 2013): its preprocessing on real ROMs, the path without a
target network, Space Invaders' frame skip of 3, the deviations against the 2013 paper and against
Nature, one short training through `python -m dqn.train`, the workflow's plan and the report."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from analysis.aggregate import deviations_table
from baselines.reference import nips2013_table
from dqn.agent import Learner, td_target
from dqn.atari import NIPS2013_CROP_ROWS, AtariEnv, preprocess_nips2013
from dqn.config import (
    NATURE,
    NIPS2013,
    NOT_STATED,
    PAPER_PRESETS,
    PRESET_REFERENCE,
    deviations,
    paper_value,
    protocol_notes,
    resolve,
)
from dqn.replay import Batch

REPO = Path(__file__).resolve().parents[1]
TABLE1_GAMES = ("beam_rider", "breakout", "enduro", "pong", "qbert", "seaquest", "space_invaders")


# ---------------------------------------------------------------- the preset against the papers


def test_preset_is_the_2013_paper_where_it_states_a_value():
    hp = resolve("nips2013")
    assert hp == NIPS2013 and PRESET_REFERENCE["nips2013"] == "nips2013"
    assert (hp.network, hp.preprocessing) == ("nips2013", "nips2013")
    assert not hp.uses_target_network and hp.td_error_clip == 0.0
    assert hp.update_frequency_steps == 1 and hp.minibatch_size_transitions == 32
    assert hp.agent_history_length_frames == 4
    assert (hp.initial_exploration, hp.final_exploration, hp.final_exploration_frame_steps) == (1.0, 0.1, 1_000_000)
    assert hp.replay_memory_size_transitions == 1_000_000
    # 10M agent steps of 4 frames; Fig. 2: epochs of 50,000 steps, 10,000 steps of play at 0.05.
    assert hp.training_length_steps == 10_000_000
    assert (hp.eval_interval_steps, hp.eval_length_steps, hp.eval_epsilon) == (50_000, 10_000, 0.05)
    assert (hp.noop_max_frames, hp.lost_life_terminal) == (0, False)


def test_deviations_from_the_2013_paper_are_exactly_the_values_it_leaves_out():
    rows = {d.field: d for d in deviations(NIPS2013, "nips2013")}
    assert set(rows) == {
        "replay_memory_size_transitions", "final_exploration_frame_steps", "training_length_frames",  # "frames"
        "preprocessing",  # which rows the crop keeps
        "discount_factor", "learning_rate", "gradient_momentum", "squared_gradient_momentum", "min_squared_gradient",
        "replay_start_size_steps", "heldout_states", "final_eval_episodes", "final_eval_max_episode_frames",
    }
    for d in rows.values():
        assert "not stated" in str(d.paper_value), d
        assert d.note, f"{d.field}: a choice without a citation"
    assert rows["learning_rate"].this_value == 0.00025 and rows["learning_rate"].paper_value == NOT_STATED
    assert rows["discount_factor"].this_value == 0.99
    assert rows["training_length_frames"].this_value == 40_000_000 and rows["training_length_frames"].unit == "frames"
    assert "deep_q_rl" in rows["preprocessing"].note and "18..101" in rows["preprocessing"].note
    assert "agent steps" in rows["training_length_frames"].note
    # Every one of them is also a protocol note of the report, and an override shows up.
    assert set(rows) <= {n.field for n in protocol_notes("nips2013")}
    changed = {d.field: d for d in deviations(resolve("nips2013", {"learning_rate": "0.0002"}), "nips2013")}
    assert changed["learning_rate"].this_value == 0.0002


def test_paper_preset_holds_what_the_2013_paper_states():
    paper = PAPER_PRESETS["nips2013"]
    assert paper.target_network_update_frequency_steps == 0 and paper.td_error_clip == 0.0
    assert paper.update_frequency_steps == 1 and paper.minibatch_size_transitions == 32
    assert paper.action_repeat_frames == 4 and paper.action_repeat_frames_per_game == (("space_invaders", 3),)
    assert (paper.initial_exploration, paper.final_exploration, paper.eval_epsilon) == (1.0, 0.1, 0.05)
    # Values the paper leaves open: the preset holds the reading it runs (a real number), the
    # paper's value is its own words.
    assert (paper.learning_rate, paper.discount_factor) == (0.00025, 0.99)
    assert paper_value("nips2013", "learning_rate") == paper_value("nips2013", "discount_factor") == NOT_STATED
    assert paper_value("nips2013", "update_frequency_steps") == 1


def test_deviations_from_nature_are_the_2013_design():
    rows = {d.field: (d.paper_value, d.this_value) for d in deviations(NIPS2013, "nature")}
    assert rows == {
        "network": ("nature", "nips2013"),
        "preprocessing": ("nature", "nips2013"),
        "target_network_update_frequency_steps": (10_000, 0),
        "td_error_clip": (1.0, 0.0),
        "update_frequency_steps": (4, 1),
        "action_repeat_frames_per_game": ((), (("space_invaders", 3),)),
        "training_length_frames": (200_000_000, 40_000_000),
        "replay_start_size_steps": (50_000, 100),
        "heldout_states": (500, 100),
        "noop_max_frames": (30, 0),
        "lost_life_terminal": (True, False),
        "eval_interval_frames": (1_000_000, 200_000),
        "eval_length_frames": (500_000, 40_000),
    }


def test_deviations_table_writes_the_papers_silence_as_text():
    table = deviations_table(resolve("nips2013"), "nips2013").set_index("field")
    assert table.loc["learning_rate", "paper_value"] == "not stated"
    assert table.loc["learning_rate", "this_value"] == "0.00025"
    assert table.loc["training_length_frames", "paper_value"] == "10M frames (unit not stated)"
    assert table.loc["training_length_frames", "this_value"] == "40000000"


# ---------------------------------------------------------------- preprocessing


def test_the_crop_keeps_every_column_of_the_downsample():
    # Width is downsampled 160 -> 84, never cropped: the screen's first and last columns reach
    # the frame's first and last columns (bilinear 160 -> 84 reads source x = (j + 0.5) * 160/84 - 0.5:
    # column 0 reads columns 0/1, column 83 reads 158/159).
    screen = np.zeros((210, 160, 3), np.uint8)
    screen[:, :2] = 255
    screen[:, 158:] = 200
    frame = preprocess_nips2013(screen)
    assert (frame[:, 0] == 255).all() and (frame[:, 83] == 200).all()
    assert (frame[:, 2:82] == 0).all()


@pytest.mark.parametrize("game", TABLE1_GAMES)
def test_real_rom_frame_is_rows_18_to_101_of_the_110x84_downsample_of_the_last_screen(game):
    hp = NIPS2013.for_game(game)
    env = AtariEnv(game, seed=0, action_repeat_frames=hp.action_repeat_frames,
                   noop_max_frames=hp.noop_max_frames, preprocessing=hp.preprocessing)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(40):
        step = env.step(int(rng.integers(env.num_actions)))
    screen = env._ale.getScreenRGB()  # the last frame of the step, still on the emulator
    small = cv2.resize(cv2.cvtColor(screen, cv2.COLOR_RGB2GRAY), (84, 110), interpolation=cv2.INTER_LINEAR)
    assert step.frame.shape == (84, 84) and step.frame.dtype == np.uint8
    np.testing.assert_array_equal(step.frame, small[NIPS2013_CROP_ROWS])
    assert step.frame.std() > 0


def test_real_rom_crop_drops_breakouts_score_band():
    env = AtariEnv("breakout", seed=0, noop_max_frames=0, preprocessing="nips2013")
    env.reset()
    step = env.step(1)
    small = cv2.resize(cv2.cvtColor(env._ale.getScreenRGB(), cv2.COLOR_RGB2GRAY), (84, 110), interpolation=cv2.INTER_LINEAR)
    # The score digits sit in screen rows 5..15, i.e. downsampled rows 2..8: above the crop.
    assert small[2:9].any() and not np.array_equal(small[:84], step.frame)
    np.testing.assert_array_equal(small[18:102], step.frame)


# ---------------------------------------------------------------- frame skip


@pytest.mark.parametrize("game", TABLE1_GAMES)
def test_space_invaders_repeats_3_frames_the_others_4(game):
    hp = NIPS2013.for_game(game)
    expected = 3 if game == "space_invaders" else 4
    assert hp.action_repeat_frames == expected
    env = AtariEnv(game, seed=1, action_repeat_frames=hp.action_repeat_frames,
                   noop_max_frames=hp.noop_max_frames, preprocessing=hp.preprocessing)
    env.reset()
    assert env.total_frames == env.episode_frames == 0  # no no-op start in the 2013 protocol
    for i in range(1, 51):
        step = env.step(0)
        assert not step.game_over
        assert env.total_frames == env.episode_frames == expected * i


# ---------------------------------------------------------------- no target network


def _batch(rng: np.random.Generator, n: int = 8, num_actions: int = 6) -> Batch:
    return Batch(
        state=rng.integers(0, 256, (n, 4, 84, 84), dtype=np.uint8),
        action=rng.integers(0, num_actions, n).astype(np.int64),
        # Rewards far outside [-1, 1] make TD errors that clipping would cut.
        reward=rng.choice([-50.0, 50.0], n).astype(np.float32),
        terminal=np.array([0, 1] * (n // 2), np.float32),
        next_state=rng.integers(0, 256, (n, 4, 84, 84), dtype=np.uint8),
    )


def _targets(net: torch.nn.Module, batch: Batch, discount: float) -> torch.Tensor:
    with torch.no_grad():
        return td_target(torch.from_numpy(batch.reward), torch.from_numpy(batch.terminal),
                         net(torch.from_numpy(batch.next_state)), discount)


def test_without_a_target_network_targets_move_with_every_update_and_errors_are_not_clipped():
    torch.manual_seed(0)
    hp = resolve("nips2013")
    learner = Learner(hp, 6, device="cpu")
    assert learner.target is None and learner.state_dict()["target"] is None
    batch = _batch(np.random.default_rng(0))

    # The gradient of one update, computed by hand on a copy of the weights before it: targets
    # from those same weights, loss 0.5 x squared error summed over the batch.
    before = copy.deepcopy(learner.online)
    y = _targets(before, batch, hp.discount_factor)
    q = before(torch.from_numpy(batch.state)).gather(1, torch.from_numpy(batch.action)[:, None]).squeeze(1)
    assert (y - q).abs().max() > 10  # errors a Huber loss of threshold 1 would clip
    (0.5 * (y - q).square()).sum().backward()
    loss = learner.update(batch)
    assert loss == pytest.approx((0.5 * (y - q).square()).mean().item(), rel=1e-5)
    for mine, theirs in zip(learner.online.parameters(), before.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-6)

    # Every update moves the targets; sync_target changes nothing.
    targets = [y]
    for _ in range(2):
        learner.update(batch)
        targets.append(_targets(learner.online, batch, hp.discount_factor))
    for earlier, later in zip(targets, targets[1:]):
        assert not torch.equal(earlier, later)
    weights = copy.deepcopy(learner.online.state_dict())
    learner.sync_target()
    for name, value in learner.online.state_dict().items():
        assert torch.equal(value, weights[name])


def test_with_the_nature_target_network_targets_hold_between_syncs():
    # The contrast that shows the test above can tell the two paths apart.
    torch.manual_seed(0)
    learner = Learner(NATURE, 6, device="cpu")
    batch = _batch(np.random.default_rng(0))
    y0 = _targets(learner.target, batch, NATURE.discount_factor)
    learner.update(batch)
    assert torch.equal(_targets(learner.target, batch, NATURE.discount_factor), y0)
    learner.sync_target()
    assert not torch.equal(_targets(learner.target, batch, NATURE.discount_factor), y0)


# ---------------------------------------------------------------- a short training, end to end


def test_short_space_invaders_training_updates_at_every_step_from_the_100th_and_counts_3_frames(tmp_path):
    out = tmp_path / "run"
    # Budgets are set at the preset's 4 frames a step and keep their agent steps for Space
    # Invaders' 3: 600 frames = 150 steps = 450 of its frames.
    sets = ["training_length_frames=600", "eval_interval_frames=600", "eval_length_frames=200",
            "replay_memory_size_transitions=1000"]
    done = subprocess.run(
        [sys.executable, "-m", "dqn.train", "--game", "space_invaders", "--seed", "0", "--out", str(out),
         "--preset", "nips2013", "--set", *sets, "--no-side-eval", "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "nips2013"
    assert config["hyperparameters"]["action_repeat_frames"] == 3
    assert config["hyperparameters"]["target_network_update_frequency_steps"] == 0
    log = pd.read_parquet(out / "train_log.parquet")
    assert len(log) == 1
    row = log.iloc[0]
    # 450 frames / 3 = 150 agent steps; one update at every step whose numSteps n (counted before
    # the step, as DeepMind's perceive) is past the replay start: n = 101..149.
    assert (row["frames"], row["agent_steps"], row["parameter_updates"]) == (450, 150, 49)
    weights = torch.load(out / "final.pt", weights_only=False)
    assert weights["network"] == "nips2013" and weights["frames"] == 450


# ---------------------------------------------------------------- workflow and report


def test_workflow_plans_table_1_games_with_the_preset(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "-n", "-p", "--configfile", str(REPO / "config" / "nips2013.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    trainings = re.findall(r"python -m dqn\.train --game (\w+) --seed (\d+) .*?--preset (\S+)", text)
    assert sorted(trainings) == sorted((g, str(s), "nips2013") for g in TABLE1_GAMES for s in (0, 1, 2))
    assert set(TABLE1_GAMES) == set(nips2013_table()["ale_id"])
    assert re.search(r"python -m analysis\.aggregate .*--preset nips2013", text)


def test_report_of_a_nips2013_results_folder_compares_with_table_1(tmp_path):
    from analysis.report import build_report
    from dqn.fileio import write_parquet
    from helpers.synthetic_results import write_results

    folder = write_results(tmp_path / "nips2013", games=TABLE1_GAMES, seeds=(0, 1), preset="nips2013",
                           reference="nips2013")
    # The deviations as analysis.aggregate writes them for this preset: against the 2013 paper.
    write_parquet(deviations_table(resolve("nips2013"), "nips2013"), folder / "deviations.parquet")
    out = tmp_path / "report"
    build_report(folder, out / "report.html", out / "figures", bootstrap_reps=50, seed=0)
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "NIPS 2013 workshop paper (Table 1)" in text
    assert "the Nature paper's formula, since the 2013 paper defines no normalized score" in unescape(text)
    assert "scores of Table 1 of the 2013 workshop paper" in text
    deviations = _table_rows(text, "deviations")
    assert {row[0]: row[1] for row in deviations} == {
        row.field: row.paper_value for row in deviations_table(resolve("nips2013"), "nips2013").itertuples()
    }
    assert sum("not stated" in row[1] for row in deviations) == 13
    notes = {row[0]: row[3] for row in _table_rows(text, "protocol-notes")}
    assert "deep_q_rl" in notes["preprocessing"] and "no target network" in notes["target_network_update_frequency_steps"]


def _table_rows(html_text: str, table_id: str) -> list[list[str]]:
    """The text of every body cell of the report's table `table_id`, row by row."""
    start = html_text.index(f'id="{table_id}"')
    body = html_text[html_text.index("<tbody>", start):html_text.index("</tbody>", start)]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_runs_table_plans_each_game_with_its_own_action_repeat(tmp_path):
    from analysis.aggregate import runs_table
    from dqn.config import PRESETS

    runs = runs_table(tmp_path, ["breakout", "space_invaders"], [0], PRESETS["nips2013"]).set_index("game")
    # 10M agent steps each: 40M frames at k = 4, 30M at Space Invaders' k = 3; nothing done yet.
    assert runs.loc["breakout", "frames_planned"] == 40_000_000
    assert runs.loc["space_invaders", "frames_planned"] == 30_000_000
    assert list(runs["status"]) == ["missing", "missing"] and list(runs["frames_done"]) == [0, 0]


# ---------------------------------------------------------------- scores.parquet against Table 1


def _hand_episodes() -> pd.DataFrame:
    """A few evaluation episodes of a 2013 experiment, with means easy to normalize by hand."""
    rows = [
        ("breakout", "dqn", "best", [150.0, 200.0]),  # mean 175
        ("breakout", "random", "none", [1.0, 2.0]),  # mean 1.5
        ("pong", "dqn", "final", [-3.0, 1.0]),  # mean -1
        ("seaquest", "dqn", "best", [1705.0]),
    ]
    return pd.concat([
        pd.DataFrame({"game": game, "agent": agent, "seed": 0, "weights": weights, "episode": range(len(scores)),
                      "score": scores, "length_frames": 1_000, "noop_frames": 0, "truncated": False})
        for game, agent, weights, scores in rows
    ], ignore_index=True)  # fmt: skip


def test_scores_parquet_of_a_2013_experiment_is_normalized_with_table_1(tmp_path):
    from analysis.aggregate import aggregate, write_tables
    from helpers.synthetic_results import write_episode_files

    results = write_episode_files(tmp_path / "nips2013", _hand_episodes())
    tables, info = aggregate(results, ["breakout", "pong", "seaquest"], [0], preset="nips2013")
    write_tables(results, tables, info)
    scores = pd.read_parquet(results / "scores.parquet").set_index(["game", "agent", "weights"])["human_normalized"]
    # Table 1 (random, human): Breakout (1.2, 31), Pong (-20.4, -3), Seaquest (110, 28010).
    assert scores[("breakout", "dqn", "best")] == pytest.approx(100 * (175 - 1.2) / (31 - 1.2))  # 583.2 %
    assert scores[("breakout", "random", "none")] == pytest.approx(100 * (1.5 - 1.2) / (31 - 1.2))  # 1.0 %
    assert scores[("pong", "dqn", "final")] == pytest.approx(100 * (-1 + 20.4) / (-3 + 20.4))  # 111.5 %
    assert scores[("seaquest", "dqn", "best")] == pytest.approx(100 * (1705 - 110) / (28010 - 110))  # 5.7 %
    # Not Extended Data Table 2's numbers (Breakout random 1.7, human 31.8: 575.7 %).
    assert scores[("breakout", "dqn", "best")] != pytest.approx(100 * (175 - 1.7) / (31.8 - 1.7))
    assert info["reference"] == "nips2013"


def test_a_game_outside_table_1_is_refused_in_one_line(tmp_path):
    from analysis.aggregate import aggregate, scores_table
    from dqn.errors import UserError
    from helpers.synthetic_results import write_episode_files

    results = write_episode_files(tmp_path / "nips2013", _hand_episodes())
    # Alien is one of the Nature paper's 49 games but not in Table 1 of the 2013 paper.
    with pytest.raises(UserError, match=r"game 'alien' has no random and human scores in Table 1 of the NIPS 2013") as planned:
        aggregate(results, ["breakout", "alien"], [0], preset="nips2013")
    assert "\n" not in str(planned.value) and "beam_rider, breakout" in str(planned.value)
    alien = _hand_episodes().assign(game="alien")
    with pytest.raises(UserError, match="game 'alien'"):
        scores_table(alien, reference="nips2013")
    # The Nature table has Alien (random 227.8, human 6875): the same episodes normalize there.
    normalized = scores_table(alien, reference="nature").set_index(["agent", "weights"])["human_normalized"]
    assert normalized[("random", "none")] == pytest.approx(100 * (1.5 - 227.8) / (6875 - 227.8))
