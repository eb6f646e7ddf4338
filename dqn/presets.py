"""The presets: the papers' hyperparameters and the smaller runs built from them, with the notes
that say how each paper's text and DeepMind's code were read, and the deviations of any config
from a paper, computed from the values themselves.

Hyperparameters used in Mnih et al. (2015) are the `nature` preset. Every other preset is a set
of differences from a paper, and `deviations()` lists them from the values themselves, so the
report's deviations table can never drift from the config that ran.

Every preset holds real values of the dataclass's types. Where a paper states a value in words
that leave its unit open, or does not state it at all, its paper preset holds the reading this
project runs, and PAPER_WORDING keeps the paper's own words: the deviations table shows those
words as the paper's value, so every such reading is listed, with its note.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from dqn.hyperparameters import Hyperparameters, unit_of

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

# --- Mnih et al. (2013), "Playing Atari with Deep Reinforcement Learning" (arXiv:1312.5602) ------
#
# The same agent as the Nature preset, with what the 2013 paper states instead: its network and
# preprocessing, no target network, plain squared error, one update per agent step, frame skip 3
# for Space Invaders, 10M "frames" of training and Fig. 2's evaluation. Where the paper is silent
# the preset keeps the Nature paper's constants (DeepMind's own, one paper later) and leaves out
# the Nature paper's additions (no-op starts, a lost life as terminal, a long replay start).
# PAPER_WORDING["nips2013"] holds the paper's words for each value it leaves open, so
# deviations(NIPS2013, "nips2013") lists every one of those choices.
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

PRESETS: dict[str, Hyperparameters] = {"nature": NATURE, "demo": DEMO, "nips2013": NIPS2013}
# The paper each preset reproduces or shrinks; deviations are computed against it.
PRESET_REFERENCE: dict[str, str] = {"nature": "nature", "demo": "nature", "nips2013": "nips2013"}
# The papers, against which deviations are measured (a preset may be registered with its paper).
PAPER_PRESETS: dict[str, Hyperparameters] = {"nature": NATURE, "nips2013": NIPS2013}


def register_preset(name: str, hp: Hyperparameters, reference: str) -> None:
    PRESETS[name] = hp
    PRESET_REFERENCE[name] = reference


# A value the 2013 paper does not give: deviations() then lists the preset's choice beside it.
NOT_STATED = "not stated"

# A paper's own words for a value it leaves open (a unit it does not name, or no value at all):
# shown as the paper's value in place of the reading its preset holds.
PAPER_WORDING: dict[str, dict[str, str]] = {
    "nature": {},
    "nips2013": {
        # Stated as "frames" without saying whether emulator frames or agent steps.
        "replay_memory_size_transitions": "1M most recent frames (unit not stated)",
        "final_exploration_frame_steps": "the first 1M frames (unit not stated)",
        "training_length_frames": "10M frames (unit not stated)",
        "preprocessing": "gray, 110x84, an 84x84 crop (rows not stated)",
        "discount_factor": NOT_STATED,
        "learning_rate": NOT_STATED,
        "gradient_momentum": NOT_STATED,
        "squared_gradient_momentum": NOT_STATED,
        "min_squared_gradient": NOT_STATED,
        "replay_start_size_steps": NOT_STATED,
        "heldout_states": NOT_STATED,
        "final_eval_episodes": "a fixed number of steps (not stated)",
        "final_eval_max_episode_frames": NOT_STATED,
    },
}


def paper_value(reference: str, name: str) -> Any:
    """The `reference` paper's value of the field `name`: its own words where it leaves the value
    open (PAPER_WORDING), else its preset's value."""
    wording = PAPER_WORDING.get(reference, {})
    return wording[name] if name in wording else getattr(PAPER_PRESETS[reference], name)


@dataclass(frozen=True)
class Deviation:
    field: str
    paper_value: Any
    this_value: Any
    unit: str
    note: str = ""


def deviations(hp: Hyperparameters, reference: str = "nature") -> list[Deviation]:
    """Every field of `hp` that differs from the `reference` paper's value, with both values."""
    notes = PAPER_NOTES.get(reference, {})
    out = []
    for f in fields(Hyperparameters):
        ours, theirs = getattr(hp, f.name), paper_value(reference, f.name)
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
    return [ProtocolNote(name, paper_value(reference, name), unit_of(name), note)
            for name, note in PAPER_NOTES.get(reference, {}).items()]


