"""Zipkin v2 JSON: an array of spans (an API response may be an array of arrays).

Span fields: `traceId`, `id`, `parentId` (absent at a root), `name`, `kind`
(CLIENT, SERVER, PRODUCER, CONSUMER or absent for a local span), `timestamp`
and `duration` in microseconds, `localEndpoint`, `remoteEndpoint`,
`annotations`, `tags` (a string map), `shared`.

Mapping: `tags` are the span attributes, as given; remote endpoint details are
added as `peer.service` / `net.peer.ip` / `net.peer.port` unless a tag has the
key already; `localEndpoint.serviceName` is the service and, with the local
address, the resource. Annotations become events. A client and a server half
sharing one `id` are two spans (they differ by kind; the tree derivation makes
the server half the child of the client half, and the id's children children
of the server half); several server halves of one id (a message received by
several consumers) differ by start time and are all kept. A missing
`timestamp` is taken from the earliest annotation; a missing `duration` from
the latest one, else it is zero without a warning (Zipkin omits it when
unknown, as for one-way messaging spans); a missing `name` is an empty name.
The `error` tag (and OpenTelemetry's `otel.status_code`) set the status.
"""

from __future__ import annotations

from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import BadRecord, clean_json, loose_id, micros_to_ns, norm_kind, norm_status

FORMAT = "zipkin-json"

_KINDS = {"CLIENT": "client", "SERVER": "server", "PRODUCER": "producer", "CONSUMER": "consumer"}


def matches(doc) -> bool:
    return (
        isinstance(doc, dict) and "traceId" in doc and "id" in doc
        and "spanId" not in doc and "context" not in doc and "operationName" not in doc
    )




def _parent(value) -> str | None:
    if value is None or value == "":
        return None
    s = loose_id(value, what="parentId")
    return None if s.strip("0") == "" else s


def _endpoint_resource(ep, ctx: ReadContext):
    if not isinstance(ep, dict):
        return None, None
    service = ep.get("serviceName")
    service = str(service) if service not in (None, "") else None
    attrs = {}
    if service is not None:
        attrs["service.name"] = service
    for key, attr in (("ipv4", "net.host.ip"), ("ipv6", "net.host.ipv6"), ("port", "net.host.port")):
        v = ep.get(key)
        if v not in (None, ""):
            attrs[attr] = v
    return ctx.sink.resource(clean_json(attrs), service=service)


def read(sp, line: int, ctx: ReadContext) -> None:
    if not isinstance(sp, dict):
        raise BadRecord("Zipkin span is not an object")
    trace_id = loose_id(sp.get("traceId"), what="traceId")
    span_id = loose_id(sp.get("id"), what="id")
    parent = _parent(sp.get("parentId"))
    if parent == span_id:
        parent = None
    tags = sp.get("tags")
    attrs = clean_json(dict(tags)) if isinstance(tags, dict) else {}
    remote = sp.get("remoteEndpoint")
    if isinstance(remote, dict):
        for key, attr in (("serviceName", "peer.service"), ("ipv4", "net.peer.ip"),
                          ("ipv6", "net.peer.ipv6"), ("port", "net.peer.port")):
            v = remote.get(key)
            if v not in (None, "") and attr not in attrs:
                attrs[attr] = clean_json(v)
    events = None
    times = []
    anns = sp.get("annotations")
    if isinstance(anns, list) and anns:
        events = []
        for a in anns:
            if not isinstance(a, dict):
                continue
            try:
                t = micros_to_ns(a.get("timestamp"), "annotation timestamp")
            except BadRecord:
                t = None
            if t is not None:
                times.append(t)
            events.append({"name": str(a.get("value") or ""), "time_ns": t, "attributes": {}})
        events = events or None
    start = micros_to_ns(sp.get("timestamp"), "timestamp")
    dur = micros_to_ns(sp.get("duration"), "duration")
    if start is None and times:
        start = min(times)
    if dur is not None and start is not None:
        end = start + dur
    elif times and start is not None and max(times) > start:
        end = max(times)
    else:
        end = start  # Zipkin leaves duration out when unknown (one-way messaging): zero, no warning
    status = "unset"
    message = None
    if "otel.status_code" in attrs:
        status = norm_status(attrs["otel.status_code"])
        message = attrs.get("otel.status_description")
    if "error" in attrs and status == "unset":
        status = "error"
        err = attrs["error"]
        message = err if isinstance(err, str) and err and err.lower() != "true" else None
    kind = _KINDS.get(str(sp.get("kind") or "").upper()) or norm_kind(sp.get("kind"))
    rid, service = _endpoint_resource(sp.get("localEndpoint"), ctx)
    scope = attrs.get("otel.scope.name", attrs.get("otel.library.name"))
    scope_version = attrs.get("otel.scope.version", attrs.get("otel.library.version"))
    ctx.sink.add_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=sp.get("name") or "",
        kind=kind,
        start_ns=start,
        end_ns=end,
        status=status,
        status_message=message if isinstance(message, str) and message else None,
        attributes=attrs,
        resource_id=rid,
        service=service,
        scope_name=scope if isinstance(scope, str) and scope else None,
        scope_version=scope_version if isinstance(scope_version, str) and scope_version else None,
        events=events,
        links=None,
        line=line,
        # One id and kind can name several spans in Zipkin (a message received
        # by several consumers); the start microsecond tells them apart.
        identity_extra=start // 1000 if start is not None else None,
    )
