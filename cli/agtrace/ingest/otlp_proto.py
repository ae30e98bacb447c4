"""OTLP protobuf as the Collector file exporter writes it (`format: proto`).

Framing: every message is preceded by its length as 4 bytes, big-endian. With
`compression: zstd` each message is compressed on its own (a zstd frame) and
then length-prefixed; such a frame holds protobuf, or JSON when the exporter's
format is json. A plain zstd stream of the whole file is decompressed by the
loader before detection, so it arrives here as the uncompressed framing.

The messages are ExportTraceServiceRequest / TracesData (the same wire
layout). The decoder is written by hand for the few OTLP trace messages, so
agtrace needs no protobuf runtime: ResourceSpans -> ScopeSpans (or the legacy
InstrumentationLibrarySpans, field 1000) -> Span, with KeyValue / AnyValue,
Event, Link and Status. Unknown fields are skipped, as protobuf requires. A
message that cannot be decoded is one bad record (its number is the "line");
the framing lets reading go on with the next one.
"""

from __future__ import annotations

import base64
import math
import struct

from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import KINDS, BadRecord

FORMAT = "otlp-proto"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_MESSAGE = 1 << 27  # 128 MiB: larger "lengths" are text, not framing
_STATUS = ("unset", "ok", "error")
_DOUBLE = struct.Struct("<d")


class _Truncated(BadRecord):
    pass


def sniff(head: bytes) -> bool:
    """A 4-byte big-endian length, then a protobuf field 1 (0x0A) or a zstd frame."""
    if len(head) < 5:
        return False
    n = int.from_bytes(head[:4], "big")
    if not 0 < n <= _MAX_MESSAGE:
        return False
    if head[4:8] == ZSTD_MAGIC:
        return True
    return head[4] == 0x0A


# -- wire format -----------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BadRecord("malformed varint")


def _skip(buf: bytes, pos: int, wt: int) -> int:
    if wt == 0:
        return _varint(buf, pos)[1]
    if wt == 1:
        return pos + 8
    if wt == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wt == 5:
        return pos + 4
    raise BadRecord(f"unsupported protobuf wire type {wt}")


def _fields(buf: bytes, pos: int, end: int):
    """Yield (field, wire_type, value, pos_after): value is an int, or (start, stop) for wire type 2."""
    while pos < end:
        key, pos = _varint(buf, pos)
        fn = key >> 3
        wt = key & 7
        if wt == 2:
            n, pos = _varint(buf, pos)
            stop = pos + n
            if stop > end:
                raise _Truncated("length-delimited field runs past its message")
            yield fn, wt, (pos, stop)
            pos = stop
        elif wt == 0:
            v, pos = _varint(buf, pos)
            yield fn, wt, v
        elif wt == 1:
            if pos + 8 > end:
                raise _Truncated("fixed64 field runs past its message")
            yield fn, wt, int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == 5:
            if pos + 4 > end:
                raise _Truncated("fixed32 field runs past its message")
            yield fn, wt, int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise BadRecord(f"unsupported protobuf wire type {wt}")
    if pos != end:
        raise _Truncated("field runs past its message")


def _str(buf: bytes, se) -> str:
    return buf[se[0]:se[1]].decode("utf-8", "replace")


_MAX_DEPTH = 64


def _any_value(buf: bytes, start: int, end: int, depth: int = 0):
    """AnyValue -> plain JSON value (kvlist -> dict, array -> list, bytes -> base64 text)."""
    if depth > _MAX_DEPTH:
        raise BadRecord(f"attribute value nested more than {_MAX_DEPTH} levels deep")
    value = None
    for fn, wt, v in _fields(buf, start, end):
        if fn == 1 and wt == 2:
            value = _str(buf, v)
        elif fn == 2 and wt == 0:
            value = bool(v)
        elif fn == 3 and wt == 0:
            value = v - (1 << 64) if v >= 1 << 63 else v
        elif fn == 4 and wt == 1:
            d = _DOUBLE.unpack(v.to_bytes(8, "little"))[0]
            value = None if math.isnan(d) or math.isinf(d) else d
        elif fn == 5 and wt == 2:
            value = [_any_value(buf, v2[0], v2[1], depth + 1)
                     for f2, w2, v2 in _fields(buf, v[0], v[1]) if f2 == 1 and w2 == 2]
        elif fn == 6 and wt == 2:
            value = _kv_list(buf, v[0], v[1], 1, depth + 1)
        elif fn == 7 and wt == 2:
            value = base64.b64encode(buf[v[0]:v[1]]).decode()
    return value


def _key_value(buf: bytes, start: int, end: int, out: dict, depth: int = 0) -> None:
    key = None
    value = None
    for fn, wt, v in _fields(buf, start, end):
        if fn == 1 and wt == 2:
            key = _str(buf, v)
        elif fn == 2 and wt == 2:
            value = _any_value(buf, v[0], v[1], depth)
    if key is not None:
        out[key] = value


