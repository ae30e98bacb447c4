"""Writers shared by every command: rows -> table | json | jsonl | csv | tsv.

Rows are dicts; `columns` fixes the order. Machine formats keep numbers as
numbers and write nothing but data; the table is a rich table on a terminal
and plain aligned text (no ANSI codes) when piped or when NO_COLOR is set.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import Enum

import orjson

from agtrace.timeutil import table_time


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"


def _json_default(o):
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def dumps(obj, *, pretty: bool = False) -> str:
    opt = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if pretty:
        opt |= orjson.OPT_INDENT_2
    return orjson.dumps(obj, default=_json_default, option=opt).decode()


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def color_allowed(stream=None) -> bool:
    return is_terminal(stream) and not os.environ.get("NO_COLOR")


def cell_text(v) -> str:
    """How a value reads in a table or CSV cell."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        # One rule everywhere: at most three decimals, no trailing zeros.
        if math.isnan(v) or math.isinf(v):
            return str(v)
        text = f"{v:.3f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(v, (list, tuple)):
        return ",".join(cell_text(x) for x in v)
    if isinstance(v, dict):
        return dumps(v)
    return str(v)


def data_text(v) -> str:
    """A CSV/TSV cell: like a table cell, but numbers keep their full precision."""
    if isinstance(v, float) and not (math.isnan(v) or math.isinf(v)):
        return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)
    return cell_text(v)


# Columns holding timestamps: data formats keep them as written (nanoseconds),
# tables show them to the millisecond (agtrace.timeutil, one rule everywhere).
TIME_COLUMNS = frozenset({"start", "end", "bucket", "time"})

NO_WRAP = {"trace_id", "span_id", "parent_span_id", "root_span_id", "start", "end", "duration_ms",
           "span_count", "error_count", "status"}


def write_rows(
    rows: Sequence[dict],
    columns: Sequence[str],
    fmt: OutputFormat,
    out=None,
    *,
    headers: dict[str, str] | None = None,
    align_right: Iterable[str] = (),
    cell: Callable[[str, object], str] | None = None,
    title: str | None = None,
) -> None:
    """Write rows in the chosen format to `out` (stdout by default)."""
    out = out or sys.stdout
    if fmt == OutputFormat.json:
        out.write(dumps([{c: r.get(c) for c in columns} for r in rows], pretty=True) + "\n")
        return
    if fmt == OutputFormat.jsonl:
        for r in rows:
            out.write(dumps({c: r.get(c) for c in columns}) + "\n")
        return
    if fmt in (OutputFormat.csv, OutputFormat.tsv):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="," if fmt == OutputFormat.csv else "\t", lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([data_text(r.get(c)) for c in columns])
        out.write(buf.getvalue())
        return
    render = cell or (lambda c, v: cell_text(table_time(v) if c in TIME_COLUMNS else v))
    heads = [(headers or {}).get(c, c) for c in columns]
    texts = [[render(c, r.get(c)) for c in columns] for r in rows]
    right = set(align_right)
    if color_allowed(out):
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
        for c, h in zip(columns, heads):
            # Ids and times must stay copyable: never wrapped; free text gives way.
            keep = c in NO_WRAP
            table.add_column(h, justify="right" if c in right else "left",
                             overflow="fold" if not keep else "ellipsis", no_wrap=keep)
        from rich.text import Text

        for t in texts:
            table.add_row(*(Text(x) for x in t))  # values are data, never rich markup
        Console(file=out).print(table)
        return
    write_plain_table(heads, texts, out, right=[c in right for c in columns], title=title)


def write_plain_table(heads, texts, out, *, right=None, title=None) -> None:
    """Aligned plain-text columns, two spaces apart, no trailing blanks."""
    right = right or [False] * len(heads)
    widths = [len(h) for h in heads]
    for t in texts:
        for i, v in enumerate(t):
            widths[i] = max(widths[i], len(v))
    if title:
        out.write(title + "\n")

    def line(vals):
        parts = [v.rjust(widths[i]) if right[i] else v.ljust(widths[i]) for i, v in enumerate(vals)]
        return "  ".join(parts).rstrip() + "\n"

    out.write(line(heads))
    for t in texts:
        out.write(line(t))
