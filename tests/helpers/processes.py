"""What the end-to-end tests share: an uninterrupted reference training run in the background,
and a real small file system (tmpfs) for a real full disk."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

PRIVILEGE_ERRORS = re.compile(r"permission denied|not permitted|must be superuser", re.IGNORECASE)


@contextlib.contextmanager
def in_background(cmd: Sequence[str], out: Path) -> Iterator[Callable[[], Path]]:
    """Start `cmd` (a training into `out`); yield a function that waits for its success and returns `out`.

    Started before the tests that need it, it runs while they play their interrupted runs.
    """
    proc = subprocess.Popen(list(cmd), stderr=subprocess.PIPE, text=True)
    done: list[Path] = []

    def finished() -> Path:
        if not done:
            _, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, stderr
            done.append(out)
        return done[0]

    try:
        yield finished
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def mounted_tmpfs(mount_point: Path, size_mib: int, *, covered_by: str) -> Iterator[Path]:
    """A tmpfs of `size_mib` MiB at `mount_point`, unmounted at the end. Without the privilege to
    mount (not root, or no capability) the test is skipped, naming the tests that `covered_by`
    says cover its logic; any other mount failure fails it."""
    mount_point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip(f"a real full disk needs mounting a tmpfs, which needs root; {covered_by} cover the logic")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        if PRIVILEGE_ERRORS.search(mounted.stderr):
            pytest.skip(f"no capability to mount a tmpfs ({mounted.stderr.strip()}); {covered_by} cover the logic")
        pytest.fail(f"mount -t tmpfs failed: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
        if os.path.ismount(mount_point):
            subprocess.run(["umount", "-l", str(mount_point)], check=True)
