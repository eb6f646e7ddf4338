"""The recovery recipes of docs/RECOVERY.md, exercised on the local executor: after Ctrl-C, after SIGKILL of
`snakemake` alone (its training goes on as an orphan), and after a crash of the whole node (every
process killed). In each case the documented commands finish the experiment without training a
finished run again or losing a checkpoint. (After a cancelled Slurm job: tests/test_slurm.py.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dqn.run_folder import RunFiles
from dqn.run_folder import training_running as run_folder_training_running

REPO = Path(__file__).resolve().parents[1]
RUN = Path("results/recovery/runs/dqn/breakout/seed0")
LOG = Path("logs/recovery/train/breakout/seed0.log")
CONFIG = {
    "experiment": "recovery",
    "preset": "demo",
    "hyperparameters": {
        "training_length_frames": 24_000,  # 6,000 agent steps: tens of seconds, time to interrupt
        "replay_memory_size_transitions": 2_000,
        "replay_start_size_steps": 200,
        "heldout_states": 50,
        "final_exploration_frame_steps": 1_000,
        "target_network_update_frequency_steps": 200,
        "eval_interval_frames": 4_000,
        "eval_length_frames": 400,
        "final_eval_episodes": 1,
        "final_eval_max_episode_frames": 400,
        "checkpoint_interval_minutes": 0.05,  # a checkpoint every 3 s
    },
    "games": ["breakout"],
    "seeds": [0],
    "device": "cpu",
    "evaluation_workers": 1,
    "report": {"bootstrap_repetitions": 20, "bootstrap_seed": 0},
}
OUTPUTS = ("final.pt", "best.pt", "learning_curve.parquet", "train_log.parquet")

pytestmark = pytest.mark.slow


def snakemake_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(root),
            "--configfile", str(root / "config.yaml"), *args]


def run_snakemake(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(root, "--cores", "2", *args), cwd=root, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))


def start_snakemake(root: Path) -> subprocess.Popen:
    """In a session of its own, so that a test can kill snakemake alone or with every job it started."""
    with open(root / "snakemake.out", "w") as out:
        return subprocess.Popen(snakemake_cmd(root, "--cores", "2"), cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True)


def training_running(run: Path) -> bool:
    """Whether a dqn.train holds the run folder's lock (what analysis.status reads)."""
    return run_folder_training_running(RunFiles(run))


