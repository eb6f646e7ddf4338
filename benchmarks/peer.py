"""Side by side: this project's training loop and Stable-Baselines3's DQN on the same game and settings.

    python -m benchmarks.peer [--game breakout] [--rounds 2] [--threads 1]
        [--learning-start-steps 2000] [--warmup-steps 500] [--measure-steps 2000]
        [--sb3-optimize-memory] [--sb3-malloc-thresholds]

Each run is a subprocess of its own (same interpreter, same torch threads), one after the
other, alternating which side goes first in each round so that a drift in the machine's load
hits both. Measured: agent steps per second while learning (after the replay start and a
warm-up, one update every 4 agent steps at batch 32), peak RSS (the subprocess's high-water
mark), and the replay's bytes per transition.

Same settings on both sides: Nature CNN on 4 stacked 84x84 grey frames, minibatch 32, one update
per 4 agent steps, replay of --replay-transitions (100k), learning from --learning-start-steps
(2k), target sync every 10k steps, discount 0.99, learning rate 0.00025, epsilon 0.1 once
learning starts (both sides skip the forward pass on exploring steps), one environment.
Stable-Baselines3 runs as shipped otherwise: its AtariWrapper (30 no-op starts, max-pool over
the last two of 4 repeated frames, 84x84 grey, lost life = end of an episode, FIRE on reset,
reward clipping) with VecFrameStack(4), torch's centered RMSprop (alpha 0.95, eps 0.01), Huber
loss, its default gradient-norm clip of 10, and `optimize_memory_usage=False` (its default:
s and s' stored apart) unless --sb3-optimize-memory. This project runs with the glibc malloc
thresholds set at its entry point (dqn/speed/allocator.py); --sb3-malloc-thresholds gives
Stable-Baselines3 the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Sequence

from benchmarks.common import peak_rss_bytes, print_table, setup_process
from dqn.cli import add_game, add_seed, add_switch, add_threads
from dqn.errors import ArgumentParser, UserError, cli_main

SB3_ENV_ID = "{game}NoFrameskip-v4"
COLUMNS = ("implementation", "agent steps/s while learning", "per round", "cpu ms per agent step", "peak RSS MB",
           "stored transitions", "replay bytes per transition")


def _camel(game: str) -> str:
    return "".join(part.capitalize() for part in game.split("_"))


def run_sb3(*, game: str, seed: int, threads: int, replay_transitions: int, learning_start_steps: int,
            warmup_steps: int, measure_steps: int, optimize_memory: bool, malloc_thresholds: bool,
            **_: Any) -> dict[str, Any]:
    """Stable-Baselines3 DQN on the same budgets; the rate is timed by a step callback."""
    import gymnasium as gym
    import ale_py
    import numpy as np
    import torch

    if malloc_thresholds:
        settings = setup_process(threads)
    else:
        torch.set_num_threads(threads)
        settings = {"malloc_thresholds": False, "torch_threads": threads}
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    total_steps = learning_start_steps + warmup_steps + measure_steps

    class Clock(BaseCallback):
        """Wall time at the start and the end of the timed span (num_timesteps counts agent steps)."""

        def __init__(self):
            super().__init__()
            self.begin: tuple[int, float, int] | None = None
            self.end: tuple[int, float, int] | None = None

        def _on_step(self) -> bool:
            n = self.num_timesteps
            if n == learning_start_steps + warmup_steps:
                self.begin = (n, time.perf_counter(), self.model._n_updates, time.process_time())
            elif n == total_steps:
                self.end = (n, time.perf_counter(), self.model._n_updates, time.process_time())
            return True

    env = VecFrameStack(make_atari_env(SB3_ENV_ID.format(game=_camel(game)), n_envs=1, seed=seed), n_stack=4)
    model = DQN(
        "CnnPolicy", env,
        learning_rate=2.5e-4, buffer_size=replay_transitions, learning_starts=learning_start_steps,
        batch_size=32, gamma=0.99, train_freq=4, gradient_steps=1, target_update_interval=10_000,
        # Epsilon reaches 0.1 at the replay start, as on this project's side.
        exploration_fraction=learning_start_steps / total_steps, exploration_initial_eps=1.0,
        exploration_final_eps=0.1, optimize_memory_usage=optimize_memory,
        replay_buffer_kwargs={"handle_timeout_termination": False} if optimize_memory else None,
        policy_kwargs={"optimizer_class": torch.optim.RMSprop,
                       "optimizer_kwargs": {"alpha": 0.95, "eps": 0.01, "centered": True}},
        seed=seed, device="cpu", verbose=0,
    )
    clock = Clock()
    started = time.monotonic()
    model.learn(total_timesteps=total_steps, callback=clock)
    (n0, t0, u0, c0), (n1, t1, u1, c1) = clock.begin, clock.end
    buffer = model.replay_buffer
    arrays = [buffer.observations, buffer.actions, buffer.rewards, buffer.dones, getattr(buffer, "timeouts", None),
              getattr(buffer, "next_observations", None)]
    replay_bytes = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    return dict(
        settings,
        implementation="Stable-Baselines3 DQN" + (" (optimize_memory_usage)" if optimize_memory else "")
        + (" + malloc thresholds" if malloc_thresholds else ""),
        agent_steps_per_second=(n1 - n0) / (t1 - t0),
        measured_agent_steps=n1 - n0,
        measured_updates=u1 - u0,
        measured_seconds=t1 - t0,
        cpu_ms_per_agent_step=1e3 * (c1 - c0) / (n1 - n0),
        peak_rss_bytes=peak_rss_bytes(),
        replay_bytes_per_transition=replay_bytes / buffer.buffer_size,
        replay_transitions_stored=buffer.size(),
        total_seconds=time.monotonic() - started,
        sb3_version=__import__("stable_baselines3").__version__,
    )


def run_ours(*, game: str, seed: int, threads: int, replay_transitions: int, learning_start_steps: int,
             warmup_steps: int, measure_steps: int, compile_choice: str = "auto", channels_last_choice: str = "auto",
             **_: Any) -> dict[str, Any]:
    from benchmarks.training_run import measure_training
    from dqn.config import NATURE
    from dqn.speed.auto import channels_last_enabled, compile_enabled

    # As dqn.train decides for a Nature run on this device (this short run stands for one).
    compile_optimizer = compile_enabled(compile_choice, "cpu", NATURE.training_length_frames)
    channels_last = channels_last_enabled(channels_last_choice, "cpu", NATURE.network)
    return measure_training(game=game, seed=seed, device="cpu", threads=threads, compile_optimizer=compile_optimizer,
                            channels_last=channels_last,
                            replay_transitions=replay_transitions,
                            learning_start_steps=learning_start_steps, warmup_steps=warmup_steps,
                            measure_steps=measure_steps)


WORKERS = {"ours": run_ours, "sb3": run_sb3}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.peer", description=__doc__.split("\n\n")[0])
    add_game(p, default="breakout")
    add_seed(p, default=0)
    p.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating which goes first")
    add_threads(p, help="torch intra-op threads, the same on both sides")
    p.add_argument("--replay-transitions", type=int, default=100_000)
    p.add_argument("--learning-start-steps", type=int, default=2_000)
    p.add_argument("--warmup-steps", type=int, default=500, help="learning steps before the timed span")
    p.add_argument("--measure-steps", type=int, default=2_000, help="timed learning steps")
    add_switch(p, "--compile", help="this project's compiled optimizer step (auto: as dqn.train decides for a Nature run)")
    add_switch(p, "--channels-last", help="this project's memory format (auto: as dqn.train decides on the CPU, "
               "channels-last)")
    p.add_argument("--sb3-optimize-memory", action="store_true", help="SB3 optimize_memory_usage=True")
    p.add_argument("--sb3-malloc-thresholds", action="store_true",
                   help="also run SB3 with this project's glibc malloc thresholds (a third row)")
    p.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--worker-malloc", action="store_true", help=argparse.SUPPRESS)
    return p


def _worker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(game=args.game, seed=args.seed, threads=args.threads, replay_transitions=args.replay_transitions,
                learning_start_steps=args.learning_start_steps, warmup_steps=args.warmup_steps,
                measure_steps=args.measure_steps, optimize_memory=args.sb3_optimize_memory, compile_choice=args.compile,
                channels_last_choice=args.channels_last)


def _run_worker(args: argparse.Namespace, side: str, malloc: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.peer", "--worker", side, "--game", args.game, "--seed", str(args.seed),
           "--threads", str(args.threads), "--replay-transitions", str(args.replay_transitions),
           "--learning-start-steps", str(args.learning_start_steps), "--warmup-steps", str(args.warmup_steps),
           "--measure-steps", str(args.measure_steps), "--compile", args.compile, "--channels-last", args.channels_last]
    cmd += ["--sb3-optimize-memory"] * args.sb3_optimize_memory + ["--worker-malloc"] * malloc
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> tuple[list[list], list[dict[str, Any]]]:
    sides = [("ours", False), ("sb3", False)] + ([("sb3", True)] if args.sb3_malloc_thresholds else [])
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            result = _run_worker(args, *side)
            results[side].append(result)
            print(f"round {r + 1}: {result['implementation']}: {result['agent_steps_per_second']:.1f} agent steps/s "
                  f"({result['measured_updates']} updates in {result['measured_seconds']:.1f} s, "
                  f"{result['cpu_ms_per_agent_step']:.2f} cpu ms per step), "
                  f"peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MB", file=sys.stderr, flush=True)
    table = []
    medians = {}
    for side in sides:
        runs = results[side]
        rates = [x["agent_steps_per_second"] for x in runs]
        medians[side] = statistics.median(rates)
        table.append([runs[0]["implementation"], medians[side], ", ".join(f"{x:.1f}" for x in rates),
                      statistics.median(x["cpu_ms_per_agent_step"] for x in runs),
                      max(x["peak_rss_bytes"] for x in runs) / 2**20, runs[0]["replay_transitions_stored"],
                      runs[0]["replay_bytes_per_transition"]])
    ours = results[("ours", False)]
    for side in sides[1:]:
        # Ratios within a round: both runs saw about the same machine load.
        per_round = [o["agent_steps_per_second"] / p["agent_steps_per_second"] for o, p in zip(ours, results[side])]
        # CPU time per step is steadier than wall time on a shared machine (one thread each).
        cpu_ratio = statistics.median(p["cpu_ms_per_agent_step"] / o["cpu_ms_per_agent_step"]
                                      for o, p in zip(ours, results[side]))
        table.append([f"ratio this project / {results[side][0]['implementation']}", statistics.median(per_round),
                      ", ".join(f"{x:.2f}" for x in per_round), cpu_ratio, float("nan"), float("nan"), float("nan")])
    return table, [x for runs in results.values() for x in runs]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        kwargs = _worker_kwargs(args)
        result = WORKERS[args.worker](**kwargs, **({"malloc_thresholds": args.worker_malloc} if args.worker == "sb3" else {}))
        print(json.dumps(result))
        return 0
    if args.rounds < 1 or args.threads < 1:
        raise UserError("--rounds and --threads must be at least 1")
    if args.learning_start_steps < 32 or args.measure_steps < 4 or args.warmup_steps < 4:
        raise UserError("--learning-start-steps must be at least 32, --warmup-steps and --measure-steps at least 4")
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        raise UserError("Stable-Baselines3 is not installed; pip install -e '.[benchmark]'") from None
    started = time.monotonic()
    table, runs = compare(args)
    print_table(f"Side by side on {args.game}: {args.rounds} round(s), {args.threads} torch thread(s) each, replay "
                f"{args.replay_transitions:,}, learning from step {args.learning_start_steps:,}, {args.warmup_steps:,} "
                f"warm-up + {args.measure_steps:,} timed learning steps", COLUMNS, table)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    cli_main(main)
