"""TD targets and loss by hand, the Learner's update (target network, summed gradient, 2013 path,
determinism, checkpoints) and epsilon-greedy action choice."""

import dataclasses

import numpy as np
import pytest
import torch

from dqn.agent import Learner, epsilon_greedy, td_loss, td_target
from dqn.config import NATURE
from dqn.replay import Batch

MLP_HP = dataclasses.replace(NATURE, network="mlp")
NO_TARGET_HP = dataclasses.replace(MLP_HP, target_network_update_frequency_steps=0, td_error_clip=0.0)
OBS = (4,)  # CartPole-sized observations for the fast MLP learners


def mlp_batch(rng, batch_size=8, num_actions=3):
    return Batch(
        state=rng.standard_normal((batch_size, *OBS)).astype(np.float32),
        action=rng.integers(0, num_actions, batch_size).astype(np.int64),
        reward=rng.choice([-1.0, 0.0, 1.0], batch_size).astype(np.float32),
        terminal=(rng.random(batch_size) < 0.25).astype(np.float32),
        next_state=rng.standard_normal((batch_size, *OBS)).astype(np.float32),
    )


def atari_batch(rng, batch_size=32, num_actions=6):
    return Batch(
        state=rng.integers(0, 256, (batch_size, 4, 84, 84), dtype=np.uint8),
        action=rng.integers(0, num_actions, batch_size).astype(np.int64),
        reward=rng.choice([-1.0, 0.0, 1.0], batch_size).astype(np.float32),
        terminal=(rng.random(batch_size) < 0.1).astype(np.float32),
        next_state=rng.integers(0, 256, (batch_size, 4, 84, 84), dtype=np.uint8),
    )


def tensors(batch):
    return [torch.from_numpy(x) for x in batch]


def params(net):
    return [p.detach().clone() for p in net.parameters()]


# ---------------------------------------------------------------------------- targets and loss
def test_td_target_non_terminal_and_terminal():
    # r = 1, gamma = 0.99, max_a' Q' = 2: 1 + 0.99 * 2 = 2.98; terminal: just r = 1.0.
    y = td_target(
        reward=torch.tensor([1.0, 1.0]),
        terminal=torch.tensor([0.0, 1.0]),
        next_q_target=torch.tensor([[2.0, -1.0, 0.5], [2.0, -1.0, 0.5]]),
        discount=0.99,
    )
    assert y.tolist() == pytest.approx([2.98, 1.0])


def test_huber_gradient_is_the_td_error_clipped_to_one():
    q = torch.zeros(4, requires_grad=True)
    target = torch.tensor([3.0, 0.5, -3.0, -0.5])
    loss = td_loss(q, target, td_error_clip=1.0)
    # |d| <= 1: 0.5 d^2; |d| > 1: |d| - 0.5.  d = 3 -> 2.5, d = 0.5 -> 0.125.
    assert loss.tolist() == pytest.approx([2.5, 0.125, 2.5, 0.125])
    loss.sum().backward()
    # d loss / d q = -(clipped TD error): -1 for an error of 3, -0.5 for an error of 0.5.
    assert q.grad.tolist() == pytest.approx([-1.0, -0.5, 1.0, 0.5])


def test_zero_clip_is_half_squared_error():
    q = torch.zeros(2, requires_grad=True)
    loss = td_loss(q, torch.tensor([3.0, -0.5]), td_error_clip=0.0)
    assert loss.tolist() == pytest.approx([4.5, 0.125])
    loss.sum().backward()
    assert q.grad.tolist() == pytest.approx([-3.0, 0.5])


# ---------------------------------------------------------------------------- the Learner
def test_targets_come_from_the_target_network_when_present():
    torch.manual_seed(0)
    learner = Learner(MLP_HP, 3, device="cpu", in_shape=OBS)
    assert learner.target is not None and learner.target is not learner.online
    last = list(learner.target.modules())[-1]
    with torch.no_grad():  # target Q(s', .) = [10, 5, 0] for every s'
        last.weight.zero_()
        last.bias.copy_(torch.tensor([10.0, 5.0, 0.0]))
    batch = mlp_batch(np.random.default_rng(0))
    s, a, r, terminal, _ = tensors(batch)
    y = r + 0.99 * (1 - terminal) * 10.0  # e.g. r = 0, not terminal: 9.9
    with torch.no_grad():
        q = learner.online(s).gather(1, a[:, None]).squeeze(1)
    expected = torch.nn.functional.huber_loss(q, y, delta=1.0).item()
    assert learner.update(batch) == pytest.approx(expected, rel=1e-6)
    assert learner.parameter_updates == 1


