"""DeepMind's centered RMSProp against a hand computation, and against torch's RMSprop."""

import copy

import pytest
import torch

from dqn.optim import DeepMindRMSprop

# Hand computation, lr = 0.1, both momenta 0.95, min squared gradient 0.01, theta0 = [1, -2].
#
# Step 1, grad = [0.5, -1.0]:
#   g  = 0.05 * grad   = [0.025, -0.05]
#   g2 = 0.05 * grad^2 = [0.0125, 0.05]
#   g2 - g^2 + 0.01    = [0.0125 - 0.000625 + 0.01, 0.05 - 0.0025 + 0.01] = [0.021875, 0.0575]
#   sqrt               = [0.1479020, 0.2397916]
#   theta1 = [1 - 0.1 * 0.5 / 0.1479020, -2 + 0.1 * 1 / 0.2397916] = [0.6619383, -1.5829712]
# Step 2, grad = [1.0, 0.0]:
#   g  = 0.95 * [0.025, -0.05] + 0.05 * [1, 0]  = [0.07375, -0.0475]
#   g2 = 0.95 * [0.0125, 0.05] + 0.05 * [1, 0]  = [0.061875, 0.0475]
#   g2 - g^2 + 0.01 = [0.061875 - 0.0054390625 + 0.01, 0.0475 - 0.00225625 + 0.01]
#                   = [0.0664359375, 0.05524375]; sqrt = [0.2577517, 0.2350399]
#   theta2 = [0.6619383 - 0.1 * 1 / 0.2577517, -1.5829712 - 0] = [0.2739680, -1.5829712]
GRADS = ([0.5, -1.0], [1.0, 0.0])
THETA1 = [0.6619383, -1.5829712]
THETA2 = [0.2739680, -1.5829712]
# torch.optim.RMSprop(centered=True, alpha=0.95, eps=0.01) divides by sqrt(g2 - g^2) + 0.01:
#   step 1: sqrt([0.011875, 0.0475]) + 0.01 = [0.1189725, 0.2279449] -> [0.5797347, -1.5612976]
TORCH_THETA1 = [0.5797347, -1.5612976]


def run(optimizer_cls, **kwargs):
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = optimizer_cls([theta], lr=0.1, **kwargs)
    out = []
    for grad in GRADS:
        theta.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        out.append(theta.detach().clone())
    return out, opt


def test_one_and_two_steps_match_the_hand_computation():
    (theta1, theta2), opt = run(DeepMindRMSprop)
    assert theta1.tolist() == pytest.approx(THETA1, abs=1e-7)
    assert theta2.tolist() == pytest.approx(THETA2, abs=1e-7)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert state["mean_gradient"].tolist() == pytest.approx([0.07375, -0.0475])
    assert state["mean_squared_gradient"].tolist() == pytest.approx([0.061875, 0.0475])


def test_differs_from_torch_centered_rmsprop_with_eps_outside_the_root():
    (ours1, _), _ = run(DeepMindRMSprop)
    (theirs1, _), _ = run(torch.optim.RMSprop, centered=True, alpha=0.95, eps=0.01)
    assert theirs1.tolist() == pytest.approx(TORCH_THETA1, abs=1e-7)
    assert (ours1 - theirs1).abs().min() > 0.02


def test_float32_parameters_across_several_tensors():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    b = torch.nn.Parameter(torch.zeros(3, 2))
    unused = torch.nn.Parameter(torch.ones(2))  # no gradient: left alone, no state
    opt = DeepMindRMSprop([a, b, unused], lr=0.1)
    for grad in GRADS:
        a.grad = torch.tensor(grad)
        b.grad = torch.full((3, 2), 0.5)
        opt.step()
    assert a.tolist() == pytest.approx(THETA2, abs=1e-6)
    # A constant gradient 0.5: step 1 divides by sqrt(0.0125 - 0.000625 + 0.01) = 0.1479020,
    # step 2 by sqrt(0.024375 - 0.00237656 + 0.01) = sqrt(0.03199844) = 0.1788811.
    expected_b = -0.1 * 0.5 / 0.1479020 - 0.1 * 0.5 / 0.1788811
    assert torch.allclose(b, torch.full((3, 2), expected_b), atol=1e-6)
    assert unused.tolist() == [1.0, 1.0] and unused not in opt.state


def test_state_dict_round_trip_continues_identically():
    (_, _), opt = run(DeepMindRMSprop)
    theta = opt.param_groups[0]["params"][0]
    twin = torch.nn.Parameter(theta.detach().clone())
    opt2 = DeepMindRMSprop([twin], lr=0.5)
    # Deep-copied as a checkpoint file would be: torch's load_state_dict keeps the very tensors
    # it is given when dtype and device already match.
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.param_groups[0]["lr"] == 0.1
    for p, o in ((theta, opt), (twin, opt2)):
        p.grad = torch.tensor([0.3, -0.7], dtype=torch.float64)
        o.step()
    assert torch.equal(theta, twin)


def test_invalid_settings_are_refused():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="lr"):
        DeepMindRMSprop(p, lr=0)
    with pytest.raises(ValueError, match="gradient_momentum"):
        DeepMindRMSprop(p, gradient_momentum=1.0)
    with pytest.raises(ValueError, match="min_squared_gradient"):
        DeepMindRMSprop(p, min_squared_gradient=-1)
