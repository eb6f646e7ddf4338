"""AtariEnv and FrameStack: preprocessing values, frame accounting, lives, no-ops, checkpoints.

Most tests drive a scripted fake ALE (tests/helpers/fake_ale.py) so every frame is known; a few run the
real Breakout and Pong ROMs. Expected luminance values are OpenCV's RGB2GRAY, computed by hand
as round-down of (4899 R + 9617 G + 1868 B + 8192) / 16384, i.e. 0.299 R + 0.587 G + 0.114 B.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
import torch
from ale_py import Action

from dqn.atari import (
    NIPS2013_CROP_ROWS,
    AtariEnv,
    FrameStack,
    Step,
    preprocess_nature,
    preprocess_nips2013,
)
from dqn.errors import UserError
from helpers.fake_ale import FakeALE, constant_screen


def rgb_screen(r: int, g: int, b: int) -> np.ndarray:
    screen = np.empty((210, 160, 3), np.uint8)
    screen[...] = (r, g, b)
    return screen


def fake_env(fake: FakeALE, **kwargs) -> AtariEnv:
    kwargs.setdefault("seed", 0)
    return AtariEnv("breakout", ale=fake, **kwargs)


# --- preprocessing ---------------------------------------------------------------------------


def test_luminance_weights_on_pure_red_green_blue():
    # 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1 (OpenCV rounds: 76, 150, 29)
    for rgb, y in (((255, 0, 0), 76), ((0, 255, 0), 150), ((0, 0, 255), 29)):
        frame = preprocess_nature(None, rgb_screen(*rgb))
        assert frame.shape == (84, 84) and frame.dtype == np.uint8
        assert (frame == y).all(), rgb


def test_constant_colour_screen_gives_its_luminance():
    # 0.299*200 + 0.587*100 + 0.114*50 = 59.8 + 58.7 + 5.7 = 124.2
    frame = preprocess_nature(rgb_screen(200, 100, 50), rgb_screen(200, 100, 50))
    assert (frame == 124).all()


def test_max_pool_is_taken_on_rgb_before_luminance():
    a = rgb_screen(100, 50, 0)  # Y = 29.9 + 29.35 = 59.25 -> 59
    b = rgb_screen(20, 200, 0)  # Y = 5.98 + 117.4 = 123.38 -> 123
    # max(a, b) = (100, 200, 0): Y = 29.9 + 117.4 = 147.3 -> 147, more than either frame's Y
    frame = preprocess_nature(a, b)
    assert frame.shape == (84, 84) and frame.dtype == np.uint8
    assert (frame == 147).all()
    assert (preprocess_nature(b, a) == 147).all()


def test_nature_resizes_the_whole_screen_without_crop():
    # Top half white, bottom half black. Bilinear 210 -> 84 samples source row (i + 0.5) * 2.5 - 0.5:
    # row 41 reads rows 103/104 (white), row 42 reads rows 105/106 (black).
    screen = np.zeros((210, 160, 3), np.uint8)
    screen[:105] = 255
    frame = preprocess_nature(None, screen)
    assert (frame[:42] == 255).all() and (frame[42:] == 0).all()


def test_nips2013_crops_rows_18_to_101_of_the_110x84_downsample():
    assert (NIPS2013_CROP_ROWS.start, NIPS2013_CROP_ROWS.stop) == (18, 102)
    # Bilinear 210 -> 110 samples source row (i + 0.5) * 210/110 - 0.5: row 17 reads rows 32/33,
    # row 18 reads 34/35, row 101 reads 193/194, row 102 reads 195/196.
    screen = np.zeros((210, 160, 3), np.uint8)
    screen[32:34] = 100  # downsampled row 17: cut
    screen[34:36] = 255  # downsampled row 18: first row kept
    screen[193:195] = 200  # downsampled row 101: last row kept
    screen[195:197] = 50  # downsampled row 102: cut
    frame = preprocess_nips2013(screen)
    assert frame.shape == (84, 84) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    assert (frame[0] == 255).all()
    assert (frame[83] == 200).all()
    assert (frame[1:83] == 0).all()


# --- FrameStack ------------------------------------------------------------------------------


def test_frame_stack_zeroes_shifts_and_resets_at_episode_boundary():
    stack = FrameStack(4, (2, 3))
    frames = [np.full((2, 3), v, np.uint8) for v in range(10)]
    first = stack.reset(frames[1])
    assert first.shape == (4, 2, 3) and first.dtype == np.uint8
    assert first[:, 0, 0].tolist() == [0, 0, 0, 1]
    assert stack.push(frames[2])[:, 0, 0].tolist() == [0, 0, 1, 2]
    assert stack.push(frames[3])[:, 0, 0].tolist() == [0, 1, 2, 3]
    assert stack.push(frames[4])[:, 0, 0].tolist() == [1, 2, 3, 4]
    last = stack.push(frames[5])
    assert last[:, 0, 0].tolist() == [2, 3, 4, 5]
    assert first[:, 0, 0].tolist() == [0, 0, 0, 1]  # returned stacks are copies
    assert stack.reset(frames[9])[:, 0, 0].tolist() == [0, 0, 0, 9]  # new episode: old frames zeroed


def test_frame_stack_state_round_trip():
    stack = FrameStack()
    stack.reset(np.full((84, 84), 7, np.uint8))
    stack.push(np.full((84, 84), 8, np.uint8))
    restored = FrameStack()
    restored.load_state_dict(stack.state_dict())
    assert restored.push(np.full((84, 84), 9, np.uint8))[:, 0, 0].tolist() == [0, 7, 8, 9]


# --- ALE configuration -----------------------------------------------------------------------


def test_ale_is_configured_without_sticky_actions_and_with_the_minimal_action_set():
    fake = FakeALE()
    env = fake_env(fake, seed=3)
    assert fake.settings["repeat_action_probability"] == 0.0
    assert fake.settings["frame_skip"] == 1
    assert fake.rom.endswith("breakout.bin")
    assert env.num_actions == 4 and env.action_names == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    other = FakeALE()
    fake_env(other, seed=4)
    assert fake.settings["random_seed"] != other.settings["random_seed"]


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="unknown game"):
        AtariEnv("brekout", seed=0, ale=FakeALE())
    with pytest.raises(UserError, match="preprocessing"):
        fake_env(FakeALE(), preprocessing="dopamine")
    with pytest.raises(UserError, match="max_episode_frames"):
        fake_env(FakeALE(), max_episode_frames=30, noop_max_frames=30)


def test_action_zero_must_be_noop():
    with pytest.raises(RuntimeError, match="NOOP"):
        fake_env(FakeALE(minimal_actions=(Action.FIRE, Action.NOOP)))


# --- stepping --------------------------------------------------------------------------------


def test_step_repeats_the_action_and_sums_raw_rewards():
    rewards = {6: 7, 7: 5}  # two rewards inside the second step: 12, not clipped
    fake = FakeALE(reward=lambda f: rewards.get(f, 0))
    env = fake_env(fake, noop_max_frames=0)
    env.reset()
    first = env.step(3)  # frames 1-4
    assert isinstance(first, Step) and first.reward == 0.0
    fake.actions.clear()
    fake.screens_grabbed.clear()
    step = env.step(2)
    assert [a for _, _, a in fake.actions] == [Action.RIGHT] * 4
    assert [f for _, f, _ in fake.actions] == [5, 6, 7, 8]
    assert step.reward == 12.0 and isinstance(step.reward, float)
    assert env.episode_return == 12.0
    # Only the two screens that are max-pooled are grabbed.
    assert fake.screens_grabbed == [(0, 7), (0, 8)]
    assert (step.frame == 8).all()  # max of screens 7 and 8


def test_action_repeat_of_three_frames():
    fake = FakeALE()
    env = fake_env(fake, noop_max_frames=0, action_repeat_frames=3)
    env.reset()
    env.step(1)
    env.step(3)
    assert [(f, a) for _, f, a in fake.actions] == [
        (1, Action.FIRE), (2, Action.FIRE), (3, Action.FIRE),
        (4, Action.LEFT), (5, Action.LEFT), (6, Action.LEFT),
    ]
    assert env.episode_frames == 6 and env.total_frames == 6
    for outside in (-1, 4):  # a negative index would silently pick an action from the end
        with pytest.raises(ValueError, match="minimal action set"):
            env.step(outside)


def test_step_max_pools_the_last_two_frames_of_the_step():
    screens = {3: rgb_screen(100, 50, 0), 4: rgb_screen(20, 200, 0)}
    fake = FakeALE(screen=lambda f: screens.get(f, constant_screen(0)))
    env = fake_env(fake, noop_max_frames=0)
    env.reset()
    assert (env.step(0).frame == 147).all()  # see test_max_pool_is_taken_on_rgb_before_luminance


def test_nips2013_uses_the_last_frame_only():
    screens = {3: rgb_screen(255, 255, 255), 4: rgb_screen(0, 255, 0)}
    fake = FakeALE(screen=lambda f: screens.get(f, constant_screen(0)))
    env = fake_env(fake, noop_max_frames=0, preprocessing="nips2013")
    env.reset()
    fake.screens_grabbed.clear()
    step = env.step(0)
    assert fake.screens_grabbed == [(0, 4)]
    assert step.frame.shape == (84, 84) and (step.frame == 150).all()


def test_game_over_inside_a_repeat_stops_it_and_pools_only_adjacent_frames():
    # Screens get darker frame by frame, so pooling with a stale (older) screen would show.
    darker = lambda f: constant_screen(100 - f)  # noqa: E731
    # The game ends on the first frame of the second step: pooled with frame 4, its neighbour.
    fake = FakeALE(screen=darker, episode_lengths_frames=[5])
    env = fake_env(fake, noop_max_frames=0)
    env.reset()
    env.step(0)
    step = env.step(0)
    assert step.game_over and not step.truncated
    assert env.episode_frames == 5 and len(fake.actions) == 5
    assert (step.frame == 96).all()  # max(screen 4 = 96, screen 5 = 95)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    # The game ends on the second frame: frame 5 was not grabbed, so screen 6 stands alone.
    fake = FakeALE(screen=darker, episode_lengths_frames=[6])
    env = fake_env(fake, noop_max_frames=0)
    env.reset()
    env.step(0)
    step = env.step(0)
    assert step.game_over and env.episode_frames == 6
    assert (step.frame == 94).all()


def test_lost_life_is_reported_once_and_the_game_goes_on():
    rewards = {5: 3, 14: 4}
    fake = FakeALE(reward=lambda f: rewards.get(f, 0), life_lost_at_frames=[10], start_lives=3)
    env = fake_env(fake, noop_max_frames=0)
    env.reset()
    steps = [env.step(1) for _ in range(4)]  # frames 1-4, 5-8, 9-12, 13-16
    assert [s.life_lost for s in steps] == [False, False, True, False]
    assert not any(s.game_over or s.truncated for s in steps)
    assert fake.game == 0  # never reset
    assert [s.reward for s in steps] == [0.0, 3.0, 0.0, 4.0]
    assert env.episode_return == 7.0  # rewards before and after the lost life
    assert env.episode_frames == 16


def test_a_lost_life_ends_the_action_repeat_in_training_only():
    # The life counter drops on frame 2 of the second step (frames 5-8): frame 6.
    # Screens get darker frame by frame (screen f = 100 - f): pooled with its neighbour, frame
    # 6's observation is max(95, 94) = 95; alone it would be 94.
    rewards = {5: 3, 7: 5}
    darker = lambda f: constant_screen(100 - f)  # noqa: E731
    training = FakeALE(screen=darker, reward=lambda f: rewards.get(f, 0), life_lost_at_frames=[6], start_lives=3)
    env = fake_env(training, noop_max_frames=0, end_step_at_life_loss=True)
    env.reset()
    env.step(1)
    step = env.step(1)
    assert step.life_lost and not step.game_over
    assert env.episode_frames == 6  # 2 frames of the step played, not 4
    assert step.reward == 3.0  # frame 7's reward is not reached
    # alewrap painted every frame into its two-frame buffer, so the step cut short at frame 6
    # still pools frames 5 and 6.
    assert (step.frame == 95).all()
    assert [f for _, f, _ in training.actions] == [1, 2, 3, 4, 5, 6]
    following = env.step(1)  # the game goes on with a full step
    assert not following.life_lost and env.episode_frames == 10 and following.reward == 5.0

    evaluation = FakeALE(reward=lambda f: rewards.get(f, 0), life_lost_at_frames=[6], start_lives=3)
    env = fake_env(evaluation, noop_max_frames=0)
    env.reset()
    env.step(1)
    step = env.step(1)
    assert step.life_lost and env.episode_frames == 8  # all 4 frames: a lost life is not terminal here
    assert step.reward == 8.0


# --- no-op starts ----------------------------------------------------------------------------


def test_noop_start_counts_are_uniform_in_1_to_30():
    fake = FakeALE()
    env = fake_env(fake, seed=11)
    counts = []
    for game in range(200):
        fake.actions.clear()
        frame = env.reset()
        counts.append(env.noop_frames)
        assert [a for _, _, a in fake.actions] == [Action.NOOP] * env.noop_frames
        assert env.episode_frames == env.noop_frames
        assert (frame == env.noop_frames).all()  # max of screens n-1 and n
    # Every value of 1..30 drawn (for this seed; 200 uniform draws miss one with probability ~3%).
    assert set(counts) == set(range(1, 31))
    assert max(Counter(counts).values()) < 20  # no value favoured (mean 6.7 per value)
    assert fake.game == 199  # each reset started one game
    assert env.total_frames == sum(counts)
    # The same seed draws the same counts.
    again = fake_env(FakeALE(), seed=11)
    assert [again.reset() is not None and again.noop_frames for _ in range(20)] == counts[:20]


def test_noop_max_zero_plays_no_noop():
    fake = FakeALE(screen=lambda f: constant_screen(100 + f))
    env = fake_env(fake, noop_max_frames=0)
    frame = env.reset()
    assert env.noop_frames == 0 and env.episode_frames == 0 and fake.actions == []
    assert (frame == 100).all()  # the screen of reset_game() itself


def test_a_game_that_ends_during_the_noop_start_is_reset_again():
    fake = FakeALE(episode_lengths_frames=[None, 1])  # game 1 ends on its first frame
    env = fake_env(fake)
    env.reset()
    assert fake.game == 0
    env.reset()  # game 1 ends inside its no-ops, game 2 is played
    assert fake.game == 2
    assert env.episode_frames == env.noop_frames >= 1
    assert [g for g, _, _ in fake.actions].count(1) == 1


def test_noop_start_rewards_are_not_the_agents():
    # One no-op frame (frame 1) scores 5; the first step (frames 2-5) scores 1 on frame 3.
    rewards = {1: 5, 3: 1}
    fake = FakeALE(reward=lambda f: rewards.get(f, 0))
    env = fake_env(fake, noop_max_frames=1)
    env.reset()
    assert env.noop_frames == 1 and env.episode_return == 0.0  # train_agent.lua counted step() rewards only
    env.step(1)
    assert env.episode_return == 1.0


# --- after a terminal step in training (alewrap's nextRandomGame) ----------------------------


def training_env(fake: FakeALE, **kwargs) -> AtariEnv:
    return fake_env(fake, end_step_at_life_loss=True, **kwargs)


def test_after_a_lost_life_k_plus_one_null_frames_pool_the_last_two():
    # noop_max_frames = 1 draws k = 1: newGame's _step(0), no loop, nextRandomGame's last _step(0).
    darker = lambda f: constant_screen(100 - f)  # noqa: E731
    fake = FakeALE(screen=darker, reward=lambda f: 7 if f == 8 else 0, life_lost_at_frames=[6], start_lives=3)
    env = training_env(fake, noop_max_frames=1)
    env.reset()  # frame 1 is the no-op start
    env.step(1)  # frames 2-5
    assert env.step(1).life_lost  # frame 6: the lost life ends the step
    fake.actions.clear()
    restart = env.restart_after_terminal()
    assert [(f, a) for _, f, a in fake.actions] == [(7, Action.NOOP), (8, Action.NOOP)]
    assert (restart.frame == 93).all()  # max(screen 7 = 93, screen 8 = 92)
    assert not restart.game_over and restart.ended_game_return is None
    assert fake.game == 0 and env.episode_frames == 8 and env.total_frames == 8
    assert env.episode_return == 0.0  # frame 8's 7 points came during the null frames
    following = env.step(1)  # the game goes on, 2 lives left, no life lost again
    assert not following.life_lost and env.episode_frames == 12


def test_after_a_lost_life_2_to_31_null_frames_are_played():
    fake = FakeALE()
    env = training_env(fake, seed=3)
    env.reset()
    counts = []
    for _ in range(400):
        fake.actions.clear()
        env.restart_after_terminal()
        counts.append(len(fake.actions))
        assert {a for _, _, a in fake.actions} == {Action.NOOP}
    # k uniform in 1..30 (torch.random(30)), plus newGame's null frame: 2..31, each value drawn.
    assert set(counts) == set(range(2, 32))
    assert max(Counter(counts).values()) < 30  # mean 13.3 per value


def test_without_noop_starts_newgame_alone_plays_one_null_frame():
    fake = FakeALE(screen=lambda f: constant_screen(100 + f))
    env = training_env(fake, noop_max_frames=0)
    env.reset()
    env.step(1)  # frames 1-4
    restart = env.restart_after_terminal()
    assert [f for _, f, _ in fake.actions][-1] == 5 and len(fake.actions) == 5
    assert (restart.frame == 105).all()  # the screen buffer was cleared: frame 5 alone


def test_a_game_that_ends_during_the_null_frames_is_reset_by_the_next_one():
    # The game ends on frame 7, the first null frame after the life lost on frame 6; the second
    # null frame finds the game over and resets it (AleEnv.lua's envStep), playing no frame.
    darker = lambda f: constant_screen(100 - f)  # noqa: E731
    fake = FakeALE(screen=darker, reward=lambda f: 2 if f == 3 else 0, episode_lengths_frames=[7],
                   life_lost_at_frames=[6], start_lives=3)
    env = training_env(fake, noop_max_frames=1)
    env.reset()  # frame 1
    env.step(1)  # frames 2-5: 2 points on frame 3
    env.step(1)  # frame 6: life lost
    restart = env.restart_after_terminal()
    assert fake.game == 1 and [f for g, f, _ in fake.actions if g == 0][-1] == 7
    assert restart.ended_game_return == 2.0 and not restart.game_over
    assert (restart.frame == 100).all()  # max(screen 7 of the old game = 93, the new game's screen 0 = 100)
    assert env.episode_frames == 0 and env.episode_return == 0.0 and fake.lives() == 3


def test_after_a_game_over_the_game_is_reset_with_a_noop_start():
    fake = FakeALE(episode_lengths_frames=[6])
    env = training_env(fake, noop_max_frames=1)
    env.reset()  # frame 1
    env.step(1)  # frames 2-5
    assert env.step(1).game_over  # frame 6
    restart = env.restart_after_terminal()
    # _step(0) on a finished game resets it, then k = 1 null frame: reset()'s no-op start.
    assert fake.game == 1 and env.noop_frames == 1 and [f for g, f, _ in fake.actions if g == 1] == [1]
    assert not restart.game_over and restart.ended_game_return is None
    assert (restart.frame == 1).all()  # max(screen 0, screen 1)


# --- truncation ------------------------------------------------------------------------------


def test_truncation_at_exactly_18000_frames_even_inside_a_repeat():
    fake = FakeALE()  # a game that never ends
    env = fake_env(fake, seed=1, max_episode_frames=18_000)
    remainders = set()
    for episode in range(3):
        env.reset()
        remainders.add((18_000 - env.noop_frames) % 4)
        agent_steps = 0
        while True:
            step = env.step(0)
            agent_steps += 1
            if step.truncated:
                break
        assert not step.game_over
        assert env.episode_frames == 18_000
        assert fake.frame == 18_000
        assert agent_steps == -(-(18_000 - env.noop_frames) // 4)  # ceiling: the last step is short
    assert remainders - {0}, "no episode put the limit inside a repeat; change the seed"
    assert env.total_frames == 3 * 18_000


def test_truncated_last_step_plays_only_the_frames_left():
    fake = FakeALE()
    env = fake_env(fake, noop_max_frames=0, max_episode_frames=10)
    env.reset()
    assert [env.step(0).truncated for _ in range(2)] == [False, False]
    step = env.step(1)
    assert step.truncated and not step.game_over
    assert [(f, a) for _, f, a in fake.actions[-2:]] == [(9, Action.FIRE), (10, Action.FIRE)]
    assert env.episode_frames == 10 and (step.frame == 10).all()


# --- checkpoints -----------------------------------------------------------------------------


def _torch_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _play(env: AtariEnv, actions) -> list:
    trace = []
    for action in actions:
        step = env.step(int(action))
        trace.append((step.frame.tobytes(), step.reward, step.life_lost, step.game_over, step.truncated))
        if step.game_over or step.truncated:
            trace.append(("reset", env.reset().tobytes(), env.noop_frames))
    trace.append((env.episode_frames, env.episode_return, env.total_frames))
    return trace


def test_fake_state_round_trip_continues_the_same_trajectory():
    def script():
        return FakeALE(reward=lambda f: f % 3, life_lost_at_frames=[30], episode_lengths_frames=[50, 61, 45])

    actions = np.random.default_rng(0).integers(0, 4, size=60)
    env = fake_env(script(), seed=5)
    env.reset()
    _play(env, actions[:7])
    state = _torch_round_trip(env.get_state())
    expected = _play(env, actions)
    restored = fake_env(script(), seed=99)
    restored.set_state(state)
    assert _play(restored, actions) == expected


# --- real ROMs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "game, action_names",
    [
        ("breakout", ["NOOP", "FIRE", "RIGHT", "LEFT"]),
        ("pong", ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]),
    ],
)
def test_real_rom_runs_random_steps(game, action_names):
    env = AtariEnv(game, seed=0)
    assert env.num_actions == len(action_names) and env.action_names == action_names
    rng = np.random.default_rng(0)
    frame = env.reset()
    assert frame.shape == (84, 84) and frame.dtype == np.uint8 and frame.any()
    frames_before = env.total_frames
    for _ in range(300):
        step = env.step(int(rng.integers(env.num_actions)))
        assert step.frame.shape == (84, 84) and step.frame.dtype == np.uint8
        if step.game_over:
            env.reset()
    assert env.total_frames >= frames_before + 300 * 4 - 3


def test_real_rom_nips2013_frames():
    env = AtariEnv("breakout", seed=0, preprocessing="nips2013")
    frame = env.reset()
    assert frame.shape == (84, 84) and frame.dtype == np.uint8
    # The crop keeps the paddle (rows 189-193 of the screen -> last rows) and drops the score.
    assert frame[-4:].any()


def test_real_rom_state_round_trip_continues_identically():
    actions = np.random.default_rng(1).integers(0, 4, size=400)
    env = AtariEnv("breakout", seed=7, max_episode_frames=300)  # short episodes: resets draw no-ops
    env.reset()
    _play(env, actions[:50])
    state = _torch_round_trip(env.get_state())
    expected = _play(env, actions)
    assert sum(1 for t in expected if t[0] == "reset") >= 3
    restored = AtariEnv("breakout", seed=1234, max_episode_frames=300)
    restored.set_state(state)
    assert _play(restored, actions) == expected


def test_same_seed_same_trajectory_on_real_rom():
    actions = np.random.default_rng(2).integers(0, 6, size=100)
    first = AtariEnv("pong", seed=3)
    second = AtariEnv("pong", seed=3)
    first.reset()
    second.reset()
    assert _play(first, actions) == _play(second, actions)
