"""The packages' layering: the agent library stands alone.

    dqn         the agent library: imports neither baselines nor analysis
    baselines   the random agent and the paper's tables: may import dqn
    analysis    aggregate and report: may import dqn and baselines

So `pip install dqn-harness` without the `report` extra trains and evaluates, and no package
imports one above it (no cycle). Checked twice: by importing every module of dqn in a fresh
interpreter, and by reading every import statement of the three packages (module level and inside
functions alike, so a lazy import counts too).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Each project package and the project packages it may import (besides itself).
ALLOWED = {
    "dqn": set(),
    "baselines": {"dqn"},
    "analysis": {"dqn", "baselines"},
}
PROJECT_PACKAGES = set(ALLOWED)
# What importing the agent library must not pull in: the report's dependencies (the `report`
# extra) and the packages above it.
NOT_WITH_DQN = ("matplotlib", "seaborn", "scipy", "baselines", "analysis")

IMPORT_EVERY_DQN_MODULE = """
import importlib, json, pkgutil, sys
import dqn
names = ["dqn"] + sorted(m.name for m in pkgutil.walk_packages(dqn.__path__, "dqn."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def imported_packages(source: str, package: str, filename: str = "<source>") -> set[str]:
    """Top-level names of every module that `source` imports, wherever the import statement is
    (module level, inside a function or a TYPE_CHECKING block); a relative import is `package`.
    importlib.import_module("x.y") with a constant name counts too."""
    found = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(package if node.args[0].value.startswith(".") else node.args[0].value.split(".")[0])
    return found


def test_importing_every_dqn_module_leaves_out_the_report_and_the_packages_above():
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERY_DQN_MODULE], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The walk reached the library's modules (whichever ones it holds today).
    assert {"dqn.config", "dqn.run_folder", "dqn.train", "dqn.evaluate"} <= set(result["modules"])
    assert "numpy" in result["loaded"]
    leaked = [name for name in NOT_WITH_DQN if name in result["loaded"]]
    assert not leaked, f"importing dqn's modules imports {', '.join(leaked)}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_project_packages_below_it(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ holds no Python file"
    offending = []
    for path in files:
        imported = imported_packages(path.read_text(encoding="utf-8"), package, str(path))
        for other in sorted((imported & PROJECT_PACKAGES) - ALLOWED[package] - {package}):
            offending.append(f"{path.relative_to(REPO)} imports {other}")
    assert not offending, "\n".join(offending)


def test_analysis_reads_what_dqn_and_baselines_write():
    # Not vacuous: the scan finds the imports that the layering allows.
    aggregate = (REPO / "analysis" / "aggregate.py").read_text(encoding="utf-8")
    assert "dqn" in imported_packages(aggregate, "analysis")
    paper = (REPO / "analysis" / "report" / "paper.py").read_text(encoding="utf-8")
    assert "baselines" in imported_packages(paper, "analysis")


def test_the_scan_counts_lazy_relative_and_dynamic_imports():
    source = '''
import os, numpy.linalg
from typing import TYPE_CHECKING
from . import sibling
if TYPE_CHECKING:
    from baselines.reference import nature_table

def late():
    from analysis.report import build_report
    import importlib
    return importlib.import_module("seaborn.objects")
'''
    assert imported_packages(source, "dqn") == {"os", "numpy", "typing", "dqn", "baselines", "analysis",
                                                "importlib", "seaborn"}


def test_the_replay_memory_and_the_byte_layer_do_not_import_the_checkpoint_store():
    """dqn/checkpoint.py (the two-generation store) sits on dqn/checksummed.py (checksummed files,
    released_chunks); the replay memory uses the byte layer only, so neither imports the store."""
    for name in ("replay.py", "checksummed.py"):
        source = (REPO / "dqn" / name).read_text(encoding="utf-8")
        modules = {node.module for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.ImportFrom) and node.module}
        modules |= {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                    for alias in node.names}
        assert "dqn.checkpoint" not in modules, f"dqn/{name} imports dqn.checkpoint"
    assert "dqn.checksummed" in {node.module for node in ast.walk(ast.parse((REPO / "dqn" / "replay.py").read_text()))
                                 if isinstance(node, ast.ImportFrom)}
