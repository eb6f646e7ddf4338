"""Training-time evaluation beside training: `python -m dqn.snapshot_eval --follow` in a process
of its own, started by dqn.train once the run is set up and stopped with it.

The evaluator gets one thread (the learner keeps the other cores, see dqn.train.learner_threads)
and dies with the trainer even when the trainer is killed, so no evaluator outlives its run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the trainer dies (even by SIGKILL), Linux only."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start_side_evaluator(run_dir: Path, workers: int) -> subprocess.Popen:
    """Training-time evaluation of snapshots as they appear, in a process of its own (one thread)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # A 1 s poll: the end of training waits for the evaluator to notice the last snapshot.
    cmd = [sys.executable, "-m", "dqn.snapshot_eval", "--run", str(run_dir), "--follow", "--workers", str(workers),
           "--poll-seconds", "1"]
    log.info("side evaluation: %s", " ".join(cmd))
    kwargs: dict[str, Any] = {"env": env}
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _die_with_parent
    return subprocess.Popen(cmd, **kwargs)


def wait_for_side_evaluator(proc: subprocess.Popen | None) -> None:
    """At the end of training: let the evaluator score the last snapshots (it exits once it has)."""
    if proc is None:
        return
    log.info("waiting for the side evaluation to finish")
    code = proc.wait()
    if code != 0:
        log.warning("side evaluation exited with code %d; evaluating the remaining snapshots here", code)


def stop_side_evaluator(proc: subprocess.Popen | None) -> None:
    """On a stop or an error of training: terminate the evaluator, killing it after 30 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
