"""The exploration schedule: flat during the replay start, linear decay, then flat."""

import dataclasses

import pytest

from dqn.config import DEMO, NATURE
from dqn.schedules import LinearEpsilon


def test_nature_schedule_at_hand_checked_steps():
    eps = LinearEpsilon.from_hyperparameters(NATURE)
    # 1.0 until step 50k; then 1.0 - 0.9 * (step - 50k) / 1M; 0.1 from step 1.05M on.
    assert eps(0) == 1.0
    assert eps(49_999) == 1.0
    assert eps(50_000) == 1.0
    assert eps(550_000) == pytest.approx(0.55)  # 1.0 - 0.9 * 0.5
    assert eps(1_050_000) == pytest.approx(0.1)
    assert eps(2_000_000) == 0.1
    assert eps(50_000_000) == 0.1


def test_schedule_follows_its_hyperparameters():
    # demo: start 5,000, decay over 50,000 steps: halfway at 30,000 -> 0.55.
    eps = LinearEpsilon.from_hyperparameters(DEMO)
    assert (eps.start_step, eps.decay_steps) == (5_000, 50_000)
    assert eps(4_999) == 1.0 and eps(30_000) == pytest.approx(0.55) and eps(55_000) == pytest.approx(0.1)
    custom = dataclasses.replace(NATURE, initial_exploration=0.5, final_exploration=0.0)
    eps = LinearEpsilon.from_hyperparameters(custom)
    assert eps(0) == 0.5 and eps(550_000) == pytest.approx(0.25) and eps(10**7) == 0.0


def test_monotone_and_no_decay_steps_jumps_to_final():
    eps = LinearEpsilon()
    values = [eps(s) for s in range(0, 1_200_000, 10_000)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    instant = LinearEpsilon(decay_steps=0, start_step=10)
    assert instant(9) == 1.0 and instant(10) == 0.1