def wait_for(condition, what: str, timeout_seconds: float = 300.0, snakemake: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert snakemake is None or snakemake.poll() is None, f"snakemake ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def train_log_frames(run: Path) -> list[int]:
    try:
        return pd.read_parquet(run / "train_log.parquet")["frames"].tolist()
    except (OSError, ValueError):
        return []


def complete_checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoint").glob("step_*/COMPLETE"))


@pytest.fixture
def root(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return tmp_path


def kill_snakemake_alone_mid_training(root: Path) -> str:
    """Start the workflow and SIGKILL `snakemake` alone once its training logged a period: the
    training goes on as an orphan (as Slurm jobs always outlive a killed snakemake). Returns the
    first line of the run folder's train.log."""
    run = root / RUN
    snakemake = start_snakemake(root)
    try:
        wait_for(lambda: training_running(run) and train_log_frames(run), "the training's first period",
                 snakemake=snakemake)
    finally:
        os.kill(snakemake.pid, signal.SIGKILL)
        snakemake.wait()
    first_line = (run / "train.log").read_text().splitlines()[0]
    assert "frames planned" in first_line
    return first_line


def wait_for_the_orphan(run: Path) -> dict[str, bytes]:
    wait_for(lambda: not training_running(run) and all((run / name).is_file() for name in OUTPUTS),
             "the orphaned training to finish")
    return {name: (run / name).read_bytes() for name in OUTPUTS}


def test_sigkill_of_snakemake_the_orphan_finishes_and_the_rerun_rebuilds_without_training(root):
    run = root / RUN
    first_line = kill_snakemake_alone_mid_training(root)
    finished = wait_for_the_orphan(run)
    snapshots = {p.name: p.read_bytes() for p in (run / "snapshots").iterdir()}

    # docs/RECOVERY.md: unlock, run again. Snakemake deletes the outputs of the job it lost track of
    # (final.pt, best.pt, learning_curve); dqn.train rebuilds them, byte for byte, without a step.
    unlock = run_snakemake(root, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = run_snakemake(root)
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    assert "training had finished; rebuilt" in (root / LOG).read_text(), (root / LOG).read_text()[-3000:]
    run_log = (run / "train.log").read_text()
    assert run_log.splitlines()[0] == first_line  # the whole history, attempt after attempt
    assert "training had finished; rebuilt final.pt, best.pt, learning_curve.parquet" in run_log.splitlines()[-1]
    assert run_log.count("resuming from") == 0 and run_log.count("frames planned") == 1
    assert {name: (run / name).read_bytes() for name in OUTPUTS} == finished
    assert {p.name: p.read_bytes() for p in (run / "snapshots").iterdir()} == snapshots
    assert (root / "results/recovery/scores.parquet").is_file()
    again = run_snakemake(root, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_a_rerun_while_the_orphan_trains_is_refused_and_touches_nothing(root):
    run = root / RUN
    first_line = kill_snakemake_alone_mid_training(root)
    unlock = run_snakemake(root, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    refused = run_snakemake(root)
    assert training_running(run), "the orphan ended before the rerun could meet it; lengthen the training"
    assert refused.returncode != 0
    refusal = (root / LOG).read_text()
    assert "is still running" in refusal and "PID " in refusal and "Traceback" not in refusal, refusal

    # The orphan was not disturbed: it finishes, its log in the run folder whole.
    finished = wait_for_the_orphan(run)
    run_log = (run / "train.log").read_text()
    assert run_log.splitlines()[0] == first_line and "training complete" in run_log.splitlines()[-1]
    rerun = run_snakemake(root)
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    assert {name: (run / name).read_bytes() for name in OUTPUTS} == finished
    assert (run / "train.log").read_text().count("frames planned") == 1  # no second training


@pytest.mark.parametrize("interruption", ["ctrl-c", "node crash"])
def test_an_interrupted_workflow_resumes_its_training_from_the_checkpoint(root, interruption):
    run = root / RUN
    snakemake = start_snakemake(root)
    try:
        wait_for(lambda: training_running(run) and complete_checkpoints(run) and train_log_frames(run),
                 "a checkpoint and a logged period", snakemake=snakemake)
        if interruption == "ctrl-c":
            # Ctrl-C: SIGINT to the terminal's whole process group; Snakemake stops its jobs and
            # removes its lock, dqn.train writes a checkpoint on the way out.
            os.killpg(snakemake.pid, signal.SIGINT)
            snakemake.wait(timeout=120)
        else:
            # A node crash: every process dies at once, the lock stays: --unlock first.
            os.killpg(snakemake.pid, signal.SIGKILL)
            snakemake.wait()
            wait_for(lambda: not training_running(run), "the killed training to release its lock", 30)
            unlock = run_snakemake(root, "--unlock")
            assert unlock.returncode == 0, unlock.stderr[-3000:]
        assert not (run / "final.pt").exists()
        rerun = run_snakemake(root)
        assert rerun.returncode == 0, rerun.stderr[-5000:]
    finally:
        if snakemake.poll() is None:
            os.killpg(snakemake.pid, signal.SIGKILL)
    log_text = (run / "train.log").read_text()
    assert "resuming from" in log_text and "agent step 0," not in log_text, log_text[-3000:]
    frames = CONFIG["hyperparameters"]["eval_interval_frames"]
    assert train_log_frames(run) == list(range(frames, CONFIG["hyperparameters"]["training_length_frames"] + 1, frames))
    assert all((run / name).is_file() for name in OUTPUTS)