def _kv_list(buf: bytes, start: int, end: int, field: int, depth: int = 0) -> dict:
    """The repeated KeyValue `field` of a message -> dict (later keys win)."""
    out: dict = {}
    for fn, wt, v in _fields(buf, start, end):
        if fn == field and wt == 2:
            _key_value(buf, v[0], v[1], out, depth)
    return out


def _hex_id(buf: bytes, se, nbytes: int, what: str, allow_empty: bool) -> str | None:
    raw = buf[se[0]:se[1]]
    if not raw or (allow_empty and not any(raw)):
        if allow_empty:
            return None
        raise BadRecord(f"missing {what}")
    if len(raw) != nbytes:
        raise BadRecord(f"{what} has {len(raw)} bytes, not {nbytes}")
    return raw.hex()


# -- messages --------------------------------------------------------------
def _first_item(buf: bytes) -> tuple[int, int] | None:
    """Bounds of the first span / metric / log record of a request, if any."""
    for fn, wt, v in _fields(buf, 0, len(buf)):
        if fn == 1 and wt == 2:
            for f2, w2, v2 in _fields(buf, v[0], v[1]):
                if f2 in (2, 1000) and w2 == 2:
                    for f3, w3, v3 in _fields(buf, v2[0], v2[1]):
                        if f3 == 2 and w3 == 2:
                            return v3
    return None


def signal(buf: bytes) -> str | None:
    """"traces", "metrics" or "logs": the three OTLP requests share field numbers
    down to their items, so the first item's own fields decide."""
    item = _first_item(buf)
    if item is None:
        return None
    shape = {}
    for fn, wt, v in _fields(buf, item[0], item[1]):
        shape.setdefault(fn, (wt, v[1] - v[0] if wt == 2 else None))
    if shape.get(1) == (2, 16) and shape.get(2) == (2, 8):
        return "traces"
    if shape.get(1, (None,))[0] == 1 or shape.get(11, (None,))[0] == 1:
        return "logs"  # LogRecord: fixed64 time_unix_nano / observed_time_unix_nano
    if shape.get(1, (None,))[0] == 2 and any(shape.get(f, (None,))[0] == 2 for f in (5, 7, 9, 10, 11)):
        return "metrics"  # Metric: name, then gauge / sum / histogram / summary
    return None


def decode_request(buf: bytes, line: int, ctx: ReadContext) -> None:
    """ExportTraceServiceRequest / TracesData -> spans in the sink."""
    for fn, wt, v in _fields(buf, 0, len(buf)):
        if fn == 1 and wt == 2:
            _resource_spans(buf, v[0], v[1], line, ctx)


def _resource_spans(buf: bytes, start: int, end: int, line: int, ctx: ReadContext) -> None:
    rattrs: dict = {}
    scopes = []
    for fn, wt, v in _fields(buf, start, end):
        if fn == 1 and wt == 2:
            rattrs = _kv_list(buf, v[0], v[1], 1)
        elif (fn == 2 or fn == 1000) and wt == 2:
            scopes.append(v)
    rid, service = ctx.sink.resource(rattrs)
    for s, e in scopes:
        sname = sver = None
        spans = []
        for fn, wt, v in _fields(buf, s, e):
            if fn == 1 and wt == 2:
                for f2, w2, v2 in _fields(buf, v[0], v[1]):
                    if f2 == 1 and w2 == 2:
                        sname = _str(buf, v2) or None
                    elif f2 == 2 and w2 == 2:
                        sver = _str(buf, v2) or None
            elif fn == 2 and wt == 2:
                spans.append(v)
        for ss, se in spans:
            try:
                _span(buf, ss, se, line, ctx, rid, service, sname, sver)
            except (BadRecord, IndexError) as exc:
                ctx.bad(line, f"span: {exc}" if isinstance(exc, BadRecord) else "span: truncated field")