def test_without_a_target_network_targets_come_from_the_online_network_and_move():
    # The 2013 path: no target network, plain squared error.
    torch.manual_seed(0)
    learner = Learner(NO_TARGET_HP, 3, device="cpu", in_shape=OBS)
    assert learner.target is None
    batch = mlp_batch(np.random.default_rng(1))
    s, a, r, terminal, s2 = tensors(batch)

    def targets_and_loss():
        with torch.no_grad():
            y = r + 0.99 * (1 - terminal) * learner.online(s2).max(1).values
            q = learner.online(s).gather(1, a[:, None]).squeeze(1)
        return y, (0.5 * (y - q) ** 2).mean().item()

    y0, expected = targets_and_loss()
    assert learner.update(batch) == pytest.approx(expected, rel=1e-6)
    y1, _ = targets_and_loss()
    non_terminal = terminal == 0
    assert (y1[non_terminal] - y0[non_terminal]).abs().min() > 0  # every bootstrapped target moved
    assert torch.equal(y1[~non_terminal], y0[~non_terminal])


def test_with_a_target_network_targets_stay_fixed_until_sync():
    torch.manual_seed(0)
    learner = Learner(MLP_HP, 3, device="cpu", in_shape=OBS)
    batch = mlp_batch(np.random.default_rng(2))
    s2 = torch.from_numpy(batch.next_state)
    before = learner.target(s2).detach().clone()
    for _ in range(3):
        learner.update(batch)
    assert torch.equal(learner.target(s2), before)
    assert any(not torch.equal(o, t) for o, t in zip(learner.online.parameters(), learner.target.parameters()))
    learner.sync_target()
    for o, t in zip(learner.online.parameters(), learner.target.parameters()):
        assert torch.equal(o, t) and o.data_ptr() != t.data_ptr()
    assert all(not t.requires_grad for t in learner.target.parameters())
    learner.update(batch)  # the copy is independent: training the online net leaves it alone
    assert any(not torch.equal(o, t) for o, t in zip(learner.online.parameters(), learner.target.parameters()))


def test_gradient_is_summed_over_the_minibatch():
    # 4 copies of one transition give 4x the gradient of that transition alone (a mean would
    # give 1x), which is what makes min_squared_gradient = 0.01 the paper's constant.
    rng = np.random.default_rng(3)
    one = mlp_batch(rng, batch_size=1)
    four = Batch(*[np.repeat(x, 4, axis=0) for x in one])
    grads = []
    for batch in (one, four):
        torch.manual_seed(0)
        learner = Learner(MLP_HP, 3, device="cpu", in_shape=OBS)
        learner.update(batch)
        grads.append([p.grad.clone() for p in learner.online.parameters()])
    for g1, g4 in zip(*grads):
        assert torch.allclose(g4, 4 * g1, rtol=1e-5, atol=1e-7)
    assert any(g.abs().max() > 0 for g in grads[0])


def test_same_seed_same_losses_on_cpu():
    rng = np.random.default_rng(4)
    batches = [atari_batch(rng) for _ in range(5)]
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        learner = Learner(NATURE, 6, device="cpu")
        runs.append(([float(learner.update(b)) for b in batches], params(learner.online)))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert len(set(runs[0][0])) == 5  # the loss really changes from batch to batch


def test_updates_lower_the_loss_on_a_repeated_batch():
    torch.manual_seed(0)
    learner = Learner(NATURE, 6, device="cpu")
    batch = atari_batch(np.random.default_rng(5))
    losses = [float(learner.update(batch)) for _ in range(15)]
    # Measured: 0.2995, 0.2961, ... 0.1964 -- every step downhill, a third off after 15.
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.75 * losses[0]


def test_update_returns_the_loss_as_a_0d_float_tensor_on_the_device():
    # The type FastLearner.update returns too, so the training loop sums both alike, unread.
    torch.manual_seed(0)
    learner = Learner(MLP_HP, 3, device="cpu", in_shape=OBS)
    batch = mlp_batch(np.random.default_rng(8))
    loss = learner.update(batch)
    assert torch.is_tensor(loss) and loss.dim() == 0 and loss.dtype == torch.float32
    assert loss.device == learner.device and not loss.requires_grad
    # Tensors already on the device (a DeviceBatch's fields) give the same update as host arrays.
    torch.manual_seed(0)
    twin = Learner(MLP_HP, 3, device="cpu", in_shape=OBS)
    assert torch.equal(twin.update(Batch(*(torch.from_numpy(x) for x in batch))), loss)
    assert all(torch.equal(p, q) for p, q in zip(params(learner.online), params(twin.online)))


