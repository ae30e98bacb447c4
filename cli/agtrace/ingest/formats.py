"""Format detection from content: each JSON document is routed to its reader.

Detection is per document, not per file, because real files mix things (the
Collector writes metrics and logs lines into the same file as traces). A
reader is registered as (name, predicate, read function); formats added later
(Jaeger, Zipkin) register themselves the same way. Binary formats (OTLP
protobuf) are detected on the raw bytes by `BINARY_READERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agtrace.ingest import flat, jaeger, otlp_json, otlp_proto, pysdk, zipkin
from agtrace.ingest.context import ReadContext
from agtrace.ingest.values import BadRecord


@dataclass(frozen=True)
class DocumentReader:
    name: str
    matches: Callable[[object], bool]
    read: Callable[[object, int, ReadContext], None]


READERS: list[DocumentReader] = [
    DocumentReader(otlp_json.FORMAT, otlp_json.is_request, otlp_json.read_request),
    DocumentReader(pysdk.FORMAT, pysdk.is_span, pysdk.read_span),
    DocumentReader(flat.FORMAT, flat.is_span, flat.read_span),
    DocumentReader(jaeger.FORMAT, jaeger.matches, jaeger.read),
    DocumentReader(zipkin.FORMAT, zipkin.matches, zipkin.read),
]

# Binary readers: (name, sniff(first_bytes) -> bool, read(stream, ctx) -> None).
BINARY_READERS: list[tuple[str, Callable[[bytes], bool], Callable]] = [
    (otlp_proto.FORMAT, otlp_proto.sniff, otlp_proto.read),
]


def format_names() -> list[str]:
    return [r.name for r in READERS] + [name for name, _, _ in BINARY_READERS]


def _find(doc) -> DocumentReader | None:
    for r in READERS:
        if r.matches(doc):
            return r
    return None


def dispatch(doc, line: int, ctx: ReadContext, formats: set[str]) -> bool:
    """Read one document; returns False when it is in no known format."""
    if otlp_json.is_other_signal(doc):
        ctx.stats.other_signals += 1
        ctx.stats.documents += 1
        formats.add(otlp_json.FORMAT)
        return True
    reader = _find(doc)
    if reader is not None:
        ctx.stats.documents += 1
        formats.add(reader.name)
        try:
            reader.read(doc, line, ctx)
        except BadRecord as exc:
            ctx.bad(line, str(exc))
        return True
    # Containers: arrays of documents, {"spans": [...]}, {"data": [...]}.
    items = None
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict) and len(doc) <= 3 and isinstance(doc.get("spans"), list):
        items = doc["spans"]
    if items is None or not items:
        return False
    if not any(isinstance(it, list) or otlp_json.is_other_signal(it) or _find(it) is not None for it in items[:1000]):
        return False
    for item in items:
        if isinstance(item, list):
            if not dispatch(item, line, ctx, formats):
                ctx.bad(line, "nested array in no known span format")
            continue
        if otlp_json.is_other_signal(item):
            ctx.stats.other_signals += 1
            continue
        r = _find(item)
        if r is None:
            ctx.bad(line, "array element in no known span format")
            continue
        formats.add(r.name)
        try:
            r.read(item, line, ctx)
        except BadRecord as exc:
            ctx.bad(line, str(exc))
    ctx.stats.documents += 1
    return True
