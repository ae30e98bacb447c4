"""Resolving what users type into ids: trace id prefixes, like short git hashes."""

from __future__ import annotations

from agtrace.errors import NotFoundError, UsageError


def resolve_trace_id(con, text: str) -> str:
    """A full trace id from a unique prefix (case-insensitive, `0x` allowed)."""
    prefix = text.strip().lower()
    if prefix.startswith("0x"):
        prefix = prefix[2:]
    if not prefix:
        raise UsageError("empty trace id", hint="list traces with `agtrace traces`")
    exact = con.execute("SELECT trace_id FROM traces WHERE trace_id = ?", [prefix]).fetchone()
    if exact:
        return exact[0]
    rows = con.execute(
        "SELECT trace_id, root_name FROM traces WHERE starts_with(trace_id, ?) ORDER BY trace_id LIMIT 11",
        [prefix],
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no trace with id {text!r} in the store", hint="list the loaded traces with `agtrace traces`")
    if len(rows) > 1:
        listing = "\n".join(f"  {tid}  {name or ''}" for tid, name in rows[:10])
        more = "\n  ..." if len(rows) > 10 else ""
        raise NotFoundError(
            f"trace id prefix {text!r} is ambiguous; candidates:\n{listing}{more}",
            hint="give more characters of the id",
        )
    return rows[0][0]


def resolve_span_id(con, trace_id: str, text: str) -> str:
    """A span id of `trace_id` from a unique prefix."""
    prefix = text.strip().lower()
    if prefix.startswith("0x"):
        prefix = prefix[2:]
    rows = con.execute(
        "SELECT DISTINCT span_id FROM spans WHERE trace_id = ? AND starts_with(span_id, ?) ORDER BY 1 LIMIT 11",
        [trace_id, prefix],
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no span with id {text!r} in trace {trace_id}", hint=f"see the spans with `agtrace show {trace_id[:12]}`")
    if len(rows) > 1 and not any(r[0] == prefix for r in rows):
        raise NotFoundError(
            f"span id prefix {text!r} is ambiguous in trace {trace_id}: " + ", ".join(r[0] for r in rows[:10]),
            hint="give more characters of the span id",
        )
    return prefix if any(r[0] == prefix for r in rows) else rows[0][0]
