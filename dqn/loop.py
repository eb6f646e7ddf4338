"""The training loop of Mnih et al. (2015), and the state it carries from one agent step to the
next: what DQN does, step by step (`train_loop`), with the plumbing (log rows, snapshots,
checkpoints, signals) marked as such. The parts it drives (env, replay, learner, schedule) are
built once by dqn/build.py for the entry point, dqn/train.py, and passed in as `Parts`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from dqn import fileio
from dqn.config import Hyperparameters
from dqn.errors import UserError
from dqn.run_folder import RunFiles, weights_file, write_train_log

if TYPE_CHECKING:
    from dqn.agent import Learner
    from dqn.atari import AtariEnv, FrameStack
    from dqn.checkpoint import Checkpointer
    from dqn.progress import Progress
    from dqn.replay import ReplayMemory
    from dqn.schedules import LinearEpsilon

log = logging.getLogger("dqn.train")


HELDOUT_BATCH_TRANSITIONS = 256


# 2: held-out transitions (s, a, r, terminal, s') instead of held-out states.
# 3: DeepMind's step (act, learn, then play; a step on each terminal observation): a format-2
#    checkpoint stopped between the old order's "play" and "learn", so it cannot continue here.
CHECKPOINT_FORMAT = 3


# ---------------------------------------------------------------------------- training state
@dataclass
class Period:
    """Accumulators of the current evaluation period (between two train_log rows)."""

    start_agent_steps: int
    start_wall_seconds: float
    loss_sum: Any = 0.0  # a float until the first add_loss, then a float64 0-d tensor on the learner's device
    updates: int = 0
    episode_returns: list[float] = field(default_factory=list)


@dataclass
class TrainState:
    """Everything the loop carries from one agent step to the next, besides the parts' own state."""

    agent_steps: int = 0
    episodes: int = 0
    s_t: np.ndarray | None = None  # the stacked state the next action is chosen on
    episode_start: bool = True  # s_t's newest frame starts a stack (a new game, or the first after a lost life)
    s_t_terminal: bool = False  # s_t's newest frame is a terminal observation: the next step plays no action
    heldout: dict[str, np.ndarray] | None = None  # held-out transitions, the fields of dqn.replay.Batch
    last_episode_return: float = math.nan
    rows: list[dict[str, Any]] = field(default_factory=list)
    period: Period = field(default_factory=lambda: Period(0, 0.0))


class WallClock:
    """Cumulative wall seconds of training, carried over resumes by the checkpoint."""

    def __init__(self, seconds_before: float = 0.0):
        self.seconds_before = seconds_before
        self._start = time.monotonic()

    def __call__(self) -> float:
        return self.seconds_before + time.monotonic() - self._start


