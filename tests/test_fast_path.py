"""The fast path against the plain path: device replay stacks and sampling, FastLearner losses.

Each test of the device replay and the fast learner runs on the CPU and, marked `gpu`, on CUDA,
where the CUDA graphs are exercised; on a machine without a CUDA device the CUDA runs are
reported as skipped, so a CPU-only pass never reads as a pass of the CUDA path.
"""

import collections

import numpy as np
import pytest
import torch

from dqn.agent import LazyQValues, Learner, epsilon_greedy
from dqn.config import NATURE
from dqn.replay import ReplayMemory
from dqn.speed.device_replay import DeviceReplay, fits_on_device, replay_bytes
from dqn.speed.fast_learner import FastLearner

NO_CUDA = "no CUDA device: the CUDA path (device replay and learner on the GPU, CUDA graphs) did not run"


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)])])
def device_name(request):
    return request.param


def _generator(seed, device_name):
    # Graph capture samples from the device's default generator; the CPU path takes an explicit one.
    if device_name == "cuda":
        torch.cuda.manual_seed(seed)
        return None
    return torch.Generator().manual_seed(seed)


def _fill_both(device_name, capacity, adds, frame_shape, seed, staging_transitions=7):
    """A ReplayMemory and a DeviceReplay fed the same random transitions (game starts, lost lives,
    truncated games), past the capacity so that the ring has wrapped."""
    rng = np.random.default_rng(seed)
    host = ReplayMemory(capacity, 4, frame_shape, seed=seed)
    device = DeviceReplay(capacity, 4, frame_shape, device=device_name, generator=_generator(seed, device_name),
                          staging_transitions=staging_transitions)
    for _ in range(adds):
        entry = (rng.integers(1, 256, frame_shape, dtype=np.uint8), int(rng.integers(4)), float(rng.integers(-1, 2)),
                 bool(rng.random() < 0.1), bool(rng.random() < 0.08))
        host.add(*entry)
        device.add(*entry)
    return host, device


def test_device_replay_rebuilds_the_same_transitions_as_the_host_memory(device_name):
    host, device = _fill_both(device_name, capacity=60, adds=157, frame_shape=(5, 7), seed=3)
    assert (host.size, device.size) == (60, 60)
    # Every stored transition but the newest, including stacks that reach overwritten slots or
    # cross game starts: each field must be identical.
    positions = np.arange(157 - 60, 157 - 1)
    expected, got = host.batch_at(positions), device.batch_at(torch.from_numpy(positions))
    for name, a, b in zip(expected._fields, expected, got):
        assert b.device.type == torch.device(device_name).type
        np.testing.assert_array_equal(b.cpu().numpy(), a, err_msg=name)
    # The zeroing really happened somewhere (the test would be weak if no stack crossed a start).
    assert (expected.state == 0).all(axis=(2, 3)).any()


def _scripted_memory(device_name, rejection_rounds):
    """Capacity 8, 11 adds: positions 3..10 stored, 10 the newest. Games start at 0, 5 and 8;
    entry 4 is terminal (its game ended), entry 7 is not (the game at 5 was cut: a truncation)."""
    memory = DeviceReplay(8, 4, (2, 2), device=device_name, generator=_generator(0, device_name),
                          rejection_rounds=rejection_rounds)
    for p in range(11):
        memory.add(np.full((2, 2), p, np.uint8), p % 3, 0.0, p == 4, p in (0, 5, 8))
    return memory


