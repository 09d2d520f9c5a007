"""Errors that end a command with one clear line instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, missing prerequisite). Exit code 1 by default."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UserError):
    """Bad arguments or configuration: exit code 2, like argparse."""

    exit_code = 2
