"""The list of traces behind `agtrace traces` (and `query --traces`)."""

from __future__ import annotations

from agtrace.timeutil import format_time

SORTS = {
    "start": "t.start_ns ASC",
    "duration": "t.duration_ns DESC",
    "errors": "t.error_count DESC",
    "spans": "t.span_count DESC",
    "name": "t.root_name ASC",
}
SORTS_REVERSED = {
    "start": "t.start_ns DESC",
    "duration": "t.duration_ns ASC",
    "errors": "t.error_count ASC",
    "spans": "t.span_count ASC",
    "name": "t.root_name DESC",
}
COLUMNS = ["trace_id", "root_name", "start", "duration_ms", "span_count", "error_count", "agents"]


def list_traces(con, *, where_sql: str | None = None, params=(), sort: str = "start",
                reverse: bool = False, limit: int | None = None) -> tuple[list[dict], int]:
    """Rows for the matching traces and the total number that matched.

    `where_sql` is a compiled span filter over alias `s`: a trace matches when
    at least one of its spans does.
    """
    order = (SORTS_REVERSED if reverse else SORTS)[sort]
    cond = ""
    args: list = []
    if where_sql:
        cond = f"WHERE t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {where_sql})"
        args = list(params)
    total = con.execute(f"SELECT count(*) FROM traces t {cond}", args).fetchone()[0]
    lim = f"LIMIT {int(limit)}" if limit is not None else ""
    rows = con.execute(
        f"""SELECT t.trace_id, t.root_name, t.start_ns, t.duration_ns, t.span_count, t.error_count, t.agents
            FROM traces t {cond} ORDER BY {order}, t.trace_id {lim}""",
        args,
    ).fetchall()
    out = [
        {
            "trace_id": r[0], "root_name": r[1], "start": format_time(r[2]),
            "duration_ms": round(r[3] / 1e6, 3) if r[3] is not None else None,
            "span_count": r[4], "error_count": r[5], "agents": list(r[6] or []),
        }
        for r in rows
    ]
    return out, total
