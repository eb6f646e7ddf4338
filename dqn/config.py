"""Hyperparameters, named after Extended Data Table 1 of Mnih et al. (2015), with their units.

Hyperparameters used in Mnih et al. (2015) are the `nature` preset. Every other preset is a set
of differences from a paper, and `deviations()` lists them from the values themselves, so the
report's deviations table can never drift from the config that ran.

Config is read once, at an entry point (`resolve`), validated there, and passed down as a frozen
`Hyperparameters` object.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

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
        return _replaced(cls(), values)


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


NATURE = Hyperparameters()

# A first run that learns on a 2-core CPU in about 15 minutes: 100,000 agent steps per game, two
# games at once. Only budgets and schedules shrink (the network, optimizer, loss and preprocessing
# are the paper's), every value below shows up, generated, in the report's deviations table, and
# docs/DEMO.md records the scores they give for seeds 0, 1 and 2.
DEMO = dataclasses.replace(
    NATURE,
    # 400,000 frames = 100,000 agent steps: 11 minutes per training, two at once on 2 cores.
    training_length_frames=400_000,
    # Holds the last half of the training's transitions: 354 MB per training.
    replay_memory_size_transitions=50_000,
    replay_start_size_steps=5_000,
    # Final epsilon at agent step 55,000, so the last 45% of training acts at epsilon 0.1.
    final_exploration_frame_steps=50_000,
    target_network_update_frequency_steps=2_000,
    # Four points on the learning curve; one environment plays each evaluation's 40,000 frames
    # (10,000 agent steps, 7 s on one core).
    eval_interval_frames=100_000,
    eval_length_frames=40_000,
    checkpoint_interval_minutes=2.0,
)

PRESETS: dict[str, Hyperparameters] = {"nature": NATURE, "demo": DEMO}
# The paper each preset reproduces or shrinks; deviations are computed against it.
PRESET_REFERENCE: dict[str, str] = {"nature": "nature", "demo": "nature"}


def register_preset(name: str, hp: Hyperparameters, reference: str) -> None:
    PRESETS[name] = hp
    PRESET_REFERENCE[name] = reference


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Hyperparameters))


def _parse_value(name: str, kind: Any, raw: Any) -> Any:
    """Coerce one override to the field's type, or raise a UserError naming the key and the type."""
    kind = kind if isinstance(kind, type) else {"int": int, "float": float, "bool": bool, "str": str}.get(str(kind), kind)

    def fail(expected: str) -> UserError:
        return UserError(f"hyperparameter {name!r} expects {expected}, got {raw!r}")

    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.strip().lower() in ("true", "1", "yes")
        raise fail("a boolean (true or false)")
    if kind is int:
        if isinstance(raw, bool):
            raise fail("an integer")
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
                    raise fail("an integer") from None
                if as_float.is_integer():
                    return int(as_float)
        raise fail("an integer")
    if kind is float:
        if isinstance(raw, bool):
            raise fail("a number")
        if isinstance(raw, (int, float)):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw.strip().replace("_", ""))
            except ValueError:
                raise fail("a number") from None
        raise fail("a number")
    if kind is str:
        if isinstance(raw, str):
            return raw.strip()
        raise fail("a string")
    # action_repeat_frames_per_game: a mapping game -> frames, or "game:frames,game:frames".
    if isinstance(raw, Mapping):
        items = raw.items()
    elif isinstance(raw, str):
        try:
            items = [tuple(part.split(":")) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise fail("a mapping game:frames,...") from None
    else:
        raise fail("a mapping game:frames,...")
    try:
        return tuple(sorted((str(g).strip(), int(v)) for g, v in items))
    except (TypeError, ValueError):
        raise fail("a mapping game:frames,...") from None


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn `["key=value", ...]` (from --set) into a dict, refusing malformed entries."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def resolve(preset: str = "nature", overrides: Mapping[str, Any] | None = None) -> Hyperparameters:
    """The preset with overrides applied and validated. Unknown keys and bad values are UserErrors."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return _replaced(PRESETS[preset], overrides or {})


def _replaced(base: Hyperparameters, overrides: Mapping[str, Any]) -> Hyperparameters:
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


def validate(hp: Hyperparameters) -> None:
    """Refuse values and combinations that cannot run, before any work starts."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    positive_ints = (
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
    for name in positive_ints:
        need(getattr(hp, name) > 0, f"hyperparameter {name!r} must be positive, got {getattr(hp, name)}")
    non_negative = (
        "target_network_update_frequency_steps",
        "final_exploration_frame_steps",
        "replay_start_size_steps",
        "noop_max_frames",
        "eval_length_frames",
        "heldout_states",
    )
    for name in non_negative:
        need(getattr(hp, name) >= 0, f"hyperparameter {name!r} must be zero or positive, got {getattr(hp, name)}")
    for name in ("learning_rate", "checkpoint_interval_minutes"):
        value = getattr(hp, name)
        need(math.isfinite(value) and value > 0, f"hyperparameter {name!r} must be a positive number, got {value}")
    need(hp.min_squared_gradient >= 0, f"hyperparameter 'min_squared_gradient' must be >= 0, got {hp.min_squared_gradient}")
    need(hp.td_error_clip >= 0, f"hyperparameter 'td_error_clip' must be >= 0 (0 = squared error), got {hp.td_error_clip}")
    for name in ("discount_factor", "initial_exploration", "final_exploration", "eval_epsilon"):
        value = getattr(hp, name)
        need(0.0 <= value <= 1.0, f"hyperparameter {name!r} must lie in [0, 1], got {value}")
    for name in ("gradient_momentum", "squared_gradient_momentum"):
        value = getattr(hp, name)
        need(0.0 <= value < 1.0, f"hyperparameter {name!r} must lie in [0, 1), got {value}")
    need(
        hp.final_exploration <= hp.initial_exploration,
        f"final_exploration ({hp.final_exploration}) must not exceed initial_exploration ({hp.initial_exploration})",
    )
    need(
        hp.replay_start_size_steps <= hp.replay_memory_size_transitions,
        f"replay_start_size_steps ({hp.replay_start_size_steps}) must not exceed "
        f"replay_memory_size_transitions ({hp.replay_memory_size_transitions})",
    )
    need(
        hp.replay_start_size_steps >= hp.minibatch_size_transitions,
        f"replay_start_size_steps ({hp.replay_start_size_steps}) must be at least "
        f"minibatch_size_transitions ({hp.minibatch_size_transitions}) so that a first minibatch exists",
    )
    need(
        hp.heldout_states <= max(hp.replay_start_size_steps, 1) or hp.heldout_states == 0,
        f"heldout_states ({hp.heldout_states}) must not exceed replay_start_size_steps ({hp.replay_start_size_steps}), "
        "since they are drawn from the replay memory when learning starts",
    )
    need(
        hp.replay_memory_size_transitions > hp.agent_history_length_frames,
        "replay_memory_size_transitions must exceed agent_history_length_frames",
    )
    need(hp.network in NETWORKS, f"hyperparameter 'network' must be one of {', '.join(NETWORKS)}, got {hp.network!r}")
    need(
        hp.network_init in NETWORK_INITS,
        f"hyperparameter 'network_init' must be one of {', '.join(NETWORK_INITS)}, got {hp.network_init!r}",
    )
    need(
        hp.preprocessing in PREPROCESSINGS,
        f"hyperparameter 'preprocessing' must be one of {', '.join(PREPROCESSINGS)}, got {hp.preprocessing!r}",
    )
    need(
        hp.eval_interval_frames >= hp.action_repeat_frames,
        f"eval_interval_frames ({hp.eval_interval_frames}) must be at least one agent step ({hp.action_repeat_frames} frames)",
    )
    for game, frames in hp.action_repeat_frames_per_game:
        need(frames > 0, f"action_repeat_frames_per_game: {game!r} needs a positive number of frames, got {frames}")


@dataclass(frozen=True)
class Deviation:
    field: str
    paper_value: Any
    this_value: Any
    unit: str
    note: str = ""


def deviations(hp: Hyperparameters, reference: str = "nature") -> list[Deviation]:
    """Every field of `hp` that differs from the `reference` paper's preset, with both values."""
    paper = PAPER_PRESETS[reference]
    notes = PAPER_NOTES.get(reference, {})
    out = []
    for f in fields(Hyperparameters):
        ours, theirs = getattr(hp, f.name), getattr(paper, f.name)
        if ours != theirs:
            out.append(Deviation(f.name, theirs, ours, unit_of(f.name), notes.get(f.name, "")))
    return out


@dataclass(frozen=True)
class ProtocolNote:
    field: str
    value: Any
    unit: str
    note: str


def protocol_notes(reference: str = "nature") -> list[ProtocolNote]:
    """How the reference preset reads the paper where its text, its code or its silence leave a choice."""
    paper = PAPER_PRESETS[reference]
    return [ProtocolNote(name, getattr(paper, name), unit_of(name), note) for name, note in PAPER_NOTES.get(reference, {}).items()]


# The papers, against which deviations are measured (a preset may be registered with its paper).
PAPER_PRESETS: dict[str, Hyperparameters] = {"nature": NATURE}

# Where the Nature paper's text and DeepMind's code disagree, the code wins; these notes are shown
# beside the deviations so the user reads which reading the preset follows.
PAPER_NOTES: dict[str, dict[str, str]] = {
    "nature": {
        "target_network_update_frequency_steps": (
            "Table 1 says 10,000 parameter updates; the code counts agent steps (2,500 updates) and copies the online "
            "network after the update of each step numSteps = 10,000 k (its test numSteps % target_q == 1 runs after the "
            "increment), so the held-out statistics of an evaluation see a target network 10,000 steps old"
        ),
        "training_length_frames": (
            "the paper's '50 million frames' are 50M agent steps in the code, i.e. 200M emulator frames, counted as the "
            "code counted them (4 frames a step, a terminal step included); the first game starts with a random no-op "
            "start (the code's first game started after one null frame)"
        ),
        "final_exploration_frame_steps": "Table 1's 'frame' is an agent step in the code, counted after the replay start",
        "min_squared_gradient": "inside the square root of centered RMSProp, with gradients summed over the minibatch (the code)",
        "noop_max_frames": (
            "1 to 30 no-op frames at the start of each game; in training also after each lost life, as train_agent.lua "
            "called nextRandomGame() after every terminal: 2 to 31 null frames there (newGame's one, then k); the "
            "rewards of no-op and null frames are not counted (train_agent.lua summed the rewards of step() only)"
        ),
        "update_frequency_steps": (
            "in NeuralQLearner:perceive's order: the step's action is chosen with the weights before its update, the "
            "update (numSteps > 50,000, numSteps % 4 == 0, numSteps counted before the step) then runs while the emulator "
            "plays that action; a terminal observation is a step of its own (perceive counts it) with no action"
        ),
        "network_init": (
            "weights and biases uniform in +-1/sqrt(fan_in), Lua torch's reset() of nn.SpatialConvolution(CUDA) and "
            "nn.Linear, which DeepMind's convnet.lua does not override; the paper does not say"
        ),
        "network": "no padding in the first convolution (as DQN Zoo and Dopamine); DeepMind's Lua code padded it by 1, which keeps the output sizes and shifts receptive fields by one pixel",
        "lost_life_terminal": (
            "in training a lost life ends bootstrapping and the action repeat at that frame (alewrap's step(action, "
            "training)), the observation pooling that frame with the one before (alewrap painted every frame); the frame "
            "history is zeroed after it as after a new game (TransitionTable:concatFrames); evaluation plays all 4 frames "
            "and a lost life is not terminal there"
        ),
        "eval_length_frames": (
            "training-time evaluation as train_agent.lua: one environment plays the whole budget at eval_epsilon, episodes "
            "back to back with no-op starts and no length cap, the unfinished last one discarded; the best snapshot is the "
            "first with the highest mean (a tie keeps the earlier one; no completed episode counts as 0). It runs in its own "
            "process with its own environment, so training does not stop for it and its first episode does not finish the "
            "training game (train_agent.lua evaluated in the training environment after game_env:newGame(), which plays "
            "the unfinished training game to its end with random actions)"
        ),
        "replay_memory_size_transitions": (
            "as the code's TransitionTable, one entry per step, terminal observations included, with the frame history "
            "zeroed before the most recent terminal; minibatches are drawn uniformly from the valid transitions at each "
            "update (the code drew 512 at a time and used them over 16 updates, never sampled the first 4 entries of a "
            "run, and could sample across the write pointer of a full memory)"
        ),
        "heldout_states": "held-out transitions drawn when learning starts; average max Q is the mean of max_a Q_target(s', a) over them and the mean absolute clipped TD error is logged beside it, as the code's compute_validation_statistics",
        "preprocessing": "max of the last two RGB frames, luminance Y = 0.299 R + 0.587 G + 0.114 B, bilinear resize of the whole frame to 84x84 (no crop), as the code did",
    }
}


# --- Mnih et al. (2013), "Playing Atari with Deep Reinforcement Learning" (arXiv:1312.5602) ------
#
# The same agent as the Nature preset, with what the 2013 paper states instead: its network and
# preprocessing, no target network, plain squared error, one update per agent step, frame skip 3
# for Space Invaders, 10M "frames" of training and Fig. 2's evaluation. Where the paper is silent
# the preset keeps the Nature paper's constants (DeepMind's own, one paper later) and leaves out
# the Nature paper's additions (no-op starts, a lost life as terminal, a long replay start). The
# paper preset below holds only what the 2013 paper states, so deviations(NIPS2013, "nips2013")
# lists every one of those choices.

NIPS2013 = dataclasses.replace(
    NATURE,
    network="nips2013",
    preprocessing="nips2013",
    target_network_update_frequency_steps=0,
    td_error_clip=0.0,
    update_frequency_steps=1,
    action_repeat_frames_per_game=(("space_invaders", 3),),
    # "10 million frames", read as agent steps (see PAPER_NOTES): 10M steps x 4 frames.
    training_length_frames=40_000_000,
    replay_start_size_steps=100,
    heldout_states=100,
    noop_max_frames=0,
    lost_life_terminal=False,
    # Fig. 2: one epoch is 50,000 updates (= agent steps); each point plays 10,000 steps at eps 0.05.
    eval_interval_frames=200_000,
    eval_length_frames=40_000,
)
register_preset("nips2013", NIPS2013, "nips2013")

# A value the 2013 paper does not give: deviations() then lists the preset's choice beside it.
NOT_STATED = "not stated"

PAPER_PRESETS["nips2013"] = dataclasses.replace(
    NIPS2013,
    # Stated as "frames" without saying whether emulator frames or agent steps.
    replay_memory_size_transitions="1M most recent frames (unit not stated)",
    final_exploration_frame_steps="the first 1M frames (unit not stated)",
    training_length_frames="10M frames (unit not stated)",
    preprocessing="gray, 110x84, an 84x84 crop (rows not stated)",
    discount_factor=NOT_STATED,
    learning_rate=NOT_STATED,
    gradient_momentum=NOT_STATED,
    squared_gradient_momentum=NOT_STATED,
    min_squared_gradient=NOT_STATED,
    replay_start_size_steps=NOT_STATED,
    heldout_states=NOT_STATED,
    final_eval_episodes="a fixed number of steps (not stated)",
    final_eval_max_episode_frames=NOT_STATED,
)

_DEEP_Q_RL = "spragunr/deep_q_rl run_nips.py"
_CAFFE = "muupan/dqn-in-the-caffe"
PAPER_NOTES["nips2013"] = {
    "network": "conv 16 8x8/4, conv 32 4x4/2, fully connected 256, one output per action (Section 4.1); no padding",
    "preprocessing": (
        "grayscale of the last frame of a step (no max-pool is named), bilinear 110x84, crop rows 18..101 of it: the "
        f"paper does not say which rows; 18..101 is {_DEEP_Q_RL}'s crop (keeps Breakout's paddle, drops the score band)"
    ),
    "target_network_update_frequency_steps": "no target network: targets come from the weights being trained (the target network is the Nature paper's)",
    "td_error_clip": "plain squared error (eq. 2), no error clipping (the Nature paper's)",
    "update_frequency_steps": "Algorithm 1: one minibatch update per agent step",
    "action_repeat_frames_per_game": "k = 4 frames, 3 for Space Invaders (at 4 its lasers blink out of sight)",
    "training_length_frames": (
        "'10 million frames' read as agent steps, as the Nature code counts its 'frames' and as "
        f"{_DEEP_Q_RL} does: 40M emulator frames at k = 4; Space Invaders (k = 3) keeps the 10M agent steps, i.e. 30M "
        "emulator frames. Fig. 2 "
        "(100 epochs x 50,000 updates = 5M) fits neither reading"
    ),
    "replay_memory_size_transitions": f"'the one million most recent frames': one stored frame per agent step, so 1M transitions (the Nature code, {_DEEP_Q_RL})",
    "final_exploration_frame_steps": f"epsilon 1 -> 0.1 over 'the first million frames', read as agent steps ({_DEEP_Q_RL}: EPSILON_DECAY = 1,000,000 steps), counted from the replay start",
    "replay_start_size_steps": (
        f"none stated (Algorithm 1 learns from the first step); 100 random steps, as {_DEEP_Q_RL} "
        f"(REPLAY_START_SIZE = 100) and {_CAFFE} (memory_threshold = 100)"
    ),
    "heldout_states": "Fig. 2's 'fixed set of states' collected by a random policy before training: its size is not stated; 100 transitions of the replay start, with average max Q on their next states as the Nature code computed it (the online network bootstraps: no target network)",
    "discount_factor": f"not stated; 0.99 as the Nature paper ({_DEEP_Q_RL} and {_CAFFE} use 0.95)",
    "learning_rate": (
        "not stated; 0.00025 as the Nature paper, whose Extended Data Table 3 trains this configuration (replay, no "
        f"target network) with it; {_DEEP_Q_RL} uses 0.0002 with its own RMSProp"
    ),
    "gradient_momentum": f"RMSProp is named, its constants are not; DeepMind's centered RMSProp with the Nature constants ({_DEEP_Q_RL}: uncentered, decay 0.99, epsilon 1e-6)",
    "squared_gradient_momentum": "not stated; 0.95 as the Nature paper",
    "min_squared_gradient": "not stated; 0.01 inside the square root with gradients summed over the minibatch, as the Nature code",
    "noop_max_frames": f"no no-op starts: the paper has none (the Nature paper introduced them); {_DEEP_Q_RL}: MAX_START_NULLOPS = 0",
    "lost_life_terminal": f"a lost life does not end bootstrapping: Algorithm 1's terminal is the end of the game ({_DEEP_Q_RL}: DEATH_ENDS_EPISODE = false)",
    "eval_interval_frames": "one Fig. 2 epoch: 50,000 minibatch updates = 50,000 agent steps = 200,000 frames at k = 4",
    "eval_length_frames": "Fig. 2: epsilon 0.05 for 10,000 agent steps = 40,000 frames at k = 4 (30,000 frames for Space Invaders)",
    "eval_epsilon": "epsilon = 0.05 in Table 1 and Fig. 2",
    "final_eval_episodes": (
        "Table 1 plays epsilon 0.05 'for a fixed number of steps' (not stated) and reports the average total reward; "
        "here 30 whole episodes. 'DQN Best' is the best single episode of that policy"
    ),
    "final_eval_max_episode_frames": "no episode cap stated; the Nature paper's 5 minutes (18,000 frames) keeps every evaluation finite",
}
