"""Q-network shapes, parameter counts checked by hand, input scaling and initialisation."""

import copy
import math

import pytest
import torch
from torch import nn

from dqn.networks import MLP, NIPS2013CNN, NatureCNN, build_network, initialize


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", ["nature", "nips2013"])
@pytest.mark.parametrize("num_actions", [4, 6, 9, 18])
def test_cnn_output_shape_for_paper_action_counts(name, num_actions):
    net = build_network(name, (4, 84, 84), num_actions)
    x = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    assert net(x).shape == (3, num_actions)


def test_nature_cnn_flatten_size_and_parameter_count():
    # 84 -(8x8 s4)-> (84-8)/4+1 = 20 -(4x4 s2)-> (20-4)/2+1 = 9 -(3x3 s1)-> 7; 64*7*7 = 3136.
    # conv1: 32*4*8*8 + 32   =     8,224
    # conv2: 64*32*4*4 + 64  =    32,832
    # conv3: 64*64*3*3 + 64  =    36,928
    # fc1:   3136*512 + 512  = 1,606,144
    # total without the output layer: 1,684,128; the output layer adds 512*A + A = 513*A,
    # so 1,686,180 for A = 4 and 1,693,362 for A = 18.
    for num_actions, expected in ((4, 1_686_180), (18, 1_693_362)):
        net = NatureCNN(num_actions)
        assert net.flatten_size == 3136
        assert n_params(net) == expected == 1_684_128 + 513 * num_actions


def test_nips2013_cnn_flatten_size_and_parameter_count():
    # 84 -(8x8 s4)-> 20 -(4x4 s2)-> 9; 32*9*9 = 2592.
    # conv1: 16*4*8*8 + 16 = 4,112; conv2: 32*16*4*4 + 32 = 8,224; fc1: 2592*256 + 256 = 663,808
    # total 676,144 + 257*A.
    net = NIPS2013CNN(4)
    assert net.flatten_size == 2592
    assert n_params(net) == 676_144 + 257 * 4 == 677_172


def test_cnn_layer_sequence_is_the_papers():
    net = NatureCNN(6)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (32, (8, 8), (4, 4), (0, 0)),
        (64, (4, 4), (2, 2), (0, 0)),
        (64, (3, 3), (1, 1), (0, 0)),
    ]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(3136, 512), (512, 6)]


@pytest.mark.parametrize("cls", [NatureCNN, NIPS2013CNN])
def test_uint8_and_float_inputs_give_the_same_q_values(cls):
    torch.manual_seed(0)
    net = cls(5)
    x = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    x_float = x.float()
    out_uint8, out_float = net(x), net(x_float)
    assert torch.equal(out_uint8, out_float)
    # The float input is not rescaled in place.
    assert torch.equal(x_float, x.float())
    # Scaling really happens: a network fed 0..1 inputs directly would see 255x larger values.
    assert not torch.allclose(net(x_float / 255.0), out_float)


def test_default_initialisation_is_uniform_within_one_over_sqrt_fan_in():
    # Lua torch's nn.SpatialConvolution/nn.Linear reset() drew weights and biases from
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)); PyTorch's defaults give the same bound.
    torch.manual_seed(0)
    net = NatureCNN(18)
    for layer in [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
        fan_in = layer.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.95 * bound  # the whole interval is used
        assert layer.bias.abs().max() <= bound


def test_mlp_takes_float_inputs_without_scaling():
    torch.manual_seed(0)
    net = build_network("mlp", (4, 4), 2)  # 4 stacked CartPole observations
    assert isinstance(net, MLP)
    x = torch.randn(7, 4, 4)
    assert net(x).shape == (7, 2)
    # Written out by hand: flatten, 128 ReLU, 128 ReLU, linear; no /255 anywhere.
    l1, l2, l3 = [m for m in net.modules() if isinstance(m, nn.Linear)]
    h = torch.relu(x.flatten(1) @ l1.weight.T + l1.bias)
    h = torch.relu(h @ l2.weight.T + l2.bias)
    assert torch.allclose(net(x), h @ l3.weight.T + l3.bias, atol=1e-6)
    assert n_params(net) == (16 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2)


def test_unknown_network_name_is_refused():
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        build_network("resnet", (4, 84, 84), 4)


def test_channels_last_is_the_cpu_default_for_cnns_only():
    from dqn.speed.auto import channels_last_enabled

    assert channels_last_enabled("auto", "cpu", "nature") and channels_last_enabled("auto", "cpu", "nips2013")
    assert not channels_last_enabled("auto", "cuda", "nature")
    assert channels_last_enabled("on", "cuda", "nature") and not channels_last_enabled("off", "cpu", "nature")
    # A fully connected network has no memory format to choose.
    assert not channels_last_enabled("on", "cpu", "mlp")
    with pytest.raises(ValueError, match="auto, on or off"):
        channels_last_enabled("yes", "cpu", "nature")
    torch.manual_seed(0)
    nchw = NatureCNN(4)
    nhwc = copy.deepcopy(nchw).to_channels_last()
    assert nhwc.channels_last and nhwc.torso[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(nhwc(x), nchw(x), rtol=1e-5, atol=1e-6)


def test_he_normal_draws_weights_of_sd_sqrt_two_over_fan_in_and_zero_biases():
    torch.manual_seed(0)
    net = initialize(NatureCNN(18), "he_normal")
    # fan_in by hand: conv1 4*8*8 = 256, conv2 32*4*4 = 512, conv3 64*3*3 = 576, fc 3136, out 512.
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer, fan_in in zip(layers, (256, 512, 576, 3136, 512)):
        expected_sd = math.sqrt(2 / fan_in)
        assert layer.weight.std().item() == pytest.approx(expected_sd, rel=0.1)
        assert torch.count_nonzero(layer.bias) == 0
    # The scale survives the ReLUs: over random frames, the hidden layer's units vary across
    # inputs about 10x more than under the Lua draw (measured 0.044 against 0.0013 on Road Runner).
    x = torch.randint(0, 256, (64, 4, 84, 84), dtype=torch.uint8)
    torch.manual_seed(0)
    lua = initialize(NatureCNN(18), "lua")
    spread = {name: n.head[:2](n.torso(x / 255.0)).std(0).mean().item() for name, n in (("he", net), ("lua", lua))}
    assert spread["he"] > 10 * spread["lua"]


def test_lua_initialisation_leaves_the_modules_own_draw_and_an_unknown_scheme_is_refused():
    torch.manual_seed(3)
    a = NatureCNN(4)
    torch.manual_seed(3)
    b = initialize(NatureCNN(4), "lua")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="network_init"):
        initialize(NatureCNN(4), "xavier")
