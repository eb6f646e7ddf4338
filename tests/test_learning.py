"""DQN must learn, not only run: `dqn.loop.train_loop` trains the real Learner, ReplayMemory,
LinearEpsilon and epsilon_greedy on CartPole-v1 (tests/helpers/classic_control.py) until the greedy
policy of its final weights balances the pole, for three seeds, in a fixed budget of 10,000 agent steps.

Why 150 over 10 greedy episodes: a uniform random policy lasts 22.4 steps on average (s.d. 11.8;
2,000 episodes measured) and the mean of 10 of its episodes never passed 34 in 200 groups, so 150
is more than 30 standard deviations away; always pushing one way lasts about 10 steps. With these
hyperparameters the 10-episode greedy mean after 10,000 steps was 218 to 341 over 16 seeds (mean
271, s.d. 39), so 150 leaves a margin of about 3 standard deviations for other CPUs' rounding.

The test can fail: with the TD target broken in a scratch copy, the greedy means of seeds 0-2 were
10.2 / 11.6 / 10.4 (discount's sign flipped: y = r - gamma max Q'), 9.5 / 9.4 / 9.1 (target
network never synced after its initial copy) and 9.5 / 11.8 / 42.2 (terminal flag ignored:
bootstrapping past the pole's fall), each far below 150.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

from dqn import loop
from dqn.config import resolve
from helpers.classic_control import ClassicControlEnv, ObservationStack, build_parts, greedy_returns

SEEDS = (0, 1, 2)
GREEDY_EPISODES = 10
THRESHOLD_RETURN = 150.0

# CartPole through the Hyperparameters dataclass, over the nature preset: every other value
# (Huber loss of threshold 1, DeepMind's centered RMSProp, momenta 0.95) is the Atari agent's.
CARTPOLE = {
    "network": "mlp",
    "agent_history_length_frames": 1,  # the observation holds velocities: no stack needed
    "action_repeat_frames": 1,  # one agent step is one env step
    "noop_max_frames": 0,
    "lost_life_terminal": False,
    "replay_memory_size_transitions": 20_000,
    "replay_start_size_steps": 1_000,
    "heldout_states": 100,
    "update_frequency_steps": 1,
    "target_network_update_frequency_steps": 500,
    "minibatch_size_transitions": 64,
    "learning_rate": 0.0001,
    "min_squared_gradient": 0.00001,
    "final_exploration": 0.02,
    "final_exploration_frame_steps": 5_000,
    "training_length_frames": 10_000,
    "eval_interval_frames": 5_000,
    "eval_length_frames": 0,
    "checkpoint_interval_minutes": 1_000.0,
}


def cartpole_hyperparameters(**changes):
    return resolve("nature", {**CARTPOLE, **changes})


# ---------------------------------------------------------------- the adapter


def test_cartpole_steps_like_an_atari_env():
    env = ClassicControlEnv(seed=3)
    assert env.num_actions == 2 and env.frame_shape == (4,)
    frame = env.reset()
    assert frame.dtype == np.float32 and frame.shape == (4,) and np.abs(frame).max() <= 0.05
    steps = 0
    while True:
        step = env.step(1)  # always push right: the pole falls within a few dozen steps
        steps += 1
        assert step.reward == 1.0 and not step.life_lost and step.frame.dtype == np.float32
        if step.game_over:
            break
        assert not step.truncated
    assert 5 <= steps < 100 and env.episode_return == steps == env.episode_frames
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_the_time_limit_truncates_without_ending_the_game():
    env = ClassicControlEnv(seed=0, max_episode_steps=6)
    env.reset()
    steps = [env.step(i % 2) for i in range(6)]  # alternating keeps the pole up for 6 steps
    assert [s.truncated for s in steps] == [False] * 5 + [True]
    assert not any(s.game_over for s in steps)
    assert ClassicControlEnv(seed=0).max_episode_steps == 500  # CartPole-v1's own limit


def test_state_round_trip_continues_the_same_trajectory_across_episodes(tmp_path):
    def play(env, actions):
        out = []
        for a in actions:
            step = env.step(int(a))
            out.append((step.frame.tolist(), step.reward, step.game_over, step.truncated))
            if step.game_over or step.truncated:
                out.append(("reset", env.reset().tolist()))
        return out

    actions = np.random.default_rng(0).integers(0, 2, 300)
    env = ClassicControlEnv(seed=5)
    env.reset()
    play(env, actions[:17])
    path = tmp_path / "env.pt"
    torch.save(env.get_state(), path)
    expected = play(env, actions)
    assert sum(1 for t in expected if t[0] == "reset") >= 3
    restored = ClassicControlEnv(seed=99)
    restored.set_state(torch.load(path, weights_only=False))
    assert play(restored, actions) == expected


def test_observation_stack_keeps_floats_and_zeroes_before_a_start():
    stack = ObservationStack(2, (4,))
    first = np.array([0.5, -0.25, 0.125, 1.5], np.float32)
    np.testing.assert_array_equal(stack.reset(first), [[0, 0, 0, 0], first])
    second = first * 2
    np.testing.assert_array_equal(stack.push(second), [first, second])
    copy = ObservationStack(2, (4,))
    copy.load_state_dict(stack.state_dict())
    np.testing.assert_array_equal(copy.push(first), [second, first])


# ---------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training per seed through dqn.loop.train_loop, then greedy returns of the final weights."""
    hp = cartpole_hyperparameters()
    runs = {}
    for seed in SEEDS:
        out = tmp_path_factory.mktemp(f"cartpole-seed{seed}")
        started = time.monotonic()
        parts, state = build_parts(hp, seed, out)
        assert loop.train_loop(parts, state) is None
        returns = greedy_returns(parts.learner, seed=10_000 + seed, episodes=GREEDY_EPISODES)
        runs[seed] = {"returns": returns, "out": out, "parts": parts, "seconds": time.monotonic() - started}
        print(f"\nCartPole seed {seed}: greedy returns {returns} (mean {np.mean(returns):.1f}) "
              f"in {runs[seed]['seconds']:.1f} s")
    return hp, runs


@pytest.mark.parametrize("seed", SEEDS)
def test_dqn_learns_to_balance_cartpole(trained, seed):
    hp, runs = trained
    returns = runs[seed]["returns"]
    assert len(returns) == GREEDY_EPISODES
    assert np.mean(returns) >= THRESHOLD_RETURN, f"seed {seed}: greedy returns {returns}"


def test_the_training_ran_the_real_loop(trained):
    hp, runs = trained
    for run in runs.values():
        log = pd.read_parquet(run["out"] / "train_log.parquet")
        steps = hp.training_length_steps
        assert list(log["agent_steps"]) == list(range(hp.eval_interval_steps, steps + 1, hp.eval_interval_steps))
        # One update per step while DeepMind's numSteps n (before the step) is past the replay
        # start: n = 1001, ..., 9999 (n > 1000); epsilon at its floor after the decay.
        assert log["parameter_updates"].iloc[-1] == (steps - 1) - hp.replay_start_size_steps == 8999
        assert log["epsilon"].iloc[-1] == hp.final_exploration
        assert (log["train_episodes"] > 0).all()
        # The held-out states' max Q climbs toward 1 / (1 - discount) = 100 (the returns of a
        # policy that balances to the time limit, bootstrapped past it) and stays below it.
        q = log["average_max_q"]
        assert 0 < q.iloc[0] < q.iloc[-1] < 1 / (1 - hp.discount_factor)
