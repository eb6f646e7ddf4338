"""Replay memory held in torch tensors on the learner's device, sampled there.

Same layout and the same sampling rule as `dqn.replay.ReplayMemory` (read its docstring first):
one circular array of frames, each stored once, plus per-entry action, clipped reward, terminal
and episode-start flags; stacks rebuilt by index, zeroed before a game's first frame; a
transition is sampled uniformly among the valid ones. The ring's counters, the validity and
zeroing rules and the checkpoint format are `dqn.replay.ReplayRing`'s, shared with ReplayMemory
and evaluated here on torch tensors. What changes is where the work happens:

- The frames live on the device as uint8 (1M x 84 x 84 = 7 GB fits an H100), so a minibatch
  never crosses the PCIe bus. New entries are staged on the host (never more than the capacity)
  and copied in one go before the next read (every 4 agent steps), from pinned double buffers
  on CUDA.
- Positions are drawn on the device from torch's generator of that device (the run seeds it and
  its checkpoint saves it), not from numpy: same distribution, another random stream.
- Rejection without a host round trip: `rejection_rounds` candidates per sample are drawn at
  once and the first valid one is kept, which is exactly rejection sampling cut after that many
  rounds. A draw whose rounds are all invalid (probability p**rounds for an invalid fraction p:
  p < 1e-3 once learning starts, but most of a tiny memory can be invalid) takes an exact draw
  instead: a uniform rank among the V valid transitions, mapped to its slot through the
  cumulative sum of a validity mask kept per slot. Each valid transition then has probability
  (1 - p**rounds)/V + p**rounds/V = 1/V: still uniform, and never an invalid transition.
  `exhausted_draws` counts the draws that took the exact rank: how well `rejection_rounds` fits,
  not an error, so a checkpoint no longer refuses a memory that made some.
- The mask (one byte per transition) changes only where an add can change validity: the new
  entries, the one before them, the h - 1 oldest. Each flush recomputes that fixed set of
  staging + h - 1 positions (its own captured graph on CUDA). Each sample scans the mask once
  (capacity bytes in, 4 x capacity bytes of counts out) with fixed shapes and no host
  synchronisation, so the exact draw stays inside the sampling graph; its cost at 1M entries
  has not been measured on a GPU yet.
- A memory with no valid transition at all (only a few entries, or every stored game cut after
  one frame) cannot be sampled: ReplayMemory raises, and so does this one. The host knows
  without asking the device that some transition is valid once the newest untruncated
  transition sits h - 1 or more entries after the oldest (no stack frame of it can be
  overwritten); only when it does not (a memory of a handful of entries) does `sample` read the
  mask back from the device.
- On CUDA the whole draw-and-gather (rounds, exact rank, gather: a few dozen small kernels) is
  one captured CUDA graph launched as one, fed by device-side counters.

Entries are addressed by logical positions (0 = the first add ever), slot = position % capacity.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from dqn.replay import ReplayRing, entry_layout
# Its size, for the placement of the replay: dqn/speed/placement.py.
from dqn.speed.placement import fits_on_device, replay_bytes  # noqa: F401

DEFAULT_REJECTION_ROUNDS = 8
# Entries staged on the host before a forced copy to the device (reads flush earlier).
DEFAULT_STAGING_TRANSITIONS = 64


class DeviceBatch(NamedTuple):
    """A minibatch on the device; the fields of dqn.replay.Batch as tensors."""

    state: torch.Tensor  # uint8 [B, history, *frame_shape]
    action: torch.Tensor  # int64 [B]
    reward: torch.Tensor  # float32 [B]
    terminal: torch.Tensor  # float32 [B], 1.0 = no bootstrapping from next_state
    next_state: torch.Tensor  # uint8 [B, history, *frame_shape]


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


class DeviceReplay(ReplayRing):
    def __init__(self, capacity_transitions: int, history_length_frames: int = 4,
                 frame_shape: tuple[int, ...] = (84, 84), *, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None, rejection_rounds: int = DEFAULT_REJECTION_ROUNDS,
                 staging_transitions: int = DEFAULT_STAGING_TRANSITIONS, cuda_graphs: bool = True):
        self.device = torch.device(device)  # before ReplayRing.__init__, which allocates through _zeros
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        super().__init__(capacity_transitions, history_length_frames, frame_shape, np.uint8)
        if rejection_rounds < 1 or staging_transitions < 1:
            raise ValueError("rejection_rounds and staging_transitions must be positive")
        self.rejection_rounds = int(rejection_rounds)
        self._generator = generator
        dev = self.device
        # Whether the transition stored in each slot can be sampled (False for empty slots and the
        # newest entry), kept up to date by flush() for the exact draw (module docstring).
        self._valid_slots = torch.zeros(self.capacity, dtype=torch.bool, device=dev)
        # Device copies of the counters `_adds` and `size`, read by the sampling graph; written
        # only when staged entries land.
        self._adds_t = torch.zeros((), dtype=torch.int64, device=dev)
        self._size_t = torch.zeros((), dtype=torch.int64, device=dev)
        self._exhausted_draws_t = torch.zeros((), dtype=torch.int64, device=dev)
        # Host-side proof that the memory holds a valid transition: the newest position whose
        # transition is not truncated (-1: none), and the newest entry's terminal flag, which
        # decides whether the next flush's first entry truncates it.
        self._last_untruncated = -1
        self._newest_terminal = False
        # Earlier rounds win: weights R..1 make argmax pick the first valid round.
        self._round_weights = torch.arange(self.rejection_rounds, 0, -1, dtype=torch.int64, device=dev)[:, None]

        pin = dev.type == "cuda"
        # Never more staged than the ring holds: a flush then writes each slot at most once, in
        # at most two runs, so a small memory ends with the contents ReplayMemory has.
        self._staging_transitions = min(int(staging_transitions), self.capacity)
        self._stages = [self._new_stage(pin) for _ in range(2 if pin else 1)]
        self._stage_views = [{name: t.numpy() for name, t in stage.items()} for stage in self._stages]
        self._stage_index = 0
        self._staged = 0  # entries in the current stage
        self._stage_done: list[Any] = [None] * len(self._stages)  # CUDA events of in-flight copies
        # Graph capture supports only the device's default generator among random streams.
        self._cuda_graphs = bool(cuda_graphs)
        self._use_graphs = self._cuda_graphs and dev.type == "cuda" and generator is None
        self._graphs: dict[int, tuple[Any, DeviceBatch]] = {}
        self._refresh_graph: Any = None
        # Offsets of the positions a flush can change: 1..staging before the newest, 0..h-2 after the oldest.
        self._recent_offsets = torch.arange(1, self._staging_transitions + 1, dtype=torch.int64, device=dev)
        self._front_offsets = torch.arange(self.history_length_frames - 1, dtype=torch.int64, device=dev)

    def _new_stage(self, pin: bool) -> dict[str, torch.Tensor]:
        """Host buffers for staged entries, in the ring's layout."""
        return {name: torch.zeros(shape, dtype=_torch_dtype(dtype), pin_memory=pin)
                for name, (shape, dtype) in entry_layout(self._staging_transitions, self.frame_shape).items()}

    # ------------------------------------------------------------------ ReplayRing's kernels, in torch
    def _zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        if self.device.type == "cpu":
            # Through np.zeros, whose pages are mapped only as entries are written (torch.zeros
            # writes every page at once: 7 GB of RSS for an empty 1M memory).
            return torch.from_numpy(np.zeros(shape, dtype=dtype))
        return torch.zeros(shape, dtype=_torch_dtype(dtype), device=self.device)

    def _index_array(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values).to(self.device)

    @staticmethod
    def _reverse_cumulative_or(flags: torch.Tensor) -> torch.Tensor:
        return torch.flip(torch.cumsum(torch.flip(flags, (-1,)), dim=-1), (-1,)) > 0

    def _oldest_stored(self) -> torch.Tensor:
        # The device counters: a captured graph reads their current values on every replay.
        return self._adds_t - self._size_t

    # ------------------------------------------------------------------ writing
    def add(self, frame: np.ndarray, action: int, reward: float, terminal: bool, episode_start: bool) -> None:
        """Store s_t's newest frame with a_t, the clipped r_t and whether a_t ended bootstrapping."""
        self._check_frame(frame)
        if self._staged == 0 and self._stage_done[self._stage_index] is not None:
            # The copy that last read this pinned buffer may still be queued behind GPU work.
            self._stage_done[self._stage_index].synchronize()
            self._stage_done[self._stage_index] = None
        # Through numpy views of the (pinned) staging tensors: a numpy store costs ~0.1 us, a
        # torch indexed store a few us, and this runs every agent step.
        i = self._staged
        views = self._stage_views[self._stage_index]
        views["frames"][i] = frame
        views["actions"][i] = action
        views["rewards"][i] = reward
        views["terminals"][i] = terminal
        views["episode_starts"][i] = episode_start
        self._staged += 1
        if self._staged == self._staging_transitions:
            self.flush()

    def flush(self) -> None:
        """Copy the staged entries to the device (reads call it; nothing to do when none is staged)."""
        n = self._staged
        if n == 0:
            return
        stage = self._stages[self._stage_index]
        first_position = self._adds
        self._note_untruncated(first_position, self._stage_views[self._stage_index], n)
        first_slot = self._adds % self.capacity
        # At most two contiguous runs of slots: up to the end of the ring, then from slot 0.
        head = min(n, self.capacity - first_slot)
        runs = [(first_slot, 0, head)] + ([(0, head, n - head)] if head < n else [])
        non_blocking = self.device.type == "cuda"
        for name, target in self._arrays().items():
            source = stage[name]
            for slot, start, count in runs:
                target[slot:slot + count].copy_(source[start:start + count], non_blocking=non_blocking)
        self._count_adds(n)
        self._adds_t.fill_(self._adds)
        self._size_t.fill_(self.size)
        self._run_refresh()
        if non_blocking:
            event = torch.cuda.Event()
            event.record()
            self._stage_done[self._stage_index] = event
            self._stage_index = (self._stage_index + 1) % len(self._stages)
        self._staged = 0

    def _note_untruncated(self, first_position: int, views: dict[str, np.ndarray], n: int) -> None:
        """Track the newest untruncated transition from the staged flags, on the host (no device read).

        The staged entries are positions first_position .. first_position + n - 1; they decide
        the truncation of the transitions one position earlier (the one before them included).
        """
        starts_next = views["episode_starts"][:n]
        terminals = np.concatenate(([self._newest_terminal], views["terminals"][:n - 1]))
        untruncated = ~starts_next | terminals
        if first_position == 0:
            untruncated[0] = False  # position -1 does not exist
        hits = np.flatnonzero(untruncated)
        if len(hits):
            self._last_untruncated = first_position - 1 + int(hits[-1])
        self._newest_terminal = bool(views["terminals"][n - 1])

    def _refresh_validity(self) -> None:
        """Recompute `_valid_slots` wherever the last flush can have changed it, from the device counters.

        That is its new entries and the one before them (whose next entry, which decides
        truncation, has just arrived): the staging size or fewer positions before the newest;
        and the h - 1 oldest stored entries (the write pointer may have overwritten frames of
        their stacks). Elsewhere nothing a transition's validity reads has changed; the newest
        entry has no next frame and is never valid. A fixed set of positions, clamped into the
        stored ones (a repeated position writes the same value twice), so that on CUDA the
        update is one captured graph instead of some 25 launches every flush.
        """
        oldest, newest = self._oldest_stored(), self._adds_t - 1
        positions = torch.cat([
            torch.maximum(newest - self._recent_offsets, oldest),
            torch.minimum(oldest + self._front_offsets, newest),
        ])
        self._valid_slots[positions % self.capacity] = self._valid(positions)
        self._valid_slots.index_fill_(0, (newest % self.capacity).view(1), False)

    def _run_refresh(self) -> None:
        # No random stream in it: a graph even where sampling runs eagerly (another generator).
        if not (self._cuda_graphs and self.device.type == "cuda"):
            self._refresh_validity()
            return
        if self._refresh_graph is None:
            # Warm-up runs recompute values the mask already holds or is about to: harmless.
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._refresh_validity()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._refresh_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._refresh_graph):
                self._refresh_validity()
        self._refresh_graph.replay()

    # ------------------------------------------------------------------ reading
    def _draw_positions(self, n: int) -> torch.Tensor:
        """n valid positions, uniform, with no host synchronisation (see the module docstring)."""
        low = self._oldest_stored()
        span = self._size_t - 1  # the newest entry has no next frame yet
        # One call for the rounds and the exact draw's uniforms: the last row is the exact draw's.
        u = torch.rand((self.rejection_rounds + 1, n), dtype=torch.float64, device=self.device, generator=self._generator)
        candidates = low + (u[:-1] * span).to(torch.int64)  # float64 is exact for spans below 2**53
        valid = self._valid(candidates)
        first = (valid.to(torch.int64) * self._round_weights).argmax(0)
        exhausted = ~valid.any(0)
        self._exhausted_draws_t += exhausted.sum()
        chosen = candidates.gather(0, first[None]).squeeze(0)
        return torch.where(exhausted, self._ranked_positions(u[-1], low), chosen)

    def _ranked_positions(self, u: torch.Tensor, oldest: torch.Tensor) -> torch.Tensor:
        """For each u, the position of the floor(u x V)-th of the V valid transitions, counted in
        slot order: uniform among the valid ones.

        Computed for every draw (a fixed-shape graph cannot branch on the data); the caller keeps
        them only where all rejection rounds failed.
        """
        # int32 counts: a ring of 2**31 entries would hold 15 TB of frames.
        counts = torch.cumsum(self._valid_slots, 0, dtype=torch.int32)
        rank = (u * counts[-1]).to(torch.int32)
        # The first slot whose running count exceeds the rank is the rank-th valid one.
        slots = torch.searchsorted(counts, rank, right=True).clamp_(max=self.capacity - 1)
        return oldest + (slots - oldest % self.capacity) % self.capacity

    def _stacks(self, newest: torch.Tensor) -> torch.Tensor:
        """Stacked states whose newest frames are at logical positions `newest`, zeroed before game starts."""
        window = self._stack_window(newest)  # [n, h]
        frames = self._frames[window % self.capacity]  # one gather, [n, h, *frame_shape]
        zero = self._zeroed(window)
        return frames.masked_fill(zero.view(*zero.shape, *([1] * len(self.frame_shape))), 0)

    def _gather(self, positions: torch.Tensor) -> DeviceBatch:
        slots = positions % self.capacity
        return DeviceBatch(
            state=self._stacks(positions),
            action=self._actions[slots].to(torch.int64),
            reward=self._rewards[slots],
            terminal=self._terminals[slots].to(torch.float32),
            next_state=self._stacks(positions + 1),
        )

    def _check_sampleable(self) -> None:
        self.flush()
        self._check_two_entries()
        # An untruncated transition h - 1 or more entries after the oldest has every stack frame
        # stored, so it is valid; only without one (a handful of entries) is the device asked.
        if self._last_untruncated < self._oldest() + self.history_length_frames - 1:
            if not bool(self._valid_slots.any()):
                raise ValueError("the replay memory holds no sampleable transition")

    def sample_positions(self, n: int) -> torch.Tensor:
        """n logical positions drawn uniformly (with replacement) among the valid transitions, on the device."""
        self._check_sampleable()
        return self._draw_positions(int(n))

    def batch_at(self, positions: torch.Tensor | np.ndarray) -> DeviceBatch:
        """The transitions at logical `positions` (stored, not the newest; validity is the caller's)."""
        self.flush()
        return self._gather(torch.as_tensor(positions, dtype=torch.int64).to(self.device))

    def sample(self, batch_size: int) -> DeviceBatch:
        """`batch_size` transitions drawn uniformly from the valid ones, gathered on the device.

        On CUDA the tensors are the outputs of a captured graph: valid until the next sample().
        """
        self._check_sampleable()
        if not self._use_graphs:
            return self._gather(self._draw_positions(batch_size))
        if batch_size not in self._graphs:
            self._graphs[batch_size] = self._capture(batch_size)
        graph, outputs = self._graphs[batch_size]
        graph.replay()
        return outputs

    def _capture(self, batch_size: int) -> tuple[Any, DeviceBatch]:
        # The warm-up runs draw from the generator; its state is put back so that capturing a
        # graph changes no random stream. The exhaustion counter is put back likewise.
        generator = torch.cuda.default_generators[self.device.index]
        rng_state = generator.get_state()
        exhausted = self._exhausted_draws_t.clone()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self._gather(self._draw_positions(batch_size))
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self._gather(self._draw_positions(batch_size))
        generator.set_state(rng_state)
        self._exhausted_draws_t.copy_(exhausted)
        return graph, outputs

    def sample_states(self, n: int) -> np.ndarray:
        """`n` stacked states s_t drawn uniformly from the valid transitions, on the host (held-out states)."""
        return self._stacks(self.sample_positions(n)).cpu().numpy()

    @property
    def exhausted_draws(self) -> int:
        """Draws for which every rejection round was invalid, so taken by exact rank (reading it
        synchronises): how well `rejection_rounds` fits this memory, not an error."""
        return int(self._exhausted_draws_t.item())

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """ReplayMemory's state dict, as host numpy arrays (copies on CUDA).

        The random stream is the device generator's, saved with the run's torch RNG states, so
        `rng_state` is None and `sampler` says "device".
        """
        self.flush()
        return super().state_dict()

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self._staged = 0
        super().load_state_dict(d)

    def _to_host(self, array: torch.Tensor) -> np.ndarray:
        return array.cpu().numpy()

    def _write_rows(self, target: torch.Tensor, start: int, stop: int, rows: np.ndarray) -> None:
        target[start:stop].copy_(torch.from_numpy(np.array(rows)))

    def _sampler_state(self) -> dict[str, Any]:
        return {"rng_state": None, "sampler": "device"}

    def _load_sampler_state(self, d: dict[str, Any]) -> None:
        self._adds_t.fill_(self._adds)
        self._size_t.fill_(self.size)
        self._rebuild_validity()

    def _rebuild_validity(self, chunk_transitions: int = 2**18) -> None:
        """The validity mask and the host's untruncated marker of every stored entry (after a load)."""
        self._valid_slots.zero_()
        oldest, newest = self._oldest(), self._adds - 1
        self._last_untruncated, self._newest_terminal = -1, False
        if self._adds == 0:
            return
        # In chunks: a stack window costs h int64 per position, 32 MB per million at h = 4.
        for start in range(oldest, newest, chunk_transitions):
            positions = torch.arange(start, min(start + chunk_transitions, newest), dtype=torch.int64, device=self.device)
            self._valid_slots[positions % self.capacity] = self._valid(positions)
            untruncated = ~self._truncated(positions)
            if bool(untruncated.any()):
                self._last_untruncated = int(positions[untruncated][-1])
        self._newest_terminal = bool(self._terminals[newest % self.capacity])
