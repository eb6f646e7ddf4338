"""`python -m dqn.train` end to end on CPU: files, train_log values counted by hand, determinism,
idempotent reruns and one-line errors for bad input. Also the progress line."""

import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from dqn.progress import Progress, format_count, format_duration

GAME = "breakout"
SETS = [
    "training_length_frames=6000",  # 1,500 agent steps
    "replay_memory_size_transitions=2000",
    "replay_start_size_steps=200",
    "eval_interval_frames=2000",  # 500 agent steps: 3 rows
    "eval_length_frames=800",
    "heldout_states=32",
    "final_exploration_frame_steps=1000",
    "target_network_update_frequency_steps=100",
]
TRAIN_LOG_SCHEMA = {
    "game": pa.string(),
    "seed": pa.int64(),
    "frames": pa.int64(),
    "agent_steps": pa.int64(),
    "parameter_updates": pa.int64(),
    "epsilon": pa.float64(),
    "train_episode_return_mean": pa.float64(),
    "train_episodes": pa.int64(),
    "loss_mean": pa.float64(),
    "average_max_q": pa.float64(),
    "heldout_td_error_abs_mean": pa.float64(),
    "agent_steps_per_second": pa.float64(),
    "wall_seconds": pa.float64(),
}
WEIGHTS_KEYS = {"state_dict", "network", "num_actions", "game", "frames", "hyperparameters"}


