"""`agtrace traces`: one line per loaded trace."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.render.output import OutputFormat, write_rows


class TraceSort(str, Enum):
    start = "start"
    duration = "duration"
    errors = "errors"
    spans = "spans"
    name = "name"


@app.command(
    "traces",
    help=(
        "List traces: id, root span, start, duration, span and error counts, agents.\n\n"
        "Sorted by start time (oldest first) by default; --sort duration and --sort errors put the "
        "largest first; --reverse flips any order. --where keeps the traces with at least one span "
        "matching a filter expression (the language of `agtrace query`).\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace traces --sort duration --limit 5\n"
        "  agtrace traces --where 'status = error' --format json"
    ),
)
def traces_cmd(
    db: DbOption = None,
    inputs: InputOption = None,
    where: Annotated[Optional[str], typer.Option("--where", "-w", help="Only traces with a span matching this filter expression.")] = None,
    sort: Annotated[TraceSort, typer.Option("--sort", "-s", help="Order of the rows.")] = TraceSort.start,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Reverse the order.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=0, help="At most this many rows (default: 50 in a table, all otherwise; 0: no limit).", show_default=False)] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    from agtrace.analysis.tracelist import COLUMNS, list_traces

    where_sql, params = None, []
    store = open_for_analysis(db, inputs)
    if where:
        from agtrace.query import compile_filter

        flt = compile_filter(where)
        where_sql, params = flt.sql, flt.params
    if limit == 0:  # 0 means no limit, in every command
        limit = None
    elif limit is None and fmt == OutputFormat.table:
        limit = 50
    rows, total = list_traces(store.con, where_sql=where_sql, params=params, sort=sort.value, reverse=reverse, limit=limit)
    write_rows(rows, COLUMNS, fmt, align_right=("duration_ms", "span_count", "error_count"),
               headers={"span_count": "spans", "error_count": "errors"})
    if fmt == OutputFormat.table and total > len(rows):
        err(f"({total - len(rows)} more trace{'s' if total - len(rows) != 1 else ''}; use --limit or --format to see all)")
    if not rows and total == 0:
        err("no traces" + (" match" if where else " in the store"))
