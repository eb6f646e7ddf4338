"""The Atari environment with the paper's preprocessing, on `ale_py.ALEInterface` directly.

The agent does the action repeat itself (ALE's `frame_skip` is 1 and sticky actions are off), so
every emulator frame, every screen grab and every frame count is under this module's control:

- `AtariEnv.step` plays one action for `action_repeat_frames` frames, sums the raw rewards, and
  returns one preprocessed 84x84 uint8 frame. A lost life is reported, and the game goes on:
  `episode_return` is the raw score of the whole game. With `end_step_at_life_loss` (training,
  where a lost life is terminal) the action repeat stops at the frame where the life was lost,
  as alewrap's `step(action, training)` did; evaluation plays all the frames of the step.
- `AtariEnv.reset` starts a game with a uniform random number of no-op frames (1..noop_max).
  `episode_return` counts the rewards of `step` only, not those of the no-op frames, as
  `train_agent.lua` added up only the rewards `step()` returned.
- `AtariEnv.restart_after_terminal` is what DeepMind's training loop did after every terminal
  step, a lost life included: alewrap's `nextRandomGame()` (null frames, the screen buffer
  cleared; see its docstring for the count).
- `max_episode_frames` cuts an episode at exactly that many emulator frames (the no-op start
  included), even in the middle of an action repeat: the 5-minute cut of the paper's evaluation.
- `get_state`/`set_state` hold everything needed to continue the same trajectory after a restart;
  the state holds only Python builtins (ints, floats, bools, str, bytes, dicts), so it can be
  saved with `torch.save` and read back with `torch.load(weights_only=True)`.

`FrameStack` keeps the agent's state: the last 4 preprocessed frames, zeros before an episode start.
The preprocessing of the screens (Nature's and the 2013 paper's) is dqn/preprocessing.py.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np

from dqn.config import PREPROCESSINGS
from dqn.errors import UserError
from dqn.games import check_game
# The preprocessing's names, where tests and callers have always found them.
from dqn.preprocessing import (  # noqa: F401
    FRAME_SHAPE,
    FRAMES_POOLED,
    NIPS2013_CROP_ROWS,
    NIPS2013_CROP_TOP_ROW,
    NIPS2013_DOWNSAMPLED_SHAPE,
    SCREEN_HEIGHT,
    SCREEN_SHAPE_RGB,
    SCREEN_WIDTH,
    preprocess_nature,
    preprocess_nips2013,
)

class Step(NamedTuple):
    frame: np.ndarray  # newest preprocessed frame, (84, 84) uint8
    reward: float  # raw (unclipped) sum of the rewards of the step's frames
    life_lost: bool  # lives() decreased during the step; the game goes on
    game_over: bool  # the game ended; call reset()
    truncated: bool  # max_episode_frames ended the episode (and the game did not end then)


class Restart(NamedTuple):
    """What `restart_after_terminal` returns."""

    frame: np.ndarray  # the first observation after the terminal one
    game_over: bool  # that observation is itself terminal: the game ended on the last null frame
    ended_game_return: float | None  # a game that ended during the null frames: its score, else None


def _make_ale():
    from ale_py import ALEInterface, LoggerMode

    # The logger mode is global; Error hides the banner and the ROM details printed on load.
    ALEInterface.setLoggerMode(LoggerMode.Error)
    return ALEInterface()


def _check_arguments(preprocessing: str, action_repeat_frames: int, noop_max_frames: int,
                     max_episode_frames: int | None) -> None:
    if preprocessing not in PREPROCESSINGS:
        raise UserError(f"unknown preprocessing {preprocessing!r}; use one of {', '.join(PREPROCESSINGS)}")
    if action_repeat_frames < 1:
        raise UserError(f"action_repeat_frames must be at least 1, got {action_repeat_frames}")
    if noop_max_frames < 0:
        raise UserError(f"noop_max_frames must be 0 or more, got {noop_max_frames}")
    if max_episode_frames is not None and max_episode_frames <= noop_max_frames:
        raise UserError(
            f"max_episode_frames ({max_episode_frames}) must exceed noop_max_frames ({noop_max_frames}) "
            "so that an episode has room for a step after its no-op start"
        )


class AtariEnv:
    """One Atari game, stepped by agent steps of `action_repeat_frames` emulator frames.

    `ale` is for tests: an object with the `ALEInterface` methods used here (setInt, setFloat,
    loadROM, getMinimalActionSet, act, game_over, lives, reset_game, getScreenRGB, cloneState,
    restoreState), whose `cloneState()` result has `serialize() -> bytes` and whose type can be
    built back from those bytes, as `ale_py.ALEState` can.
    """

    def __init__(
        self,
        game: str,
        *,
        seed: int,
        action_repeat_frames: int = 4,
        noop_max_frames: int = 30,
        preprocessing: str = "nature",
        max_episode_frames: int | None = None,
        ale: Any = None,
        end_step_at_life_loss: bool = False,
    ):
        self.game = check_game(game)
        _check_arguments(preprocessing, action_repeat_frames, noop_max_frames, max_episode_frames)
        self.seed = int(seed)
        self.action_repeat_frames = int(action_repeat_frames)
        self.noop_max_frames = int(noop_max_frames)
        self.preprocessing = preprocessing
        self.max_episode_frames = None if max_episode_frames is None else int(max_episode_frames)
        self.end_step_at_life_loss = bool(end_step_at_life_loss)
        self._frames_pooled = FRAMES_POOLED[preprocessing]

        # One seed, two independent streams: ALE's own RNG and the no-op starts.
        ale_seed_sequence, noop_seed_sequence = np.random.SeedSequence(self.seed).spawn(2)
        ale_seed = int(ale_seed_sequence.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)
        self._noop_rng = np.random.default_rng(noop_seed_sequence)

        self._load_game(_make_ale() if ale is None else ale, ale_seed)

        # Screens of the last grabbed frames, swapped rather than copied; frame indices count
        # from reset_game() (its screen is frame 0), None before the first grab of an episode.
        self._screen_last = np.zeros(SCREEN_SHAPE_RGB, np.uint8)
        self._screen_previous = np.zeros(SCREEN_SHAPE_RGB, np.uint8)
        self._screen_last_frame: int | None = None
        self._screen_previous_adjacent = False  # holds the frame just before the last one
        self._pooled_buffer = np.empty(SCREEN_SHAPE_RGB, np.uint8)
        self._gray_buffer = np.empty((SCREEN_HEIGHT, SCREEN_WIDTH), np.uint8)

        self.episode_frames = 0
        self.noop_frames = 0
        self.episode_return = 0.0
        self.total_frames = 0
        self._lives = self._ale.lives()
        self._needs_reset = True

    def _load_game(self, ale: Any, ale_seed: int) -> None:
        """The game's ROM in `ale`, seeded, without sticky actions or ALE's own frame skip; its minimal action set."""
        from ale_py import roms

        self._ale = ale
        self._ale.setInt("random_seed", ale_seed)
        self._ale.setFloat("repeat_action_probability", 0.0)  # no sticky actions (the paper had none)
        self._ale.setInt("frame_skip", 1)  # the action repeat is ours, frame by frame
        self._ale.loadROM(str(roms.get_rom_path(self.game)))
        self._ale_state_type = type(self._ale.cloneState())

        self._actions = list(self._ale.getMinimalActionSet())
        self.action_names: list[str] = [a.name for a in self._actions]
        if not self.action_names or self.action_names[0] != "NOOP":
            raise RuntimeError(f"{self.game}: action 0 of the minimal action set is {self.action_names[:1]}, not NOOP")
        self.num_actions = len(self._actions)

    # -- screens ---------------------------------------------------------------------------

    def _grab_screen(self, frame: int) -> None:
        self._screen_previous, self._screen_last = self._screen_last, self._screen_previous
        self._ale.getScreenRGB(self._screen_last)
        self._screen_previous_adjacent = self._screen_last_frame == frame - 1
        self._screen_last_frame = frame

    def _observe(self) -> np.ndarray:
        if self.preprocessing == "nature":
            previous = self._screen_previous if self._screen_previous_adjacent else None
            return preprocess_nature(previous, self._screen_last, self._pooled_buffer, self._gray_buffer)
        return preprocess_nips2013(self._screen_last, self._gray_buffer)

    # -- episodes --------------------------------------------------------------------------

    def reset(self) -> np.ndarray:
        """Start a new game with 1..noop_max_frames no-op frames; return the newest frame."""
        ale = self._ale
        noop = self._actions[0]
        while True:
            ale.reset_game()
            self._screen_last_frame = None
            self._screen_previous_adjacent = False
            noop_frames = int(self._noop_rng.integers(1, self.noop_max_frames + 1)) if self.noop_max_frames else 0
            first_grabbed_frame = noop_frames - self._frames_pooled + 1
            if first_grabbed_frame <= 0:
                self._grab_screen(0)
            frame = 0
            game_over = False
            while frame < noop_frames:
                # The no-op start's (rare) rewards are not the agent's: train_agent.lua summed
                # only the rewards of step(), never those of nextRandomGame().
                ale.act(noop)
                frame += 1
                if frame >= first_grabbed_frame:
                    self._grab_screen(frame)
                if ale.game_over():
                    game_over = True
                    break
            self.total_frames += frame
            if not game_over:
                break
        self.episode_frames = noop_frames
        self.noop_frames = noop_frames
        self.episode_return = 0.0
        self._lives = ale.lives()
        self._needs_reset = False
        return self._observe()

    def step(self, action: int) -> Step:
        """Play `action` for action_repeat_frames frames (fewer at game over, at the frame limit, or
        with end_step_at_life_loss at a lost life)."""
        if self._needs_reset:
            raise RuntimeError("the episode is over (or never started): call reset() before step()")
        if not 0 <= action < self.num_actions:
            raise ValueError(f"action {action} outside the minimal action set 0..{self.num_actions - 1}")
        ale = self._ale
        ale_action = self._actions[action]
        frames_planned = self.action_repeat_frames
        if self.max_episode_frames is not None:
            frames_planned = min(frames_planned, self.max_episode_frames - self.episode_frames)
        # In training every frame is grabbed, as alewrap painted each one into its screen buffer:
        # a step cut short at a lost life then still pools its last two frames (frames 5 and 6
        # of a step that lost the life on frame 6, not frame 6 alone). Elsewhere only the frames
        # the observation can use are grabbed (~35 us each).
        first_grabbed = 1 if self.end_step_at_life_loss else frames_planned - self._frames_pooled + 1
        start_frame = self.episode_frames
        reward = 0
        game_over = False
        life_lost = False
        frames_played = 0
        while frames_played < frames_planned:
            reward += ale.act(ale_action)
            frames_played += 1
            if ale.game_over():
                game_over = True
                self._grab_screen(start_frame + frames_played)
                break
            if self.end_step_at_life_loss and ale.lives() < self._lives:
                life_lost = True
                self._grab_screen(start_frame + frames_played)
                break
            if frames_played >= first_grabbed:
                self._grab_screen(start_frame + frames_played)
        self.episode_frames = start_frame + frames_played
        self.total_frames += frames_played
        self.episode_return += reward
        lives = ale.lives()
        life_lost = life_lost or lives < self._lives
        self._lives = lives
        truncated = (
            not game_over and self.max_episode_frames is not None and self.episode_frames >= self.max_episode_frames
        )
        self._needs_reset = game_over or truncated
        return Step(self._observe(), float(reward), life_lost, game_over, truncated)

    def restart_after_terminal(self) -> Restart:
        """After a terminal step in training, the next observation, as DeepMind's training loop got
        it: `train_agent.lua` called `game_env:nextRandomGame()` after every terminal, a lost life
        included. alewrap's GameEnvironment.lua:

            newGame():         while not terminal do ... _randomStep() end   -- skipped: terminal is set
                               self._screen:clear()
                               return self:_updateState(self:_step(0)):getState()
            nextRandomGame(k): k = k or torch.random(self._random_starts)     -- 1..30
                               for i=1,k-1 do ... self:_step(0) end
                               return self:_updateState(self:_step(0)):getState()

        and `_step(0)` on a game that is over resets it without playing a frame (AleEnv.lua's
        envStep: `if self.ale:isGameOver() then self.ale:resetGame() ... end`). So:

        - after a game over: the game is reset and k null frames follow, k uniform in
          1..noop_max_frames: `reset()`'s no-op start exactly;
        - after a lost life (the game goes on): k + 1 null frames, 2 to 31, with the screen buffer
          cleared first, so the observation pools the last two of them. A game that ends during
          them is reset by the next null frame, as envStep did, and its score is returned.

        With noop_max_frames = 0 (`-random_starts 0`), `newGame()` alone: one null frame. The
        null frames' rewards are not the agent's (train_agent.lua dropped them).
        """
        if self._needs_reset:
            return Restart(self.reset(), False, None)
        ale = self._ale
        noop = self._actions[0]
        null_frames = 1
        if self.noop_max_frames:
            null_frames = int(self._noop_rng.integers(1, self.noop_max_frames + 1)) + 1
        ended_game_return = None
        self._screen_last_frame = None  # self._screen:clear()
        for i in range(null_frames):
            if ale.game_over():
                ended_game_return = self.episode_return
                ale.reset_game()
                self.episode_frames = self.noop_frames = 0
                self.episode_return = 0.0
            else:
                ale.act(noop)
                self.episode_frames += 1
                self.total_frames += 1
            if i >= null_frames - self._frames_pooled:
                self._grab_screen(self.episode_frames)
        # Pooled over the last two painted screens whatever their frame numbers (a reset between them).
        self._screen_previous_adjacent = null_frames >= 2 and self._frames_pooled == 2
        self._lives = ale.lives()
        game_over = ale.game_over()
        self._needs_reset = game_over
        return Restart(self._observe(), game_over, ended_game_return)

    # -- checkpoints -----------------------------------------------------------------------

    def get_state(self) -> dict:
        """Everything needed to continue this trajectory exactly, as Python builtins only."""
        return {
            "game": self.game,
            "preprocessing": self.preprocessing,
            "ale_state": bytes(self._ale.cloneState(include_rng=True).serialize()),
            "noop_rng": copy.deepcopy(self._noop_rng.bit_generator.state),
            "episode_frames": self.episode_frames,
            "noop_frames": self.noop_frames,
            "episode_return": self.episode_return,
            "total_frames": self.total_frames,
            "lives": self._lives,
            "needs_reset": self._needs_reset,
            "screen_last": self._screen_last.tobytes(),
            "screen_previous": self._screen_previous.tobytes(),
            "screen_last_frame": self._screen_last_frame,
            "screen_previous_adjacent": self._screen_previous_adjacent,
        }

    def set_state(self, state: dict) -> None:
        for key in ("game", "preprocessing"):
            if state[key] != getattr(self, key):
                raise ValueError(f"env state is for {key} {state[key]!r}, this env has {getattr(self, key)!r}")
        self._ale.restoreState(self._ale_state_type(state["ale_state"]))
        self._noop_rng.bit_generator.state = copy.deepcopy(state["noop_rng"])
        self.episode_frames = int(state["episode_frames"])
        self.noop_frames = int(state["noop_frames"])
        self.episode_return = float(state["episode_return"])
        self.total_frames = int(state["total_frames"])
        self._lives = int(state["lives"])
        self._needs_reset = bool(state["needs_reset"])
        self._screen_last[...] = np.frombuffer(state["screen_last"], np.uint8).reshape(SCREEN_SHAPE_RGB)
        self._screen_previous[...] = np.frombuffer(state["screen_previous"], np.uint8).reshape(SCREEN_SHAPE_RGB)
        self._screen_last_frame = state["screen_last_frame"]
        self._screen_previous_adjacent = bool(state["screen_previous_adjacent"])

    def close(self) -> None:
        self._ale = None


class FrameStack:
    """The agent's state: the last `history_length_frames` frames, oldest first, newest last.

    Frames from before an episode start are zeros (reset() starts a new episode).
    """

    def __init__(self, history_length_frames: int = 4, frame_shape: tuple[int, int] = FRAME_SHAPE):
        self.history_length_frames = int(history_length_frames)
        self.frame_shape = tuple(frame_shape)
        self._stack = np.zeros((self.history_length_frames, *self.frame_shape), np.uint8)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self._stack[:-1] = 0
        self._stack[-1] = frame
        return self._stack.copy()

    def push(self, frame: np.ndarray) -> np.ndarray:
        self._stack[:-1] = self._stack[1:]  # numpy buffers overlapping copies, so this is safe
        self._stack[-1] = frame
        return self._stack.copy()

    def state_dict(self) -> dict:
        return {"shape": list(self._stack.shape), "stack": self._stack.tobytes()}

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["shape"]) != self._stack.shape:
            raise ValueError(f"frame stack state has shape {tuple(state['shape'])}, this stack {self._stack.shape}")
        self._stack[...] = np.frombuffer(state["stack"], np.uint8).reshape(self._stack.shape)
