"""The check before the big run (`config/check.yaml`): the paper's preset, cut only in its
training length, on games whose same-protocol reference seeds agree early; asserted on the config
the workflow reads and on its dry run (the README's "Is the harness on DeepMind's pace?" and
docs/ON_TRACK.md quote its cost)."""

from pathlib import Path

import yaml

from baselines.on_track import differing_keys
from baselines.reference import NNABLA_SEEDS, nnabla_curves
from dqn.config import NATURE, deviations, resolve
from helpers.workflow_runs import job_counts, output_of, snakemake

REPO = Path(__file__).resolve().parents[1]


def check_config() -> dict:
    return yaml.safe_load((REPO / "config" / "check.yaml").read_text())


def test_the_check_is_the_papers_preset_but_for_its_length_and_so_gets_a_verdict():
    config = check_config()
    hp = resolve(config["preset"], config["hyperparameters"])
    # Three seeds, as the reference has: each game gets its verdict from nnabla-rl's seeds at 4M frames.
    assert len(config["seeds"]) == len(NNABLA_SEEDS)
    for game in config["games"]:
        assert sorted(nnabla_curves(game).query("frames == 4_000_000")["seed"]) == sorted(NNABLA_SEEDS), game
    assert [d.field for d in deviations(hp)] == ["training_length_frames"]
    # 4M frames = 1,000,000 agent steps: the paper's 1M-transition replay never wraps, and the
    # verdict (baselines/on_track.py) compares it with the reference.
    assert hp.training_length_steps == 1_000_000 == NATURE.replay_memory_size_transitions
    assert differing_keys(hp) == []
    assert hp.training_length_frames // hp.eval_interval_frames == 4  # four points on each curve


def test_the_check_games_reference_seeds_are_clear_of_the_random_agent_at_4m_frames():
    # docs/ON_TRACK.md quotes these: nnabla-rl's three seeds at 4M frames, each above the paper's random agent.
    random_score = {"breakout": 1.7, "pong": -20.7, "frostbite": 65.2, "assault": 222.4}
    assert sorted(random_score) == sorted(check_config()["games"])
    for game, low in random_score.items():
        at_4m = nnabla_curves(game).query("frames == 4_000_000")["eval_return_mean"]
        assert len(at_4m) == 3 and at_4m.min() > low


def test_the_check_workflow_plans_twelve_trainings_and_says_their_size(tmp_path):
    done = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "check.yaml"), "--config", "device=cpu")
    text = output_of(done)
    assert done.returncode == 0, text[-3000:]
    assert job_counts(text) == {"train": 12, "evaluate": 24, "random_agent": 12, "aggregate": 1, "report": 1, "all": 1}
    # 12 x 4,000,000 frames = 48M frames, 12M agent steps; at 150 agent steps/s: 12e6 / 150 / 3,600 = 22.2 hours.
    assert "plan: 12 training run(s), 48,000,000 frames (12,000,000 agent steps) in all, on cpu; about 22.2 training hours" in text
