"""Test helper: OTLP/JSON requests -> protobuf bytes, framed like the Collector file exporter.

A small hand-written encoder (the mirror of agtrace.ingest.otlp_proto) so the
tests can produce protobuf files from the same data they load as JSON, with
no protobuf dependency. Input is the OTLP/JSON form (camelCase keys, hex ids,
int64 as strings or numbers, kinds/status codes as numbers).
"""

from __future__ import annotations

import base64
import struct

_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
          "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def ld(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def vint(field: int, n: int) -> bytes:
    return key(field, 0) + varint(n)


def fixed64(field: int, n: int) -> bytes:
    return key(field, 1) + (n % (1 << 64)).to_bytes(8, "little")


def fixed32(field: int, n: int) -> bytes:
    return key(field, 5) + n.to_bytes(4, "little")


def s(field: int, text: str) -> bytes:
    return ld(field, text.encode())


def any_value(v: dict) -> bytes:
    if "stringValue" in v:
        return s(1, v["stringValue"])
    if "boolValue" in v:
        return vint(2, 1 if v["boolValue"] else 0)
    if "intValue" in v:
        return vint(3, int(v["intValue"]))
    if "doubleValue" in v:
        d = v["doubleValue"]
        d = float(d) if not isinstance(d, str) else float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(d, d))
        return key(4, 1) + struct.pack("<d", d)
    if "arrayValue" in v:
        return ld(5, b"".join(ld(1, any_value(x)) for x in (v["arrayValue"].get("values") or [])))
    if "kvlistValue" in v:
        return ld(6, b"".join(ld(1, key_value(x)) for x in (v["kvlistValue"].get("values") or [])))
    if "bytesValue" in v:
        return ld(7, base64.b64decode(v["bytesValue"]))
    return b""


def key_value(kv: dict) -> bytes:
    return s(1, kv["key"]) + ld(2, any_value(kv.get("value") or {}))


def attrs(field: int, kvs) -> bytes:
    return b"".join(ld(field, key_value(kv)) for kv in (kvs or []))


def span(sp: dict) -> bytes:
    out = ld(1, bytes.fromhex(sp["traceId"])) + ld(2, bytes.fromhex(sp["spanId"]))
    if sp.get("traceState"):
        out += s(3, sp["traceState"])
    if sp.get("parentSpanId"):
        out += ld(4, bytes.fromhex(sp["parentSpanId"]))
    out += s(5, sp.get("name") or "")
    kind = sp.get("kind", 0)
    kind = _KINDS.get(kind, kind) if isinstance(kind, str) else kind
    if kind:
        out += vint(6, int(kind))
    out += fixed64(7, int(sp.get("startTimeUnixNano") or 0)) + fixed64(8, int(sp.get("endTimeUnixNano") or 0))
    out += attrs(9, sp.get("attributes"))
    for ev in sp.get("events") or []:
        out += ld(11, fixed64(1, int(ev.get("timeUnixNano") or 0)) + s(2, ev.get("name") or "") + attrs(3, ev.get("attributes")))
    for ln in sp.get("links") or []:
        body = ld(1, bytes.fromhex(ln["traceId"])) + ld(2, bytes.fromhex(ln["spanId"])) + attrs(4, ln.get("attributes"))
        if ln.get("flags"):
            body += fixed32(6, int(ln["flags"]))
        out += ld(13, body)
    st = sp.get("status") or {}
    if st:
        code = st.get("code", 0)
        code = _CODES.get(code, code) if isinstance(code, str) else code
        body = (s(2, st["message"]) if st.get("message") else b"") + (vint(3, int(code)) if code else b"")
        out += ld(15, body)
    if sp.get("flags"):
        out += fixed32(16, int(sp["flags"]))
    return out


def request(req: dict, legacy: bool = False) -> bytes:
    """ExportTraceServiceRequest (OTLP/JSON dict) -> protobuf bytes.

    `legacy` writes the scopes as InstrumentationLibrarySpans (field 1000).
    """
    out = b""
    for rs in req.get("resourceSpans") or []:
        body = ld(1, attrs(1, (rs.get("resource") or {}).get("attributes")))
        for ss in rs.get("scopeSpans") or []:
            sc = ss.get("scope") or {}
            scope = (s(1, sc["name"]) if sc.get("name") else b"") + (s(2, sc["version"]) if sc.get("version") else b"")
            sbody = ld(1, scope) + b"".join(ld(2, span(sp)) for sp in ss.get("spans") or [])
            if ss.get("schemaUrl"):
                sbody += s(3, ss["schemaUrl"])
            body += ld(1000 if legacy else 2, sbody)
        if rs.get("schemaUrl"):
            body += s(3, rs["schemaUrl"])
        out += ld(1, body)
    return out


def metrics_request(name: str = "http.server.duration", service: str = "svc") -> bytes:
    """A minimal ExportMetricsServiceRequest: one gauge with one data point."""
    point = fixed64(3, 1_705_312_800_000_000_000) + key(4, 1) + struct.pack("<d", 1.5)
    metric = s(1, name) + ld(5, ld(1, point))
    return ld(1, ld(1, attrs(1, [{"key": "service.name", "value": {"stringValue": service}}]))
              + ld(2, ld(1, s(1, "meter")) + ld(2, metric)))


def logs_request(body: str = "hello", service: str = "svc") -> bytes:
    """A minimal ExportLogsServiceRequest: one log record."""
    record = fixed64(1, 1_705_312_800_000_000_000) + vint(2, 9) + ld(5, s(1, body))
    return ld(1, ld(1, attrs(1, [{"key": "service.name", "value": {"stringValue": service}}]))
              + ld(2, ld(1, s(1, "logger")) + ld(2, record)))


def frame(messages: list[bytes], compress_each: bool = False) -> bytes:
    """The file exporter's framing: 4-byte big-endian length before each message."""
    out = bytearray()
    for m in messages:
        if compress_each:
            import zstandard

            m = zstandard.ZstdCompressor().compress(m)
        out += len(m).to_bytes(4, "big") + m
    return bytes(out)


def zstd_stream(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)
