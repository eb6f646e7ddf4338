"""Peak memory of a Nature run: replay filled to a fraction of 1M transitions, measured, extrapolated.

    python -m benchmarks.memory [--fill-fraction 0.25] [--no-checkpoint] [--threads 1]

Two processes, as in a real run and its resume:
1. training: the Nature learner and a 1M-transition ReplayMemory filled to --fill-fraction, then
   minibatch updates, the 500 held-out states, and a full checkpoint written (dqn.checkpoint);
2. resume: a fresh process loads that checkpoint into a fresh learner and memory.
Each reports its resident-set high-water mark (VmHWM). The memory's pages are mapped as they are
first written, so the peak with a full memory is projected as the measured peak plus the
unfilled transitions at their exact size (7,066 bytes each). A resume maps the checkpoint's
frames file and copies it into the memory in 64 MB chunks, handing each chunk's mapped pages
back once copied (`dqn.checkpoint.released_chunks`), so its projection adds the same 7,066 bytes
per unfilled transition.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.common import peak_rss_bytes, print_table, setup_process
from dqn.cli import add_threads
from dqn.errors import ArgumentParser, UserError, cli_main

COLUMNS = ("process", "peak RSS before storing (MiB)", "peak RSS measured (MiB)", "stored transitions",
           "projected peak, 1M stored (MiB)")
NATURE_CAPACITY = 1_000_000


def _parts(threads: int, seed: int = 0):
    import torch

    from dqn.agent import Learner
    from dqn.config import NATURE
    from dqn.replay import ReplayMemory

    setup_process(threads)
    torch.manual_seed(seed)
    learner = Learner(NATURE, 4, device="cpu")
    replay = ReplayMemory(NATURE.replay_memory_size_transitions, 4, seed=seed)
    return NATURE, learner, replay


def train_phase(fill_fraction: float, checkpoint_dir: str | None, threads: int) -> dict[str, Any]:
    from dqn.checkpoint import Checkpointer
    from dqn.loop import heldout_transitions

    hp, learner, replay = _parts(threads)
    base = peak_rss_bytes()
    stored = int(fill_fraction * hp.replay_memory_size_transitions)
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (256, 84, 84), dtype=np.uint8)
    for i in range(stored):
        replay.add(pool[i % 256], int(i % 4), 0.0, i % 5000 == 4999, i % 5000 == 0)
    for _ in range(20):
        learner.update(replay.sample(hp.minibatch_size_transitions))
    heldout = heldout_transitions(replay.sample(hp.heldout_states))
    if checkpoint_dir:
        Checkpointer(checkpoint_dir).save(stored, {"learner": learner.state_dict(), "replay": replay.state_dict(),
                                                    "heldout": heldout})
    return {"base": base, "peak": peak_rss_bytes(), "stored": stored}


def resume_phase(checkpoint_dir: str, threads: int) -> dict[str, Any]:
    from dqn.checkpoint import Checkpointer

    _, learner, replay = _parts(threads)
    base = peak_rss_bytes()
    folder, state = Checkpointer(checkpoint_dir).load_latest()
    learner.load_state_dict(state["learner"])
    replay.load_state_dict(state["replay"])
    del state
    return {"base": base, "peak": peak_rss_bytes(), "stored": replay.size}


def _phase(args: argparse.Namespace, phase: str, checkpoint_dir: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--phase", phase, "--fill-fraction", str(args.fill_fraction),
           "--threads", str(args.threads)] + (["--checkpoint-dir", checkpoint_dir] if checkpoint_dir else [])
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
    if proc.returncode != 0:
        raise RuntimeError(f"{phase} phase failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(name: str, r: dict[str, Any], bytes_per_unfilled_transition: float) -> list:
    mib = 2**20
    projected = r["peak"] + (NATURE_CAPACITY - r["stored"]) * bytes_per_unfilled_transition
    return [name, r["base"] / mib, r["peak"] / mib, r["stored"], projected / mib]


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--fill-fraction", type=float, default=0.25, help="share of the 1M-transition memory to fill")
    p.add_argument("--no-checkpoint", action="store_true", help="skip the checkpoint and the resume process")
    add_threads(p)
    p.add_argument("--phase", choices=("train", "resume"), help=argparse.SUPPRESS)
    p.add_argument("--checkpoint-dir", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.phase == "train":
        print(json.dumps(train_phase(args.fill_fraction, args.checkpoint_dir, args.threads)))
        return 0
    if args.phase == "resume":
        print(json.dumps(resume_phase(args.checkpoint_dir, args.threads)))
        return 0
    if not 0.0 < args.fill_fraction <= 1.0:
        raise UserError(f"--fill-fraction must lie in (0, 1], got {args.fill_fraction}")
    from dqn.replay import ReplayMemory

    per_transition = ReplayMemory(5, 4, seed=0).bytes_per_transition
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dqn-memory-", dir=os.environ.get("TMPDIR")) as tmp:
        checkpoint_dir = None if args.no_checkpoint else str(Path(tmp) / "checkpoint")
        rows.append(_row("training (updates, held-out states" + (", checkpoint)" if checkpoint_dir else ")"),
                         _phase(args, "train", checkpoint_dir), per_transition))
        if checkpoint_dir:
            rows.append(_row("resume from that checkpoint", _phase(args, "resume", checkpoint_dir), per_transition))
    print_table(f"Peak memory of a Nature run (1M-transition replay filled to {args.fill_fraction:.0%}, "
                "projected to 100%)", COLUMNS, rows)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    cli_main(main)