def test_device_sampling_draws_exactly_the_valid_transitions_uniformly(device_name):
    # By hand, over the sampleable positions 3..9 with stacks of 4 frames:
    #   3 needs frames 0..2, overwritten, with no game start after them in its stack: invalid
    #   4 needs frames 1..2, overwritten, no start at 3 or 4: invalid
    #   5 needs frame 2, overwritten, but a game starts at 5 (frames before are zeros): valid
    #   6 valid; 7 is followed by a game start without being terminal (truncated): invalid
    #   8 and 9 valid.
    memory = _scripted_memory(device_name, rejection_rounds=32)
    draws = memory.sample_positions(4000).cpu().numpy()
    counts = collections.Counter(draws.tolist())
    assert set(counts) == {5, 6, 8, 9}
    # Uniform: each expects 1000 (binomial s.d. 27); 150 away is over 5 s.d.
    assert all(850 <= c <= 1150 for c in counts.values()), counts
    assert memory.exhausted_draws == 0
    batch = memory.sample(64)
    # A valid transition's stack is zeroed before its game's first frame and never spans games.
    newest = batch.state[:, -1, 0, 0].cpu().numpy()
    assert set(newest.tolist()) <= {5, 6, 8, 9}
    for row, p in zip(batch.state[:, :, 0, 0].cpu().numpy(), newest):
        start = 5 if p < 8 else 8
        assert row.tolist() == [f if f >= start else 0 for f in range(p - 3, p + 1)]


def test_draws_with_every_round_invalid_are_counted_and_replaced_by_exact_valid_ones(device_name):
    # 3 of the 7 sampleable positions are invalid (valid: 5, 6, 8, 9, see the test above): with one
    # round, 3/7 of the draws (4,286 of 10,000, s.d. 49) fall back to the exact draw.
    memory = _scripted_memory(device_name, rejection_rounds=1)
    counts = collections.Counter(memory.sample_positions(10_000).cpu().numpy().tolist())
    assert set(counts) == {5, 6, 8, 9}
    # Each expects 2,500 (binomial s.d. 43); 250 away is over 5 s.d.
    assert all(2250 <= c <= 2750 for c in counts.values()), counts
    assert 4000 < memory.exhausted_draws < 4600
    # The fallback returns valid transitions only, so a checkpoint has nothing to refuse.
    assert memory.state_dict()["adds"] == 11


def _tail_memory(replay):
    """70 adds into capacity 10, flags set by hand: stored positions 60..69, sampleable 60..68.
    Games start at 0, 65, 67 and 69, none terminal; frame p holds the value p."""
    for p in range(70):
        replay.add(np.full((2, 2), p, np.uint8), p % 3, 0.0, False, p in (0, 65, 67, 69))
    return replay


def test_a_nearly_invalid_memory_never_yields_a_transition_across_the_write_pointer(device_name):
    # By hand: 60, 61 and 62 need frames 57..59, overwritten, with no game start after them in
    # their stacks (the write pointer crosses them); 64, 66 and 68 are followed by a game start
    # without being terminal (truncated). Valid: 63 (frames 60..63), 65 and 67 (their games' first
    # frames). 6 of 9 candidates are invalid, so one round fails for about 2/3 of the draws.
    memory = _tail_memory(DeviceReplay(10, 4, (2, 2), device=device_name, generator=_generator(0, device_name),
                                       rejection_rounds=1))
    host = _tail_memory(ReplayMemory(10, 4, (2, 2), seed=0))
    sampleable = np.arange(60, 69)
    assert sampleable[host._valid(sampleable)].tolist() == [63, 65, 67]
    counts = collections.Counter()
    for _ in range(100):  # 10,000 draws through sample(), the path training takes (a CUDA graph on CUDA)
        batch = memory.sample(100)
        newest = batch.state[:, -1, 0, 0].cpu().numpy()
        counts.update(newest.tolist())
        # A stack across the write pointer would show overwritten slots' newer frames (position
        # 60's would read 67, 68, 69, 60); the valid stacks, zeroed before their games' starts:
        stacks = {tuple(row) for row in batch.state[:, :, 0, 0].cpu().numpy().tolist()}
        assert stacks <= {(60, 61, 62, 63), (0, 0, 0, 65), (0, 0, 0, 67)}, stacks
    assert set(counts) == {63, 65, 67}
    # Each expects 3,333 (binomial s.d. 47); 250 away is over 5 s.d.
    assert all(3083 <= c <= 3583 for c in counts.values()), counts
    assert 6200 < memory.exhausted_draws < 7100  # 2/3 of 10,000, s.d. 47


