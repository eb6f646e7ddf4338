"""Hyperparameters, named after Extended Data Table 1 of Mnih et al. (2015), with their units;
their parsing from the command line or a saved config, and their validation.

The values of each paper and of the smaller presets are dqn/presets.py's; dqn/config.py is the
entry points' way in (`resolve`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

from dqn.errors import UserError

NETWORKS = ("nature", "nips2013", "mlp")
PREPROCESSINGS = ("nature", "nips2013")
# "lua": Lua torch's reset(), which DeepMind's code kept; "he_normal": He et al. (2015), as nnabla-rl.
NETWORK_INITS = ("lua", "he_normal")


@dataclass(frozen=True)
class Hyperparameters:
    # --- Extended Data Table 1 (names as in the table, units as DeepMind's code counts them) ---
    minibatch_size_transitions: int = 32
    replay_memory_size_transitions: int = 1_000_000
    agent_history_length_frames: int = 4
    # The table says "parameter updates"; the code counts agent steps (10,000 steps = 2,500 updates).
    # 0 means no target network: targets come from the online network (the 2013 paper).
    target_network_update_frequency_steps: int = 10_000
    discount_factor: float = 0.99
    action_repeat_frames: int = 4
    update_frequency_steps: int = 4
    learning_rate: float = 0.00025
    gradient_momentum: float = 0.95
    squared_gradient_momentum: float = 0.95
    # Added inside the square root of DeepMind's centered RMSProp, with gradients summed over
    # the minibatch (see dqn/optim.py).
    min_squared_gradient: float = 0.01
    initial_exploration: float = 1.0
    final_exploration: float = 0.1
    # "Final exploration frame": agent steps of linear decay, counted after the replay start.
    final_exploration_frame_steps: int = 1_000_000
    replay_start_size_steps: int = 50_000
    noop_max_frames: int = 30
    # The paper's "50 million frames" are 50M agent steps in the code, i.e. 200M emulator frames.
    training_length_frames: int = 200_000_000

    # --- The protocol outside Table 1 (Methods and the code) ---
    network: str = "nature"
    # How the layers' weights and biases are drawn before training (dqn/networks.py).
    network_init: str = "lua"
    preprocessing: str = "nature"
    # TD errors clipped to [-clip, clip] (the gradient of a Huber loss); 0 means squared error.
    td_error_clip: float = 1.0
    # A lost life ends bootstrapping (not the game) during training.
    lost_life_terminal: bool = True
    # Training-time evaluation (Fig. 2): every 1M frames, 500k frames at epsilon 0.05.
    eval_interval_frames: int = 1_000_000
    eval_length_frames: int = 500_000
    eval_epsilon: float = 0.05
    heldout_states: int = 500
    # Final evaluation (Extended Data Table 2): 30 episodes of at most 5 minutes.
    final_eval_episodes: int = 30
    final_eval_max_episode_frames: int = 18_000
    # Wall-clock interval between full checkpoints (weights, optimizer, replay, RNG, counters).
    checkpoint_interval_minutes: float = 30.0
    # Per-game action repeat, e.g. (("space_invaders", 3),) for the 2013 paper.
    action_repeat_frames_per_game: tuple[tuple[str, int], ...] = ()

    # -- derived quantities, in agent steps --
    @property
    def training_length_steps(self) -> int:
        return self.training_length_frames // self.action_repeat_frames

    @property
    def eval_interval_steps(self) -> int:
        return self.eval_interval_frames // self.action_repeat_frames

    @property
    def eval_length_steps(self) -> int:
        return self.eval_length_frames // self.action_repeat_frames

    @property
    def uses_target_network(self) -> bool:
        return self.target_network_update_frequency_steps > 0

    def for_game(self, game: str) -> "Hyperparameters":
        """These hyperparameters with the per-game overrides of `game` applied.

        A game with another action repeat keeps the same budgets in agent steps (training,
        evaluation interval and length), so its budgets in frames scale with its repeat; the
        5-minute evaluation cap stays a number of emulator frames.
        """
        repeat = dict(self.action_repeat_frames_per_game).get(game)
        if repeat is None or repeat == self.action_repeat_frames:
            return self

        def same_steps(frames: int) -> int:
            return frames // self.action_repeat_frames * repeat

        return dataclasses.replace(
            self,
            action_repeat_frames=repeat,
            training_length_frames=same_steps(self.training_length_frames),
            eval_interval_frames=same_steps(self.eval_interval_frames),
            eval_length_frames=same_steps(self.eval_length_frames),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["action_repeat_frames_per_game"] = dict(self.action_repeat_frames_per_game)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Hyperparameters":
        """The hyperparameters `to_dict` saved (a config.json, a weights file), validated: an
        unknown key is an error, a key the dict lacks keeps the dataclass default."""
        return replaced(cls(), values)


# Units for the deviations table, read off the field names' suffixes.
_UNITS = {
    "_transitions": "transitions",
    "_frames": "frames",
    "_steps": "agent steps",
    "_minutes": "minutes",
}


def unit_of(name: str) -> str:
    for suffix, unit in _UNITS.items():
        if name.endswith(suffix):
            return unit
    return ""


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Hyperparameters))


class _Unparsable(Exception):
    """A value that is not of the field's type; `expected` names the type for the user."""

    def __init__(self, expected: str):
        super().__init__(expected)
        self.expected = expected


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return raw.strip().lower() in ("true", "1", "yes")
    raise _Unparsable("a boolean (true or false)")


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _Unparsable("an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise _Unparsable("an integer") from None
            if as_float.is_integer():
                return int(as_float)
    raise _Unparsable("an integer")


def _parse_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise _Unparsable("a number")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip().replace("_", ""))
        except ValueError:
            raise _Unparsable("a number") from None
    raise _Unparsable("a number")


