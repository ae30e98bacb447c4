"""Critical time aggregated across traces (CRISP-style), and what-if across traces.

The per-trace work is `critical_path`'s columnar core; this module feeds it
from DuckDB and sums the results. Following CRISP, only sums are accumulated
per group (critical time, drag, trace counts) and shares and means are derived
from the sums at the end, never averages of averages; p95 is over the
per-trace critical times of the traces where the group was on the path.

Why the fetch looks the way it does: one query returns the spans of all
selected traces ordered by trace id, read as Arrow record batches and turned
into plain lists per column (on 1,000,000 spans: fetchall() of tuples 1.8 s,
Arrow plus to_pylist() per column 1.1 s); only the columns the walk needs
travel, and the wait/sync flag is computed by DuckDB with the same rule as
`critical_path.is_wait_span`.

Decisions:

* A trace is selected when at least one of its spans matches the filter (all
  traces without one).
* Only the primary root of each trace is aggregated; traces with more roots
  are counted in `traces_with_other_roots` (`critical-path` shows them all),
  spans left off the path (outside their parent, consumers of a producer,
  async children in exclude mode, parent cycles) in `spans_excluded`.
* A trace that cannot be analysed (no usable root, or an unexpected error) is
  listed in `failures` with the reason; the others are still aggregated.
* Per group: "on the path" means the path passes through a span of the group
  (its critical time may be 0 when its children cover it). Mean critical and
  mean drag are over the traces where the group was on the path; a trace's
  drag for a group is the sum of the drags of its path spans that have no path
  ancestor of the same group (nested spans are not counted twice).
* Percentiles interpolate linearly between the closest ranks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agtrace.analysis.critical_path import (
    DEFAULT_ASYNC_MODE,
    WAIT_ATTRIBUTE_KEYS,
    WAIT_NAME_PATTERN,
    ASYNC_MODES,
    Clipped,
    TraceColumns,
    TraceCriticalPath,
    Tree,
    WHAT_IF_SCOPES,
    WhatIfResult,
    _ms,
    analyze_columns,
    gc_paused,
    what_if_columns,
    walk,
)
from agtrace.engine import relational
from agtrace.errors import UsageError

GROUP_COLUMNS = {"name": "s.name", "agent": "s.agent", "type": "s.type"}
# The walk only asks whether a kind is producer or consumer; NULL for the rest
# travels for free.
KIND_SQL = "CASE WHEN s.kind IN ('producer', 'consumer') THEN s.kind END"
BATCH_ROWS = 131_072
SMALL_TRACE = 20_000  # spans; up to this a trace is fetched as tuples (see fetch_trace_columns)

Params = Sequence[Any] | Mapping[str, Any]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) of already sorted values, linear interpolation."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class TraceFailure:
    trace_id: str | None
    reason: str

    def to_dict(self) -> dict:
        return {"trace_id": self.trace_id, "reason": self.reason}


# --------------------------------------------------------------------------
# Aggregation


@dataclass(frozen=True, slots=True)
class BottleneckRow:
    key: Any
    critical_ns: int
    share: float
    traces: int
    mean_critical_ns: float
    p95_critical_ns: float
    mean_drag_ns: float

    def to_dict(self, by: str = "name") -> dict:
        return {
            by: self.key,
            "critical_ms": _ms(self.critical_ns),
            "share": round(self.share, 4),
            "traces": self.traces,
            "mean_critical_ms": _ms(self.mean_critical_ns),
            "p95_critical_ms": _ms(self.p95_critical_ns),
            "mean_drag_ms": _ms(self.mean_drag_ns),
        }


@dataclass(slots=True)
class BottleneckReport:
    by: str
    async_mode: str
    rows: list[BottleneckRow]
    groups: int  # before --top
    traces_analysed: int
    total_critical_ns: int
    traces_with_other_roots: int = 0
    spans_excluded: int = 0
    failures: list[TraceFailure] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "by": self.by,
            "async_mode": self.async_mode,
            "traces_analysed": self.traces_analysed,
            "total_critical_ms": _ms(self.total_critical_ns),
            "groups": self.groups,
            "traces_with_other_roots": self.traces_with_other_roots,
            "spans_excluded": self.spans_excluded,
            "rows": [r.to_dict(self.by) for r in self.rows],
            "failures": [f.to_dict() for f in self.failures],
        }


class BottleneckAccumulator:
    """Sums per group over traces added one by one; `report()` derives the rest."""

    def __init__(self, by: str = "name", async_mode: str = DEFAULT_ASYNC_MODE):
        self.by = by
        self.async_mode = async_mode
        self.critical: dict[Any, int] = {}
        self.drag: dict[Any, int] = {}
        self.per_trace: dict[Any, list[int]] = {}
        self.traces = 0
        self.total = 0
        self.other_roots = 0
        self.excluded = 0
        self.failures: list[TraceFailure] = []

    def add(self, trace_id: str | None, cols: TraceColumns, groups: Sequence[Any]) -> None:
        """Analyse one trace (its columns and a group key per span) and add it.

        A failure is recorded with its reason instead of raised.
        """
        try:
            self._add(cols, groups)
        except _TraceProblem as exc:
            self.failures.append(TraceFailure(trace_id, str(exc)))
        except Exception as exc:  # one bad trace must not stop the aggregation
            self.failures.append(TraceFailure(trace_id, f"{type(exc).__name__}: {exc}"))

    def _add(self, cols: TraceColumns, groups: Sequence[Any]) -> None:
        tree = Tree(cols)
        roots = tree.roots
        if not roots:
            raise _TraceProblem("no root span (parent cycle)")
        root = tree.primary_root()
        if root in cols.bad or cols.ends[root] < cols.starts[root]:
            raise _TraceProblem(f"root span {cols.ids[root]} has no usable start/end times")
        # cs/ce may be clipped in place: the columns are this trace's own slices
        cl = Clipped(tree, root, cols.starts, cols.ends, self.async_mode)
        waits = cols.waits
        sec, drag, tops = walk(cl, tree.pidx, waits, cols.ids, groups)
        gcrit = {groups[i]: 0 for i in tops}
        for i, s, e in sec:
            gcrit[groups[i]] += e - s
        gd = dict.fromkeys(gcrit, 0)
        for i in tops:
            gd[groups[i]] += drag[i]
        crit, dsum, per = self.critical, self.drag, self.per_trace
        for g, v in gcrit.items():
            if g in crit:
                crit[g] += v
                dsum[g] += gd[g]
                per[g].append(v)
            else:
                crit[g] = v
                dsum[g] = gd[g]
                per[g] = [v]
        self.traces += 1
        self.total += cl.ce[root] - cl.cs[root]
        if len(roots) > 1:
            self.other_roots += 1
        if cl.dropped or tree.cyclic:
            self.excluded += len(cl.dropped) + len(tree.cyclic)

    def report(self, top: int | None = None) -> BottleneckReport:
        total = self.total
        rows = []
        for g, v in self.critical.items():
            vals = sorted(self.per_trace[g])
            n = len(vals)
            rows.append(BottleneckRow(
                key=g, critical_ns=v, share=v / total if total > 0 else 0.0, traces=n,
                mean_critical_ns=v / n, p95_critical_ns=percentile(vals, 95),
                mean_drag_ns=self.drag[g] / n,
            ))
        rows.sort(key=lambda r: (-r.critical_ns, -r.traces, r.key is None, str(r.key)))
        groups = len(rows)
        if top is not None:
            rows = rows[:top]
        return BottleneckReport(
            by=self.by, async_mode=self.async_mode, rows=rows, groups=groups,
            traces_analysed=self.traces, total_critical_ns=total,
            traces_with_other_roots=self.other_roots, spans_excluded=self.excluded,
            failures=list(self.failures),
        )


class _TraceProblem(Exception):
    """A trace that cannot be analysed, for a reason worth showing as is."""


# --------------------------------------------------------------------------
# What-if aggregation


@dataclass(slots=True)
class WhatIfReport:
    change: str
    async_mode: str
    per_trace: list[WhatIfResult]
    failures: list[TraceFailure] = field(default_factory=list)

    def aggregate(self) -> dict:
        """Over the traces that could be re-timed (matched or not): percentiles
        of the before and after durations; saving_p50/p95 are the differences
        of those percentiles (how much p50/p95 latency drops), saving_mean/max
        are over per-trace savings, saving_share = total saving / total before."""
        ok = [r for r in self.per_trace if r.before_ns is not None]
        before = sorted(r.before_ns for r in ok)
        after = sorted(r.after_ns for r in ok)
        saving = sorted(r.saving_ns for r in ok)
        total_before = sum(before)
        return {
            "traces": len(ok),
            "affected": sum(1 for r in ok if r.matched),
            "matched_spans": sum(r.matched for r in ok),
            "before_p50_ms": _ms(percentile(before, 50)),
            "before_p95_ms": _ms(percentile(before, 95)),
            "after_p50_ms": _ms(percentile(after, 50)),
            "after_p95_ms": _ms(percentile(after, 95)),
            "saving_p50_ms": _ms(percentile(before, 50) - percentile(after, 50)) if ok else None,
            "saving_p95_ms": _ms(percentile(before, 95) - percentile(after, 95)) if ok else None,
            "saving_mean_ms": _ms(sum(saving) / len(ok)) if ok else None,
            "saving_max_ms": _ms(saving[-1]) if ok else None,
            "saving_total_ms": _ms(sum(saving)),
            "saving_share": round(sum(saving) / total_before, 4) if total_before > 0 else None,
        }

    def to_dict(self) -> dict:
        return {
            "change": self.change,
            "async_mode": self.async_mode,
            "aggregate": self.aggregate(),
            "traces": [r.to_dict() for r in self.per_trace],
            "failures": [f.to_dict() for f in self.failures],
        }


def describe_change(speedup: float | None, delta_ns: int | None, scope: str = "own") -> str:
    what = f"speedup {speedup:g}x" if speedup is not None else f"delta {_ms(delta_ns):+g} ms"
    return what if scope == "own" else f"{what} ({scope})"


# --------------------------------------------------------------------------
# DuckDB side


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The wait/sync rule of critical_path.is_wait_span, in SQL over `s` and attrs.
WAIT_SQL = (
    f"(coalesce(regexp_matches(lower(s.name), {_sql_literal(WAIT_NAME_PATTERN)}), false)"
    " OR s.sid IN (SELECT a.sid FROM attrs a WHERE a.key IN ("
    + ", ".join(_sql_literal(k) for k in WAIT_ATTRIBUTE_KEYS)
    + ") AND a.idx IS NULL AND (lower(a.str_val) IN ('true', 'yes') OR a.num_val = 1)))"
)


def _combine_params(first: Params, first_sql: str, second: Params, second_sql: str) -> tuple[str, str, Params]:
    """Params of two fragments that appear in this order in one statement.

    Positional lists are concatenated. Named maps are merged; a name used by
    both with different values is renamed in the second fragment (the compiler
    of the filter language never puts user text in SQL, so `$name` tokens are
    placeholders).
    """
    first = first or ()
    second = second or ()
    if isinstance(first, Mapping) or isinstance(second, Mapping):
        if (first and not isinstance(first, Mapping)) or (second and not isinstance(second, Mapping)):
            raise ValueError("cannot combine positional and named SQL parameters")
        merged = dict(first or {})
        for name, value in dict(second or {}).items():
            if name in merged and merged[name] != value:
                new = name
                while new in merged or new in second:
                    new = "t_" + new
                second_sql = re.sub(r"\$" + re.escape(name) + r"\b", "$" + new, second_sql)
                merged[new] = value
            else:
                merged[name] = value
        return first_sql, second_sql, merged
    return first_sql, second_sql, [*first, *second]


def _trace_filter(where_sql: str | None) -> str:
    if not where_sql:
        return ""
    return f" WHERE s.trace_id IN (SELECT s.trace_id FROM spans s WHERE ({where_sql}))"


def iter_traces(store, select: str, where_sql: str | None, params: Params,
                 batch_rows: int | None = None) -> Iterator[tuple[str, list[list]]]:
    """(trace_id, column lists) per selected trace, for the columns of `select`.

    Streams Arrow record batches so memory stays bounded; trace boundaries are
    found by Arrow compute, so the trace ids never become Python strings one
    per span (that and the tuple-free columns keep the fetch near 1 s per
    million spans).
    """
    import pyarrow.compute as pc  # here, not at the top: `critical-path` on a small trace never needs it

    sql = f"SELECT s.trace_id, {select} FROM spans s{_trace_filter(where_sql)} ORDER BY s.trace_id"
    # A cursor of its own: the stream may be left unfinished (the caller stops
    # early), and an unfinished result must not block the store's connection.
    relational()
    cur = store.con.cursor()
    try:
        reader = cur.sql(sql, params=params if params else None).to_arrow_reader(batch_rows or BATCH_ROWS)
        pending_tid: str | None = None
        pending: list[list] | None = None
        for batch in reader:
            n = batch.num_rows
            if n == 0:
                continue
            tids = batch.column(0)
            cols = [batch.column(i).to_pylist() for i in range(1, batch.num_columns)]
            cuts: list[int] = []
            if n > 1:
                change = pc.fill_null(pc.not_equal(tids.slice(1), tids.slice(0, n - 1)), True)
                cuts = [i + 1 for i in pc.indices_nonzero(change).to_pylist()]
            bounds = [0, *cuts, n]
            for b, e in zip(bounds, bounds[1:]):
                tid = tids[b].as_py()
                part = [c[b:e] for c in cols] if (b, e) != (0, n) else cols
                if b == 0 and pending is not None:
                    if tid == pending_tid:
                        part = [p + q for p, q in zip(pending, part)]
                    else:
                        yield pending_tid, pending
                    pending = None
                if e == n:  # the batch's last trace may go on in the next batch
                    pending_tid, pending = tid, part
                else:
                    yield tid, part
        if pending is not None:
            yield pending_tid, pending
    finally:
        cur.close()


def _check_options(by: str | None, async_mode: str, top: int | None = None) -> None:
    if by is not None and by not in GROUP_COLUMNS:
        raise UsageError(f"cannot group by {by!r}", hint=f"use one of: {', '.join(GROUP_COLUMNS)}")
    if async_mode not in ASYNC_MODES:
        raise UsageError(f"unknown async mode {async_mode!r}", hint=f"use one of: {', '.join(ASYNC_MODES)}")
    if top is not None and top < 1:
        raise UsageError(f"--top must be at least 1, not {top}")


def bottlenecks(store, where_sql: str | None = None, params: Params = (), by: str = "name",
                top: int | None = None, async_mode: str = DEFAULT_ASYNC_MODE) -> BottleneckReport:
    """Critical time per span name / agent / type over the selected traces.

    `where_sql`/`params`: a boolean SQL expression over `spans s` from the
    filter language; a trace is selected when any of its spans matches.
    """
    _check_options(by, async_mode, top)
    acc = BottleneckAccumulator(by, async_mode)
    select = (f"s.span_id, s.parent_span_id, {KIND_SQL}, s.start_ns, s.end_ns, "
              f"{GROUP_COLUMNS[by]} AS grp, {WAIT_SQL} AS is_wait")
    with gc_paused():
        for trace_id, (ids, parents, kinds, starts, ends, grp, waits) in iter_traces(
                store, select, where_sql, params):
            cols = TraceColumns(ids, parents, starts, ends, kinds, waits=waits)
            cols.normalise()
            acc.add(trace_id, cols, grp)
    return acc.report(top)


def what_if_store(store, where_sql: str | None, params: Params, target_sql: str,
                  target_params: Params = (), speedup: float | None = None,
                  delta_ns: int | None = None, async_mode: str = DEFAULT_ASYNC_MODE,
                  scope: str = "own") -> WhatIfReport:
    """Re-time every selected trace with the spans matching `target_sql` changed.

    Every selected trace is reported (with `matched` 0 when nothing in it
    matched), so the aggregate describes the whole selection. `scope`: see
    `critical_path.what_if_columns` ("own" time, or the whole "subtree").
    """
    _check_options(None, async_mode)
    if scope not in WHAT_IF_SCOPES:
        raise UsageError(f"unknown what-if scope {scope!r}", hint=f"use one of: {', '.join(WHAT_IF_SCOPES)}")
    if (speedup is None) == (delta_ns is None):
        raise UsageError("give exactly one of --speedup and --delta")
    if speedup is not None and not speedup > 0:
        raise UsageError(f"--speedup must be greater than 0, not {speedup:g}")
    if not target_sql:
        raise UsageError("--what-if needs a filter selecting the spans to change")
    target_sql, where_part, all_params = _combine_params(target_params, target_sql, params, where_sql or "")
    select = (f"s.span_id, s.parent_span_id, {KIND_SQL}, s.start_ns, s.end_ns, {WAIT_SQL} AS is_wait, "
              f"coalesce(({target_sql}), false) AS hit")
    report = WhatIfReport(describe_change(speedup, delta_ns, scope), async_mode, [])
    with gc_paused():
        for trace_id, (ids, parents, kinds, starts, ends, waits, hits) in iter_traces(
                store, select, where_part or None, all_params):
            cols = TraceColumns(ids, parents, starts, ends, kinds, waits=waits)
            cols.normalise()
            try:
                r = what_if_columns(cols, hits, trace_id, speedup, delta_ns, async_mode, copy=False,
                                    scope=scope)
            except Exception as exc:  # one bad trace must not stop the others
                report.failures.append(TraceFailure(trace_id, f"{type(exc).__name__}: {exc}"))
                continue
            if r.problem:
                report.failures.append(TraceFailure(trace_id, r.problem))
            report.per_trace.append(r)
    return report


TRACE_COLUMNS = ("span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns", "agent", "type")


def fetch_trace_spans(store, trace_id: str) -> list[dict]:
    """The spans of one trace (exact id) as records for `analyze_trace`."""
    cols = ", ".join(f"s.{c}" for c in TRACE_COLUMNS)
    rows = store.con.execute(
        f"SELECT {cols}, {WAIT_SQL} AS is_wait FROM spans s WHERE s.trace_id = ? "
        "ORDER BY s.start_ns, s.span_id", [trace_id]).fetchall()
    names = (*TRACE_COLUMNS, "is_wait")
    return [dict(zip(names, row)) for row in rows]


def fetch_trace_columns(store, trace_id: str, target_sql: str | None = None,
                        target_params: Params = ()) -> tuple[TraceColumns, list[bool] | None]:
    """The spans of one trace (exact id) as `TraceColumns`, in start order.

    A big trace is read as Arrow columns turned into lists per column: no
    tuple or dict per span (a 100,000-span trace: 0.15 s instead of 0.6 s
    through `fetch_trace_spans` and `from_records`). A small one (the usual
    case, by the span count in `traces`) as tuples, which spares the 0.2 s
    import of pyarrow. With `target_sql` (a filter over `spans s`) the second
    value is the per-span what-if hit list, else None.
    """
    cols_sql = ", ".join(f"s.{c}" for c in TRACE_COLUMNS)
    hit_sql = f", coalesce(({target_sql}), false) AS hit" if target_sql else ""
    params: list = list(target_params or ()) + [trace_id] if target_sql else [trace_id]
    sql = (f"SELECT {cols_sql}, {WAIT_SQL} AS is_wait{hit_sql} FROM spans s "
           "WHERE s.trace_id = ? ORDER BY s.start_ns, s.span_id")
    width = len(TRACE_COLUMNS) + 1 + bool(target_sql)
    cur = store.con.cursor()
    try:
        known = cur.execute("SELECT span_count FROM traces WHERE trace_id = ?", [trace_id]).fetchall()
        if known and known[0][0] is not None and known[0][0] <= SMALL_TRACE:
            rows = cur.execute(sql, params).fetchall()
            lists = [list(c) for c in zip(*rows)] if rows else [[] for _ in range(width)]
        else:
            relational()
            tbl = cur.sql(sql, params=params).to_arrow_table()
            lists = [c.to_pylist() for c in tbl.columns]
    finally:
        cur.close()
    ids, parents, names, kinds, starts, ends, agents, types, waits = lists[:9]
    cols = TraceColumns(ids, parents, starts, ends, kinds, names, agents, types, waits=waits)
    cols.normalise()
    return cols, (lists[9] if target_sql else None)


def critical_path_store(store, trace_id: str, async_mode: str = DEFAULT_ASYNC_MODE,
                        with_fanouts: bool = True) -> TraceCriticalPath:
    """`analyze_trace` for a trace in the store (exact id; resolving prefixes is the caller's)."""
    _check_options(None, async_mode)
    cols, _ = fetch_trace_columns(store, trace_id)
    result = analyze_columns(cols, trace_id, async_mode, with_fanouts)
    if not cols.ids:
        result.problems[:] = [f"no spans for trace {trace_id} in the store"]
    return result


def iter_store_trace_ids(store, where_sql: str | None = None, params: Params = ()) -> Iterable[str]:
    """Trace ids selected by a filter (traces with a matching span), in order."""
    sql = f"SELECT DISTINCT s.trace_id FROM spans s{_trace_filter(where_sql)} ORDER BY 1"
    return [r[0] for r in store.con.execute(sql, params if params else None).fetchall()]
