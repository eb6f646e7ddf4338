"""A scripted stand-in for `ale_py.ALEInterface`: known screens, rewards, lives and game ends.

Frames are counted from `reset_game()`: its screen is frame 0, the first `act` plays frame 1.
By default the screen of frame f is filled with the value f % 256 in every channel, so a
preprocessed frame (whose luminance weights sum to 1) tells which frame it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
from ale_py import Action

MINIMAL_ACTIONS = (Action.NOOP, Action.FIRE, Action.RIGHT, Action.LEFT)


_CONSTANT_SCREENS = np.repeat(np.arange(256, dtype=np.uint8), 210 * 160 * 3).reshape(256, 210, 160, 3)
_CONSTANT_SCREENS.setflags(write=False)


def constant_screen(value: int) -> np.ndarray:
    """A read-only 210x160 RGB screen with every channel of every pixel equal to `value`."""
    return _CONSTANT_SCREENS[value]


def frame_number_screen(frame: int) -> np.ndarray:
    return _CONSTANT_SCREENS[frame % 256]


class FakeALEState:
    """Mirrors ale_py.ALEState: built back from the bytes of serialize()."""

    def __init__(self, serialized: bytes):
        self.fields = json.loads(serialized.decode())

    def serialize(self) -> bytes:
        return json.dumps(self.fields).encode()


class FakeALE:
    def __init__(
        self,
        *,
        screen: Callable[[int], np.ndarray] = frame_number_screen,
        reward: Callable[[int], int] = lambda frame: 0,
        episode_lengths_frames: Sequence[int | None] = (),
        life_lost_at_frames: Sequence[int] = (),
        start_lives: int = 5,
        minimal_actions: Sequence[Action] = MINIMAL_ACTIONS,
    ):
        """`episode_lengths_frames[i]`: the frame at which game i ends (None or absent: never)."""
        self._screen = screen
        self._reward = reward
        self._episode_lengths_frames = list(episode_lengths_frames)
        self._life_lost_at_frames = sorted(life_lost_at_frames)
        self._start_lives = start_lives
        self._minimal_actions = list(minimal_actions)
        self.settings: dict[str, object] = {}
        self.rom: str | None = None
        self.frame = 0
        self.game = -1  # index of the game since the first reset_game(); -1 after loadROM only
        self.actions: list[tuple[int, int, Action]] = []  # (game, frame, action) of every act
        self.screens_grabbed: list[tuple[int, int]] = []  # (game, frame) of every getScreenRGB

    # configuration
    def setInt(self, key: str, value: int) -> None:
        self.settings[key] = value

    def setFloat(self, key: str, value: float) -> None:
        self.settings[key] = value

    def loadROM(self, path: str) -> None:
        self.rom = path
        self.game = -1
        self.frame = 0

    def getMinimalActionSet(self) -> list[Action]:
        return list(self._minimal_actions)

    # emulation
    def reset_game(self) -> None:
        self.game += 1
        self.frame = 0

    def act(self, action: Action, paddle_strength: float = 1.0) -> int:
        assert not self.game_over(), "act() after game over"
        self.frame += 1
        self.actions.append((self.game, self.frame, action))
        return self._reward(self.frame)

    def game_over(self, *, with_truncation: bool = True) -> bool:
        if self.game < len(self._episode_lengths_frames):
            length = self._episode_lengths_frames[self.game]
            return length is not None and self.frame >= length
        return False

    def lives(self) -> int:
        return self._start_lives - sum(1 for f in self._life_lost_at_frames if f <= self.frame)

    def getScreenRGB(self, array: np.ndarray | None = None) -> np.ndarray | None:
        self.screens_grabbed.append((self.game, self.frame))
        screen = self._screen(self.frame)
        if array is None:
            return screen.copy()
        array[...] = screen
        return None

    # states
    def cloneState(self, *, include_rng: bool = False) -> FakeALEState:
        return FakeALEState(json.dumps({"frame": self.frame, "game": self.game}).encode())

    def restoreState(self, state: FakeALEState) -> None:
        self.frame = state.fields["frame"]
        self.game = state.fields["game"]


class FakeGames:
    """env_factory: AtariEnv on a FakeALE, keeping every ALE it built (in-process runs only)."""

    def __init__(self, **fake_ale_kwargs):
        self.fake_ale_kwargs = fake_ale_kwargs
        self.ales: list[FakeALE] = []

    def __call__(self, game, **kwargs):
        from dqn.atari import AtariEnv

        ale = FakeALE(**self.fake_ale_kwargs)
        self.ales.append(ale)
        return AtariEnv(game, ale=ale, **kwargs)
