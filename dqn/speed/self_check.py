"""The fast path checks itself against the plain path before a training relies on it.

When a training starts or resumes on the fast path, dqn.train calls `check_fast_path` on the run's
own FastLearner, after its checkpoint (if any) is loaded. The check:

1. loads a plain `dqn.agent.Learner` with the FastLearner's state (weights, target network,
   RMSProp averages);
2. fills a small DeviceReplay and a host ReplayMemory with the same synthetic transitions
   (frame p holds the value p + 1, so a sampled stack says which transition it is; games start,
   end and are cut, and the ring wraps);
3. CHECK_UPDATES times: draws a minibatch from the DeviceReplay (its sampling graph on CUDA),
   checks it against the host memory's transitions at the same positions, runs one update on
   each learner (the FastLearner's captured update graph on CUDA), compares the two losses, and
   runs one acting pass on each (the captured acting graph on CUDA), before the first update and
   after every update, comparing Q-values and greedy actions; the target networks are synced
   half way;
4. compares the online and target weights and the RMSProp averages at the end;
5. puts the FastLearner's state back into the same tensors (so the captured graphs stay valid,
   and the first real update does not capture again) and the torch random generators back, so
   the check changes nothing the run computes.

Tolerances (TOLERANCE): the two paths run the same operations on the same data; on a CPU they are
the same kernels (exactly equal), on CUDA the graphs replay the kernels eager mode chose, so
differences are float32 rounding (~1e-7 relative), amplified a little by RMSProp's division over
CHECK_UPDATES steps. A relative 1e-4 (absolute 1e-6 on losses, 1e-5 on weights and Q-values) is
far above rounding and far below any real error (a wrong stack, target or optimizer step moves
losses and weights by percent). Replayed transitions must be identical (uint8 frames, integer
actions, flags). A greedy action must be the plain path's, unless the plain path's two best
Q-values lie within the Q tolerance of each other (either is then a correct argmax).

Any mismatch, and any exception raised while checking (a graph that fails to capture, an
out-of-memory error), gives a failed `Verdict` with a one-line reason; dqn.train then logs one
warning, records the fallback in config.json and continues on the plain path.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dqn.config import Hyperparameters

CHECK_UPDATES = 8
TOLERANCE = {"loss": (1e-4, 1e-6), "weights": (1e-4, 1e-5), "q_values": (1e-4, 1e-5)}  # (relative, absolute)
# The synthetic memory: frame p holds p + 1, so it must stay below 256 entries.
_CAPACITY_TRANSITIONS = 120
_ADDS = 200


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str | None  # why it failed, one line; None when it passed
    seconds: float
    updates: int
    acting_passes: int


class _Mismatch(Exception):
    pass


def _close(a: float, b: float, kind: str) -> bool:
    rel, abs_ = TOLERANCE[kind]
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _tensors_close(a: torch.Tensor, b: torch.Tensor, kind: str) -> bool:
    rel, abs_ = TOLERANCE[kind]
    return bool(torch.allclose(a.float(), b.float().to(a.device), rtol=rel, atol=abs_))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------------------- state kept aside
class _SavedState:
    """Every tensor an update or a sync changes, cloned, and put back in place afterwards."""

    def __init__(self, learner):
        inner = learner.learner
        self.parameter_updates = inner.parameter_updates
        self.had_averages = {id(p) for p in inner.online.parameters() if inner.optimizer.state.get(p)}
        self.pairs = [(t, t.detach().clone()) for t in self._tensors(inner)]

    @staticmethod
    def _tensors(inner) -> list[torch.Tensor]:
        tensors = list(inner.online.parameters())
        if inner.target is not None:
            tensors += list(inner.target.parameters())
        for state in inner.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
        return tensors

    @torch.no_grad()
    def put_back(self, learner) -> None:
        inner = learner.learner
        for tensor, saved in self.pairs:
            tensor.copy_(saved)
        # Averages the check created are zeros before a first real step (DeepMindRMSprop starts
        # from 0): kept as zeros, since a captured update graph writes these very tensors.
        for p in inner.online.parameters():
            if id(p) not in self.had_averages:
                for v in inner.optimizer.state.get(p, {}).values():
                    if torch.is_tensor(v):
                        v.zero_()
        inner.parameter_updates = self.parameter_updates


def _rng_states(device: torch.device) -> tuple[Any, Any]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_states(device: torch.device, states: tuple[Any, Any]) -> None:
    torch.set_rng_state(states[0])
    if states[1] is not None:
        torch.cuda.set_rng_state(states[1], device)


# ---------------------------------------------------------------------------- the comparison
def _synthetic_memories(in_shape: tuple[int, ...], device: torch.device):
    """A host ReplayMemory and a DeviceReplay fed the same transitions: frame p holds p + 1."""
    from dqn.replay import ReplayMemory
    from dqn.speed.device_replay import DeviceReplay

    history, frame_shape = in_shape[0], tuple(in_shape[1:])
    rng = np.random.default_rng(0)
    host = ReplayMemory(_CAPACITY_TRANSITIONS, history, frame_shape, seed=0)
    # On CUDA the sampling graph draws from the device's default generator (put back afterwards).
    generator = None if device.type == "cuda" else torch.Generator(device).manual_seed(0)
    memory = DeviceReplay(_CAPACITY_TRANSITIONS, history, frame_shape, device=device, generator=generator)
    starts = set(range(0, _ADDS, 23)) | {57, 58}  # games of 23 entries, and one cut after a single frame
    for p in range(_ADDS):
        start = p in starts
        terminal = (p + 1) in starts and p % 2 == 0  # some games end, the others are cut (truncated)
        entry = (np.full(frame_shape, p + 1, np.uint8), int(rng.integers(0, 4)), float(rng.integers(-1, 2)), terminal, start)
        host.add(*entry)
        memory.add(*entry)
    return host, memory


def _compare_acting(fast, plain, state: np.ndarray) -> None:
    q_fast = fast.q_values(state).float().cpu().numpy()[0]
    q_plain = plain.q_values(state).float().cpu().numpy()[0]
    rel, abs_ = TOLERANCE["q_values"]
    if not np.allclose(q_fast, q_plain, rtol=rel, atol=abs_):
        raise _Mismatch(f"Q-values differ: {np.round(q_fast, 6).tolist()} fast, {np.round(q_plain, 6).tolist()} plain")
    best, chosen = int(np.argmax(q_plain)), int(np.argmax(q_fast))
    if chosen != best and q_plain[best] - q_plain[chosen] > abs_ + rel * abs(q_plain[best]):
        raise _Mismatch(f"greedy action {chosen} on the fast path, {best} on the plain path")


def _compare_weights(fast_inner, plain) -> None:
    nets = [("online", fast_inner.online, plain.online)]
    if plain.target is not None:
        nets.append(("target", fast_inner.target, plain.target))
    for name, a, b in nets:
        for (param, x), y in zip(a.named_parameters(), b.parameters()):
            if not _tensors_close(x.detach(), y.detach(), "weights"):
                worst = float((x.detach().float() - y.detach().float().to(x.device)).abs().max())
                raise _Mismatch(f"{name} weights {param} differ by up to {worst:.3g} after {CHECK_UPDATES} updates")
    for (name, p), q in zip(fast_inner.online.named_parameters(), plain.online.parameters()):
        for key, value in fast_inner.optimizer.state.get(p, {}).items():
            other = plain.optimizer.state.get(q, {}).get(key)
            if torch.is_tensor(value) and (other is None or not _tensors_close(value, other, "weights")):
                raise _Mismatch(f"RMSProp {key} of {name} differs after {CHECK_UPDATES} updates")


def _compare(fast, hp: Hyperparameters) -> int:
    """Runs the updates and acting passes; raises _Mismatch on a difference. Returns the acting passes."""
    from dqn.agent import Learner

    inner = fast.learner
    plain = Learner(hp, fast.num_actions, device=fast.device, in_shape=fast.in_shape)
    plain.load_state_dict(inner.state_dict())
    host, memory = _synthetic_memories(fast.in_shape, fast.device)
    batch_size = hp.minibatch_size_transitions
    _compare_acting(fast, plain, host.sample_states(1)[0])
    acting_passes = 1
    for k in range(CHECK_UPDATES):
        batch = memory.sample(batch_size)
        positions = batch.state[:, -1].reshape(batch_size, -1)[:, 0].long().cpu().numpy() - 1
        expected = host.batch_at(positions)
        for field, got, want in zip(expected._fields, batch, expected):
            if not np.array_equal(got.cpu().numpy(), np.asarray(want, dtype=got.cpu().numpy().dtype)):
                raise _Mismatch(f"the device replay's minibatch differs from the host memory's in {field}")
        fast_loss, plain_loss = float(fast.update(batch)), float(plain.update(expected))
        if not (math.isfinite(fast_loss) and _close(fast_loss, plain_loss, "loss")):
            raise _Mismatch(f"update {k + 1}: loss {fast_loss!r} on the fast path, {plain_loss!r} on the plain path")
        if k == CHECK_UPDATES // 2 - 1:
            fast.sync_target()
            plain.sync_target()
        _compare_acting(fast, plain, expected.state[k % batch_size])
        acting_passes += 1
    _compare_weights(inner, plain)
    return acting_passes


def check_fast_path(fast, hp: Hyperparameters) -> Verdict:
    """Compare the FastLearner `fast` with a plain Learner from the same state (see the module's
    docstring); `fast`'s state and the torch random generators are as before when it returns."""
    started = time.monotonic()
    device = fast.device
    reason: str | None = None
    acting_passes = 0
    saved = _SavedState(fast)
    rng = _rng_states(device)
    try:
        acting_passes = _compare(fast, hp)
    except _Mismatch as mismatch:
        reason = str(mismatch)
    except Exception as exc:  # noqa: BLE001 (any failure of the fast path means: use the plain one)
        reason = f"{_first_line(exc)} (raised while checking)"
    finally:
        try:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            saved.put_back(fast)
            _set_rng_states(device, rng)
        except Exception as exc:  # noqa: BLE001
            reason = reason or f"{_first_line(exc)} (raised while restoring the state after the check)"
    return Verdict(passed=reason is None, reason=reason, seconds=time.monotonic() - started,
                   updates=CHECK_UPDATES, acting_passes=acting_passes)
