"""Grouped statistics over spans and traces: the SQL behind `agtrace stats`.

Why SQL and not Python: a store holds millions of spans and the answer is a
handful of rows, so every figure (counts, percentiles, streaks, buckets) is
computed by DuckDB and only the groups come back.

Definitions (stated because tests and users compare against them):

* percentiles are DuckDB's `quantile_cont`: linear interpolation between the
  two closest ranks (R type 7, numpy's default "linear"): for sorted values
  x[0..n-1], p-th percentile = x[f] + (x[c] - x[f]) * (h - f), h = (n-1) p,
  f = floor(h), c = ceil(h);
* `share` is a group's count over the total of the rows grouped: the spans
  (or traces) that matched `where` and have every `--by` key, plus those
  without a key when `include_missing` is on; shares therefore sum to 1;
* the confidence of a span is its `decision_confidence` attribute, else its
  `confidence` attribute (numbers, or strings that hold a number);
* an attribute group key is the attribute's text value (the scalar, or element
  0 of an array), the span's else the resource's, as in the filter language;
  a key column whose values all read as numbers (or all as true/false) is
  reported as numbers (booleans).

Attribute keys are joined (`spans JOIN attrs ON sid AND key`) rather than
taken from `agtrace.query.field_expr`, whose correlated scalar subqueries are
slower on large stores (see benchmarks/bench_stats.py); intrinsic keys and
everything else (`parent.x`, `trace.x`) use `field_expr`, so a name means the
same here as in a filter. On a store of 1,000,000 spans nearly all the time
goes into scanning `attrs` (every row group holds every key); see the README's
benchmark section for the figures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from agtrace.errors import UsageError
from agtrace.timeutil import format_time

CONFIDENCE_KEYS = ("decision_confidence", "confidence")

Sql = tuple[str, list]


# -- building blocks ----------------------------------------------------------------


@dataclass
class _Query:
    """SELECT items, joins and conditions of the per-span CTE, each with its params.

    Kept apart because `?` placeholders bind in text order: SELECT list,
    then FROM/JOIN, then WHERE.
    """

    select: list[Sql] = field(default_factory=list)
    joins: list[Sql] = field(default_factory=list)
    where: list[Sql] = field(default_factory=list)
    n_alias: int = 0

    def alias(self, prefix: str) -> str:
        self.n_alias += 1
        return f"_{prefix}{self.n_alias}"

    def sql(self, source: str = "spans s", source_params: list = ()) -> Sql:
        params: list = []
        sel = []
        for text, p in self.select:
            sel.append(text)
            params += p
        params += list(source_params)
        joins = []
        for text, p in self.joins:
            joins.append(text)
            params += p
        conds = []
        for text, p in self.where:
            conds.append(f"({text})")
            params += p
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        return f"SELECT {', '.join(sel)} FROM {source} {' '.join(joins)}{where}", params


@dataclass(frozen=True)
class Key:
    """A `--by` key: the output column `label` and how the CTE computes it."""

    label: str
    text: str  # as the user wrote it


def _has_resource_key(con, key: str) -> bool:
    # resource_attrs is tiny (one row per resource attribute), so asking is
    # cheaper than always joining it for the span-else-resource rule.
    return con.execute("SELECT 1 FROM resource_attrs WHERE key = ? LIMIT 1", [key]).fetchone() is not None


def _add_key(con, q: _Query, name: str, i: int, *, required: bool, alias: str = "s") -> bool:
    """Add group key `i` as column g{i}.

    Returns whether the key is an inner join on `attrs`, which narrows the
    spans scanned (DuckDB pushes the join's keys into the spans scan).
    """
    from agtrace.query import field_expr, parse_field
    from agtrace.query.fields import ANY_ATTR, RESOURCE_ATTR, SPAN_ATTR

    f = parse_field(name)
    kind = "JOIN" if required else "LEFT JOIN"
    cond = "coalesce({a}.idx, 0) = 0"
    if f.up == 0 and f.scope in (SPAN_ATTR, ANY_ATTR):
        a = q.alias("k")
        use_res = f.scope == ANY_ATTR and _has_resource_key(con, f.name)
        if not use_res:
            q.joins.append((f"{kind} attrs {a} ON {a}.sid = {alias}.sid AND {a}.key = ? AND {cond.format(a=a)}", [f.name]))
            q.select.append((f"{a}.str_val AS g{i}", []))
            return required
        r = q.alias("r")
        q.joins.append((f"LEFT JOIN attrs {a} ON {a}.sid = {alias}.sid AND {a}.key = ? AND {cond.format(a=a)}", [f.name]))
        q.joins.append((f"LEFT JOIN resource_attrs {r} ON {r}.resource_id = {alias}.resource_id AND {r}.key = ?"
                        f" AND {cond.format(a=r)}", [f.name]))
        q.select.append((f"CASE WHEN {a}.sid IS NOT NULL THEN {a}.str_val ELSE {r}.str_val END AS g{i}", []))
        if required:
            q.where.append((f"{a}.sid IS NOT NULL OR {r}.resource_id IS NOT NULL", []))
        return False
    if f.up == 0 and f.scope == RESOURCE_ATTR:
        r = q.alias("r")
        q.joins.append((f"{kind} resource_attrs {r} ON {r}.resource_id = {alias}.resource_id AND {r}.key = ?"
                        f" AND {cond.format(a=r)}", [f.name]))
        q.select.append((f"{r}.str_val AS g{i}", []))
        return False
    sql, params = field_expr(name)
    if alias != "s":
        # field_expr is written over alias `s`; the traces query names the root span `s` too.
        raise AssertionError("field_expr keys need alias s")
    q.select.append((f"{sql} AS g{i}", params))
    if required:
        q.where.append((f"{sql} IS NOT NULL", params))
    return False


def _add_numeric(con, q: _Query, name: str, col: str) -> None:
    """A numeric per-span value for --metric, as column `col`."""
    from agtrace.query import field_numeric_expr, parse_field
    from agtrace.query.fields import ANY_ATTR, RESOURCE_ATTR, SPAN_ATTR

    f = parse_field(name)
    if f.up == 0 and f.scope in (SPAN_ATTR, ANY_ATTR, RESOURCE_ATTR):
        parts = []
        if f.scope != RESOURCE_ATTR:
            a = q.alias("m")
            q.joins.append((f"LEFT JOIN attrs {a} ON {a}.sid = s.sid AND {a}.key = ? AND {a}.idx IS NULL", [f.name]))
            parts.append(f"{a}.num_val")
        if f.scope == RESOURCE_ATTR or _has_resource_key(con, f.name):
            r = q.alias("mr")
            q.joins.append((f"LEFT JOIN resource_attrs {r} ON {r}.resource_id = s.resource_id AND {r}.key = ?"
                            f" AND {r}.idx IS NULL", [f.name]))
            parts.append(f"{r}.num_val")
        expr = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        q.select.append((f"{expr} AS {col}", []))
        return
    sql, params = field_numeric_expr(name)
    q.select.append((f"CAST({sql} AS DOUBLE) AS {col}", params))


_TEXT_KINDS = ("string", "id", "enum", "list", "bool")
_KIND_TYPES = {"list": "array", "bool": "bool"}  # intrinsic kind -> the value type a user sees


def check_metrics(con, metrics: list[str]) -> list[str]:
    """Check the --metric keys against the store; returns warnings, raises UsageError.

    A metric needs numbers: a key whose every value is text (or a bool, an
    array, a kv-list) would give empty sum/avg/p95 columns, so it is a usage
    error naming the value types seen. A key no span has gives a warning (its
    columns are empty, as for a typo in `query -c`).
    """
    from agtrace.query import field_info
    from agtrace.query.fields import RESOURCE_ATTR, SPAN_ATTR

    warnings = []
    for name in dict.fromkeys(m.strip() for m in metrics):
        info = field_info(name)
        f = info.field
        if info.kind == "attribute":
            parts, params = [], []
            if f.scope != RESOURCE_ATTR:
                parts.append("SELECT vtype, idx, num_val FROM attrs WHERE key = ?")
                params.append(f.name)
            if f.scope != SPAN_ATTR:
                parts.append("SELECT vtype, idx, num_val FROM resource_attrs WHERE key = ?")
                params.append(f.name)
            rows = con.execute(
                f"SELECT CASE WHEN idx IS NULL THEN vtype ELSE 'array' END AS t, count(*) AS n,"
                f" count(num_val) FILTER (WHERE idx IS NULL) AS nums"
                f" FROM ({' UNION ALL '.join(parts)}) GROUP BY t ORDER BY n DESC, t", params).fetchall()
            if not rows:
                warnings.append(f"no span or resource has an attribute {f.name!r}; "
                                f"the --metric {name} columns will be empty")
                continue
            if sum(r[2] for r in rows) == 0:
                seen = ", ".join(f"{t} ({n})" for t, n, _ in rows)
                raise UsageError(f"--metric {name}: no value of {f.name!r} is a number (values seen: {seen})",
                                 hint="--metric takes a numeric field such as gen_ai.usage.input_tokens "
                                      "or duration_ms; to group by this one, use --by " + name)
        elif info.kind in _TEXT_KINDS:
            from agtrace.query import field_expr, field_numeric_expr

            raw, p1 = field_expr(name)
            num, p2 = field_numeric_expr(name)
            has, nums = con.execute(f"SELECT count({raw}), count({num}) FROM spans s", p1 + p2).fetchone()
            if has and not nums:
                raise UsageError(f"--metric {name}: {info.label} is not a number (values seen: {_KIND_TYPES.get(info.kind, 'string')} ({has}))",
                                 hint="--metric takes a numeric field such as gen_ai.usage.input_tokens "
                                      "or duration_ms; to group by this one, use --by " + name)
    return warnings


def confidence_keys(con) -> list[str]:
    """Which of the confidence attributes the store holds, in order of preference.

    One scan of the (dictionary-compressed) key column; it saves a join over
    `attrs` per absent key, which costs more (see benchmarks/bench_stats.py).
    """
    found = {r[0] for r in con.execute(
        "SELECT DISTINCT key FROM attrs WHERE key IN (?, ?)", list(CONFIDENCE_KEYS)).fetchall()}
    return [k for k in CONFIDENCE_KEYS if k in found]


def _add_confidence(q: _Query, conf_keys: list[str]) -> None:
    parts = []
    for key in conf_keys:
        a = q.alias("c")
        q.joins.append((f"LEFT JOIN attrs {a} ON {a}.sid = s.sid AND {a}.key = ? AND {a}.idx IS NULL", [key]))
        parts.append(f"{a}.num_val")
    expr = "NULL::DOUBLE" if not parts else parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    q.select.append((f"{expr} AS conf", []))


def _add_where(q: _Query, where) -> None:
    if where is not None and not getattr(where, "is_trivial", False) and where.sql:
        q.where.append((where.sql, list(where.params)))


def check_keys(by: list[str]) -> list[Key]:
    """Validate `--by` names (parse errors are ExpressionErrors) and label them."""
    from agtrace.query import parse_field

    keys = []
    seen = set()
    for text in by:
        name = text.strip()
        f = parse_field(name)
        col = f.column
        if col is not None and col.kind == "list":
            raise UsageError(
                f"--by {name}: a list field cannot be a group key",
                hint="group by agent (one row per agent) instead, or filter with --where 'trace.agents = \"x\"'",
            )
        if name in seen:
            raise UsageError(f"--by {name} is given twice")
        seen.add(name)
        keys.append(Key(name, name))
    return keys


# -- value shaping ------------------------------------------------------------------


def _ms(ns) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _num(v, digits: int = 6):
    """A float rounded for output; integral sums as ints."""
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return None
        if v.is_integer() and abs(v) < 2 ** 53:
            return int(v)
        return round(v, digits)
    return v


_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def is_attribute_key(name: str) -> bool:
    from agtrace.query import parse_field

    f = parse_field(name)
    return f.up == 0 and f.is_attribute


def type_key_values(rows: list[dict], labels: list[str]) -> None:
    """Attribute group values (text in `attrs.str_val`) back as numbers or booleans.

    A key column becomes numeric when every value in it reads as a number
    (written canonically: "42", "0.9", not "007"), boolean when every value is
    "true"/"false"; otherwise it stays text. Like the filter language, this
    does not tell an int attribute from a string holding the same number;
    reading `attrs.vtype` to do so would cost a column scan per key.
    """
    for label in labels:
        vals = [r[label] for r in rows if r.get(label) is not None]
        if not vals or not all(isinstance(v, str) for v in vals):
            continue
        if all(v in ("true", "false") for v in vals):
            conv = lambda v: v == "true"  # noqa: E731
        elif all(_FLOAT_RE.fullmatch(v) for v in vals):
            conv = lambda v: int(v) if _INT_RE.fullmatch(v) else float(v)  # noqa: E731
        else:
            continue
        for r in rows:
            if r.get(label) is not None:
                r[label] = conv(r[label])


def _type_attribute_keys(rows: list[dict], keys: list[Key]) -> None:
    type_key_values(rows, [k.label for k in keys if is_attribute_key(k.text)])


def metric_columns(metrics: list[str]) -> list[str]:
    return [f"{m}_{s}" for m in metrics for s in ("sum", "avg", "p95")]


# -- results ------------------------------------------------------------------------


@dataclass
class StatsResult:
    """Rows (dicts keyed by column) in output order, plus what the footer says."""

    rows: list[dict]
    columns: list[str]
    keys: list[str]
    total: int  # spans / traces grouped (the denominator of share)
    missing: int = 0  # spans / traces left out for lacking a key
    unit: str = "spans"


DURATION_COLUMNS = ["avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]


def span_stats(con, by: list[str], *, where=None, include_missing: bool = False,
               metrics: list[str] = (), rate=None) -> StatsResult:
    """Per-group span statistics (`agtrace stats --by KEY ...`).

    `where` and `rate` are compiled filters (`agtrace.query.Filter`); `rate`
    adds `rate_count` / `rate`: how many spans of each group match it.
    """
    keys = check_keys(by)
    metrics = list(dict.fromkeys(m.strip() for m in metrics))
    q = _Query()
    q.select.append(("s.status, s.duration_ns, s.input_tokens, s.output_tokens", []))
    narrowed = [_add_key(con, q, k.text, i, required=not include_missing) for i, k in enumerate(keys)]
    conf_keys = confidence_keys(con)
    # Joining the confidence inline probes every span the query reads: fine
    # when an attribute key already narrowed them, costly for `--by agent`
    # over a whole store, where a second query from the confidence rows is
    # cheaper.
    separate_conf = bool(conf_keys) and not any(narrowed)
    _add_confidence(q, [] if separate_conf else conf_keys)
    for j, m in enumerate(metrics):
        _add_numeric(con, q, m, f"m{j}")
    if rate is not None:
        q.select.append((f"({rate.sql}) AS hit", list(rate.params)))
    _add_where(q, where)
    base, params = q.sql()
    n = len(keys)
    aggs = [
        "count(*)", "count(*) FILTER (WHERE status = 'error')", "avg(duration_ns)",
        "quantile_cont(duration_ns, [0.5, 0.95, 0.99])", "max(duration_ns)",
        "avg(conf)", "min(conf)", "count(conf)",
        "sum(input_tokens)", "sum(output_tokens)", "count(input_tokens) + count(output_tokens)",
    ]
    for j in range(len(metrics)):
        aggs += [f"sum(m{j})", f"avg(m{j})", f"quantile_cont(m{j}, 0.95)"]
    if rate is not None:
        aggs.append("count(*) FILTER (WHERE hit)")
    group = f"GROUP BY {', '.join(f'g{i}' for i in range(n))}" if n else ""
    sel = "".join(f"g{i}, " for i in range(n)) + ", ".join(aggs)
    rows = con.execute(f"WITH b AS ({base}) SELECT {sel} FROM b {group}", params).fetchall()

    total = sum(r[n] for r in rows)
    missing = 0
    if not include_missing and n:
        wq = _Query()
        wq.select.append(("count(*)", []))
        _add_where(wq, where)
        all_sql, all_params = wq.sql()
        missing = con.execute(all_sql, all_params).fetchone()[0] - total
    if separate_conf:
        confs = _confidence_by_group(con, keys, conf_keys, where, include_missing)
        rows = [r[:n + 5] + confs.get(tuple(r[:n]), (None, None, 0)) + r[n + 8:]
                for r in rows]
    has_conf = any(r[n + 7] for r in rows)
    has_tokens = any(r[n + 10] for r in rows)
    columns = [k.label for k in keys] + ["count", "share", "error_count"] + DURATION_COLUMNS
    if rate is not None:
        columns += ["rate_count", "rate"]
    if has_conf:
        columns += ["avg_confidence", "min_confidence"]
    if has_tokens:
        columns += ["input_tokens", "output_tokens"]
    columns += metric_columns(metrics)
    out = []
    for r in rows:
        vals = r[:n]
        a = r[n:]
        count = a[0]
        q50, q95, q99 = (a[3] or [None, None, None])
        row = {k.label: v for k, v in zip(keys, vals)}
        row.update({
            "count": count, "share": _share(count, total), "error_count": a[1],
            "avg_ms": _ms(a[2]), "p50_ms": _ms(q50), "p95_ms": _ms(q95), "p99_ms": _ms(q99), "max_ms": _ms(a[4]),
        })
        if rate is not None:
            hits = a[11 + 3 * len(metrics)]
            row["rate_count"] = hits
            row["rate"] = _share(hits, count)
        if has_conf:
            row["avg_confidence"] = _num(a[5], 4)
            row["min_confidence"] = _num(a[6], 4)
        if has_tokens:
            row["input_tokens"] = a[8]
            row["output_tokens"] = a[9]
        for j, m in enumerate(metrics):
            s, av, p = a[11 + 3 * j: 14 + 3 * j]
            row[f"{m}_sum"] = _num(s)
            row[f"{m}_avg"] = _num(av)
            row[f"{m}_p95"] = _num(p)
        out.append(row)
    _type_attribute_keys(out, keys)
    return StatsResult(out, columns, [k.label for k in keys], total, missing, "spans")


def _confidence_by_group(con, keys: list[Key], conf_keys: list[str], where, include_missing: bool) -> dict:
    """(avg, min, count) of the confidence per raw group-key tuple, read from the confidence rows."""
    q = _Query()
    if len(conf_keys) == 1:
        source = "attrs _cf JOIN spans s ON s.sid = _cf.sid"
        source_params: list = []
        q.where.append(("_cf.key = ? AND _cf.idx IS NULL", [conf_keys[0]]))
    else:
        source = ("(SELECT sid, coalesce(any_value(num_val) FILTER (WHERE key = ?), any_value(num_val) FILTER (WHERE key = ?))"
                  " AS num_val FROM attrs WHERE key IN (?, ?) AND idx IS NULL GROUP BY sid) _cf"
                  " JOIN spans s ON s.sid = _cf.sid")
        source_params = list(conf_keys) * 2
    q.select.append(("_cf.num_val AS conf", []))
    for i, k in enumerate(keys):
        _add_key(con, q, k.text, i, required=not include_missing)
    _add_where(q, where)
    base, params = q.sql(source, source_params)
    gs = ", ".join(f"g{i}" for i in range(len(keys)))
    if not keys:
        row = con.execute(f"WITH b AS ({base}) SELECT avg(conf), min(conf), count(conf) FROM b", params).fetchone()
        return {(): tuple(row)}
    rows = con.execute(f"WITH b AS ({base}) SELECT {gs}, avg(conf), min(conf), count(conf) FROM b GROUP BY {gs}",
                       params).fetchall()
    n = len(keys)
    return {tuple(r[:n]): tuple(r[n:]) for r in rows}


def _share(part, whole):
    return round(part / whole, 6) if whole else None


def trace_stats(con, by: list[str], *, where=None, include_missing: bool = False, rate=None) -> StatsResult:
    """Per-group trace statistics (`agtrace stats --traces`).

    Groups are keyed by the root span (default: its name, as `root_name`);
    `where` keeps traces with at least one matching span; `rate` counts the
    traces of each group containing a span that matches it.
    """
    keys = check_keys(by) if by else []
    q = _Query()
    q.select.append(("t.trace_id, t.duration_ns, t.error_count", []))
    if keys:
        # traces.root_span_id is the shallowest span (a true root when there
        # is one); a span id can repeat within a trace (Zipkin shared spans),
        # hence the QUALIFY below keeping one row per trace.
        q.joins.append(("LEFT JOIN spans s ON s.trace_id = t.trace_id AND s.span_id = t.root_span_id", []))
        for i, k in enumerate(keys):
            _add_key(con, q, k.text, i, required=not include_missing)
        labels = [k.label for k in keys]
    else:
        q.select.append(("t.root_name AS g0", []))
        if not include_missing:
            q.where.append(("t.root_name IS NOT NULL", []))
        labels = ["root_name"]
    if rate is not None:
        q.select.append((f"t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {rate.sql}) AS hit", list(rate.params)))
    if where is not None and not where.is_trivial:
        q.where.append((f"t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {where.sql})", list(where.params)))
    base, params = q.sql("traces t")
    if keys:
        base += " QUALIFY row_number() OVER (PARTITION BY t.trace_id ORDER BY s.sid) = 1"
    n = len(labels)
    aggs = ["count(*)", "count(*) FILTER (WHERE error_count > 0)", "avg(duration_ns)",
            "quantile_cont(duration_ns, [0.5, 0.95, 0.99])", "max(duration_ns)"]
    if rate is not None:
        aggs.append("count(*) FILTER (WHERE hit)")
    sel = "".join(f"g{i}, " for i in range(n)) + ", ".join(aggs)
    group = "GROUP BY " + ", ".join(f"g{i}" for i in range(n))
    rows = con.execute(f"WITH b AS ({base}) SELECT {sel} FROM b {group}", params).fetchall()
    total = sum(r[n] for r in rows)
    missing = 0
    if not include_missing:
        wq = _Query()
        wq.select.append(("count(*)", []))
        if where is not None and not where.is_trivial:
            wq.where.append((f"t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {where.sql})", list(where.params)))
        all_sql, all_params = wq.sql("traces t")
        missing = con.execute(all_sql, all_params).fetchone()[0] - total
    columns = labels + ["count", "share", "error_count", "error_rate"] + DURATION_COLUMNS
    if rate is not None:
        columns += ["rate_count", "rate"]
    out = []
    for r in rows:
        vals = r[:n]
        a = r[n:]
        q50, q95, q99 = (a[3] or [None, None, None])
        row = dict(zip(labels, vals))
        row.update({
            "count": a[0], "share": _share(a[0], total), "error_count": a[1], "error_rate": _share(a[1], a[0]),
            "avg_ms": _ms(a[2]), "p50_ms": _ms(q50), "p95_ms": _ms(q95), "p99_ms": _ms(q99), "max_ms": _ms(a[4]),
        })
        if rate is not None:
            row["rate_count"] = a[5]
            row["rate"] = _share(a[5], a[0])
        out.append(row)
    _type_attribute_keys(out, keys)
    return StatsResult(out, columns, labels, total, missing, "traces")


STREAK_COLUMNS = ["streak", "total", "start", "end", "start_trace_id", "start_span_id", "end_trace_id", "end_span_id"]


def streaks(con, by: list[str], *, where=None) -> StatsResult:
    """For each agent, its longest run of the same `by` value(s) in time order.

    Spans carrying the key(s) are ordered per agent by start time (then by
    load order); a run is a maximal sequence of equal values (gaps and
    islands: the difference of two row numbers is constant along a run).
    `total` is how many of the agent's spans carry the key; `start`/`end` are
    the start times of the run's first and last span. Ties go to the earlier
    run. Spans without an agent form one group with agent null.
    """
    keys = [k for k in check_keys(by) if k.text != "agent"]
    if not keys:
        raise UsageError("--streaks needs a --by key other than agent", hint="e.g. agtrace stats --streaks --by decision_type")
    q = _Query()
    q.select.append(("s.sid, s.agent AS ag, s.start_ns", []))
    for i, k in enumerate(keys):
        _add_key(con, q, k.text, i, required=True)
    _add_where(q, where)
    base, params = q.sql()
    n = len(keys)
    gs = ", ".join(f"g{i}" for i in range(n))
    # Runs are found on integers only (row numbers, sids); the ids and times
    # of the winning runs' first and last spans are looked up at the end,
    # which is cheaper than carrying text through the run aggregation.
    sql = f"""
    WITH b AS ({base}),
    r AS (
        SELECT ag, {gs}, sid,
               row_number() OVER (PARTITION BY ag ORDER BY start_ns, sid) AS rn,
               row_number() OVER (PARTITION BY ag ORDER BY start_ns, sid)
               - row_number() OVER (PARTITION BY ag, {gs} ORDER BY start_ns, sid) AS isl
        FROM b
    ),
    runs AS (
        SELECT ag, {gs}, count(*) AS n, min(rn) AS first_rn,
               arg_min(sid, rn) AS first_sid, arg_max(sid, rn) AS last_sid
        FROM r GROUP BY ag, {gs}, isl
    ),
    best AS (
        SELECT *, sum(n) OVER (PARTITION BY ag) AS total FROM runs
        QUALIFY row_number() OVER (PARTITION BY ag ORDER BY n DESC, first_rn) = 1
    )
    SELECT best.ag, {", ".join(f"best.g{i}" for i in range(n))}, best.n, best.total,
           f.start_ns, l.start_ns, f.trace_id, f.span_id, l.trace_id, l.span_id
    FROM best JOIN spans f ON f.sid = best.first_sid JOIN spans l ON l.sid = best.last_sid
    """
    rows = con.execute(sql, params).fetchall()
    labels = [k.label for k in keys]
    out = []
    for r in rows:
        vals = r[1:1 + n]
        a = r[1 + n:]
        row = {"agent": r[0]}
        row.update(zip(labels, vals))
        row.update({
            "streak": a[0], "total": int(a[1]), "start": format_time(a[2]), "end": format_time(a[3]),
            "start_trace_id": a[4], "start_span_id": a[5], "end_trace_id": a[6], "end_span_id": a[7],
        })
        out.append(row)
    total = sum(r["total"] for r in out)
    _type_attribute_keys(out, keys)
    return StatsResult(out, ["agent"] + labels + STREAK_COLUMNS, ["agent"] + labels, total, 0, "spans")


def timeline(con, by: list[str], every_ns: int, *, where=None, include_missing: bool = False) -> StatsResult:
    """Span counts per time bucket and group (`agtrace stats --timeline`).

    Buckets are `every_ns` wide, aligned to the Unix epoch (so 1h buckets
    start on the hour, UTC), keyed by span start time; `share` is the
    group's part of its bucket. Buckets without spans are not listed.
    """
    if every_ns <= 0:
        raise UsageError("--every must be a positive duration", hint="e.g. --every 1h or --every 15m")
    keys = check_keys(by)
    q = _Query()
    q.select.append(("s.start_ns // ? * ? AS bucket, s.status", [every_ns, every_ns]))
    for i, k in enumerate(keys):
        _add_key(con, q, k.text, i, required=not include_missing)
    _add_where(q, where)
    base, params = q.sql()
    n = len(keys)
    gs = "".join(f", g{i}" for i in range(n))
    ks = "".join(f", g{i}" for i in range(n))
    rows = con.execute(
        f"WITH b AS ({base}) SELECT bucket{ks}, count(*), count(*) FILTER (WHERE status = 'error') "
        f"FROM b GROUP BY bucket{gs}", params).fetchall()
    per_bucket: dict[int, int] = {}
    for r in rows:
        per_bucket[r[0]] = per_bucket.get(r[0], 0) + r[1 + n]
    total = sum(per_bucket.values())
    missing = 0
    if not include_missing and n:
        wq = _Query()
        wq.select.append(("count(*)", []))
        _add_where(wq, where)
        all_sql, all_params = wq.sql()
        missing = con.execute(all_sql, all_params).fetchone()[0] - total
    labels = [k.label for k in keys]
    out = []
    for r in rows:
        count = r[1 + n]
        row = {"bucket": format_time(r[0])}
        row.update(zip(labels, r[1:1 + n]))
        row.update({"count": count, "share": _share(count, per_bucket[r[0]]), "error_count": r[2 + n],
                    "_bucket_ns": r[0]})
        out.append(row)
    _type_attribute_keys(out, keys)
    return StatsResult(out, ["bucket"] + labels + ["count", "share", "error_count"], labels, total, missing, "spans")


# -- ordering -----------------------------------------------------------------------

SORT_ALIASES = {
    "errors": "error_count", "avg": "avg_ms", "p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms",
    "max": "max_ms", "confidence": "avg_confidence", "key": None,
}


def sort_rows(result: StatsResult, sort: str | None, *, reverse: bool = False, default: str = "count") -> None:
    """Order rows in place: numbers largest first, keys alphabetically, then by keys.

    `sort` is an output column or an alias (errors, avg, p50, p95, p99, max,
    confidence, key); missing values go last. The timeline keeps buckets in
    time order and sorts within each bucket.
    """
    name = (sort or default).strip()
    col = SORT_ALIASES.get(name, name) if name in SORT_ALIASES else name
    if name == "key":
        col = result.keys[0] if result.keys else default
    if col not in result.columns:
        choices = [c for c in result.columns if c not in ("bucket",)] + [a for a in SORT_ALIASES
                                                                        if (SORT_ALIASES[a] in result.columns or a == "key")]
        raise UsageError(f"cannot sort by '{name}'", hint="sort by one of: " + ", ".join(dict.fromkeys(choices)))
    is_key = col in result.keys or col in ("start_trace_id", "start_span_id", "end_trace_id", "end_span_id", "start", "end")

    def keytuple(row):
        return tuple(_sortable(row.get(k)) for k in result.keys)

    def primary(row):
        v = row.get(col)
        if is_key:
            return _sortable(v)
        return (v is None, -(v if isinstance(v, (int, float)) else 0))

    rows = sorted(result.rows, key=lambda r: (primary(r), keytuple(r)), reverse=False)
    if reverse:
        rows.reverse()
    if "_bucket_ns" in (rows[0] if rows else {}):
        rows.sort(key=lambda r: r["_bucket_ns"])  # stable: keeps the order within a bucket
    result.rows[:] = rows


def _sortable(v):
    """A total order over mixed key values: missing last, numbers before text."""
    if v is None:
        return (2, 0, "")
    if isinstance(v, bool):
        return (1, 0, str(v).lower())
    if isinstance(v, (int, float)):
        return (0, v, "")
    return (1, 0, str(v))