class StopSignal:
    """SIGTERM/SIGINT set a flag; the loop checkpoints at the next agent step and exits."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def install(self) -> None:
        for s in (signal.SIGTERM, signal.SIGINT):
            self._previous[s] = signal.signal(s, self._handle)

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


@dataclass
class Parts:
    """The objects the loop drives, built by dqn.build's `build_parts`. The env may be any object
    with AtariEnv's interface (the classic-control adapter of the learning test), the replay and
    learner their device-side versions (dqn/speed/)."""

    hp: Hyperparameters
    game: str
    seed: int
    env: AtariEnv
    stack: FrameStack
    replay: ReplayMemory
    learner: Learner
    epsilon: LinearEpsilon  # agent step -> exploration rate
    epsilon_greedy: Callable[[np.ndarray, float, np.random.Generator], int]
    rng: np.random.Generator  # the actor's: epsilon-greedy draws
    files: RunFiles
    checkpointer: Checkpointer
    progress: Progress
    clock: WallClock
    stop: StopSignal
    fast_path: bool = False  # the replay's random stream differs: a checkpoint resumes on the same path


def checkpoint_state(parts: Parts, st: TrainState) -> dict[str, Any]:
    import torch

    state = {
        "format": CHECKPOINT_FORMAT,
        "fast_path": parts.fast_path,
        "learner": parts.learner.state_dict(),
        "replay": parts.replay.state_dict(),
        "env": parts.env.get_state(),
        "stack": parts.stack.state_dict(),
        "actor_rng": parts.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "train": {
            "agent_steps": st.agent_steps,
            "episodes": st.episodes,
            "s_t": st.s_t,
            "episode_start": st.episode_start,
            "s_t_terminal": st.s_t_terminal,
            "heldout": st.heldout,
            "last_episode_return": st.last_episode_return,
            "rows": st.rows,
            # float() of a float64 sum is exact: resuming adds to the same value.
            "period": {**dataclasses.asdict(st.period), "loss_sum": float(st.period.loss_sum)},
        },
        "wall_seconds": parts.clock(),
    }
    return state


def restore(parts: Parts, state: dict[str, Any], *, leaving_fast_path: bool = False) -> TrainState:
    """The TrainState of a checkpoint, the parts loaded with its state.

    leaving_fast_path: a fast-path checkpoint may be loaded into plain-path parts (the fast path
    failed its check, dqn/speed/self_check.py): the replay's contents are the same, and the host
    memory draws from its own seeded stream from then on.
    """
    import torch

    if state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT} (format 3 follows DeepMind's "
                        "step order, which an older checkpoint cannot continue); train again with a new --out")
    checkpointed_fast = bool(state.get("fast_path"))
    switching = leaving_fast_path and checkpointed_fast and not parts.fast_path
    if checkpointed_fast != parts.fast_path and not switching:
        was = "on" if checkpointed_fast else "off"
        raise UserError(f"this run was checkpointed with --fast-path {was} (another replay random stream); "
                        f"resume it with --fast-path {was}")
    replay_state = state["replay"]
    if switching:
        # A device replay saves no generator state (its stream is torch's, on the device).
        replay_state = {**replay_state, "rng_state": parts.replay.state_dict()["rng_state"]}
    parts.learner.load_state_dict(state["learner"])
    parts.replay.load_state_dict(replay_state)
    parts.env.set_state(state["env"])
    parts.stack.load_state_dict(state["stack"])
    parts.rng.bit_generator.state = state["actor_rng"]
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    t = state["train"]
    heldout = t["heldout"]
    return TrainState(
        agent_steps=int(t["agent_steps"]),
        episodes=int(t["episodes"]),
        s_t=np.array(t["s_t"]),
        episode_start=bool(t["episode_start"]),
        s_t_terminal=bool(t["s_t_terminal"]),
        # Copied out of the checkpoint's memory maps.
        heldout=None if heldout is None else {name: np.array(values) for name, values in heldout.items()},
        last_episode_return=float(t["last_episode_return"]),
        rows=list(t["rows"]),
        period=Period(**t["period"]),
    )


# ---------------------------------------------------------------------------- the loop
def heldout_transitions(batch) -> dict[str, np.ndarray]:
    """A minibatch (numpy or device tensors) as host arrays, kept for the whole run."""
    return {name: (values.cpu().numpy() if hasattr(values, "cpu") else np.array(values))
            for name, values in batch._asdict().items()}


def heldout_statistics(learner, heldout: dict[str, np.ndarray] | None) -> dict[str, float]:
    """The train_log's average_max_q and heldout_td_error_abs_mean (Fig. 2's second index of
    learning, as DeepMind's code computed it: see Learner.heldout_statistics); NaN before learning."""
    if heldout is None or len(heldout["action"]) == 0:
        return {"average_max_q": math.nan, "heldout_td_error_abs_mean": math.nan}
    from dqn.replay import Batch

    q_max, td_error_abs = learner.heldout_statistics(Batch(**heldout), HELDOUT_BATCH_TRANSITIONS)
    return {"average_max_q": q_max, "heldout_td_error_abs_mean": td_error_abs}


