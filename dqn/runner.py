"""The episode runner that every evaluation shares: episodes side by side in one lockstep loop.

Every round, the policy (dqn.policy.Policy) acts once for all live episodes in the main process,
and the environments step in worker processes. Why not gymnasium's `AsyncVectorEnv`: it runs one
process per environment and restarts finished environments itself; here the episodes share
however many cores are given (several environments per process), every episode is seeded by its
key alone (`slot_seeds`, e.g. (seed, episode index)) and an episode is never restarted. Because
the same episodes then form the same batches whatever the number of processes, the scores are
identical for 1, 2 or 16 workers, bit for bit.

A `Slot` is one environment playing episodes one after the other: the paper's final evaluation
(dqn.evaluate) gives each of its 30 episodes a slot of one episode; the training-time evaluation
(dqn.snapshot_eval) gives one slot a budget of agent steps, played in episodes back to back.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from dqn.errors import UserError

if TYPE_CHECKING:  # worker processes import this module: they never need torch or the policy
    from dqn.policy import Policy

PROGRESS_INTERVAL_SECONDS = 10.0


@dataclass(frozen=True)
class EnvSpec:
    """How to build the environment of one slot; picklable, so it travels to worker processes."""

    game: str
    action_repeat_frames: int = 4
    noop_max_frames: int = 30
    preprocessing: str = "nature"
    max_episode_frames: int | None = None
    factory: Callable[..., Any] | None = None  # AtariEnv's signature; None means dqn.atari.AtariEnv

    def make(self, seed: int):
        factory = self.factory
        if factory is None:
            from dqn.atari import AtariEnv as factory
        return factory(self.game, seed=seed, action_repeat_frames=self.action_repeat_frames,
                       noop_max_frames=self.noop_max_frames, preprocessing=self.preprocessing,
                       max_episode_frames=self.max_episode_frames)


def _apply(envs: dict[int, Any], spec: EnvSpec, op: tuple) -> tuple:
    """Run one operation on the environments of this process; the same code in-process and in workers.

    ("reset", slot, seed): build the slot's env on first use, start an episode -> (frame, num_actions, noop_frames)
    ("step", slot, action): one agent step -> (frame, game_over, truncated, episode_return, episode_frames, noop_frames)
    ("close", slot): drop the slot's env -> ()
    """
    kind, slot = op[0], op[1]
    if kind == "step":
        env = envs[slot]
        step = env.step(op[2])
        return (step.frame, bool(step.game_over), bool(step.truncated), float(env.episode_return),
                int(env.episode_frames), int(env.noop_frames))
    if kind == "reset":
        env = envs.get(slot)
        if env is None:
            env = envs[slot] = spec.make(op[2])
        frame = env.reset()
        return (frame, int(env.num_actions), int(env.noop_frames))
    if kind == "close":
        envs.pop(slot, None)
        return ()
    raise ValueError(f"unknown operation {kind!r}")


class _LocalHost:
    """All environments in this process (num_workers 0 or 1)."""

    def __init__(self, spec: EnvSpec):
        self.spec = spec
        self.envs: dict[int, Any] = {}

    def run(self, ops: list[tuple]) -> dict[int, tuple]:
        return {op[1]: _apply(self.envs, self.spec, op) for op in ops}

    def close(self) -> None:
        self.envs.clear()


def _serve(conn, spec: EnvSpec) -> None:
    """Worker process: apply batches of operations until told to stop."""
    import signal

    # Ctrl-C is the main process's to handle: it stops the workers in order (no traceback per worker).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import cv2

        cv2.setNumThreads(1)  # one core per worker: cv2's own thread pool would fight the others
    except ImportError:
        pass
    envs: dict[int, Any] = {}
    while True:
        try:
            ops = conn.recv()
        except EOFError:
            return
        if ops is None:
            return
        try:
            conn.send(("ok", [_apply(envs, spec, op) for op in ops]))
        except Exception as exc:
            try:
                conn.send(("error", exc, traceback.format_exc()))
            except Exception:  # the exception itself does not pickle
                conn.send(("error", RuntimeError(repr(exc)), traceback.format_exc()))


class _ProcessHost:
    """Slots spread over `num_workers` processes (slot i lives in worker i % num_workers)."""

    def __init__(self, spec: EnvSpec, num_workers: int):
        # spawn, not fork: the main process may hold torch's and OpenCV's thread pools, which a
        # forked child inherits in a broken state.
        context = mp.get_context("spawn")
        self.conns = []
        self.processes = []
        for index in range(num_workers):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, spec), name=f"dqn-eval-worker-{index}", daemon=True)
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)

    def run(self, ops: list[tuple]) -> dict[int, tuple]:
        n = len(self.conns)
        by_worker: list[list[tuple]] = [[] for _ in range(n)]
        for op in ops:
            by_worker[op[1] % n].append(op)
        busy = [w for w in range(n) if by_worker[w]]
        for w in busy:
            self.conns[w].send(by_worker[w])
        results: dict[int, tuple] = {}
        failure = None
        for w in busy:  # receive from every busy worker even after a failure, to stay in step
            try:
                reply = self.conns[w].recv()
            except (EOFError, OSError):
                failure = failure or (RuntimeError(f"evaluation worker {w} died (exit code {self.processes[w].exitcode})"), "")
                continue
            if reply[0] == "error":
                failure = failure or (reply[1], reply[2])
                continue
            results.update((op[1], result) for op, result in zip(by_worker[w], reply[1]))
        if failure is not None:
            exc, text = failure
            if isinstance(exc, UserError):
                raise exc
            raise RuntimeError(f"an evaluation worker failed:\n{text}") from exc
        return results

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
        for conn in self.conns:
            conn.close()


def default_num_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _make_host(spec: EnvSpec, num_workers: int | None, num_slots: int):
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if workers < 0:
        raise UserError(f"the number of workers must be 0 or more, got {workers}")
    workers = min(workers, num_slots)
    if workers <= 1:
        return _LocalHost(spec)
    return _ProcessHost(spec, workers)


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
    from dqn.atari import FrameStack

    history = history_length_frames or getattr(policy, "history_length_frames", 4)
    result = RunResult()
    reporter = _Reporter(log, label, spec, slots, result)
    started = time.monotonic()
    host = _make_host(spec, num_workers, len(slots))
    try:
        to_reset = [slot for slot in slots if slot.may_start_episode()]
        for slot in slots:
            slot.finished = not slot.may_start_episode()
        to_close: list[Slot] = []
        while to_reset or any(slot.live for slot in slots):
            live = [slot for slot in slots if slot.live]
            ops: list[tuple] = [("reset", slot.index, slot.env_seed) for slot in to_reset]
            ops += [("close", slot.index) for slot in to_close]
            if live:
                states = np.stack([slot.state for slot in live])
                actions = policy.act(states, [slot.rng for slot in live], epsilon)
                ops += [("step", slot.index, int(action)) for slot, action in zip(live, actions)]
            replies = host.run(ops)
            to_close = []

            for slot in to_reset:
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
            to_reset = []

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
            reporter.maybe_report()
        if to_close:
            host.run([("close", slot.index) for slot in to_close])
    finally:
        host.close()
    result.wall_seconds = time.monotonic() - started
    result.episodes.sort(key=lambda r: (r.slot, r.episode_in_slot))
    reporter.report(final=True)
    return result


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
