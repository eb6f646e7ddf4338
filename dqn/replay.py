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
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dqn.checkpoint import released_chunks

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


class ReplayMemory:
    def __init__(self, capacity_transitions: int, history_length_frames: int = 4,
                 frame_shape: tuple[int, ...] = (84, 84), *, seed: int, frame_dtype: Any = np.uint8):
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
        # np.zeros maps untouched pages lazily: a 1M memory costs RAM only as it fills.
        self._frames = np.zeros((self.capacity, *self.frame_shape), dtype=self.frame_dtype)
        # int32 actions (not uint8) so that no action space can wrap silently; 3 bytes more per entry.
        self._actions = np.zeros(self.capacity, dtype=np.int32)
        self._rewards = np.zeros(self.capacity, dtype=np.float32)
        self._terminals = np.zeros(self.capacity, dtype=np.bool_)
        self._episode_starts = np.zeros(self.capacity, dtype=np.bool_)
        self._adds = 0  # entries ever added; the next entry's logical position
        self.size = 0  # entries stored (<= capacity)
        self._rng = np.random.default_rng(seed)
        # Offsets of a stack's frames relative to its newest frame: -(h-1) .. 0.
        self._stack_offsets = np.arange(-(self.history_length_frames - 1), 1, dtype=np.int64)

    # ------------------------------------------------------------------ sizes
    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays().values())

    @property
    def bytes_per_transition(self) -> float:
        return self.nbytes / self.capacity

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "frames": self._frames,
            "actions": self._actions,
            "rewards": self._rewards,
            "terminals": self._terminals,
            "episode_starts": self._episode_starts,
        }

    # ------------------------------------------------------------------ writing
    def add(self, frame: np.ndarray, action: int, reward: float, terminal: bool, episode_start: bool) -> None:
        """Store s_t's newest frame with a_t, the clipped r_t and whether a_t ended bootstrapping.

        `episode_start` marks the first frame of a new game: frames before it are zeroed in stacks.
        """
        if np.shape(frame) != self.frame_shape:
            raise ValueError(f"frame has shape {np.shape(frame)}, the memory stores {self.frame_shape}")
        slot = self._adds % self.capacity
        self._frames[slot] = frame
        self._actions[slot] = action
        self._rewards[slot] = reward
        self._terminals[slot] = terminal
        self._episode_starts[slot] = episode_start
        self._adds += 1
        if self.size < self.capacity:
            self.size += 1

    # ------------------------------------------------------------------ reading
    def _oldest(self) -> int:
        return self._adds - self.size

    def _starts_at(self, positions: np.ndarray) -> np.ndarray:
        """Episode-start flags at logical positions; position 0 (the first add ever) starts one."""
        return self._episode_starts[positions % self.capacity] | (positions == 0)

    def _valid(self, positions: np.ndarray) -> np.ndarray:
        """Which transitions (logical positions, all stored and not the newest) can be sampled.

        Invalid: (1) a stack frame that is still needed (no game start after it within the stack)
        has been overwritten by the write pointer; (2) the next entry starts a new game but the
        transition was not terminal (a truncated game), which would bootstrap across games.
        The next state needs no separate check: its frames are the state's shifted by one.
        """
        oldest = self._oldest()
        window = positions[:, None] + self._stack_offsets[None, :]  # [n, h]
        # Only positions near the write pointer can reach before `oldest`; others pass at once.
        missing = window < oldest
        needs_check = missing.any(axis=1)
        ok = np.ones(len(positions), dtype=np.bool_)
        if needs_check.any():
            w = window[needs_check]
            starts = self._starts_at(np.maximum(w, oldest)) & (w >= oldest)
            # A missing frame is harmless if a game starts later within the stack.
            start_after = np.logical_or.accumulate(starts[:, ::-1], axis=1)[:, ::-1]
            # `starts` is False on missing columns, so this inclusive "any start from here on"
            # is, on a missing column, a start strictly after it.
            ok[needs_check] = ~(missing[needs_check] & ~start_after).any(axis=1)
        nxt = positions + 1
        truncated = self._episode_starts[nxt % self.capacity] & ~self._terminals[positions % self.capacity]
        return ok & ~truncated

    def _sample_positions(self, n: int) -> np.ndarray:
        if self.size < 2:
            raise ValueError(f"cannot sample from a replay memory with {self.size} entries; add at least 2")
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
        window = newest[:, None] + self._stack_offsets[None, :]  # [n, h]
        if out is None:
            out = np.empty((len(newest), self.history_length_frames, *self.frame_shape), self.frame_dtype)
        # One gather; mode="wrap" maps logical positions to slots (and skips take's bounds buffer).
        np.take(self._frames, window, axis=0, mode="wrap", out=out)
        starts = self._starts_at(window)
        # Frame j is zeroed when a game starts at a later frame of the same stack (or j < 0).
        start_after = np.zeros_like(starts)
        start_after[:, :-1] = np.logical_or.accumulate(starts[:, :0:-1], axis=1)[:, ::-1]
        zero = start_after | (window < 0)
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
    def state_dict(self) -> dict[str, Any]:
        """Contents, pointers and RNG state. Arrays are views, not copies: serialise before the next add.

        Before the memory first wraps, only the filled prefix is returned, so an early checkpoint
        of a 1M memory is small.
        """
        filled = self.capacity if self._adds >= self.capacity else self._adds
        d: dict[str, Any] = {name: array[:filled] for name, array in self._arrays().items()}
        d.update(
            capacity_transitions=self.capacity,
            history_length_frames=self.history_length_frames,
            frame_shape=self.frame_shape,
            frame_dtype=self.frame_dtype.str,
            adds=self._adds,
            size=self.size,
            rng_state=self._rng.bit_generator.state,
        )
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        layout = (int(d["capacity_transitions"]), int(d["history_length_frames"]), tuple(d["frame_shape"]),
                  np.dtype(d["frame_dtype"]))
        ours = (self.capacity, self.history_length_frames, self.frame_shape, self.frame_dtype)
        if layout != ours:
            raise ValueError(f"replay state has layout {layout}, this memory is {ours}")
        for name, array in self._arrays().items():
            source = np.asarray(d[name])
            for start, stop, chunk in released_chunks(source):
                array[start:stop] = chunk
            # Slots past the filled prefix are never read as stored data; leaving the frames
            # untouched keeps their pages unmapped, and the flags are cheap to clear.
            if name != "frames":
                array[len(source):] = 0
        self._adds = int(d["adds"])
        self.size = int(d["size"])
        self._rng.bit_generator.state = d["rng_state"]
