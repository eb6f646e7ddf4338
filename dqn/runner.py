"""The episode runner that every evaluation shares: episodes side by side in one lockstep loop.

Every round, the policy (dqn.policy.Policy) acts once for all live episodes in the main process,
and the environments step in worker processes. Why not gymnasium's `AsyncVectorEnv`: it runs one
process per environment and restarts finished environments itself; here the episodes share
however many cores are given (several environments per process), every episode is seeded by its
key alone (`slot_seeds`, e.g. (seed, episode index)) and an episode is never restarted. Because
the same episodes then form the same batches whatever the number of processes, the scores are
identical for 1, 2 or 16 workers, bit for bit. The environments' hosts (in this process or in
worker processes) are dqn/env_hosts.py.

A `Slot` is one environment playing episodes one after the other: the paper's final evaluation
(dqn.evaluate) gives each of its 30 episodes a slot of one episode; the training-time evaluation
(dqn.snapshot_eval) gives one slot a budget of agent steps, played in episodes back to back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from dqn.env_hosts import EnvSpec, make_host
from dqn.errors import UserError

if TYPE_CHECKING:  # worker processes import this module: they never need torch or the policy
    from dqn.policy import Policy

PROGRESS_INTERVAL_SECONDS = 10.0


# --------------------------------------------------------------------------------------------
# The lockstep runner


@dataclass
class Slot:
    """One environment playing episodes one after the other, with its own seeds.

    `max_episodes`: episodes it plays (None: no limit). `budget_steps`: agent steps it plays in
    all (None: no limit); an episode still running when the budget ends is not completed.
    """

    index: int
    env_seed: int
    rng: np.random.Generator
    max_episodes: int | None = 1
    budget_steps: int | None = None
    # -- run state --
    steps: int = 0
    episodes_started: int = 0
    episode_frames: int = 0
    state: np.ndarray | None = None
    stack: Any = None
    live: bool = False
    finished: bool = False

    def may_start_episode(self) -> bool:
        return (self.max_episodes is None or self.episodes_started < self.max_episodes) and (
            self.budget_steps is None or self.steps < self.budget_steps
        )


@dataclass(frozen=True)
class EpisodeRecord:
    slot: int
    episode_in_slot: int
    score: float
    length_frames: int
    noop_frames: int
    truncated: bool


@dataclass
class RunResult:
    episodes: list[EpisodeRecord] = field(default_factory=list)
    frames: int = 0  # emulator frames played, unfinished episodes and no-op starts included
    agent_steps: int = 0
    unfinished_episodes: int = 0
    wall_seconds: float = 0.0


def slot_seeds(*entropy: int) -> tuple[int, np.random.Generator]:
    """The env seed and the exploration generator of the slot keyed by `entropy` (e.g. seed, episode)."""
    env_sequence, rng_sequence = np.random.SeedSequence([int(e) for e in entropy]).spawn(2)
    return int(env_sequence.generate_state(1, dtype=np.uint32)[0]), np.random.default_rng(rng_sequence)


def run_slots(
    policy: Policy,
    spec: EnvSpec,
    slots: list[Slot],
    *,
    epsilon: float,
    num_workers: int | None = None,
    history_length_frames: int | None = None,
    log: Callable[[str], None] | None = None,
    label: str = "",
) -> RunResult:
    """Play every slot to its end, in lockstep rounds; return the completed episodes in slot order."""
    history = history_length_frames or getattr(policy, "history_length_frames", 4)
    result = RunResult()
    reporter = _Reporter(log, label, spec, slots, result)
    started = time.monotonic()
    host = make_host(spec, num_workers, len(slots))
    try:
        to_reset = [slot for slot in slots if slot.may_start_episode()]
        for slot in slots:
            slot.finished = not slot.may_start_episode()
        to_close: list[Slot] = []
        while to_reset or any(slot.live for slot in slots):
            # One round: the resets, closes and steps of every slot, in one call to the host.
            live = [slot for slot in slots if slot.live]
            ops: list[tuple] = [("reset", slot.index, slot.env_seed) for slot in to_reset]
            ops += [("close", slot.index) for slot in to_close]
            if live:
                states = np.stack([slot.state for slot in live])
                actions = policy.act(states, [slot.rng for slot in live], epsilon)
                ops += [("step", slot.index, int(action)) for slot, action in zip(live, actions)]
            replies = host.run(ops)
            _start_episodes(to_reset, replies, policy, spec, history, result)
            to_reset, to_close = _record_steps(live, replies, result)
            reporter.maybe_report()
        if to_close:
            host.run([("close", slot.index) for slot in to_close])
    finally:
        host.close()
    result.wall_seconds = time.monotonic() - started
    result.episodes.sort(key=lambda r: (r.slot, r.episode_in_slot))
    reporter.report(final=True)
    return result


def _start_episodes(slots: list[Slot], replies, policy: Policy, spec: EnvSpec, history: int,
                    result: RunResult) -> None:
    """The slots' new episodes from the replies to their resets: first frame, no-op frames."""
    from dqn.atari import FrameStack

    for slot in slots:
        frame, num_actions, noop_frames = replies[slot.index]
        if num_actions != policy.num_actions:
            raise UserError(
                f"the policy has {policy.num_actions} actions but {spec.game} has {num_actions}; "
                "are these weights for another game?"
            )
        if slot.stack is None:
            slot.stack = FrameStack(history, frame.shape)
        slot.state = slot.stack.reset(frame)
        slot.episodes_started += 1
        slot.episode_frames = noop_frames
        result.frames += noop_frames
        slot.live = True


