"""Policies: what the evaluation runner (dqn.runner) asks an agent for, and the DQN policy read
from a weights file.

    policy.act(states, rngs, epsilon) -> actions

`states` is a [n, history, 84, 84] uint8 batch holding the state of every live episode, `rngs`
the n episodes' own random generators (all randomness of an action is drawn from its episode's
generator) and `actions` n ints. `DQNPolicy` does one batched forward pass for all live episodes
and epsilon-greedy per episode with random ties; `baselines.random_agent`'s policy ignores the
states.

`load_weights` reads a weights file (the format of dqn.run_folder.weights_file, listed in
docs/DESIGN.md) and checks every entry, so that a damaged or hand-edited file is one error line
naming it instead of a traceback deep inside torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from dqn.config import Hyperparameters
from dqn.errors import UserError

WEIGHTS_KEYS = ("state_dict", "network", "num_actions", "game", "frames", "hyperparameters")


class Policy(Protocol):
    agent: str  # the `agent` label of evaluation rows: "dqn", "random"
    num_actions: int

    def act(self, states: np.ndarray, rngs: Sequence[np.random.Generator], epsilon: float) -> np.ndarray:
        """One action per row of `states` ([n, history, 84, 84] uint8), drawing only from rngs[i] for row i."""
        ...


class DQNPolicy:
    """Epsilon-greedy on a Q-network: one forward pass for the whole batch, then per row
    `dqn.agent.epsilon_greedy` (the training rule: ties broken at random) with the row's own RNG."""

    agent = "dqn"

    def __init__(self, network, num_actions: int, *, device: str = "cpu", history_length_frames: int = 4,
                 game: str | None = None, frames: int | None = None, hyperparameters=None):
        import torch

        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.num_actions = int(num_actions)
        self.history_length_frames = int(history_length_frames)
        self.game = game
        self.frames = frames
        self.hyperparameters = hyperparameters

    @classmethod
    def from_weights(cls, path: str | os.PathLike, device: str = "cpu") -> "DQNPolicy":
        """Load a weights file (torch.save'd dict with WEIGHTS_KEYS) and build its network.

        `hyperparameters` holds the training run's values with the game's own overrides applied
        (e.g. the 2013 paper's action repeat of 3 for Space Invaders). Whatever is wrong with the
        file (not a torch file, a missing or wrong entry, weights that do not fit the network,
        NaN weights) is one UserError naming the file.
        """
        from dqn.networks import build_network

        blob = load_weights(path)
        where = f"weights file {str(path)!r}"
        try:
            hp = Hyperparameters.from_dict(blob["hyperparameters"]).for_game(blob["game"])
        except (UserError, TypeError, ValueError) as exc:
            raise UserError(f"{where} holds hyperparameters that do not validate ({_one_line(exc)}); "
                            "was it edited? pass a best.pt or final.pt written by dqn.train") from None
        in_shape = (hp.agent_history_length_frames, 84, 84)
        network = build_network(blob["network"], in_shape, blob["num_actions"])
        misfit = _state_dict_misfit(network.state_dict(), blob["state_dict"])
        if misfit:
            raise UserError(f"{where} does not fit network {blob['network']!r} with {blob['num_actions']} actions and "
                            f"{hp.agent_history_length_frames} history frames ({misfit}); was it edited? pass a best.pt "
                            "or final.pt written by dqn.train")
        try:
            network.load_state_dict(blob["state_dict"])
        except RuntimeError as exc:
            raise UserError(f"{where} does not fit network {blob['network']!r} ({_one_line(exc)}); "
                            "pass a best.pt or final.pt written by dqn.train") from None
        return cls(network, blob["num_actions"], device=device, history_length_frames=hp.agent_history_length_frames,
                   game=blob["game"], frames=blob["frames"], hyperparameters=hp)

    def q_values(self, states: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(states)).to(self.device)
            return self.network(x).float().cpu().numpy()

    def act(self, states: np.ndarray, rngs: Sequence[np.random.Generator], epsilon: float) -> np.ndarray:
        from dqn.agent import epsilon_greedy

        q = self.q_values(states)
        return np.array([epsilon_greedy(q[i], epsilon, rngs[i]) for i in range(len(rngs))], dtype=np.int64)


