"""The parts of one training run, composed once from its config: env, frame stack, replay memory,
learner, exploration schedule, actor, checkpointer and progress line (`dqn.loop.Parts`).

The environment comes from a factory (`AtariEnvironment` by default), so that the learning test
trains these very parts on a classic-control task (tests/helpers/classic_control.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dqn import fileio
from dqn.config import Hyperparameters
from dqn.loop import Parts, StopSignal, WallClock
from dqn.run_folder import RunFiles

PROGRESS_INTERVAL_SECONDS = 30.0


class EnvironmentFactory(Protocol):
    """Makes a run's env (AtariEnv's interface) and the frame stack of its observations."""

    frame_dtype: Any  # what the replay memory stores a frame as

    def make_env(self, game: str, seed: int, hp: Hyperparameters) -> Any: ...

    def make_stack(self, history_length_frames: int, frame_shape: tuple[int, ...]) -> Any: ...


class AtariEnvironment:
    """An Atari game as the paper plays it, and a stack of its uint8 screens."""

    frame_dtype = np.uint8

    def make_env(self, game: str, seed: int, hp: Hyperparameters) -> Any:
        from dqn.atari import AtariEnv

        # A lost life that is terminal for learning also ends the action repeat at that frame.
        return AtariEnv(game, seed=seed, action_repeat_frames=hp.action_repeat_frames,
                        noop_max_frames=hp.noop_max_frames, preprocessing=hp.preprocessing,
                        end_step_at_life_loss=hp.lost_life_terminal)

    def make_stack(self, history_length_frames: int, frame_shape: tuple[int, ...]) -> Any:
        from dqn.atari import FrameStack

        return FrameStack(history_length_frames, frame_shape)


def seed_streams(seed: int) -> tuple[int, int, int, int]:
    """Independent seeds from one: the env (ALE and no-op starts), the replay's sampling, the
    actor's epsilon-greedy draws and the network's initialisation (on the fast path the device
    replay samples from torch's generator of its device instead)."""
    env_seed, replay_seed, actor_seed, torch_seed = (
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(4)
    )
    return env_seed, replay_seed, actor_seed, torch_seed


def _learner_and_replay(hp: Hyperparameters, num_actions: int, frame_shape: tuple[int, ...], device: str, *,
                        replay_seed: int, frame_dtype: Any, fast_path: bool, compile_step: bool,
                        channels_last: bool) -> tuple[Any, Any]:
    from dqn.agent import Learner
    from dqn.replay import ReplayMemory

    history = hp.agent_history_length_frames
    learner = Learner(hp, num_actions, device=device, in_shape=(history, *frame_shape), channels_last=channels_last)
    if compile_step:
        from dqn.speed.compiled_step import compile_optimizer_step

        compile_optimizer_step(learner.optimizer)
    if not fast_path:
        replay = ReplayMemory(hp.replay_memory_size_transitions, history, frame_shape, seed=replay_seed,
                              frame_dtype=frame_dtype)
        return learner, replay
    from dqn.speed.device_replay import DeviceReplay
    from dqn.speed.fast_learner import FastLearner

    replay = DeviceReplay(hp.replay_memory_size_transitions, history, frame_shape, device=device)
    return FastLearner(learner), replay


def build_parts(hp: Hyperparameters, game: str, seed: int, device: str, files: RunFiles, *,
                fast_path: bool = False, compile_step: bool = False, channels_last: bool = False,
                environment: EnvironmentFactory | None = None) -> tuple[Parts, np.ndarray]:
    """The env, stack, replay, learner and actor of one run, seeded from `seed`; and the env's first frame.

    fast_path: the replay memory on the learner's device and the FastLearner (captured CUDA graphs,
    no host wait per update); same algorithm, another random stream for the minibatches.
    compile_step: torch.compile the RMSProp step (same maths up to float rounding).
    channels_last: the CNN in NHWC memory format (same maths up to float rounding).
    environment: the env factory (default: the Atari game `game`).
    """
    import torch

    from dqn.agent import epsilon_greedy
    from dqn.checkpoint import Checkpointer
    from dqn.progress import Progress
    from dqn.schedules import LinearEpsilon

    environment = environment or AtariEnvironment()
    env_seed, replay_seed, actor_seed, torch_seed = seed_streams(seed)
    torch.manual_seed(torch_seed)
    env = environment.make_env(game, env_seed, hp)
    first_frame = env.reset()
    frame_shape = tuple(first_frame.shape)
    learner, replay = _learner_and_replay(hp, env.num_actions, frame_shape, device, replay_seed=replay_seed,
                                          frame_dtype=environment.frame_dtype, fast_path=fast_path,
                                          compile_step=compile_step, channels_last=channels_last)
    parts = Parts(
        hp=hp, game=game, seed=seed, env=env,
        stack=environment.make_stack(hp.agent_history_length_frames, frame_shape),
        replay=replay,
        learner=learner,
        epsilon=LinearEpsilon.from_hyperparameters(hp),
        epsilon_greedy=epsilon_greedy,
        rng=np.random.default_rng(actor_seed),
        files=files,
        checkpointer=Checkpointer(files.checkpoints),
        progress=Progress(hp.training_length_frames, label=f"{game} seed {seed}: ",
                          interval_seconds=PROGRESS_INTERVAL_SECONDS,
                          record=lambda numbers: fileio.write_json(numbers, files.progress)),
        clock=WallClock(),
        stop=StopSignal(),
        fast_path=fast_path,
    )
    return parts, first_frame
