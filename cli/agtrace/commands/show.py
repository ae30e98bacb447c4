"""`agtrace show TRACE_ID`: the waterfall of one trace, or its tree as JSON.

Parse flags, resolve the id, fetch one trace, build the tree
(`analysis.tree`), mark the critical path (`analysis.critical_path`) and hand
the rows to a renderer. Imports stay inside the function so that `agtrace
show` on a big store starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from agtrace import background
from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.render.output import OutputFormat

DEFAULT_PIPE_WIDTH = 120

FLAT_COLUMNS = ["span_id", "parent_span_id", "depth", "name", "agent", "type", "start_offset_ms",
                "duration_ms", "status", "status_message", "critical_path"]


def output_width(explicit: int | None) -> int:
    """--width, else the terminal's width, else $COLUMNS, else 120 (pipes, CI logs)."""
    if explicit:
        return explicit
    try:
        if sys.stdout.isatty():
            cols = os.get_terminal_size(sys.stdout.fileno()).columns
            if cols > 0:  # a pseudo-terminal without a size (script, docker -t) says 0
                return cols
    except (AttributeError, ValueError, OSError):
        pass
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    return DEFAULT_PIPE_WIDTH


# From this many spans the critical path is computed in a forked child: below
# it the fork (about 10 ms) costs more than it saves.
BACKGROUND_MIN_SPANS = 5_000


def critical_spans(spans, trace_id: str) -> tuple[set[str] | None, list[str]]:
    """Span ids on the critical path (of every root), and notes on what failed.

    None when the critical-path module is not available.
    """
    try:
        from agtrace.analysis.critical_path import TraceColumns, analyze_columns
    except ImportError:
        return None, []
    try:
        # Columns straight from the rows: a 50,000-span trace is 0.1 s faster
        # than analyze_trace's per-record attribute lookups.
        cols = TraceColumns(
            [s.span_id for s in spans], [s.parent_span_id for s in spans],
            [s.start_ns for s in spans], [s.end_ns for s in spans],
            kinds=[s.kind for s in spans], names=[s.name for s in spans], agents=[s.agent for s in spans],
            types=[s.type for s in spans], attributes=[s.attributes for s in spans])
        cols.normalise()
        result = analyze_columns(cols, trace_id, with_fanouts=False)
    except Exception as exc:  # the view must render even if the analysis fails
        return set(), [f"critical path not computed: {type(exc).__name__}: {exc}"]
    marked: set[str] = set()
    for rp in ([result.primary] if result.primary is not None else []) + list(result.other_roots):
        marked.update(s.span_id for s in rp.spans)
    notes = []
    if result.primary is None and spans:
        notes.append("critical path not computed: " + ("; ".join(result.problems) or "no usable root"))
    return marked, notes


