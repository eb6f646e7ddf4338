"""The GPU check in one command: equality tests, a step profile and concurrent trainings on one GPU.

    python -m benchmarks.gpu_check [--wheels DIR] [--device cuda] [--game breakout]
    python -m benchmarks.gpu_check --device cpu --quick        # the same steps with tiny budgets (tests)

Meant for a bare GPU machine with PyTorch and CUDA but none of the project's other dependencies
and no network: copy the repository and a folder of wheels there, then run it from the
repository's root. In under 8 minutes on one GPU it

1. installs the dependencies from the wheels (--wheels; pip --no-index, torch is left alone);
2. runs the fast path's equality tests on the device (tests/test_fast_path.py: device replay
   against the host memory, FastLearner's CUDA graphs against the plain Learner) and the fast
   path's self-check on a fresh Nature learner, timed (dqn/speed/self_check.py: what a training
   pays at each start or resume);
3. profiles one training step on the device (python -m benchmarks.profile_step, fast path), and
   measures how much of the emulator's time the update hides: the loop launches the update of a
   step before the emulator plays that step's action (DeepMind's order, dqn/loop.py) and waits
   for it only when the next action is chosen, so on CUDA the two run at once;
4. measures agent steps/s of 1, 2, 4, 8 and 16 concurrent Nature trainings on the one GPU (each
   process the real training loop, dqn.loop.train_loop, with the paper's 1M-transition replay on
   the GPU where `trainings_per_gpu` of them fit, else on the host: dqn/speed/placement.py), with
   the per-run and total rates, the GPU memory and utilisation (nvidia-smi, sampled every 0.5 s);
5. prints one table, and the projected hours of the paper's table (147 runs of 50M agent steps)
   on a node of 8 such GPUs for each number of trainings per GPU.

The folder of wheels, prepared on any machine with network access (match --python-version to the
GPU machine's python, e.g. 3.12; torch is not among them: the machine has its own CUDA build):

    pip download --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d wheels "ale-py>=0.12" "gymnasium>=1.0" "opencv-python-headless>=4.8" "numpy>=1.26" \\
        "pandas>=2.0" "pyarrow>=14" "pyyaml>=6" pytest

Every training process runs the loop of a Nature run with short budgets (benchmarks/training_run.py:
epsilon at its final 0.1, a replay start of a few thousand steps, no held-out states), starts its
timed span at one moment common to all processes of a round (after their setup), and reports its
own rate; the total is their sum. Hours are projected as waves of min(147, 8 x N) runs at the
per-run rate measured with N per GPU; they assume a node with a core per training and spare
ones (this machine's cores bound what its own rows can show).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dqn.errors import ArgumentParser, UserError, cli_main

ROOT = Path(__file__).resolve().parents[1]
# What the library needs beyond torch (pyproject.toml's dependencies), and pytest for step 2.
WHEEL_REQUIREMENTS = ("ale-py>=0.12", "gymnasium>=1.0", "opencv-python-headless>=4.8", "numpy>=1.26", "pandas>=2.0",
                      "pyarrow>=14", "pyyaml>=6", "pytest")
PAPER_RUNS = 147  # 49 games x 3 seeds
PAPER_STEPS_PER_RUN = 50_000_000  # 200M frames
GPUS_PER_NODE = 8
COLUMNS = ("trainings on the GPU", "replay on", "agent steps/s per run (mean)", "slowest run", "total agent steps/s",
           "GPU memory used GB", "GPU utilisation % (mean)", "147-run table on 8 GPUs, hours")


@dataclass(frozen=True)
class Budget:
    counts: tuple[int, ...]
    replay_transitions: int
    learning_start_steps: int
    warmup_steps: int
    measure_steps: int
    setup_seconds: float  # allowance for every process of a round to import torch and build its parts
    profile_args: tuple[str, ...]
    equality_tests: tuple[str, ...]  # pytest arguments
    overlap_repeats: int  # timed updates and emulator steps of step 3's overlap


FULL = Budget(counts=(1, 2, 4, 8, 16), replay_transitions=1_000_000, learning_start_steps=2_000, warmup_steps=500,
              measure_steps=4_000, setup_seconds=40.0,
              profile_args=("--env-steps", "400", "--updates", "100", "--fill-transitions", "20000", "--no-checkpoint"),
              equality_tests=("tests/test_fast_path.py",), overlap_repeats=300)
QUICK = Budget(counts=(1, 2), replay_transitions=2_000, learning_start_steps=100, warmup_steps=20, measure_steps=150,
               setup_seconds=7.0,
               profile_args=("--env-steps", "20", "--updates", "3", "--fill-transitions", "200", "--no-checkpoint"),
               equality_tests=("tests/test_fast_path.py", "-k", "fast_learner_gives or capacity_below"), overlap_repeats=10)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--wheels", type=Path, default=None, help="install the dependencies from this folder first")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny budgets (1 and 2 trainings): checks the script, not the GPU")
    p.add_argument("--game", default="breakout")
    p.add_argument("--counts", type=int, nargs="+", default=None, metavar="N",
                   help="numbers of concurrent trainings to measure (default 1 2 4 8 16; --quick: 1 2)")
    # The worker modes, run by this script in subprocesses.
    p.add_argument("--worker", choices=("train", "self-check", "overlap"), help=argparse.SUPPRESS)
    p.add_argument("--trainings-per-gpu", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    return p


def _python(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)


# ---------------------------------------------------------------------------- 1. the wheels
def install_wheels(folder: Path) -> str:
    """pip install of WHEEL_REQUIREMENTS from `folder` only (already satisfied ones stay)."""
    done = _python("-m", "pip", "install", "--no-index", "--find-links", str(folder), *WHEEL_REQUIREMENTS, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(f"installing from {str(folder)!r} failed ({last}); prepare the folder with the pip download "
                        "command of python -m benchmarks.gpu_check --help's module docstring")
    return f"installed from {folder}: {' '.join(WHEEL_REQUIREMENTS)}"


# ---------------------------------------------------------------------------- 2. equality and the self-check
def equality_tests(device: str, budget: Budget) -> str:
    """pytest of the fast path's equality tests; they run on CUDA whenever torch sees a GPU."""
    done = _python("-m", "pytest", "-q", "-p", "no:cacheprovider", *budget.equality_tests, timeout=600)
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        raise UserError(f"the fast path's equality tests failed on {device}: {summary}; see python -m pytest "
                        f"{' '.join(budget.equality_tests)}")
    return summary


