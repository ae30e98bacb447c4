"""The spans behind `agtrace query`: select, count, shape rows.

Rows in the documented JSON shape (the same one the flat JSONL reader loads,
so `query --format jsonl` output loads back), or only the columns a user
picked with `-c`, read through the filter language's field table so that a
column means what the same name means in a filter.
"""

from __future__ import annotations

import orjson

from agtrace.query import compile_filter, field_expr, field_info, field_numeric_expr
from agtrace.timeutil import format_time

# The documented row of `query --format json|jsonl` (and what `load` reads back).
FULL_COLUMNS = [
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service", "agent", "type",
    "start", "end", "duration_ms", "status", "status_message", "attributes", "events", "links",
    "resource", "scope",
]
TABLE_COLUMNS = ["trace_id", "span_id", "name", "agent", "type", "start", "duration_ms", "status"]

_FULL_SQL = """
    s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.service, s.agent, s.type,
    s.start_ns, s.end_ns, s.duration_ns, s.status, s.status_message, s.attributes, s.events,
    (SELECT list({'trace_id': l.linked_trace_id, 'span_id': l.linked_span_id, 'attributes': l.attributes}
                 ORDER BY l.idx) FROM links l WHERE l.sid = s.sid) AS links,
    (SELECT r.attributes FROM resources r WHERE r.resource_id = s.resource_id LIMIT 1) AS resource,
    s.scope_name
"""


def _loads(text):
    return orjson.loads(text) if text else None


def _full_row(r) -> dict:
    events = _loads(r[14]) or []
    for ev in events:
        if isinstance(ev, dict) and "time_ns" in ev:
            ev["time"] = format_time(ev.pop("time_ns"))
    links = []
    for ln in r[15] or []:
        d = {"trace_id": ln["trace_id"], "span_id": ln["span_id"]}
        if ln["attributes"]:
            d["attributes"] = orjson.loads(ln["attributes"])
        links.append(d)
    return {
        "trace_id": r[0], "span_id": r[1], "parent_span_id": r[2], "name": r[3], "kind": r[4],
        "service": r[5], "agent": r[6], "type": r[7],
        "start": format_time(r[8]), "end": format_time(r[9]),
        "duration_ms": r[10] / 1e6 if r[10] is not None else None,
        "status": r[11], "status_message": r[12], "attributes": _loads(r[13]) or {},
        "events": events, "links": links, "resource": _loads(r[16]) or {}, "scope": r[17],
    }


def _order_sql(sort: list[str]) -> tuple[str, list]:
    """`--sort name`, `--sort -duration_ms` (descending) -> ORDER BY text + params."""
    parts, params = [], []
    for key in sort:
        desc = key.startswith("-")
        name = key[1:] if desc else key
        # Numbers sort as numbers (attributes are text with a numeric twin), then text.
        nsql, np_ = field_numeric_expr(name)
        sql, p = field_expr(name)
        d = "DESC" if desc else "ASC"
        parts.append(f"({nsql}) {d} NULLS LAST, ({sql}) {d} NULLS LAST")
        params.extend(np_)
        params.extend(p)
    parts.append("s.start_ns ASC, s.trace_id, s.span_id")
    return ", ".join(parts), params


def count_spans(con, where: str | None) -> int:
    flt = compile_filter(where)
    return con.execute(f"SELECT count(*) FROM spans s WHERE {flt.sql}", flt.params).fetchone()[0]


def select_spans(con, where: str | None, *, columns: list[str] | None = None, sort: list[str] = (),
                 limit: int | None = None) -> tuple[list[dict], list[str]]:
    """Matching spans as rows, and the column names in order.

    Without `columns` the rows have the full documented shape; with them, one
    key per requested field (intrinsics formatted as in the full row: times
    ISO-8601, durations in ms; attributes as their first value, typed).
    """
    flt = compile_filter(where)
    order, order_params = _order_sql(list(sort))
    lim = f"LIMIT {int(limit)}" if limit is not None else ""
    if not columns:
        sql = f"SELECT {_FULL_SQL} FROM spans s WHERE {flt.sql} ORDER BY {order} {lim}"
        rows = con.execute(sql, flt.params + order_params).fetchall()
        return [_full_row(r) for r in rows], list(FULL_COLUMNS)
    exprs, params, shapers = [], [], []
    for name in columns:
        info = field_info(name)
        if info.kind == "attribute":
            # Typed: the number when the value is numeric, else the text.
            sql, p = field_expr(name)
            nsql, np_ = field_numeric_expr(name)
            exprs.append(f"({sql})")
            exprs.append(f"({nsql})")
            params.extend(p)
            params.extend(np_)
            shapers.append(("attr", name))
            continue
        sql, p = field_expr(name)
        exprs.append(f"({sql})")
        params.extend(p)
        shapers.append((info.kind if info.unit != "ns" or info.kind != "duration" else "duration_ns", name))
    rows = con.execute(
        f"SELECT {', '.join(exprs)} FROM spans s WHERE {flt.sql} ORDER BY {order} {lim}",
        params + flt.params + order_params,
    ).fetchall()
    out = []
    for r in rows:
        d, i = {}, 0
        for kind, name in shapers:
            v = r[i]
            i += 1
            if kind == "attr":
                num = r[i]
                i += 1
                if num is not None and v is not None and _is_number_text(v):
                    v = int(num) if num == int(num) and "." not in v and "e" not in v.lower() else num
                elif v in ("true", "false"):
                    v = v == "true"
            elif kind == "time":
                v = format_time(v)
            elif kind == "duration_ns":
                v = v / 1e6 if v is not None else None
            d[name] = v
        out.append(d)
    return out, list(columns)


def _is_number_text(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