def test_capacity_below_the_staging_size_stores_what_the_host_memory_stores(device_name):
    # Capacity 10 with the default 64 staged entries: 70 adds wrap the ring 7 times, a flush of 64
    # entries among them.
    host, device = _fill_both(device_name, capacity=10, adds=70, frame_shape=(3, 3), seed=11, staging_transitions=64)
    device.flush()
    assert (host.size, device.size) == (10, 10)
    for name, array in host.state_dict().items():
        if isinstance(array, np.ndarray):
            np.testing.assert_array_equal(device.state_dict()[name], array, err_msg=name)
    sampleable = np.arange(60, 69)
    valid = sampleable[host._valid(sampleable)]
    np.testing.assert_array_equal(device._valid(torch.from_numpy(sampleable).to(device_name)).cpu().numpy(),
                                  host._valid(sampleable))
    assert 0 < len(valid) < len(sampleable)  # the flags make some transitions invalid, some not
    expected, got = host.batch_at(valid), device.batch_at(torch.from_numpy(valid))
    for name, a, b in zip(expected._fields, expected, got):
        np.testing.assert_array_equal(b.cpu().numpy(), a, err_msg=name)
    assert set(device.sample_positions(2000).cpu().numpy().tolist()) == set(valid.tolist())


@pytest.mark.parametrize("staging_transitions", [1, 7, 64])
def test_validity_mask_after_every_flush_is_the_host_memorys_validity(staging_transitions, device_name):
    """The mask the exact draw reads, updated only where adds can change it, against ReplayMemory's
    rule on every stored transition, while the ring fills, wraps, and after a checkpoint load."""
    rng = np.random.default_rng(staging_transitions)
    host = ReplayMemory(12, 4, (2, 2), seed=0)
    device = DeviceReplay(12, 4, (2, 2), device=device_name, generator=_generator(0, device_name),
                          staging_transitions=staging_transitions)

    def expected_mask():
        mask = np.zeros(12, dtype=bool)
        positions = np.arange(host._adds - host.size, host._adds - 1)
        mask[positions % 12] = host._valid(positions)
        return mask

    for step in range(200):
        # Frequent game starts and cuts, so that both kinds of invalid transition keep appearing.
        entry = (rng.integers(0, 256, (2, 2), dtype=np.uint8), 0, 0.0, bool(rng.random() < 0.2), bool(rng.random() < 0.25))
        host.add(*entry)
        device.add(*entry)
        if step % 5 == 4:
            device.flush()
            np.testing.assert_array_equal(device._valid_slots.cpu().numpy(), expected_mask(), err_msg=f"step {step}")
    restored = DeviceReplay(12, 4, (2, 2), device=device_name, generator=_generator(1, device_name))
    restored.load_state_dict(device.state_dict())
    np.testing.assert_array_equal(restored._valid_slots.cpu().numpy(), expected_mask())


def test_a_memory_without_any_valid_transition_refuses_to_sample_like_the_host_memory(device_name):
    # Every entry starts a game and none is terminal: every transition is a cut game.
    host = ReplayMemory(6, 4, (2, 2), seed=0)
    device = DeviceReplay(6, 4, (2, 2), device=device_name, generator=_generator(0, device_name))
    for p in range(9):
        host.add(np.full((2, 2), p, np.uint8), 0, 0.0, False, True)
        device.add(np.full((2, 2), p, np.uint8), 0, 0.0, False, True)
    with pytest.raises(ValueError, match="no sampleable transition"):
        host.sample(4)
    with pytest.raises(ValueError, match="no sampleable transition"):
        device.sample(4)
    # One terminal entry ends its game properly: its transition becomes the only valid one.
    device.add(np.full((2, 2), 9, np.uint8), 0, 0.0, True, True)
    device.add(np.full((2, 2), 10, np.uint8), 0, 0.0, False, True)
    assert set(device.sample_positions(100).cpu().numpy().tolist()) == {9}


