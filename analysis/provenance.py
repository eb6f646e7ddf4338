"""provenance.json of an experiment: the versions, git commit and hardware of the machine that
aggregates, the plan (preset, reference, overrides, games, seeds), and each run's own device, host
and versions as its config.json recorded them."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

from dqn.run_folder import RunFiles, fast_path_fallback_text, package_versions, run_dir

VERSIONED_PACKAGES = ("torch", "ale-py", "gymnasium", "snakemake", "numpy", "pandas", "pyarrow", "dqn-harness")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _run(cmd: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """The commit of the checkout that holds this code, and whether tracked files differ from it."""
    if shutil.which("git") is None:
        return None, None
    commit = _run(["git", "-C", str(folder), "rev-parse", "HEAD"])
    if commit is None:
        return None, None
    status = _run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"])
    return commit, None if status is None else bool(status)


def hardware() -> dict[str, Any]:
    """The machine that aggregates (trainings record their own device and host in config.json)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    listing = _run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]) if shutil.which("nvidia-smi") else None
    gpus = [line.strip() for line in (listing or "").splitlines() if line.strip()]
    return {
        "cpu": f"{cpu} ({os.cpu_count()} cores)",
        "gpu": ", ".join(gpus) if gpus else "none",
        "memory_gib": memory_gib,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
    }


def provenance(results: str | os.PathLike, *, preset: str, reference: str, overrides: Mapping[str, Any],
               games: Sequence[str], seeds: Sequence[int], experiment: str | None = None) -> dict[str, Any]:
    """Versions, git commit and hardware here, the plan, and each run's own device, host and versions."""
    commit, dirty = git_state(Path(__file__).resolve().parent)
    runs = []
    fallbacks = []  # runs whose fast path failed its self-check and went on on the plain path
    for game in games:
        for seed in seeds:
            config = read_json(RunFiles(run_dir(results, game, seed)).config)
            if config is not None:
                fallback = fast_path_fallback_text(config)
                runs.append({"game": game, "seed": int(seed), "device": config.get("device"),
                             "hostname": config.get("hostname"), "versions": config.get("versions"),
                             "fast_path_fallback": fallback})
                if fallback:
                    fallbacks.append(f"{game} seed {seed}: {fallback}")
    return {
        "experiment": experiment or Path(results).resolve().name,
        "preset": preset,
        "reference": reference,
        "overrides": {k: str(v) for k, v in overrides.items()},
        "games": list(games),
        "seeds": [int(s) for s in seeds],
        "versions": package_versions(VERSIONED_PACKAGES),
        "git_commit": commit,
        "git_dirty": dirty,
        "hardware": hardware(),
        "fast_path_fallbacks": "; ".join(fallbacks) or "none",
        "runs": runs,
    }
