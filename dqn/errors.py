"""One-line errors for users: what is wrong and how to fix it, then a non-zero exit."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import Callable, Sequence

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input that the user can fix: the message is shown as one line, without a traceback."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its usage errors as one-line UserErrors (exit code 2, like every other)."""

    def error(self, message: str) -> None:
        raise UserError(f"{message}; see {self.prog} --help")


def cli_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run an entry point, turning `UserError` into `error: <message>` on stderr and exit code 2."""
    # The exit happens outside the except blocks, after a collection: an error's traceback (and
    # the reference cycles of chained exceptions) would keep the entry point's frames (an open
    # emulator, a learner) alive until interpreter shutdown, whose unordered teardown then prints
    # native-extension warnings after the one-line error.
    try:
        code = main(argv)
    except UserError as exc:
        message, code = f"error: {exc}", EXIT_USER_ERROR
    except KeyboardInterrupt:
        message, code = "interrupted", 130
    else:
        message = None
    if message is not None:
        gc.collect()
        print(message, file=sys.stderr)
    sys.exit(code or 0)
