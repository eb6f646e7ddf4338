"""The speed choices of one run (--fast-path, --compile, --channels-last) resolved once at its start.

Each changes float rounding (the fast path also the replay's random stream), so "auto" on a
resume keeps what the run started with, read from its config.json under SPEED_CHOICE_KEYS; a
flag set to on or off overrides it, and "auto" on a new run follows the rules of dqn/speed/auto.py.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from dqn.config import Hyperparameters

log = logging.getLogger(__name__)

# config.json keys of the speed choices, in the order speed_choices returns them.
SPEED_CHOICE_KEYS = ("fast_path", "compiled_optimizer_step", "channels_last")


def speed_choices(args: argparse.Namespace, started: dict[str, Any], device: str,
                  hp: Hyperparameters) -> tuple[bool, bool, bool]:
    """--fast-path, --compile and --channels-last resolved; `started` is the config.json of the run so far."""
    from dqn.speed.auto import channels_last_enabled, compile_enabled, fast_path_enabled

    def kept(choice: str, key: str) -> bool | None:
        return bool(started[key]) if choice == "auto" and key in started else None

    fast_path = kept(args.fast_path, "fast_path")
    if fast_path is None:
        fast_path, why = fast_path_enabled(args.fast_path, device, hp.replay_memory_size_transitions,
                                           trainings_per_gpu=args.trainings_per_gpu)
        if why:
            log.info("%s (%d training(s) per GPU)", why, args.trainings_per_gpu)
    compile_step = kept(args.compile, "compiled_optimizer_step")
    if compile_step is None:
        compile_step = not fast_path and compile_enabled(args.compile, device, hp.training_length_frames)
    channels_last = kept(args.channels_last, "channels_last")
    if channels_last is None:
        channels_last = not fast_path and channels_last_enabled(args.channels_last, device, hp.network)
    return fast_path, compile_step, channels_last
