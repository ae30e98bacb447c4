"""`agtrace stats`: grouped distributions of spans and traces, streaks, timelines.

Only flag parsing and rendering live here; the figures come from
`agtrace.analysis.stats`, which builds the SQL.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.errors import UsageError
from agtrace.render.output import TIME_COLUMNS, OutputFormat, cell_text, color_allowed, write_rows
from agtrace.timeutil import table_time

HEADERS = {"error_count": "errors", "avg_confidence": "avg_conf", "min_confidence": "min_conf"}
PERCENT_COLUMNS = ("share", "rate", "error_rate")
BAR_WIDTH = 10
_BLOCKS = " ▏▎▍▌▋▊▉█"


def share_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A fixed-width bar of eighth blocks for a fraction in [0, 1]."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_BLOCKS[part] if part else "")).ljust(width)


def _percent(v) -> str:
    return "" if v is None else f"{v * 100:.1f}%"


def _make_cell(keys: list[str], rich: bool):
    def cell(col: str, v) -> str:
        if col in PERCENT_COLUMNS:
            text = _percent(v)
            if rich and col == "share" and v is not None:
                text = f"{share_bar(v)} {text.rjust(6)}"
        elif col in keys and v is None:
            text = "(missing)"
        elif col in TIME_COLUMNS:
            text = cell_text(table_time(v))
        elif col.endswith("_ms") and isinstance(v, (int, float)):
            text = f"{v:.1f}" if abs(v) >= 1 else f"{v:.3f}"
        elif col.endswith("_confidence") and isinstance(v, (int, float)):
            text = f"{v:.3f}"
        else:
            text = cell_text(v)
        return text

    return cell


@app.command(
    "stats",
    help=(
        "Grouped statistics: how often, how long, how confident, per agent, decision or any attribute.\n\n"
        "For each group of spans: count, share of the total, errors, duration avg/p50/p95/p99/max in ms, "
        "the average and minimum confidence (decision_confidence, else confidence) and token sums where "
        "spans carry them. Percentiles interpolate linearly between ranks (DuckDB quantile_cont). "
        "Spans without a --by key are left out (the footer says how many) unless --include-missing. "
        "Without --by, spans are grouped by type.\n\n"
        "--traces groups traces by their root span instead (default: root name) with error rate and, "
        "with --rate EXPR, the share of traces containing a matching span. --streaks gives each agent's "
        "longest run of the same value in time order; --timeline counts per time bucket.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace stats --by decision_type\n"
        "  agtrace stats --by agent --by decision_type --where 'type = \"decision\"'\n"
        "  agtrace stats --by agent --metric gen_ai.usage.input_tokens\n"
        "  agtrace stats --traces --rate 'decision_type = \"escalate_to_human\"'\n"
        "  agtrace stats --streaks --by decision_type\n"
        "  agtrace stats --timeline --by decision_type --every 15m --format csv"
    ),
)
def stats_cmd(
    db: DbOption = None,
    inputs: InputOption = None,
    by: Annotated[Optional[list[str]], typer.Option("--by", "-b", metavar="KEY", help="Group by this field: intrinsic (name, agent, type, service, status, kind, ...) or attribute. Repeatable.", show_default=False)] = None,
    where: Annotated[Optional[str], typer.Option("--where", "-w", metavar="EXPR", help="Only spans matching this filter expression (the language of `agtrace query`); with --traces, traces with such a span.")] = None,
    include_missing: Annotated[bool, typer.Option("--include-missing", help="Add the spans without a --by key as a (missing) group.")] = False,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", metavar="KEY", help="Add sum, avg and p95 of this numeric field (e.g. gen_ai.usage.input_tokens); a field with no numeric value is an error. Repeatable.", show_default=False)] = None,
    traces: Annotated[bool, typer.Option("--traces", help="Aggregate traces (by root span) instead of spans.")] = False,
    rate: Annotated[Optional[str], typer.Option("--rate", metavar="EXPR", help="Add how many spans (with --traces: traces containing a span) of each group match this expression, and their share.")] = None,
    streaks: Annotated[bool, typer.Option("--streaks", help="Each agent's longest run of the same --by value, in time order.")] = False,
    timeline: Annotated[bool, typer.Option("--timeline", help="Counts per time bucket (see --every) and --by group.")] = False,
    every: Annotated[str, typer.Option("--every", metavar="DURATION", help="Bucket width for --timeline (30s, 15m, 1h, 1d); buckets are aligned to the Unix epoch, so 1h buckets start on the hour (UTC).")] = "1h",
    sort: Annotated[Optional[str], typer.Option("--sort", "-s", metavar="COLUMN", help="Order by this column (count, share, errors, avg, p50, p95, p99, max, confidence, key, or any output column). Default: count; streak for --streaks.", show_default=False)] = None,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Reverse the order.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", min=0, help="At most this many rows (default: all; 0: no limit).", show_default=False)] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    from agtrace.analysis import stats as S

    modes = [m for m, on in (("--traces", traces), ("--streaks", streaks), ("--timeline", timeline)) if on]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be combined", hint="run one of them at a time")
    if metric and (traces or streaks or timeline):
        raise UsageError(f"--metric applies to span groups, not {modes[0]}")
    if rate and (streaks or timeline):
        raise UsageError(f"--rate cannot be combined with {modes[0]}")
    if include_missing and streaks:
        raise UsageError("--include-missing cannot be combined with --streaks")
    every_ns = None
    if timeline:
        every_ns = _parse_every(every)
    if streaks and not by:
        raise UsageError("--streaks needs --by KEY", hint="e.g. agtrace stats --streaks --by decision_type")

    from agtrace.query import compile_filter

    where_f = compile_filter(where) if where else None
    rate_f = compile_filter(rate) if rate else None
    keys_in = list(by or [])
    S.check_keys(keys_in)  # report a bad key before loading any -i files
    store = open_for_analysis(db, inputs)
    default_sort = "count"
    for warning in S.check_metrics(store.con, list(metric or [])):
        err(f"warning: {warning}")
    if traces:
        result = S.trace_stats(store.con, keys_in, where=where_f, include_missing=include_missing, rate=rate_f)
    elif streaks:
        result = S.streaks(store.con, keys_in, where=where_f)
        default_sort = "streak"
    elif timeline:
        result = S.timeline(store.con, keys_in or ["type"], every_ns, where=where_f, include_missing=include_missing)
    else:
        result = S.span_stats(store.con, keys_in or ["type"], where=where_f, include_missing=include_missing,
                              metrics=list(metric or []), rate=rate_f)
    S.sort_rows(result, sort, reverse=reverse, default=default_sort)
    total_rows = len(result.rows)
    rows = result.rows if not limit else result.rows[:limit]  # 0 means no limit, in every command
    table = fmt == OutputFormat.table
    rich = table and color_allowed()
    numeric = [c for c in result.columns if c not in result.keys and c not in (
        "bucket", "start", "end", "start_trace_id", "start_span_id", "end_trace_id", "end_span_id")]
    if rich:
        _rich_table(rows, result.columns, numeric, result.keys)
    else:
        if fmt in (OutputFormat.csv, OutputFormat.tsv):
            rows = [_exact_cells(r) for r in rows]
        write_rows(rows, result.columns, fmt, headers=HEADERS if table else None, align_right=numeric,
                   cell=_make_cell(result.keys, False) if table else None)
    if table:
        _footer(result, total_rows, len(rows), bool(where))


# Columns given up first when the terminal is too narrow for all of them.
DROP_ORDER = ("p99_ms", "avg_ms", "min_confidence", "max_ms", "output_tokens", "input_tokens",
              "end_trace_id", "start_trace_id", "error_rate", "p50_ms", "avg_confidence", "error_count")


def _exact_cells(row: dict) -> dict:
    # CSV/TSV carry the same numbers as JSON: floats in their shortest exact
    # form rather than the rounded text of a table cell.
    return {k: repr(v) if isinstance(v, float) else v for k, v in row.items()}


def _rich_table(rows, columns, numeric, keys, console=None) -> None:
    """The terminal table: numbers never wrap, long key values fold.

    When the terminal is too narrow, the least telling columns are dropped
    (and the share bar before them), rather than squeezing every cell.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    columns = list(columns)
    bar = True

    def layout():
        cell = _make_cell(keys, bar)
        texts = [[cell(c, r.get(c)) for c in columns] for r in rows]
        widths = [max([len(HEADERS.get(c, c))] + [len(t[i]) for t in texts]) for i, c in enumerate(columns)]
        mins = [w if c in numeric else min(w, 16) for c, w in zip(columns, widths)]
        return texts, widths, mins

    texts, widths, mins = layout()
    dropped = []
    for victim in ("bar",) + DROP_ORDER:
        if sum(mins) + 3 * (len(columns) - 1) <= console.width:
            break
        if victim == "bar":
            bar = False
        elif victim in columns:
            columns.remove(victim)
            dropped.append(victim)
        else:
            continue
        texts, widths, mins = layout()
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for c, m in zip(columns, mins):
        if c in numeric:
            table.add_column(HEADERS.get(c, c), justify="right", no_wrap=True, min_width=m)
        else:
            table.add_column(HEADERS.get(c, c), overflow="fold", min_width=m)
    for t in texts:
        table.add_row(*(Text(x) for x in t))
    console.print(table)
    if dropped:
        err(f"({', '.join(dropped)} not shown: the terminal is too narrow; use --format to see every column)")


def _parse_every(text: str) -> int:
    from agtrace.timeutil import parse_duration_ns

    t = text.strip().lower()
    ns = None
    if t.endswith("d") and t[:-1].replace(".", "", 1).isdigit():
        ns = parse_duration_ns(t[:-1] + "h")
        ns = ns * 24 if ns is not None else None
    else:
        ns = parse_duration_ns(t)
    if ns is None or ns <= 0:
        raise UsageError(f"--every {text!r} is not a positive duration", hint="e.g. --every 1h, 15m, 30s or 1d")
    return ns


def _footer(result, total_rows: int, shown: int, filtered: bool) -> None:
    """Notes under a table, on stderr (stdout is data)."""
    if total_rows > shown:
        err(f"({total_rows - shown} more row{'s' if total_rows - shown != 1 else ''}; use --limit or --format to see all)")
    if result.missing:
        unit = result.unit if result.missing != 1 else result.unit.rstrip("s")
        keys = " or ".join(result.keys) if result.keys else "the key"
        err(f"({result.missing} {unit} without {keys} left out; --include-missing shows them)")
    if not result.rows and not result.missing:
        err(f"no {result.unit}" + (" match" if filtered else " in the store"))
