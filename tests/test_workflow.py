"""The Snakemake workflow: lint, the DAG planned for the paper's config, config errors before any
job, and a tiny end-to-end run in a temporary folder (the results tables and their types, a failed
game reported as missing, a rerun that finishes only what is missing, a rerun that does nothing,
a report option that re-renders only the report)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from helpers.workflow_runs import (
    EPISODE_COLUMNS,
    EXPECTED_SCHEMAS,
    PAPER_CONFIG,
    REPO,
    SNAKEFILE,
    TINY,
    TINY_FRAMES,
    job_counts,
    output_of,
    schema_of,
    snakemake,
    write_config,
)


# ---------------------------------------------------------------------------- lint and DAG
def test_lint_finds_nothing(tmp_path):
    done = snakemake(tmp_path, "--lint", "--configfile", str(PAPER_CONFIG))
    text = output_of(done)
    assert done.returncode == 0, text
    assert "Congratulations, your workflow is in a good condition!" in text
    assert "Lints for" not in text


def test_paper_config_plans_49_games_times_3_seeds(tmp_path):
    done = snakemake(tmp_path, "-n", "--configfile", str(PAPER_CONFIG))
    text = output_of(done)
    assert done.returncode == 0, text
    # 49 games x 3 seeds trainings, best and final weights evaluated, one random agent per run.
    assert job_counts(text) == {
        "train": 147, "evaluate": 294, "random_agent": 147, "aggregate": 1, "report": 1, "all": 1,
    }
    # The exact commands a person would type, at the fixed addressable paths.
    assert re.search(
        r"python -m dqn\.train --game alien --seed 0 --out results/nature/runs/dqn/alien/seed0 --preset nature "
        r" --device (cpu|cuda) --threads \d+ --eval-workers 1 >> logs/nature/train/alien/seed0\.log 2>&1", text)
    assert ("python -m dqn.evaluate --game zaxxon --weights results/nature/runs/dqn/zaxxon/seed2/best.pt --label best"
            " --seed 2 --out results/nature/episodes/dqn/zaxxon/seed2/best.parquet") in text
    assert ("python -m baselines.random_agent --game pong --seed 1"
            " --out results/nature/episodes/random/pong/seed1.parquet --episodes 30") in text
    assert ("python -m analysis.report --results results/nature --out reports/nature/report.html"
            " --figures-dir reports/nature/figures --bootstrap-reps 2000 --seed 0") in text
    # Memory of a training: the 1M-transition replay at 84*84+16 bytes each (7,072 MB) + 2,500 MB.
    assert "mem_mb=9572" in text
    assert not (tmp_path / "results").exists()


def test_subset_config_plans_the_subset_with_its_overrides(tmp_path):
    config = write_config(
        tmp_path / "subset.yaml", experiment="subset", preset="demo", games=["pong", "breakout"],
        seeds=[0, 1, 2, 3, 4], device="cpu", hyperparameters={"learning_rate": "1e-4", "lost_life_terminal": False},
    )
    done = snakemake(tmp_path, "-n", "--configfile", str(config))
    text = output_of(done)
    assert done.returncode == 0, text
    assert job_counts(text) == {"train": 10, "evaluate": 20, "random_agent": 10, "aggregate": 1, "report": 1, "all": 1}
    # Overrides reach the CLI in canonical form, sorted; the demo replay needs 50k x 7,072 B + 2,500 MB.
    assert ("python -m dqn.train --game breakout --seed 4 --out results/subset/runs/dqn/breakout/seed4 --preset demo"
            " --set learning_rate=0.0001 lost_life_terminal=false --device cpu") in text
    assert "mem_mb=2853" in text
    assert ("python -m analysis.aggregate --results results/subset --games pong breakout --seeds 0 1 2 3 4 --preset demo"
            " --set learning_rate=0.0001 lost_life_terminal=false --games-sheet") in text


def test_device_auto_trains_on_cuda_when_nvidia_smi_lists_a_gpu(tmp_path):
    # A stand-in nvidia-smi with one GPU; CUDA_VISIBLE_DEVICES="" hides it again.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Stand-in GPU (UUID: GPU-0)'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    config = write_config(tmp_path / "auto.yaml", experiment="auto", preset="demo", games=["pong"], seeds=[0], device="auto")
    with_gpu = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    with_gpu.pop("CUDA_VISIBLE_DEVICES", None)
    hidden = {**with_gpu, "CUDA_VISIBLE_DEVICES": ""}
    with ThreadPoolExecutor(max_workers=2) as pool:
        cuda, cpu = pool.map(lambda env: snakemake(tmp_path, "-n", "--configfile", str(config), env=env), (with_gpu, hidden))
    cuda_text, cpu_text = output_of(cuda), output_of(cpu)
    assert cuda.returncode == 0 and cpu.returncode == 0, cuda_text + cpu_text
    # On CUDA a training holds one `gpu` and takes a GPU of its own; evaluations stay on CPU.
    assert re.search(r"one_gpu\.sh python -m dqn\.train --game pong .* --device cuda ", cuda_text)
    assert "gpu=1" in cuda_text and re.search(r"python -m dqn\.evaluate .* --workers \d+ --device cpu ", cuda_text)
    assert re.search(r"Shell command:\s+python -m dqn\.train --game pong .* --device cpu ", cpu_text)
    assert "gpu=0" in cpu_text and "one_gpu.sh" not in cpu_text


# ---------------------------------------------------------------------------- config errors
BASE = {"experiment": "bad", "preset": "demo", "games": ["pong"], "seeds": [0], "device": "cpu"}
INVALID = {
    "unknown key": ({"gmaes": ["pong"]}, ["config: unknown key 'gmaes' (did you mean 'games'?)"]),
    "unknown nested key": ({"report": {"bootstrap_reps": 10}},
                           ["unknown key 'report.bootstrap_reps' (did you mean 'bootstrap_repetitions'?)"]),
    "negative seed": ({"seeds": [0, -1]}, ["key 'seeds[1]': -1 is less than the minimum of 0"]),
    "unknown game": ({"games": ["pong", "breakut"]}, ["config key 'games': unknown game 'breakut' (did you mean 'breakout'?)"]),
    "unknown hyperparameter": ({"hyperparameters": {"lerning_rate": 0.1}},
                               ["unknown hyperparameter 'lerning_rate' (did you mean 'learning_rate'?)"]),
    "bad hyperparameter value": ({"hyperparameters": {"learning_rate": "fast"}},
                                 ["hyperparameter 'learning_rate' expects a number, got 'fast'"]),
    "bad hyperparameter combination": ({"hyperparameters": {"replay_start_size_steps": 5}},
                                       ["replay_start_size_steps (5) must be at least minibatch_size_transitions (32)"]),
    "unknown preset": ({"preset": "nips"}, ["config key 'preset': unknown preset 'nips'"]),
}


@pytest.fixture(scope="module")
def invalid_runs(tmp_path_factory):
    """Every invalid config dry-run at once (each parse takes seconds; they share two cores)."""
    def run(name):
        folder = tmp_path_factory.mktemp(re.sub(r"\W", "_", name))
        extra, _ = INVALID[name]
        config = write_config(folder / "config.yaml", **{**BASE, **extra})
        return folder, snakemake(folder, "-n", "--configfile", str(config))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(INVALID, pool.map(run, INVALID)))


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_config_fails_before_any_job_naming_the_key(invalid_runs, case):
    folder, done = invalid_runs[case]
    text = output_of(done)
    assert done.returncode != 0
    for expected in INVALID[case][1]:
        assert expected in text, text
    # Refused while parsing: no DAG, no job, no folder.
    assert "Building DAG of jobs" not in text
    assert "Job stats" not in text
    assert not (folder / "results").exists() and not (folder / "logs").exists()


def test_games_sheet_errors_name_the_line_and_the_game(tmp_path):
    # A copy of the workflow whose sheet has a duplicated game and, in another copy, an empty name.
    def copy_with(name, extra_line):
        root = tmp_path / name
        root.mkdir()
        for item in ("Snakefile", "workflow", "config", "profiles"):
            (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, root / item)
        with open(root / "config" / "games.tsv", "a") as sheet:
            sheet.write(extra_line)
        return root

    duplicated, unnamed = copy_with("duplicated", "pong\tPong again\n"), copy_with("unnamed", "alien\t\n")
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda root: snakemake(root, "-n", snakefile=root / "Snakefile"), (duplicated, unnamed)))
    assert all(done.returncode != 0 for done in runs)
    assert "games.tsv: ale_id 'pong' appears more than once" in output_of(runs[0])
    # 49 games + header: the added row is line 51.
    assert "games.tsv line 51: key 'display_name': '' should be non-empty" in output_of(runs[1])


# ---------------------------------------------------------------------------- aggregation
def write_episodes(path: Path, game: str, agent: str, weights: str, scores: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "game": game, "agent": agent, "seed": 0, "weights": weights, "episode": range(len(scores)),
        "score": [float(x) for x in scores], "length_frames": 1_000, "noop_frames": 3, "truncated": False,
    }).to_parquet(path, index=False)


def train_log(game: str, frames: list[int], wall_seconds: list[float]) -> pd.DataFrame:
    n = len(frames)
    return pd.DataFrame({
        "game": game, "seed": 0, "frames": frames, "agent_steps": [f // 4 for f in frames],
        "parameter_updates": [f // 16 for f in frames], "epsilon": [0.5] * n, "train_episode_return_mean": [1.0] * n,
        "train_episodes": [2] * n, "loss_mean": [0.01] * n, "average_max_q": [0.2] * n,
        "heldout_td_error_abs_mean": [0.05] * n, "agent_steps_per_second": [100.0] * n, "wall_seconds": wall_seconds,
    })


def test_aggregate_marks_unfinished_runs_missing_with_their_partial_log(tmp_path):
    from analysis.aggregate import main

    results = tmp_path / "results" / "exp"
    # breakout: finished (weights, learning curve, both evaluations); pong: stopped after 2 periods.
    breakout = results / "runs/dqn/breakout/seed0"
    breakout.mkdir(parents=True)
    for name in ("final.pt", "best.pt"):
        (breakout / name).write_bytes(b"weights")
    curve = train_log("breakout", [4_000, 8_000], [1_800.0, 3_600.0]).assign(eval_score_mean=[2.0, 3.0], eval_episodes=[4, 5],
                                                                      eval_frames=[500_000, 500_000])
    curve.to_parquet(breakout / "learning_curve.parquet", index=False)
    # Its fast path failed the self-check at agent step 12,345 (dqn/speed/self_check.py) and it went on on the plain path.
    fallback = {"reason": "update 3: loss 0.25 on the fast path, 0.5 on the plain path", "agent_steps": 12_345,
                "device": "cuda", "hostname": "node1", "check_seconds": 1.5}
    (breakout / "config.json").write_text(json.dumps({"device": "cuda", "hostname": "node1", "versions": {},
                                                      "fast_path": False, "fast_path_fallback": fallback}))
    pong = results / "runs/dqn/pong/seed0"
    pong.mkdir(parents=True)
    train_log("pong", [4_000, 8_000], [900.0, 1_800.0]).to_parquet(pong / "train_log.parquet", index=False)
    (pong / "config.json").write_text(json.dumps({"device": "cpu"}))
    write_episodes(results / "episodes/dqn/breakout/seed0/best.parquet", "breakout", "dqn", "best", [10, 20])
    write_episodes(results / "episodes/dqn/breakout/seed0/final.parquet", "breakout", "dqn", "final", [4, 6, 8])
    write_episodes(results / "episodes/random/breakout/seed0.parquet", "breakout", "random", "none", [1, 2])
    write_episodes(results / "episodes/random/pong/seed0.parquet", "pong", "random", "none", [-21, -20])

    main(["--results", str(results), "--games", "breakout", "pong", "--seeds", "0", "--preset", "demo",
          "--set", "training_length_frames=16000"])

    runs = pd.read_parquet(results / "runs.parquet").set_index("game")
    assert runs.loc["breakout"].to_dict() == {"seed": 0, "status": "complete", "frames_done": 8_000,
                                              "frames_planned": 16_000, "wall_hours": 1.0, "device": "cuda"}
    assert runs.loc["pong"].to_dict() == {"seed": 0, "status": "missing", "frames_done": 8_000,
                                          "frames_planned": 16_000, "wall_hours": 0.5, "device": "cpu"}
    # The unfinished run's curve so far, without evaluations yet.
    curves = pd.read_parquet(results / "learning_curves.parquet")
    pong_curve = curves[curves["game"] == "pong"]
    assert list(pong_curve["frames"]) == [4_000, 8_000] and list(pong_curve["eval_episodes"]) == [0, 0]
    assert list(curves[curves["game"] == "breakout"]["eval_score_mean"]) == [2.0, 3.0]

    scores = pd.read_parquet(results / "scores.parquet").set_index(["game", "agent", "weights"])
    final = scores.loc[("breakout", "dqn", "final")]
    # Mean 6, population s.d. sqrt(8/3); Breakout's random 1.7 and human 31.8 (Extended Data Table 2).
    assert (final["mean"], final["episodes"], final["display_name"]) == (6.0, 3, "Breakout")
    assert final["std"] == pytest.approx((8 / 3) ** 0.5)
    assert final["human_normalized"] == pytest.approx(100 * (6.0 - 1.7) / (31.8 - 1.7))
    assert scores.loc[("pong", "random", "none"), "human_normalized"] == pytest.approx(100 * (-20.5 + 20.7) / 30.0)
    assert ("pong", "dqn", "best") not in scores.index
    assert len(pd.read_parquet(results / "episodes.parquet")) == 9

    deviations = pd.read_parquet(results / "deviations.parquet").set_index("field")
    assert deviations.loc["training_length_frames", ["paper_value", "this_value", "unit"]].tolist() == [
        "200000000", "16000", "frames"]
    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["experiment"] == "exp" and provenance["runs"][0]["hostname"] == "node1"
    # The fallback reaches the report's provenance: one line per run that left the fast path.
    assert provenance["fast_path_fallbacks"] == ("breakout seed 0: plain path from agent step 12,345 on cuda: "
                                                 "update 3: loss 0.25 on the fast path, 0.5 on the plain path")
    assert [r["fast_path_fallback"] for r in provenance["runs"]] == [provenance["fast_path_fallbacks"][17:], None]


def test_aggregate_into_another_folder_leaves_the_results_alone(tmp_path):
    from analysis.aggregate import main

    results, look = tmp_path / "results" / "exp", tmp_path / "look"
    write_episodes(results / "episodes/random/pong/seed0.parquet", "pong", "random", "none", [-21])
    main(["--results", str(results), "--games", "pong", "--seeds", "0", "--out", str(look)])
    assert sorted(p.name for p in results.iterdir()) == ["episodes"]
    assert pd.read_parquet(look / "runs.parquet")["status"].tolist() == ["missing"]
    assert json.loads((look / "provenance.json").read_text())["experiment"] == "exp"


def test_aggregate_refuses_bad_arguments_in_one_line(tmp_path):
    from analysis.aggregate import main
    from dqn.errors import UserError

    with pytest.raises(UserError, match="--seeds must be zero or positive"):
        main(["--results", str(tmp_path), "--games", "pong", "--seeds", "-1"])
    with pytest.raises(UserError, match="unknown hyperparameter 'lerning_rate'"):
        main(["--results", str(tmp_path), "--games", "pong", "--seeds", "0", "--set", "lerning_rate=1"])


# ---------------------------------------------------------------------------- GPUs
def test_each_training_takes_a_gpu_no_other_holds(tmp_path):
    script = REPO / "workflow" / "scripts" / "one_gpu.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(CUDA_VISIBLE_DEVICES="0,1", DQN_GPU_LOCK_DIR=str(tmp_path / "locks"))
    holders = [subprocess.Popen(["bash", str(script), "sh", "-c", f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/got{i}; sleep 2"],
                                env=env) for i in range(2)]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"got{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.05)
    # A third training waits for a GPU (here at most 0 s, so it gives up at once with the advice).
    third = subprocess.run(["bash", str(script), "true"], env={**env, "DQN_GPU_WAIT_SECONDS": "0"},
                           capture_output=True, text=True)
    for holder in holders:
        holder.wait()
    assert sorted((tmp_path / f"got{i}").read_text().strip() for i in range(2)) == ["0", "1"]
    assert third.returncode == 1 and third.stderr == (
        "one_gpu.sh: every GPU (0 1) already runs 1 training(s); give snakemake --resources gpu=N with N at most 2\n")
    # Without a bound it waits, and runs once a GPU is free.
    holder = subprocess.Popen(["bash", str(script), "sh", "-c", "sleep 2"], env={**env, "CUDA_VISIBLE_DEVICES": "0"})
    time.sleep(0.5)
    waiter = subprocess.run(["bash", str(script), "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"],
                            env={**env, "CUDA_VISIBLE_DEVICES": "0"}, capture_output=True, text=True, timeout=30)
    holder.wait()
    assert waiter.returncode == 0 and waiter.stdout.strip() == "0" and "waiting for a place" in waiter.stderr
    # Released when the commands exit; under Slurm the allocation's GPUs are kept as they are.
    again = subprocess.run(["bash", str(script), "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"], env=env, capture_output=True, text=True)
    assert again.stdout.strip() == "0"
    slurm = subprocess.run(["bash", str(script), "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"],
                           env={**env, "SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "3"}, capture_output=True, text=True)
    assert slurm.stdout.strip() == "3"


def _hold_a_place(script, env, tmp_path, i, *flags):
    """A stand-in training: writes the GPU it got, then waits until its `release{i}` file appears."""
    body = f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/got{i}; while [ ! -e {tmp_path}/release{i} ]; do sleep 0.05; done"
    holder = subprocess.Popen(["bash", str(script), *flags, "sh", "-c", body], env=env)
    deadline = time.monotonic() + 30
    while not (tmp_path / f"got{i}").exists():
        assert time.monotonic() < deadline and holder.poll() is None, f"training {i} got no GPU"
        time.sleep(0.02)
    return holder, (tmp_path / f"got{i}").read_text().strip()


def test_each_gpu_is_handed_to_at_most_n_trainings_spread_over_the_gpus(tmp_path):
    script = REPO / "workflow" / "scripts" / "one_gpu.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(CUDA_VISIBLE_DEVICES="0,1", DQN_GPU_LOCK_DIR=str(tmp_path / "locks"))
    n = 3
    # 2N trainings started one after the other on 2 fake GPUs: each GPU's first place, then each
    # GPU's second, ...: GPU 0, 1, 0, 1, 0, 1.
    held = [_hold_a_place(script, env, tmp_path, i, "--trainings-per-gpu", str(n)) for i in range(2 * n)]
    assert [gpu for _, gpu in held] == ["0", "1", "0", "1", "0", "1"]
    # A (2N+1)th finds every place taken (no waiting allowed here) and says so in one line.
    extra = subprocess.run(["bash", str(script), "--trainings-per-gpu", str(n), "true"],
                           env={**env, "DQN_GPU_WAIT_SECONDS": "0"}, capture_output=True, text=True)
    assert extra.returncode == 1 and extra.stderr == (
        "one_gpu.sh: every GPU (0 1) already runs 3 training(s); run at most 6 trainings at once\n")
    # Training 3 (GPU 1) ends: the next one takes its place on GPU 1.
    (tmp_path / "release3").touch()
    held[3][0].wait(timeout=30)
    (tmp_path / "got3").unlink()
    held[3] = _hold_a_place(script, env, tmp_path, 3, "--trainings-per-gpu", str(n))
    assert held[3][1] == "1"
    for i, (holder, _) in enumerate(held):
        (tmp_path / f"release{i}").touch()
        assert holder.wait(timeout=30) == 0
    # A bad count is one error line before anything runs.
    bad = subprocess.run(["bash", str(script), "--trainings-per-gpu", "0", "true"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr == (
        "error: one_gpu.sh --trainings-per-gpu needs a whole number of at least 1, got '0'\n")


# ---------------------------------------------------------------------------- N trainings per GPU
SHARED = {"experiment": "shared", "preset": "nature", "games": ["alien", "breakout", "pong", "boxing", "asterix"],
          "seeds": [0, 1], "device": "cuda"}
# Snakemake's own option for N jobs of a group in one cluster job; the profile's default is 1.
FOUR_PER_GPU = ("--group-components", "train_gpu=4")


def recorded_sbatch_lines(workdir: Path, config: Path, marker: str, count: int, *args: str) -> list[str]:
    """`snakemake --profile profiles/slurm` with stand-ins for Slurm's commands that record their
    arguments: the sbatch lines of the first `count` submitted jobs whose line holds `marker`
    (snakemake, which would wait for them forever, is then killed)."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    calls = workdir / "calls.log"
    for command in ("sbatch", "sacct", "squeue", "sinfo", "sacctmgr", "scontrol", "scancel"):
        reply = {"sbatch": 'echo "$((7000 + $(grep -c ^sbatch ' + str(calls) + ')))"', "sacctmgr": "echo account"}
        (bin_dir / command).write_text(f'#!/bin/sh\necho "{command} $*" >> {calls}\n{reply.get(command, "")}\n')
        (bin_dir / command).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
               "--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(config), *args]
    submit = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            lines = calls.read_text().splitlines() if calls.exists() else []
            jobs = [line for line in lines if line.startswith("sbatch") and marker in line]
            if len(jobs) >= count:
                return jobs[:count]
            assert time.monotonic() < deadline and submit.poll() is None, lines
            time.sleep(0.2)
    finally:
        os.killpg(submit.pid, signal.SIGKILL)
        submit.wait()


