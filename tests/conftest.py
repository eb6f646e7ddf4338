"""Shared pytest setup: small, fast defaults for every test, and the system packages that the
browser and Slurm tests need, checked once before any of them runs."""

import os
import shutil

import pytest

# Tests run on a 2-core machine beside other work: keep torch to one thread per process.
os.environ.setdefault("OMP_NUM_THREADS", "1")

INSTALL_COMMAND = "bash .ci/install-system-deps"
# Marker -> the commands its tests run, each as (any of these names, the Debian package).
SYSTEM_COMMANDS = {
    "browser": [(("chromium", "chromium-browser"), "chromium"), (("chromedriver",), "chromium-driver")],
    "slurm": [((name,), package) for name, package in (
        ("munged", "munge"), ("mariadbd", "mariadb-server"), ("slurmdbd", "slurmdbd"), ("slurmctld", "slurmctld"),
        ("slurmd", "slurmd"), ("sbatch", "slurm-client"), ("sacct", "slurm-client"))],
}


def missing_packages(marker: str) -> list[str]:
    """The Debian packages of `marker`'s tests whose commands are not on PATH, in order, once each."""
    missing = [package for names, package in SYSTEM_COMMANDS[marker] if not any(map(shutil.which, names))]
    return list(dict.fromkeys(missing))


def missing_line(marker: str, packages: list[str]) -> str:
    return (f"the {marker} tests need Debian's {', '.join(packages)}: install them with `{INSTALL_COMMAND}` "
            f"(as root), or leave these tests out with -m 'not {marker}'")


def pytest_configure(config):
    config.missing_system_packages = {marker: missing_packages(marker) for marker in SYSTEM_COMMANDS}


def pytest_runtest_setup(item):
    for marker, packages in item.config.missing_system_packages.items():
        if packages and item.get_closest_marker(marker) is not None:
            pytest.fail(missing_line(marker, packages), pytrace=False)


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
