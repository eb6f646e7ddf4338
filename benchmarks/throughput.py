"""The throughput table docs/PERFORMANCE.md quotes: environment, evaluation, training, replay memory.

    python -m benchmarks.throughput [--game breakout] [--device auto|cpu|cuda] [--fast-path auto|on|off]
        [--threads 1] [--concurrent-runs 1] [--env-steps 2000] [--eval-episodes 30]
        [--learning-start-steps 2000] [--warmup-steps 500] [--measure-steps 2000]

Rows:
- environment only: `AtariEnv.step` with uniform random actions in this process (one core),
  the Nature preprocessing included; the ceiling of one faithful run.
- evaluation: `dqn.evaluate.evaluate` of a (randomly initialised) Nature-CNN policy at epsilon
  0.05 with one worker process per core, episodes cut at --eval-max-frames; episodes per
  minute depend on how long the policy survives, frames per second much less.
- training: the real `dqn.train` loop while learning (one update every 4 agent steps at batch
  32, replay --replay-transitions), --concurrent-runs runs at once, each a process of its own
  with --threads torch threads; their total is the machine's training throughput.
- replay memory: bytes per transition of the host memory (dqn.replay) and of the device
  memory (dqn.speed.device_replay), exact from their array layouts; peak RSS of one training run
  as measured, and projected for a Nature run (1M transitions) by adding the unfilled memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Sequence

from benchmarks.common import print_table, setup_process
from dqn.devices import resolve_device
from dqn.cli import add_device, add_game, add_seed, add_switch, add_threads, add_workers
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("measure", "value", "unit", "setting")
NATURE_REPLAY_TRANSITIONS = 1_000_000


def environment_rate(game: str, agent_steps: int, seed: int = 0) -> dict[str, float]:
    import numpy as np

    from dqn.atari import AtariEnv

    env = AtariEnv(game, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset()
    frames_before = env.total_frames
    started = time.perf_counter()
    for _ in range(agent_steps):
        step = env.step(int(rng.integers(env.num_actions)))
        if step.game_over or step.truncated:
            env.reset()
    seconds = time.perf_counter() - started
    return {"agent_steps_per_second": agent_steps / seconds, "frames_per_second": (env.total_frames - frames_before) / seconds}


def evaluation_rate(game: str, episodes: int, max_episode_frames: int, workers: int, device: str) -> dict[str, float]:
    import torch

    from dqn.atari import AtariEnv
    from dqn.evaluate import evaluate
    from dqn.networks import build_network
    from dqn.policy import DQNPolicy

    num_actions = AtariEnv(game, seed=0).num_actions
    torch.manual_seed(0)
    policy = DQNPolicy(build_network("nature", (4, 84, 84), num_actions), num_actions, device=device)
    started = time.perf_counter()
    rows = evaluate(policy, game, seed=0, episodes=episodes, max_episode_frames=max_episode_frames, num_workers=workers)
    seconds = time.perf_counter() - started
    return {"episodes_per_minute": 60.0 * len(rows) / seconds, "frames_per_second": float(rows["length_frames"].sum()) / seconds,
            "mean_episode_frames": float(rows["length_frames"].mean())}


def _training_worker_command(args: argparse.Namespace, device: str, fast: bool) -> list[str]:
    return [sys.executable, "-m", "benchmarks.throughput", "--worker", "--game", args.game, "--device", device,
            "--fast-path", "on" if fast else "off", "--compile", args.compile, "--channels-last", args.channels_last,
            "--threads", str(args.threads),
            "--replay-transitions", str(args.replay_transitions), "--learning-start-steps", str(args.learning_start_steps),
            "--warmup-steps", str(args.warmup_steps), "--measure-steps", str(args.measure_steps)]


def training_rates(args: argparse.Namespace, device: str, fast: bool) -> list[dict[str, Any]]:
    """One result per concurrent run, each run a process of its own, all started together."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    procs = [subprocess.Popen(_training_worker_command(args, device, fast) + ["--seed", str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(args.concurrent_runs)]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"training worker failed ({proc.returncode}):\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    add_game(p, default="breakout")
    add_seed(p, default=0)
    add_device(p)
    add_switch(p, "--fast-path", help="auto: on for CUDA")
    add_switch(p, "--compile", help="compiled optimizer step (auto: as dqn.train decides for a Nature run on this device)")
    add_switch(p, "--channels-last", help="the CNN's memory format (auto: as dqn.train decides on this device)")
    add_threads(p, help="torch threads of each training run")
    p.add_argument("--concurrent-runs", type=int, default=1, help="training runs at once (one per spare core)")
    p.add_argument("--env-steps", type=int, default=2_000, help="agent steps of the environment-only row")
    p.add_argument("--eval-episodes", type=int, default=30, help="the protocol's 30: the policy's batch is their count")
    p.add_argument("--eval-max-frames", type=int, default=18_000, help="frame cap of an evaluation episode")
    add_workers(p, flag="--eval-workers", help="evaluation processes (default: every core)")
    p.add_argument("--replay-transitions", type=int, default=100_000, help="replay capacity of the training rows")
    p.add_argument("--learning-start-steps", type=int, default=2_000)
    p.add_argument("--warmup-steps", type=int, default=500)
    p.add_argument("--measure-steps", type=int, default=2_000)
    p.add_argument("--skip", nargs="*", default=[], choices=("environment", "evaluation", "training"),
                   help="rows to leave out")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def _worker(args: argparse.Namespace) -> int:
    from benchmarks.training_run import measure_training
    from dqn.config import NATURE
    from dqn.speed.auto import channels_last_enabled, compile_enabled

    fast = args.fast_path == "on"
    # This short run stands for a Nature run: compile as dqn.train would decide for one.
    compiled = not fast and compile_enabled(args.compile, args.device, NATURE.training_length_frames)
    channels_last = not fast and channels_last_enabled(args.channels_last, args.device, NATURE.network)
    result = measure_training(game=args.game, seed=args.seed, device=args.device, threads=args.threads,
                              fast_path=fast, compile_optimizer=compiled, channels_last=channels_last,
                              replay_transitions=args.replay_transitions,
                              learning_start_steps=args.learning_start_steps, warmup_steps=args.warmup_steps,
                              measure_steps=args.measure_steps)
    print(json.dumps(result))
    return 0