def train_cmd(out, *extra, sets=SETS, seed=0):
    return [sys.executable, "-m", "dqn.train", "--game", GAME, "--seed", str(seed), "--out", str(out),
            "--set", *sets, *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same seed twice, side by side: with side evaluation (default), and inline at the end."""
    root = tmp_path_factory.mktemp("train")
    side, inline = root / "side", root / "inline"
    started = time.monotonic()
    procs = [
        subprocess.Popen(train_cmd(side), stderr=subprocess.PIPE, text=True),
        subprocess.Popen(train_cmd(inline, "--no-side-eval", "--threads", "1"), stderr=subprocess.PIPE, text=True),
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    wall = time.monotonic() - started
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err
    print(f"\ntwo smoke runs side by side: {wall:.1f} s wall")
    return {"side": side, "inline": inline, "stderr": errs}


def test_all_files_exist_and_checkpoints_are_gone(runs):
    out = runs["side"]
    for name in ("config.json", "train_log.parquet", "learning_curve.parquet", "final.pt", "best.pt", "snapshots/COMPLETE"):
        assert (out / name).is_file(), name
    frames = [2000, 4000, 6000]
    assert sorted(p.name for p in (out / "snapshots").glob("*.pt")) == [f"frames_{f:012d}.pt" for f in frames]
    assert sorted(p.name for p in (out / "eval").glob("*.parquet")) == [f"frames_{f:012d}.parquet" for f in frames]
    # The checkpoint holds the whole replay memory: a finished run drops it.
    assert not (out / "checkpoint").exists()


def test_config_json_records_the_run(runs):
    config = json.loads((runs["side"] / "config.json").read_text())
    assert config["game"] == GAME and config["seed"] == 0 and config["preset"] == "nature"
    assert config["device"] == "cpu"
    # The speed choices a resume must keep: 6,000 frames is too short to compile the optimizer step.
    assert (config["fast_path"], config["compiled_optimizer_step"], config["channels_last"]) == (False, False, True)
    hp = config["hyperparameters"]
    assert hp["replay_start_size_steps"] == 200 and hp["training_length_frames"] == 6000
    assert hp["learning_rate"] == 0.00025  # untouched fields keep the preset's value
    assert set(config["versions"]) >= {"torch", "ale-py", "gymnasium", "numpy", "python"}
    assert config["versions"]["torch"] == metadata.version("torch")
    assert config["hostname"]


def test_train_log_columns_dtypes_and_hand_counted_values(runs):
    path = runs["side"] / "train_log.parquet"
    schema = pq.read_schema(path)
    assert schema.names == list(TRAIN_LOG_SCHEMA)
    assert {name: schema.field(name).type for name in schema.names} == TRAIN_LOG_SCHEMA
    log = pd.read_parquet(path)
    assert len(log) == 3
    assert (log["game"] == GAME).all() and (log["seed"] == 0).all()
    assert log["frames"].tolist() == [2000, 4000, 6000]
    assert log["agent_steps"].tolist() == [500, 1000, 1500]  # 4 frames per agent step
    # DeepMind's perceive updates while numSteps = n (counted before the step) has n > 200
    # (replay start) and n % 4 == 0: n = 204, 208, ..., the last multiple of 4 below S, i.e.
    # (S - 1)//4 - 200//4 updates by the row at S steps.
    assert log["parameter_updates"].tolist() == [499 // 4 - 50, 999 // 4 - 50, 1499 // 4 - 50] == [74, 199, 324]
    # The last progress record (written at each period's end) says what analysis.status shows.
    progress = json.loads((runs["side"] / "progress.json").read_text())
    assert (progress["frames"], progress["frames_planned"], progress["agent_steps"]) == (6000, 6000, 1500)
    assert progress["eta_seconds"] == 0.0 and progress["epsilon"] == 0.1  # final since step 200 + 1,000
    # Epsilon 1.0 until step 200, then linear to 0.1 over 1,000 steps: 1 - 0.9 * (S - 200) / 1000.
    assert log["epsilon"].tolist() == pytest.approx([1 - 0.9 * 0.3, 1 - 0.9 * 0.8, 0.1], abs=1e-12)
    # Learning starts at step 200 < 500: every period has updates, a loss and the held-out Q.
    assert np.isfinite(log["loss_mean"]).all() and (log["loss_mean"] > 0).all()
    assert np.isfinite(log["average_max_q"]).all()
    # Clipped TD errors: |delta| <= 1, and not all zero once the networks have moved.
    assert ((log["heldout_td_error_abs_mean"] > 0) & (log["heldout_td_error_abs_mean"] <= 1)).all()
    # Episodes: a mean return exactly when an episode completed; Breakout scores are whole points.
    has_episodes = log["train_episodes"] > 0
    assert (np.isfinite(log["train_episode_return_mean"]) == has_episodes).all()
    assert has_episodes.any()
    assert (log["agent_steps_per_second"] > 0).all()
    assert log["wall_seconds"].is_monotonic_increasing


def test_weights_files_load_with_the_documented_keys(runs):
    from dqn.networks import build_network

    out = runs["side"]
    final = torch.load(out / "final.pt", weights_only=True)
    assert set(final) == WEIGHTS_KEYS
    assert final["game"] == GAME and final["network"] == "nature" and final["num_actions"] == 4
    assert final["frames"] == 6000 and final["hyperparameters"]["replay_start_size_steps"] == 200
    net = build_network(final["network"], (4, 84, 84), final["num_actions"])
    net.load_state_dict(final["state_dict"])
    for frames in (2000, 4000, 6000):
        snap = torch.load(out / "snapshots" / f"frames_{frames:012d}.pt", weights_only=True)
        assert set(snap) == WEIGHTS_KEYS and snap["frames"] == frames
    last = torch.load(out / "snapshots" / "frames_000000006000.pt", weights_only=True)
    assert all(torch.equal(last["state_dict"][k], final["state_dict"][k]) for k in final["state_dict"])
    best = torch.load(out / "best.pt", weights_only=True)
    assert set(best) == WEIGHTS_KEYS and best["frames"] in (2000, 4000, 6000)


def test_learning_curve_joins_the_training_time_evaluation(runs):
    for name in ("side", "inline"):
        curve = pd.read_parquet(runs[name] / "learning_curve.parquet")
        assert curve["frames"].tolist() == [2000, 4000, 6000]
        assert curve["eval_score_mean"].dtype == np.float64 and curve["eval_episodes"].dtype == np.int64
        evals = pd.concat(pd.read_parquet(p) for p in sorted((runs[name] / "eval").glob("*.parquet")))
        assert curve["eval_episodes"].tolist() == evals["eval_episodes"].tolist()
    # Evaluation beside training and inline at the end score the same snapshots the same way.
    side, inline = (pd.read_parquet(runs[n] / "learning_curve.parquet") for n in ("side", "inline"))
    pd.testing.assert_series_equal(side["eval_score_mean"], inline["eval_score_mean"])


def test_same_seed_gives_identical_learning(runs):
    side, inline = (pd.read_parquet(runs[n] / "train_log.parquet") for n in ("side", "inline"))
    for column in ("loss_mean", "average_max_q", "parameter_updates", "train_episodes", "train_episode_return_mean"):
        np.testing.assert_array_equal(side[column].to_numpy(), inline[column].to_numpy(), err_msg=column)


def test_rerun_of_a_finished_run_does_nothing(runs):
    out = runs["side"]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    started = time.monotonic()
    done = subprocess.run(train_cmd(out), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "already complete" in done.stderr
    assert time.monotonic() - started < 30
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files
    assert {p: p.stat().st_mtime_ns for p in files} == before


def _one_line_error(cmd, *, env=None):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--game", "no_such_game"], "unknown game 'no_such_game'"),
        (["--set", "replay_start_sizes=10"], "unknown hyperparameter 'replay_start_sizes'"),
        (["--set", "replay_start_size_steps=lots"], "'replay_start_size_steps' expects an integer"),
        (["--set", "replay_start_size_steps=5000", "replay_memory_size_transitions=1000"], "must not exceed replay_memory_size_transitions"),
        (["--set", "minibatch_size_transitions=-32"], "'minibatch_size_transitions' must be positive"),
        (["--seed", "-1"], "--seed must be zero or positive"),
        (["--preset", "nature2015"], "unknown preset 'nature2015'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dqn.train", "--game", GAME, "--seed", "0", "--out", str(out)]
    line = _one_line_error(cmd + args)
    assert message in line
    if "unknown game" in message:
        assert "breakout" in line and "pong" in line  # lists the valid games
    assert not out.exists()


def test_unwritable_output_folder_is_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for out in (a_file / "run", Path("/proc/dqn_train_test/run")):
        line = _one_line_error(train_cmd(out))
        assert "cannot write to output folder" in line
        assert not out.exists()


def test_full_disk_is_one_line(tmp_path):
    # 10^12 transitions of ~7 KB: no disk holds the checkpoint of that replay memory.
    out = tmp_path / "run"
    line = _one_line_error(train_cmd(out, sets=SETS + ["replay_memory_size_transitions=1000000000000"]))
    assert "not enough free disk" in line and "GiB needed" in line
    assert not out.exists()  # the folder the check made is removed again


def test_a_second_training_in_the_same_folder_is_refused(tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".train.lock", "a+") as held:  # as a running training holds it, with its PID
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("PID 4242 on node17\n")
        held.flush()
        line = _one_line_error(train_cmd(out))
    assert "another dqn.train (PID 4242 on node17) is still running" in line and "kill that PID" in line
    assert [p.name for p in out.iterdir()] == [".train.lock"]
    assert (out / ".train.lock").read_text() == "PID 4242 on node17\n"  # the holder's record is kept


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_cuda_asked_but_absent_is_one_line(tmp_path):
    line = _one_line_error(train_cmd(tmp_path / "run", "--device", "cuda"))
    assert "--device cpu" in line
    assert not (tmp_path / "run").exists()


def test_resume_with_another_config_is_refused_and_touches_nothing(runs):
    out = runs["inline"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    line = _one_line_error(train_cmd(out, sets=SETS[:-1] + ["target_network_update_frequency_steps=200"]))
    assert "another config" in line and "target_network_update_frequency_steps" in line and "new --out" in line
    line = _one_line_error(train_cmd(out, seed=1))
    assert "seed" in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_progress_line_has_rate_eta_and_fraction():
    now = [100.0]
    lines, records = [], []
    progress = Progress(1_000_000, label="pong seed 0: ", interval_seconds=30, clock=lambda: now[0], emit=lines.append,
                        record=records.append)
    progress.start(frames=0, agent_steps=0)
    assert progress.update(4_000, 1_000, epsilon=1.0, last_return=float("nan")) is None  # not due yet
    now[0] += 40.0
    line = progress.update(200_000, 50_000, epsilon=0.5, last_return=-21.0)
    # 50,000 steps in 40 s = 1,250 steps/s; 800k frames left at 5,000 frames/s = 160 s.
    assert line == ("pong seed 0: 200.0k/1.0M frames (20.0%), 1250.0 agent steps/s, ETA 2m 40s, "
                    "epsilon 0.500, last episode return -21")
    now[0] += 10.0
    # Forced (an eval period): the rate covers only the 10 s since the last line.
    line = progress.update(300_000, 75_000, epsilon=0.4, last_return=3.0, force=True)
    assert "2500.0 agent steps/s" in line and "ETA 1m 10s" in line
    assert lines == [lines[0], line]
    # The same numbers, recorded for analysis.status (RUN/progress.json), one record per line.
    assert [(r["frames"], r["agent_steps"], r["agent_steps_per_second"], r["eta_seconds"], r["epsilon"]) for r in records] == [
        (200_000, 50_000, 1250.0, 160.0, 0.5), (300_000, 75_000, 2500.0, 70.0, 0.4)]
    assert {r["frames_planned"] for r in records} == {1_000_000}
    assert format_duration(3 * 86_400 + 5 * 3600) == "3d 05h" and format_count(200_000_000) == "200.0M"


def test_learner_threads_leave_a_core_to_each_side_evaluation_worker(monkeypatch):
    from dqn.train import learner_threads

    assert learner_threads(3, side_eval_workers=1) == 3  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert learner_threads(None, side_eval_workers=1) == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    cores = len(os.sched_getaffinity(0))
    assert learner_threads(None, side_eval_workers=1) == max(1, cores - 1)
    assert learner_threads(None, side_eval_workers=0) == cores
    assert learner_threads(None, side_eval_workers=cores + 5) == 1


def test_speed_choices_follow_the_device_and_a_resume_keeps_what_the_run_started_with():
    from dqn.config import NATURE
    from dqn.speed.choices import speed_choices
    from dqn.train import build_parser

    def choices(*argv, started=None, device="cpu"):
        args = build_parser().parse_args(["--game", GAME, "--seed", "0", "--out", "x", *argv])
        return speed_choices(args, started or {}, device, NATURE)

    # A Nature run on the CPU: plain path, compiled optimizer step, channels-last.
    assert choices() == (False, True, True)
    assert choices("--channels-last", "off", "--compile", "off") == (False, False, False)
    # "auto" on a resume keeps the run's own choices, an explicit flag overrides them.
    started = {"fast_path": False, "compiled_optimizer_step": False, "channels_last": False}
    assert choices(started=started) == (False, False, False)
    assert choices("--channels-last", "on", started=started) == (False, False, True)
    # A run from before the memory-format choice existed resolves it afresh.
    assert choices(started={"fast_path": False, "compiled_optimizer_step": True}) == (False, True, True)


def test_the_evaluator_feeds_its_network_what_the_learner_trained_on(tmp_path):
    """A snapshot played by the evaluation's policy (its own AtariEnv and FrameStack, the network
    rebuilt from the weights file) gives the learner's Q-values on the same game, seed and actions:
    the observations, their scale and the network are the training's."""
    from dqn.atari import AtariEnv, FrameStack
    from dqn.config import resolve
    from dqn.loop import TrainState, train_loop
    from dqn.policy import DQNPolicy
    from dqn.run_folder import RunFiles
    from dqn.train import build_parts

    hp = resolve("nature", dict(item.split("=") for item in SETS) | {"training_length_frames": "2000"})
    parts, first = build_parts(hp, GAME, 0, "cpu", RunFiles(tmp_path / "run"), channels_last=True)
    assert train_loop(parts, TrainState(s_t=parts.stack.reset(first))) is None
    policy = DQNPolicy.from_weights(tmp_path / "run" / "snapshots" / "frames_000000002000.pt")
    # The same trajectory through the training's env and an evaluation env built as the runner builds it.
    train_env = AtariEnv(GAME, seed=3, end_step_at_life_loss=False)
    eval_env = AtariEnv(GAME, seed=3, max_episode_frames=hp.final_eval_max_episode_frames)
    train_stack, eval_stack = FrameStack(), FrameStack()
    s_train, s_eval = train_stack.reset(train_env.reset()), eval_stack.reset(eval_env.reset())
    rng = np.random.default_rng(0)
    states_train, states_eval = [], []
    for _ in range(60):
        action = int(rng.integers(4))
        s_train, s_eval = train_stack.push(train_env.step(action).frame), eval_stack.push(eval_env.step(action).frame)
        states_train.append(s_train)
        states_eval.append(s_eval)
    np.testing.assert_array_equal(np.stack(states_train), np.stack(states_eval))
    q_learner = parts.learner.q_values(np.stack(states_train)).numpy()
    q_policy = policy.q_values(np.stack(states_eval))
    assert q_policy.std(axis=0).max() > 0  # the states give different values
    np.testing.assert_allclose(q_policy, q_learner, rtol=1e-4, atol=1e-6)
