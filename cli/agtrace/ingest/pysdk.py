"""OpenTelemetry Python SDK span JSON (`ReadableSpan.to_json()`).

What ConsoleSpanExporter prints and what many "span dump" tools write: ids as
"0x…" hex, bare hex or (128-bit) decimal integers, ISO-8601 or integer-ns times,
`SpanKind.INTERNAL`-style kinds, plain-JSON attributes and resources.
"""

from __future__ import annotations

from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import BadRecord, clean_json, norm_id, norm_kind, norm_status, to_int
from agtrace.timeutil import parse_iso_ns

FORMAT = "otel-python-sdk"


def is_span(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("context"), dict) and "name" in doc


def time_ns(value, what: str) -> int | None:
    """ISO-8601 text, integer ns (number or digits) -> ns."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        s = value.strip()
        if s.lstrip("-").isdigit():
            return int(s)
        ns = parse_iso_ns(s)
        if ns is None:
            raise BadRecord(f"{what} {value!r} is not an ISO-8601 time or integer nanoseconds")
        return ns
    return to_int(value, what)


def read_span(doc: dict, line: int, ctx: ReadContext) -> None:
    c = doc.get("context") or {}
    trace_id = norm_id(c.get("trace_id"), nbytes=16, what="context.trace_id")
    span_id = norm_id(c.get("span_id"), nbytes=8, what="context.span_id")
    parent = doc.get("parent_id")
    if parent is None and isinstance(doc.get("parent"), dict):
        parent = doc["parent"].get("span_id")
    parent = norm_id(parent, nbytes=8, what="parent_id", allow_empty=True)
    status = doc.get("status") or {}
    if not isinstance(status, dict):
        status = {"status_code": status}
    res = doc.get("resource") or {}
    rattrs = res.get("attributes", res) if isinstance(res, dict) else {}
    if not isinstance(rattrs, dict):
        rattrs = {}
    rid, service = ctx.sink.resource(clean_json(rattrs))
    attrs = doc.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise BadRecord("attributes is not an object")
    events = None
    if doc.get("events") and isinstance(doc["events"], list):
        events = []
        for ev in doc["events"]:
            if isinstance(ev, dict):
                try:
                    t = time_ns(ev.get("timestamp"), "event timestamp")
                except BadRecord:
                    t = None
                events.append({"name": ev.get("name"), "time_ns": t, "attributes": clean_json(a) if isinstance(a := ev.get("attributes"), dict) else {}})
    links = None
    if doc.get("links") and isinstance(doc["links"], list):
        links = []
        for ln in doc["links"]:
            if not isinstance(ln, dict):
                continue
            lc = ln.get("context") if isinstance(ln.get("context"), dict) else {}
            try:
                links.append({
                    "trace_id": norm_id(lc.get("trace_id"), nbytes=16, what="link trace_id"),
                    "span_id": norm_id(lc.get("span_id"), nbytes=8, what="link span_id"),
                    "attributes": clean_json(ln.get("attributes") or {}),
                })
            except BadRecord as exc:
                ctx.warn(line, f"span {span_id}: link dropped: {exc}")
    ctx.sink.add_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=doc.get("name") or "",
        kind=norm_kind(doc.get("kind")),
        start_ns=time_ns(doc.get("start_time"), "start_time"),
        end_ns=time_ns(doc.get("end_time"), "end_time"),
        status=norm_status(status.get("status_code")),
        status_message=status.get("description") or None,
        attributes=clean_json(attrs),
        resource_id=rid,
        service=service,
        scope_name=(doc.get("instrumentation_scope") or {}).get("name") if isinstance(doc.get("instrumentation_scope"), dict) else None,
        events=events,
        links=links,
        line=line,
    )