def test_device_replay_checkpoint_round_trip_and_host_layout(device_name):
    host, device = _fill_both(device_name, capacity=40, adds=93, frame_shape=(3, 3), seed=5)
    state = device.state_dict()
    # The host memory's keys and arrays: a checkpoint holds the same data either way.
    for name, array in host.state_dict().items():
        if isinstance(array, np.ndarray):
            np.testing.assert_array_equal(state[name], array, err_msg=name)
    assert state["sampler"] == "device" and state["rng_state"] is None
    restored = DeviceReplay(40, 4, (3, 3), device=device_name, generator=_generator(1, device_name))
    restored.load_state_dict(state)
    positions = torch.arange(93 - 40, 92)
    for a, b in zip(device.batch_at(positions), restored.batch_at(positions)):
        assert torch.equal(a, b)
    assert restored.size == 40


def _resident_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def test_a_million_transitions_take_under_7_2_kb_each_and_cost_nothing_until_written():
    assert replay_bytes(1_000_000) / 1_000_000 == 84 * 84 + 4 + 4 + 1 + 1 == 7066
    assert DeviceReplay(10, 4, device="cpu").bytes_per_transition == ReplayMemory(10, 4, seed=0).bytes_per_transition
    assert fits_on_device(1_000_000, "cpu")
    before = _resident_bytes()
    memory = DeviceReplay(1_000_000, 4, device="cpu")
    for i in range(1000):
        memory.add(np.full((84, 84), 7, np.uint8), 0, 0.0, False, i == 0)
    memory.flush()
    # 1,000 frames written (7 MB); the other 999,000 slots (7 GB) stay unmapped on the host.
    assert _resident_bytes() - before < 100 * 2**20
    assert memory.bytes_per_transition == 7066


def _learner(device_name, seed):
    torch.manual_seed(seed)
    return Learner(NATURE, 4, device=device_name)


