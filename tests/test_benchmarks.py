"""Smoke checks of the benchmark commands with tiny budgets: each prints its table with the
expected columns and positive numbers. No timing is asserted (the machine is shared)."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# benchmarks/ is a folder of the repository, not an installed package.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import peer  # noqa: E402
from benchmarks.common import format_table  # noqa: E402


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# One bad value per benchmark, each of a different kind: not a number, not a choice, unknown flag.
BAD_ARGUMENTS = {
    "check_runs": ["--no-such-flag", "run"],
    "checksum": ["--size-gib", "lots"],
    "constant_actions": ["--episodes", "few", "pong"],
    "demo_scores": ["--parallel", "two"],
    "eval_cost": ["--preset", "demo"],
    "gpu_check": ["--device", "tpu"],
    "layers": ["--threads", "two"],
    "memory": ["--fill-fraction", "half"],
    "peer": ["--compile", "maybe"],
    "profile_step": ["--device", "tpu"],
    "q_spread": ["--states", "many", "run"],
    "side_eval": ["--seed", "-"],
    "throughput": ["--no-such-flag"],
}


@pytest.mark.parametrize("module", list(BAD_ARGUMENTS))
def test_a_bad_argument_is_one_error_line_with_exit_code_2(module):
    args = BAD_ARGUMENTS[module]
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert args[0] in proc.stderr and f"python -m benchmarks.{module} --help" in proc.stderr
    assert proc.stdout == ""


def _table(stdout):
    """The Markdown table of a benchmark's output: header cells and rows of cells."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def _number(cell):
    return float(cell.replace(",", ""))


def test_throughput_table_has_every_row_with_positive_numbers():
    out = _run("benchmarks.throughput", "--device", "cpu", "--compile", "off", "--env-steps", "40", "--eval-episodes", "2",
               "--eval-max-frames", "200", "--eval-workers", "1", "--replay-transitions", "400",
               "--learning-start-steps", "64", "--warmup-steps", "32", "--measure-steps", "32")
    header, rows = _table(out)
    assert header == ["measure", "value", "unit", "setting"]
    units = {(r[0], r[2]) for r in rows}
    for expected in [("environment only", "agent steps/s"), ("environment only", "frames/s"),
                     ("evaluation", "episodes/min"), ("evaluation", "frames/s"),
                     ("training while learning, run 1 of 1", "agent steps/s"),
                     ("replay memory (host, dqn.replay)", "bytes/transition")]:
        assert expected in units, (expected, units)
    assert all(_number(r[1]) > 0 for r in rows)
    replay_row = next(r for r in rows if r[0] == "replay memory (host, dqn.replay)")
    assert _number(replay_row[1]) == 7066  # 84*84 frame + int32 action + float32 reward + 2 flags
    training_row = next(r for r in rows if r[0].startswith("training while learning"))
    assert "8 updates timed" in training_row[3]  # 32 timed steps, one update every 4


def test_profile_table_covers_the_parts_of_a_step_and_sums_to_the_total():
    out = _run("benchmarks.profile_step", "--device", "cpu", "--compile", "off", "--env-steps", "20", "--updates", "2",
               "--fill-transitions", "300")
    header, rows = _table(out)
    assert header == ["part", "calls per agent step", "wall ms per call", "cpu ms per call",
                      "wall ms per agent step", "share %"]
    parts = [r[0] for r in rows]
    for part in ("environment step", "acting forward pass", "replay insert", "replay sample", "update",
                 "target sync", "train log row + snapshot"):
        assert part in parts
    assert any(p.startswith("checkpoint") for p in parts) and parts[-1] == "total"
    body = rows[:-1]
    assert all(_number(r[2]) > 0 for r in body)
    calls = {r[0]: _number(r[1]) for r in body}
    assert calls["update"] == calls["replay sample"] == 0.25 and calls["acting forward pass"] == 0.9
    assert sum(_number(r[4]) for r in body) == pytest.approx(_number(rows[-1][4]), rel=0.02)
    assert "implied agent steps/s" in out


