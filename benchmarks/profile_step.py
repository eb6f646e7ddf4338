"""Where the time of one training step goes, part by part, amortised per agent step.

    python -m benchmarks.profile_step [--game breakout] [--device auto|cpu|cuda] [--threads 1]
        [--fast-path auto|on|off] [--env-steps 400] [--updates 30] [--fill-transitions 20000]

Each part of `dqn.loop.train_loop` is timed on its own with the library's real objects (AtariEnv,
FrameStack, ReplayMemory or DeviceReplay, Learner or FastLearner, the train log and snapshot
writers, the Checkpointer), then weighted by how often the loop runs it under the Nature
protocol: the update every 4 agent steps, the target sync every 10,000, a train-log row with
a snapshot and the average max-Q of 500 held-out states every 250,000, a checkpoint every
30 minutes. The acting forward pass runs on the (1 - epsilon) of steps that are greedy (epsilon
is 0.1 for 98% of a Nature run). The checkpoint is timed with the replay filled to
--fill-transitions and scaled to a full memory by bytes written.

Wall milliseconds include waiting for a shared CPU; CPU milliseconds (this process) do not, and
are the steadier figure on a loaded machine. On CUDA each timed call ends with a synchronisation,
so a part's wall time includes its GPU time.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.common import Stopwatch, device_sync, print_table, setup_process
from dqn.cli import add_device, add_game, add_seed, add_switch, add_threads
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("part", "calls per agent step", "wall ms per call", "cpu ms per call", "wall ms per agent step", "share %")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0])
    add_game(p, default="breakout")
    p.add_argument("--preset", default="nature")
    add_device(p)
    add_switch(p, "--fast-path", help="device replay + FastLearner (auto: on for CUDA)")
    add_switch(p, "--compile", help="torch.compile the optimizer step (auto: as dqn.train decides for the preset)")
    add_switch(p, "--channels-last", help="the CNN's memory format (auto: as dqn.train decides on this device)")
    add_threads(p)
    p.add_argument("--env-steps", type=int, default=400, help="timed environment steps (and acting passes)")
    p.add_argument("--updates", type=int, default=30, help="timed minibatch samples and updates")
    p.add_argument("--fill-transitions", type=int, default=20_000, help="replay entries stored before sampling")
    p.add_argument("--epsilon", type=float, default=0.1, help="exploration rate: share of steps with no forward pass")
    p.add_argument("--no-checkpoint", action="store_true", help="skip timing a checkpoint (writes ~--fill x 7 KB)")
    add_seed(p, default=0)
    return p


def profile(args: argparse.Namespace) -> tuple[list[list], dict]:
    import torch

    from dqn import fileio
    from dqn.agent import Learner, epsilon_greedy
    from dqn.atari import AtariEnv, FrameStack
    from dqn.checkpoint import Checkpointer
    from dqn.config import resolve
    from dqn.games import check_game
    from dqn.progress import Progress
    from dqn.replay import ReplayMemory
    from dqn.speed.auto import channels_last_enabled, compile_enabled
    from dqn.speed.compiled_step import compile_optimizer_step
    from dqn.loop import HELDOUT_BATCH_TRANSITIONS, heldout_statistics, heldout_transitions
    from dqn.run_folder import weights_file, write_train_log

    settings = setup_process(args.threads)
    game = check_game(args.game)
    hp = resolve(args.preset, {}).for_game(game)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked but torch sees no CUDA device; use --device cpu or auto")
    fast = args.fast_path == "on" or (args.fast_path == "auto" and device == "cuda")
    sync = device_sync(device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    env = AtariEnv(game, seed=args.seed, action_repeat_frames=hp.action_repeat_frames,
                   noop_max_frames=hp.noop_max_frames, preprocessing=hp.preprocessing)
    stack = FrameStack(hp.agent_history_length_frames, (84, 84))
    in_shape = (hp.agent_history_length_frames, 84, 84)
    channels_last = not fast and channels_last_enabled(args.channels_last, device, hp.network)
    learner = Learner(hp, env.num_actions, device=device, in_shape=in_shape, channels_last=channels_last)
    if fast:
        from dqn.speed.device_replay import DeviceReplay
        from dqn.speed.fast_learner import FastLearner

        replay = DeviceReplay(hp.replay_memory_size_transitions, hp.agent_history_length_frames, device=device)
        learner = FastLearner(learner)
    else:
        replay = ReplayMemory(hp.replay_memory_size_transitions, hp.agent_history_length_frames, seed=args.seed)
    compiled = not fast and compile_enabled(args.compile, device, hp.training_length_frames)
    if compiled:
        compile_optimizer_step(learner.optimizer)
    parts = {name: Stopwatch(sync if name in ("acting forward pass", "replay sample", "update", "target sync") else None)
             for name in ("environment step", "frame stack", "replay insert", "acting forward pass", "replay sample",
                          "update", "target sync", "progress check", "train log row + snapshot", "checkpoint")}

    # --- environment, frame stack, replay insert: the per-step path of the loop
    s_t = stack.reset(env.reset())
    states, transitions = [], []
    episode_start = True
    for _ in range(args.env_steps):
        a_t = int(rng.integers(env.num_actions))
        with parts["environment step"]:
            step = env.step(a_t)
            if step.game_over or step.truncated:
                first = env.reset()
        transition = (s_t[-1], a_t, float(np.sign(step.reward)), step.game_over or step.life_lost, episode_start)
        with parts["replay insert"]:
            replay.add(*transition)
        transitions.append(transition)
        with parts["frame stack"]:
            if step.game_over or step.truncated:
                s_t, episode_start = stack.reset(first), True
            else:
                s_t, episode_start = stack.push(step.frame), False
        states.append(s_t)

    # --- fill the memory with the same transitions (content does not change the cost of a read)
    for i in range(max(args.fill_transitions - args.env_steps, 0)):
        replay.add(*transitions[i % len(transitions)])

    # --- acting: the forward pass and epsilon-greedy on the greedy branch
    for s in states[:10]:  # warm-up (and CUDA graph capture on the fast path)
        learner.q_values(s).cpu()
    for s in states:
        with parts["acting forward pass"]:
            q_t = learner.q_values(s).cpu().numpy()[0]
            epsilon_greedy(q_t, 0.0, rng)

    # --- learning
    for _ in range(3):  # warm-up (and graph capture)
        learner.update(replay.sample(hp.minibatch_size_transitions))
    for _ in range(args.updates):
        with parts["replay sample"]:
            batch = replay.sample(hp.minibatch_size_transitions)
        with parts["update"]:
            loss = learner.update(batch)
            float(loss)
    for _ in range(10):
        with parts["target sync"]:
            learner.sync_target()

    # --- plumbing: progress check, period end (train log row, snapshot, average max-Q), checkpoint
    progress = Progress(hp.training_length_frames, label="profile: ", interval_seconds=30.0)
    progress.start(0, 0)
    for _ in range(1000):
        with parts["progress check"]:
            progress.due()
    heldout = heldout_transitions(replay.sample(hp.heldout_states))
    with tempfile.TemporaryDirectory(prefix="dqn-profile-") as tmp:
        tmp = Path(tmp)
        rows = [{"game": game, "seed": 0, "frames": 4, "agent_steps": 1, "parameter_updates": 0, "epsilon": 1.0,
                 "train_episode_return_mean": math.nan, "train_episodes": 0, "loss_mean": math.nan,
                 "average_max_q": math.nan, "heldout_td_error_abs_mean": math.nan,
                 "agent_steps_per_second": math.nan, "wall_seconds": 0.0}]
        for i in range(3):
            with parts["train log row + snapshot"]:
                rows[0].update(heldout_statistics(learner, heldout))
                fileio.write_torch(weights_file(learner, hp, game, 4 * i), tmp / f"frames_{i:012d}.pt")
                write_train_log(rows, tmp / "train_log.parquet")
        checkpoint_scale = math.nan
        if not args.no_checkpoint:
            state = {"learner": learner.state_dict(), "replay": replay.state_dict(), "env": env.get_state(),
                     "stack": stack.state_dict(), "actor_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
            stored = replay.size * (replay.bytes_per_transition)
            learner_bytes = sum(4 * t.numel() for t in learner.online.parameters()) * 4
            checkpoint_scale = (hp.replay_memory_size_transitions * replay.bytes_per_transition + learner_bytes) / (
                stored + learner_bytes)
            with parts["checkpoint"]:
                Checkpointer(tmp / "checkpoint").save(1, state)
            del state

    # --- amortised per agent step
    greedy_share = 1.0 - args.epsilon
    per_step = {
        "environment step": 1.0,
        "frame stack": 1.0,
        "replay insert": 1.0,
        "acting forward pass": greedy_share,
        "replay sample": 1.0 / hp.update_frequency_steps,
        "update": 1.0 / hp.update_frequency_steps,
        "target sync": 1.0 / hp.target_network_update_frequency_steps if hp.uses_target_network else 0.0,
        "progress check": 1.0,
        "train log row + snapshot": 1.0 / hp.eval_interval_steps,
    }
    ms_per_call = {name: w.wall_ms_per_call for name, w in parts.items()}
    ms_per_call["checkpoint"] = parts["checkpoint"].wall_ms_per_call * checkpoint_scale
    loop_ms = sum(per_step[name] * ms_per_call[name] for name in per_step)
    steps_per_second = 1e3 / loop_ms
    per_step["checkpoint"] = 0.0 if args.no_checkpoint else 1.0 / (60 * hp.checkpoint_interval_minutes * steps_per_second)
    total_ms = sum(per_step[name] * ms_per_call[name] for name in per_step if per_step[name])
    table = []
    for name, watch in parts.items():
        calls = per_step[name]
        if name == "checkpoint" and args.no_checkpoint:
            continue
        label = f"{name} (full memory, scaled x{checkpoint_scale:.0f})" if name == "checkpoint" else name
        cpu = watch.cpu_ms_per_call * (checkpoint_scale if name == "checkpoint" else 1.0)
        table.append([label, calls, ms_per_call[name], cpu, calls * ms_per_call[name],
                      100.0 * calls * ms_per_call[name] / total_ms])
    cpu_total = sum(row[1] * row[3] for row in table)
    table.append(["total", math.nan, math.nan, math.nan, total_ms, 100.0])
    summary = dict(settings, device=device, fast_path=fast, compiled=compiled, channels_last=channels_last,
                   game=game, heldout_batch=HELDOUT_BATCH_TRANSITIONS,
                   agent_steps_per_second_wall=1e3 / total_ms, agent_steps_per_second_cpu=1e3 / cpu_total,
                   replay_bytes_per_transition=replay.bytes_per_transition)
    return table, summary


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.env_steps, args.updates) < 1 or args.fill_transitions < 100:
        raise UserError("--env-steps and --updates must be at least 1 and --fill-transitions at least 100")
    if not 0.0 <= args.epsilon <= 1.0:
        raise UserError(f"--epsilon must lie in [0, 1], got {args.epsilon}")
    started = time.monotonic()
    table, summary = profile(args)
    print_table(f"Training step profile: {summary['game']} on {summary['device']}"
                f" ({'fast path' if summary['fast_path'] else 'plain path'}"
                f"{', compiled optimizer step' if summary['compiled'] else ''}"
                f"{', channels-last' if summary['channels_last'] else ''}), {summary['torch_threads']} torch thread(s),"
                f" malloc thresholds {'on' if summary['malloc_thresholds'] else 'off'}", COLUMNS, table)
    print(f"\nimplied agent steps/s: {summary['agent_steps_per_second_wall']:.1f} (wall), "
          f"{summary['agent_steps_per_second_cpu']:.1f} (cpu time of this process); "
          f"replay {summary['replay_bytes_per_transition']:.0f} bytes per transition; "
          f"profiled in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    cli_main(main)
