"""The update's layers one by one, in NCHW and channels-last memory format: where the CPU's FLOPs go.

    python -m benchmarks.layers [--preset nature] [--batch 32] [--repeats 40] [--threads 1]

For each layer of the preset's CNN, at the update's minibatch size: the forward pass, and the
backward pass (input gradient where the layer needs one, weight and bias gradients), timed in
CPU milliseconds of this process, with the rate in GFLOP/s (2 FLOP per multiply-add). Then the
whole update (`dqn.agent.Learner`: target forward, online forward and backward, compiled
RMSProp step) in both formats. Layer inputs are laid out as the format's network passes them on: in
channels-last the first layer's input is the uint8 batch reordered, as
`dqn.networks._PixelQNetwork.forward` does.

This is how the memory format choice of `dqn.train --channels-last auto` was made: a fast
kernel for one format and shape can be several times slower for another.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

from benchmarks.common import print_table, setup_process
from dqn.cli import add_threads
from dqn.errors import ArgumentParser, cli_main

COLUMNS = ("layer", "format", "forward ms", "forward GFLOP/s", "backward ms", "backward GFLOP/s")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.layers", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="nature", choices=("nature", "nips2013"))
    p.add_argument("--batch", type=int, default=32, help="minibatch size (the paper's 32)")
    p.add_argument("--repeats", type=int, default=40, help="timed calls of each measurement")
    add_threads(p)
    return p


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        fn()
    started = time.process_time()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.process_time() - started) / repeats


def layer_rows(preset: str, batch: int, repeats: int) -> list[list]:
    import torch
    from torch import nn

    from dqn.config import resolve
    from dqn.networks import build_network

    hp = resolve(preset, {})
    rows: list[list] = []
    for channels_last in (False, True):
        fmt = "channels-last" if channels_last else "NCHW"
        torch.manual_seed(0)
        net = build_network(hp.network, (4, 84, 84), 4)
        if channels_last:
            net.to_channels_last()
        x = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = torch.div(x, 255.0)
        layers = [m for m in (*net.torso, *net.head) if isinstance(m, (nn.Conv2d, nn.Linear))]
        for index, layer in enumerate(layers):
            if isinstance(layer, nn.Linear) and x.dim() > 2:
                x = x.flatten(1)
            # The first layer's input needs no gradient: its backward is the weight gradient only.
            inp = x.detach().requires_grad_(index > 0)
            out = layer(inp)
            grad = torch.randn_like(out)
            macs = out.numel() * layer.weight[0].numel()  # per output: one multiply-add per weight of its unit
            forward_ms = cpu_ms(lambda: layer(inp), repeats)
            both_ms = cpu_ms(lambda: layer(inp).backward(grad), repeats)
            backward_ms = max(both_ms - forward_ms, 1e-6)
            backward_flop = 2 * macs * (2 if index > 0 else 1)
            name = (f"conv {layer.in_channels}->{layer.out_channels}, {layer.kernel_size[0]}x{layer.kernel_size[1]}"
                    f"/{layer.stride[0]}" if isinstance(layer, nn.Conv2d)
                    else f"linear {layer.in_features}->{layer.out_features}")
            rows.append([name, fmt, forward_ms, 2 * macs / forward_ms / 1e6, backward_ms, backward_flop / backward_ms / 1e6])
            x = torch.relu(out.detach())
    return rows


def update_ms(preset: str, batch: int, repeats: int) -> dict[str, float]:
    import numpy as np
    import torch

    from dqn.agent import Learner
    from dqn.config import resolve
    from dqn.speed.compiled_step import compile_optimizer_step

    hp = resolve(preset, {})
    rng = np.random.default_rng(0)
    s_t, s_tp1 = (torch.from_numpy(rng.integers(0, 256, (batch, 4, 84, 84), dtype=np.uint8)) for _ in range(2))
    a_t = torch.from_numpy(rng.integers(0, 4, batch))
    r_t, terminal = torch.zeros(batch), torch.zeros(batch)
    result = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        learner = Learner(hp, 4, device="cpu", channels_last=channels_last)
        compile_optimizer_step(learner.optimizer)
        result["channels-last" if channels_last else "NCHW"] = cpu_ms(
            lambda: learner.descend(learner.losses(s_t, a_t, r_t, terminal, s_tp1)), repeats)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.batch, args.repeats, args.threads) < 1:
        from dqn.errors import UserError

        raise UserError("--batch, --repeats and --threads must be at least 1")
    settings = setup_process(args.threads)
    started = time.monotonic()
    rows = layer_rows(args.preset, args.batch, args.repeats)
    update = update_ms(args.preset, args.batch, args.repeats)
    print_table(f"Layers of the {args.preset} CNN at batch {args.batch}, CPU milliseconds of this process, "
                f"{settings['torch_threads']} torch thread(s)", COLUMNS, rows)
    print(f"\nwhole update (target forward, online forward and backward, compiled RMSProp step): "
          f"NCHW {update['NCHW']:.2f} ms, channels-last {update['channels-last']:.2f} ms "
          f"({update['channels-last'] / update['NCHW']:.2f}x)")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    cli_main(main)