# ---------------------------------------------------------------------------- the notes
# Where the Nature paper's text and DeepMind's code disagree, the code wins; these notes are shown
# beside the deviations so the user reads which reading the preset follows.
_NATURE_NOTES: dict[str, str] = {
    "target_network_update_frequency_steps": (
        "Table 1 says 10,000 parameter updates; the code counts agent steps (2,500 updates) and copies "
        "the online network after the update of each step numSteps = 10,000 k (its test numSteps % "
        "target_q == 1 runs after the increment), so the held-out statistics of an evaluation see a "
        "target network 10,000 steps old"
    ),
    "training_length_frames": (
        "the paper's '50 million frames' are 50M agent steps in the code, i.e. 200M emulator frames, "
        "counted as the code counted them (4 frames a step, a terminal step included); the first game "
        "starts with a random no-op start (the code's first game started after one null frame)"
    ),
    "final_exploration_frame_steps": (
        "Table 1's 'frame' is an agent step in the code, counted after the replay start"
    ),
    "min_squared_gradient": (
        "inside the square root of centered RMSProp, with gradients summed over the minibatch (the "
        "code)"
    ),
    "noop_max_frames": (
        "1 to 30 no-op frames at the start of each game; in training also after each lost life, as "
        "train_agent.lua called nextRandomGame() after every terminal: 2 to 31 null frames there "
        "(newGame's one, then k); the rewards of no-op and null frames are not counted (train_agent.lua "
        "summed the rewards of step() only)"
    ),
    "update_frequency_steps": (
        "in NeuralQLearner:perceive's order: the step's action is chosen with the weights before its "
        "update, the update (numSteps > 50,000, numSteps % 4 == 0, numSteps counted before the step) "
        "then runs while the emulator plays that action; a terminal observation is a step of its own "
        "(perceive counts it) with no action"
    ),
    "network_init": (
        "weights and biases uniform in +-1/sqrt(fan_in), Lua torch's reset() of "
        "nn.SpatialConvolution(CUDA) and nn.Linear, which DeepMind's convnet.lua does not override; the "
        "paper does not say"
    ),
    "network": (
        "no padding in the first convolution (as DQN Zoo and Dopamine); DeepMind's Lua code padded it "
        "by 1, which keeps the output sizes and shifts receptive fields by one pixel"
    ),
    "lost_life_terminal": (
        "in training a lost life ends bootstrapping and the action repeat at that frame (alewrap's "
        "step(action, training)), the observation pooling that frame with the one before (alewrap "
        "painted every frame); the frame history is zeroed after it as after a new game "
        "(TransitionTable:concatFrames); evaluation plays all 4 frames and a lost life is not terminal "
        "there"
    ),
    "eval_length_frames": (
        "training-time evaluation as train_agent.lua: one environment plays the whole budget at "
        "eval_epsilon, episodes back to back with no-op starts and no length cap, the unfinished last "
        "one discarded; the best snapshot is the first with the highest mean (a tie keeps the earlier "
        "one; no completed episode counts as 0). It runs in its own process with its own environment, "
        "so training does not stop for it and its first episode does not finish the training game "
        "(train_agent.lua evaluated in the training environment after game_env:newGame(), which plays "
        "the unfinished training game to its end with random actions)"
    ),
    "replay_memory_size_transitions": (
        "as the code's TransitionTable, one entry per step, terminal observations included, with the "
        "frame history zeroed before the most recent terminal; minibatches are drawn uniformly from the "
        "valid transitions at each update (the code drew 512 at a time and used them over 16 updates, "
        "never sampled the first 4 entries of a run, and could sample across the write pointer of a "
        "full memory)"
    ),
    "heldout_states": (
        "held-out transitions drawn when learning starts; average max Q is the mean of max_a "
        "Q_target(s', a) over them and the mean absolute clipped TD error is logged beside it, as the "
        "code's compute_validation_statistics"
    ),
    "preprocessing": (
        "max of the last two RGB frames, luminance Y = 0.299 R + 0.587 G + 0.114 B, bilinear resize of "
        "the whole frame to 84x84 (no crop), as the code did"
    ),
}