def _span(buf: bytes, start: int, end: int, line: int, ctx: ReadContext, rid, service, sname, sver) -> None:
    trace_id = span_id = parent = None
    name = ""
    kind = "unspecified"
    start_ns = end_ns = None
    attrs: dict = {}
    events = None
    links = None
    status = "unset"
    message = None
    raw_ids = {}
    for fn, wt, v in _fields(buf, start, end):
        if wt == 2:
            if fn == 1 or fn == 2 or fn == 4:
                raw_ids[fn] = v
            elif fn == 5:
                name = _str(buf, v)
            elif fn == 9:
                _key_value(buf, v[0], v[1], attrs)
            elif fn == 11:
                if events is None:
                    events = []
                events.append(_event(buf, v[0], v[1]))
            elif fn == 13:
                if links is None:
                    links = []
                links.append(v)
            elif fn == 15:
                for f2, w2, v2 in _fields(buf, v[0], v[1]):
                    if f2 == 2 and w2 == 2:
                        message = _str(buf, v2) or None
                    elif f2 == 3 and w2 == 0:
                        status = _STATUS[v2] if v2 < 3 else "unset"
        elif wt == 1:
            if fn == 7:
                start_ns = v - (1 << 64) if v >= 1 << 63 else v
            elif fn == 8:
                end_ns = v - (1 << 64) if v >= 1 << 63 else v
        elif wt == 0 and fn == 6:
            kind = KINDS[v] if v < len(KINDS) else "unspecified"
    if 1 not in raw_ids:
        raise BadRecord("missing traceId")
    if 2 not in raw_ids:
        raise BadRecord("missing spanId")
    trace_id = _hex_id(buf, raw_ids[1], 16, "traceId", False)
    span_id = _hex_id(buf, raw_ids[2], 8, "spanId", False)
    if 4 in raw_ids:
        parent = _hex_id(buf, raw_ids[4], 8, "parentSpanId", True)
    if links:
        decoded = []
        for s, e in links:
            try:
                decoded.append(_link(buf, s, e))
            except BadRecord as exc:
                ctx.warn(line, f"span {span_id}: link dropped: {exc}")
        links = decoded or None
    ctx.sink.add_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_ns=start_ns or None,
        end_ns=end_ns or None,
        status=status,
        status_message=message,
        attributes=attrs,
        resource_id=rid,
        service=service,
        scope_name=sname,
        scope_version=sver,
        events=events,
        links=links,
        line=line,
    )


def _event(buf: bytes, start: int, end: int) -> dict:
    t = None
    name = None
    attrs: dict = {}
    for fn, wt, v in _fields(buf, start, end):
        if fn == 1 and wt == 1:
            t = v
        elif fn == 2 and wt == 2:
            name = _str(buf, v)
        elif fn == 3 and wt == 2:
            _key_value(buf, v[0], v[1], attrs)
    return {"name": name, "time_ns": t, "attributes": attrs}


def _link(buf: bytes, start: int, end: int) -> dict:
    tid = sid = None
    attrs: dict = {}
    for fn, wt, v in _fields(buf, start, end):
        if fn == 1 and wt == 2:
            tid = _hex_id(buf, v, 16, "link traceId", False)
        elif fn == 2 and wt == 2:
            sid = _hex_id(buf, v, 8, "link spanId", False)
        elif fn == 4 and wt == 2:
            _key_value(buf, v[0], v[1], attrs)
    if tid is None or sid is None:
        raise BadRecord("link without traceId or spanId")
    return {"trace_id": tid, "span_id": sid, "attributes": attrs}


# -- framing ---------------------------------------------------------------
def _decompress(body: bytes) -> bytes:
    import zstandard

    dobj = zstandard.ZstdDecompressor().decompressobj()
    out = dobj.decompress(body)
    if not dobj.eof:
        raise ValueError("the frame is cut short")
    return out


def read(stream, ctx: ReadContext) -> None:
    """Read length-prefixed messages until the end of `stream`."""
    from agtrace.ingest import formats  # formats imports this module

    seen: set[str] = set()
    n = 0
    while True:
        head = stream.read(4)
        if not head:
            return
        n += 1
        if len(head) < 4:
            ctx.bad(n, "truncated length prefix at the end of the file")
            return
        size = int.from_bytes(head, "big")
        if size > _MAX_MESSAGE:
            ctx.bad(n, f"message {n}: length {size} is not plausible; the rest of the file is not read")
            return
        body = stream.read(size)
        if len(body) < size:
            ctx.bad(n, f"message {n} is cut short ({len(body)} of {size} bytes)")
            return
        try:
            if body[:4] == ZSTD_MAGIC:
                body = _decompress(body)
        except Exception as exc:  # zstandard.ZstdError, or cut short
            ctx.bad(n, f"message {n}: zstd frame is corrupt ({str(exc).strip() or type(exc).__name__})")
            continue
        if body[:1] in (b"{", b"["):  # compression with `format: json` frames JSON (no lstrip: 0x0A opens protobuf)
            from agtrace.ingest.sources import parse_json

            try:
                doc = parse_json(body)
            except ValueError as exc:
                ctx.bad(n, f"message {n}: {exc}")
                continue
            try:
                if not formats.dispatch(doc, n, ctx, seen):
                    ctx.bad(n, f"message {n}: JSON in no known trace format")
            except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as exc:
                ctx.bad(n, f"message {n}: record not readable: {type(exc).__name__}: {exc}")
            continue
        ctx.stats.documents += 1
        try:
            kind = signal(body)
            if kind in ("metrics", "logs"):
                ctx.stats.other_signals += 1
                continue
            decode_request(body, n, ctx)
        except (BadRecord, IndexError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, BadRecord) else "truncated field"
            ctx.bad(n, f"message {n} is not an OTLP trace request ({reason})")