def self_check_worker(device: str) -> dict[str, Any]:
    """The fast path's self-check on a fresh Nature learner, twice: the first pays for capturing the graphs."""
    import torch

    from dqn.agent import Learner
    from dqn.config import NATURE
    from dqn.speed.fast_learner import FastLearner
    from dqn.speed.self_check import check_fast_path

    torch.manual_seed(0)
    fast = FastLearner(Learner(NATURE, 4, device=device))
    first, second = check_fast_path(fast, NATURE), check_fast_path(fast, NATURE)
    return {"passed": first.passed and second.passed, "reason": first.reason or second.reason,
            "first_seconds": first.seconds, "second_seconds": second.seconds}


# ---------------------------------------------------------------------------- 3. update and emulator at once
def overlap_worker(device: str, game: str, repeats: int) -> dict[str, Any]:
    """Milliseconds of an update alone, of an emulator step alone, and of the two as the loop runs
    them (the update launched, the step played, then a wait for the update's result as the next
    action's choice waits); the emulator time hidden is (update + step - both) / step."""
    import numpy as np
    import torch

    from benchmarks.common import setup_process
    from dqn.config import resolve
    from dqn.run_folder import RunFiles
    from dqn.speed.auto import fast_path_enabled
    from dqn.train import build_parts

    setup_process(1)
    hp = resolve("nature", {"replay_memory_size_transitions": 5_000, "replay_start_size_steps": 1_000,
                            "heldout_states": 500})
    fast, _ = fast_path_enabled("auto", device, hp.replay_memory_size_transitions)
    with tempfile.TemporaryDirectory(prefix="dqn-gpu-check-") as out:
        parts, _ = build_parts(hp, game, 0, device, RunFiles(Path(out)), fast_path=fast)
        env, replay, learner = parts.env, parts.replay, parts.learner
        rng = np.random.default_rng(0)
        for i in range(2_000):
            step = env.step(int(rng.integers(env.num_actions)))
            replay.add(step.frame, 0, 0.0, step.game_over, i == 0)
            if step.game_over:
                env.reset()

        def wait(loss: torch.Tensor) -> None:
            loss.item()  # the host waits, as choosing the next action waits for the weights

        def play() -> None:
            if env.step(int(rng.integers(env.num_actions))).game_over:
                env.reset()

        def timed(body) -> float:
            for _ in range(max(3, repeats // 10)):  # warm-up (graph capture on CUDA)
                body()
            started = time.perf_counter()
            for _ in range(repeats):
                body()
            return (time.perf_counter() - started) / repeats * 1e3

        update_ms = timed(lambda: wait(learner.update(replay.sample(32))))
        step_ms = timed(play)

        def both() -> None:
            loss = learner.update(replay.sample(32))
            play()
            wait(loss)

        both_ms = timed(both)
    hidden = (update_ms + step_ms - both_ms) / step_ms
    return {"update_ms": update_ms, "step_ms": step_ms, "both_ms": both_ms, "hidden_fraction": hidden, "fast_path": fast}


# ---------------------------------------------------------------------------- 4. concurrent trainings
def training_worker(args: argparse.Namespace, budget: Budget) -> dict[str, Any]:
    """One Nature training loop with short budgets (benchmarks/training_run.py), timed from --start-at on."""
    import torch

    from benchmarks.common import setup_process
    from benchmarks.training_run import _ClockedSchedule, training_hyperparameters
    from dqn import loop, train
    from dqn.run_folder import RunFiles
    from dqn.speed.auto import fast_path_enabled

    setup_process(1)
    hp = training_hyperparameters("nature", args.game, replay_transitions=budget.replay_transitions,
                                  learning_start_steps=budget.learning_start_steps, warmup_steps=budget.warmup_steps,
                                  measure_steps=budget.measure_steps)
    fast, why = fast_path_enabled("auto", args.device, hp.replay_memory_size_transitions,
                                  trainings_per_gpu=args.trainings_per_gpu)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    begin = budget.learning_start_steps + budget.warmup_steps
    end = begin + budget.measure_steps
    with tempfile.TemporaryDirectory(prefix="dqn-gpu-check-") as out:
        parts, first_frame = train.build_parts(hp, args.game, args.seed, args.device, RunFiles(Path(out)), fast_path=fast)
        st = loop.TrainState(s_t=parts.stack.reset(first_frame), episode_start=True)
        parts.epsilon = clock = _ClockedSchedule(parts.epsilon, begin, end, lambda: parts.learner.parameter_updates)
        late_seconds = time.time() - args.start_at
        time.sleep(max(0.0, -late_seconds))
        loop.train_loop(parts, st)
        if args.device == "cuda":
            torch.cuda.synchronize()
    (wall0, _, _), (wall1, _, _) = clock.marks[begin], clock.marks[end]
    return {"agent_steps_per_second": budget.measure_steps / (wall1 - wall0), "fast_path": fast, "placement": why,
            "late_seconds": max(0.0, late_seconds),
            "max_memory_reserved_bytes": torch.cuda.max_memory_reserved() if args.device == "cuda" else 0}


class GpuSampler:
    """nvidia-smi's utilisation and memory in use of the GPU, every 0.5 s, in a thread (nothing without nvidia-smi)."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i",
                 os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]]
        while not self._stop.wait(0.5):
            try:
                line = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
                utilisation, memory_mib = (float(x) for x in line.split(","))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                continue
            self.samples.append((utilisation, memory_mib * 2**20 / 1e9))

    def __enter__(self) -> "GpuSampler":
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)


def concurrent_round(args: argparse.Namespace, budget: Budget, count: int) -> dict[str, Any]:
    """`count` training processes started together; their rates and the GPU's samples."""
    start_at = time.time() + budget.setup_seconds
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--worker", "train", "--device", args.device,
               "--game", args.game, "--trainings-per-gpu", str(count), "--start-at", f"{start_at:.3f}"]
    command += ["--quick"] if args.quick else []
    with GpuSampler() as sampler:
        procs = [subprocess.Popen([*command, "--seed", str(seed)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for seed in range(count)]
        outputs = [proc.communicate(timeout=900) for proc in procs]
    results = []
    for proc, (stdout, stderr) in zip(procs, outputs):
        if proc.returncode != 0:
            raise UserError(f"a training of the round of {count} failed: {(stderr.strip().splitlines() or ['?'])[-1]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    rates = [r["agent_steps_per_second"] for r in results]
    fast = {r["fast_path"] for r in results}
    return {
        "count": count,
        "replay_on": ("GPU" if fast == {True} else "host" if fast == {False} else "mixed") if args.device == "cuda"
        else "host (CPU)",
        "placement": results[0]["placement"],
        "rates": rates,
        "late_seconds": max(r["late_seconds"] for r in results),
        "gpu_memory_gb": max((m for _, m in sampler.samples), default=math.nan),
        "gpu_utilisation_percent": (sum(u for u, _ in sampler.samples) / len(sampler.samples)
                                    if sampler.samples else math.nan),
    }


def projected_hours(per_run_steps_per_second: float, trainings_per_gpu: int) -> float:
    """The 147-run table on an 8-GPU node: waves of min(147, 8 x N) runs at the per-run rate."""
    at_once = min(PAPER_RUNS, GPUS_PER_NODE * trainings_per_gpu)
    waves = math.ceil(PAPER_RUNS / at_once)
    return waves * PAPER_STEPS_PER_RUN / per_run_steps_per_second / 3600


def table_rows(rounds: Sequence[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in rounds:
        mean = sum(r["rates"]) / len(r["rates"])
        rows.append([r["count"], r["replay_on"], mean, min(r["rates"]), sum(r["rates"]), r["gpu_memory_gb"],
                     r["gpu_utilisation_percent"], projected_hours(mean, r["count"])])
    return rows


# ---------------------------------------------------------------------------- the command
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    budget = QUICK if args.quick else FULL
    if args.counts:
        if min(args.counts) < 1:
            raise UserError(f"--counts must be at least 1 each, got {args.counts}")
        budget = Budget(**{**budget.__dict__, "counts": tuple(args.counts)})
    if args.worker == "self-check":
        print(json.dumps(self_check_worker(args.device)))
        return 0
    if args.worker == "train":
        print(json.dumps(training_worker(args, budget)))
        return 0
    if args.worker == "overlap":
        print(json.dumps(overlap_worker(args.device, args.game, budget.overlap_repeats)))
        return 0
    if args.wheels is not None and not args.wheels.is_dir():
        raise UserError(f"--wheels {str(args.wheels)!r} is not a folder; see the module's docstring for the pip "
                        "download command that prepares it")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no GPU here; run on the GPU machine, or --device cpu --quick")
    started = time.monotonic()
    print(f"# GPU check on {torch.cuda.get_device_name() if args.device == 'cuda' else 'the CPU'}, torch {torch.__version__}"
          + (" (--quick: tiny budgets, not a measurement)" if args.quick else ""), flush=True)
    if args.wheels is not None:
        print(f"1. {install_wheels(args.wheels)}", flush=True)
    print(f"2. equality tests ({' '.join(budget.equality_tests)}) on {args.device}: {equality_tests(args.device, budget)}",
          flush=True)
    checked = _python("-m", "benchmarks.gpu_check", "--worker", "self-check", "--device", args.device, timeout=600)
    if checked.returncode != 0:
        raise UserError(f"the fast path's self-check crashed on {args.device}: {checked.stderr.strip().splitlines()[-1]}")
    check = json.loads(checked.stdout.strip().splitlines()[-1])
    print(f"   self-check of the fast path (8 updates, 9 acting passes against the plain path): "
          f"{'passed' if check['passed'] else 'FAILED: ' + str(check['reason'])}; "
          f"{check['first_seconds']:.2f} s the first time in a process (as at a training's start; on CUDA with the "
          f"graphs' capture), {check['second_seconds']:.2f} s again",
          flush=True)
    profiled = _python("-m", "benchmarks.profile_step", "--device", args.device, "--fast-path", "on", "--game", args.game,
                       *budget.profile_args, timeout=600)
    if profiled.returncode != 0:
        raise UserError(f"profiling a training step failed: {(profiled.stderr.strip().splitlines() or ['?'])[-1]}")
    print(f"3. one training step on {args.device}, fast path (python -m benchmarks.profile_step):", flush=True)
    print(profiled.stdout.rstrip(), flush=True)
    overlapped = _python("-m", "benchmarks.gpu_check", "--worker", "overlap", "--device", args.device, "--game", args.game,
                         *(["--quick"] if args.quick else []), timeout=600)
    if overlapped.returncode != 0:
        raise UserError(f"timing the update beside the emulator failed: {(overlapped.stderr.strip().splitlines() or ['?'])[-1]}")
    overlap = json.loads(overlapped.stdout.strip().splitlines()[-1])
    print(f"   update and emulator at once ({'fast' if overlap['fast_path'] else 'plain'} path): update "
          f"{overlap['update_ms']:.2f} ms, one emulator step {overlap['step_ms']:.2f} ms, both as the loop runs them "
          f"{overlap['both_ms']:.2f} ms: {100 * overlap['hidden_fraction']:.0f} % of the emulator step hidden under the update",
          flush=True)
    print(f"4. concurrent Nature trainings on one {args.device} ({budget.measure_steps:,} timed agent steps each, "
          f"replay of {budget.replay_transitions:,} transitions):", flush=True)
    rounds = []
    for count in budget.counts:
        rounds.append(concurrent_round(args, budget, count))
        r = rounds[-1]
        print(f"   {count} training(s): {sum(r['rates']):,.0f} agent steps/s in total; {r['placement'] or 'replay on the host'}"
              + (f"; the last started {r['late_seconds']:.1f} s late" if r["late_seconds"] > 0.5 else ""), flush=True)
    from benchmarks.common import print_table

    print_table(f"{len(budget.counts)} rounds of concurrent trainings on one {args.device}"
                + (" (--quick)" if args.quick else ""), COLUMNS, table_rows(rounds))
    best = min(table_rows(rounds), key=lambda row: row[-1])
    print(f"5. projected: the paper's table ({PAPER_RUNS} runs x {PAPER_STEPS_PER_RUN:,} agent steps) on "
          f"{GPUS_PER_NODE} such GPUs takes {best[-1]:,.1f} hours at {best[0]} training(s) per GPU "
          f"({best[2]:,.0f} agent steps/s per run; needs {GPUS_PER_NODE * best[0]} cores and spares)")
    print(f"# whole check: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    cli_main(main)
