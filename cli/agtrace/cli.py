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


def main() -> None:
    try:
        command = invoked_command(sys.argv[1:])
        register_commands([command] if command else None)
        from agtrace.app import app

        app()
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own error boundary (start-up, argument parsing).
        sys.stderr.write("interrupted\n")
        sys.exit(130)


def __getattr__(name: str):
    # `from agtrace.cli import app` gets the app with every command on it.
    if name == "app":
        register_commands()
        from agtrace.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main", "register_commands", "invoked_command"]