def test_q_values_from_numpy_or_tensor_single_or_batched():
    torch.manual_seed(0)
    learner = Learner(NATURE, 6, device="cpu")
    states = np.random.default_rng(6).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    q = learner.q_values(states)
    assert q.shape == (3, 6) and not q.requires_grad
    assert torch.equal(learner.q_values(torch.from_numpy(states)), q)
    single = states[0]
    single.setflags(write=False)  # e.g. a frame stack handed out read-only
    assert torch.allclose(learner.q_values(single), q[:1], atol=1e-6)


@pytest.mark.parametrize("hp", [MLP_HP, NO_TARGET_HP], ids=["target", "no-target"])
def test_state_dict_round_trip_resumes_identically(hp):
    rng = np.random.default_rng(7)
    batches = [mlp_batch(rng) for _ in range(4)]
    torch.manual_seed(0)
    learner = Learner(hp, 3, device="cpu", in_shape=OBS)
    for b in batches[:2]:
        learner.update(b)
    learner.sync_target()
    learner.update(batches[2])
    torch.manual_seed(99)
    resumed = Learner(hp, 3, device="cpu", in_shape=OBS)
    resumed.load_state_dict(learner.state_dict())
    assert resumed.parameter_updates == 3
    assert resumed.update(batches[3]) == learner.update(batches[3])
    assert all(torch.equal(a, b) for a, b in zip(params(learner.online), params(resumed.online)))
    if hp.uses_target_network:
        assert all(torch.equal(a, b) for a, b in zip(params(learner.target), params(resumed.target)))


def test_state_dict_refuses_a_learner_with_other_target_setup():
    with_target = Learner(MLP_HP, 3, device="cpu", in_shape=OBS)
    without = Learner(NO_TARGET_HP, 3, device="cpu", in_shape=OBS)
    with pytest.raises(ValueError, match="target network"):
        without.load_state_dict(with_target.state_dict())


def test_optimizer_is_deepmind_rmsprop_from_the_hyperparameters():
    learner = Learner(NATURE, 4, device="cpu")
    group = learner.optimizer.param_groups[0]
    assert type(learner.optimizer).__name__ == "DeepMindRMSprop"
    assert (group["lr"], group["gradient_momentum"], group["squared_gradient_momentum"], group["min_squared_gradient"]) == (
        0.00025, 0.95, 0.95, 0.01)


# ---------------------------------------------------------------------------- epsilon-greedy
def test_greedy_ties_are_broken_at_random():
    rng = np.random.default_rng(0)
    q = np.array([1.0, 3.0, 3.0, 0.0], dtype=np.float32)
    picks = [epsilon_greedy(q, 0.0, rng) for _ in range(400)]
    assert set(picks) == {1, 2}
    assert 120 < picks.count(1) < 280  # about half each


def test_epsilon_zero_is_greedy_and_epsilon_one_is_uniform():
    rng = np.random.default_rng(1)
    q = np.array([[0.1, 0.7, -2.0, 0.69]])  # a [1, A] row from q_values() works too
    assert {epsilon_greedy(q, 0.0, rng) for _ in range(200)} == {1}
    picks = np.array([epsilon_greedy(q, 1.0, rng) for _ in range(4000)])
    counts = np.bincount(picks, minlength=4)
    assert counts.min() > 850  # 1000 expected each
    # epsilon 0.5: half random (a quarter of those hit action 1 too) -> action 1 in ~62.5 %.
    share = np.mean([epsilon_greedy(q, 0.5, rng) == 1 for _ in range(4000)])
    assert 0.58 < share < 0.67


def test_nan_q_values_are_an_error():
    with pytest.raises(ValueError, match="NaN"):
        epsilon_greedy(np.array([np.nan, np.nan]), 0.0, np.random.default_rng(0))


class _MeanTimesRow(torch.nn.Module):
    """Q(s, .) = mean(s) * [1, 2, 0] + [0, 0, 3]: a target network whose max depends on the state."""

    def forward(self, x):
        return x.flatten(1).mean(1, keepdim=True) * torch.tensor([1.0, 2.0, 0.0]) + torch.tensor([0.0, 0.0, 3.0])


