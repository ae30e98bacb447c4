"""`agtrace query`: the spans matching a filter expression, as a table or data."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.errors import ExitCode, UsageError
from agtrace.render.output import TIME_COLUMNS, OutputFormat, cell_text, write_rows
from agtrace.timeutil import table_time

TABLE_LIMIT = 50


@app.command(
    "query",
    help=(
        "Find the spans matching a filter expression, across all loaded traces.\n\n"
        "The language: comparisons = != > >= < <=, regex =~ !~, contains, startswith, endswith, "
        "in (...), not in (...), exists(field); and / or / not (also && || !); parentheses. "
        "Fields: intrinsics (name, trace_id, span_id, parent_span_id, service, kind, status, "
        "status_message, duration, duration_ms, start/timestamp, end, agent, type, depth, is_root, "
        "model, input_tokens, output_tokens, session), trace.* (trace.duration_ms, trace.root_name, "
        "trace.span_count, trace.error_count, ...), any attribute by its key (span.x, resource.x, "
        "span.\"odd key\"), parent.<field>, and has_parent(...), has_child(...), has_ancestor(...), "
        "has_descendant(...). Values: \"strings\", numbers (they match int, double and numeric-string "
        "attributes), true/false, durations (250ms, 2.5s), ISO-8601 times, error/ok/unset. "
        "An empty expression matches every span.\n\n"
        "Tables are limited to 50 rows unless --limit says otherwise (a note on stderr tells how many "
        "more matched); json, jsonl, csv and tsv print every match. --format jsonl output loads back "
        "with `agtrace load`.\n\n"
        "CI: --fail-if-any exits 1 when something matched, --fail-if-none when nothing did.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace query 'duration_ms > 5000'\n"
        "  agtrace query 'decision_type = \"escalate_to_human\" and decision_confidence < 0.8'\n"
        "  agtrace query 'status = error and has_ancestor(name = \"triage_agent.invoke\")' --fail-if-any\n"
        "  agtrace query 'type = \"llm\"' -c agent -c model -c input_tokens --sort -input_tokens"
    ),
)
def query_cmd(
    expression: Annotated[str, typer.Argument(help="Filter expression (quote it for the shell).", show_default=False)] = "",
    db: DbOption = None,
    inputs: InputOption = None,
    fmt: FormatOption = OutputFormat.table,
    columns: Annotated[Optional[list[str]], typer.Option("--columns", "-c", help="Columns to show: intrinsics or attribute keys (repeatable, or comma-separated).", show_default=False)] = None,
    sort: Annotated[Optional[list[str]], typer.Option("--sort", "-s", help="Sort by a field; prefix with - for descending (repeatable). Default: start time.", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=0, help="At most this many rows (default 50 in a table, all otherwise; 0: no limit).", show_default=False)] = None,
    count: Annotated[bool, typer.Option("--count", help="Print only the number of matching spans.")] = False,
    traces: Annotated[bool, typer.Option("--traces", help="List the traces that have a matching span instead of the spans.")] = False,
    fail_if_any: Annotated[bool, typer.Option("--fail-if-any", help="Exit 1 if any span matched (a CI gate).")] = False,
    fail_if_none: Annotated[bool, typer.Option("--fail-if-none", help="Exit 1 if no span matched.")] = False,
    where: Annotated[Optional[str], typer.Option("--where", "-w", help="The filter expression, as an option (same as the argument, as in the other commands).", show_default=False)] = None,
) -> None:
    from agtrace.analysis.spanquery import TABLE_COLUMNS, count_spans, select_spans
    from agtrace.query import compile_filter

    if where is not None:
        if expression:
            raise UsageError("give the expression either as the argument or with --where, not both")
        expression = where
    if fail_if_any and fail_if_none:
        raise UsageError("--fail-if-any and --fail-if-none contradict each other; give one")
    compile_filter(expression)  # a bad expression fails before any file is read
    no_limit = limit == 0  # 0 means no limit, in every command
    if no_limit:
        limit = None
    cols = [c.strip() for group in (columns or []) for c in group.split(",") if c.strip()] or None
    if traces and cols:
        raise UsageError("-c/--columns picks span columns; --traces lists traces with fixed columns",
                         hint="drop -c, or drop --traces to see the spans")
    trace_sort = None
    if traces and sort:
        from agtrace.analysis.tracelist import SORTS

        if len(sort) > 1 or sort[0].lstrip("-") not in SORTS:
            raise UsageError(f"with --traces, --sort takes one of {', '.join(SORTS)} (prefix - to reverse)")
        trace_sort = sort[0]
    for name in (cols or []) + [k.lstrip("-") for k in (sort or []) if not traces]:
        from agtrace.query import parse_field

        parse_field(name)  # a bad column or sort name is an error, not an empty column
    store = open_for_analysis(db, inputs)
    con = store.con
    _warn_unknown_attributes(con, (cols or []) + [k.lstrip("-") for k in (sort or []) if not traces])
    total = count_spans(con, expression)
    if traces:
        from agtrace.analysis.tracelist import COLUMNS, list_traces

        flt = compile_filter(expression)
        lim = limit if limit is not None or no_limit else (TABLE_LIMIT if fmt == OutputFormat.table else None)
        if count:
            lim = 0
        key = (trace_sort or "start").lstrip("-")
        # As for spans, a leading - means descending (the trace list's own
        # defaults put the largest durations, errors and span counts first).
        descending = bool(trace_sort and trace_sort.startswith("-"))
        reverse = descending != (key in ("duration", "errors", "spans"))
        rows, ntraces = list_traces(con, where_sql=flt.sql, params=flt.params, limit=lim, sort=key,
                                    reverse=reverse)
        total = ntraces
    if count:
        sys.stdout.write(f"{total}\n")
    elif traces:
        write_rows(rows, COLUMNS, fmt, align_right=("duration_ms", "span_count", "error_count"),
                   headers={"span_count": "spans", "error_count": "errors"})
        if fmt == OutputFormat.table and ntraces > len(rows):
            err(f"({ntraces - len(rows)} more matching traces; use --limit or --format to see all)")
    else:
        lim = limit if limit is not None or no_limit else (TABLE_LIMIT if fmt == OutputFormat.table else None)
        if fmt == OutputFormat.table and not cols:
            rows, _ = select_spans(con, expression, columns=TABLE_COLUMNS, sort=sort or [], limit=lim)
            names = TABLE_COLUMNS
        else:
            rows, names = select_spans(con, expression, columns=cols, sort=sort or [], limit=lim)
        write_rows(rows, names, fmt, align_right=("duration_ms",), cell=_cell)
        if fmt == OutputFormat.table:
            if total > len(rows):
                err(f"({total - len(rows)} more matching span{'s' if total - len(rows) != 1 else ''}; use --limit or --format to see all)")
            elif total == 0:
                err("no spans match")
    if fail_if_any and total > 0:
        what = "trace" if traces else "span"
        err(f"--fail-if-any: {total} {what}{'s' if total != 1 else ''} matched")
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
    if fail_if_none and total == 0:
        err(f"--fail-if-none: no {'trace' if traces else 'span'} matched")
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _cell(column: str, value) -> str:
    if column in TIME_COLUMNS:
        return cell_text(table_time(value))
    return cell_text(value)


def _warn_unknown_attributes(con, names: list[str]) -> None:
    """A column or sort key naming an attribute no span has is most likely a typo."""
    from agtrace.query import field_info

    for name in names:
        info = field_info(name)
        if info.kind != "attribute":
            continue
        key = info.field.name
        hit = con.execute(
            "SELECT EXISTS (SELECT 1 FROM attrs WHERE key = ?) OR EXISTS (SELECT 1 FROM resource_attrs WHERE key = ?)",
            [key, key]).fetchall()[0][0]
        if not hit:
            err(f"warning: no span or resource has an attribute {key!r}; its column will be empty")
