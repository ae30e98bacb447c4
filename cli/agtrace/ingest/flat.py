"""agtrace's own flat JSONL span dump: one span object per line.

Fields (documented in the README): trace_id, span_id, parent_span_id, name,
kind, start (ISO-8601 or epoch number), end or duration_ms, status (word or
{code, message}), status_message, service, resource, attributes, events
[{name, time, attributes}], links [{trace_id, span_id, attributes}].
`agtrace query --format jsonl` writes this form, so its output loads back.
"""

from __future__ import annotations

import math

from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import BadRecord, clean_json, norm_id, norm_kind, norm_status
from agtrace.timeutil import epoch_number_to_ns, parse_iso_ns

FORMAT = "agtrace-jsonl"


def is_span(doc) -> bool:
    return isinstance(doc, dict) and "trace_id" in doc and "span_id" in doc and "context" not in doc


def _time(value, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRecord(f"{what} is a boolean")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise BadRecord(f"{what} is {value}")
        return epoch_number_to_ns(value)
    if isinstance(value, str):
        s = value.strip()
        try:
            return epoch_number_to_ns(float(s)) if "." in s else epoch_number_to_ns(int(s))
        except ValueError:
            pass
        ns = parse_iso_ns(s)
        if ns is None:
            raise BadRecord(f"{what} {value!r} is not an ISO-8601 time or an epoch number")
        return ns
    raise BadRecord(f"{what} is not a time")


def read_span(doc: dict, line: int, ctx: ReadContext) -> None:
    trace_id = norm_id(doc.get("trace_id"), nbytes=16, what="trace_id")
    span_id = norm_id(doc.get("span_id"), nbytes=8, what="span_id")
    parent = norm_id(doc.get("parent_span_id"), nbytes=8, what="parent_span_id", allow_empty=True)
    start = _time(doc.get("start", doc.get("start_time")), "start")
    end = _time(doc.get("end", doc.get("end_time")), "end")
    if end is None and doc.get("duration_ms") is not None and start is not None:
        d = doc["duration_ms"]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or (isinstance(d, float) and not math.isfinite(d)):
            raise BadRecord("duration_ms is not a number")
        end = start + int(round(d * 1_000_000))
    status = doc.get("status")
    message = doc.get("status_message")
    if isinstance(status, dict):
        message = message or status.get("message") or status.get("description")
        status = status.get("code", status.get("status_code"))
    attrs = doc.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise BadRecord("attributes is not an object")
    resource = doc.get("resource") if isinstance(doc.get("resource"), dict) else {}
    svc = doc.get("service")
    rid, service = ctx.sink.resource(clean_json(resource), service=svc if isinstance(svc, str) else None)
    events = None
    if isinstance(doc.get("events"), list) and doc["events"]:
        events = []
        for ev in doc["events"]:
            if isinstance(ev, dict):
                try:
                    t = _time(ev.get("time", ev.get("time_ns", ev.get("timestamp"))), "event time")
                except BadRecord:
                    t = None
                events.append({"name": ev.get("name"), "time_ns": t, "attributes": clean_json(a) if isinstance(a := ev.get("attributes"), dict) else {}})
    links = None
    if isinstance(doc.get("links"), list) and doc["links"]:
        links = []
        for ln in doc["links"]:
            if not isinstance(ln, dict):
                continue
            try:
                links.append({
                    "trace_id": norm_id(ln.get("trace_id"), nbytes=16, what="link trace_id"),
                    "span_id": norm_id(ln.get("span_id"), nbytes=8, what="link span_id"),
                    "attributes": clean_json(ln.get("attributes") or {}),
                    "ref_type": ln.get("ref_type"),
                })
            except BadRecord as exc:
                ctx.warn(line, f"span {span_id}: link dropped: {exc}")
    ctx.sink.add_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=doc.get("name") or "",
        kind=norm_kind(doc.get("kind")),
        start_ns=start,
        end_ns=end,
        status=norm_status(status),
        status_message=message if isinstance(message, str) and message else None,
        attributes=clean_json(attrs),
        resource_id=rid,
        service=service,
        scope_name=doc.get("scope") if isinstance(doc.get("scope"), str) else None,
        events=events,
        links=links,
        line=line,
    )
