"""Gymnasium's classic-control tasks behind `AtariEnv`'s interface, to train the real agent in seconds.

The learning test (tests/test_learning.py) runs `dqn.loop.train_loop` itself, with the same
Learner, ReplayMemory, LinearEpsilon and epsilon_greedy as an Atari run; only the env and the
frame stack differ:

- `ClassicControlEnv` plays one discrete-action task (CartPole-v1 by default). A "frame" is the
  task's float observation (4 floats for CartPole), an agent step is one env step
  (`action_repeat_frames` = 1), and `step` returns the same `Step(frame, reward, life_lost,
  game_over, truncated)` as `AtariEnv.step`: `game_over` is gymnasium's `terminated`, `truncated`
  its time limit (500 steps for CartPole-v1), never a lost life.
- `ObservationStack` is `FrameStack` for float frames (`FrameStack` stores uint8 screens).

`build_parts` composes the parts with `dqn.build.build_parts` itself, the task's env and stack
coming from `ClassicControlEnvironment` (its environment factory), so `train_loop(parts, state)`
trains the Atari run's parts on the task; `greedy_returns` scores the learner.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from dqn.atari import Restart, Step
from dqn.config import Hyperparameters
from dqn.errors import UserError

DEFAULT_TASK = "CartPole-v1"


class ClassicControlEnv:
    """One gymnasium classic-control task with a discrete action space, stepped like `AtariEnv`.

    The time limit is kept here (not by gymnasium's TimeLimit wrapper) so that the whole state of
    an episode is this object's fields plus the task's own `state` and RNG: `get_state` and
    `set_state` continue a trajectory exactly, as checkpoints need.
    """

    def __init__(self, task: str = DEFAULT_TASK, *, seed: int, max_episode_steps: int | None = None):
        import gymnasium

        try:
            made = gymnasium.make(task)
        except gymnasium.error.Error as exc:
            raise UserError(f"unknown gymnasium task {task!r} ({exc}); use a classic-control id such as CartPole-v1") from None
        if not isinstance(made.action_space, gymnasium.spaces.Discrete):
            raise UserError(f"{task} has a {type(made.action_space).__name__} action space; DQN needs a discrete one")
        self.task = task
        self._env = made.unwrapped
        if not hasattr(self._env, "state"):
            raise UserError(f"{task} keeps no `state` attribute, so its episodes cannot be checkpointed; use a classic-control task")
        limit = max_episode_steps if max_episode_steps is not None else made.spec.max_episode_steps
        self.max_episode_steps = None if limit is None else int(limit)
        self.num_actions = int(made.action_space.n)
        self.frame_shape = tuple(made.observation_space.shape)
        self.seed = int(seed)
        self._seeded = False
        self.episode_steps = 0
        self.episode_return = 0.0
        self.total_steps = 0
        self._needs_reset = True

    # AtariEnv's frame counters, for code that reads them: one agent step is one "frame" here.
    @property
    def episode_frames(self) -> int:
        return self.episode_steps

    @property
    def total_frames(self) -> int:
        return self.total_steps

    def reset(self) -> np.ndarray:
        """Start an episode; return its first observation (float32)."""
        # Seeded once: later episodes continue the task's own RNG stream, as AtariEnv's no-op
        # starts continue theirs.
        observation, _ = self._env.reset(seed=None if self._seeded else self.seed)
        self._seeded = True
        self.episode_steps = 0
        self.episode_return = 0.0
        self._needs_reset = False
        return np.asarray(observation, dtype=np.float32)

    def step(self, action: int) -> Step:
        if self._needs_reset:
            raise RuntimeError("the episode is over (or never started): call reset() before step()")
        if not 0 <= action < self.num_actions:
            raise ValueError(f"action {action} outside the action set 0..{self.num_actions - 1}")
        observation, reward, terminated, truncated, _ = self._env.step(int(action))
        self.episode_steps += 1
        self.total_steps += 1
        self.episode_return += float(reward)
        truncated = bool(truncated) or (
            not terminated and self.max_episode_steps is not None and self.episode_steps >= self.max_episode_steps
        )
        self._needs_reset = bool(terminated) or truncated
        return Step(np.asarray(observation, dtype=np.float32), float(reward), False, bool(terminated), truncated)

    def restart_after_terminal(self) -> Restart:
        """After a terminal step: a new episode (a task has no lives, so a terminal is its end)."""
        return Restart(self.reset(), False, None)

    def get_state(self) -> dict:
        """Everything needed to continue this trajectory exactly."""
        env = self._env
        return {
            "task": self.task,
            "state": None if env.state is None else np.array(env.state).tolist(),
            "steps_beyond_terminated": getattr(env, "steps_beyond_terminated", None),
            "np_random": copy.deepcopy(env.np_random.bit_generator.state),
            "seeded": self._seeded,
            "episode_steps": self.episode_steps,
            "episode_return": self.episode_return,
            "total_steps": self.total_steps,
            "needs_reset": self._needs_reset,
        }

    def set_state(self, state: dict) -> None:
        if state["task"] != self.task:
            raise ValueError(f"env state is for task {state['task']!r}, this env plays {self.task!r}")
        env = self._env
        env.state = None if state["state"] is None else np.array(state["state"], dtype=np.float64)
        if hasattr(env, "steps_beyond_terminated"):
            env.steps_beyond_terminated = state["steps_beyond_terminated"]
        # Touching np_random creates the generator when the task was never reset.
        env.np_random.bit_generator.state = copy.deepcopy(state["np_random"])
        self._seeded = bool(state["seeded"])
        self.episode_steps = int(state["episode_steps"])
        self.episode_return = float(state["episode_return"])
        self.total_steps = int(state["total_steps"])
        self._needs_reset = bool(state["needs_reset"])

    def close(self) -> None:
        self._env.close()


class ObservationStack:
    """`FrameStack` for float observations: the last `history_length_frames`, oldest first, zeros before a start."""

    def __init__(self, history_length_frames: int, frame_shape: tuple[int, ...], dtype: Any = np.float32):
        self._stack = np.zeros((int(history_length_frames), *frame_shape), dtype=dtype)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self._stack[:-1] = 0
        self._stack[-1] = frame
        return self._stack.copy()

    def push(self, frame: np.ndarray) -> np.ndarray:
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = frame
        return self._stack.copy()

    def state_dict(self) -> dict:
        return {"stack": self._stack.copy()}

    def load_state_dict(self, state: dict) -> None:
        stack = np.asarray(state["stack"])
        if stack.shape != self._stack.shape:
            raise ValueError(f"observation stack state has shape {stack.shape}, this stack {self._stack.shape}")
        self._stack[...] = stack


class ClassicControlEnvironment:
    """The environment factory of `dqn.build.build_parts` for a classic-control task: its env and a
    stack of float observations (the replay memory stores them as float32)."""

    frame_dtype = np.float32

    def make_env(self, task: str, seed: int, hp: Hyperparameters) -> ClassicControlEnv:
        return ClassicControlEnv(task, seed=seed)

    def make_stack(self, history_length_frames: int, frame_shape: tuple[int, ...]) -> ObservationStack:
        return ObservationStack(history_length_frames, frame_shape)


def build_parts(hp: Hyperparameters, seed: int, out: str | Path, *, task: str = DEFAULT_TASK, device: str = "cpu"):
    """(parts, state) for `dqn.loop.train_loop` on `task`: the parts of `dqn.build.build_parts`, the
    same as an Atari run's (seed streams included), with the task as the environment."""
    from dqn import loop
    from dqn.build import build_parts as build_run_parts
    from dqn.run_folder import RunFiles

    if hp.action_repeat_frames != 1:
        raise UserError(f"a classic-control agent step is one env step: set action_repeat_frames=1, got {hp.action_repeat_frames}")
    if hp.network != "mlp":
        raise UserError(f"classic-control observations are vectors: set network=mlp, got {hp.network!r}")
    parts, first_frame = build_run_parts(hp, task, seed, device, RunFiles(Path(out)),
                                         environment=ClassicControlEnvironment())
    return parts, loop.TrainState(s_t=parts.stack.reset(first_frame), episode_start=True)


def greedy_returns(learner, task: str = DEFAULT_TASK, *, seed: int, episodes: int) -> list[float]:
    """Returns of `episodes` whole episodes of the greedy policy (epsilon 0, random ties) of `learner`."""
    from dqn.agent import epsilon_greedy

    env = ClassicControlEnv(task, seed=seed)
    rng = np.random.default_rng(seed)
    history = learner.in_shape[0]
    returns = []
    for _ in range(episodes):
        stack = ObservationStack(history, env.frame_shape)
        s_t = stack.reset(env.reset())
        while True:
            step = env.step(epsilon_greedy(learner.q_values(s_t).cpu().numpy()[0], 0.0, rng))
            if step.game_over or step.truncated:
                break
            s_t = stack.push(step.frame)
        returns.append(env.episode_return)
    return returns
