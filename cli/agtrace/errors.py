"""One exception hierarchy and the exit-code contract.

Core modules raise these; the CLI turns them into a message on stderr and the
matching exit code. Nothing below the CLI prints or exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a check rule or a --fail-if-* condition tripped
    USAGE = 2  # bad usage or bad input (expression, file, trace id, store)
    INTERRUPTED = 130  # Ctrl-C


class AgtraceError(Exception):
    """Base of every error a user can cause; carries its exit code and a hint."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AgtraceError):
    """Bad flags, values or arguments."""


class InputError(AgtraceError):
    """An input file cannot be read as traces (unknown format, unreadable, strict mode)."""


class StoreError(AgtraceError):
    """The store is missing, busy, of another schema version, or not an agtrace store."""


class NotFoundError(AgtraceError):
    """A trace or span id (or prefix) that matches nothing, or several things."""


class ExpressionError(AgtraceError):
    """A filter expression that does not parse or compile.

    `column` is 1-based; `render()` gives the caret display the CLI prints.
    """

    def __init__(self, message: str, expression: str, column: int, hint: str | None = None):
        super().__init__(message, hint)
        self.expression = expression
        self.column = column

    def render(self) -> str:
        line = self.expression.replace("\n", " ").replace("\t", " ")
        caret = " " * (max(self.column, 1) - 1) + "^"
        return f"error: {self.message} at column {self.column}\n  {line}\n  {caret}"
