"""The hyperparameters: the nature preset equals Extended Data Table 1, overrides are typed and
checked, and deviations are generated from the values."""

import dataclasses

import pytest

from dqn.config import (
    DEMO,
    NATURE,
    Hyperparameters,
    deviations,
    parse_overrides,
    protocol_notes,
    resolve,
)
from dqn.errors import UserError


def test_nature_preset_is_extended_data_table_1():
    hp = resolve("nature")
    assert hp == NATURE
    assert hp.minibatch_size_transitions == 32
    assert hp.replay_memory_size_transitions == 1_000_000
    assert hp.agent_history_length_frames == 4
    assert hp.target_network_update_frequency_steps == 10_000
    assert hp.discount_factor == 0.99
    assert hp.action_repeat_frames == 4
    assert hp.update_frequency_steps == 4
    assert hp.learning_rate == 0.00025
    assert hp.gradient_momentum == hp.squared_gradient_momentum == 0.95
    assert hp.min_squared_gradient == 0.01
    assert (hp.initial_exploration, hp.final_exploration) == (1.0, 0.1)
    assert hp.final_exploration_frame_steps == 1_000_000
    assert hp.replay_start_size_steps == 50_000
    assert hp.noop_max_frames == 30
    # 200M frames = 50M agent steps; evaluation every 1M frames = 250k steps, 500k frames = 125k steps.
    assert hp.training_length_steps == 50_000_000
    assert hp.eval_interval_steps == 250_000
    assert hp.eval_length_steps == 125_000
    assert (hp.final_eval_episodes, hp.final_eval_max_episode_frames, hp.eval_epsilon) == (30, 18_000, 0.05)


def test_nature_has_no_deviations_and_states_its_reading_of_the_code():
    assert deviations(NATURE) == []
    notes = {n.field: n for n in protocol_notes("nature")}
    assert "parameter updates" in notes["target_network_update_frequency_steps"].note
    assert notes["training_length_frames"].value == 200_000_000


def test_demo_deviations_are_generated_from_values():
    rows = {d.field: d for d in deviations(DEMO)}
    assert rows["replay_memory_size_transitions"].paper_value == 1_000_000
    assert rows["replay_memory_size_transitions"].this_value == DEMO.replay_memory_size_transitions
    assert rows["replay_memory_size_transitions"].unit == "transitions"
    # Every differing field is listed, and nothing else.
    differing = {f.name for f in dataclasses.fields(Hyperparameters) if getattr(DEMO, f.name) != getattr(NATURE, f.name)}
    assert set(rows) == differing
    # An override shows up too.
    hp = resolve("nature", {"learning_rate": "0.0001"})
    assert [(d.field, d.paper_value, d.this_value) for d in deviations(hp)] == [("learning_rate", 0.00025, 0.0001)]


def test_overrides_are_coerced_to_the_field_types():
    hp = resolve("nature", parse_overrides(["training_length_frames=1e6", "discount_factor=0.9", "lost_life_terminal=false", "network=nips2013"]))
    assert hp.training_length_frames == 1_000_000 and isinstance(hp.training_length_frames, int)
    assert hp.discount_factor == 0.9
    assert hp.lost_life_terminal is False
    assert hp.network == "nips2013"
    hp = resolve("nature", {"action_repeat_frames_per_game": "space_invaders:3"})
    assert hp.for_game("breakout") == hp
    space_invaders = hp.for_game("space_invaders")
    assert space_invaders.action_repeat_frames == 3
    # Same budgets in agent steps: 50M steps = 150M frames at 3 frames a step; evaluation every
    # 250k steps = 750k frames, for 125k steps = 375k frames; the 5-minute cap stays 18,000 frames.
    assert space_invaders.training_length_frames == 150_000_000
    assert space_invaders.training_length_steps == hp.training_length_steps == 50_000_000
    assert (space_invaders.eval_interval_frames, space_invaders.eval_length_frames) == (750_000, 375_000)
    assert space_invaders.final_eval_max_episode_frames == 18_000


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"learning_rat": "1"}, "unknown hyperparameter 'learning_rat' (did you mean 'learning_rate'?)"),
        ({"minibatch_size_transitions": "abc"}, "hyperparameter 'minibatch_size_transitions' expects an integer, got 'abc'"),
        ({"minibatch_size_transitions": 2.5}, "expects an integer"),
        ({"learning_rate": "fast"}, "hyperparameter 'learning_rate' expects a number, got 'fast'"),
        ({"lost_life_terminal": "maybe"}, "expects a boolean"),
        ({"replay_memory_size_transitions": -5}, "'replay_memory_size_transitions' must be positive, got -5"),
        ({"replay_start_size_steps": 2_000_000}, "replay_start_size_steps (2000000) must not exceed replay_memory_size_transitions (1000000)"),
        ({"discount_factor": 1.5}, "'discount_factor' must lie in [0, 1], got 1.5"),
        ({"network": "resnet"}, "'network' must be one of nature, nips2013, mlp"),
        ({"final_exploration": 0.5, "initial_exploration": 0.2}, "final_exploration (0.5) must not exceed initial_exploration (0.2)"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(UserError) as info:
        resolve("nature", overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_preset_and_malformed_set():
    with pytest.raises(UserError, match="unknown preset 'natur'; valid presets: .*nature"):
        resolve("natur")
    with pytest.raises(UserError, match="--set expects key=value, got 'learning_rate'"):
        parse_overrides(["learning_rate"])


def test_a_misspelt_game_is_answered_with_the_closest_one():
    from dqn.games import check_game

    assert check_game("Breakout") == "breakout" and check_game("space-invaders") == "space_invaders"
    with pytest.raises(UserError, match=r"^unknown game 'breakuot' \(did you mean 'breakout'\?\)"):
        check_game("breakuot")
    with pytest.raises(UserError, match="one of the paper's 49: alien, amidar"):
        check_game("qqqqzzzz")
