"""Entry point of the `agtrace` command: the app plus its command modules.

Each command lives in its own module under `agtrace.commands`, which registers
it on the app when imported. `main()` (the console script) imports only the
command being run: building the other eight (their imports, and Typer turning
their signatures into Click parameters) would add about 0.1 s to every run,
and several commands have a 0.5 s whole-process budget. `agtrace --help`, no
command, or an unknown one registers them all, so the command list and the
"did you mean" suggestions stay complete. Importing `app` from here (tests,
embedding) also registers every command.
"""

from __future__ import annotations

import importlib
import os
import sys

from agtrace.app import COMMAND_ORDER

_registered: set[str] = set()


def register_commands(names: list[str] | None = None) -> None:
    """Import the modules of `names` (all commands when None), once each."""
    for name in COMMAND_ORDER if names is None else names:
        if name not in _registered:
            importlib.import_module(f"agtrace.commands.{name.replace('-', '_')}")
            _registered.add(name)


def invoked_command(argv: list[str]) -> str | None:
    """The command `argv` (without the program name) runs, if it names one
    before any root option; else None (root --help/--version, no command, a
    typo): then every command is registered."""
    for arg in argv:
        if arg.startswith("-"):
            return None
        return arg if arg in COMMAND_ORDER else None
    return None


# Commands that only read the store: when one of them is done there is
# nothing left to write or wait for (see `_fast_exit`).
READ_ONLY_COMMANDS = frozenset(COMMAND_ORDER) - {"load"}


def fast_exit_allowed(argv: list[str], command: str | None) -> bool:
    """A read-only command on a store, without -i files (reading files can
    start a worker pool, whose shutdown must run)."""
    if command not in READ_ONLY_COMMANDS:
        return False
    return not any(a in ("-i", "--input") or a.startswith(("--input=", "-i")) for a in argv)


def _fast_exit(code: int) -> None:
    """Flush the output and leave without the interpreter's teardown.

    Tearing down ~180 modules and DuckDB's engine takes about 80 ms after a
    read-only command has written its last byte: a sixth of the 0.5 s budget
    of `query`, `stats` and `show`. Nothing is lost by skipping it: the
    command's store connection is closed when the command returns, a
    read-only store has nothing to write, and agtrace registers no exit
    handlers. (mypy leaves the same way, for the same reason.)
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            pass  # the reader went away (`| head`): not an error, as in AgtraceGroup
        except (OSError, ValueError):
            code = code or 120  # what CPython exits with when the final flush fails
    os._exit(code)


def main() -> None:
    argv = sys.argv[1:]
    try:
        command = invoked_command(argv)
        register_commands([command] if command else None)
        from agtrace.app import app

        app()
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own error boundary (start-up, argument parsing).
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except SystemExit as exc:
        if isinstance(exc.code, int | None) and fast_exit_allowed(argv, command):
            _fast_exit(exc.code or 0)
        raise


def __getattr__(name: str):
    # `from agtrace.cli import app` gets the app with every command on it.
    if name == "app":
        register_commands()
        from agtrace.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main", "register_commands", "invoked_command"]
