"""Options and helpers every command shares: the store, -i files, messages.

One definition of `--db`, `-i/--input` and `--format` keeps the commands
consistent; `open_for_analysis` is the one place that decides whether a
command reads the persistent store or loads files into a throw-away one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional


import typer

from agtrace.render.output import OutputFormat

DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", help="Store file. Default: $AGTRACE_DB, else ./agtrace.duckdb.", show_default=False),
]
InputOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "-i", "--input",
        help="Analyse these trace files (or directories, globs, - for stdin) directly, without loading them into the store. Repeatable.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format. Tables are plain text when piped.", case_sensitive=False),
]


def err(message: str) -> None:
    """A message for the user: stderr, never stdout (stdout is data)."""
    typer.echo(message, err=True)


def open_for_analysis(db: Path | None, inputs: list[str] | None):
    """The store a read-only command works on: -i files, else the persistent store."""
    from agtrace.store import Store

    if inputs:
        from agtrace.ingest import load_paths

        store = Store.memory()
        stdin_data = sys.stdin.buffer.read() if "-" in inputs else None
        report = load_paths(store, list(inputs), stdin_data=stdin_data)
        report_problems(report)
        return store
    return Store.open(db, read_only=True, on_wait=err)


def report_problems(report, limit: int = 10) -> None:
    """Bad records and warnings of a load, on stderr, at most `limit` of each."""
    shown = 0
    for f in report.files:
        for line, reason in f.bad:
            if shown < limit:
                err(f"warning: {f.path}:{line if line is not None else '-'}: skipped: {reason}")
            shown += 1
    total = sum(f.bad_records for f in report.files)
    if total > min(shown, limit):
        err(f"warning: ... and {total - min(shown, limit)} more skipped records")
    shown_w = 0
    for f in report.files:
        for line, reason in f.warning_list:
            if shown_w < limit:
                err(f"warning: {f.path}:{line if line is not None else '-'}: {reason}")
            shown_w += 1
    total_w = sum(f.warnings for f in report.files)
    if total_w > min(shown_w, limit):
        err(f"warning: ... and {total_w - min(shown_w, limit)} more warnings")
