"""`python -m dqn.status` is now `python -m analysis.status`: it places each run against the
same-protocol reference (baselines/), which the agent library does not import. This module only
says so, in one line, to a user of the old command."""

from __future__ import annotations

import sys
from typing import Sequence

from dqn.errors import UserError, cli_main


def main(argv: Sequence[str] | None = None) -> int:
    args = " ".join(sys.argv[1:] if argv is None else argv)
    raise UserError(f"python -m dqn.status is now python -m analysis.status; run: python -m analysis.status {args}".rstrip())


if __name__ == "__main__":
    cli_main(main)