def _record_steps(live: list[Slot], replies, result: RunResult) -> tuple[list[Slot], list[Slot]]:
    """The live slots' steps counted, their ended episodes recorded; returns the slots to reset
    (another episode) and to close (done) in the next round."""
    to_reset: list[Slot] = []
    to_close: list[Slot] = []
    for slot in live:
        frame, game_over, truncated, episode_return, episode_frames, noop_frames = replies[slot.index]
        slot.steps += 1
        result.agent_steps += 1
        result.frames += episode_frames - slot.episode_frames
        slot.episode_frames = episode_frames
        if game_over or truncated:
            result.episodes.append(EpisodeRecord(slot.index, slot.episodes_started - 1, episode_return,
                                                 episode_frames, noop_frames, truncated and not game_over))
            slot.live = False
        elif slot.budget_steps is not None and slot.steps >= slot.budget_steps:
            result.unfinished_episodes += 1
            slot.live = False
        else:
            slot.state = slot.stack.push(frame)
            continue
        if slot.may_start_episode():
            to_reset.append(slot)
        else:
            slot.finished = True
            slot.state = None
            to_close.append(slot)
    return to_reset, to_close


class _Reporter:
    """Progress lines to `log`: episodes done, frames/s over the last interval, ETA (an upper bound)."""

    def __init__(self, log, label, spec: EnvSpec, slots: list[Slot], result: RunResult):
        self.log = log
        self.label = label
        self.spec = spec
        self.slots = slots
        self.result = result
        self.planned_episodes = sum(s.max_episodes for s in slots) if all(s.max_episodes for s in slots) else None
        self.last_time = time.monotonic()
        self.first_time = self.last_time
        self.last_frames = 0

    def _remaining_frames_bound(self) -> float:
        remaining = 0.0
        for slot in self.slots:
            if slot.finished:
                continue
            if slot.budget_steps is not None:
                remaining += (slot.budget_steps - slot.steps) * self.spec.action_repeat_frames
            elif slot.max_episodes is not None and self.spec.max_episode_frames is not None:
                episodes_left = slot.max_episodes - slot.episodes_started
                current = self.spec.max_episode_frames - slot.episode_frames if slot.live else 0
                remaining += current + episodes_left * self.spec.max_episode_frames
            else:
                return math.inf
        return remaining

    def maybe_report(self) -> None:
        if self.log is not None and time.monotonic() - self.last_time >= PROGRESS_INTERVAL_SECONDS:
            self.report()

    def report(self, final: bool = False) -> None:
        if self.log is None:
            return
        from dqn.progress import format_count, format_duration

        now = time.monotonic()
        if final:
            elapsed, frames = now - self.first_time, self.result.frames
        else:
            elapsed, frames = now - self.last_time, self.result.frames - self.last_frames
        rate = frames / elapsed if elapsed > 0 else math.nan
        done = len(self.result.episodes)
        episodes = f"{done}/{self.planned_episodes}" if self.planned_episodes else f"{done}"
        line = f"{self.label}{episodes} episodes done, {format_count(self.result.frames)} frames, {rate:,.0f} frames/s"
        if final:
            line += f", {format_duration(elapsed)} in all"
        else:
            eta = self._remaining_frames_bound() / rate if rate > 0 else math.nan
            line += f", ETA at most {format_duration(eta)}"
        self.log(line)
        self.last_time, self.last_frames = now, self.result.frames
