"""The Learner driven for speed on a GPU: no host synchronisation per update, captured CUDA graphs.

`FastLearner` wraps a `dqn.agent.Learner` (same networks, same optimizer, same loss code:
`Learner.losses` and `Learner.descend`) and changes only how the work reaches the device:

- `update(batch)` takes a `DeviceBatch` already on the device (dqn/speed/device_replay.py) and,
  like `Learner.update`, returns the batch-mean loss as a 0-dim device tensor: reading it
  (`float()`) is the caller's choice, so the host never waits for an update.
- On CUDA the update (both forward passes, backward, RMSProp) is captured once as a CUDA graph
  and replayed: one launch instead of ~150 kernel launches from Python.
- `q_values` on one state replays a captured graph of the acting forward pass.

Faithful by construction: every update runs in stream order before the next acting forward
pass, so the action at step t uses the weights after every update before t. Capturing a graph
needs warm-up runs; they are undone (weights, optimizer state) before the graph is captured, so
capturing changes nothing that is computed. On the CPU the same code runs eagerly, which is what
the equivalence tests check against the plain Learner.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dqn.agent import Learner
from dqn.speed.device_replay import DeviceBatch

_WARMUP_RUNS = 3


class FastLearner:
    def __init__(self, learner: Learner, *, cuda_graphs: bool = True):
        self.learner = learner
        self.device = learner.device
        self.num_actions = learner.num_actions
        self.in_shape = learner.in_shape
        self._use_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        if self._use_graphs:
            # A compiled step would be compiled during capture; the graph makes it one launch anyway.
            from dqn.speed.compiled_step import eager_optimizer_step

            eager_optimizer_step(learner.optimizer)
        self._update_graph: tuple[Any, DeviceBatch, torch.Tensor] | None = None
        self._act_graph: tuple[Any, torch.Tensor, torch.Tensor] | None = None

    # Attributes the training loop and the weights file read.
    @property
    def online(self) -> torch.nn.Module:
        return self.learner.online

    @property
    def target(self) -> torch.nn.Module | None:
        return self.learner.target

    @property
    def parameter_updates(self) -> int:
        return self.learner.parameter_updates

    def heldout_statistics(self, batch, chunk_transitions: int = 256) -> tuple[float, float]:
        """Learner.heldout_statistics, off the captured graphs (once per period)."""
        return self.learner.heldout_statistics(batch, chunk_transitions)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def q_values(self, states: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Q(s, .) of the online network, [B, A] on the device; one unbatched state gives [1, A]."""
        s = self.learner.to_device(states)
        if s.dim() == len(self.in_shape):
            s = s.unsqueeze(0)
        if not self._use_graphs or s.shape[0] != 1 or s.dtype != torch.uint8:
            return self.learner.online(s)
        if self._act_graph is None:
            self._act_graph = self._capture_acting()
        graph, static_state, static_q = self._act_graph
        static_state.copy_(s)
        graph.replay()
        return static_q.clone()  # the static output is overwritten by the next replay

    def _capture_acting(self) -> tuple[Any, torch.Tensor, torch.Tensor]:
        static_state = torch.zeros((1, *self.in_shape), dtype=torch.uint8, device=self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(_WARMUP_RUNS):
                self.learner.online(static_state)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            static_q = self.learner.online(static_state)
        return graph, static_state, static_q

    # ------------------------------------------------------------------ learning
    def update(self, batch: DeviceBatch) -> torch.Tensor:
        """One parameter update on a minibatch on the device; returns the batch-mean loss, unsynchronised."""
        if not self._use_graphs:
            return self.learner.update(batch)
        if self._update_graph is None:
            self._update_graph = self._capture_update(batch)
        graph, static_batch, static_loss = self._update_graph
        for static, value in zip(static_batch, batch):
            if static.data_ptr() != value.data_ptr():
                static.copy_(value)
        graph.replay()
        self.learner.parameter_updates += 1
        return static_loss.clone()

    def _training_state(self) -> list[torch.Tensor]:
        """Every tensor an update changes in place: online weights and the optimizer's averages."""
        tensors = list(self.learner.online.parameters())
        for state in self.learner.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
        return tensors

    def _capture_update(self, batch: DeviceBatch) -> tuple[Any, DeviceBatch, torch.Tensor]:
        learner = self.learner
        static_batch = DeviceBatch(*(t.clone() for t in batch))
        before = [t.clone() for t in self._training_state()]
        had_state = {id(p) for p in learner.online.parameters() if learner.optimizer.state.get(p)}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(_WARMUP_RUNS):
                learner.descend(learner.losses(*static_batch))
        torch.cuda.current_stream(self.device).wait_stream(side)
        # Undo the warm-up: weights and averages back to their values before it. Averages the
        # warm-up created are zeros before the first real step (DeepMindRMSprop starts from 0).
        with torch.no_grad():
            for tensor, saved in zip(self._training_state(), before):
                tensor.copy_(saved)
            for p in learner.online.parameters():
                if id(p) not in had_state:
                    for v in learner.optimizer.state[p].values():
                        if torch.is_tensor(v):
                            v.zero_()
        # Gradients allocated inside the capture come from the graph's pool and are rewritten
        # (not accumulated) by every replay.
        learner.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            losses = learner.losses(*static_batch)
            learner.descend(losses)
            static_loss = losses.detach().mean()
        return graph, static_batch, static_loss

    # ------------------------------------------------------------------ the rest of Learner's interface
    def sync_target(self) -> None:
        self.learner.sync_target()  # load_state_dict copies in place: captured graphs stay valid

    def state_dict(self) -> dict[str, Any]:
        return self.learner.state_dict()

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.learner.load_state_dict(d)
        # The optimizer's averages are new tensors now: the captured update would write the old ones.
        self._update_graph = None