# How each 2013 value was read; spragunr/deep_q_rl's run_nips.py and muupan/dqn-in-the-caffe are
# public reimplementations of the 2013 paper, cited where they fix a value the paper leaves open.
_NIPS2013_NOTES: dict[str, str] = {
    "network": (
        "conv 16 8x8/4, conv 32 4x4/2, fully connected 256, one output per action (Section 4.1); no "
        "padding"
    ),
    "preprocessing": (
        "grayscale of the last frame of a step (no max-pool is named), bilinear 110x84, crop rows "
        "18..101 of it: the paper does not say which rows; 18..101 is spragunr/deep_q_rl run_nips.py's "
        "crop (keeps Breakout's paddle, drops the score band)"
    ),
    "target_network_update_frequency_steps": (
        "no target network: targets come from the weights being trained (the target network is the "
        "Nature paper's)"
    ),
    "td_error_clip": "plain squared error (eq. 2), no error clipping (the Nature paper's)",
    "update_frequency_steps": "Algorithm 1: one minibatch update per agent step",
    "action_repeat_frames_per_game": (
        "k = 4 frames, 3 for Space Invaders (at 4 its lasers blink out of sight)"
    ),
    "training_length_frames": (
        "'10 million frames' read as agent steps, as the Nature code counts its 'frames' and as "
        "spragunr/deep_q_rl run_nips.py does: 40M emulator frames at k = 4; Space Invaders (k = 3) "
        "keeps the 10M agent steps, i.e. 30M emulator frames. Fig. 2 (100 epochs x 50,000 updates = 5M) "
        "fits neither reading"
    ),
    "replay_memory_size_transitions": (
        "'the one million most recent frames': one stored frame per agent step, so 1M transitions (the "
        "Nature code, spragunr/deep_q_rl run_nips.py)"
    ),
    "final_exploration_frame_steps": (
        "epsilon 1 -> 0.1 over 'the first million frames', read as agent steps (spragunr/deep_q_rl "
        "run_nips.py: EPSILON_DECAY = 1,000,000 steps), counted from the replay start"
    ),
    "replay_start_size_steps": (
        "none stated (Algorithm 1 learns from the first step); 100 random steps, as spragunr/deep_q_rl "
        "run_nips.py (REPLAY_START_SIZE = 100) and muupan/dqn-in-the-caffe (memory_threshold = 100)"
    ),
    "heldout_states": (
        "Fig. 2's 'fixed set of states' collected by a random policy before training: its size is not "
        "stated; 100 transitions of the replay start, with average max Q on their next states as the "
        "Nature code computed it (the online network bootstraps: no target network)"
    ),
    "discount_factor": (
        "not stated; 0.99 as the Nature paper (spragunr/deep_q_rl run_nips.py and "
        "muupan/dqn-in-the-caffe use 0.95)"
    ),
    "learning_rate": (
        "not stated; 0.00025 as the Nature paper, whose Extended Data Table 3 trains this configuration "
        "(replay, no target network) with it; spragunr/deep_q_rl run_nips.py uses 0.0002 with its own "
        "RMSProp"
    ),
    "gradient_momentum": (
        "RMSProp is named, its constants are not; DeepMind's centered RMSProp with the Nature constants "
        "(spragunr/deep_q_rl run_nips.py: uncentered, decay 0.99, epsilon 1e-6)"
    ),
    "squared_gradient_momentum": "not stated; 0.95 as the Nature paper",
    "min_squared_gradient": (
        "not stated; 0.01 inside the square root with gradients summed over the minibatch, as the "
        "Nature code"
    ),
    "noop_max_frames": (
        "no no-op starts: the paper has none (the Nature paper introduced them); spragunr/deep_q_rl "
        "run_nips.py: MAX_START_NULLOPS = 0"
    ),
    "lost_life_terminal": (
        "a lost life does not end bootstrapping: Algorithm 1's terminal is the end of the game "
        "(spragunr/deep_q_rl run_nips.py: DEATH_ENDS_EPISODE = false)"
    ),
    "eval_interval_frames": (
        "one Fig. 2 epoch: 50,000 minibatch updates = 50,000 agent steps = 200,000 frames at k = 4"
    ),
    "eval_length_frames": (
        "Fig. 2: epsilon 0.05 for 10,000 agent steps = 40,000 frames at k = 4 (30,000 frames for Space "
        "Invaders)"
    ),
    "eval_epsilon": "epsilon = 0.05 in Table 1 and Fig. 2",
    "final_eval_episodes": (
        "Table 1 plays epsilon 0.05 'for a fixed number of steps' (not stated) and reports the average "
        "total reward; here 30 whole episodes. 'DQN Best' is the best single episode of that policy"
    ),
    "final_eval_max_episode_frames": (
        "no episode cap stated; the Nature paper's 5 minutes (18,000 frames) keeps every evaluation "
        "finite"
    ),
}

PAPER_NOTES: dict[str, dict[str, str]] = {"nature": _NATURE_NOTES, "nips2013": _NIPS2013_NOTES}
