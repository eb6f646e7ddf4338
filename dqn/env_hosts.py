"""Where the runner's environments live: in this process, or spread over worker processes that
apply batches of operations (reset, step, close) to the environments they hold.

Slot i lives in worker i % num_workers; each operation is applied by the same code in-process and
in a worker (`_apply`), so the replies do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from dqn.errors import UserError


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


def make_host(spec: EnvSpec, num_workers: int | None, num_slots: int):
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if workers < 0:
        raise UserError(f"the number of workers must be 0 or more, got {workers}")
    workers = min(workers, num_slots)
    if workers <= 1:
        return _LocalHost(spec)
    return _ProcessHost(spec, workers)
