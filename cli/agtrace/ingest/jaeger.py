"""Jaeger JSON: the UI's "Download" file, API v1 responses, bare traces and spans.

Shapes read (all detected from content):
- `{"data": [TRACE, ...], "total": .., "errors": ..}` (query API v1, UI download);
- a bare TRACE `{"traceID", "spans": [...], "processes": {"p1": {...}}}`, or an
  array of them;
- an array of spans, each with `processID` or an embedded `process`;
- the protobuf-JSON form of Jaeger's model (`spanId` base64, `operationName`,
  RFC 3339 `startTime`, `"0.0002s"` durations, `vType`/`vStr` tags), bare or as
  `{"result": {"spans": [...]}}` (query API v2 over HTTP).

Mapping: the first CHILD_OF reference into the span's own trace is the parent
(Jaeger's own rule); every other reference, also into other traces, is kept as
a link with ref_type `child_of` / `follows_from`. Times are microseconds. Tags
keep their types (int64 may arrive as strings) and stay span attributes as
given; `span.kind`, `otel.status_code`, `error`, `otel.status_description` and
`otel.scope.*` / `otel.library.*` are also read into the span's kind, status and
scope. Logs become events, named by their `event` field. A process's tags plus
`service.name` form the resource. Ids are kept as written, lowercased when hex:
old fixtures have unpadded (`"2"`) or non-hex ids.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import BadRecord, clean_json, loose_id, micros_to_ns, norm_id, norm_kind, norm_status
from agtrace.timeutil import parse_iso_ns

FORMAT = "jaeger-json"

_API_KEYS = frozenset({"data", "total", "limit", "offset", "errors"})
_HEX_RE = re.compile(r"^(?:0[xX])?[0-9a-fA-F]+$")


# -- detection -------------------------------------------------------------
def _is_span(d) -> bool:
    return isinstance(d, dict) and (
        ("spanID" in d and ("traceID" in d or "operationName" in d))
        or ("spanId" in d and "operationName" in d)
    )


def _is_trace(d) -> bool:
    return isinstance(d, dict) and isinstance(d.get("spans"), list) and ("processes" in d or "traceID" in d)


def matches(doc) -> bool:
    """A Jaeger document: API wrapper, trace, v2 result, or a single span."""
    if not isinstance(doc, dict):
        return False
    data = doc.get("data")
    if isinstance(data, list) and "spans" not in doc:
        if not data:
            return set(doc) <= _API_KEYS
        return all(_is_trace(t) for t in data[:3])
    if _is_trace(doc):
        return True
    res = doc.get("result")
    if isinstance(res, dict) and isinstance(res.get("spans"), list) and res["spans"] and _is_span(res["spans"][0]):
        return True
    return _is_span(doc)


# -- reading ---------------------------------------------------------------
def read(doc, line: int, ctx: ReadContext) -> None:
    if _is_span(doc):
        _read_spans([doc], None, {}, line, ctx)
        return
    data = doc.get("data")
    if isinstance(data, list) and "spans" not in doc:
        for trace in data:
            if isinstance(trace, dict):
                _read_trace(trace, line, ctx)
            else:
                ctx.bad(line, "Jaeger data entry is not a trace object")
        return
    if "result" in doc and "spans" not in doc:
        doc = doc["result"]
    _read_trace(doc, line, ctx)


def _read_trace(trace: dict, line: int, ctx: ReadContext) -> None:
    spans = trace.get("spans")
    if not isinstance(spans, list):
        ctx.bad(line, "Jaeger trace has no spans list")
        return
    procs = trace.get("processes")
    _read_spans(spans, trace.get("traceID"), procs if isinstance(procs, dict) else {}, line, ctx)


def _read_spans(spans: list, trace_id_default, processes: dict, line: int, ctx: ReadContext) -> None:
    resources: dict = {}  # processID -> (resource_id, service)
    for sp in spans:
        try:
            _read_span(sp, trace_id_default, processes, resources, line, ctx)
        except BadRecord as exc:
            ctx.bad(line, str(exc))


def _id(value, what: str, nbytes: int, proto: bool = False) -> str:
    """Ids as written, lowercased when hex; protobuf-JSON (`proto`) base64 ids decoded to hex."""
    if proto and isinstance(value, str) and value and not _HEX_RE.match(value):
        try:
            return norm_id(value, nbytes=nbytes, what=what)
        except BadRecord:
            pass
    return loose_id(value, what=what)


def _parent_id(value, proto: bool) -> str | None:
    if value is None or value == "" or value == 0:
        return None
    s = _id(value, "parentSpanID", 8, proto)
    return None if s.strip("0") == "" else s


def _tag_value(t: dict):
    """A Jaeger tag (v1 `type`/`value` or protobuf-JSON `vType`/`vStr`...) -> plain value."""
    if "vType" in t or "vStr" in t or "vInt64" in t or "vBool" in t or "vFloat64" in t or "vBinary" in t:
        typ = str(t.get("vType") or "STRING").lower()
        v = {"string": t.get("vStr"), "bool": t.get("vBool"), "int64": t.get("vInt64"),
             "float64": t.get("vFloat64"), "binary": t.get("vBinary")}.get(typ, t.get("vStr"))
        if typ == "string" and v is None:
            v = ""
        if typ == "bool" and v is None:
            v = False
        if typ in ("int64", "float64") and v is None:
            v = 0
    else:
        typ = str(t.get("type") or "string").lower()
        v = t.get("value")
    if typ == "bool":
        return v if isinstance(v, bool) else str(v).strip().lower() == "true"
    if typ == "int64":
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        try:
            return int(str(v).strip())
        except ValueError:
            try:
                return int(float(str(v).strip()))
            except ValueError:
                return v
    if typ == "float64":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        try:
            return float(str(v).strip())
        except ValueError:
            return v
    return v


def _tags(tags) -> dict:
    out = {}
    if not isinstance(tags, list):
        return out
    for t in tags:
        if isinstance(t, dict) and t.get("key") is not None:
            out[str(t["key"])] = _tag_value(t)
    return clean_json(out)


def _duration_ns(value, what: str) -> int | None:
    """v1 microseconds, or protobuf-JSON `"1.5s"` -> ns."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().endswith("s"):
        try:
            return int(Decimal(value.strip()[:-1]) * 1_000_000_000)
        except InvalidOperation:
            raise BadRecord(f"{what} {value!r} is not a duration") from None
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise BadRecord(f"{what} {value!r} is not a duration") from None
        return int(value * 1000)
    return micros_to_ns(value, what)


