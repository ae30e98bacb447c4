"""`agtrace critical-path TRACE_ID`: the chain of work that set one trace's duration.

Parse flags, resolve the id, fetch the trace as columns, run the analysis
(`analysis.critical_path`) and hand the result to the view
(`render.critical_view`) or write it as JSON. The what-if options and their
parsing live here too, shared with `agtrace bottlenecks`. Imports of the
analysis stay inside the functions so that `--help` starts fast.
"""

from __future__ import annotations

import math
import sys
from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.errors import UsageError
from agtrace.render.output import OutputFormat


ASYNC_CHOICES = ("truncate", "exclude")

AsyncOption = Annotated[
    str,
    typer.Option(
        "--async",
        metavar="[truncate|exclude]",
        help="Children that end after their parent (fire-and-forget work): 'truncate' clips them to the "
             "parent's end, so they can cover its tail; 'exclude' leaves them and their subtree off the path. "
             "Overruns up to 1 ms count as clock skew and are clipped either way.",
    ),
]


def check_async(value: str) -> str:
    v = value.strip().lower()
    if v not in ASYNC_CHOICES:
        raise UsageError(f"unknown --async mode {value!r}", hint="use one of: " + ", ".join(ASYNC_CHOICES))
    return v


def check_min(option: str, value: int | None, least: int) -> None:
    if value is not None and value < least:
        raise UsageError(f"{option} must be at least {least}, not {value}")


WhatIfOption = Annotated[
    Optional[str],
    typer.Option("--what-if", metavar="EXPR",
                 help="Re-time with the spans matching this filter expression changed by --speedup or --delta.",
                 show_default=False),
]
SpeedupOption = Annotated[
    Optional[str],
    typer.Option("--speedup", metavar="FACTOR",
                 help="With --what-if: the matching spans run FACTOR times faster (2 or 2x halves them; "
                      "0.5 doubles them).", show_default=False),
]
DeltaOption = Annotated[
    Optional[str],
    typer.Option("--delta", metavar="DURATION",
                 help="With --what-if: the matching spans take this much longer, or shorter with a minus "
                      "sign (-1500ms, -1.5s, 200ms; units ns us ms s m h).", show_default=False),
]
OwnTimeOption = Annotated[
    bool,
    typer.Option("--own-time",
                 help="With --what-if: change only the matching spans' own time (not covered by their "
                      "children); by default a matching span changes as a whole, everything below it "
                      "included."),
]


def parse_speedup(text: str) -> float:
    """`2`, `2x`, `1.5X` -> 2.0, 2.0, 1.5; UsageError for anything else or <= 0."""
    t = text.strip().lower()
    if t.endswith("x"):
        t = t[:-1].strip()
    try:
        value = float(t)
    except ValueError:
        raise UsageError(f"--speedup {text!r} is not a number", hint="e.g. --speedup 2 (twice as fast)") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"--speedup must be a number greater than 0, not {text!r}",
                         hint="2 halves the matching spans' time; 0.5 doubles it")
    return value


def parse_delta(text: str) -> int:
    """`-1500ms`, `+2s`, `250us` -> nanoseconds; UsageError without a unit."""
    from agtrace.timeutil import parse_duration_ns

    t = text.strip()
    ns = parse_duration_ns(t[1:] if t.startswith("+") else t)
    if ns is None:
        raise UsageError(f"--delta {text!r} is not a duration",
                         hint="give a number with a unit and an optional sign: -1500ms, -1.5s, +200ms "
                              "(units: ns us ms s m h)")
    return ns


def what_if_plan(expr: str | None, speedup: str | None, delta: str | None, own_time: bool):
    """The checked what-if options: (filter, speedup, delta_ns, scope, label), or None without --what-if."""
    if expr is None:
        if speedup is not None or delta is not None or own_time:
            used = "--speedup" if speedup is not None else "--delta" if delta is not None else "--own-time"
            raise UsageError(f"{used} needs --what-if", hint="e.g. --what-if 'type = \"llm\"' --speedup 2")
        return None
    if (speedup is None) == (delta is None):
        raise UsageError("--what-if needs exactly one of --speedup and --delta",
                         hint="e.g. --what-if 'type = \"llm\"' --speedup 2, or --delta -1500ms")
    from agtrace.query import compile_filter

    flt = compile_filter(expr)
    if flt.is_trivial:
        raise UsageError("--what-if needs a filter selecting the spans to change",
                         hint="e.g. --what-if 'name = \"customer_sentiment_agent.invoke\"'")
    sp = parse_speedup(speedup) if speedup is not None else None
    dn = parse_delta(delta) if delta is not None else None
    scope = "own" if own_time else "subtree"
    return flt, sp, dn, scope, describe(expr, sp, dn, scope)


def describe(expr: str, speedup: float | None, delta_ns: int | None, scope: str) -> str:
    """One line saying what the what-if changed, for the views."""
    from agtrace.render.waterfall import clean, format_duration

    own = scope == "own"
    if speedup is not None:
        how = f"ran {speedup:g}x faster" if speedup >= 1 else f"ran {1 / speedup:g}x slower"
        how += " in their own time" if own else ""
    else:
        more = "less" if delta_ns < 0 else "more"
        how = f"took {format_duration(abs(delta_ns))} {more}" + (" of their own time" if own else "")
    tail = " (not what runs below them)" if own else ", everything below them included"
    return f"what if spans matching {clean(expr)} {how}{tail}"


