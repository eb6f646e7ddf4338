"""The demo (`config/demo.yaml`) is the first run a user makes: it must plan the games chosen
for learning early and, within its budget, act at the final epsilon long before training ends,
so the best-intermediate weights the report shows come from a greedy-enough agent. Asserted on the
config the workflow reads, not by training (docs/DEMO.md has the measured scores)."""

import re
from pathlib import Path

import yaml

from dqn.config import DEMO, NATURE, deviations, resolve
from dqn.schedules import LinearEpsilon
from helpers.workflow_runs import job_counts, output_of, snakemake

REPO = Path(__file__).resolve().parents[1]


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


def test_every_demo_game_is_one_docs_demo_measured_learning_with_this_preset():
    """The demo plans only games that docs/DEMO.md's table keeps ("yes": far above the random
    agent at the demo preset), with that preset unchanged, so the table holds for what it runs."""
    config = demo_config()
    assert resolve(config["preset"], config["hyperparameters"]) == DEMO
    sheet = (REPO / "config" / "games.tsv").read_text().splitlines()[1:]
    display_name = dict(line.split("\t")[:2] for line in sheet)
    table = (REPO / "docs" / "DEMO.md").read_text()
    kept = dict(re.findall(r"^\| ([^|]+?) \| [^|]* \| [^|]* \| (yes|no|reserve)\b", table, re.M))
    assert {"Road Runner", "Up'n Down", "Amidar"} <= set(kept)  # the table is read: kept and rejected games
    assert config["games"] and [kept.get(display_name[game]) for game in config["games"]] == ["yes"] * len(config["games"])


def test_the_demo_workflow_plans_a_training_of_each_game_and_their_cost(tmp_path):
    done = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "demo.yaml"))
    text = output_of(done)
    assert done.returncode == 0, text[-3000:]
    # 2 trainings, the best and final weights of each evaluated, 2 random agents, the tables, the report.
    assert job_counts(text) == {"train": 2, "evaluate": 4, "random_agent": 2, "aggregate": 1, "report": 1, "all": 1}
    for game in ("road_runner", "kangaroo"):
        assert f"python -m dqn.train --game {game} --seed 0 --out results/demo/runs/dqn/{game}/seed0 --preset demo " in text
    # 2 x 400,000 frames; at the 150 agent steps/s docs/ON_TRACK.md quotes: 200,000 / 150 / 3,600 = 0.37 hours.
    assert "plan: 2 training run(s), 800,000 frames (200,000 agent steps) in all, on cpu; about 0.4 training hours" in text


def test_demo_reaches_its_final_epsilon_before_training_ends():
    hp = resolve(demo_config()["preset"], demo_config()["hyperparameters"])
    eps = LinearEpsilon.from_hyperparameters(hp)
    # 400,000 frames / 4 = 100,000 agent steps; epsilon is final at 5,000 + 50,000 = 55,000.
    assert hp.training_length_steps == 100_000
    final_step = hp.replay_start_size_steps + hp.final_exploration_frame_steps
    assert final_step == 55_000
    assert eps(final_step - 1) > hp.final_exploration and eps(final_step) == hp.final_exploration
    assert eps(hp.training_length_steps - 1) == hp.final_exploration
    # Every training-time evaluation after the first sees an agent trained at the final epsilon.
    assert hp.eval_interval_steps == 25_000 and hp.training_length_steps // hp.eval_interval_steps == 4


def test_demo_keeps_the_papers_algorithm_and_shrinks_only_budgets_and_schedules():
    shrunk = {d.field for d in deviations(DEMO)}
    assert shrunk == {
        "training_length_frames", "replay_memory_size_transitions", "replay_start_size_steps",
        "final_exploration_frame_steps", "target_network_update_frequency_steps",
        "eval_interval_frames", "eval_length_frames", "checkpoint_interval_minutes",
    }
    for same in ("network", "preprocessing", "learning_rate", "gradient_momentum", "squared_gradient_momentum",
                 "min_squared_gradient", "td_error_clip", "minibatch_size_transitions", "discount_factor",
                 "action_repeat_frames", "update_frequency_steps", "final_exploration", "eval_epsilon",
                 "final_eval_episodes", "final_eval_max_episode_frames"):
        assert getattr(DEMO, same) == getattr(NATURE, same), same