def test_trainings_per_gpu_plans_shared_gpus_locally(tmp_path):
    config = write_config(tmp_path / "shared.yaml", **SHARED)
    done = snakemake(tmp_path, "-n", "--configfile", str(config), *FOUR_PER_GPU)
    text = output_of(done)
    assert done.returncode == 0, text
    # Locally Snakemake runs groups' jobs one by one: 10 trainings, each launched through the GPU
    # hand-out with its 4 places per GPU, each told how many share its GPU (for its replay's placement).
    assert job_counts(text)["train"] == 10
    assert re.search(r"one_gpu\.sh --trainings-per-gpu 4 python -m dqn\.train --game alien --seed 0 .* --device cuda "
                     r"--threads \d+ --eval-workers 1 --trainings-per-gpu 4 >> logs/shared/train/alien/seed0\.log", text)
    # A grouped training asks for no GPU unit of its own: the cluster job of its group asks for one.
    assert re.search(r"wildcards: experiment=shared, game=alien, seed=0\n\s+resources: .*gpu=0, gres=gpu:1", text)


def test_trainings_per_gpu_packs_4_trainings_in_one_slurm_job_with_one_gpu(tmp_path):
    """The Slurm profile with --group-components train_gpu=4: a dry run shows the groups; the same
    command with a recording stand-in for sbatch shows what each job asks Slurm for."""
    config = write_config(tmp_path / "shared.yaml", **SHARED)
    profile = ("--profile", str(REPO / "profiles" / "slurm"))
    dry = snakemake(tmp_path, "-n", *profile, "--configfile", str(config), *FOUR_PER_GPU)
    text = output_of(dry)
    assert dry.returncode == 0, text
    # 10 independent trainings in jobs of at most four: 4 + 4 + 2, each training in exactly one.
    # A group's jobs are listed indented under its header: their wildcards lines at 8 spaces.
    groups = [re.findall(r"\n {8}wildcards: experiment=shared, game=(\w+), seed=(\d)\n", block)
              for block in text.split("Group job train_gpu")[1:]]
    members = [sorted(f"{g}{s}" for g, s in group) for group in groups]
    assert sorted(len(group) for group in members) == [2, 4, 4]
    assert sorted(sum(members, [])) == sorted(f"{g}{s}" for g in SHARED["games"] for s in SHARED["seeds"])
    assert job_counts(text) == {"train": 10, "evaluate": 20, "random_agent": 10, "aggregate": 1, "report": 1, "all": 1}
    for group in members:
        print(f"dry run: group job train_gpu: {' '.join(group)}")

    # The same, submitted to a recording sbatch (no cluster): the jobs' sbatch lines.
    jobs = recorded_sbatch_lines(tmp_path, config, "group_train_gpu", 3, *FOUR_PER_GPU)
    layout = []
    for line in jobs:
        trainings = sorted(re.findall(r"'train:experiment=shared,game=(\w+),seed=(\d)'", line))
        asked = dict(re.findall(r"(--gres|--cpus-per-task|--mem|-t|-p)[= ]([^ ]+)", line))
        layout.append((len(trainings), asked))
        print(f"{len(trainings)} trainings: {' '.join(f'{g}{s}' for g, s in trainings)}: "
              + " ".join(f"{k} {v}" for k, v in sorted(asked.items())))
    # One GPU per job; per training 2 cores (profile set-threads: train) and 7,072 + 2,500 MB;
    # the trainings run side by side, so the runtime is one training's 2,880 minutes.
    assert sorted(layout, key=lambda item: item[0]) == [
        (2, {"--gres": "gpu:1", "--cpus-per-task": "4", "--mem": "19144", "-t": "2880", "-p": "gpu"}),
        (4, {"--gres": "gpu:1", "--cpus-per-task": "8", "--mem": "38288", "-t": "2880", "-p": "gpu"}),
        (4, {"--gres": "gpu:1", "--cpus-per-task": "8", "--mem": "38288", "-t": "2880", "-p": "gpu"}),
    ]
    assert not any("--gpus" in line for line in jobs)


