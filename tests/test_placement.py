"""Where a training's replay memory goes when N trainings share a GPU (dqn/speed/placement.py),
for given free and total memories; and how dqn.train's --fast-path auto follows it."""

import pytest

from dqn.speed.device_replay import replay_bytes
from dqn.speed.placement import HEADROOM_BYTES_PER_TRAINING, replay_placement

GB = 10**9
NATURE_REPLAY_BYTES = replay_bytes(1_000_000)  # 7.066 GB
NEED = NATURE_REPLAY_BYTES + HEADROOM_BYTES_PER_TRAINING  # 7.066 + 2.147 = 9.213 GB per training


def test_a_nature_training_needs_its_replay_and_a_headroom():
    assert NATURE_REPLAY_BYTES == 7_066_000_000 and HEADROOM_BYTES_PER_TRAINING == 2 * 2**30
    assert NEED == 9_213_483_648


@pytest.mark.parametrize("trainings_per_gpu, free_gb, total_gb, on_device", [
    # An 80 GB GPU: 8 trainings need 73.7 GB and fit; 9 need 82.9 GB and do not, whatever is free.
    (8, 79, 80, True),
    (9, 79, 80, False),
    # A 141 GB GPU: 15 need 138.2 GB and fit; 16 need 147.4 GB and go to the host.
    (15, 140, 141, True),
    (16, 140, 141, False),
    # The eighth of 8 trainings starting on an 80 GB GPU after 7 took 64.5 GB: 15.5 GB free, it fits.
    (8, 15.5, 80, True),
    # Another process filled the GPU: 9 GB free is under one training's 9.21 GB.
    (1, 9, 80, False),
    (1, 9.3, 80, True),
    # A 16 GB GPU holds one paper-size replay, not two.
    (1, 15, 16, True),
    (2, 15, 16, False),
])
def test_the_replay_goes_on_the_gpu_while_n_replays_fit(trainings_per_gpu, free_gb, total_gb, on_device):
    placement = replay_placement(NATURE_REPLAY_BYTES, int(free_gb * GB), int(total_gb * GB), trainings_per_gpu)
    assert placement.on_device is on_device
    assert placement.reason.startswith("replay memory on the GPU" if on_device else "replay memory on the host")


def test_the_placement_says_why_in_one_line():
    on_host = replay_placement(NATURE_REPLAY_BYTES, 140 * GB, 141 * GB, 16)
    assert on_host.reason == ("replay memory on the host: 16 replay(s) of 7.1 GB + 2.1 GB headroom each need "
                              "147.4 GB, the GPU has 141.0 GB")
    busy = replay_placement(NATURE_REPLAY_BYTES, 9 * GB, 80 * GB, 1)
    assert busy.reason == "replay memory on the host: 7.1 GB + 2.1 GB headroom needed, 9.0 GB of the GPU's 80.0 GB free now"
    fits = replay_placement(NATURE_REPLAY_BYTES, 79 * GB, 80 * GB, 8)
    assert fits.reason == ("replay memory on the GPU: 8 replay(s) of 7.1 GB + 2.1 GB headroom each fit its 80.0 GB; "
                           "79.0 GB free now")
    assert "\n" not in on_host.reason + busy.reason + fits.reason
    with pytest.raises(ValueError, match="at least 1"):
        replay_placement(NATURE_REPLAY_BYTES, 79 * GB, 80 * GB, 0)


def test_fast_path_auto_follows_the_placement_on_cuda(monkeypatch):
    import torch

    from dqn.speed.auto import fast_path_enabled

    # A stand-in 80 GB GPU with 79 GB free.
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (79 * GB, 80 * GB))
    assert fast_path_enabled("auto", "cuda", 1_000_000, trainings_per_gpu=8)[0] is True
    enabled, why = fast_path_enabled("auto", "cuda", 1_000_000, trainings_per_gpu=9)
    assert enabled is False and why.startswith("replay memory on the host: 9 replay(s)")
    # On a CPU auto stays off; on and off are obeyed whatever the memory.
    assert fast_path_enabled("auto", "cpu", 1_000_000) == (False, None)
    assert fast_path_enabled("on", "cuda", 1_000_000, trainings_per_gpu=16) == (True, None)
    assert fast_path_enabled("off", "cuda", 1_000_000) == (False, None)


def test_dqn_train_refuses_a_bad_trainings_per_gpu_in_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dqn.train", "--game", "pong", "--seed", "0", "--out",
                           str(tmp_path / "run"), "--trainings-per-gpu", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "error: --trainings-per-gpu must be at least 1, got 0\n"
    assert not (tmp_path / "run").exists()
