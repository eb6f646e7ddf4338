"""The paper's preprocessing of Atari screens into the agent's 84x84 uint8 frames: the Nature
paper's (max of the last two RGB screens, luminance, resize of the whole screen) and the 2013
paper's (luminance of the last screen, 110x84, a crop of 84 rows). dqn/atari.py grabs the
screens and calls these.
"""

from __future__ import annotations

import cv2
import numpy as np

SCREEN_HEIGHT = 210
SCREEN_WIDTH = 160
SCREEN_SHAPE_RGB = (SCREEN_HEIGHT, SCREEN_WIDTH, 3)
FRAME_SHAPE = (84, 84)

# The 2013 arXiv paper downsamples to 110x84 (height x width) and crops an 84x84 region "that
# roughly captures the playing area" without saying which rows. Rows 18..101 (of 0..109) are the
# choice of the best-known 2013 reimplementation (Sprague's deep_q_rl: 8 rows off the bottom).
# They map to rows ~34..194 of the 210-row screen: the score band at the top is dropped (Breakout,
# Space Invaders, Beam Rider), and the lowest moving objects of the 2013 games stay inside
# (Breakout's paddle is at rows 189-193, i.e. rows 99-101 after the downsample). A centre crop
# (13..96) would cut Breakout's paddle off; rows 26..109 would cut the top invaders and UFO of
# Space Invaders.
NIPS2013_DOWNSAMPLED_SHAPE = (110, 84)
NIPS2013_CROP_TOP_ROW = 18
NIPS2013_CROP_ROWS = slice(NIPS2013_CROP_TOP_ROW, NIPS2013_CROP_TOP_ROW + FRAME_SHAPE[0])

# How many of the last emulator frames of each step the preprocessing looks at.
FRAMES_POOLED = {"nature": 2, "nips2013": 1}


def preprocess_nature(
    screen_previous: np.ndarray | None,
    screen_last: np.ndarray,
    pooled_buffer: np.ndarray | None = None,
    gray_buffer: np.ndarray | None = None,
) -> np.ndarray:
    """Nature (Methods, "Preprocessing") on the RGB screens of the last two frames of a step.

    Which frames are max-pooled, for an action repeat of 4 (frames of one agent step):

        frame:       t-3    t-2    t-1     t
        action:       a      a      a      a
        screen:       -      -     s_t-1  s_t      (only these two are grabbed)
                                      \\   /
                                   max(s_t-1, s_t)  ->  Y  ->  84x84

    1. element-wise max of the two RGB screens (removes the flicker of sprites that the game
       draws only on every other frame); `screen_previous=None` (a single frame was played since
       the last reset) uses the last screen alone,
    2. luminance Y = 0.299 R + 0.587 G + 0.114 B (OpenCV's RGB2GRAY, rounded to uint8),
    3. bilinear resize of the whole 210x160 frame to 84x84 (no crop), uint8.

    The buffers are optional preallocated scratch space; the returned frame is always new.
    """
    if screen_previous is None:
        pooled = screen_last
    else:  # 1.
        pooled = np.maximum(screen_previous, screen_last, out=pooled_buffer)
    gray = cv2.cvtColor(pooled, cv2.COLOR_RGB2GRAY, dst=gray_buffer)  # 2.
    return cv2.resize(gray, FRAME_SHAPE[::-1], interpolation=cv2.INTER_LINEAR)  # 3.


def preprocess_nips2013(screen_last: np.ndarray, gray_buffer: np.ndarray | None = None) -> np.ndarray:
    """The 2013 arXiv paper on the RGB screen of the last frame of a step.

    1. luminance Y of the last frame (the paper states no max-pool, so none),
    2. bilinear downsample to 110x84 (height x width),
    3. crop rows NIPS2013_CROP_ROWS, all 84 columns: 84x84 uint8.
    """
    gray = cv2.cvtColor(screen_last, cv2.COLOR_RGB2GRAY, dst=gray_buffer)  # 1.
    small = cv2.resize(gray, NIPS2013_DOWNSAMPLED_SHAPE[::-1], interpolation=cv2.INTER_LINEAR)  # 2.
    return np.ascontiguousarray(small[NIPS2013_CROP_ROWS])  # 3.