DEFAULT_PIPE_WIDTH = 120


@app.command(
    "critical-path",
    help=(
        "The critical path of one trace: the chain of work that decided its duration.\n\n"
        "Shows the path as sections in time order (which span was working, from when to when, as offsets "
        "from the trace start), each span on the path with its critical time (the part of the path during "
        "which it was the one working: time covered by its children counts for them), share of the trace's "
        "duration and drag (how much the trace would shrink if it took no time, before something else "
        "becomes the bottleneck), and every fan-out (children that overlapped): parallelism, the critical "
        "branch, each other branch's slack (how much later it could have ended without delaying the "
        "join) and the sync spans that waited at the join. The same spans are marked * by `agtrace show`.\n\n"
        "Several roots (and orphans whose parent is missing) are each analysed and shown; spans left off "
        "the path are listed with the reason. TRACE_ID may be a unique prefix.\n\n"
        "--format json gives trace_id, duration_ms, sections, spans, fanouts, other_roots, excluded and "
        "problems; jsonl/csv/tsv give one row per span on the path.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace critical-path 592ff49b\n"
        "  agtrace critical-path 592ff49b --what-if 'name = \"customer_sentiment_agent.invoke\"' --speedup 2\n"
        "  agtrace critical-path 592ff49b --format json | jq '.fanouts[].branches[] | {name, slack_ms}'"
    ),
)
def critical_path_cmd(
    trace_id: Annotated[str, typer.Argument(help="Trace id or a unique prefix of one (see `agtrace traces`).", show_default=False)],
    db: DbOption = None,
    inputs: InputOption = None,
    async_mode: AsyncOption = "truncate",
    what_if: WhatIfOption = None,
    speedup: SpeedupOption = None,
    delta: DeltaOption = None,
    own_time: OwnTimeOption = False,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", help="Rows per block in the table (sections, spans, fan-outs, branches); 0: no limit.")] = 50,
    width: Annotated[Optional[int], typer.Option("--width", "-W", metavar="COLUMNS", help="Output width in columns (default: the terminal's, 120 when piped).", show_default=False)] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    from agtrace.analysis.critical_path import gc_paused

    mode = check_async(async_mode)
    check_min("--limit", limit, 0)
    check_min("--width", width, 60)
    plan = what_if_plan(what_if, speedup, delta, own_time)
    store = open_for_analysis(db, inputs)
    # Many small objects and no cycles: the collector would only re-scan them.
    with gc_paused():
        result, wi = _run(store, trace_id, mode, plan, what_if, limit, width, fmt)
    for prob in result.problems:
        err(f"warning: {prob}")
    if wi is not None and wi.problem:
        err(f"warning: what-if not computed: {wi.problem}")
    if result.primary is None:
        raise UsageError(f"no critical path for trace {result.trace_id}"
                         + (" (see the warnings above)" if result.problems else ": no usable root"))


def _run(store, trace_id: str, mode: str, plan, what_if: str | None, limit: int, width: int | None,
         fmt: OutputFormat):
    from agtrace.analysis.bottlenecks import fetch_trace_columns
    from agtrace.analysis.critical_path import analyze_columns, what_if_columns
    from agtrace.lookup import resolve_trace_id

    tid = resolve_trace_id(store.con, trace_id)
    if plan is not None:
        flt, sp, dn, scope, label = plan
        cols, hits = fetch_trace_columns(store, tid, flt.sql, flt.params)
    else:
        cols, hits = fetch_trace_columns(store, tid)
    result = analyze_columns(cols, tid, mode)
    wi = None
    if plan is not None:
        # the analysis clipped copies; the columns themselves are intact
        wi = what_if_columns(cols, hits, tid, sp, dn, mode, scope=scope)

    if fmt == OutputFormat.table:
        from agtrace.render.critical_view import CriticalPathView
        from agtrace.render.output import color_allowed

        view = CriticalPathView(result, cols, width=_width(width), limit=limit, what_if=wi,
                                what_if_label=plan[4] if plan else None)
        sys.stdout.write(view.ansi() if color_allowed(sys.stdout) else view.plain())
    elif fmt == OutputFormat.json:
        from agtrace.render.output import dumps

        doc = result.to_dict()
        if wi is not None:
            doc["what_if"] = {"expression": what_if, "change": _change_text(sp, dn, scope), **wi.to_dict()}
        sys.stdout.write(dumps(doc, pretty=True) + "\n")
    else:
        from agtrace.render.output import write_rows

        rows = []
        for rp in ([result.primary] if result.primary else []) + list(result.other_roots):
            for s in rp.spans:
                rows.append({"root_span_id": rp.span_id, **s.to_dict(rp.duration_ns)})
        write_rows(rows, ["root_span_id", "span_id", "name", "agent", "type", "critical_ms", "share", "drag_ms"], fmt)
    return result, wi


def _change_text(speedup: float | None, delta_ns: int | None, scope: str) -> str:
    from agtrace.analysis.bottlenecks import describe_change

    return describe_change(speedup, delta_ns, scope)


def _width(explicit: int | None) -> int:
    from agtrace.commands.show import output_width

    return output_width(explicit)
