"""Every command line the README, the pages of docs/, the configs' comments and the Snakefile's
comments show still works, so the documentation cannot rot: each `snakemake` line runs as a dry run
(`-n`) in a scratch folder (`--unlock` for real; `--report` must answer that no report exists yet
there), and each `python -m` line's arguments are parsed by that command's own parser (running it
would take hours). Every link between these pages points at a file that exists."""

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The README and the pages it links to: each one's ```bash blocks are commands a reader types.
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Commands the documentation shows as prose, not as lines to type (placeholders, partial lines).
NOT_COMMANDS = re.compile(r"\.\.\.|<[a-z]+>")


def documented_lines() -> list[tuple[str, str]]:
    """(where, command) for every `snakemake ...` and `python -m ...` line of the documentation, each
    time it is shown (a command the README and a page both show comes twice)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                found.append((str(page.relative_to(REPO)), line))
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
    return commands


SHOWN = documented_lines()
# Each command once, named by where it is first shown.
COMMANDS = list({command: (where, command) for where, command in reversed(SHOWN)}.values())[::-1]


def test_the_documentation_shows_the_commands_users_type():
    shown = {command for _, command in COMMANDS}
    in_readme = {command for where, command in SHOWN if where == "README.md"}
    # The README itself shows the demo and the full run, locally and on Slurm.
    assert "snakemake --cores all --configfile config/demo.yaml" in in_readme
    assert "snakemake --cores all" in in_readme
    assert "snakemake --profile profiles/slurm" in in_readme and "snakemake --profile slurm" in in_readme
    assert "snakemake --config 'seeds=[0,1,2,3,4]'" in shown
    assert any(c.startswith("python -m dqn.train ") for c in shown)
    assert len(COMMANDS) >= 15


def test_every_page_with_commands_is_read():
    """Every docs page's bash blocks are collected like the README's, a page added later too."""
    read = {where for where, _ in SHOWN}
    with_commands = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")
                     if any(re.search(r"^(snakemake|python -m) ", block, re.M)
                            for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S))}
    assert {"docs/DEMO.md", "docs/RUNNING.md", "docs/COMPARE.md", "docs/ON_TRACK.md"} <= with_commands
    assert with_commands <= read


def test_every_link_between_the_pages_points_at_a_file():
    """Markdown links are relative to their page; a page named in backticks (`docs/X.md`) is
    relative to the repository's root, as the pages write them."""
    broken = []
    for page in [*PAGES, REPO / "benchmarks" / "README.md"]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address, or a heading of the same page
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO)}: ({target})")
        for named in re.findall(r"`([\w./-]+\.md)`", text):
            if not (REPO / named).exists():
                broken.append(f"{page.relative_to(REPO)}: `{named}`")
    assert not broken, broken


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
