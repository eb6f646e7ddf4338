"""The Q-learning update of Mnih et al. (2015): targets, clipped TD loss, the Learner, epsilon-greedy.

Names follow the maths: s_t/a_t/r_t for the sampled transition, q_t for Q(s_t, .), q_tp1 for
Q_target(s_{t+1}, .).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dqn.config import Hyperparameters
from dqn.networks import build_network, initialize
from dqn.optim import DeepMindRMSprop
from dqn.replay import Batch


def td_target(reward: torch.Tensor, terminal: torch.Tensor, next_q_target: torch.Tensor, discount: float) -> torch.Tensor:
    """y = r + discount * (1 - terminal) * max_a' Q_target(s', a'); `next_q_target` is [B, A]."""
    return reward + discount * (1.0 - terminal) * next_q_target.max(dim=1).values


def td_loss(q_selected: torch.Tensor, target: torch.Tensor, td_error_clip: float) -> torch.Tensor:
    """Per-sample loss whose gradient w.r.t. q_selected is -(TD error clipped to [-clip, clip]).

    That is the Huber loss with threshold `clip` (the paper's "error clipping"); clip == 0 means
    the plain 0.5 * squared error of the 2013 paper.
    """
    if td_error_clip > 0:
        return F.huber_loss(q_selected, target, reduction="none", delta=td_error_clip)
    return 0.5 * (target - q_selected).square()


