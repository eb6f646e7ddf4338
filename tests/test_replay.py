"""ReplayMemory against a plain reference: wrap-around, stacks, episode starts, validity, size."""

import pickle

import numpy as np
import pytest

from dqn.replay import Batch, ReplayMemory

H = 4  # history length


class NaiveReplay:
    """Every add kept in Python lists forever; stacks built by walking back from the newest frame."""

    def __init__(self, history: int = H):
        self.history = history
        self.frames, self.actions, self.rewards, self.terminals, self.starts = [], [], [], [], []

    def add(self, frame, action, reward, terminal, episode_start):
        self.frames.append(np.array(frame))
        self.actions.append(action)
        self.rewards.append(reward)
        self.terminals.append(terminal)
        self.starts.append(episode_start)

    def stack(self, position):
        zero = np.zeros_like(self.frames[0])
        out = []
        p = position
        zeroing = False
        for _ in range(self.history):
            if zeroing or p < 0:
                out.append(zero)
            else:
                out.append(self.frames[p])
                # Frames before a new game's first frame (or before the first frame ever) are zeroed.
                if self.starts[p] or p == 0:
                    zeroing = True
            p -= 1
        return np.stack(out[::-1])

    def needed_positions(self, position):
        """Positions whose frames the stack at `position` shows (not zeroed)."""
        needed = []
        for p in range(position, position - self.history, -1):
            if p < 0:
                break
            needed.append(p)
            if self.starts[p] or p == 0:
                break
        return needed


def position_frame(position, shape=(1,)):
    """A frame that spells its own logical position + 1 (0 is kept for zeroed frames)."""
    return np.full(shape, position + 1, dtype=np.int64)


def random_plan(n, rng, p_start=0.08, p_life_lost=0.05, p_truncated=0.2):
    """Episode starts and terminal flags for n adds: a game over (terminal) precedes most game
    starts, a few games are truncated (no terminal before the next start), lives are lost at random."""
    starts = (rng.random(n) < p_start) | (np.arange(n) == 0)
    terminals = rng.random(n) < p_life_lost
    game_over = np.append(starts[1:], False) & (rng.random(n) >= p_truncated)
    return starts, terminals | game_over


def fill(memory, naive, positions, plan, rng):
    starts, terminals = plan
    for i in positions:
        action, reward = int(rng.integers(18)), float(rng.choice([-1.0, 0.0, 1.0]))
        frame = position_frame(i, memory.frame_shape)
        memory.add(frame, action, reward, bool(terminals[i]), bool(starts[i]))
        naive.add(frame, action, reward, bool(terminals[i]), bool(starts[i]))


def sampled_positions(batch):
    return batch.state[:, -1, 0].astype(np.int64) - 1


def test_wrap_around_capacity_10_after_25_adds_samples_only_intact_transitions():
    # Stored positions 15..24. 24 is the newest (no next frame). 15, 16, 17 need frames 12..14
    # that the write pointer overwrote. So exactly 18..23 are sampleable.
    memory = ReplayMemory(10, H, frame_shape=(1,), frame_dtype=np.int64, seed=0)
    naive = NaiveReplay()
    rng = np.random.default_rng(0)
    plan = random_plan(25, rng, p_start=0.0, p_life_lost=0.1)
    fill(memory, naive, range(25), plan, rng)
    assert memory.size == 10 and memory.capacity == 10
    batch = memory.sample(2000)
    positions = sampled_positions(batch)
    assert set(positions.tolist()) == {18, 19, 20, 21, 22, 23}
    for i, p in enumerate(positions[:100]):
        np.testing.assert_array_equal(batch.state[i], naive.stack(p))
        np.testing.assert_array_equal(batch.next_state[i], naive.stack(p + 1))
    # E.g. position 18: frames of 15..18 (stored values 16..19); next state 16..19.
    i = int(np.flatnonzero(positions == 18)[0])
    assert batch.state[i, :, 0].tolist() == [16, 17, 18, 19]
    assert batch.next_state[i, :, 0].tolist() == [17, 18, 19, 20]


def test_wrap_around_game_start_makes_older_overwritten_frames_unneeded():
    # Same as above, but a game starts at position 16: the stacks of 16 and 17 zero everything
    # before 16, so they need no overwritten frame; 15 still does.
    memory = ReplayMemory(10, H, frame_shape=(1,), frame_dtype=np.int64, seed=1)
    for i in range(25):
        memory.add(position_frame(i), 0, 0.0, i == 15, i in (0, 16))
    positions = sampled_positions(memory.sample(2000))
    assert set(positions.tolist()) == set(range(16, 24))
    batch = memory.sample(500)
    positions = sampled_positions(batch)
    i = int(np.flatnonzero(positions == 17)[0])
    assert batch.state[i, :, 0].tolist() == [0, 0, 17, 18]


