"""Fetching one trace (its spans and links) from the store.

`agtrace show` must answer in well under a second on a store of a million
spans, so this is one point lookup per table by `trace_id` (bound parameter),
reading only the columns the view needs; JSON columns stay text until a
renderer asks for them (`SpanRow.attrs()`), so a 50,000-span trace pays for
parsing only what it shows.
"""

from __future__ import annotations

import orjson

_SPAN_SQL = """
SELECT span_id, parent_span_id, name, start_ns, end_ns, kind, status, status_message,
       service, attributes, events, agent, own_agent, type, model, input_tokens, output_tokens, sid
FROM spans WHERE trace_id = ?
ORDER BY start_ns, span_id, kind
"""

_LINK_SQL = """
SELECT sid, linked_trace_id, linked_span_id, ref_type, attributes
FROM links WHERE trace_id = ?
ORDER BY sid, idx
"""


def _loads(text) -> object:
    if text is None or text == "":
        return None
    if not isinstance(text, (str, bytes)):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


class LinkRow:
    """A link (or extra reference) held by a span of the trace."""

    __slots__ = ("linked_trace_id", "linked_span_id", "ref_type", "attributes")

    def __init__(self, linked_trace_id: str | None, linked_span_id: str | None, ref_type: str | None,
                 attributes: str | None = None):
        self.linked_trace_id = linked_trace_id
        self.linked_span_id = linked_span_id
        self.ref_type = ref_type
        self.attributes = attributes

    def attrs(self) -> dict:
        v = _loads(self.attributes)
        return v if isinstance(v, dict) else {}


class SpanRow:
    """One span as `show` needs it. `attributes` and `events` are JSON text.

    The field names match what `analysis.critical_path` reads. (A plain
    class, not a dataclass: dataclass creation costs milliseconds at import,
    and `show` counts them.)
    """

    __slots__ = ("span_id", "parent_span_id", "name", "start_ns", "end_ns", "kind", "status",
                 "status_message", "service", "attributes", "events", "agent", "own_agent", "type",
                 "model", "input_tokens", "output_tokens", "sid", "links", "_attrs")

    def __init__(self, span_id: str, parent_span_id: str | None, name: str | None, start_ns: int | None,
                 end_ns: int | None, kind: str | None = None, status: str | None = None,
                 status_message: str | None = None, service: str | None = None, attributes: str | None = None,
                 events: str | None = None, agent: str | None = None, own_agent: str | None = None,
                 type: str | None = None, model: str | None = None, input_tokens: int | None = None,
                 output_tokens: int | None = None, sid: int | None = None):
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.name = name
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.kind = kind
        self.status = status
        self.status_message = status_message
        self.service = service
        self.attributes = attributes
        self.events = events
        self.agent = agent
        self.own_agent = own_agent
        self.type = type
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.sid = sid
        self.links: list[LinkRow] = []
        self._attrs: dict | None = None

    def __repr__(self) -> str:
        return f"SpanRow({self.span_id!r}, parent={self.parent_span_id!r}, name={self.name!r})"

    def attrs(self) -> dict:
        """The attributes as a dict (parsed once, on first use)."""
        if self._attrs is None:
            v = _loads(self.attributes)
            self._attrs = v if isinstance(v, dict) else {}
        return self._attrs

    def event_list(self) -> list[dict]:
        v = _loads(self.events)
        return [e for e in v if isinstance(e, dict)] if isinstance(v, list) else []

    @property
    def duration_ns(self) -> int | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return self.end_ns - self.start_ns

    @property
    def is_error(self) -> bool:
        return self.status == "error"


class TraceData:
    """The spans of one trace, ordered by start time, with their links attached."""

    __slots__ = ("trace_id", "spans")

    def __init__(self, trace_id: str, spans: list[SpanRow]):
        self.trace_id = trace_id
        self.spans = spans


def fetch_trace(con, trace_id: str) -> TraceData:
    """Every span of `trace_id` (full id, already resolved) and its links."""
    rows = con.execute(_SPAN_SQL, [trace_id]).fetchall()
    spans = [SpanRow(*r) for r in rows]
    links = con.execute(_LINK_SQL, [trace_id]).fetchall()
    if links:
        by_sid = {s.sid: s for s in spans}
        for sid, ltrace, lspan, ref_type, attrs in links:
            s = by_sid.get(sid)
            if s is not None:
                s.links.append(LinkRow(ltrace, lspan, ref_type, attrs))
    return TraceData(trace_id, spans)
