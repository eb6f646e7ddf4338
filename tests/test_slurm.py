"""The workflow on a real one-node Slurm cluster (tests/slurm/start_cluster.sh): the tiny experiment
submitted through profiles/slurm (layered with the test overlay tests/slurm/profile), checked in
Slurm's own accounting (sacct) against the resources the profile asks for and in its results
against the schemas of a local run; and a training stopped mid-run by SIGTERM (scancel --signal=TERM,
what a time limit or a preemption sends first) that Snakemake resubmits and that resumes from its
checkpoint.

Needs root (the fixture installs Slurm from Debian packages when missing and starts its daemons);
the cluster is stopped at the end, pass or fail, if this session started it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers.workflow_runs import EPISODE_COLUMNS, EXPECTED_SCHEMAS, TINY, TINY_FRAMES, schema_of, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
CLUSTER_SCRIPTS = REPO / "tests" / "slurm"
CLUSTER_STATE = Path(os.environ.get("DQN_SLURM_DIR", "/var/lib/dqn-slurm"))
SHIPPED_PROFILE = REPO / "profiles" / "slurm"
OVERLAY_PROFILE = REPO / "tests" / "slurm" / "profile"
# The cluster's default partition (start_cluster.sh): where a job without slurm_partition goes.
DEFAULT_PARTITION = "cpu"
SACCT_FIELDS = ("JobID", "Comment", "Partition", "State", "AllocTRES", "ReqTRES", "TimelimitRaw", "ExitCode")
FINAL_STATES = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"}


# ---------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="session")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("the Slurm tests need root: they install Slurm and run its daemons (CI runs them as root)")
    started = subprocess.run(["bash", str(CLUSTER_SCRIPTS / "start_cluster.sh")],
                             capture_output=True, text=True, timeout=900)
    launched = not started.stdout.rstrip().endswith("started: nothing (already running)")
    try:
        assert started.returncode == 0, f"start_cluster.sh failed:\n{started.stdout}\n{started.stderr}"
        yield
    finally:
        # A cluster that was up before this session is someone's: leave it running.
        if launched:
            stopped = subprocess.run(["bash", str(CLUSTER_SCRIPTS / "stop_cluster.sh")],
                                     capture_output=True, text=True, timeout=300)
            assert stopped.returncode == 0, f"stop_cluster.sh failed:\n{stopped.stdout}\n{stopped.stderr}"


def test_starting_the_running_cluster_again_leaves_it_as_it_is(slurm_cluster):
    pids = CLUSTER_STATE / "pids"
    before = {path.name: path.read_text() for path in pids.iterdir()}
    again = subprocess.run(["bash", str(CLUSTER_SCRIPTS / "start_cluster.sh")], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.rstrip().endswith("started: nothing (already running)")
    assert {path.name: path.read_text() for path in pids.iterdir()} == before
    assert {"slurmdbd", "slurmctld", "slurmd"} <= set(before)
    # One node, its two GPUs backed by device files: a job asking one sees exactly one.
    step = subprocess.run(["srun", "-p", "gpu", "--gpus=1", "printenv", "CUDA_VISIBLE_DEVICES"],
                          capture_output=True, text=True, timeout=60)
    assert (step.returncode, step.stdout) == (0, "0\n"), step.stderr


def profile_arguments() -> list[str]:
    # The command users run (`--profile profiles/slurm`; profiles/default applies as well, as it
    # does for them), then the overlay, whose top-level keys replace the shipped ones.
    return ["--profile", str(SHIPPED_PROFILE), "--profile", str(OVERLAY_PROFILE)]


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
            *profile_arguments(), *args]


def snakemake_env() -> dict[str, str]:
    # Jobs inherit it (sbatch --export=ALL): one torch thread per process on the small CI machine.
    return dict(os.environ, OMP_NUM_THREADS="1")


def run_id_of(text: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", text)
    assert match, f"no SLURM run ID in Snakemake's output:\n{text[-3000:]}"
    return match.group(1)


def sacct_jobs(run_id: str, expected_jobs: int, timeout_seconds: float = 60) -> list[dict[str, str]]:
    """The allocations (no steps) of one Snakemake run, once slurmdbd has all of them in a final state."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        listing = subprocess.run(
            ["sacct", "-X", "-n", "-P", "--starttime", "2000-01-01", "--name", run_id,
             "--format", ",".join(SACCT_FIELDS)], capture_output=True, text=True, check=True)
        rows = [dict(zip(SACCT_FIELDS, line.split("|"))) for line in listing.stdout.splitlines() if line]
        if len(rows) >= expected_jobs and all(row["State"].split()[0] in FINAL_STATES for row in rows):
            return sorted(rows, key=lambda row: int(row["JobID"]))
        assert time.monotonic() < deadline, f"sacct has not recorded {expected_jobs} finished jobs:\n{listing.stdout}"
        time.sleep(1)