class Learner:
    """Online network, optional target network and DeepMind's RMSProp; one update per call."""

    def __init__(self, hp: Hyperparameters, num_actions: int, *, device: str | torch.device,
                 in_shape: tuple[int, ...] = (4, 84, 84), channels_last: bool = False):
        self.device = torch.device(device)
        self.in_shape = tuple(in_shape)
        self.num_actions = int(num_actions)
        self.discount = float(hp.discount_factor)
        self.td_error_clip = float(hp.td_error_clip)
        self.online: nn.Module = initialize(build_network(hp.network, self.in_shape, self.num_actions),
                                            hp.network_init).to(self.device)
        if channels_last:
            if not hasattr(self.online, "to_channels_last"):
                raise ValueError(f"channels_last needs a convolutional network, not {hp.network!r}")
            # Before the target copy and the optimizer's state, which then follow the same layout.
            self.online.to_channels_last()
        self.target: nn.Module | None = None
        if hp.uses_target_network:
            self.target = copy.deepcopy(self.online)
            self.target.requires_grad_(False)
        # With 0 the 2013 path bootstraps from the online network itself (no target network).
        self.optimizer = DeepMindRMSprop(
            self.online.parameters(),
            lr=hp.learning_rate,
            gradient_momentum=hp.gradient_momentum,
            squared_gradient_momentum=hp.squared_gradient_momentum,
            min_squared_gradient=hp.min_squared_gradient,
        )
        self.parameter_updates = 0

    def to_device(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A host array or a tensor as a tensor on the learner's device, dtype kept (uint8 frames
        stay uint8 until the network's first layer); a tensor already there is returned as is."""
        # from_numpy shares memory (a read-only array is copied first, which torch requires).
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x if x.flags.writeable else x.copy())
        return x.to(self.device, non_blocking=True)

    @torch.no_grad()
    def q_values(self, states: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Q(s, .) of the online network, [B, A] on the device; one unbatched state gives [1, A]."""
        s = self.to_device(states)
        if s.dim() == len(self.in_shape):
            s = s.unsqueeze(0)
        return self.online(s)

    def update(self, batch: Batch) -> torch.Tensor:
        """One parameter update on `batch` (host arrays, or tensors on the device); returns the
        batch-mean loss as a 0-d float tensor on the device, unread: reading it (`float()`) waits
        for the update on a GPU, so that is the caller's choice (the CPU has nothing to wait for)."""
        losses = self.losses(*(self.to_device(x) for x in batch))
        self.descend(losses)
        self.parameter_updates += 1
        return losses.detach().mean()

    def losses(self, s_t: torch.Tensor, a_t: torch.Tensor, r_t: torch.Tensor, terminal_t: torch.Tensor,
               s_tp1: torch.Tensor) -> torch.Tensor:
        """Per-sample clipped TD losses of a minibatch already on the device, [B].

        No host synchronisation inside, so a CUDA graph can capture it (dqn/speed/fast_learner.py).
        """
        with torch.no_grad():
            bootstrap_net = self.target if self.target is not None else self.online
            y = td_target(r_t, terminal_t, bootstrap_net(s_tp1), self.discount)
        q_t = self.online(s_t).gather(1, a_t.unsqueeze(1)).squeeze(1)
        return td_loss(q_t, y, self.td_error_clip)

    @torch.no_grad()
    def heldout_statistics(self, batch: Batch, chunk_transitions: int = 256) -> tuple[float, float]:
        """(average max Q, mean absolute TD error) on held-out transitions, as DeepMind's
        `compute_validation_statistics` computed Fig. 2's second index of learning: the mean over
        the transitions of max_a Q_target(s', a) (`v_avg`), and of |r + discount * (1 - terminal) *
        max_a Q_target(s', a) - Q(s, a)| with the TD error clipped as in the update (`tderr_avg`).
        Without a target network (2013) the online network bootstraps, as in the update."""
        bootstrap_net = self.target if self.target is not None else self.online
        q_max_sum = td_error_abs_sum = 0.0
        count = len(batch.action)
        for start in range(0, count, chunk_transitions):
            s_t, a_t, r_t, terminal_t, s_tp1 = (self.to_device(x[start:start + chunk_transitions]) for x in batch)
            q_tp1_max = bootstrap_net(s_tp1).max(dim=1).values
            td_error = r_t + self.discount * (1.0 - terminal_t) * q_tp1_max
            td_error = td_error - self.online(s_t).gather(1, a_t.unsqueeze(1)).squeeze(1)
            if self.td_error_clip > 0:
                td_error = td_error.clamp(-self.td_error_clip, self.td_error_clip)
            q_max_sum += q_tp1_max.double().sum().item()
            td_error_abs_sum += td_error.abs().double().sum().item()
        return q_max_sum / count, td_error_abs_sum / count

    def descend(self, losses: torch.Tensor) -> None:
        """One RMSProp step on the gradient of the summed `losses` (does not count the update)."""
        self.optimizer.zero_grad(set_to_none=True)
        # SUMMED over the minibatch, as DeepMind's code backpropagated the clipped TD errors of
        # all 32 samples at once: with a sum, min_squared_gradient = 0.01 is the paper's
        # constant exactly (a batch mean would need 0.01 / 32^2); dqn/optim.py has the optimizer, and
        # tests/test_agent.py checks two updates against a transcription of qLearnMinibatch.
        losses.sum().backward()
        self.optimizer.step()

    def sync_target(self) -> None:
        """Copy the online weights into the target network (no-op without a target network)."""
        if self.target is not None:
            self.target.load_state_dict(self.online.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.state_dict(),
            "target": None if self.target is None else self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "parameter_updates": self.parameter_updates,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if (d["target"] is None) != (self.target is None):
            raise ValueError("learner state and this learner disagree on having a target network")
        self.online.load_state_dict(d["online"])
        if self.target is not None:
            self.target.load_state_dict(d["target"])
        # Copied: torch's Optimizer.load_state_dict would otherwise keep the caller's tensors as
        # its state (when dtype and device match) and update them in place.
        self.optimizer.load_state_dict(copy.deepcopy(d["optimizer"]))
        self.parameter_updates = int(d["parameter_updates"])


class LazyQValues:
    """Q-values computed on first use, so that an exploring step skips the forward pass.

    `epsilon_greedy` draws whether to explore before it looks at the Q-values, and a forward pass
    has no side effects, so the actions and every random draw are the same as with the values
    computed up front; only the work on exploring steps (10% of a Nature run after the decay,
    all of them before the replay start) is saved.
    """

    def __init__(self, compute: Callable[[], np.ndarray], num_actions: int):
        self.compute = compute
        self.num_actions = int(num_actions)

    def __len__(self) -> int:
        return self.num_actions

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.compute(), dtype=dtype)


def epsilon_greedy(q_values: np.ndarray | LazyQValues, epsilon: float, rng: np.random.Generator) -> int:
    """A uniform random action with probability epsilon, else a greedy one with ties broken at random."""
    if rng.random() < epsilon:
        num_actions = len(q_values) if isinstance(q_values, LazyQValues) else np.size(q_values)
        return int(rng.integers(num_actions))
    q = np.asarray(q_values).reshape(-1)
    best = np.flatnonzero(q == q.max())
    if len(best) == 1:
        return int(best[0])
    if len(best) == 0:
        raise ValueError(f"Q-values contain NaN: {q}")
    return int(best[rng.integers(len(best))])
