"""The paper's final evaluation (Extended Data Table 2) and the episode runner it shares.

Protocol: 30 episodes, each cut at 18,000 emulator frames (5 minutes), a uniform random no-op
start of 1..30 frames, epsilon-greedy with epsilon 0.05, loss of life not terminal, raw game
score of the whole game. One function, `evaluate`, scores every agent: an agent is a *policy*,

    policy.act(states, rngs, epsilon) -> actions

where `states` is a [n, history, 84, 84] uint8 batch holding the state of every live episode,
`rngs` the n episodes' own random generators (all randomness of an action is drawn from its
episode's generator) and `actions` n ints. `DQNPolicy` does one batched forward pass for all
live episodes and epsilon-greedy per episode with random ties; `baselines.random_agent`'s
policy ignores the states.

Episodes run side by side in one lockstep loop: every round, the policy acts once for all live
episodes in the main process, and the environments step in worker processes. Why not
gymnasium's `AsyncVectorEnv`: it runs one process per environment and restarts finished
environments itself; here the 30 episodes share however many cores are given (several
environments per process), every episode is seeded by (seed, episode index) alone and an
episode is never restarted. Because the same episodes then form the same batches whatever the
number of processes, the scores are identical for 1, 2 or 16 workers, bit for bit.

The same runner plays the training-time evaluation (`dqn.snapshot_eval`), where each slot plays
episodes back to back within a budget of agent steps.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np

from dqn.devices import resolve_device
from dqn.errors import ArgumentParser, UserError, cli_main

if TYPE_CHECKING:  # pandas is imported where rows are built: worker processes never need it
    import pandas as pd

EPISODE_COLUMNS = ("game", "agent", "seed", "weights", "episode", "score", "length_frames", "noop_frames", "truncated")
WEIGHTS_KEYS = ("state_dict", "network", "num_actions", "game", "frames", "hyperparameters")
FINAL_EVAL_EPSILON = 0.05
PROGRESS_INTERVAL_SECONDS = 10.0


class Policy(Protocol):
    agent: str  # the `agent` label of evaluation rows: "dqn", "random"
    num_actions: int

    def act(self, states: np.ndarray, rngs: Sequence[np.random.Generator], epsilon: float) -> np.ndarray:
        """One action per row of `states` ([n, history, 84, 84] uint8), drawing only from rngs[i] for row i."""
        ...


# --------------------------------------------------------------------------------------------
# The DQN policy


def hyperparameters_from_dict(values: dict[str, Any]):
    """The `Hyperparameters` stored in a weights file or config.json (a dict), validated."""
    from dqn.config import resolve

    # resolve() applies every stored value over the nature preset, turning the per-game action
    # repeat (stored as a dict) back into the dataclass's tuple of pairs and validating the result.
    return resolve("nature", dict(values))


class DQNPolicy:
    """Epsilon-greedy on a Q-network: one forward pass for the whole batch, then per row
    `dqn.agent.epsilon_greedy` (the training rule: ties broken at random) with the row's own RNG."""

    agent = "dqn"

    def __init__(self, network, num_actions: int, *, device: str = "cpu", history_length_frames: int = 4,
                 game: str | None = None, frames: int | None = None, hyperparameters=None):
        import torch

        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.num_actions = int(num_actions)
        self.history_length_frames = int(history_length_frames)
        self.game = game
        self.frames = frames
        self.hyperparameters = hyperparameters

    @classmethod
    def from_weights(cls, path: str | os.PathLike, device: str = "cpu") -> "DQNPolicy":
        """Load a weights file (torch.save'd dict with WEIGHTS_KEYS) and build its network.

        `hyperparameters` holds the training run's values with the game's own overrides applied
        (e.g. the 2013 paper's action repeat of 3 for Space Invaders). Whatever is wrong with the
        file (not a torch file, a missing or wrong entry, weights that do not fit the network,
        NaN weights) is one UserError naming the file.
        """
        from dqn.networks import build_network

        blob = load_weights(path)
        where = f"weights file {str(path)!r}"
        try:
            hp = hyperparameters_from_dict(blob["hyperparameters"]).for_game(blob["game"])
        except (UserError, TypeError, ValueError) as exc:
            raise UserError(f"{where} holds hyperparameters that do not validate ({_one_line(exc)}); "
                            "was it edited? pass a best.pt or final.pt written by dqn.train") from None
        in_shape = (hp.agent_history_length_frames, 84, 84)
        network = build_network(blob["network"], in_shape, blob["num_actions"])
        misfit = _state_dict_misfit(network.state_dict(), blob["state_dict"])
        if misfit:
            raise UserError(f"{where} does not fit network {blob['network']!r} with {blob['num_actions']} actions and "
                            f"{hp.agent_history_length_frames} history frames ({misfit}); was it edited? pass a best.pt "
                            "or final.pt written by dqn.train")
        try:
            network.load_state_dict(blob["state_dict"])
        except RuntimeError as exc:
            raise UserError(f"{where} does not fit network {blob['network']!r} ({_one_line(exc)}); "
                            "pass a best.pt or final.pt written by dqn.train") from None
        return cls(network, blob["num_actions"], device=device, history_length_frames=hp.agent_history_length_frames,
                   game=blob["game"], frames=blob["frames"], hyperparameters=hp)

    def q_values(self, states: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(states)).to(self.device)
            return self.network(x).float().cpu().numpy()

    def act(self, states: np.ndarray, rngs: Sequence[np.random.Generator], epsilon: float) -> np.ndarray:
        from dqn.agent import epsilon_greedy

        q = self.q_values(states)
        return np.array([epsilon_greedy(q[i], epsilon, rngs[i]) for i in range(len(rngs))], dtype=np.int64)