def tres(text: str) -> dict[str, float]:
    """sacct's TRES list (`billing=4,cpu=4,gres/gpu=1,mem=2507M,node=1`), memory in MB."""
    scale_mb = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    out = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        out[key] = float(value[:-1]) * scale_mb[value[-1]] if key == "mem" else float(value)
    return out


def rule_of(row: dict[str, str]) -> str:
    # The plugin's --comment: rule_<name>_wildcards_<values> (kept by AccountingStoreFlags=job_comment).
    match = re.fullmatch(r"rule_([a-z_]+?)_wildcards_.*", row["Comment"])
    assert match, f"unexpected job comment {row['Comment']!r}"
    return match.group(1)


# ---------------------------------------------------------------------------- the tiny workflow
# The tiny experiment of tests/test_workflow.py, whose local run is checked there against the
# documented schemas; here it runs through Slurm.
# A training's memory is the rule's own (the profile sets none): the replay memory at 84*84+16 =
# 7,072 bytes a transition, in whole MB, + 2,500 MB (1,000 transitions: 7 + 2,500 = 2,507 MB).
TINY_TRAIN_MEM_MB = TINY["hyperparameters"]["replay_memory_size_transitions"] * 7_072 // 1_000_000 + 2_500


def expected_request(profile: dict, rule: str) -> dict[str, float | str]:
    """What profiles/slurm asks Slurm for, for one rule: set-resources, then the rule's own values
    (train: its memory), then default-resources."""
    default = profile.get("default-resources", {})
    own = profile.get("set-resources", {}).get(rule, {})
    rule_mem = {"train": TINY_TRAIN_MEM_MB}.get(rule, default.get("mem_mb"))
    return {
        "partition": own.get("slurm_partition", default.get("slurm_partition", DEFAULT_PARTITION)),
        # The profile sets the threads (sbatch --cpus-per-task) of every rule that goes to Slurm.
        "cpu": profile["set-threads"][rule],
        "mem": own.get("mem_mb", rule_mem),
        # GPUs come from the rule, for CUDA trainings only; the overlay trains on CPU.
        "gres/gpu": own.get("gpu", 0),
        "runtime_minutes": own.get("runtime", default.get("runtime")),
    }


@pytest.fixture(scope="module")
def tiny_on_slurm(slurm_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_tiny")
    config = write_config(root / "config.yaml", **TINY)
    started = time.monotonic()
    done = subprocess.run(snakemake_command(root, "--configfile", str(config)), cwd=root, env=snakemake_env(),
                          capture_output=True, text=True, timeout=900)
    wall_seconds = time.monotonic() - started
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-5000:]
    # 2 games x (train, random_agent, evaluate best and final); aggregate and report are local rules.
    jobs = sacct_jobs(run_id_of(text), expected_jobs=8)
    return {"root": root, "output": text, "jobs": jobs, "wall_seconds": wall_seconds}