def end_period(parts: Parts, st: TrainState) -> None:
    """Plumbing: one train_log row and one snapshot at the end of an evaluation period."""
    hp, p = parts.hp, st.period
    frames = st.agent_steps * hp.action_repeat_frames
    wall = parts.clock()
    elapsed = wall - p.start_wall_seconds
    st.rows.append({
        "game": parts.game,
        "seed": parts.seed,
        "frames": frames,
        "agent_steps": st.agent_steps,
        "parameter_updates": parts.learner.parameter_updates,
        "epsilon": parts.epsilon(st.agent_steps),
        "train_episode_return_mean": float(np.mean(p.episode_returns)) if p.episode_returns else math.nan,
        "train_episodes": len(p.episode_returns),
        "loss_mean": float(p.loss_sum) / p.updates if p.updates else math.nan,
        **heldout_statistics(parts.learner, st.heldout),
        "agent_steps_per_second": (st.agent_steps - p.start_agent_steps) / elapsed if elapsed > 0 else math.nan,
        "wall_seconds": wall,
    })
    fileio.write_torch(weights_file(parts.learner, hp, parts.game, frames), parts.files.snapshot(frames))
    write_train_log(st.rows, parts.files.train_log)
    st.period = Period(st.agent_steps, wall)
    parts.progress.update(frames, st.agent_steps, epsilon=parts.epsilon(st.agent_steps),
                          last_return=st.last_episode_return, force=True)


def add_loss(total, loss):
    """total + loss in float64; `loss` is the 0-d tensor Learner.update returns. The sum stays on
    the learner's device, so the host never waits for an update; it is read once per period."""
    return total + loss.double()


def end_episode(st: TrainState, episode_return: float) -> None:
    """Count a finished game and its score for the train log."""
    st.period.episode_returns.append(episode_return)
    st.last_episode_return = episode_return
    st.episodes += 1


def save_checkpoint(parts: Parts, st: TrainState) -> None:
    started = time.monotonic()
    folder = parts.checkpointer.save(st.agent_steps, checkpoint_state(parts, st))
    log.info("checkpoint %s written in %.1f s", folder, time.monotonic() - started)


