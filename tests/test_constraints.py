"""requirements/constraints.txt, the exact versions CI and the conda environment install, against
pyproject.toml: every declared dependency is pinned, inside its declared range; torch, installed
first by itself, is pinned to one version everywhere it is installed."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# The benchmark extra (the peer benchmark) is never installed by CI, so it has no pins.
UNPINNED_EXTRAS = {"benchmark"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, Version]:
    lines = (REPO / "requirements" / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonical(name): Version(version) for name, version in pairs}


def test_every_declared_dependency_is_pinned_inside_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [Requirement(line) for line in project["dependencies"]]
    for extra, lines in project["optional-dependencies"].items():
        if extra not in UNPINNED_EXTRAS:
            declared += [Requirement(line) for line in lines]
    pinned = pins()
    checked = 0
    for req in declared:
        name = canonical(req.name)
        if name in ("dqn-harness", "torch"):
            continue
        assert name in pinned, f"{req.name} is declared but not pinned: run python .ci/write-constraints"
        assert req.specifier.contains(pinned[name]), f"{req.name}=={pinned[name]} is outside {req}"
        checked += 1
    assert checked >= 15 and "torch" not in pinned


def test_torch_is_pinned_to_one_version_wherever_it_is_installed():
    places = [".ci/run", "README.md", "workflow/envs/dqn.post-deploy.sh"]
    versions = {place: set(re.findall(r"torch==([\d.]+)", (REPO / place).read_text())) for place in places}
    assert all(versions.values()), versions
    assert len(set().union(*versions.values())) == 1, versions
