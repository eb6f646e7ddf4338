"""Replay memory that stores every frame once and rebuilds the stacked states by index.

Layout: one circular array of `capacity` frames plus per-entry action, clipped reward, terminal
and episode-start flags. Entry t holds the newest frame of state s_t and what followed it
(a_t, r_t, terminal_t); s_{t+1}'s newest frame is entry t+1. A stack of `history_length_frames`
is read back from consecutive entries, with the frames before a game's first frame zeroed (a lost
life does not zero the stack: only a new game does). At 84x84 uint8 that is ~7 KB per transition,
so the paper's 1M transitions fit in ~7 GB instead of 28 GB for stored stacks (or 56 GB for s and
s').

Entries are addressed by a logical position (0 = the first add ever) that maps to the slot
`position % capacity`; the stored positions are [adds - size, adds - 1].

`ReplayRing` holds what this memory and its device twin (dqn/speed/device_replay.py) share: the
arrays and counters of the ring, the validity rule of a transition, the zeroing of stack frames
before a game's first frame, and the checkpoint format. `ReplayMemory` adds the numpy sampling.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from dqn.checksummed import released_chunks

# Rejection rounds before sample() falls back to listing the valid positions explicitly. Invalid
# positions are rare (the newest entry, a few entries near the write pointer, truncated games),
# so one round almost always suffices.
_REJECTION_ROUNDS = 32


class Batch(NamedTuple):
    state: np.ndarray  # [B, history, *frame_shape], the frame dtype (uint8 for Atari)
    action: np.ndarray  # int64 [B]
    reward: np.ndarray  # float32 [B], clipped reward r_t
    terminal: np.ndarray  # float32 [B], 1.0 = no bootstrapping from next_state
    next_state: np.ndarray  # [B, history, *frame_shape]


def entry_layout(entries: int, frame_shape: tuple[int, ...], frame_dtype: Any = np.uint8) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each array of `entries` replay entries, by the name a checkpoint stores it under."""
    n = int(entries)
    return {
        "frames": ((n, *frame_shape), np.dtype(frame_dtype)),
        # int32 actions (not uint8) so that no action space can wrap silently; 3 bytes more per entry.
        "actions": ((n,), np.dtype(np.int32)),
        "rewards": ((n,), np.dtype(np.float32)),
        "terminals": ((n,), np.dtype(np.bool_)),
        "episode_starts": ((n,), np.dtype(np.bool_)),
    }


def entry_bytes(frame_shape: tuple[int, ...], frame_dtype: Any = np.uint8) -> int:
    """Bytes of one stored entry (frame, action, clipped reward and two flags)."""
    return sum(math.prod(shape[1:]) * dtype.itemsize for shape, dtype in entry_layout(1, frame_shape, frame_dtype).values())