def _resource(sp: dict, processes: dict, cache: dict, ctx: ReadContext):
    proc = sp.get("process")
    pid = sp.get("processID", sp.get("processId"))
    if not isinstance(proc, dict):
        if not isinstance(pid, str):
            return None, None
        key = pid
        if key in cache:
            return cache[key]
        proc = processes.get(pid)
        if not isinstance(proc, dict):
            cache[key] = (None, None)
            return cache[key]
    else:
        key = None
    service = proc.get("serviceName")
    service = str(service) if service is not None and service != "" else None
    attrs = _tags(proc.get("tags"))
    if service is not None and "service.name" not in attrs:
        attrs = {"service.name": service, **attrs}
    res = ctx.sink.resource(attrs, service=service)
    if key is not None:
        cache[key] = res
    return res


def _events(logs) -> list | None:
    if not isinstance(logs, list) or not logs:
        return None
    out = []
    for lg in logs:
        if not isinstance(lg, dict):
            continue
        fields = _tags(lg.get("fields"))
        name = fields.pop("event", None) if isinstance(fields.get("event"), str) else None
        try:
            t = micros_to_ns(lg.get("timestamp"), "log timestamp")
        except BadRecord:
            t = None
        out.append({"name": name or "log", "time_ns": t, "attributes": fields})
    return out or None


def _read_span(sp, trace_id_default, processes: dict, cache: dict, line: int, ctx: ReadContext) -> None:
    if not isinstance(sp, dict):
        raise BadRecord("Jaeger span is not an object")
    proto = "spanID" not in sp  # protobuf-JSON spelling: spanId, base64 ids
    raw_trace = sp.get("traceID", sp.get("traceId", trace_id_default))
    trace_id = _id(raw_trace, "traceID", 16, proto)
    span_id = _id(sp.get("spanID", sp.get("spanId")), "spanID", 8, proto)
    parent = None
    links = []
    refs = sp.get("references")
    if isinstance(refs, list):
        for ref in refs:
            if not isinstance(ref, dict):
                continue
            ref_type = str(ref.get("refType") or "CHILD_OF").upper()
            rtype = "follows_from" if ref_type == "FOLLOWS_FROM" else "child_of"
            try:
                rsid = _id(ref.get("spanID", ref.get("spanId")), "reference spanID", 8, proto)
                rt = ref.get("traceID", ref.get("traceId"))
                rtid = _id(rt, "reference traceID", 16, proto) if rt not in (None, "") else trace_id
            except BadRecord as exc:
                ctx.warn(line, f"span {span_id}: reference dropped: {exc}")
                continue
            if parent is None and rtype == "child_of" and rtid == trace_id and rsid != span_id:
                parent = rsid
                continue
            links.append({"trace_id": rtid, "span_id": rsid, "attributes": None, "ref_type": rtype})
    if parent is None:
        parent = _parent_id(sp.get("parentSpanID", sp.get("parentSpanId")), proto)
        if parent == span_id:
            parent = None
    attrs = _tags(sp.get("tags"))
    kind = norm_kind(attrs.get("span.kind"))
    status = norm_status(attrs.get("otel.status_code")) if "otel.status_code" in attrs else "unset"
    err = attrs.get("error")
    if status == "unset" and (err is True or (isinstance(err, str) and err.lower() == "true")):
        status = "error"
    message = attrs.get("otel.status_description")
    scope_name = attrs.get("otel.scope.name", attrs.get("otel.library.name"))
    scope_version = attrs.get("otel.scope.version", attrs.get("otel.library.version"))
    start = micros_to_ns(sp.get("startTime"), "startTime")
    dur = _duration_ns(sp.get("duration"), "duration")
    rid, service = _resource(sp, processes, cache, ctx)
    ctx.sink.add_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=sp.get("operationName") or "",
        kind=kind,
        start_ns=start,
        end_ns=start + dur if start is not None and dur is not None else None,
        status=status,
        status_message=message if isinstance(message, str) and message else None,
        attributes=attrs,
        resource_id=rid,
        service=service,
        scope_name=scope_name if isinstance(scope_name, str) and scope_name else None,
        scope_version=scope_version if isinstance(scope_version, str) and scope_version else None,
        events=_events(sp.get("logs")),
        links=links or None,
        line=line,
    )
