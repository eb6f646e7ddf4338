"""Run this project's training loop (`dqn.loop.train_loop`) briefly and measure it.

The loop is the real one, built by `dqn.train.build_parts`; only the budgets shrink: a replay
start of `learning_start_steps`, then `warmup_steps` of learning that are not timed (caches,
the compiled step, graph capture, the allocator reaching its steady state), then
`measure_steps` timed. The clock is read where the loop asks the exploration schedule for
epsilon, once at the start of every agent step, so the timed span holds everything the loop
does per step (acting, emulator, replay, updates, target syncs, progress checks).

Settings that differ from a Nature run, and why:
- epsilon is 0.1 from the replay start (`final_exploration_frame_steps=0`): the rate of the
  98% of a Nature run after the decay, with its share of greedy steps;
- one train-log period for the whole run and no held-out states: a Nature run writes a row, a
  snapshot and the held-out average max-Q once per 250,000 steps (<0.01% of its time, see the
  profile), which a short run would otherwise overweight a thousandfold.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import peak_rss_bytes, setup_process


def training_hyperparameters(preset: str, game: str, *, replay_transitions: int, learning_start_steps: int,
                             warmup_steps: int, measure_steps: int):
    from dqn.config import resolve

    hp = resolve(preset, {}).for_game(game)
    total_steps = learning_start_steps + warmup_steps + measure_steps
    return dataclasses.replace(
        hp,
        replay_memory_size_transitions=replay_transitions,
        replay_start_size_steps=learning_start_steps,
        final_exploration_frame_steps=0,
        heldout_states=0,
        training_length_frames=total_steps * hp.action_repeat_frames,
        eval_interval_frames=total_steps * hp.action_repeat_frames,
    )


class _ClockedSchedule:
    """The loop's epsilon schedule, also noting wall and CPU seconds when given the agent steps
    that open and close the timed span (the loop asks for epsilon first thing in every step)."""

    def __init__(self, inner, begin_step: int, end_step: int, updates: Callable[[], int]):
        self.inner = inner
        self.updates = updates
        self.marks: dict[int, tuple[float, float, int] | None] = {begin_step: None, end_step: None}

    def __call__(self, agent_step: int) -> float:
        if agent_step in self.marks and self.marks[agent_step] is None:
            self.marks[agent_step] = (time.perf_counter(), time.process_time(), self.updates())
        return self.inner(agent_step)


def measure_training(*, game: str = "breakout", seed: int = 0, device: str = "cpu", threads: int = 1,
                     fast_path: bool = False, compile_optimizer: bool = False, channels_last: bool = False,
                     preset: str = "nature", replay_transitions: int = 100_000,
                     learning_start_steps: int = 2_000, warmup_steps: int = 500,
                     measure_steps: int = 2_000) -> dict[str, Any]:
    """Agent steps per second of the training loop while learning, and this process's peak RSS.

    `compile_optimizer` and `channels_last` are passed explicitly: dqn.train's "auto" decides
    them by the run's length and device, and this short run stands for a long one.
    """
    import torch

    from dqn import loop, train
    from dqn.run_folder import RunFiles

    settings = setup_process(threads)
    hp = training_hyperparameters(preset, game, replay_transitions=replay_transitions,
                                  learning_start_steps=learning_start_steps, warmup_steps=warmup_steps,
                                  measure_steps=measure_steps)
    begin_step = learning_start_steps + warmup_steps
    end_step = begin_step + measure_steps
    if device == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dqn-bench-") as out:
        files = RunFiles(Path(out))
        parts, first_frame = train.build_parts(hp, game, seed, device, files, fast_path=fast_path,
                                               compile_step=compile_optimizer and not fast_path,
                                               channels_last=channels_last and not fast_path)
        st = loop.TrainState(s_t=parts.stack.reset(first_frame), episode_start=True)
        parts.epsilon = clock = _ClockedSchedule(parts.epsilon, begin_step, end_step,
                                                 lambda: parts.learner.parameter_updates)
        loop.train_loop(parts, st)
        loss_mean = st.rows[-1]["loss_mean"]
        replay = parts.replay
        result_bytes = replay.bytes_per_transition
        stored = replay.size
    (wall0, cpu0, updates0), (wall1, cpu1, updates1) = clock.marks[begin_step], clock.marks[end_step]
    seconds, cpu_seconds = wall1 - wall0, cpu1 - cpu0
    return dict(
        settings,
        implementation="dqn (this project)" + (", compiled optimizer step" if compile_optimizer and not fast_path else "")
        + (", channels-last" if channels_last and not fast_path else ""),
        device=device,
        fast_path=fast_path,
        compiled_optimizer_step=compile_optimizer and not fast_path,
        channels_last=channels_last and not fast_path,
        agent_steps_per_second=measure_steps / seconds,
        measured_agent_steps=measure_steps,
        measured_updates=updates1 - updates0,
        measured_seconds=seconds,
        cpu_ms_per_agent_step=1e3 * cpu_seconds / measure_steps,
        loss_mean=loss_mean,
        peak_rss_bytes=peak_rss_bytes(),
        replay_bytes_per_transition=result_bytes,
        replay_transitions_stored=stored,
        total_seconds=time.monotonic() - started,
    )