def test_memory_table_projects_a_full_memory_from_a_small_fill():
    out = _run("benchmarks.memory", "--fill-fraction", "0.002")
    header, rows = _table(out)
    assert header[0] == "process" and len(rows) == 2
    for row in rows:
        assert _number(row[3]) == 2000
        base, peak, projected = _number(row[1]), _number(row[2]), _number(row[4])
        assert 0 < base <= peak < projected
    # 998,000 unfilled transitions at 7,066 bytes: at least 6.5 GiB more than the measured peak.
    assert _number(rows[0][4]) - _number(rows[0][2]) == pytest.approx(998_000 * 7066 / 2**20, rel=1e-3)


def test_peer_worker_of_this_project_reports_a_learning_rate():
    out = _run("benchmarks.peer", "--worker", "ours", "--compile", "off", "--replay-transitions", "400",
               "--learning-start-steps", "64", "--warmup-steps", "32", "--measure-steps", "32")
    import json

    result = json.loads(out.strip().splitlines()[-1])
    assert result["agent_steps_per_second"] > 0 and result["measured_updates"] == 8
    assert result["replay_bytes_per_transition"] == 7066 and result["peak_rss_bytes"] > 0


def test_peer_table_takes_ratios_within_rounds(monkeypatch):
    rates = {("ours", False): iter([30.0, 60.0]), ("sb3", False): iter([20.0, 30.0])}

    def fake_worker(args, side, malloc):
        name = "dqn (this project)" if side == "ours" else "Stable-Baselines3 DQN"
        rate = next(rates[(side, malloc)])
        return {"implementation": name, "agent_steps_per_second": rate,
                "measured_updates": 8, "measured_seconds": 1.0, "peak_rss_bytes": 2**30,
                "cpu_ms_per_agent_step": 1e3 / rate,
                "replay_transitions_stored": 100, "replay_bytes_per_transition": 7066.0}

    monkeypatch.setattr(peer, "_run_worker", fake_worker)
    args = peer.build_parser().parse_args(["--rounds", "2"])
    table, runs = peer.compare(args)
    assert len(runs) == 4
    ours, sb3, ratio = table
    assert ours[1] == 45.0 and sb3[1] == 25.0  # medians of the rounds
    # Per round 1.5 and 2.0: the median of the ratios, not the ratio of the medians (1.8).
    assert ratio[1] == 1.75 and ratio[2] == "1.50, 2.00" and ratio[3] == 1.75  # cpu time: the same ratios here
    assert "ratio this project / Stable-Baselines3 DQN" in format_table(peer.COLUMNS, table)


def test_side_eval_table_compares_the_three_evaluation_modes_against_none():
    out = _run("benchmarks.side_eval", "--frames", "800", "--eval-interval-frames", "400", "--eval-length-frames", "160",
               "--learning-start-steps", "64", "--rounds", "1", "--device", "cpu")
    header, rows = _table(out)
    assert header == ["mode", "training phase s", "agent steps/s while learning", "total s to final outputs",
                      "evaluation s", "training phase vs (a) %", "total vs (a) %", "total vs (a) % per round"]
    assert [r[0] for r in rows] == ["(a) no training-time evaluation", "(b) side evaluation (default)",
                                    "(c) evaluation after training (--no-side-eval)"]
    for row in rows:
        phase, rate, total = _number(row[1]), _number(row[2]), _number(row[3])
        assert 0 < phase < total and rate > 0
    none, side, after = rows
    assert none[5] == none[6] == "baseline"
    # (a) plays zero evaluation frames; (b) and (c) play 2 snapshots x 160 frames each.
    assert _number(none[4]) < 0.5 * min(_number(side[4]), _number(after[4]))
    assert side[7] and after[7]  # one overhead per round, as a signed percentage
    assert "evaluation takes at most" in out