@app.command(
    "show",
    help=(
        "Show one trace as a waterfall: the span tree with a timeline bar per span.\n\n"
        "Rows are indented by parent, with a type glyph, key facts (decision and confidence, tool and "
        "result count, model and tokens, agent and version), the duration and a bar to scale, so "
        "parallel branches overlap and waits show as gaps. Errors are marked ✗ with their message "
        "and exception events; spans on the critical path are marked *.\n\n"
        "TRACE_ID may be a unique prefix. Spans whose parent is missing hang under a placeholder; "
        "parent cycles are reported and broken. --format json prints the nested tree.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace show 592ff49b\n"
        "  agtrace show 592ff49b --span a5068b34 --attrs\n"
        "  agtrace show 592ff49b --depth 1 --collapse-over 20 --width 160\n"
        "  agtrace show 592ff49b --format json | jq '.root.children[].name'"
    ),
)
def show_cmd(
    trace_id: Annotated[str, typer.Argument(help="Trace id or a unique prefix of one (see `agtrace traces`).", show_default=False)],
    db: DbOption = None,
    inputs: InputOption = None,
    attrs: Annotated[bool, typer.Option("--attrs", "-a", help="Print every attribute, event and link under each span (values whole).")] = False,
    depth: Annotated[Optional[int], typer.Option("--depth", "-d", min=0, help="Show this many levels below the top (0: the roots only).", show_default=False)] = None,
    span: Annotated[Optional[str], typer.Option("--span", help="Only this span's subtree (id or prefix), under its ancestors, timeline zoomed to it.", show_default=False)] = None,
    width: Annotated[Optional[int], typer.Option("--width", "-W", min=40, help="Output width in columns (default: the terminal's, else $COLUMNS, else 120).", show_default=False)] = None,
    critical: Annotated[bool, typer.Option("--critical/--no-critical", help="Mark the spans on the critical path with *.")] = True,
    collapse_over: Annotated[Optional[int], typer.Option("--collapse-over", min=1, help="Summarise more than N same-name siblings in one row (count, duration range).", show_default=False)] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    import gc

    from agtrace.analysis.tree import build_tree
    from agtrace.lookup import resolve_span_id, resolve_trace_id
    from agtrace.trace_fetch import fetch_trace

    store = open_for_analysis(db, inputs)
    tid = resolve_trace_id(store.con, trace_id)
    span_id = resolve_span_id(store.con, tid, span) if span else None
    # Fetching, building and rendering make hundreds of thousands of small
    # objects and no garbage: the collector would only re-scan them (it made
    # a 50,000-span trace up to 2x slower).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        data = fetch_trace(store.con, tid)
        # The critical path of a big trace is computed on the second core
        # while the display tree is built and flattened (agtrace.background).
        critical_result = (background.start(critical_spans, data.spans, tid,
                                            fork=len(data.spans) >= BACKGROUND_MIN_SPANS)
                           if critical else None)
        rows, out_width = None, output_width(width)
        try:
            tree = build_tree(data.spans)
            focus = tree.find(span_id) if span_id else None
            if fmt == OutputFormat.table:
                rows = _display_rows(tree, focus=focus, depth=depth, collapse_over=collapse_over,
                                     width=out_width)
        except BaseException:  # an error or Ctrl-C: the child is stopped, not waited for
            if critical_result is not None:
                critical_result.cancel()
            raise
        marked, notes = critical_result() if critical_result is not None else (None, [])
        if fmt == OutputFormat.table:
            _print_waterfall(tree, rows, tid, focus=focus, width=out_width, marked=marked, notes=notes,
                             attrs=attrs)
        elif fmt == OutputFormat.json:
            from agtrace.render.trace_json import write_document

            extra = None
            if focus is not None:
                from agtrace.analysis.tree import ancestors

                extra = {"span": span_id,
                         "ancestors": [{"span_id": a.span_id, "name": a.name} for a in ancestors(focus)]}
            write_document(sys.stdout, tree, tid, tops=[focus] if focus is not None else None,
                           critical=marked, max_depth=depth, extra=extra, problems=notes)
        else:
            _write_flat(tree, fmt, focus=focus, depth=depth, marked=marked)
    finally:
        if was_enabled:
            gc.enable()
    for note in notes:
        err(f"warning: {note}")


def _display_rows(tree, *, focus, depth, collapse_over, width):
    """The waterfall's rows: the tree flattened with the guides that fit the width."""
    from agtrace.analysis.tree import flatten
    from agtrace.render.waterfall import MARK_WIDTH

    max_guides = max(2, (int((width - MARK_WIDTH - 11) * 0.55) - 16) // 3)
    return flatten(tree, focus=focus, max_depth=depth, collapse_over=collapse_over, max_guides=max_guides)


def _print_waterfall(tree, rows, tid, *, focus, width, marked, notes, attrs) -> None:
    from agtrace.render.output import color_allowed
    from agtrace.render.waterfall import Waterfall

    view = Waterfall(tree, rows, trace_id=tid, width=width, critical=marked, show_attrs=attrs,
                     focus=focus, notes=notes)
    if color_allowed(sys.stdout) and os.environ.get("TERM") != "dumb":
        sys.stdout.write(view.ansi())
    else:
        sys.stdout.write(view.plain())


def _write_flat(tree, fmt, *, focus, depth, marked) -> None:
    """jsonl / csv / tsv: one row per span in tree order, with its depth."""
    from agtrace.render.output import write_rows

    origin = tree.origin_ns or 0
    tops = [focus] if focus is not None else tree.roots
    base = focus.depth if focus is not None else 0
    rows = []
    for n in tree.walk(tops):
        if n.span is None:
            continue
        d = n.depth - base
        if depth is not None and d > depth:
            continue
        s = n.span
        rows.append({
            "span_id": s.span_id, "parent_span_id": s.parent_span_id, "depth": d, "name": s.name,
            "agent": s.agent, "type": s.type,
            "start_offset_ms": round((n.start_ns - origin) / 1e6, 3) if n.start_ns is not None else None,
            "duration_ms": round(n.duration_ns / 1e6, 3) if n.duration_ns is not None else None,
            "status": s.status, "status_message": s.status_message,
            "critical_path": (s.span_id in marked) if marked is not None else None,
        })
    write_rows(rows, FLAT_COLUMNS, fmt)