def load_weights(path: str | os.PathLike) -> dict[str, Any]:
    """The dict of a weights file with every entry checked (types, finite weights), or a
    UserError of one line that names the file and says what is wrong with it."""
    import torch

    from dqn.config import NETWORKS

    path = Path(path)
    where = f"weights file {str(path)!r}"
    fix = "pass a best.pt or final.pt written by dqn.train"
    if path.is_dir():
        raise UserError(f"{where} is a folder; {fix} (e.g. RUN_DIR/best.pt)")
    if not path.is_file():
        raise UserError(f"{where} does not exist; check the path (e.g. RUN_DIR/best.pt)")
    if path.stat().st_size == 0:
        raise UserError(f"{where} is empty (an interrupted copy?); {fix}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not its own
        raise UserError(f"cannot read {where} ({type(exc).__name__}): it is not a torch file, or a damaged one "
                        f"(truncated?); {fix}") from None
    if not isinstance(blob, dict):
        raise UserError(f"{where} holds a {type(blob).__name__}, not the dict of dqn.train's weights files; {fix}")
    missing = [key for key in WEIGHTS_KEYS if key not in blob]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}: it is not a weights file of dqn.train; {fix}")

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise UserError(f"{where} is damaged or was edited: {what}; {fix}")

    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    need(isinstance(blob["network"], str) and blob["network"] in NETWORKS,
         f"unknown network {blob['network']!r} (valid networks: {', '.join(NETWORKS)})")
    need(is_int(blob["num_actions"]) and blob["num_actions"] >= 1,
         f"num_actions must be a positive integer, got {blob['num_actions']!r}")
    need(isinstance(blob["game"], str) and blob["game"] != "", f"game must be an ALE id, got {blob['game']!r}")
    need(is_int(blob["frames"]) and blob["frames"] >= 0, f"frames must be an integer of 0 or more, got {blob['frames']!r}")
    need(isinstance(blob["hyperparameters"], dict),
         f"hyperparameters must be a dict, got a {type(blob['hyperparameters']).__name__}")
    state_dict = blob["state_dict"]
    need(isinstance(state_dict, dict) and len(state_dict) > 0,
         f"state_dict must be a non-empty dict of tensors, got {_describe(state_dict)}")
    not_tensors = [str(name) for name, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    need(not not_tensors, f"state_dict entries that are not tensors: {_first_few(not_tensors)}")
    # A diverged training saves NaN or infinite weights; they would surface only as NaN
    # Q-values deep inside the first evaluation episode.
    not_finite = [str(name) for name, value in state_dict.items()
                  if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if not_finite:
        raise UserError(f"{where} holds NaN or infinite weights (in {_first_few(not_finite)}): the training that "
                        f"wrote them diverged or the file is damaged; evaluate another snapshot or train again")
    return blob


def _state_dict_misfit(expected: dict[str, Any], given: dict[str, Any]) -> str:
    """What keeps `given` from loading into a network whose state_dict is `expected` ("" if nothing)."""
    missing = [name for name in expected if name not in given]
    unexpected = [str(name) for name in given if name not in expected]
    shapes = [f"{name} {tuple(given[name].shape)} where the network has {tuple(value.shape)}"
              for name, value in expected.items() if name in given and given[name].shape != value.shape]
    problems = []
    if missing:
        problems.append(f"missing {_first_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_first_few(unexpected)}")
    if shapes:
        problems.append(f"shape of {_first_few(shapes)}")
    return "; ".join(problems)


def _first_few(items: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _describe(value: Any) -> str:
    return "an empty dict" if isinstance(value, dict) else f"a {type(value).__name__}"


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (torch's and argparse's can span several)."""
    return " ".join(str(exc).split())
