"""What the command-line entry points share: the common flags, declared once with one wording,
the checks of the evaluation CLIs' arguments and output file, and their log lines.

Every entry point (the library's CLIs, baselines.random_agent, analysis, benchmarks) builds a
`dqn.errors.ArgumentParser` (usage errors are one `error:` line, exit code 2) and runs through
`dqn.errors.cli_main`:

    def build_parser():
        p = ArgumentParser(prog="python -m dqn.evaluate", description=...)
        add_game(p)
        add_seed(p, help="evaluation seed; episode i is seeded by (seed, i)")
        ...

    if __name__ == "__main__":
        cli_main(main)

A flag is required when it has no default. Only the declaration is shared: each command keeps its
own flag names, defaults and the meaning of its help (docs/RUNNING.md documents them).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dqn.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
SWITCH = ("auto", "on", "off")
# The evaluation commands' (dqn.evaluate, baselines.random_agent) seed, output and worker processes.
EVALUATION_SEED_HELP = "evaluation seed; episode i is seeded by (seed, i)"
EPISODES_OUT_HELP = "Parquet file to write (atomically)"
ENVIRONMENT_WORKERS_HELP = "environment processes (default: every core; 0 or 1: in-process)"


# ---------------------------------------------------------------------------- common flags
def add_game(parser: argparse.ArgumentParser, *, default: str | None = None, help: str | None = None) -> None:
    """--game: one ALE id (dqn.games.check_game checks it); required without a default."""
    if help is None:
        help = "ALE id of the game, e.g. breakout" if default is None else f"ALE id of the game (default {default})"
    parser.add_argument("--game", required=default is None, default=default, help=help)


def add_seed(parser: argparse.ArgumentParser, *, help: str | None = None, default: int | None = None) -> None:
    """--seed: an integer; required without a default."""
    if help is None:
        help = "seed" if default is None else f"seed (default {default})"
    parser.add_argument("--seed", type=int, required=default is None, default=default, help=help)


def add_out(parser: argparse.ArgumentParser, *, help: str, required: bool = True) -> None:
    """--out: the file or folder the command writes (`help` says which); None when not required and absent."""
    parser.add_argument("--out", required=required, default=None, help=help)


def add_workers(parser: argparse.ArgumentParser, *, help: str = ENVIRONMENT_WORKERS_HELP, default: int | None = None,
                flag: str = "--workers") -> None:
    """--workers (or `flag`, e.g. --eval-workers): a number of processes; the command checks its range."""
    parser.add_argument(flag, type=int, default=default, help=help)


def add_device(parser: argparse.ArgumentParser, *, default: str = "auto", help: str | None = None,
               exact: bool = True) -> None:
    """--device: auto, cpu or cuda, resolved by dqn.devices.resolve_device.

    `help`, if given, says what runs on the device and comes before the common wording.
    exact=False lets a torch device such as cuda:1 through to resolve_device (the evaluation
    commands have always taken one); otherwise argparse refuses anything but DEVICES.
    """
    wording = f"auto, cpu or cuda (default {default}; auto: CUDA when present)"
    parser.add_argument("--device", default=default, choices=DEVICES if exact else None,
                        help=wording if help is None else f"{help}: {wording}")


def add_threads(parser: argparse.ArgumentParser, *, help: str = "torch intra-op threads", default: int | None = 1) -> None:
    """--threads: torch's intra-op threads of the process (or of the runs it starts, as `help` says)."""
    parser.add_argument("--threads", type=int, default=default, help=help)


def add_switch(parser: argparse.ArgumentParser, flag: str, *, help: str) -> None:
    """An auto/on/off choice, default auto (--fast-path, --compile, --channels-last)."""
    parser.add_argument(flag, default="auto", choices=SWITCH, help=help)


# ---------------------------------------------------------------------------- the evaluation CLIs
def check_run_arguments(*, seed: int, episodes: int | None = None, epsilon: float | None = None,
                        workers: int | None = None) -> None:
    """The evaluation CLIs' number arguments, checked before any file is read or folder made."""
    if episodes is not None and episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    if epsilon is not None and not 0.0 <= epsilon <= 1.0:  # NaN fails too
        raise UserError(f"--epsilon must lie in [0, 1], got {epsilon}")
    if seed < 0:
        raise UserError(f"--seed must be 0 or more, got {seed}")
    if workers is not None and workers < 0:
        raise UserError(f"--workers must be 0 or more (0 or 1: in this process), got {workers}")


def check_out_file(out: str | os.PathLike) -> Path:
    """The --out file, checked without creating anything: it must not be a folder."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name such as episodes.parquet")
    return out


def check_out_path(out: str | os.PathLike, *, created: list[Path] | None = None) -> Path:
    """The --out file, after checking that its folder can be written (before any work).

    Creates the folder if needed; the folders created are appended to `created` (see
    dqn.fileio.removed_if_failed), so a later failure can remove them again.
    """
    from dqn.fileio import check_output_dir

    out = check_out_file(out)
    check_output_dir(out.parent, created=created)
    return out


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