def test_one_training_per_gpu_asks_slurm_for_a_gpu_of_its_own(tmp_path):
    config = write_config(tmp_path / "one.yaml", **{**SHARED, "games": ["pong"], "seeds": [0]})
    # On CUDA a training is a job of the group train_gpu, here of one training (the profile's train_gpu=1).
    [line] = recorded_sbatch_lines(tmp_path, config, "--target-jobs 'train:experiment=shared,game=pong,seed=0'", 1)
    asked = dict(re.findall(r"(--gpus|--gres|--cpus-per-task|--mem|-t|-p)[= ]([^ ]+)", line))
    assert asked == {"--gpus": "1", "--cpus-per-task": "2", "--mem": "9572", "-t": "2880", "-p": "gpu"}


# ---------------------------------------------------------------------------- end to end
RUN = ("--cores", "2", "--set-threads", "train=1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny experiment run as a user would, with a damaged config.json in pong's run folder (its
    training refuses to start), then run again once that file is deleted."""
    root = tmp_path_factory.mktemp("tiny")
    config = write_config(root / "config.yaml", **TINY)
    pong = root / "results" / "tiny" / "runs" / "dqn" / "pong" / "seed0"
    pong.mkdir(parents=True)
    (pong / "config.json").write_text('{"game": "pong", "se')

    first = snakemake(root, *RUN, "--configfile", str(config))
    partial_folder = root / "results" / "tiny" / "partial"
    partial = {name: pd.read_parquet(partial_folder / name)
               for name in ("runs.parquet", "scores.parquet")} if (partial_folder / "runs.parquet").exists() else {}
    # The partial tables stand beside the outputs, never in their place.
    outputs_after_failure = sorted(p.name for p in (root / "results" / "tiny").glob("*.parquet"))
    partial_report_written = (root / "reports" / "tiny" / "partial" / "report.html").is_file()
    survived = (pong / "config.json").exists()
    (pong / "config.json").unlink()
    second = snakemake(root, *RUN, "--configfile", str(config))
    return {"root": root, "config": config, "first": first, "partial": partial, "pong_config_survived": survived,
            "outputs_after_failure": outputs_after_failure, "partial_report_written": partial_report_written,
            "second": second}


@pytest.mark.slow
def test_a_failed_game_leaves_the_others_and_a_partial_report(tiny):
    first, root = tiny["first"], tiny["root"]
    text = output_of(first)
    assert first.returncode != 0
    # The failed job's log, shown by the profile's show-failed-logs.
    assert "config.json' is unreadable" in text
    # keep-going: breakout trained and was evaluated; the onerror hook aggregated what exists.
    assert (root / "results/tiny/episodes/dqn/breakout/seed0/final.parquet").is_file()
    runs = tiny["partial"]["runs.parquet"].set_index("game")
    assert runs.loc["breakout", "status"] == "complete" and runs.loc["pong", "status"] == "missing"
    assert runs.loc["pong", "frames_done"] == 0
    scores = tiny["partial"]["scores.parquet"]
    assert sorted(zip(scores["game"], scores["agent"], scores["weights"])) == [
        ("breakout", "dqn", "best"), ("breakout", "dqn", "final"), ("breakout", "random", "none"), ("pong", "random", "none")]
    assert "a partial report in reports/tiny/partial/report.html" in text and tiny["partial_report_written"]
    # No output of the aggregate rule exists before its job has run on every planned file.
    assert tiny["outputs_after_failure"] == []
    # Files of a failed run that are not outputs are never deleted by Snakemake.
    assert tiny["pong_config_survived"]


@pytest.mark.slow
def test_rerun_after_a_failure_runs_only_what_is_missing(tiny):
    second = tiny["second"]
    text = output_of(second)
    assert second.returncode == 0, text[-3000:]
    # pong's training and its two evaluations, then the tables and the report; nothing of breakout.
    assert job_counts(text) == {"train": 1, "evaluate": 2, "aggregate": 1, "report": 1, "all": 1}
    assert "--game breakout" not in text
    # The full tables and report replace the partial ones, which are removed.
    root = tiny["root"]
    assert (root / "reports/tiny/report.html").is_file()
    assert not (root / "results/tiny/partial").exists() and not (root / "reports/tiny/partial").exists()


@pytest.mark.slow
def test_results_tables_have_the_documented_columns_and_values(tiny):
    results = tiny["root"] / "results" / "tiny"
    for name, expected in EXPECTED_SCHEMAS.items():
        assert schema_of(results / name) == expected, name
    for path in results.glob("episodes/**/*.parquet"):
        assert schema_of(path) == EPISODE_COLUMNS, path

    runs = pd.read_parquet(results / "runs.parquet")
    assert list(zip(runs["game"], runs["seed"], runs["status"])) == [("breakout", 0, "complete"), ("pong", 0, "complete")]
    assert (runs["frames_done"] == TINY_FRAMES).all() and (runs["frames_planned"] == TINY_FRAMES).all()
    assert (runs["device"] == "cpu").all() and (runs["wall_hours"] > 0).all()

    # 2 games x (best, final, random) x 2 episodes, each at most 1,000 frames.
    episodes = pd.read_parquet(results / "episodes.parquet")
    assert len(episodes) == 12
    assert set(episodes["weights"]) == {"best", "final", "none"}
    assert (episodes[episodes["agent"] == "dqn"]["length_frames"] <= 1_000).all()

    scores = pd.read_parquet(results / "scores.parquet")
    assert len(scores) == 6 and (scores["episodes"] == 2).all()
    pong_random = scores[(scores["game"] == "pong") & (scores["agent"] == "random")].iloc[0]
    pong_scores = episodes[(episodes["game"] == "pong") & (episodes["agent"] == "random")]["score"]
    assert pong_random["mean"] == pytest.approx(pong_scores.mean())
    assert pong_random["std"] == pytest.approx(pong_scores.std(ddof=0))
    # Extended Data Table 2: Pong random -20.7, human 9.3.
    assert pong_random["human_normalized"] == pytest.approx(100 * (pong_random["mean"] + 20.7) / 30.0)
    assert pong_random["display_name"] == "Pong"

    curves = pd.read_parquet(results / "learning_curves.parquet")
    assert sorted(set(zip(curves["game"], curves["frames"]))) == [
        ("breakout", 1_000), ("breakout", 2_000), ("pong", 1_000), ("pong", 2_000)]

    deviations = pd.read_parquet(results / "deviations.parquet").set_index("field")
    assert deviations.loc["training_length_frames", "paper_value"] == "200000000"
    assert deviations.loc["training_length_frames", "this_value"] == "2000"
    assert deviations.loc["final_eval_episodes", "this_value"] == "2"
    assert "learning_rate" not in deviations.index

    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["experiment"] == "tiny" and provenance["preset"] == "demo" and provenance["reference"] == "nature"
    assert {"torch", "ale-py", "gymnasium", "snakemake", "python"} <= set(provenance["versions"])
    assert provenance["versions"]["snakemake"] and provenance["hardware"]["cpu"]
    assert [(r["game"], r["device"]) for r in provenance["runs"]] == [("breakout", "cpu"), ("pong", "cpu")]


@pytest.mark.slow
def test_report_and_figures_are_written(tiny):
    reports = tiny["root"] / "reports" / "tiny"
    assert "<html" in (reports / "report.html").read_text().lower()
    for name in ("normalized_scores", "learning_curves", "average_max_q", "scores_vs_paper"):
        assert (reports / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_finished_workflow_has_nothing_to_do(tiny):
    done = snakemake(tiny["root"], *RUN, "--configfile", str(tiny["config"]))
    text = output_of(done)
    assert done.returncode == 0, text
    assert "Nothing to be done (all requested files are present and up to date)." in text


@pytest.mark.slow
def test_a_report_option_re_renders_only_the_report(tiny):
    changed = write_config(tiny["root"] / "changed.yaml", **{**TINY, "report": {"bootstrap_repetitions": 50, "bootstrap_seed": 1}})
    done = snakemake(tiny["root"], "-n", "--configfile", str(changed))
    text = output_of(done)
    assert done.returncode == 0, text
    assert job_counts(text) == {"report": 1, "all": 1}
    assert "--bootstrap-reps 50 --seed 1" in text


@pytest.mark.slow
def test_a_changed_hyperparameter_is_refused_before_any_job(tiny):
    changed = write_config(tiny["root"] / "changed_hp.yaml",
                           **{**TINY, "hyperparameters": {**TINY["hyperparameters"], "learning_rate": 0.001}})
    done = snakemake(tiny["root"], *RUN, "--configfile", str(changed))
    text = output_of(done)
    assert done.returncode != 0
    assert ("results/tiny/runs/dqn/breakout/seed0 holds a run of another config"
            " (hyperparameter 'learning_rate' is 0.00025 there, 0.001 here)") in text
    assert "Building DAG of jobs" not in text
    # Snakemake deletes a job's outputs before re-running it: they must all still be there.
    for game in TINY["games"]:
        for name in ("final.pt", "best.pt", "learning_curve.parquet"):
            assert (tiny["root"] / "results/tiny/runs/dqn" / game / "seed0" / name).is_file()


@pytest.mark.slow
def test_a_changed_checkpoint_interval_re_runs_no_training(tiny):
    # How often a run is checkpointed changes nothing it computes: only the tables (whose
    # parameters list the overrides) and the report are planned.
    hyperparameters = {**TINY["hyperparameters"], "checkpoint_interval_minutes": 5}
    changed = write_config(tiny["root"] / "changed_interval.yaml", **{**TINY, "hyperparameters": hyperparameters})
    done = snakemake(tiny["root"], "-n", "--configfile", str(changed))
    text = output_of(done)
    assert done.returncode == 0, text
    assert job_counts(text) == {"aggregate": 1, "report": 1, "all": 1}


def test_seeds_given_on_the_command_line_plan_those_seeds(tmp_path):
    # config/config.yaml documents `--config 'seeds=[0,1,2,3,4]'`; Snakemake hands the items over as strings.
    config = write_config(tmp_path / "cli.yaml", experiment="cli", preset="demo", games=["pong"], seeds=[0], device="cpu")
    done = snakemake(tmp_path, "-n", "--configfile", str(config), "--config", "seeds=[0,1,2,3,4]")
    text = output_of(done)
    assert done.returncode == 0, text
    assert job_counts(text)["train"] == 5
    assert "--game pong --seed 4 --out results/cli/runs/dqn/pong/seed4" in text


def test_the_plan_says_its_cost_before_any_job(tmp_path):
    done = snakemake(tmp_path, "-n", "--configfile", str(PAPER_CONFIG), "--config", "device=cpu")
    text = output_of(done)
    assert done.returncode == 0, text
    # 49 games x 3 seeds x 50M agent steps = 7.35G agent steps; at 150 steps/s: 13,611.1 hours.
    assert "plan: 147 training run(s), 29,400,000,000 frames (7,350,000,000 agent steps) in all, on cpu" in text
    assert "about 13,611.1 training hours" in text
    assert "the paper's preset is planned on a CPU: each training takes about 4 days" in text


def test_installed_slurm_profile_answers_to_its_bare_name(tmp_path):
    # Cluster users type `snakemake --profile slurm`: Snakemake looks that name up under
    # $XDG_CONFIG_HOME/snakemake/, where profiles/install.sh links the repository's profile.
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    before = snakemake(tmp_path, "-n", "--profile", "slurm", "--configfile", str(REPO / "config" / "demo.yaml"), env=env)
    assert before.returncode != 0 and "profile" in output_of(before)
    installed = subprocess.run(["bash", str(REPO / "profiles" / "install.sh")], capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "xdg" / "snakemake" / "slurm").resolve() == REPO / "profiles" / "slurm"
    done = snakemake(tmp_path, "-n", "--profile", "slurm", "--configfile", str(REPO / "config" / "demo.yaml"), env=env)
    text = output_of(done)
    assert done.returncode == 0, text
    assert job_counts(text)["train"] == 2 and "--device cuda" in text  # the profile's config: device=cuda
    # Running it again keeps the link; a folder of the user's own under that name is never replaced.
    assert subprocess.run(["bash", str(REPO / "profiles" / "install.sh")], capture_output=True, env=env).returncode == 0
    other = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "other"))
    (tmp_path / "other" / "snakemake" / "slurm").mkdir(parents=True)
    refused = subprocess.run(["bash", str(REPO / "profiles" / "install.sh")], capture_output=True, text=True, env=other)
    assert refused.returncode == 2 and refused.stderr.startswith("error:") and refused.stderr.count("\n") == 1


def test_snakemake_report_before_any_result_says_so_in_one_line(tmp_path):
    done = snakemake(tmp_path, "--configfile", str(REPO / "config" / "demo.yaml"), "--report", str(tmp_path / "r.zip"))
    text = output_of(done)
    assert done.returncode != 0
    assert "no report of experiment 'demo' yet (reports/demo/report.html is missing): run the workflow first" in text
    assert "Missing metadata" not in text and "Traceback" not in text and not (tmp_path / "r.zip").exists()
