"""`agtrace bottlenecks`: critical time per span name, agent or type across traces.

The answer to "what should we make faster first": each selected trace's
critical path is computed (`analysis.bottlenecks`, CRISP-style sums) and the
groups are ranked by their total critical time. With --what-if the traces are
re-timed instead and the saving reported per trace and in aggregate.
Messages (failed traces, notes, "N more") go to stderr; stdout is data.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.commands.critical_path import (
    AsyncOption,
    DeltaOption,
    OwnTimeOption,
    SpeedupOption,
    WhatIfOption,
    check_async,
    check_min,
    what_if_plan,
)
from agtrace.errors import UsageError
from agtrace.render.output import OutputFormat

TABLE_TOP = 20
SHARE_BAR = 20
MAX_FAILURES_SHOWN = 10

GROUP_COLUMNS = ["critical_ms", "share", "traces", "mean_critical_ms", "p95_critical_ms", "mean_drag_ms"]
WHAT_IF_COLUMNS = ["trace_id", "before_ms", "after_ms", "saving_ms", "matched_spans", "problem"]


GROUP_BY = ("name", "agent", "type")


@app.command(
    "bottlenecks",
    help=(
        "Where the critical time goes across traces: what to make faster first.\n\n"
        "Computes the critical path of every selected trace and sums, per span name (or --by agent / "
        "type): total critical time, its share of all critical time, the number of traces where the group "
        "was on the path, mean and p95 critical time per such trace, and mean drag (how much a trace would "
        "shrink if the group's spans took no time, before something else becomes the bottleneck). Largest "
        "total first. A span's critical time is the part of the path during which it was the one working "
        "(time covered by its children counts for them), so --by agent, whose agent the spans it calls "
        "inherit, shows whole agents. A trace is selected when one of its spans matches --where. Only each trace's primary "
        "root is counted; a trace that cannot be analysed is reported on stderr and the others still count.\n\n"
        "--what-if EXPR with --speedup FACTOR or --delta DURATION re-times every selected trace with the "
        "matching spans changed (as a whole, children included; --own-time for their own time only) and "
        "reports per trace and in aggregate (p50, p95) the duration before and after and the saving.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace bottlenecks --by agent\n"
        "  agtrace bottlenecks --where 'service = \"market-research\"' --top 5 --format csv\n"
        "  agtrace bottlenecks --what-if 'name = \"customer_sentiment_agent.invoke\"' --speedup 2\n"
        "  agtrace bottlenecks --what-if 'type = \"llm\"' --delta -1500ms --format json"
    ),
)
def bottlenecks_cmd(
    db: DbOption = None,
    inputs: InputOption = None,
    where: Annotated[Optional[str], typer.Option("--where", "-w", metavar="EXPR", help="Only traces with a span matching this filter expression.", show_default=False)] = None,
    by: Annotated[Optional[str], typer.Option("--by", "-b", metavar="[name|agent|type]", help="Group critical time by span name, agent or span type.  [default: name]", show_default=False)] = None,
    top: Annotated[Optional[int], typer.Option("--top", "--limit", "-n", metavar="N", help=f"At most N rows, largest first (default: {TABLE_TOP} in a table, all otherwise; 0: no limit; with --what-if: the traces with the largest savings).", show_default=False)] = None,
    async_mode: AsyncOption = "truncate",
    what_if: WhatIfOption = None,
    speedup: SpeedupOption = None,
    delta: DeltaOption = None,
    own_time: OwnTimeOption = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    mode = check_async(async_mode)
    check_min("--top", top, 0)
    no_limit = top == 0  # 0 means no limit, in every command
    if no_limit:
        top = None
    if by is not None and by.strip().lower() not in GROUP_BY:
        raise UsageError(f"cannot group by {by!r}", hint="use one of: " + ", ".join(GROUP_BY))
    plan = what_if_plan(what_if, speedup, delta, own_time)
    if plan is not None and by is not None:
        raise UsageError("--by has no effect with --what-if",
                         hint="run the two separately: bottlenecks --by ..., then bottlenecks --what-if ...")
    where_sql, params = None, []
    if where:
        from agtrace.query import compile_filter

        flt = compile_filter(where)
        if not flt.is_trivial:
            where_sql, params = flt.sql, list(flt.params)
    store = open_for_analysis(db, inputs)
    if plan is not None:
        _what_if(store, where_sql, params, plan, what_if, top, mode, fmt, no_limit)
    else:
        _groups(store, where_sql, params, (by or "name").strip().lower(), top, mode, fmt, bool(where), no_limit)


def _groups(store, where_sql, params, by: str, top: int | None, async_mode: str, fmt: OutputFormat,
            filtered: bool, no_limit: bool = False) -> None:
    from agtrace.analysis.bottlenecks import bottlenecks

    limit = top if top is not None or no_limit else (TABLE_TOP if fmt == OutputFormat.table else None)
    rep = bottlenecks(store, where_sql, params, by=by, top=limit, async_mode=async_mode)
    rows = [r.to_dict(by) for r in rep.rows]
    columns = [by, *GROUP_COLUMNS]
    if fmt == OutputFormat.table:
        from agtrace.render.output import write_rows
        from agtrace.render.waterfall import format_duration

        if rep.traces_analysed:
            sys.stdout.write(
                f"Critical time by {by} over {rep.traces_analysed} trace{'s' if rep.traces_analysed != 1 else ''}: "
                f"{format_duration(rep.total_critical_ns)} in total, async children "
                f"{'truncated' if async_mode == 'truncate' else 'excluded'}\n\n")
        peak = max((r["share"] for r in rows), default=0) or 1
        for r in rows:
            r["bar"] = "█" * max(1, round(SHARE_BAR * r["share"] / peak)) if r["share"] > 0 else ""
            if r[by] is None:
                r[by] = f"(no {by})"
        write_rows(rows, [*columns, "bar"], fmt, cell=_cell, align_right=GROUP_COLUMNS,
                   headers={"critical_ms": "critical", "mean_critical_ms": "mean", "p95_critical_ms": "p95",
                            "mean_drag_ms": "mean drag", "bar": ""})
    else:
        from agtrace.render.output import write_rows

        write_rows(rows, columns, fmt)
    _report_failures(rep.failures)
    if rep.traces_with_other_roots:
        n = rep.traces_with_other_roots
        err(f"note: {n} trace{'s have' if n != 1 else ' has'} more than one root; only the primary root of each "
            "is counted (`agtrace critical-path ID` shows every root)")
    if rep.spans_excluded:
        err(f"note: {rep.spans_excluded} span{'s' if rep.spans_excluded != 1 else ''} left off the paths "
            "(outside their parent, consumers of a producer, excluded async children or parent cycles)")
    if rep.groups > len(rows):
        more = rep.groups - len(rows)
        err(f"({more} more group{'s' if more != 1 else ''}; use --top to see more)")
    if rep.traces_analysed == 0 and not rep.failures:
        err("no traces match" if filtered else "no traces in the store")


def _cell(column: str, value) -> str:
    from agtrace.render.output import cell_text
    from agtrace.render.waterfall import format_duration

    if value is None:
        return ""
    if column.endswith("_ms"):
        return format_duration(value * 1e6)
    if column == "share":
        pct = 100.0 * value
        return "0%" if pct == 0 else "<0.1%" if 0 < pct < 0.1 else f"{pct:.1f}%"
    return cell_text(value)


def _report_failures(failures) -> None:
    for f in failures[:MAX_FAILURES_SHOWN]:
        err(f"warning: trace {f.trace_id}: not analysed: {f.reason}")
    if len(failures) > MAX_FAILURES_SHOWN:
        err(f"warning: ... and {len(failures) - MAX_FAILURES_SHOWN} more traces not analysed")


def _what_if(store, where_sql, params, plan, expr: str, top: int | None, async_mode: str,
             fmt: OutputFormat, no_limit: bool = False) -> None:
    from agtrace.analysis.bottlenecks import what_if_store
    from agtrace.render.output import dumps, write_rows

    flt, sp, dn, scope, label = plan
    rep = what_if_store(store, where_sql, params, flt.sql, flt.params, speedup=sp, delta_ns=dn,
                        async_mode=async_mode, scope=scope)
    rows = [r.to_dict() for r in rep.per_trace]
    if top is not None or fmt == OutputFormat.table:
        rows.sort(key=lambda r: (r["saving_ms"] is None, -(r["saving_ms"] or 0), r["trace_id"] or ""))
    limit = top if top is not None or no_limit else (TABLE_TOP if fmt == OutputFormat.table else None)
    shown = rows[:limit] if limit is not None else rows
    if fmt == OutputFormat.json:
        doc = rep.to_dict()
        doc = {"expression": expr, **doc, "traces": shown}
        sys.stdout.write(dumps(doc, pretty=True) + "\n")
    elif fmt == OutputFormat.table:
        _what_if_table(rep, shown, label, async_mode)
    else:
        write_rows(shown, WHAT_IF_COLUMNS, fmt)
    _report_failures(rep.failures)
    if len(shown) < len(rows):
        more = len(rows) - len(shown)
        err(f"({more} more trace{'s' if more != 1 else ''}; use --top or --format to see more)")
    if not rows:
        err("no traces match" if where_sql else "no traces in the store")


def _what_if_table(rep, rows: list[dict], label: str, async_mode: str) -> None:
    from agtrace.render.output import write_rows
    from agtrace.render.waterfall import format_duration

    agg = rep.aggregate()
    out = sys.stdout
    out.write(label + "\n")
    n = agg["traces"]
    out.write(f"  {n} trace{'s' if n != 1 else ''}, {agg['affected']} with matching spans "
              f"({agg['matched_spans']} span{'s' if agg['matched_spans'] != 1 else ''}); async children "
              f"{'truncated' if async_mode == 'truncate' else 'excluded'}\n\n")
    if n:
        summary = [
            {"": "p50", "before": agg["before_p50_ms"], "after": agg["after_p50_ms"], "saving": agg["saving_p50_ms"]},
            {"": "p95", "before": agg["before_p95_ms"], "after": agg["after_p95_ms"], "saving": agg["saving_p95_ms"]},
        ]
        write_rows(summary, ["", "before", "after", "saving"], OutputFormat.table, align_right=("before", "after", "saving"),
                   cell=lambda c, v: v if c == "" else _signed(v))
        share = agg["saving_share"]
        out.write(f"saving per trace: mean {_signed(agg['saving_mean_ms'])}, max {_signed(agg['saving_max_ms'])}, "
                  f"total {_signed(agg['saving_total_ms'])}"
                  + (f" ({_cell('share', share)} of all trace time)" if share is not None else "") + "\n\n")
    write_rows(rows, ["trace_id", "before_ms", "after_ms", "saving_ms", "matched_spans"], OutputFormat.table,
               align_right=("before_ms", "after_ms", "saving_ms", "matched_spans"),
               headers={"before_ms": "before", "after_ms": "after", "saving_ms": "saving", "matched_spans": "matching"},
               cell=lambda c, v: _signed(v) if c.endswith("_ms") else ("" if v is None else str(v)))


def _signed(ms) -> str:
    """A duration in ms as text; negative savings (slower) keep their sign."""
    from agtrace.render.waterfall import format_duration

    if ms is None:
        return "-"
    ns = round(ms * 1e6)
    return "0" if ns == 0 else format_duration(ns)
