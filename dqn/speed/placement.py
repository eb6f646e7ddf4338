"""Where a training keeps its replay memory when several trainings share one GPU.

With `trainings_per_gpu` = N trainings on one GPU, each keeps its replay on the GPU (and so runs
the fast path) only while N replays, each with its learner's headroom, fit the GPU's memory, and
while its own replay fits the memory free when it starts; otherwise the replay stays on the host
and the training runs the plain path. The first condition gives every training on a GPU the same
answer, whatever order they start in; the second catches a GPU that something else already fills.
The decision is taken once, when a run starts (dqn.train logs it and records the path in
config.json); a resume keeps it.

The headroom per training is an estimate, not a measurement: a CUDA context (~0.3-0.5 GB per
process without MPS), cuDNN workspaces, the captured graphs' memory pools and the learner (the
Nature CNN's weights, gradients and RMSProp averages are ~27 MB). `python -m benchmarks.gpu_check`
measures the GPU memory of 1 to 16 trainings on one GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dqn.replay import entry_bytes

HEADROOM_BYTES_PER_TRAINING = 2 * 2**30


@dataclass(frozen=True)
class Placement:
    on_device: bool
    reason: str  # one line for the log


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def replay_placement(replay_bytes: int, free_bytes: int, total_bytes: int, trainings_per_gpu: int = 1, *,
                     headroom_bytes: int = HEADROOM_BYTES_PER_TRAINING) -> Placement:
    """On the GPU when `trainings_per_gpu` replays with their headroom fit `total_bytes` and this
    one fits `free_bytes` (both the GPU's, as torch.cuda.mem_get_info gives them); else on the host."""
    if trainings_per_gpu < 1:
        raise ValueError(f"trainings_per_gpu must be at least 1, got {trainings_per_gpu}")
    need = replay_bytes + headroom_bytes
    shared = trainings_per_gpu * need
    if shared > total_bytes:
        return Placement(False, f"replay memory on the host: {trainings_per_gpu} replay(s) of {_gb(replay_bytes)} "
                                f"+ {_gb(headroom_bytes)} headroom each need {_gb(shared)}, the GPU has {_gb(total_bytes)}")
    if need > free_bytes:
        return Placement(False, f"replay memory on the host: {_gb(replay_bytes)} + {_gb(headroom_bytes)} headroom "
                                f"needed, {_gb(free_bytes)} of the GPU's {_gb(total_bytes)} free now")
    return Placement(True, f"replay memory on the GPU: {trainings_per_gpu} replay(s) of {_gb(replay_bytes)} "
                           f"+ {_gb(headroom_bytes)} headroom each fit its {_gb(total_bytes)}; "
                           f"{_gb(free_bytes)} free now")


def device_placement(replay_bytes: int, device: str, trainings_per_gpu: int = 1) -> Placement:
    """replay_placement with the device's free and total memory read now (a CPU device: always 'on')."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return Placement(True, f"replay memory on the {dev.type} (the learner's device)")
    free_bytes, total_bytes = torch.cuda.mem_get_info(dev)
    return replay_placement(replay_bytes, free_bytes, total_bytes, trainings_per_gpu)


def replay_bytes(capacity_transitions: int, frame_shape: tuple[int, ...] = (84, 84)) -> int:
    """Bytes of the stored transitions of a DeviceReplay of that capacity (frames + int32 action +
    float32 reward + 2 flags); the validity mask and its scan (5 bytes per transition) fit in the
    headroom of fits_on_device."""
    return int(capacity_transitions) * entry_bytes(frame_shape, np.uint8)


def fits_on_device(capacity_transitions: int, device: str, frame_shape: tuple[int, ...] = (84, 84),
                   *, headroom_bytes: int = 4 * 2**30) -> bool:
    """Whether the memory fits the device's free memory with `headroom_bytes` left for the learner."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return True
    free_bytes, _ = torch.cuda.mem_get_info(device)
    return replay_bytes(capacity_transitions, frame_shape) + headroom_bytes <= free_bytes
