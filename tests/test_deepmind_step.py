"""The training loop against a Python transcription of DeepMind's released Lua code.

`LuaAgent` transcribes `NeuralQLearner:perceive` and the `TransitionTable` it stores into
(`add`, `add_recent_state`, `concatFrames`, the validity test of `sample_one`), and
`lua_train_agent` the loop of `train_agent.lua` that calls it, line by line and independently of
dqn/replay.py and dqn/loop.py. Both drive the same scripted game (a FakeALE with lost lives,
game overs and rewards) and a recording learner, and must agree on:

- which weights (how many updates) every greedy action was chosen with,
- which transitions (their frames, action, clipped reward and terminal flag) every update could
  draw from, and every entry stored, a terminal observation's own entry included,
- at which step the held-out transitions are drawn and the target network is copied.

The Lua lines are quoted where they are transcribed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn.atari import AtariEnv
from dqn.config import resolve
from dqn.loop import TrainState, train_loop
from dqn.run_folder import RunFiles
from dqn.schedules import LinearEpsilon
from dqn.train import build_parts
from helpers.fake_ale import FakeALE

HIST = 4
STEPS = 420
LEARN_START = 40
UPDATE_FREQ = 4
TARGET_Q = 16
VALID_SIZE = 8
NUM_ACTIONS = 4  # FakeALE's minimal action set
ENV_SEED = 11
ACTOR_SEED = 12


def scripted_ale() -> FakeALE:
    # Games of 150, 130, 170 frames, then endless; lives lost at frames 30, 75 and 120 of each game
    # (lives() counts from the game's frame); a reward of 1 on every 7th frame and 3 on every 11th.
    return FakeALE(reward=lambda f: 3 if f % 11 == 0 else int(f % 7 == 0),
                   episode_lengths_frames=[150, 130, 170], life_lost_at_frames=[30, 75, 120], start_lives=4)


def scripted_env() -> AtariEnv:
    return AtariEnv("breakout", seed=ENV_SEED, ale=scripted_ale(), noop_max_frames=30, end_step_at_life_loss=True)


def pixel(frames: np.ndarray) -> tuple[int, ...]:
    """A stack of FakeALE frames by their (constant) pixel values: frame numbers mod 256, or 0."""
    return tuple(int(f[0, 0]) for f in frames)


# ------------------------------------------------------------------- the transcription
class LuaAgent:
    """NeuralQLearner:perceive over a TransitionTable, 0-based where Lua counts from 1."""

    def __init__(self, q_of_updates, epsilon, rng):
        self.q_of_updates = q_of_updates  # updates done -> Q-values (the recording learner's weights)
        self.epsilon = epsilon
        self.rng = rng
        self.numSteps = 0
        self.lastState = self.lastAction = self.lastTerminal = None
        self.s, self.a, self.r, self.t = [], [], [], []  # the table's entries
        self.recent_s = [np.zeros((84, 84), np.uint8)] * HIST  # add_recent_state's first call
        self.recent_t = [1] * HIST
        self.updates = 0
        self.greedy_calls: list[tuple[int, int]] = []  # (entries stored, updates done)
        self.update_views: list[tuple[int, frozenset]] = []  # (entries stored, valid transitions)
        self.validation_at: int | None = None
        self.syncs: list[int] = []  # entries stored when the target network was copied

    def concat_frames(self, frames, terms, newest):
        # concatFrames: "Zero out frames from all but the most recent episode": frame i is zeroed
        # when t[j] == 1 for some j from i to the second newest (histIndices linear, spacing 1).
        out = [frames[newest - HIST + 1 + i] for i in range(HIST)]
        zero_out = False
        for i in range(HIST - 2, -1, -1):
            if not zero_out and terms[newest - HIST + 1 + i] == 1:
                zero_out = True
            if zero_out:
                out[i] = np.zeros_like(out[i])
        return out

    def valid_transitions(self) -> frozenset:
        # sample_one: index = torch.random(2, numEntries - recentMemSize), valid if
        # t[index + recentMemSize - 1] == 0; get(index): s = concatFrames(index), a and r at
        # ar_index = index + recentMemSize - 1, s2 = concatFrames(index + 1), term = t[ar_index + 1].
        # 0-based: the newest frame of s runs over HIST .. numEntries - 2 (Lua index 2 is entry 1,
        # whose stack ends at entry 1 + HIST - 1).
        found = set()
        for newest in range(HIST, len(self.s) - 1):
            if self.t[newest] == 0:
                s = self.concat_frames(self.s, self.t, newest)
                s2 = self.concat_frames(self.s, self.t, newest + 1)
                found.add((newest, pixel(s), self.a[newest], self.r[newest], pixel(s2), self.t[newest + 1]))
        return frozenset(found)

    def perceive(self, reward, frame, terminal):
        # if self.max_reward then reward = math.min(reward, self.max_reward) end (and min_reward): [-1, 1]
        reward = max(-1.0, min(1.0, reward))
        # self.transitions:add_recent_state(state, terminal)
        self.recent_s = self.recent_s[1:] + [frame]
        self.recent_t = self.recent_t[1:] + [1 if terminal else 0]
        # if self.lastState and not testing then self.transitions:add(self.lastState, self.lastAction, reward, self.lastTerminal)
        if self.lastState is not None:
            self.s.append(self.lastState)
            self.a.append(self.lastAction)
            self.r.append(reward)
            self.t.append(1 if self.lastTerminal else 0)
        # if self.numSteps == self.learn_start+1 and not testing then self:sample_validation_data() end
        if self.numSteps == LEARN_START + 1:
            self.validation_at = len(self.s)
        # local actionIndex = 1; if not terminal then actionIndex = self:eGreedy(curState, testing_ep) end
        action = 0
        if not terminal:
            # eGreedy: if torch.uniform() < self.ep then torch.random(1, n_actions) else self:greedy(state)
            if self.rng.random() < self.epsilon(self.numSteps):
                action = int(self.rng.integers(NUM_ACTIONS))
            else:
                self.greedy_calls.append((len(self.s), self.updates))
                q = self.q_of_updates(self.updates)
                best = np.flatnonzero(q == q.max())
                action = int(best[0]) if len(best) == 1 else int(best[self.rng.integers(len(best))])
        # if self.numSteps > self.learn_start and not testing and self.numSteps % self.update_freq == 0 then self:qLearnMinibatch()
        if self.numSteps > LEARN_START and self.numSteps % UPDATE_FREQ == 0:
            self.update_views.append((len(self.s), self.valid_transitions()))
            self.updates += 1
        # if not testing then self.numSteps = self.numSteps + 1 end
        self.numSteps += 1
        # self.lastState = state:clone(); self.lastAction = actionIndex; self.lastTerminal = terminal
        self.lastState, self.lastAction, self.lastTerminal = frame, action, terminal
        # if self.target_q and self.numSteps % self.target_q == 1 then self.target_network = self.network:clone() end
        if self.numSteps % TARGET_Q == 1:
            self.syncs.append(len(self.s))
        return action


def lua_train_agent(agent: LuaAgent, env: AtariEnv, steps: int) -> None:
    """train_agent.lua's loop: perceive, then game_env:step(action, true), or after a terminal
    game_env:nextRandomGame() (step() with training = true makes a lost life terminal)."""
    screen, reward, terminal = env.reset(), 0.0, False
    for _ in range(steps):
        action = agent.perceive(reward, screen, terminal)
        if not terminal:
            step = env.step(action)
            screen, reward, terminal = step.frame, step.reward, step.game_over or step.life_lost
        else:
            restart = env.restart_after_terminal()
            # nextRandomGame's reward goes with the terminal observation's entry, which is never
            # sampled; 0 keeps the comparison on what can be.
            screen, reward, terminal = restart.frame, 0.0, restart.game_over


# ------------------------------------------------------------------- the harness's loop, recorded
class RecordingLearner:
    """The learner the loop drives, reduced to its interface: Q-values that name how many updates
    were done (the greedy action is updates % 4), and a record of what each call saw."""

    def __init__(self, inner, replay):
        self.inner = inner  # the real Learner: weights files and held-out statistics
        self.replay = replay
        self.num_actions = NUM_ACTIONS
        self.parameter_updates = 0
        self.greedy_calls: list[tuple[int, int]] = []
        self.update_views: list[tuple[int, frozenset]] = []
        self.syncs: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def q_values(self, state):
        import torch

        self.greedy_calls.append((self.replay._adds, self.parameter_updates))
        return torch.from_numpy(q_of_updates(self.parameter_updates)[None])

    def update(self, batch):
        import torch

        replay = self.replay
        positions = np.arange(HIST, replay._adds - 1)
        positions = positions[replay._valid(positions)]
        b = replay.batch_at(positions)
        seen = frozenset(
            (int(p), pixel(s), int(a), float(r), pixel(s2), int(t))
            for p, s, a, r, s2, t in zip(positions, b.state, b.action, b.reward, b.next_state, b.terminal))
        self.update_views.append((replay._adds, seen))
        self.parameter_updates += 1
        return torch.zeros((), dtype=torch.float32)

    def sync_target(self):
        self.syncs.append(self.replay._adds)


def q_of_updates(updates: int) -> np.ndarray:
    q = np.zeros(NUM_ACTIONS, np.float32)
    q[updates % NUM_ACTIONS] = 1.0
    return q


def epsilon_schedule():
    return LinearEpsilon(initial=1.0, final=0.1, decay_steps=200, start_step=LEARN_START)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    hp = resolve("nature", {
        "training_length_frames": 4 * STEPS, "replay_memory_size_transitions": 1000,
        "replay_start_size_steps": LEARN_START, "heldout_states": VALID_SIZE,
        "update_frequency_steps": UPDATE_FREQ, "target_network_update_frequency_steps": TARGET_Q,
        "final_exploration_frame_steps": 200, "eval_interval_frames": 4 * STEPS, "eval_length_frames": 0,
    })
    files = RunFiles(tmp_path_factory.mktemp("deepmind_step") / "run")
    parts, _ = build_parts(hp, "breakout", 0, "cpu", files)
    parts.env = scripted_env()
    parts.learner = RecordingLearner(parts.learner, parts.replay)
    parts.epsilon = epsilon_schedule()
    parts.rng = np.random.default_rng(ACTOR_SEED)
    draws = []
    sample = parts.replay.sample
    parts.replay.sample = lambda n: (draws.append((parts.replay._adds, n)), sample(n))[1]
    st = TrainState(s_t=parts.stack.reset(parts.env.reset()), episode_start=True)
    assert train_loop(parts, st) is None
    parts.heldout_draws = [adds for adds, n in draws if n == VALID_SIZE]

    lua = LuaAgent(q_of_updates, epsilon_schedule(), np.random.default_rng(ACTOR_SEED))
    lua_train_agent(lua, scripted_env(), STEPS)
    return parts, st, lua


def test_the_script_has_lost_lives_game_overs_and_clipped_rewards(both):
    _, _, lua = both
    assert sum(lua.t) >= 8  # terminal observations: lost lives and game overs
    assert 3.0 not in lua.r and 1.0 in lua.r  # rewards of 3 were clipped to 1
    assert len(lua.update_views) == (STEPS - 1) // UPDATE_FREQ - LEARN_START // UPDATE_FREQ


def test_every_greedy_action_used_the_weights_before_its_steps_update(both):
    parts, _, lua = both
    assert len(lua.greedy_calls) > 100
    assert parts.learner.greedy_calls == lua.greedy_calls


def test_every_entry_and_every_update_see_the_same_transitions_as_the_lua_table(both):
    parts, st, lua = both
    replay = parts.replay
    # Every entry the table stored (one per perceive call but the last), terminal observations included.
    assert replay._adds == len(lua.s) + 1 == STEPS
    np.testing.assert_array_equal(replay._actions[:len(lua.a)], lua.a)
    np.testing.assert_array_equal(replay._frames[:len(lua.s), 0, 0], [f[0, 0] for f in lua.s])
    # Terminal flags: the Lua table flags the terminal state itself, the harness the transition into it.
    np.testing.assert_array_equal(replay._terminals[:len(lua.t) - 1], np.array(lua.t[1:], bool))
    ours, theirs = parts.learner.update_views, lua.update_views
    assert [n for n, _ in ours] == [n for n, _ in theirs]
    for (n, seen_ours), (_, seen_theirs) in zip(ours, theirs):
        assert seen_ours == seen_theirs, f"update with {n} entries stored"
    assert parts.learner.parameter_updates == lua.updates == len(theirs)


def test_the_terminal_observation_is_never_sampled_and_the_next_stack_is_zeroed(both):
    parts, _, lua = both
    _, seen = parts.learner.update_views[-1]
    terminal_entries = [i for i, t in enumerate(lua.t) if t == 1]
    assert terminal_entries and not {p for p, *_ in seen} & set(terminal_entries)
    after = [p for p, s, *_ in seen if p - 1 in terminal_entries]
    assert after and all(s[:3] == (0, 0, 0) for p, s, *_ in seen if p in after)


def test_held_out_draw_and_target_copies_happen_at_the_lua_steps(both):
    parts, st, lua = both
    # sample_validation_data at numSteps == learn_start + 1: 41 entries stored then.
    assert lua.validation_at == LEARN_START + 1
    assert parts.heldout_draws == [lua.validation_at]
    assert len(st.heldout["action"]) == VALID_SIZE
    # numSteps % target_q == 1 after the increment: numSteps = 1, 17, 33, ..., i.e. copies while
    # 0, 16, 32, ... entries are stored (the first copies the initial weights).
    assert lua.syncs == list(range(0, STEPS, TARGET_Q))
    assert parts.learner.syncs == lua.syncs


def test_the_held_out_statistics_are_logged_with_a_target_network_older_than_the_online_one(tmp_path, monkeypatch):
    """As train_agent.lua computed compute_validation_statistics at step % eval_freq == 0, between
    two target copies: with a copy every 16 steps and a log row every 64, the row at 64 steps comes
    after the copy made once numSteps reached 49 (after the update at 48) and 3 more updates (at
    numSteps 52, 56, 60); the row at 128 likewise (copy after 112, updates at 116, 120, 124)."""
    from dqn.agent import Learner

    hp = resolve("nature", {
        "training_length_frames": 4 * 128, "replay_memory_size_transitions": 1000,
        "replay_start_size_steps": LEARN_START, "heldout_states": VALID_SIZE,
        "target_network_update_frequency_steps": TARGET_Q, "final_exploration_frame_steps": 200,
        "eval_interval_frames": 4 * 64, "eval_length_frames": 0,
    })
    parts, _ = build_parts(hp, "breakout", 0, "cpu", RunFiles(tmp_path / "run"))
    parts.env = scripted_env()
    copies, seen = [], []
    sync, stats = Learner.sync_target, Learner.heldout_statistics

    def recording_sync(self):
        sync(self)
        copies.append(([p.detach().clone() for p in self.online.parameters()], self.parameter_updates))

    def recording_stats(self, batch, chunk_transitions=256):
        weights, updates_then = copies[-1]
        target, online = list(self.target.parameters()), list(self.online.parameters())
        seen.append((self.parameter_updates - updates_then,
                     all(torch.equal(t, w) for t, w in zip(target, weights)),
                     any(not torch.equal(t, o) for t, o in zip(target, online))))
        return stats(self, batch, chunk_transitions)

    monkeypatch.setattr(Learner, "sync_target", recording_sync)
    monkeypatch.setattr(Learner, "heldout_statistics", recording_stats)
    st = TrainState(s_t=parts.stack.reset(parts.env.reset()), episode_start=True)
    assert train_loop(parts, st) is None
    # (updates since the last copy, target == that copy, target != online) at each log row.
    assert seen == [(3, True, True), (3, True, True)]


@pytest.mark.parametrize("preset, ends_at_life_loss", [("nature", True), ("nips2013", False)])
def test_the_training_env_ends_a_step_at_a_lost_life_exactly_when_a_lost_life_is_terminal(tmp_path, preset, ends_at_life_loss):
    # alewrap's step(action, training): a lost life is terminal and breaks the action repeat in
    # training; the 2013 preset has no lost-life terminals, so its steps play all their frames.
    hp = resolve(preset, {"replay_memory_size_transitions": 1000, "replay_start_size_steps": 100, "heldout_states": 100})
    assert hp.lost_life_terminal is ends_at_life_loss
    parts, _ = build_parts(hp, "breakout", 0, "cpu", RunFiles(tmp_path / "run"))
    assert parts.env.end_step_at_life_loss is ends_at_life_loss
    assert parts.env.noop_max_frames == hp.noop_max_frames


def test_a_checkpoint_of_the_old_step_order_is_refused_in_one_line(tmp_path):
    # Format 2 stopped between the old order's "play" and "learn": it cannot continue in this one.
    from dqn.errors import UserError
    from dqn.loop import checkpoint_state, restore

    hp = resolve("nature", {"replay_memory_size_transitions": 1000, "replay_start_size_steps": 100, "heldout_states": 100})
    parts, first = build_parts(hp, "breakout", 0, "cpu", RunFiles(tmp_path / "run"))
    state = checkpoint_state(parts, TrainState(s_t=parts.stack.reset(first)))
    assert state["format"] == 3 and restore(parts, state).agent_steps == 0
    with pytest.raises(UserError) as refused:
        restore(parts, {**state, "format": 2})
    message = str(refused.value)
    assert "\n" not in message and "format 2 is not 3" in message and "new --out" in message
