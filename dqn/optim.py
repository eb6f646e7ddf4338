"""DeepMind's centered RMSProp, as in the Lua code of Mnih et al. (2015).

    g  <- m  g  + (1 - m)  grad
    g2 <- m2 g2 + (1 - m2) grad^2
    theta <- theta - lr * grad / sqrt(g2 - g^2 + min_squared_gradient)

The constant sits INSIDE the square root and there is no momentum buffer. torch.optim.RMSprop
(centered=True) adds its eps outside the square root, sqrt(g2 - g^2) + eps, which behaves very
differently when the gradient variance is small, so it is not a stand-in. The paper's 0.01 assumes
gradients summed (not averaged) over the minibatch; see dqn/agent.py.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch


class DeepMindRMSprop(torch.optim.Optimizer):
    def __init__(self, params: Iterable, lr: float = 0.00025, gradient_momentum: float = 0.95,
                 squared_gradient_momentum: float = 0.95, min_squared_gradient: float = 0.01):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        for name, value in (("gradient_momentum", gradient_momentum), ("squared_gradient_momentum", squared_gradient_momentum)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {value}")
        if min_squared_gradient < 0:
            raise ValueError(f"min_squared_gradient must be >= 0, got {min_squared_gradient}")
        defaults = dict(lr=lr, gradient_momentum=gradient_momentum,
                        squared_gradient_momentum=squared_gradient_momentum,
                        min_squared_gradient=min_squared_gradient)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, mean_grads, mean_squares = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("DeepMindRMSprop does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["mean_gradient"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["mean_squared_gradient"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                mean_grads.append(state["mean_gradient"])
                mean_squares.append(state["mean_squared_gradient"])
            if not params:
                continue
            m, m2 = group["gradient_momentum"], group["squared_gradient_momentum"]
            # Multi-tensor ops, arranged for few passes over memory (the step is ~10% of a CPU
            # update): lerp_(x, w) is x + w (grad - x) = m x + (1 - m) grad in one pass.
            torch._foreach_lerp_(mean_grads, grads, 1.0 - m)
            torch._foreach_lerp_(mean_squares, torch._foreach_mul(grads, grads), 1.0 - m2)
            # sqrt(g2 - g^2 + c) in a fresh list, so the state stays untouched.
            denoms = torch._foreach_addcmul(mean_squares, mean_grads, mean_grads, value=-1.0)
            torch._foreach_add_(denoms, group["min_squared_gradient"])
            torch._foreach_sqrt_(denoms)
            torch._foreach_addcdiv_(params, grads, denoms, value=-group["lr"])
        return loss