def train_loop(parts: Parts, st: TrainState) -> int | None:
    """Play and learn until the training length; returns an exit code if a signal stopped it.

    One iteration is one call of DeepMind's `NeuralQLearner:perceive` followed by what its caller,
    `train_agent.lua`, does with the returned action. `st.agent_steps` is the Lua `numSteps`: it
    counts perceive calls, so a terminal observation, on which no action is played, is a step too.
    In perceive's order:

        store the transition that ended at s_t (here: stored right after the emulator step, which
            is the same for every update, since nothing samples in between)
        if numSteps == learn_start + 1: draw the held-out transitions
        a_t = eGreedy(s_t) with the current weights, unless s_t is terminal
        if numSteps > learn_start and numSteps % update_freq == 0: one minibatch update
        numSteps = numSteps + 1
        if numSteps % target_q == 1: copy the online network into the target network
        then play a_t (game_env:step), or after a terminal start again (game_env:nextRandomGame)

    So the action of step t never sees step t's update, and that update and the emulator frames
    of a_t do not depend on each other: on CUDA the update runs on the GPU while the emulator
    steps, and the host waits for it only when a_{t+1} is chosen.
    """
    from dqn.agent import LazyQValues

    hp, env, stack, replay, learner = parts.hp, parts.env, parts.stack, parts.replay, parts.learner
    total_steps = hp.training_length_steps
    checkpoint_seconds = 60.0 * hp.checkpoint_interval_minutes
    last_checkpoint = time.monotonic()
    parts.progress.start(st.agent_steps * hp.action_repeat_frames, st.agent_steps)

    while st.agent_steps < total_steps:
        if parts.stop.signum is not None:  # plumbing: Slurm's time limit or Ctrl-C
            save_checkpoint(parts, st)
            name = signal.Signals(parts.stop.signum).name
            log.warning("%s received: checkpoint at agent step %d written; exiting so that a rerun resumes",
                        name, st.agent_steps)
            return 128 + parts.stop.signum

        num_steps = st.agent_steps  # the Lua numSteps while perceive runs
        learning = num_steps > hp.replay_start_size_steps
        if learning and st.heldout is None and hp.heldout_states > 0:
            # Drawn once, at numSteps == learn_start + 1, from the random policy's experience.
            st.heldout = heldout_transitions(replay.sample(hp.heldout_states))

        # Act: epsilon-greedy on the online network's Q(s_t, .), before this step's update. A
        # terminal observation gets no action. (Plumbing: the forward pass runs only if the step
        # turns out greedy; the actions and random draws are the same.)
        a_t = 0
        if not st.s_t_terminal:
            s_t = st.s_t
            q_t = LazyQValues(lambda: learner.q_values(s_t).cpu().numpy()[0], learner.num_actions)
            a_t = parts.epsilon_greedy(q_t, parts.epsilon(num_steps), parts.rng)

        # Learn: one minibatch update every update_frequency_steps after the replay start, then
        # count the step, and copy the target network at numSteps % target_q == 1 (written as
        # (numSteps - 1) % target_q == 0, which is the same for target_q > 1 and syncs every step
        # at 1, where the Lua test would never hold).
        if learning and num_steps % hp.update_frequency_steps == 0:
            loss = learner.update(replay.sample(hp.minibatch_size_transitions))
            st.period.loss_sum = add_loss(st.period.loss_sum, loss)
            st.period.updates += 1
        st.agent_steps = num_steps + 1
        if hp.uses_target_network and (st.agent_steps - 1) % hp.target_network_update_frequency_steps == 0:
            learner.sync_target()

        # Play a_t, and store (s_t's newest frame, a_t, r_t clipped to its sign, terminal). A lost
        # life ends bootstrapping, not the game; the logged return is the score of the whole game.
        if st.s_t_terminal:
            restart = env.restart_after_terminal()
            if restart.ended_game_return is not None:
                end_episode(st, restart.ended_game_return)
            # The terminal observation is stored too, as the Lua table stored it (with action 1,
            # the first); it is never sampled as a state, since the next entry starts a stack.
            replay.add(st.s_t[-1], 0, 0.0, False, st.episode_start)
            st.s_t = stack.reset(restart.frame)  # frames before it zeroed, as concatFrames did
            st.episode_start = True
            st.s_t_terminal = restart.game_over
        else:
            step = env.step(a_t)
            terminal = step.game_over or (hp.lost_life_terminal and step.life_lost)
            replay.add(st.s_t[-1], a_t, float(np.sign(step.reward)), terminal, st.episode_start)
            if step.game_over or step.truncated:
                end_episode(st, env.episode_return)
            if step.truncated and not step.game_over:
                # A cut episode is not terminal (the transition is never sampled): start again at once.
                st.s_t = stack.reset(env.reset())
                st.episode_start = True
                st.s_t_terminal = False
            else:
                st.s_t = stack.push(step.frame)
                st.episode_start = False
                st.s_t_terminal = terminal

        # Plumbing: log rows and snapshots, progress lines, checkpoints.
        if st.agent_steps % hp.eval_interval_steps == 0 or st.agent_steps == total_steps:
            end_period(parts, st)
        elif parts.progress.due():
            parts.progress.update(st.agent_steps * hp.action_repeat_frames, st.agent_steps,
                                  epsilon=parts.epsilon(st.agent_steps), last_return=st.last_episode_return)
        if time.monotonic() - last_checkpoint >= checkpoint_seconds and st.agent_steps < total_steps:
            save_checkpoint(parts, st)
            last_checkpoint = time.monotonic()

    save_checkpoint(parts, st)  # the end of training: protects the final evaluation
    if parts.stop.signum is not None:  # plumbing: a signal during that last checkpoint
        return 128 + parts.stop.signum
    return None
