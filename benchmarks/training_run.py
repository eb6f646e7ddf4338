"""Run this project's training loop (`dqn.train.train_loop`) briefly and measure it.

The loop is the real one, built by `dqn.train.build_parts`; only the budgets shrink: a replay
start of `learning_start_steps`, then `warmup_steps` of learning that are not timed (caches,
graph capture, the allocator reaching its steady state), then `measure_steps` timed. The rate
is read from the train log's own rows (cumulative wall seconds at two period ends), so the
timed span holds everything the loop does per step, plumbing included.

Settings that differ from a Nature run, and why:
- epsilon is 0.1 from the replay start (`final_exploration_frame_steps=0`): the rate of the
  98% of a Nature run after the decay, with its share of greedy steps;
- no held-out states (their average max-Q runs once per period; periods are short here);
- `period_steps` between train-log rows (a snapshot each; ~0.1% of the time at 500 steps).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_bytes, setup_process


def training_hyperparameters(preset: str, game: str, *, replay_transitions: int, learning_start_steps: int,
                             warmup_steps: int, measure_steps: int, period_steps: int):
    from dqn.config import resolve

    for name, value in (("learning_start_steps", learning_start_steps), ("warmup_steps", warmup_steps),
                        ("measure_steps", measure_steps)):
        if value % period_steps:
            raise ValueError(f"{name} ({value}) must be a multiple of period_steps ({period_steps})")
    hp = resolve(preset, {}).for_game(game)
    total_steps = learning_start_steps + warmup_steps + measure_steps
    return dataclasses.replace(
        hp,
        replay_memory_size_transitions=replay_transitions,
        replay_start_size_steps=learning_start_steps,
        final_exploration_frame_steps=0,
        heldout_states=0,
        training_length_frames=total_steps * hp.action_repeat_frames,
        eval_interval_frames=period_steps * hp.action_repeat_frames,
    )


class _CpuClockedProgress:
    """The loop's progress reporter, also noting this process's CPU seconds at each period end."""

    def __init__(self, inner):
        self.inner = inner
        self.cpu_seconds_at: dict[int, float] = {}

    def start(self, frames: int, agent_steps: int) -> None:
        self.inner.start(frames, agent_steps)

    def due(self) -> bool:
        return self.inner.due()

    def update(self, frames: int, agent_steps: int, **kwargs):
        if kwargs.get("force"):
            self.cpu_seconds_at[agent_steps] = time.process_time()
        return self.inner.update(frames, agent_steps, **kwargs)


def measure_training(*, game: str = "breakout", seed: int = 0, device: str = "cpu", threads: int = 1,
                     fast_path: bool = False, compile_optimizer: bool = False, preset: str = "nature", replay_transitions: int = 100_000,
                     learning_start_steps: int = 2_000, warmup_steps: int = 500, measure_steps: int = 2_000,
                     period_steps: int = 500) -> dict[str, Any]:
    """Agent steps per second of the training loop while learning, and this process's peak RSS.

    `compile_optimizer` is passed explicitly: dqn.train's --compile auto decides by the run's
    length, and this short run stands for a long one.
    """
    import torch

    from dqn import train

    settings = setup_process(threads)
    hp = training_hyperparameters(preset, game, replay_transitions=replay_transitions,
                                  learning_start_steps=learning_start_steps, warmup_steps=warmup_steps,
                                  measure_steps=measure_steps, period_steps=period_steps)
    if device == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dqn-bench-") as out:
        files = train.RunFiles(Path(out))
        parts, first_frame = train.build_parts(hp, game, seed, device, files, fast_path=fast_path,
                                               compile_step=compile_optimizer and not fast_path)
        st = train.TrainState(s_t=parts.stack.reset(first_frame), episode_start=True)
        parts.progress = clocked = _CpuClockedProgress(parts.progress)
        train.train_loop(parts, st)
        rows = {row["agent_steps"]: row for row in st.rows}
        replay = parts.replay
        result_bytes = replay.bytes_per_transition
        stored = replay.size
    begin_step = learning_start_steps + warmup_steps
    end_step = begin_step + measure_steps
    begin, end = rows[begin_step], rows[end_step]
    seconds = end["wall_seconds"] - begin["wall_seconds"]
    cpu_seconds = clocked.cpu_seconds_at[end_step] - clocked.cpu_seconds_at[begin_step]
    return dict(
        settings,
        implementation="dqn (this project)" + (", compiled optimizer step" if compile_optimizer and not fast_path else ""),
        device=device,
        fast_path=fast_path,
        compiled_optimizer_step=compile_optimizer and not fast_path,
        agent_steps_per_second=measure_steps / seconds,
        measured_agent_steps=measure_steps,
        measured_updates=end["parameter_updates"] - begin["parameter_updates"],
        measured_seconds=seconds,
        cpu_ms_per_agent_step=1e3 * cpu_seconds / measure_steps,
        loss_mean=end["loss_mean"],
        peak_rss_bytes=peak_rss_bytes(),
        replay_bytes_per_transition=result_bytes,
        replay_transitions_stored=stored,
        total_seconds=time.monotonic() - started,
    )
