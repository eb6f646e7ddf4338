"""A test run on a machine without the browser's or Slurm's Debian packages says, in one line per
test, which packages are missing and the command that installs them; no fixture traceback."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_missing_chromium_is_one_line_naming_the_install_command(tmp_path):
    # PATH holds only the Python interpreter's folder: no chromium, no chromedriver.
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    command = [sys.executable, "-m", "pytest", "tests/test_report_browser.py", "-q", "-x", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    line = ("the browser tests need Debian's chromium, chromium-driver: install them with "
            "`bash .ci/install-system-deps` (as root), or leave these tests out with -m 'not browser'")
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"\n{line}\n" in done.stdout
    assert "Traceback" not in done.stdout and "def browser" not in done.stdout
