"""OTLP/JSON (ExportTraceServiceRequest) in all the framings seen in the wild.

`resourceSpans` / `resource_spans`, Tempo's `batches`, Jaeger API v3's
`{"result": ...}`, legacy `instrumentationLibrarySpans`; hex or base64 ids;
int64 as strings or numbers; kinds and status codes as numbers or names.
"""

from __future__ import annotations

from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import BadRecord, kv_list, norm_id, norm_kind, norm_status, to_int

FORMAT = "otlp-json"


def _get(d: dict, camel: str, snake: str):
    v = d.get(camel)
    return d.get(snake) if v is None else v


def is_request(doc) -> bool:
    return isinstance(doc, dict) and (
        "resourceSpans" in doc or "resource_spans" in doc or "batches" in doc
        or (isinstance(doc.get("result"), dict) and ("resourceSpans" in doc["result"] or "resource_spans" in doc["result"]))
    )


def is_other_signal(doc) -> bool:
    return isinstance(doc, dict) and any(
        k in doc for k in ("resourceMetrics", "resourceLogs", "resource_metrics", "resource_logs", "resourceProfiles")
    )


def read_request(doc: dict, line: int, ctx: ReadContext) -> None:
    if "result" in doc and isinstance(doc["result"], dict):
        doc = doc["result"]
    rss = _get(doc, "resourceSpans", "resource_spans")
    if rss is None:
        rss = doc.get("batches")
    if not isinstance(rss, list):
        raise BadRecord("resourceSpans is not a list")
    sink = ctx.sink
    for rs in rss:
        if not isinstance(rs, dict):
            ctx.bad(line, "resourceSpans entry is not an object")
            continue
        res = rs.get("resource") or {}
        rattrs = kv_list(res.get("attributes")) if isinstance(res, dict) else {}
        rid, service = sink.resource(rattrs)
        scopes = _get(rs, "scopeSpans", "scope_spans")
        if scopes is None:
            scopes = _get(rs, "instrumentationLibrarySpans", "instrumentation_library_spans") or []
        if not isinstance(scopes, list):
            ctx.bad(line, "scopeSpans is not a list")
            continue
        for ss in scopes:
            if not isinstance(ss, dict):
                ctx.bad(line, "scopeSpans entry is not an object")
                continue
            scope = ss.get("scope") or ss.get("instrumentationLibrary") or ss.get("instrumentation_library") or {}
            sname = scope.get("name") if isinstance(scope, dict) else None
            sver = scope.get("version") if isinstance(scope, dict) else None
            spans = ss.get("spans") or []
            if not isinstance(spans, list):
                ctx.bad(line, "spans is not a list")
                continue
            for sp in spans:
                try:
                    _read_span(sp, line, ctx, rid, service, sname or None, sver or None)
                except BadRecord as exc:
                    ctx.bad(line, str(exc))


def _read_span(sp, line: int, ctx: ReadContext, rid, service, sname, sver) -> None:
    if not isinstance(sp, dict):
        raise BadRecord("span is not an object")
    trace_id = norm_id(_get(sp, "traceId", "trace_id"), nbytes=16, what="traceId")
    span_id = norm_id(_get(sp, "spanId", "span_id"), nbytes=8, what="spanId")
    parent = norm_id(_get(sp, "parentSpanId", "parent_span_id"), nbytes=8, what="parentSpanId", allow_empty=True)
    status = sp.get("status") or {}
    if not isinstance(status, dict):
        status = {}
    events = None
    raw_events = sp.get("events")
    if raw_events and isinstance(raw_events, list):
        events = []
        for ev in raw_events:
            if isinstance(ev, dict):
                try:
                    t = to_int(_get(ev, "timeUnixNano", "time_unix_nano"), "event time")
                except BadRecord as exc:  # a bad event time does not cost the span
                    ctx.warn(line, f"span {span_id}: {exc}, event kept without a time")
                    t = None
                events.append({"name": ev.get("name"), "time_ns": t, "attributes": kv_list(ev.get("attributes"))})
    links = None
    raw_links = sp.get("links")
    if raw_links and isinstance(raw_links, list):
        links = []
        for ln in raw_links:
            if not isinstance(ln, dict):
                continue
            try:
                links.append({
                    "trace_id": norm_id(_get(ln, "traceId", "trace_id"), nbytes=16, what="link traceId"),
                    "span_id": norm_id(_get(ln, "spanId", "span_id"), nbytes=8, what="link spanId"),
                    "attributes": kv_list(ln.get("attributes")),
                })
            except BadRecord as exc:
                ctx.warn(line, f"span {span_id}: link dropped: {exc}")
    ctx.sink.add_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent if parent != span_id else parent,
        name=sp.get("name") or "",
        kind=norm_kind(sp.get("kind")),
        start_ns=to_int(_get(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end_ns=to_int(_get(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        status=norm_status(status.get("code")),
        status_message=status.get("message") or None,
        attributes=kv_list(sp.get("attributes")),
        resource_id=rid,
        service=service,
        scope_name=sname,
        scope_version=sver,
        events=events,
        links=links,
        line=line,
    )
