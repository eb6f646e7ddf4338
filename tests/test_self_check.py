"""The fast path's self-check (dqn/speed/self_check.py) on the CPU: a matching fast path is kept
and left exactly as it was; an injected mismatch and an injected capture error each fall back to
the plain path with one warning and a record in config.json; a fast-path checkpoint resumes on
the plain path after a fallback. (On the CPU the FastLearner runs eagerly: the CUDA graphs
themselves are checked by `python -m benchmarks.gpu_check` on a GPU.)"""

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

from dqn.agent import Learner
from dqn.config import NATURE
from dqn.speed import self_check
from dqn.speed.device_replay import DeviceBatch
from dqn.speed.fast_learner import FastLearner

CAPTURE_ERROR = "CUDA error: operation not permitted when stream is capturing"


def _fast_learner_after_updates(updates=3):
    """A FastLearner with RMSProp averages and a moved target network, as on a resume."""
    torch.manual_seed(0)
    fast = FastLearner(Learner(NATURE, 4, device="cpu"))
    rng = np.random.default_rng(0)
    for _ in range(updates):
        batch = DeviceBatch(torch.from_numpy(rng.integers(0, 256, (32, 4, 84, 84), dtype=np.uint8)),
                            torch.from_numpy(rng.integers(0, 4, 32)), torch.zeros(32), torch.zeros(32),
                            torch.from_numpy(rng.integers(0, 256, (32, 4, 84, 84), dtype=np.uint8)))
        fast.update(batch)
    fast.sync_target()
    return fast


def _state_copy(fast):
    inner = fast.learner
    return {
        "online": [p.detach().clone() for p in inner.online.parameters()],
        "target": [p.detach().clone() for p in inner.target.parameters()],
        "averages": [v.clone() for s in inner.optimizer.state.values() for v in s.values() if torch.is_tensor(v)],
        "updates": inner.parameter_updates,
        "rng": torch.get_rng_state(),
    }


def _assert_same_state(fast, before):
    after = _state_copy(fast)
    assert after["updates"] == before["updates"]
    assert torch.equal(after["rng"], before["rng"])
    for name in ("online", "target", "averages"):
        assert len(after[name]) == len(before[name]) > 0
        assert all(torch.equal(a, b) for a, b in zip(after[name], before[name])), name


def test_a_matching_fast_path_passes_and_is_left_exactly_as_it_was():
    fast = _fast_learner_after_updates()
    before = _state_copy(fast)
    verdict = self_check.check_fast_path(fast, NATURE)
    assert verdict.passed and verdict.reason is None
    # 8 updates; an acting pass before the first and after each.
    assert (verdict.updates, verdict.acting_passes) == (8, 9)
    assert 0 < verdict.seconds < 120
    _assert_same_state(fast, before)


def test_the_check_of_a_fresh_learner_leaves_its_averages_at_zero():
    torch.manual_seed(1)
    fast = FastLearner(Learner(NATURE, 4, device="cpu"))
    weights = [p.detach().clone() for p in fast.online.parameters()]
    assert not fast.learner.optimizer.state  # no update yet: no averages
    assert self_check.check_fast_path(fast, NATURE).passed
    assert all(torch.equal(p, w) for p, w in zip(fast.online.parameters(), weights))
    # The averages the check made are zeros: what DeepMindRMSprop starts from anyway.
    averages = [v for s in fast.learner.optimizer.state.values() for v in s.values()]
    assert averages and all(not v.any() for v in averages)
    assert fast.parameter_updates == 0


def _perturbing_update(original):
    def update(self, batch):
        loss = original(self, batch)
        with torch.no_grad():
            next(self.learner.online.parameters()).add_(1e-3)  # a wrong step: 1e-3 on every conv1 weight
        return loss
    return update


def _failing_update(self, batch):
    raise RuntimeError(CAPTURE_ERROR)


def test_an_injected_mismatch_fails_the_check_and_the_state_is_put_back(monkeypatch):
    fast = _fast_learner_after_updates()
    before = _state_copy(fast)
    monkeypatch.setattr(FastLearner, "update", _perturbing_update(FastLearner.update))
    verdict = self_check.check_fast_path(fast, NATURE)
    assert not verdict.passed
    # The first update's loss is computed before the wrong step; the acting pass after it sees it.
    assert verdict.reason.startswith("Q-values differ: "), verdict.reason
    _assert_same_state(fast, before)


def test_an_injected_capture_error_fails_the_check_with_its_message(monkeypatch):
    fast = _fast_learner_after_updates()
    before = _state_copy(fast)
    monkeypatch.setattr(FastLearner, "update", _failing_update)
    verdict = self_check.check_fast_path(fast, NATURE)
    assert not verdict.passed
    assert verdict.reason == f"RuntimeError: {CAPTURE_ERROR} (raised while checking)"
    _assert_same_state(fast, before)


def test_a_wrong_acting_pass_is_caught_as_q_values_or_greedy_action(monkeypatch):
    fast = _fast_learner_after_updates()
    original = FastLearner.q_values

    def reversed_q(self, states):
        return original(self, states).flip(-1)  # the same values, actions renumbered

    monkeypatch.setattr(FastLearner, "q_values", reversed_q)
    verdict = self_check.check_fast_path(fast, NATURE)
    assert not verdict.passed and verdict.reason.startswith("Q-values differ: "), verdict.reason


# ---------------------------------------------------------------------------- dqn.train
SETS = [
    "training_length_frames=1600",  # 400 agent steps, 51 updates
    "replay_memory_size_transitions=1000",
    "replay_start_size_steps=200",
    "eval_interval_frames=800",
    "eval_length_frames=400",
    "heldout_states=32",
    "final_exploration_frame_steps=300",
    "target_network_update_frequency_steps=100",
]