class ReplayRing:
    """The ring both replay memories keep, and the rules they share (see the module docstring).

    The rules are written once over arrays that index, compare and combine like numpy's, which
    torch tensors do too; a subclass supplies the arrays and a few kernels (the hooks below):
    numpy on the host here, torch tensors on the learner's device in DeviceReplay. Entry t holds
    s_t's newest frame with a_t, the clipped r_t, terminal_t and whether s_t starts a game.
    """

    def __init__(self, capacity_transitions: int, history_length_frames: int, frame_shape: tuple[int, ...],
                 frame_dtype: Any):
        if history_length_frames < 1:
            raise ValueError(f"history_length_frames must be positive, got {history_length_frames}")
        if capacity_transitions <= history_length_frames:
            raise ValueError(
                f"capacity_transitions ({capacity_transitions}) must exceed history_length_frames ({history_length_frames})"
            )
        self.capacity = int(capacity_transitions)
        self.history_length_frames = int(history_length_frames)
        self.frame_shape = tuple(int(d) for d in frame_shape)
        self.frame_dtype = np.dtype(frame_dtype)
        for name, (shape, dtype) in entry_layout(self.capacity, self.frame_shape, self.frame_dtype).items():
            setattr(self, f"_{name}", self._zeros(shape, dtype))  # self._frames, self._actions, ...
        self._adds = 0  # entries ever added; the next entry's logical position
        self.size = 0  # entries stored (<= capacity)
        # Offsets of a stack's frames relative to its newest frame: -(h-1) .. 0.
        self._stack_offsets = self._index_array(np.arange(-(self.history_length_frames - 1), 1, dtype=np.int64))
        self._before_newest = self._stack_offsets < 0  # every frame of a stack but its newest

    # ------------------------------------------------------------------ what a subclass supplies
    def _zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """A zeroed array of that numpy dtype (called by __init__, before the counters exist)."""
        raise NotImplementedError

    def _index_array(self, values: np.ndarray) -> Any:
        """An int64 numpy array as the subclass's array type."""
        raise NotImplementedError

    @staticmethod
    def _reverse_cumulative_or(flags: Any) -> Any:
        """out[..., j] = flags[..., j:].any(-1): is there a flag at j or later along the last axis."""
        raise NotImplementedError

    def _oldest_stored(self) -> Any:
        """The oldest stored position as the rules read it (DeviceReplay: a device counter)."""
        return self._oldest()

    def _to_host(self, array: Any) -> np.ndarray:
        """An array (a filled prefix) as numpy, for a checkpoint."""
        raise NotImplementedError

    def _write_rows(self, target: Any, start: int, stop: int, rows: np.ndarray) -> None:
        """target[start:stop] = rows, from a checkpoint's numpy chunk."""
        raise NotImplementedError

    def _sampler_state(self) -> dict[str, Any]:
        """The sampler's entries of the state dict (always `rng_state`)."""
        raise NotImplementedError

    def _load_sampler_state(self, d: dict[str, Any]) -> None:
        """Called by load_state_dict once the arrays and counters are loaded."""
        raise NotImplementedError

    # ------------------------------------------------------------------ arrays and counters
    def _arrays(self) -> dict[str, Any]:
        return {
            "frames": self._frames,
            "actions": self._actions,
            "rewards": self._rewards,
            "terminals": self._terminals,
            "episode_starts": self._episode_starts,
        }

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays().values())

    @property
    def bytes_per_transition(self) -> float:
        return self.nbytes / self.capacity

    def _oldest(self) -> int:
        return self._adds - self.size

    def _filled(self) -> int:
        """Slots ever written: the capacity once the ring has wrapped."""
        return self.capacity if self._adds >= self.capacity else self._adds

    def _count_adds(self, n: int) -> None:
        """Count `n` entries just written at the positions from `_adds` on."""
        self._adds += n
        self.size = min(self.capacity, self.size + n)

    def _check_frame(self, frame: Any) -> None:
        if np.shape(frame) != self.frame_shape:
            raise ValueError(f"frame has shape {np.shape(frame)}, the memory stores {self.frame_shape}")

    def _check_two_entries(self) -> None:
        if self.size < 2:
            raise ValueError(f"cannot sample from a replay memory with {self.size} entries; add at least 2")

    # ------------------------------------------------------------------ the rules
    def _starts_at(self, positions: Any) -> Any:
        """Episode-start flags at logical positions; position 0 (the first add ever) starts one."""
        return self._episode_starts[positions % self.capacity] | (positions == 0)

    def _stack_window(self, newest: Any) -> Any:
        """The positions of the stacks' frames, [..., h], oldest first; `newest` holds their newest."""
        return newest[..., None] + self._stack_offsets

    def _truncated(self, positions: Any) -> Any:
        """The next entry starts a new game but the transition was not terminal (a cut game):
        bootstrapping from s_{t+1} would cross games."""
        return self._episode_starts[(positions + 1) % self.capacity] & ~self._terminals[positions % self.capacity]

    def _valid(self, positions: Any) -> Any:
        """Which transitions (logical positions of any shape, all stored and not the newest) can be sampled.

        Invalid: (1) a stack frame that is still needed (no game start after it within the stack)
        has been overwritten by the write pointer; (2) the transition is truncated (`_truncated`).
        The next state needs no separate check: its frames are the state's shifted by one.
        """
        window = self._stack_window(positions)
        missing = window < self._oldest_stored()
        # A missing frame is harmless if a game starts later within the stack. `starts` is False
        # on missing columns, so the inclusive "a start from here on" means, on a missing column,
        # a start strictly after it.
        starts = self._starts_at(window) & ~missing
        intact = ~(missing & ~self._reverse_cumulative_or(starts)).any(-1)
        return intact & ~self._truncated(positions)

    def _zeroed(self, window: Any) -> Any:
        """Which frames of stacks at `window` (from _stack_window) read as zeros: frame j when a game
        starts at a later frame of the same stack (frames j+1 .. h-1), or when j < 0."""
        # The frame after frame j starts a game, for every frame but the newest.
        next_starts = self._starts_at(window + 1) & self._before_newest
        return self._reverse_cumulative_or(next_starts) | (window < 0)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Contents, pointers and the sampler's state. Before the memory first wraps, only the
        filled prefix is returned, so an early checkpoint of a 1M memory is small."""
        filled = self._filled()
        d: dict[str, Any] = {name: self._to_host(array[:filled]) for name, array in self._arrays().items()}
        d.update(
            capacity_transitions=self.capacity,
            history_length_frames=self.history_length_frames,
            frame_shape=self.frame_shape,
            frame_dtype=self.frame_dtype.str,
            adds=self._adds,
            size=self.size,
        )
        d.update(self._sampler_state())
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        layout = (int(d["capacity_transitions"]), int(d["history_length_frames"]), tuple(d["frame_shape"]),
                  np.dtype(d["frame_dtype"]))
        ours = (self.capacity, self.history_length_frames, self.frame_shape, self.frame_dtype)
        if layout != ours:
            raise ValueError(f"replay state has layout {layout}, this memory is {ours}")
        for name, array in self._arrays().items():
            source = np.asarray(d[name])
            # Chunk by chunk: the host never holds the mapped file and a copy of it at once.
            for start, stop, chunk in released_chunks(source):
                self._write_rows(array, start, stop, chunk)
            # Slots past the filled prefix are never read as stored data; leaving the frames
            # untouched keeps their pages unmapped, and the flags are cheap to clear.
            if name != "frames":
                array[len(source):] = 0
        self._adds = int(d["adds"])
        self.size = int(d["size"])
        self._load_sampler_state(d)


class ReplayMemory(ReplayRing):
    """The replay memory in numpy arrays on the host, sampled with numpy's generator."""

    def __init__(self, capacity_transitions: int, history_length_frames: int = 4,
                 frame_shape: tuple[int, ...] = (84, 84), *, seed: int, frame_dtype: Any = np.uint8):
        super().__init__(capacity_transitions, history_length_frames, frame_shape, frame_dtype)
        self._rng = np.random.default_rng(seed)

    def _zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        # np.zeros maps untouched pages lazily: a 1M memory costs RAM only as it fills.
        return np.zeros(shape, dtype=dtype)

    def _index_array(self, values: np.ndarray) -> np.ndarray:
        return values

    @staticmethod
    def _reverse_cumulative_or(flags: np.ndarray) -> np.ndarray:
        return np.logical_or.accumulate(flags[..., ::-1], axis=-1)[..., ::-1]

    # ------------------------------------------------------------------ writing
    def add(self, frame: np.ndarray, action: int, reward: float, terminal: bool, episode_start: bool) -> None:
        """Store s_t's newest frame with a_t, the clipped r_t and whether a_t ended bootstrapping.

        `episode_start` marks the first frame of a new game: frames before it are zeroed in stacks.
        """
        self._check_frame(frame)
        slot = self._adds % self.capacity
        self._frames[slot] = frame
        self._actions[slot] = action
        self._rewards[slot] = reward
        self._terminals[slot] = terminal
        self._episode_starts[slot] = episode_start
        self._count_adds(1)

    # ------------------------------------------------------------------ reading
    def _sample_positions(self, n: int) -> np.ndarray:
        self._check_two_entries()
        low, high = self._oldest(), self._adds - 1  # the newest entry has no next frame yet
        positions = self._rng.integers(low, high, size=n)
        for _ in range(_REJECTION_ROUNDS):
            bad = ~self._valid(positions)
            if not bad.any():
                return positions
            positions[bad] = self._rng.integers(low, high, size=int(bad.sum()))
        candidates = np.arange(low, high)
        candidates = candidates[self._valid(candidates)]
        if len(candidates) == 0:
            raise ValueError("the replay memory holds no sampleable transition")
        bad = ~self._valid(positions)
        positions[bad] = candidates[self._rng.integers(0, len(candidates), size=int(bad.sum()))]
        return positions

    def _stacks(self, newest: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Stacked states whose newest frames are at logical positions `newest`, zeroed before game starts."""
        window = self._stack_window(newest)  # [n, h]
        if out is None:
            out = np.empty((len(newest), self.history_length_frames, *self.frame_shape), self.frame_dtype)
        # One gather; mode="wrap" maps logical positions to slots (and skips take's bounds buffer).
        np.take(self._frames, window, axis=0, mode="wrap", out=out)
        zero = self._zeroed(window)
        if zero.any():
            out[zero] = 0
        return out

    def sample(self, batch_size: int) -> Batch:
        """`batch_size` transitions drawn uniformly (with replacement) from the valid ones."""
        return self.batch_at(self._sample_positions(batch_size))

    def batch_at(self, positions: np.ndarray) -> Batch:
        """The transitions at logical `positions` (stored, not the newest; validity is the caller's)."""
        positions = np.asarray(positions, dtype=np.int64)
        slots = positions % self.capacity
        # s and s' share one allocation: two ~1 MB arrays freed together make glibc hand the
        # memory back to the OS and page-fault it in again on every call (measured: ~200 page
        # faults and ~3 ms per call instead of ~0.5 ms on a loaded 2-core machine).
        both = np.empty((2, len(positions), self.history_length_frames, *self.frame_shape), self.frame_dtype)
        return Batch(
            state=self._stacks(positions, out=both[0]),
            action=self._actions[slots].astype(np.int64),
            reward=self._rewards[slots],
            terminal=self._terminals[slots].astype(np.float32),
            next_state=self._stacks(positions + 1, out=both[1]),
        )

    def sample_states(self, n: int) -> np.ndarray:
        """`n` stacked states s_t drawn uniformly from the valid transitions (held-out states)."""
        return self._stacks(self._sample_positions(n))

    # ------------------------------------------------------------------ checkpoints
    # state_dict's arrays are views, not copies: serialise before the next add.
    def _to_host(self, array: np.ndarray) -> np.ndarray:
        return array

    def _write_rows(self, target: np.ndarray, start: int, stop: int, rows: np.ndarray) -> None:
        target[start:stop] = rows

    def _sampler_state(self) -> dict[str, Any]:
        return {"rng_state": self._rng.bit_generator.state}

    def _load_sampler_state(self, d: dict[str, Any]) -> None:
        self._rng.bit_generator.state = d["rng_state"]