def test_layers_table_has_both_formats_of_every_layer_and_the_update():
    out = _run("benchmarks.layers", "--batch", "2", "--repeats", "2")
    header, rows = _table(out)
    assert header[:2] == ["layer", "format"]
    layers = ["conv 4->32, 8x8/4", "conv 32->64, 4x4/2", "conv 64->64, 3x3/1", "linear 3136->512", "linear 512->4"]
    assert [(r[0], r[1]) for r in rows] == [(name, fmt) for fmt in ("NCHW", "channels-last") for name in layers]
    assert all(_number(cell) > 0 for r in rows for cell in r[2:])
    assert "whole update" in out and "channels-last" in out.splitlines()[-3]


def test_eval_cost_table_projects_a_nature_evaluation_against_the_snapshot_interval():
    out = _run("benchmarks.eval_cost", "--games", "pong", "--frames", "4000")
    header, rows = _table(out)
    assert header == ["game", "agent steps/s", "s per evaluation", "s between snapshots (GPU)", "cores needed (GPU)",
                      "s between snapshots (CPU)", "cores needed (CPU)"]
    (game, rate, eval_seconds, gpu_interval, gpu_cores, cpu_interval, cpu_cores), = rows
    assert game == "pong" and _number(rate) > 0
    # 125,000 agent steps (500k frames) at the measured rate; a snapshot every 250,000 agent steps.
    assert _number(eval_seconds) == pytest.approx(125_000 / _number(rate), rel=0.01)
    # The table prints numbers of 100 and more as whole numbers: 166.7 s and 1,666.7 s.
    assert (_number(gpu_interval), _number(cpu_interval)) == (167, 1_667)
    assert int(gpu_cores) == -(-_number(eval_seconds) // _number(gpu_interval)) and int(cpu_cores) >= 1


def test_checksum_table_hashes_writes_and_verifies_a_small_checkpoint(tmp_path):
    out = _run("benchmarks.checksum", "--size-gib", "0.01", "--rounds", "1", "--checkpoint-transitions", "1000",
               "--dir", str(tmp_path))
    header, rows = _table(out)
    assert header[:3] == ["measure", "hash", "GB/s"]
    measures = {r[0] for r in rows}
    assert {"hash in memory", "write, no checksum", "Checkpointer.save (CRC32), 1,000 transitions"} <= measures
    assert all(_number(r[2]) > 0 for r in rows)
    assert list(tmp_path.iterdir()) == []  # its test files are removed


def test_gpu_check_runs_every_step_with_tiny_budgets_on_the_cpu(tmp_path):
    """`--device cpu --quick`: the install from a (here empty) wheel folder, the equality tests, the
    self-check, the step profile, 1 and 2 concurrent trainings, the table and the projection."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()  # everything is installed already: pip needs nothing from it
    out = _run("benchmarks.gpu_check", "--device", "cpu", "--quick", "--wheels", str(wheels))
    lines = out.splitlines()
    assert lines[0].startswith("# GPU check on the CPU, torch ") and "(--quick" in lines[0]
    assert lines[1].startswith(f"1. installed from {wheels}: ale-py>=0.12 gymnasium>=1.0")
    # Each selected test runs on the CPU and, marked gpu, on CUDA: here the CUDA pair is skipped.
    assert re.match(r"2\. equality tests \(tests/test_fast_path\.py .*\) on cpu: 2 passed, 2 skipped, \d+ deselected",
                    lines[2])
    assert re.match(r"   self-check of the fast path \(8 updates, 9 acting passes against the plain path\): passed; "
                    r"\d+\.\d\d s the first time", lines[3])
    header, rows = _table(out.split("4. concurrent")[1])
    assert header[0] == "trainings on the GPU" and header[-1] == "147-run table on 8 GPUs, hours"
    assert [row[0] for row in rows] == ["1", "2"] and all(row[1] == "host (CPU)" for row in rows)
    for row in rows:
        mean, slowest, total, hours = (_number(row[i]) for i in (2, 3, 4, 7))
        assert 0 < slowest <= mean and total == pytest.approx(mean * int(row[0]), rel=0.01)
        # Waves of min(147, 8 x N) runs of 50M agent steps at the mean per-run rate.
        waves = -(-147 // min(147, 8 * int(row[0])))
        assert hours == pytest.approx(waves * 50e6 / mean / 3600, rel=0.01)
        assert row[5] == row[6] == "n/a"  # no nvidia-smi on the CPU
    step_profile = out.split("3. one training step")[1].split("4. concurrent")[0]
    assert "| update " in step_profile and "| acting forward pass " in step_profile
    overlap = re.search(r"   update and emulator at once \(plain path\): update ([\d.]+) ms, one emulator step ([\d.]+) ms, "
                        r"both as the loop runs them ([\d.]+) ms: (-?\d+) % of the emulator step hidden", step_profile)
    assert overlap, step_profile
    update_ms, step_ms, both_ms = (float(overlap.group(i)) for i in (1, 2, 3))
    assert update_ms > 0 and step_ms > 0 and both_ms > 0
    # The printed share is (update + step - both) / step of the unrounded times: each printed time is
    # within 0.05 ms of its own, so the share lies between the extremes over those intervals (a
    # 0.4 ms emulator step moves it by tens of percent), then rounded to a whole percent.
    import itertools

    shares = [100 * (u + s - b) / s for u, s, b in itertools.product(
        (update_ms - 0.05, update_ms + 0.05), (max(step_ms - 0.05, 1e-3), step_ms + 0.05), (both_ms - 0.05, both_ms + 0.05))]
    assert min(shares) - 0.5 <= int(overlap.group(4)) <= max(shares) + 0.5
    assert re.search(r"5\. projected: the paper's table \(147 runs x 50,000,000 agent steps\) on 8 such GPUs takes "
                     r"[\d,.]+ hours at \d training\(s\) per GPU", out)


def test_gpu_check_projects_the_paper_table_in_waves():
    from benchmarks.gpu_check import projected_hours

    # One run per GPU at 1,500 steps/s: 19 waves of 8 runs, 50M steps each = 9.26 h a wave: 175.9 h.
    assert projected_hours(1500, 1) == pytest.approx(19 * 50e6 / 1500 / 3600)
    # 18 per GPU at 300 steps/s: 144 at once, so 2 waves of 46.3 h: 92.6 h.
    assert projected_hours(300, 18) == pytest.approx(2 * 50e6 / 300 / 3600)
    # 19 per GPU: all 147 at once, one wave.
    assert projected_hours(300, 19) == pytest.approx(50e6 / 300 / 3600)


def test_demo_scores_row_gives_the_ratio_and_the_gap_in_standard_errors():
    import pandas as pd

    from benchmarks.demo_scores import margin_row

    # Means 20 and 2 (10x); s.d.s 10 and 1; gap 18 = 18 random s.d.; standard error
    # sqrt(100/3 + 1/3) = 5.80, so the gap is 3.1 standard errors: below the target of 5.
    row = margin_row("pong", 0, pd.Series([10.0, 20.0, 30.0]), pd.Series([1.0, 2.0, 3.0]))
    assert row == ["pong", 0, "20.0 (10.0)", "2.0 (1.0)", "10.0x", "18.0", "3.1", "NO"]
    # The same values ten times (30 episodes): sample variances 200/3 * 30/29 = 68.97 and 2/3 * 30/29 = 0.69,
    # standard error sqrt((68.97 + 0.69) / 30) = 1.52, gap 18 / 1.52 = 11.8: met.
    best, random = pd.Series([10.0, 20.0, 30.0] * 10), pd.Series([1.0, 2.0, 3.0] * 10)
    assert margin_row("pong", 0, best, random)[-2:] == ["11.8", "yes"]
    # A random agent that never scores: the ratio is unbounded, the target is the standard errors'.
    assert margin_row("pong", 0, best, pd.Series([0.0] * 30))[4] == "inf"


def test_q_spread_columns_worked_by_hand():
    from benchmarks.q_spread import group_preference, spread

    # Two states, three actions: max Q 2 and 3 (mean 2.5, s.d. 0.5); per-action s.d. 1, 0.5, 0
    # (mean 0.5); gaps 2 - 1 and 3 - 1 (mean 1.5); greedy actions 1 and 0 (2 distinct, 50 %).
    got = spread(np.array([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0]]))
    assert got == pytest.approx({"mean_max_q": 2.5, "sd_max_q": 0.5, "sd_per_action": 0.5, "action_gap": 1.5,
                                 "greedy_actions": 2, "most_common_percent": 50.0})
    # Group {1, 2}: state 1 (2 + 0) / 2 - 1 = 0, state 2 (1 + 0) / 2 - 3 = -2.5, mean -1.25; greedy in
    # the group in state 1 only (action 1): 50 %.
    assert group_preference(np.array([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0]]), [1, 2]) == pytest.approx((-1.25, 50.0))


def test_q_spread_table_has_a_row_per_snapshot_with_its_score(tmp_path):
    run = tmp_path / "run"
    sets = ["training_length_frames=1600", "replay_memory_size_transitions=1000", "replay_start_size_steps=200",
            "eval_interval_frames=800", "eval_length_frames=400", "heldout_states=32"]
    done = subprocess.run([sys.executable, "-m", "dqn.train", "--game", "breakout", "--seed", "0", "--out", str(run),
                           "--no-side-eval", "--threads", "1", "--set", *sets],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    header, rows = _table(_run("benchmarks.q_spread", str(run), "--states", "50", "--actions", "LEFT", "RIGHT"))
    assert header[0] == "run" and header[-3:] == ["nnabla-rl seeds at these frames", "group advantage", "greedy in group %"]
    assert all(0 <= _number(row[-1]) <= 100 for row in rows)
    assert [row[1] for row in rows] == ["800", "1,600"]
    for row in rows:
        assert _number(row[3]) >= 0 and 1 <= int(row[6]) <= 4 and 25 <= _number(row[7]) <= 100
        assert int(row[9]) >= 0  # the snapshot's training-time evaluation was read


def test_constant_actions_policy_holds_its_action_and_road_runner_scores_only_running_left():
    from benchmarks.constant_actions import ConstantPolicy
    from dqn.evaluate import evaluate

    rngs = [np.random.default_rng(i) for i in range(200)]
    policy = ConstantPolicy(4, 18)
    assert (policy.act(np.zeros((200, 4, 84, 84), np.uint8), rngs, 0.0) == 4).all()
    drawn = policy.act(np.zeros((200, 4, 84, 84), np.uint8), rngs, 1.0)
    assert len(set(drawn.tolist())) > 10  # epsilon 1: uniform over the 18 actions
    # The readout docs/ROAD_RUNNER.md explains: LEFT held at epsilon 0.05 eats seeds for thousands
    # of frames; RIGHT runs into the coyote with no point, within a few hundred frames per life.
    left = evaluate(ConstantPolicy(4, 18), "road_runner", seed=0, episodes=1, num_workers=1)
    right = evaluate(ConstantPolicy(3, 18), "road_runner", seed=0, episodes=1, num_workers=1)
    assert left["score"].iloc[0] >= 500 and left["length_frames"].iloc[0] > 2_000
    assert right["score"].iloc[0] == 0 and right["length_frames"].iloc[0] < 1_000


def _check_run(folder, hp, scores_by_frames):
    """A run folder as dqn.train leaves it, with hand-chosen evaluation scores (for benchmarks.check_runs)."""
    import json

    import pandas as pd

    from dqn.run_folder import EVAL_COLUMNS, RunFiles

    files = RunFiles(folder)
    files.eval.mkdir(parents=True)
    files.config.write_text(json.dumps({"game": "frostbite", "seed": 0, "hyperparameters": hp.to_dict()}))
    for frames, score in scores_by_frames.items():
        row = ["frostbite", 0, frames, score, 100, 500_000, 900.0]
        pd.DataFrame([row], columns=list(EVAL_COLUMNS)).to_parquet(files.eval_row(frames))
    steps = max(scores_by_frames) // 4
    pd.DataFrame({"frames": [max(scores_by_frames)], "agent_steps": [steps], "wall_seconds": [7200.0]}).to_parquet(
        files.train_log)


def test_check_runs_places_each_evaluation_and_the_mean_among_the_reference_seeds(tmp_path, capsys):
    from dataclasses import replace

    from benchmarks.check_runs import main
    from dqn.config import NATURE

    paper = replace(NATURE, training_length_frames=2_000_000, replay_memory_size_transitions=510_000)
    _check_run(tmp_path / "paper", paper, {1_000_000: 100.0, 2_000_000: 300.0})
    _check_run(tmp_path / "faster", replace(paper, learning_rate=0.001), {1_000_000: 100.0})
    assert main([str(tmp_path / "paper"), str(tmp_path / "faster")]) == 0
    out = capsys.readouterr().out
    standings, costs = out.split("# What each run cost")
    _, rows = _table(standings)
    # nnabla-rl's Frostbite seeds: 90.8 / 108.5 / 125.8 at 1M frames (100 is within), 211.9 / 213.9 / 218.0
    # at 2M (300 is above all). Mean so far (100 + 300) / 2 = 200 against the seeds' means over 1M and 2M:
    # (90.845 + 218.025) / 2 = 154.4, (108.496 + 211.911) / 2 = 160.2, (125.809 + 213.919) / 2 = 169.9.
    assert rows[0] == ["paper", "frostbite", "1M", "100.0", "100", "90.8 / 108.5 / 125.8", "within"]
    assert rows[1] == ["paper", "frostbite", "2M", "300.0", "100", "211.9 / 213.9 / 218.0", "above"]
    assert rows[2] == ["paper", "frostbite", "mean to 2M", "200.0", "", "seed means 154.4 to 169.9", "above"]
    assert rows[3][-1] == "not comparable: learning_rate"
    _, cost_rows = _table(costs)
    # 7,200 s of training (2.00 h) and two evaluations of 900 s (0.50 h); 500,000 steps / 7,200 s = 69 per second.
    assert cost_rows[0] == ["paper", "2,000,000", "500,000", "2.00", "0.50", "2.50", "69"]

    # --despite places a run that differs only in the named keys, and says so in each standing.
    assert main([str(tmp_path / "faster"), "--despite", "learning_rate"]) == 0
    _, rows = _table(capsys.readouterr().out.split("# What each run cost")[0])
    assert rows == [["faster", "frostbite", "1M", "100.0", "100", "90.8 / 108.5 / 125.8", "within (differs: learning_rate)"],
                    ["faster", "frostbite", "mean to 1M", "100.0", "", "seed means 90.8 to 125.8",
                     "within (differs: learning_rate)"]]
    # Allowing another key is not enough: the learning rate still differs.
    assert main([str(tmp_path / "faster"), "--despite", "network_init"]) == 0
    _, rows = _table(capsys.readouterr().out.split("# What each run cost")[0])
    assert rows[0][-1] == "not comparable: learning_rate"


def test_check_runs_refuses_a_despite_key_that_is_no_hyperparameter(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.check_runs", str(tmp_path), "--despite", "learning_rat"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("error: --despite learning_rat: not a hyperparameter; name fields of "
                           "dqn.config.Hyperparameters\n")