@pytest.mark.parametrize("capacity", [12, 50, 1000])
def test_stacks_match_the_naive_reference_over_many_random_samples(capacity):
    rng = np.random.default_rng(capacity)
    memory = ReplayMemory(capacity, H, frame_shape=(1,), frame_dtype=np.int64, seed=capacity)
    naive = NaiveReplay()
    plan = random_plan(1200, rng)
    position = 0
    checked_across_start = 0
    for chunk in range(30):
        n = int(rng.integers(1, 40))
        fill(memory, naive, range(position, position + n), plan, rng)
        position += n
        if memory.size < 2:
            continue
        oldest, newest = position - memory.size, position - 1
        batch = memory.sample(64)
        for i, p in enumerate(sampled_positions(batch)):
            # Validity: stored, not the newest, and every frame the stacks show still stored.
            assert oldest <= p < newest
            assert min(naive.needed_positions(p)) >= oldest
            np.testing.assert_array_equal(batch.state[i], naive.stack(p))
            np.testing.assert_array_equal(batch.next_state[i], naive.stack(p + 1))
            assert batch.action[i] == naive.actions[p]
            assert batch.reward[i] == naive.rewards[p]
            assert batch.terminal[i] == float(naive.terminals[p])
            # Never bootstrap into another game (truncated games are excluded).
            if naive.starts[p + 1]:
                assert batch.terminal[i] == 1.0
            if any(naive.starts[q] for q in range(max(p - H + 2, 0), p + 2)):
                checked_across_start += 1
    assert checked_across_start > 50  # the episode-start zeroing was really exercised


def test_lost_life_does_not_zero_the_stack_but_a_new_game_does():
    memory = ReplayMemory(100, H, frame_shape=(1,), frame_dtype=np.int64, seed=0)
    # Game 1: positions 0..5, a life lost at 2 (terminal, same game); game over at 5.
    # Game 2 starts at 6.
    for i in range(10):
        memory.add(position_frame(i), i % 3, 1.0 if i == 4 else 0.0, i in (2, 5), i in (0, 6))
    batch = memory.sample(3000)
    by_position = {int(p): i for i, p in enumerate(sampled_positions(batch))}
    assert set(by_position) == set(range(9))  # 9 = newest is excluded
    s = lambda p: batch.state[by_position[p], :, 0].tolist()
    s2 = lambda p: batch.next_state[by_position[p], :, 0].tolist()
    assert s(0) == [0, 0, 0, 1]  # the first frame ever
    assert s(4) == [2, 3, 4, 5]  # across the lost life at 2: no zeroing
    assert batch.terminal[by_position[2]] == 1.0 and batch.terminal[by_position[3]] == 0.0
    assert batch.reward[by_position[4]] == 1.0
    assert s(5) == [3, 4, 5, 6] and batch.terminal[by_position[5]] == 1.0
    assert s2(5) == [0, 0, 0, 7]  # the new game's first frame, older frames zeroed
    assert s(7) == [0, 0, 7, 8]
    assert s(8) == [0, 7, 8, 9]
    assert batch.action.dtype == np.int64 and batch.action[by_position[7]] == 7 % 3


def test_a_truncated_game_is_never_bootstrapped_across():
    # The game ending at 4 was cut (terminal False) and a new one starts at 5: transition 4's
    # next state belongs to another game, so 4 must not be sampled.
    memory = ReplayMemory(100, H, frame_shape=(1,), frame_dtype=np.int64, seed=0)
    for i in range(9):
        memory.add(position_frame(i), 0, 0.0, False, i in (0, 5))
    positions = set(sampled_positions(memory.sample(2000)).tolist())
    assert positions == {0, 1, 2, 3, 5, 6, 7}


def test_atari_layout_uint8_frames_and_batch_dtypes():
    rng = np.random.default_rng(0)
    memory = ReplayMemory(30, H, seed=0)
    naive = NaiveReplay()
    for i in range(70):
        frame = rng.integers(0, 256, (84, 84), dtype=np.uint8)
        frame[0, 0], frame[0, 1] = i // 256, i % 256  # position stamp in the corner
        start, terminal = i % 17 == 0, i % 17 == 16
        memory.add(frame, i % 6, 1.0, terminal, start)
        naive.add(frame, i % 6, 1.0, terminal, start)
    batch = memory.sample(200)
    assert isinstance(batch, Batch)
    assert batch.state.shape == batch.next_state.shape == (200, 4, 84, 84)
    assert batch.state.dtype == batch.next_state.dtype == np.uint8
    assert (batch.action.dtype, batch.reward.dtype, batch.terminal.dtype) == (np.int64, np.float32, np.float32)
    positions = batch.state[:, -1, 0, 0].astype(int) * 256 + batch.state[:, -1, 0, 1]
    for i, p in enumerate(positions):
        np.testing.assert_array_equal(batch.state[i], naive.stack(p))
        np.testing.assert_array_equal(batch.next_state[i], naive.stack(p + 1))
    states = memory.sample_states(50)
    assert states.shape == (50, 4, 84, 84) and states.dtype == np.uint8
    for state in states:
        p = int(state[-1, 0, 0]) * 256 + int(state[-1, 0, 1])
        np.testing.assert_array_equal(state, naive.stack(p))