def test_tiny_workflow_jobs_ran_in_slurm_with_the_profiles_resources(tiny_on_slurm):
    profile = yaml.safe_load((SHIPPED_PROFILE / "config.yaml").read_text())
    jobs = tiny_on_slurm["jobs"]
    rules = sorted(rule_of(job) for job in jobs)
    assert rules == ["evaluate"] * 4 + ["random_agent"] * 2 + ["train"] * 2
    for job in jobs:
        rule = rule_of(job)
        want = expected_request(profile, rule)
        assert (job["State"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert job["Partition"] == want["partition"], job
        assert int(job["TimelimitRaw"]) == want["runtime_minutes"], job
        # What was requested is what was allocated, both as the profile says.
        for field in ("ReqTRES", "AllocTRES"):
            got = tres(job[field])
            assert got["cpu"] == want["cpu"], (field, job)
            assert got["mem"] == want["mem"], (field, job)
            assert got.get("gres/gpu", 0) == want["gres/gpu"], (field, job)
    # The trainings ran in the gpu partition; on CPU (the overlay's device) they ask for no GPU (the
    # GPU requests of CUDA trainings, alone or N to a job, are checked in tests/test_workflow.py).
    trains = [job for job in jobs if rule_of(job) == "train"]
    assert all(tres(job["AllocTRES"]).get("gres/gpu", 0) == 0 and job["Partition"] == "gpu" for job in trains)
    # slurm-keep-successful-logs: every job's Slurm log is kept, with the jobstep's Snakemake in it.
    for job in jobs:
        logs = list((tiny_on_slurm["root"] / ".snakemake" / "slurm_logs").glob(f"rule_{rule_of(job)}/*/{job['JobID']}.log"))
        assert len(logs) == 1, job
        assert f"rule {rule_of(job)}:" in logs[0].read_text()


def test_tiny_workflow_on_slurm_gives_the_results_of_a_local_run(tiny_on_slurm):
    results = tiny_on_slurm["root"] / "results" / "tiny"
    for name, expected in EXPECTED_SCHEMAS.items():
        assert schema_of(results / name) == expected, name
    for path in results.glob("episodes/**/*.parquet"):
        assert schema_of(path) == EPISODE_COLUMNS, path
    runs = pd.read_parquet(results / "runs.parquet")
    assert list(zip(runs["game"], runs["status"], runs["frames_done"], runs["device"])) == [
        ("breakout", "complete", TINY_FRAMES, "cpu"), ("pong", "complete", TINY_FRAMES, "cpu")]
    # 2 games x (best, final, random) x 2 episodes.
    assert len(pd.read_parquet(results / "episodes.parquet")) == 12
    curves = pd.read_parquet(results / "learning_curves.parquet")
    assert sorted(zip(curves["game"], curves["frames"])) == [
        ("breakout", 1_000), ("breakout", 2_000), ("pong", 1_000), ("pong", 2_000)]
    assert (tiny_on_slurm["root"] / "reports" / "tiny" / "report.html").is_file()


# ---------------------------------------------------------------------------- preemption
PREEMPT_PERIOD_FRAMES = 400
# 2,000 agent steps, ~15 s of training on a loaded 2-core machine: the first complete checkpoint
# (3 s in) leaves about 10 s for scancel to land before the training ends. With 600 steps the
# training could finish within the test's 0.5 s poll of that checkpoint, and nothing was stopped.
PREEMPT_FRAMES = 8_000
PREEMPT = {
    **TINY,
    "experiment": "preempt",
    "games": ["pong"],
    "hyperparameters": {
        **TINY["hyperparameters"],
        "training_length_frames": PREEMPT_FRAMES,
        "eval_interval_frames": PREEMPT_PERIOD_FRAMES,
        "eval_length_frames": 200,
        # 3 s: a complete checkpoint exists a few seconds into the run.
        "checkpoint_interval_minutes": 0.05,
    },
}
PREEMPT_RUN = Path("results/preempt/runs/dqn/pong/seed0")


def train_log_frames(run: Path) -> list[int]:
    path = run / "train_log.parquet"
    return list(pd.read_parquet(path)["frames"]) if path.is_file() else []


def running_train_job() -> str | None:
    listing = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        job_id, comment = line.split("|", 1)
        if comment == "rule_train_wildcards_preempt_pong_0":
            return job_id
    return None


@pytest.fixture(scope="module")
def stopped_and_resumed(slurm_cluster, tmp_path_factory):
    """One training, sent SIGTERM by scancel once it has a complete checkpoint and logged rows;
    it checkpoints and fails, and Snakemake's retry (profiles/slurm: preemptible-rules) submits it
    again."""
    root = tmp_path_factory.mktemp("slurm_preempt")
    config = write_config(root / "config.yaml", **PREEMPT)
    run = root / PREEMPT_RUN
    output = root / "snakemake.out"
    with open(output, "w") as out:
        snakemake = subprocess.Popen(snakemake_command(root, str(PREEMPT_RUN / "final.pt"), "--configfile", str(config)),
                                     cwd=root, env=snakemake_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        stopped_job, frames_at_cancel = None, []
        deadline = time.monotonic() + 300
        while stopped_job is None:
            assert snakemake.poll() is None, output.read_text()[-5000:]
            assert time.monotonic() < deadline, "no complete checkpoint within 300 s:\n" + output.read_text()[-5000:]
            job = running_train_job()
            frames = train_log_frames(run)
            if job and frames and any(run.glob("checkpoint/*/COMPLETE")):
                # SIGTERM to the job's processes, what a time limit or a preemption sends first.
                # (A plain scancel would end the job as "CANCELLED by <uid>" in sacct, a state
                # snakemake-executor-plugin-slurm 2.8 does not recognise: it would wait forever.)
                subprocess.run(["scancel", "--signal=TERM", job], check=True)
                stopped_job, frames_at_cancel = job, frames
            time.sleep(0.5)
        snakemake.wait(timeout=300)
    finally:
        if snakemake.poll() is None:
            snakemake.send_signal(signal.SIGINT)  # Snakemake cancels its Slurm jobs on Ctrl-C
            snakemake.wait(timeout=120)
    text = output.read_text()
    assert snakemake.returncode == 0, text[-5000:]
    return {"root": root, "run": run, "output": text, "stopped_job": stopped_job,
            "frames_at_cancel": frames_at_cancel, "jobs": sacct_jobs(run_id_of(text), expected_jobs=2)}


def test_stopped_training_is_resubmitted_and_resumes_from_its_checkpoint(stopped_and_resumed):
    jobs = stopped_and_resumed["jobs"]
    # The stopped job (the trainer exited non-zero after its checkpoint), then its resubmission,
    # which finished the training.
    assert [(job["JobID"], rule_of(job), job["State"].split()[0]) for job in jobs] == [
        (stopped_and_resumed["stopped_job"], "train", "FAILED"), (jobs[1]["JobID"], "train", "COMPLETED")]
    assert int(jobs[1]["JobID"]) > int(jobs[0]["JobID"])
    assert 0 < len(stopped_and_resumed["frames_at_cancel"]) < PREEMPT_FRAMES // PREEMPT_PERIOD_FRAMES

    # The first attempt wrote a checkpoint on SIGTERM (its log, printed by Snakemake for the failed
    # job: show-failed-logs), the second resumed from exactly that agent step, not from zero.
    log = (stopped_and_resumed["root"] / "logs/preempt/train/pong/seed0.log").read_text()
    stopped = set(re.findall(r"SIGTERM received: checkpoint at agent step (\d+) written",
                             stopped_and_resumed["output"] + log))
    resumed = re.findall(r"resuming from \S+ \(agent step (\d+), (\d+) train_log rows\)", log)
    assert len(stopped) == 1 and len(resumed) == 1, log[-3000:]
    steps, rows = int(resumed[0][0]), int(resumed[0][1])
    assert steps == int(stopped.pop()) > 0
    assert rows == steps * 4 // PREEMPT_PERIOD_FRAMES >= 1

    # Every period once, none lost or repeated, in the train log and the learning curve.
    periods = list(range(PREEMPT_PERIOD_FRAMES, PREEMPT_FRAMES + 1, PREEMPT_PERIOD_FRAMES))
    run = stopped_and_resumed["run"]
    assert train_log_frames(run) == periods
    assert list(pd.read_parquet(run / "learning_curve.parquet")["frames"]) == periods
    assert (run / "final.pt").is_file() and (run / "best.pt").is_file()


# ---------------------------------------------------------------------------- a killed snakemake
ORPHAN = {**PREEMPT, "experiment": "orphan"}
ORPHAN_RUN = Path("results/orphan/runs/dqn/pong/seed0")
ORPHAN_OUTPUTS = ("final.pt", "best.pt", "learning_curve.parquet", "train_log.parquet")


def train_job_state(comment: str) -> str | None:
    """squeue's state of the job with that comment (None once it left the queue)."""
    listing = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        _, job_comment, state = line.split("|", 2)
        if job_comment == comment:
            return state
    return None


def test_a_killed_snakemake_never_retrains_the_job_it_left_on_slurm(slurm_cluster, tmp_path):
    """SIGKILL of `snakemake` while its training job runs on Slurm: the job finishes on its own;
    `snakemake --unlock` and the same command again train nothing and leave its outputs byte for
    byte. (On Slurm the job's own snakemake records its outputs as complete, so nothing is
    deleted; the local executor's case, where they are deleted and rebuilt, is in test_recovery.)"""
    root = tmp_path
    config = write_config(root / "config.yaml", **ORPHAN)
    run = root / ORPHAN_RUN
    target = str(ORPHAN_RUN / "final.pt")
    comment = "rule_train_wildcards_orphan_pong_0"
    with open(root / "snakemake.out", "w") as out:
        snakemake = subprocess.Popen(snakemake_command(root, target, "--configfile", str(config)), cwd=root,
                                     env=snakemake_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (train_job_state(comment) == "RUNNING" and train_log_frames(run)):
            assert snakemake.poll() is None, (root / "snakemake.out").read_text()[-5000:]
            assert time.monotonic() < deadline, "the training job logged no period within 300 s"
            time.sleep(0.5)
    finally:
        snakemake.kill()
        snakemake.wait()
    deadline = time.monotonic() + 300
    while train_job_state(comment) is not None:
        assert time.monotonic() < deadline, "the orphaned job did not finish within 300 s"
        time.sleep(1)
    assert all((run / name).is_file() for name in ORPHAN_OUTPUTS), sorted(p.name for p in run.iterdir())
    finished = {name: (run / name).read_bytes() for name in ORPHAN_OUTPUTS}

    unlock = subprocess.run(snakemake_command(root, "--unlock", "--configfile", str(config)), cwd=root,
                            env=snakemake_env(), capture_output=True, text=True, timeout=300)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = subprocess.run(snakemake_command(root, target, "--configfile", str(config)), cwd=root,
                           env=snakemake_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-5000:]
    run_log = (run / "train.log").read_text()
    assert run_log.count("frames planned") == 1 and "resuming from" not in run_log, run_log[-3000:]
    assert {name: (run / name).read_bytes() for name in ORPHAN_OUTPUTS} == finished