def table(args: argparse.Namespace) -> list[list]:
    from dqn.replay import ReplayMemory
    from dqn.speed.device_replay import replay_bytes

    setup_process(args.threads)
    device = resolve_device(args.device)
    fast = args.fast_path == "on" or (args.fast_path == "auto" and device == "cuda")
    cores = os.cpu_count() or 1
    rows: list[list] = []
    if "environment" not in args.skip:
        env = environment_rate(args.game, args.env_steps, args.seed)
        rows += [["environment only", env["agent_steps_per_second"], "agent steps/s", "1 process, random actions"],
                 ["environment only", env["frames_per_second"], "frames/s", "1 process, random actions"]]
    if "evaluation" not in args.skip:
        workers = args.eval_workers or cores
        ev = evaluation_rate(args.game, args.eval_episodes, args.eval_max_frames, workers, device)
        setting = (f"{workers} worker(s), {args.eval_episodes} episodes of at most {args.eval_max_frames:,} frames "
                   f"(mean {ev['mean_episode_frames']:,.0f}), untrained Nature CNN, epsilon 0.05")
        rows += [["evaluation", ev["episodes_per_minute"], "episodes/min", setting],
                 ["evaluation", ev["frames_per_second"], "frames/s", setting]]
    if "training" not in args.skip:
        runs = training_rates(args, device, fast)
        path = (f"{device}, {'fast path' if fast else 'plain path'}"
                f"{', compiled optimizer step' if runs[0].get('compiled_optimizer_step') else ''}"
                f"{', channels-last' if runs[0].get('channels_last') else ''}, {args.threads} thread(s)")
        for i, run in enumerate(runs):
            rows.append([f"training while learning, run {i + 1} of {len(runs)}", run["agent_steps_per_second"],
                         "agent steps/s", f"{path}, batch 32, 1 update / 4 steps, {run['measured_updates']} updates timed"])
        if len(runs) > 1:
            rows.append([f"training while learning, total of {len(runs)} runs",
                         sum(r["agent_steps_per_second"] for r in runs), "agent steps/s", path])
        run = runs[0]
        rows.append(["training: peak RSS of one run", run["peak_rss_bytes"] / 2**20, "MiB",
                     f"{run['replay_transitions_stored']:,} transitions stored"])
        unfilled = (NATURE_REPLAY_TRANSITIONS - run["replay_transitions_stored"]) * run["replay_bytes_per_transition"]
        if not fast or device == "cpu":
            rows.append(["training: peak RSS of a Nature run (projected)", (run["peak_rss_bytes"] + unfilled) / 2**20,
                         "MiB", "measured peak + the unfilled part of a 1M-transition memory"])
    host_bytes = ReplayMemory(5, 4, seed=0).bytes_per_transition  # the layout is the same at any capacity
    rows.append(["replay memory (host, dqn.replay)", host_bytes, "bytes/transition",
                 f"1M transitions = {host_bytes * NATURE_REPLAY_TRANSITIONS / 1e9:.2f} GB"])
    device_bytes = replay_bytes(NATURE_REPLAY_TRANSITIONS) / NATURE_REPLAY_TRANSITIONS
    rows.append(["replay memory (device, dqn.speed.device_replay)", device_bytes, "bytes/transition",
                 f"1M transitions = {device_bytes * NATURE_REPLAY_TRANSITIONS / 1e9:.2f} GB"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return _worker(args)
    if min(args.threads, args.concurrent_runs, args.env_steps, args.eval_episodes) < 1:
        raise UserError("--threads, --concurrent-runs, --env-steps and --eval-episodes must be at least 1")
    if args.learning_start_steps < 32:
        raise UserError("--learning-start-steps must be at least 32 (one minibatch)")
    started = time.monotonic()
    rows = table(args)
    print_table(f"Throughput on {args.game}", COLUMNS, rows)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    cli_main(main)
