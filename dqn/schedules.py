"""The exploration schedule of Mnih et al. (2015)."""

from __future__ import annotations

from dqn.config import Hyperparameters


class LinearEpsilon:
    """Epsilon as a function of the agent step.

    Exactly `initial` for steps < `start_step` (the replay start: a uniform random policy), then
    linear to `final` over `decay_steps` agent steps, then `final`. The Lua code counted the decay
    from the replay start too, so Table 1's "final exploration frame" of 1M is reached at step
    1.05M.
    """

    def __init__(self, initial: float = 1.0, final: float = 0.1, decay_steps: int = 1_000_000, start_step: int = 50_000):
        if decay_steps < 0 or start_step < 0:
            raise ValueError(f"decay_steps and start_step must be >= 0, got {decay_steps} and {start_step}")
        self.initial = float(initial)
        self.final = float(final)
        self.decay_steps = int(decay_steps)
        self.start_step = int(start_step)

    @classmethod
    def from_hyperparameters(cls, hp: Hyperparameters) -> "LinearEpsilon":
        return cls(
            initial=hp.initial_exploration,
            final=hp.final_exploration,
            decay_steps=hp.final_exploration_frame_steps,
            start_step=hp.replay_start_size_steps,
        )

    def __call__(self, agent_step: int) -> float:
        if agent_step < self.start_step:
            return self.initial
        done_steps = agent_step - self.start_step
        if done_steps >= self.decay_steps:
            return self.final
        return self.initial + (self.final - self.initial) * (done_steps / self.decay_steps)

    def __repr__(self) -> str:
        return (f"LinearEpsilon(initial={self.initial}, final={self.final}, "
                f"decay_steps={self.decay_steps}, start_step={self.start_step})")
