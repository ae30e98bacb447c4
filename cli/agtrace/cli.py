"""Entry point of the `agtrace` command: the app plus every command module.

Command modules live in `agtrace.commands` and are imported here, which
registers them on the app. `main()` is the console script.
"""

from __future__ import annotations

import importlib
import sys
import pkgutil

from agtrace import commands
from agtrace.app import app


def _register_commands() -> None:
    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        if not mod.startswith("_") and mod != "common":
            importlib.import_module(f"agtrace.commands.{mod}")


_register_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own error boundary (start-up, argument parsing).
        sys.stderr.write("interrupted\n")
        sys.exit(130)


__all__ = ["app", "main"]
