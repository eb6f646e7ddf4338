"""The "auto" rules of the speed choices: --fast-path, --compile and --channels-last.

Each choice is "auto", "on" or "off"; "on" and "off" are obeyed, "auto" picks what was measured
to be faster on that device (benchmarks/README.md, sections 3 and 5). dqn.train resolves them
once, at the entry point, and records the result in config.json, so that a resume keeps it.
"""

from __future__ import annotations

import torch

from dqn.networks import CNN_NETWORKS

CHOICES = ("auto", "on", "off")

# Runs at least this long compile the optimizer step under --compile auto: seconds of compiling
# against hours of training; shorter runs (tests, demos) start at once.
AUTO_COMPILE_MIN_FRAMES = 10_000_000


def _check(choice: str, what: str) -> None:
    if choice not in CHOICES:
        raise ValueError(f"{what} choice must be auto, on or off, got {choice!r}")


def fast_path_enabled(choice: str, device: str, replay_transitions: int, frame_shape: tuple[int, ...] = (84, 84),
                      trainings_per_gpu: int = 1) -> tuple[bool, str | None]:
    """The --fast-path choice resolved, and why (None where there is nothing to say): "on" and
    "off" as asked, "auto" on for CUDA when the replay memory goes on the GPU (dqn/speed/placement.py)."""
    from dqn.speed.placement import replay_bytes
    from dqn.speed.placement import device_placement

    _check(choice, "fast path")
    if choice != "auto":
        return choice == "on", None
    # Off on a CPU: measured 82 agent steps/s against 127 for the plain path, because sampling
    # with torch ops costs ~2 ms per minibatch there against 0.13-0.47 ms for the numpy memory.
    # On CUDA the minibatches never cross the bus and an update is one graph launch, provided the
    # replay (7.07 GB for 1M transitions) stays on the GPU beside the other trainings sharing it.
    if torch.device(device).type != "cuda":
        return False, None
    placement = device_placement(replay_bytes(replay_transitions, frame_shape), device, trainings_per_gpu)
    return placement.on_device, placement.reason


def compile_enabled(choice: str, device: str, training_length_frames: int) -> bool:
    """The --compile choice resolved: "auto" is on for CPU runs of AUTO_COMPILE_MIN_FRAMES or more."""
    _check(choice, "compile")
    if choice != "auto":
        return choice == "on"
    # On a CPU the fused step takes 1.1 ms instead of 3.6 ms (~2.8 ms, 9%, of an update measured
    # interleaved), for seconds of compiling once per process: worth it on long runs only. On
    # CUDA the fast path's captured graphs already run the step as one launch, so auto is off.
    return torch.device(device).type == "cpu" and training_length_frames >= AUTO_COMPILE_MIN_FRAMES


def channels_last_enabled(choice: str, device: str | torch.device, network: str) -> bool:
    """The --channels-last choice resolved: "auto" is on for a CNN on the CPU; never for the MLP."""
    _check(choice, "channels-last")
    if network not in CNN_NETWORKS:
        return False
    if choice != "auto":
        return choice == "on"
    # On a CPU NHWC is oneDNN's native layout: the first convolution's weight gradient goes from
    # 6.0 to 1.4 ms and a whole update from 26.2 to 23.2 ms (~12%). On CUDA the fast path's
    # captured graphs were built and checked in NCHW and nothing was measured, so auto leaves it.
    return torch.device(device).type == "cpu"