def test_float_frames_for_classic_control():
    memory = ReplayMemory(20, H, frame_shape=(4,), frame_dtype=np.float32, seed=0)
    for i in range(8):
        memory.add(np.full(4, i + 0.5, dtype=np.float32), 1, 1.0, i == 7, i == 0)
    batch = memory.sample(16)
    assert batch.state.shape == (16, 4, 4) and batch.state.dtype == np.float32
    newest = batch.state[:, -1, 0]
    assert set(newest.tolist()) <= {0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5}
    i = int(np.argmax(newest == 1.5))
    np.testing.assert_array_equal(batch.state[i, :, 0], [0.0, 0.0, 0.5, 1.5])
    np.testing.assert_array_equal(batch.next_state[i, :, 0], [0.0, 0.5, 1.5, 2.5])


def test_bytes_per_transition_of_a_million_transition_memory():
    # 84*84 = 7,056 bytes of frame + 4 (int32 action) + 4 (float32 reward) + 1 + 1 (flags) = 7,066.
    memory = ReplayMemory(1_000_000, H, seed=0)
    measured = sum(array.nbytes for array in memory._arrays().values())
    assert memory.nbytes == measured == 7_066 * 1_000_000
    assert memory.bytes_per_transition == 7_066.0 <= 7_200


def test_untouched_memory_costs_no_resident_pages():
    def resident_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    before = resident_bytes()
    memory = ReplayMemory(1_000_000, H, seed=0)  # 7 GB virtual
    for i in range(100):
        memory.add(np.ones((84, 84), np.uint8), 0, 0.0, False, i == 0)
    assert resident_bytes() - before < 200 * 2**20


@pytest.mark.parametrize("adds", [40, 300])  # before and after the first wrap of 100
def test_state_dict_round_trip_gives_the_same_next_samples(adds):
    rng = np.random.default_rng(3)
    memory = ReplayMemory(100, H, frame_shape=(2, 3), seed=7)
    for i in range(adds):
        memory.add(rng.integers(0, 256, (2, 3), dtype=np.uint8), int(rng.integers(4)), 1.0, i % 13 == 12, i % 13 == 0)
    memory.sample(32)  # advance the RNG
    saved = pickle.loads(pickle.dumps(memory.state_dict()))  # as a checkpoint would
    assert len(saved["frames"]) == min(adds, 100)  # only the filled prefix before a wrap
    restored = ReplayMemory(100, H, frame_shape=(2, 3), seed=999)
    restored.load_state_dict(saved)
    assert restored.size == memory.size
    for _ in range(3):
        a, b = memory.sample(32), restored.sample(32)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    # Both keep going identically after further adds.
    for m in (memory, restored):
        m.add(np.full((2, 3), 9, np.uint8), 1, 0.0, False, False)
    np.testing.assert_array_equal(memory.sample(32).state, restored.sample(32).state)


def test_state_dict_refuses_another_layout():
    memory = ReplayMemory(100, H, seed=0)
    memory.add(np.zeros((84, 84), np.uint8), 0, 0.0, False, True)
    with pytest.raises(ValueError, match="layout"):
        ReplayMemory(200, H, seed=0).load_state_dict(memory.state_dict())


def test_bad_input_is_refused():
    memory = ReplayMemory(10, H, seed=0)
    with pytest.raises(ValueError, match="shape"):
        memory.add(np.zeros(84, np.uint8), 0, 0.0, False, True)
    memory.add(np.zeros((84, 84), np.uint8), 0, 0.0, False, True)
    with pytest.raises(ValueError, match="at least 2"):
        memory.sample(1)
    with pytest.raises(ValueError, match="must exceed"):
        ReplayMemory(4, 4, seed=0)


def test_same_seed_same_samples():
    memories = [ReplayMemory(50, H, frame_shape=(1,), frame_dtype=np.int64, seed=5) for _ in range(2)]
    for m in memories:
        for i in range(80):
            m.add(position_frame(i), 0, 0.0, False, i == 0)
    np.testing.assert_array_equal(memories[0].sample(32).state, memories[1].sample(32).state)


def test_the_first_frame_ever_starts_a_game_even_unflagged():
    memory = ReplayMemory(100, H, frame_shape=(1,), frame_dtype=np.int64, seed=0)
    for i in range(3):
        memory.add(position_frame(i), 0, 0.0, False, False)
    batch = memory.sample(500)
    assert set(sampled_positions(batch).tolist()) == {0, 1}
    assert sorted({tuple(s) for s in batch.state[:, :, 0].tolist()}) == [(0, 0, 0, 1), (0, 0, 1, 2)]