def test_heldout_statistics_use_the_target_network_on_next_states():
    # Next states filled with 1, 4 and 0.5 give target maxima max(m, 2m, 3) = 3, 8 and 3; the
    # online network is Q(s, .) = [0.5, 1.0, 1.5] for every input. DeepMind's
    # compute_validation_statistics: v_avg = q2_max:mean() over all held-out transitions, the
    # terminal one too: (3 + 8 + 3) / 3 = 14/3 (over the non-terminal ones alone: 3; the online
    # network on s: 1.5); tderr_avg = mean |TD error|, clipped as in the update.
    torch.manual_seed(0)
    for hp, td_errors in ((MLP_HP, [1.0, 0.5, 0.97]), (dataclasses.replace(MLP_HP, td_error_clip=0.0), [2.47, 0.5, 0.97])):
        learner = Learner(hp, 3, device="cpu", in_shape=OBS)
        learner.target = _MeanTimesRow()
        last = list(learner.online.modules())[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(torch.tensor([0.5, 1.0, 1.5]))
        states = np.random.default_rng(1).standard_normal((3, *OBS)).astype(np.float32)
        next_states = np.stack([np.full(OBS, value, np.float32) for value in (1.0, 4.0, 0.5)])
        heldout = Batch(
            state=states, next_state=next_states,
            action=np.array([0, 2, 1], dtype=np.int64),
            reward=np.array([0.0, 1.0, -1.0], dtype=np.float32),
            terminal=np.array([0.0, 1.0, 0.0], dtype=np.float32),
        )
        # TD errors: 0 + 0.99 * 3 - 0.5 = 2.47; 1 - 1.5 = -0.5 (terminal); -1 + 0.99 * 3 - 1.0 = 0.97;
        # clipped to [-1, 1] with the Nature clip: 1, 0.5, 0.97.
        q_max, td_error_abs = learner.heldout_statistics(heldout, chunk_transitions=2)
        assert q_max == pytest.approx(14.0 / 3.0, rel=1e-6)
        assert td_error_abs == pytest.approx(sum(td_errors) / 3, rel=1e-5)


def test_two_updates_equal_a_transcription_of_qlearnminibatch():
    """Learner.update against NeuralQLearner:getQUpdate + qLearnMinibatch transcribed in numpy
    (float64) on a linear Q-network Q(s) = W s + b, whose backward is targets^T s:

        delta = r + discount * (1 - term) * max_a Q_target(s2, a) - Q(s, a), clipped to [-1, 1]
        targets[i][a[i]] = delta[i]; self.network:backward(s, targets)  -> dw = sum_i targets_i s_i^T
        g = 0.95 g + 0.05 dw; g2 = 0.95 g2 + 0.05 dw^2; w += lr * dw / sqrt(g2 - g^2 + 0.01)

    The scale of each step (the gradient summed, not averaged, over the minibatch; the clipped
    delta itself, not twice it; 0.01 inside the root) is what this pins: a mean over the 32
    transitions, or nnabla-rl's 2 * delta, moves the weights by other amounts."""
    rng = np.random.default_rng(7)
    num_actions, features, batch_size = 3, 4, 32
    learner = Learner(MLP_HP, num_actions, device="cpu", in_shape=OBS)
    learner.online = torch.nn.Linear(features, num_actions)
    learner.target = torch.nn.Linear(features, num_actions).requires_grad_(False)
    learner.optimizer = type(learner.optimizer)(learner.online.parameters(), lr=MLP_HP.learning_rate)
    w = learner.online.weight.detach().double().numpy().copy()
    b = learner.online.bias.detach().double().numpy().copy()
    w_target = learner.target.weight.detach().double().numpy()
    b_target = learner.target.bias.detach().double().numpy()
    g = {"w": np.zeros_like(w), "b": np.zeros_like(b)}
    g2 = {"w": np.zeros_like(w), "b": np.zeros_like(b)}
    for _ in range(2):
        batch = Batch(
            state=rng.standard_normal((batch_size, features)).astype(np.float32),
            action=rng.integers(0, num_actions, batch_size).astype(np.int64),
            reward=rng.choice([-1.0, 0.0, 1.0], batch_size).astype(np.float32),
            terminal=(rng.random(batch_size) < 0.25).astype(np.float32),
            next_state=(3 * rng.standard_normal((batch_size, features))).astype(np.float32),
        )
        s, s2 = batch.state.astype(np.float64), batch.next_state.astype(np.float64)
        q2_max = (s2 @ w_target.T + b_target).max(axis=1)
        delta = batch.reward + 0.99 * (1 - batch.terminal) * q2_max - (s @ w.T + b)[np.arange(batch_size), batch.action]
        delta = np.clip(delta, -1.0, 1.0)
        targets = np.zeros((batch_size, num_actions))
        targets[np.arange(batch_size), batch.action] = delta
        dw = {"w": targets.T @ s, "b": targets.sum(axis=0)}
        for name, param in (("w", w), ("b", b)):
            g[name] = 0.95 * g[name] + 0.05 * dw[name]
            g2[name] = 0.95 * g2[name] + 0.05 * dw[name] ** 2
            param += MLP_HP.learning_rate * dw[name] / np.sqrt(g2[name] - g[name] ** 2 + 0.01)
        learner.update(batch)
        assert np.abs(delta).max() == 1.0 and (np.abs(delta) < 0.5).any()  # both sides of the clip
    np.testing.assert_allclose(learner.online.weight.detach().numpy(), w, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(learner.online.bias.detach().numpy(), b, rtol=1e-5, atol=1e-8)