def test_fast_learner_gives_the_plain_learners_losses_on_the_same_minibatches(device_name):
    """16 updates, 2 target syncs, a save/load in the middle: same losses and weights."""
    host, device = _fill_both(device_name, capacity=500, adds=700, frame_shape=(84, 84), seed=7)
    plain, fast = _learner(device_name, 0), FastLearner(_learner(device_name, 0))
    initial = [p.detach().clone() for p in plain.online.parameters()]
    plain_losses, fast_losses = [], []
    for k in range(16):
        positions = device.sample_positions(32)
        plain_losses.append(float(plain.update(host.batch_at(positions.cpu().numpy()))))
        fast_losses.append(fast.update(device.batch_at(positions)))
        if k % 6 == 5:
            plain.sync_target()
            fast.sync_target()
        if k == 8:  # a resume: new optimizer tensors (a captured update graph must be redone)
            fast.load_state_dict(fast.state_dict())
    fast_losses = [float(x) for x in fast_losses]
    assert fast_losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-7)
    assert fast.parameter_updates == plain.parameter_updates == 16
    for p, q, p0 in zip(plain.online.parameters(), fast.online.parameters(), initial):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
        assert not torch.equal(p, p0)  # the updates did change every weight tensor
    for p, q in zip(plain.target.parameters(), fast.target.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    # Acting reads the same weights.
    states = host.sample_states(3)
    torch.testing.assert_close(fast.q_values(states[0]), plain.q_values(states[0]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.q_values(states), plain.q_values(states), rtol=1e-5, atol=1e-6)


def test_fast_learner_loss_stays_on_the_device_until_read(device_name):
    _, device = _fill_both(device_name, capacity=100, adds=120, frame_shape=(84, 84), seed=2)
    fast = FastLearner(_learner(device_name, 1))
    loss = fast.update(device.sample(32))
    assert torch.is_tensor(loss) and loss.dim() == 0 and loss.device.type == torch.device(device_name).type
    assert np.isfinite(float(loss)) and float(loss) > 0


def test_lazy_q_values_skip_the_forward_pass_on_exploring_steps_with_the_same_actions():
    q = np.array([0.1, 0.5, 0.5, -1.0])  # a tie: greedy steps draw from the generator too
    calls = []

    def forward_pass():
        calls.append(1)
        return q

    eager_rng, lazy_rng = np.random.default_rng(3), np.random.default_rng(3)
    eager = [epsilon_greedy(q, 0.3, eager_rng) for _ in range(1000)]
    lazy = [epsilon_greedy(LazyQValues(forward_pass, 4), 0.3, lazy_rng) for _ in range(1000)]
    assert lazy == eager
    assert eager_rng.random() == lazy_rng.random()  # the same draws were consumed
    # One forward pass per greedy step only (70% expected; binomial s.d. 14.5).
    assert 630 < len(calls) < 770
    assert set(eager) == {0, 1, 2, 3} and sum(a in (1, 2) for a in eager) > len(calls)


def test_compiled_optimizer_step_is_the_eager_step_up_to_rounding():
    from dqn.optim import DeepMindRMSprop
    from dqn.speed.compiled_step import compile_optimizer_step, is_compiled

    torch.manual_seed(0)
    weights = [torch.randn(300, 7), torch.randn(11)]
    eager = [w.clone().requires_grad_() for w in weights]
    fused = [w.clone().requires_grad_() for w in weights]
    eager_opt = DeepMindRMSprop(eager, lr=0.01)
    fused_opt = compile_optimizer_step(DeepMindRMSprop(fused, lr=0.01))
    for k in range(4):
        grads = [torch.randn_like(w) for w in weights]
        for params, opt in ((eager, eager_opt), (fused, fused_opt)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    assert is_compiled(fused_opt)
    for a, b, w in zip(eager, fused, weights):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
        assert not torch.equal(a, w)


def test_channels_last_learner_gives_the_nchw_losses_and_weights():
    """The CPU default (NHWC convolutions) against NCHW: 16 updates with target syncs, the same
    minibatches, losses and weights equal to float rounding; its weights load into an NCHW net."""
    host, _ = _fill_both("cpu", capacity=500, adds=700, frame_shape=(84, 84), seed=11)
    torch.manual_seed(0)
    nchw = Learner(NATURE, 4, device="cpu")
    torch.manual_seed(0)
    nhwc = Learner(NATURE, 4, device="cpu", channels_last=True)
    conv1 = nhwc.online.torso[0].weight
    # The format really is in use (else this test would compare NCHW with itself).
    assert conv1.is_contiguous(memory_format=torch.channels_last) and not conv1.is_contiguous()
    assert nhwc.target.torso[0].weight.is_contiguous(memory_format=torch.channels_last)
    positions = np.random.default_rng(5).integers(0, 496, size=(16, 32))
    nchw_losses, nhwc_losses = [], []
    for k, rows in enumerate(positions):
        batch = host.batch_at(rows)
        nchw_losses.append(float(nchw.update(batch)))
        nhwc_losses.append(float(nhwc.update(batch)))
        if k % 6 == 5:
            nchw.sync_target()
            nhwc.sync_target()
    assert nhwc_losses == pytest.approx(nchw_losses, rel=1e-5, abs=1e-7)
    assert len(set(nhwc_losses)) == 16  # every update saw another minibatch
    for p, q in zip(nchw.online.parameters(), nhwc.online.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    for p, q in zip(nchw.target.parameters(), nhwc.target.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    states = host.sample_states(3)
    torch.testing.assert_close(nhwc.q_values(states[0]), nchw.q_values(states[0]), rtol=1e-5, atol=1e-6)
    # A checkpoint or weights file of a channels-last run evaluates in an NCHW network.
    fresh = Learner(NATURE, 4, device="cpu")
    fresh.load_state_dict(nhwc.state_dict())
    assert fresh.online.torso[0].weight.is_contiguous()
    torch.testing.assert_close(fresh.q_values(states), nhwc.q_values(states), rtol=1e-5, atol=1e-6)
