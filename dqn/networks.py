"""Q-networks: the Nature 2015 CNN, the 2013 workshop CNN, and a small MLP for fast tests.

The CNNs take the stacked frames as uint8 (or float in 0..255) and scale them to [0, 1] in
`forward`, so a batch stays uint8 (4x smaller) until it reaches the first layer.

Initialisation (`network_init`): PyTorch's default for Conv2d and Linear draws weights and biases
uniformly in +-1/sqrt(fan_in) (kaiming_uniform with a=sqrt(5) works out to exactly that bound),
which is what Lua torch's nn.SpatialConvolution and nn.Linear `reset()` did in DeepMind's code:
"lua" keeps it. Its activations shrink about 6x in variance per layer, so at the first update the
Nature CNN's Q-values hardly vary over states (s.d. ~0.001 over Road Runner states); "he_normal"
(He et al. 2015: normal weights of s.d. sqrt(2/fan_in), zero biases, as nnabla-rl's DQN) keeps
the activations' scale through the ReLUs. docs/ROAD_RUNNER.md measures what that changes.

One known difference from the Lua code: its first convolution was built with padding 1
(`nn.SpatialConvolution(..., 8, 8, 4, 4, 1)`), which leaves the 20x20 output size and the
3,136 flatten size unchanged but shifts every receptive field by one pixel. The paper does not
mention padding; like DQN Zoo and Dopamine we use none.

Memory format: on a CPU the CNNs run channels-last (NHWC) by default, oneDNN's native layout.
The weight gradient of the first convolution (4 input channels) is about 4x faster there than in
NCHW, which makes a whole update ~12% faster (26.2 -> 23.2 ms, benchmarks/README.md). It is the
same arithmetic in another summation order: results agree to float rounding, not bit for bit, so
a run keeps the format it started with. The --channels-last rule lives in dqn/speed/auto.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dqn.config import NETWORK_INITS, NETWORKS


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class _PixelQNetwork(nn.Module):
    """Convolutional torso + fully connected head over [B, C, H, W] frames in 0..255."""

    def __init__(self, in_shape: tuple[int, ...], num_actions: int,
                 convs: tuple[tuple[int, int, int], ...], hidden_units: int):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"a CNN expects in_shape (channels, height, width), got {in_shape}")
        channels, height, width = in_shape
        layers: list[nn.Module] = []
        for out_channels, kernel, stride in convs:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels = out_channels
            height, width = _conv_out(height, kernel, stride), _conv_out(width, kernel, stride)
        if height < 1 or width < 1:
            raise ValueError(f"input {in_shape} is too small for this network's convolutions")
        self.flatten_size = channels * height * width
        self.torso = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(self.flatten_size, hidden_units), nn.ReLU(), nn.Linear(hidden_units, num_actions)
        )
        self.in_shape = tuple(in_shape)
        self.num_actions = num_actions
        self.channels_last = False

    def to_channels_last(self) -> "_PixelQNetwork":
        """Keep the convolution weights, and lay out every input, channels-last (NHWC)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            # Reordered while still uint8, a quarter of the bytes of the float copy the
            # convolution would otherwise make of an NCHW input.
            x = x.contiguous(memory_format=torch.channels_last)
        # One out-of-place pass: dividing a uint8 tensor by a float gives float32 directly, and
        # a float input is never rescaled in the caller's tensor.
        if x.dtype != torch.uint8:
            x = x.float()
        return self.head(self.torso(torch.div(x, 255.0)))


class NatureCNN(_PixelQNetwork):
    """Mnih et al. (2015): conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1, linear 3136->512, 512->A."""

    def __init__(self, num_actions: int, in_shape: tuple[int, ...] = (4, 84, 84)):
        super().__init__(in_shape, num_actions, convs=((32, 8, 4), (64, 4, 2), (64, 3, 1)), hidden_units=512)


class NIPS2013CNN(_PixelQNetwork):
    """Mnih et al. (2013): conv 16 8x8/4, conv 32 4x4/2, linear 2592->256, 256->A."""

    def __init__(self, num_actions: int, in_shape: tuple[int, ...] = (4, 84, 84)):
        super().__init__(in_shape, num_actions, convs=((16, 8, 4), (32, 4, 2)), hidden_units=256)


class MLP(nn.Module):
    """Fully connected Q-network over flattened float inputs (no /255), for classic-control tests.

    Two hidden layers of 128 ReLU units, the size of the Lua code's own default MLP.
    """

    def __init__(self, in_shape: tuple[int, ...], num_actions: int, hidden_units: tuple[int, ...] = (128, 128)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(in_shape)
        for units in hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, num_actions))
        self.net = nn.Sequential(*layers)
        self.in_shape = tuple(in_shape)
        self.num_actions = num_actions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


def initialize(network: nn.Module, scheme: str) -> nn.Module:
    """Draw `network`'s weights as `scheme` (one of config.NETWORK_INITS) says, in place."""
    if scheme == "lua":
        return network  # the modules' own reset() already drew them so
    if scheme != "he_normal":
        raise ValueError(f"unknown network_init {scheme!r}; valid: {', '.join(NETWORK_INITS)}")
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return network


# The networks with a channels-last form (to_channels_last).
CNN_NETWORKS = ("nature", "nips2013")


def build_network(name: str, in_shape: tuple[int, ...], num_actions: int) -> nn.Module:
    """The Q-network called `name` (one of config.NETWORKS) for inputs of `in_shape`."""
    if num_actions < 1:
        raise ValueError(f"num_actions must be positive, got {num_actions}")
    if name == "nature":
        return NatureCNN(num_actions, tuple(in_shape))
    if name == "nips2013":
        return NIPS2013CNN(num_actions, tuple(in_shape))
    if name == "mlp":
        return MLP(tuple(in_shape), num_actions)
    raise ValueError(f"unknown network {name!r}; valid networks: {', '.join(NETWORKS)}")