def _parse_str(raw: Any) -> str:
    if isinstance(raw, str):
        return raw.strip()
    raise _Unparsable("a string")


def _parse_per_game(raw: Any) -> tuple[tuple[str, int], ...]:
    """action_repeat_frames_per_game: a mapping game -> frames, or "game:frames,game:frames"."""
    expected = "a mapping game:frames,..."
    if isinstance(raw, Mapping):
        items = raw.items()
    elif isinstance(raw, str):
        try:
            items = [tuple(part.split(":")) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise _Unparsable(expected) from None
    else:
        raise _Unparsable(expected)
    try:
        return tuple(sorted((str(g).strip(), int(v)) for g, v in items))
    except (TypeError, ValueError):
        raise _Unparsable(expected) from None


_PARSERS: dict[Any, Callable[[Any], Any]] = {bool: _parse_bool, int: _parse_int, float: _parse_float, str: _parse_str}


def _parse_value(name: str, kind: Any, raw: Any) -> Any:
    """Coerce one override to the field's type, or raise a UserError naming the key and the type."""
    kind = kind if isinstance(kind, type) else {"int": int, "float": float, "bool": bool, "str": str}.get(str(kind), kind)
    try:
        return _PARSERS.get(kind, _parse_per_game)(raw)
    except _Unparsable as exc:
        raise UserError(f"hyperparameter {name!r} expects {exc.expected}, got {raw!r}") from None


def replaced(base: Hyperparameters, overrides: Mapping[str, Any]) -> Hyperparameters:
    """`base` with `overrides` (strings from the command line, or typed values) parsed, applied and validated."""
    types = {f.name: f.type for f in fields(Hyperparameters)}
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in types:
            close = difflib.get_close_matches(key, types, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; valid keys: {', '.join(types)}"
            raise UserError(f"unknown hyperparameter {key!r}{hint}")
        changes[key] = _parse_value(key, types[key], raw)
    hp = dataclasses.replace(base, **changes)
    validate(hp)
    return hp


# ---------------------------------------------------------------------------- validation
def _need(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


_POSITIVE_INTS = (
    "minibatch_size_transitions",
    "replay_memory_size_transitions",
    "agent_history_length_frames",
    "action_repeat_frames",
    "update_frequency_steps",
    "training_length_frames",
    "eval_interval_frames",
    "final_eval_episodes",
    "final_eval_max_episode_frames",
)
_NON_NEGATIVE = (
    "target_network_update_frequency_steps",
    "final_exploration_frame_steps",
    "replay_start_size_steps",
    "noop_max_frames",
    "eval_length_frames",
    "heldout_states",
)


def validate(hp: Hyperparameters) -> None:
    """Refuse values and combinations that cannot run, before any work starts."""
    _validate_ranges(hp)
    _validate_combinations(hp)
    _validate_choices(hp)
    _validate_action_repeats(hp)


def _validate_ranges(hp: Hyperparameters) -> None:
    """Each value on its own: signs, probabilities, momenta."""
    for name in _POSITIVE_INTS:
        _need(getattr(hp, name) > 0, f"hyperparameter {name!r} must be positive, got {getattr(hp, name)}")
    for name in _NON_NEGATIVE:
        _need(getattr(hp, name) >= 0, f"hyperparameter {name!r} must be zero or positive, got {getattr(hp, name)}")
    for name in ("learning_rate", "checkpoint_interval_minutes"):
        value = getattr(hp, name)
        _need(math.isfinite(value) and value > 0, f"hyperparameter {name!r} must be a positive number, got {value}")
    _need(hp.min_squared_gradient >= 0,
          f"hyperparameter 'min_squared_gradient' must be >= 0, got {hp.min_squared_gradient}")
    _need(hp.td_error_clip >= 0,
          f"hyperparameter 'td_error_clip' must be >= 0 (0 = squared error), got {hp.td_error_clip}")
    for name in ("discount_factor", "initial_exploration", "final_exploration", "eval_epsilon"):
        value = getattr(hp, name)
        _need(0.0 <= value <= 1.0, f"hyperparameter {name!r} must lie in [0, 1], got {value}")
    for name in ("gradient_momentum", "squared_gradient_momentum"):
        value = getattr(hp, name)
        _need(0.0 <= value < 1.0, f"hyperparameter {name!r} must lie in [0, 1), got {value}")


def _validate_combinations(hp: Hyperparameters) -> None:
    """Values that must agree with one another."""
    _need(
        hp.final_exploration <= hp.initial_exploration,
        f"final_exploration ({hp.final_exploration}) must not exceed initial_exploration ({hp.initial_exploration})",
    )
    _need(
        hp.replay_start_size_steps <= hp.replay_memory_size_transitions,
        f"replay_start_size_steps ({hp.replay_start_size_steps}) must not exceed "
        f"replay_memory_size_transitions ({hp.replay_memory_size_transitions})",
    )
    _need(
        hp.replay_start_size_steps >= hp.minibatch_size_transitions,
        f"replay_start_size_steps ({hp.replay_start_size_steps}) must be at least "
        f"minibatch_size_transitions ({hp.minibatch_size_transitions}) so that a first minibatch exists",
    )
    _need(
        hp.heldout_states <= max(hp.replay_start_size_steps, 1) or hp.heldout_states == 0,
        f"heldout_states ({hp.heldout_states}) must not exceed replay_start_size_steps ({hp.replay_start_size_steps}), "
        "since they are drawn from the replay memory when learning starts",
    )
    _need(
        hp.replay_memory_size_transitions > hp.agent_history_length_frames,
        "replay_memory_size_transitions must exceed agent_history_length_frames",
    )


def _validate_choices(hp: Hyperparameters) -> None:
    """The named choices: network, its initialisation, preprocessing."""
    for name, valid in (("network", NETWORKS), ("network_init", NETWORK_INITS), ("preprocessing", PREPROCESSINGS)):
        value = getattr(hp, name)
        _need(value in valid, f"hyperparameter {name!r} must be one of {', '.join(valid)}, got {value!r}")


def _validate_action_repeats(hp: Hyperparameters) -> None:
    """An evaluation interval of at least one agent step; every per-game repeat positive."""
    _need(
        hp.eval_interval_frames >= hp.action_repeat_frames,
        f"eval_interval_frames ({hp.eval_interval_frames}) must be at least one agent step "
        f"({hp.action_repeat_frames} frames)",
    )
    for game, frames in hp.action_repeat_frames_per_game:
        _need(frames > 0, f"action_repeat_frames_per_game: {game!r} needs a positive number of frames, got {frames}")