def load_weights(path: str | os.PathLike) -> dict[str, Any]:
    """The dict of a weights file with every entry checked (types, finite weights), or a
    UserError of one line that names the file and says what is wrong with it."""
    import torch

    from dqn.config import NETWORKS

    path = Path(path)
    where = f"weights file {str(path)!r}"
    fix = "pass a best.pt or final.pt written by dqn.train"
    if path.is_dir():
        raise UserError(f"{where} is a folder; {fix} (e.g. RUN_DIR/best.pt)")
    if not path.is_file():
        raise UserError(f"{where} does not exist; check the path (e.g. RUN_DIR/best.pt)")
    if path.stat().st_size == 0:
        raise UserError(f"{where} is empty (an interrupted copy?); {fix}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not its own
        raise UserError(f"cannot read {where} ({type(exc).__name__}): it is not a torch file, or a damaged one "
                        f"(truncated?); {fix}") from None
    if not isinstance(blob, dict):
        raise UserError(f"{where} holds a {type(blob).__name__}, not the dict of dqn.train's weights files; {fix}")
    missing = [key for key in WEIGHTS_KEYS if key not in blob]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}: it is not a weights file of dqn.train; {fix}")

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise UserError(f"{where} is damaged or was edited: {what}; {fix}")

    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    need(isinstance(blob["network"], str) and blob["network"] in NETWORKS,
         f"unknown network {blob['network']!r} (valid networks: {', '.join(NETWORKS)})")
    need(is_int(blob["num_actions"]) and blob["num_actions"] >= 1,
         f"num_actions must be a positive integer, got {blob['num_actions']!r}")
    need(isinstance(blob["game"], str) and blob["game"] != "", f"game must be an ALE id, got {blob['game']!r}")
    need(is_int(blob["frames"]) and blob["frames"] >= 0, f"frames must be an integer of 0 or more, got {blob['frames']!r}")
    need(isinstance(blob["hyperparameters"], dict),
         f"hyperparameters must be a dict, got a {type(blob['hyperparameters']).__name__}")
    state_dict = blob["state_dict"]
    need(isinstance(state_dict, dict) and len(state_dict) > 0,
         f"state_dict must be a non-empty dict of tensors, got {_describe(state_dict)}")
    not_tensors = [str(name) for name, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    need(not not_tensors, f"state_dict entries that are not tensors: {_first_few(not_tensors)}")
    # A diverged training saves NaN or infinite weights; they would surface only as NaN
    # Q-values deep inside the first evaluation episode.
    not_finite = [str(name) for name, value in state_dict.items()
                  if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if not_finite:
        raise UserError(f"{where} holds NaN or infinite weights (in {_first_few(not_finite)}): the training that "
                        f"wrote them diverged or the file is damaged; evaluate another snapshot or train again")
    return blob


def _state_dict_misfit(expected: dict[str, Any], given: dict[str, Any]) -> str:
    """What keeps `given` from loading into a network whose state_dict is `expected` ("" if nothing)."""
    missing = [name for name in expected if name not in given]
    unexpected = [str(name) for name in given if name not in expected]
    shapes = [f"{name} {tuple(given[name].shape)} where the network has {tuple(value.shape)}"
              for name, value in expected.items() if name in given and given[name].shape != value.shape]
    problems = []
    if missing:
        problems.append(f"missing {_first_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_first_few(unexpected)}")
    if shapes:
        problems.append(f"shape of {_first_few(shapes)}")
    return "; ".join(problems)


def _first_few(items: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _describe(value: Any) -> str:
    return "an empty dict" if isinstance(value, dict) else f"a {type(value).__name__}"


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (torch's and argparse's can span several)."""
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------------------------
# Environments in worker processes


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


# --------------------------------------------------------------------------------------------
# The final evaluation


def evaluate(
    policy: Policy,
    game: str,
    *,
    seed: int,
    episodes: int = 30,
    epsilon: float = FINAL_EVAL_EPSILON,
    max_episode_frames: int | None = 18_000,
    noop_max_frames: int = 30,
    action_repeat_frames: int = 4,
    preprocessing: str = "nature",
    num_workers: int | None = None,
    env_factory: Callable[..., Any] | None = None,
    agent: str | None = None,
    weights: str = "none",
    log: Callable[[str], None] | None = None,
) -> "pd.DataFrame":
    """Score `policy` on `game` by the Extended Data Table 2 protocol: one row per episode
    (EPISODE_COLUMNS), sorted by episode.

    Episode i depends only on (seed, i): its environment seed and exploration generator come
    from SeedSequence([seed, i]), so the rows do not depend on `num_workers` (None: every core;
    0 or 1: in this process). `agent` defaults to `policy.agent`; `weights` labels the rows
    ("best", "final", "none"). `env_factory` replaces dqn.atari.AtariEnv (tests).
    """
    if episodes < 1:
        raise UserError(f"the number of episodes must be at least 1, got {episodes}")
    if seed < 0:
        raise UserError(f"the seed must be 0 or more, got {seed}")
    if not 0.0 <= epsilon <= 1.0:
        raise UserError(f"epsilon must lie in [0, 1], got {epsilon}")
    from dqn.games import check_game

    game = check_game(game)
    spec = EnvSpec(game, action_repeat_frames, noop_max_frames, preprocessing, max_episode_frames, env_factory)
    slots = [Slot(episode, *slot_seeds(seed, episode), max_episodes=1) for episode in range(episodes)]
    result = run_slots(policy, spec, slots, epsilon=epsilon, num_workers=num_workers, log=log, label=f"{game}: ")
    import pandas as pd

    rows = pd.DataFrame(
        {
            "game": [game] * len(result.episodes),
            "agent": [agent or policy.agent] * len(result.episodes),
            "seed": np.full(len(result.episodes), seed, dtype=np.int64),
            "weights": [weights] * len(result.episodes),
            "episode": np.array([r.slot for r in result.episodes], dtype=np.int64),
            "score": np.array([r.score for r in result.episodes], dtype=np.float64),
            "length_frames": np.array([r.length_frames for r in result.episodes], dtype=np.int64),
            "noop_frames": np.array([r.noop_frames for r in result.episodes], dtype=np.int64),
            "truncated": np.array([r.truncated for r in result.episodes], dtype=bool),
        },
        columns=list(EPISODE_COLUMNS),
    )
    return rows


def summarize(rows: "pd.DataFrame") -> str:
    """One line: mean and s.d. of the scores (the table's two numbers), truncated episodes."""
    return (f"{len(rows)} episodes: mean {rows['score'].mean():.1f}, s.d. {rows['score'].std(ddof=0):.1f}, "
            f"{int(rows['truncated'].sum())} cut at the frame limit")


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def check_out_file(out: str | os.PathLike) -> Path:
    """The --out file, checked without creating anything: it must not be a folder."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name such as episodes.parquet")
    return out


def check_out_path(out: str | os.PathLike, *, created: list[Path] | None = None) -> Path:
    """The --out file, after checking that its folder can be written (before any work).

    Creates the folder if needed; the folders created are appended to `created` (see
    dqn.fileio.removed_if_failed), so a later failure can remove them again.
    """
    from dqn.fileio import check_output_dir

    out = check_out_file(out)
    check_output_dir(out.parent, created=created)
    return out


def check_run_arguments(*, seed: int, episodes: int | None = None, epsilon: float | None = None,
                        workers: int | None = None) -> None:
    """The evaluation CLIs' number arguments, checked before any file is read or folder made."""
    if episodes is not None and episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    if epsilon is not None and not 0.0 <= epsilon <= 1.0:  # NaN fails too
        raise UserError(f"--epsilon must lie in [0, 1], got {epsilon}")
    if seed < 0:
        raise UserError(f"--seed must be 0 or more, got {seed}")
    if workers is not None and workers < 0:
        raise UserError(f"--workers must be 0 or more (0 or 1: in this process), got {workers}")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m dqn.evaluate",
        description="Evaluate DQN weights by the Nature protocol: 30 episodes of at most 5 minutes (18,000 frames), "
        "epsilon 0.05, random no-op start; one Parquet row per episode.",
    )
    parser.add_argument("--game", required=True, help="ALE id of the game, e.g. breakout")
    parser.add_argument("--weights", required=True, help="weights file written by dqn.train (best.pt, final.pt)")
    parser.add_argument("--label", required=True, help="the `weights` label of the rows, e.g. best or final")
    parser.add_argument("--seed", type=int, required=True, help="evaluation seed; episode i is seeded by (seed, i)")
    parser.add_argument("--out", required=True, help="Parquet file to write (atomically)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes (default: the weights' final_eval_episodes, 30)")
    parser.add_argument("--workers", type=int, default=None, help="environment processes (default: every core; 0 or 1: in-process)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--epsilon", type=float, default=FINAL_EVAL_EPSILON, help="exploration rate (default 0.05)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dqn.fileio import remove_stale_temporaries, removed_if_failed, write_parquet
    from dqn.games import check_game

    # Order: every argument first, then the weights file, and the output folder last, so a
    # refused command has read nothing it did not need and leaves no folder behind.
    args = _parser().parse_args(argv)
    check_run_arguments(seed=args.seed, episodes=args.episodes, epsilon=args.epsilon, workers=args.workers)
    if not args.label.strip():
        raise UserError("--label must not be empty; use best or final")
    game = check_game(args.game)
    out = check_out_file(args.out)
    device = resolve_device(args.device)
    # One intra-op thread: a batch of at most 30 states takes a few ms on one core, and idle
    # OpenMP threads spinning in this process would slow the worker processes that step the games.
    import torch

    torch.set_num_threads(1)
    policy = DQNPolicy.from_weights(args.weights, device)
    if policy.game != game:
        raise UserError(f"weights {args.weights!r} were trained on {policy.game!r}, not {game!r}; pass --game {policy.game}")
    hp = policy.hyperparameters
    episodes = hp.final_eval_episodes if args.episodes is None else args.episodes
    with removed_if_failed() as created:
        check_out_path(out, created=created)
        # Only this command's own leftovers: other files of the folder belong to other jobs.
        remove_stale_temporaries(out.parent, recursive=False, targets=[out.name])
        log_to_stderr(f"{game}: evaluating {args.weights} ({policy.frames:,} frames of training) on {device}, "
                      f"{episodes} episodes, seed {args.seed}")
        rows = evaluate(
            policy, game, seed=args.seed, episodes=episodes, epsilon=args.epsilon,
            max_episode_frames=hp.final_eval_max_episode_frames, noop_max_frames=hp.noop_max_frames,
            action_repeat_frames=hp.action_repeat_frames, preprocessing=hp.preprocessing,
            num_workers=args.workers, weights=args.label, log=log_to_stderr,
        )
        write_parquet(rows, out)
    log_to_stderr(f"{game}: {summarize(rows)}; wrote {out}")
    return 0


if __name__ == "__main__":
    cli_main(main)