@pytest.fixture
def train():
    """dqn.train.main in this process (so that a test can inject a fault), with the log handlers it
    adds removed afterwards."""
    from dqn.train import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.INFO)  # as the command's own logging.basicConfig sets it

    def run(out, *flags):
        return main(["--game", "breakout", "--seed", "0", "--out", str(out), "--no-side-eval", "--threads", "1",
                     "--set", *SETS, *flags])

    yield run
    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()


def _log_lines(run_dir, level):
    return [line for line in (run_dir / "train.log").read_text().splitlines() if f" {level} " in line]


def test_a_matching_fast_path_is_kept_by_dqn_train(tmp_path, train):
    assert train(tmp_path / "run", "--fast-path", "on") == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["fast_path"] is True and "fast_path_fallback" not in config
    assert not _log_lines(tmp_path / "run", "WARNING")
    checked = [line for line in _log_lines(tmp_path / "run", "INFO") if "fast path checked" in line]
    assert len(checked) == 1 and "8 updates and 9 acting passes agree" in checked[0]


@pytest.fixture(scope="module")
def plain_reference(tmp_path_factory):
    """The same run on the plain path from the start, in NCHW like the fast path."""
    from dqn.train import main

    out = tmp_path_factory.mktemp("plain") / "run"
    root = logging.getLogger()
    handlers = list(root.handlers)
    assert main(["--game", "breakout", "--seed", "0", "--out", str(out), "--no-side-eval", "--threads", "1",
                 "--set", *SETS, "--fast-path", "off", "--channels-last", "off", "--compile", "off"]) == 0
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    return out


@pytest.mark.parametrize("fault, reason", [
    ("mismatch", "Q-values differ: "),
    ("capture error", f"RuntimeError: {CAPTURE_ERROR} (raised while checking)"),
])
def test_a_failed_check_falls_back_to_the_plain_path_with_one_warning_and_a_record(
        tmp_path, train, monkeypatch, plain_reference, fault, reason):
    injected = _perturbing_update(FastLearner.update) if fault == "mismatch" else _failing_update
    monkeypatch.setattr(FastLearner, "update", injected)
    run = tmp_path / "run"
    assert train(run, "--fast-path", "on") == 0

    warnings = _log_lines(run, "WARNING")
    assert len(warnings) == 1, warnings
    assert "the fast path failed its check against the plain path (" + reason in warnings[0]
    assert warnings[0].endswith("continuing on the plain path (recorded in config.json as fast_path_fallback)")
    config = json.loads((run / "config.json").read_text())
    record = config["fast_path_fallback"]
    assert config["fast_path"] is False
    assert record["reason"].startswith(reason) and record["agent_steps"] == 0 and record["device"] == "cpu"
    assert record["check_seconds"] > 0
    # From step 0 the fallback run is the plain-path run: the same log rows and the same weights.
    varying = ["agent_steps_per_second", "wall_seconds"]
    got = pd.read_parquet(run / "train_log.parquet").drop(columns=varying)
    want = pd.read_parquet(plain_reference / "train_log.parquet").drop(columns=varying)
    pd.testing.assert_frame_equal(got, want)
    # One update every 4 agent steps while numSteps n (before the step) is past the replay start
    # (200): n = 204, 208, ..., 396, none by the row at 200.
    assert got["parameter_updates"].tolist() == [0, 49] and math.isfinite(got["loss_mean"].iloc[1])
    final, reference = (torch.load(path / "final.pt", weights_only=False)["state_dict"] for path in (run, plain_reference))
    assert all(torch.equal(final[k], reference[k]) for k in reference)


def test_a_fast_path_checkpoint_resumes_on_the_plain_path_after_a_fallback(tmp_path):
    from dqn.config import resolve
    from dqn.errors import UserError
    from dqn.loop import TrainState, checkpoint_state, restore
    from dqn.run_folder import RunFiles
    from dqn.train import build_parts

    hp = resolve("demo", {"replay_memory_size_transitions": 500, "replay_start_size_steps": 100,
                           "heldout_states": 32})
    files = RunFiles(tmp_path / "run")
    fast, first = build_parts(hp, "breakout", 0, "cpu", files, fast_path=True)
    rng = np.random.default_rng(0)
    for p in range(300):
        fast.replay.add(rng.integers(0, 256, (84, 84), dtype=np.uint8), int(rng.integers(4)), 1.0, p % 50 == 49, p % 50 == 0)
    st = TrainState(agent_steps=300, s_t=fast.stack.reset(first), episode_start=True)
    state = checkpoint_state(fast, st)
    plain, _ = build_parts(hp, "breakout", 0, "cpu", files, fast_path=False)
    with pytest.raises(UserError, match="checkpointed with --fast-path on"):
        restore(plain, state)
    resumed = restore(plain, state, leaving_fast_path=True)
    assert resumed.agent_steps == 300
    saved, loaded = fast.replay.state_dict(), plain.replay.state_dict()
    for name in ("frames", "actions", "rewards", "terminals", "episode_starts"):
        if name in saved:
            np.testing.assert_array_equal(loaded[name], saved[name], err_msg=name)
    assert (loaded["adds"], loaded["size"]) == (300, 300)
    # The host memory samples with its own seeded stream from there.
    assert plain.replay.sample(32).state.shape == (32, 4, 84, 84)
    for a, b in zip(plain.learner.online.parameters(), fast.learner.online.parameters()):
        assert torch.equal(a, b)
