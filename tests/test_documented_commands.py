"""Every command line the README, the configs' comments and the Snakefile's comments show still
works, so the documentation cannot rot: each `snakemake` line runs as a dry run (`-n`) in a
scratch folder (`--unlock` for real; `--report` must answer that no report exists yet there), and
each `python -m` line's arguments are parsed by that command's own parser (running it would take
hours)."""

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Commands the documentation shows as prose, not as lines to type (placeholders, partial lines).
NOT_COMMANDS = re.compile(r"\.\.\.|<[a-z]+>")


def documented_lines() -> list[tuple[str, str]]:
    """(where, command) for every `snakemake ...` and `python -m ...` line of the documentation."""
    found = []
    readme = (REPO / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            found.append(("README.md", line))
    for path in [*sorted((REPO / "config").glob("*.yaml")), REPO / "Snakefile"]:
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                match = re.search(r"(snakemake|python -m) .*", line)
                if match:
                    found.append((path.name, match.group(0)))
    commands = []
    for where, line in found:
        line = re.sub(r"\s+#.*$", "", line).strip()
        for part in line.split("&&"):
            part = part.strip()
            if re.match(r"^(snakemake|python -m) ", part) and not NOT_COMMANDS.search(part):
                commands.append((where, part))
    return list({command: (where, command) for where, command in reversed(commands)}.values())[::-1]


COMMANDS = documented_lines()


def test_the_documentation_shows_the_commands_users_type():
    shown = {command for _, command in COMMANDS}
    assert "snakemake --cores all --configfile config/demo.yaml" in shown
    assert "snakemake --profile profiles/slurm" in shown and "snakemake --profile slurm" in shown
    assert "snakemake --config 'seeds=[0,1,2,3,4]'" in shown
    assert any(c.startswith("python -m dqn.train ") for c in shown)
    assert len(COMMANDS) >= 15


def parser_of(module_name: str):
    module = importlib.import_module(module_name)
    for name in ("build_parser", "_parser"):
        if hasattr(module, name):
            return getattr(module, name)().parse_args
    main = importlib.import_module(f"{module_name}.__main__")
    return main.parse_args


@pytest.mark.parametrize("where, command", [c for c in COMMANDS if c[1].startswith("python -m ")],
                         ids=lambda value: value if isinstance(value, str) and value.startswith("python") else "")
def test_a_documented_python_command_parses(where, command):
    words = shlex.split(command)[2:]
    module, args = words[0], words[1:]
    if module == "pytest":
        return  # the test command itself
    parse = parser_of(module)
    parse(args)  # a UserError (one line) names what the documentation got wrong


@pytest.mark.parametrize("where, command", [c for c in COMMANDS if c[1].startswith("snakemake")],
                         ids=lambda value: value if isinstance(value, str) and value.startswith("snakemake") else "")
def test_a_documented_snakemake_command_runs_as_a_dry_run(where, command, tmp_path):
    words = shlex.split(command)[1:]
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    if "slurm" in words and "profiles/slurm" not in words:
        # The bare profile name: after the documented install step.
        installed = subprocess.run(["bash", str(REPO / "profiles" / "install.sh")], capture_output=True, text=True,
                                   env=env)
        assert installed.returncode == 0, installed.stderr
    mode = "report" if "--report" in words else "unlock" if "--unlock" in words else "dry run"
    if mode == "dry run":
        words.append("-n")
    # From the repository (the documented paths are relative to it), into a scratch working folder
    # that sees the repository's config/ as a user's checkout does (the default configfile).
    work = tmp_path / "work"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    cmd = [sys.executable, "-m", "snakemake", *words, "--directory", str(work)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    text = done.stdout + done.stderr
    if mode == "report":
        assert done.returncode != 0 and "no report of experiment" in text, text[-3000:]
    else:
        assert done.returncode == 0, f"{where}: {command}\n{text[-3000:]}"
