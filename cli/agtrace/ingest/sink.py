"""The columnar span sink every reader writes into.

Readers turn their format into calls of `SpanSink.add_span(...)`; the sink keeps
columns as Python lists and hands them over as Arrow tables every
`batch_size` spans, so memory stays bounded however big the input is. Per-span
work here (attribute rows, semantics) is the hot path of a load: keep it lean.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from agtrace.ingest.semantics import derive
from agtrace.ingest.values import KINDS, STATUSES, clean_json

_STR = pa.string()
_I64 = pa.int64()

SPAN_SCHEMA = pa.schema([
    ("sid", _I64), ("trace_id", _STR), ("span_id", _STR), ("parent_span_id", _STR),
    ("name", _STR), ("kind", _STR), ("status", _STR), ("status_message", _STR),
    ("start_ns", _I64), ("end_ns", _I64), ("service", _STR), ("resource_id", _STR),
    ("scope_name", _STR), ("scope_version", _STR), ("attributes", _STR), ("events", _STR),
    ("own_agent", _STR), ("type", _STR), ("model", _STR), ("input_tokens", _I64),
    ("output_tokens", _I64), ("session", _STR), ("source", _STR), ("dedupe_key", _I64),
])
ATTR_SCHEMA = pa.schema([
    ("sid", _I64), ("key", _STR), ("idx", pa.int32()), ("vtype", _STR), ("str_val", _STR), ("num_val", pa.float64()),
])
RES_SCHEMA = pa.schema([("resource_id", _STR), ("service", _STR), ("attributes", _STR)])
RES_ATTR_SCHEMA = pa.schema([
    ("resource_id", _STR), ("key", _STR), ("idx", pa.int32()), ("vtype", _STR), ("str_val", _STR), ("num_val", pa.float64()),
])
LINK_SCHEMA = pa.schema([
    ("sid", _I64), ("idx", pa.int32()), ("trace_id", _STR), ("span_id", _STR),
    ("linked_trace_id", _STR), ("linked_span_id", _STR), ("ref_type", _STR), ("attributes", _STR),
])

_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)


def int64_or_none(v: int | None) -> int | None:
    """An int the store's BIGINT columns can hold, else None."""
    return v if v is None or _INT64_MIN <= v <= _INT64_MAX else None


def link_rows(sid: int, trace_id: str, span_id: str, links: list[dict]) -> list[tuple]:
    """The `links` rows of one span; `links` items {trace_id, span_id, attributes, ref_type}."""
    rows = []
    for i, ln in enumerate(links):
        la = ln.get("attributes")
        lt, ls, rt = ln.get("trace_id"), ln.get("span_id"), ln.get("ref_type") or "link"
        rows.append((sid, i, trace_id, span_id, lt if lt is None or type(lt) is str else str(lt),
                     ls if ls is None or type(ls) is str else str(ls), rt if type(rt) is str else str(rt),
                     _dumps(la) if la else None))
    return rows


@dataclass
class Batch:
    spans: pa.Table
    attrs: pa.Table
    links: pa.Table
    resources: pa.Table
    resource_attrs: pa.Table


def _dumps(v, option: int = orjson.OPT_NON_STR_KEYS) -> str:
    try:
        return orjson.dumps(v, option=option).decode()
    except (TypeError, orjson.JSONEncodeError):
        v = clean_json(v)
        try:
            return orjson.dumps(v, option=option).decode()
        except (TypeError, orjson.JSONEncodeError):
            # orjson refuses integers beyond 64 bits; the standard library
            # writes them exactly (clean_json already made the rest plain).
            return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str,
                              sort_keys=bool(option & orjson.OPT_SORT_KEYS))


def _attr_rows(owner, attrs: dict, ap) -> None:
    """Append the typed key/value rows of one attribute dict (see store.py).

    Rows are tuples (owner, key, idx, vtype, str_val, num_val) appended with
    one call each: transposed to columns only when a batch is flushed.
    """
    for key, v in attrs.items():
        t = type(v)
        if t is str:
            ap((owner, key, None, "string", v, None))
        elif t is int:
            ap((owner, key, None, "int", str(v), float(v) if -1e300 < v < 1e300 else None))
        elif t is float:
            ap((owner, key, None, "double", repr(v), v))
        elif t is bool:
            ap((owner, key, None, "bool", "true" if v else "false", None))
        elif t is list:
            if not v:
                ap((owner, key, None, "array", "[]", None))
            for i, e in enumerate(v):
                te = type(e)
                if te is str:
                    ap((owner, key, i, "string", e, None))
                elif te is bool:
                    ap((owner, key, i, "bool", "true" if e else "false", None))
                elif te is int:
                    ap((owner, key, i, "int", str(e), float(e) if -1e300 < e < 1e300 else None))
                elif te is float:
                    ap((owner, key, i, "double", repr(e), e))
                elif e is None:
                    ap((owner, key, i, "null", None, None))
                else:
                    ap((owner, key, i, "array" if te is list else "kvlist", _dumps(e), None))
        elif t is dict:
            ap((owner, key, None, "kvlist", _dumps(v), None))
        elif v is None:
            ap((owner, key, None, "null", None, None))
        else:
            ap((owner, key, None, "string", str(v), None))


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    if not rows:
        return schema.empty_table()
    cols = list(zip(*rows))
    return pa.table([pa.array(c, type=f.type) for c, f in zip(cols, schema)], schema=schema)


@dataclass
class FileStats:
    """What one file contributed; reported per file and summed for the load."""

    path: str
    format: str | None = None
    spans: int = 0
    documents: int = 0
    bad: list[tuple[int | None, str]] = field(default_factory=list)  # (line, reason)
    bad_count: int = 0
    warnings: list[tuple[int | None, str]] = field(default_factory=list)
    warning_count: int = 0
    other_signals: int = 0  # metric / log records skipped
    unknown_documents: int = 0

    MAX_KEPT = 50

    def add_bad(self, line: int | None, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < self.MAX_KEPT:
            self.bad.append((line, reason))

    def add_warning(self, line: int | None, reason: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.MAX_KEPT:
            self.warnings.append((line, reason))


class SpanSink:
    """Collects spans column-wise and flushes Arrow batches to `on_batch`."""

    def __init__(self, on_batch: Callable[[Batch], None], first_sid: int = 1, batch_size: int = 50_000):
        self.on_batch = on_batch
        self.next_sid = first_sid
        self.batch_size = batch_size
        self.stats: FileStats | None = None
        # Where the parallel reader's workers may write their rows instead of
        # sending them back (`ingest.spill.Spill`, file stores); None: nowhere.
        self.spill = None
        self._resource_ids: dict[str, str] = {}  # content key -> id, known in this load
        self._reset()

    def _reset(self) -> None:
        self.rows: list[tuple] = []
        self.arows: list[tuple] = []
        self.lrows: list[tuple] = []
        self.rrows: list[tuple] = []
        self.rarows: list[tuple] = []
        self.count = 0

    # -- resources ---------------------------------------------------------
    def resource(self, attributes: dict | None, service: str | None = None) -> tuple[str | None, str | None]:
        """Register a resource; returns (resource_id, service). Same content -> same id."""
        attributes = attributes or {}
        if service is None:
            s = attributes.get("service.name")
            service = s if isinstance(s, str) else (str(s) if s is not None else None)
        if not attributes and service is None:
            return None, None
        text = _dumps(clean_json(attributes), orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        key = f"{service}\x00{text}"
        rid = self._resource_ids.get(key)
        if rid is None:
            rid = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
            self._resource_ids[key] = rid
            self.rrows.append((rid, service, text))
            _attr_rows(rid, clean_json(attributes), self.rarows.append)
        return rid, service

    # -- spans -------------------------------------------------------------
    def add_span(
        self,
        *,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        name: str,
        kind: str,
        start_ns: int | None,
        end_ns: int | None,
        status: str,
        status_message: str | None,
        attributes: dict,
        resource_id: str | None,
        service: str | None,
        scope_name: str | None = None,
        scope_version: str | None = None,
        events: list | None = None,
        links: list | None = None,
        line: int | None = None,
        identity_extra: int | None = None,
    ) -> None:
        """Add one span. Times in ns; `events` items {name,time_ns,attributes};
        `links` items {trace_id, span_id, attributes, ref_type}. `identity_extra`
        joins (trace_id, span_id, kind) in telling duplicates from distinct
        spans, for formats where one id and kind name several spans."""
        st = self.stats
        if start_ns is None:
            if end_ns is None:
                st.add_bad(line, f"span {span_id}: no start or end time")
                return
            st.add_warning(line, f"span {span_id}: missing start time, set to its end")
            start_ns = end_ns
        if end_ns is None:
            st.add_warning(line, f"span {span_id}: missing end time, duration set to 0")
            end_ns = start_ns
        elif end_ns < start_ns:
            st.add_warning(line, f"span {span_id}: ends before it starts, duration set to 0")
            end_ns = start_ns
        if not (_INT64_MIN <= start_ns <= _INT64_MAX and _INT64_MIN <= end_ns <= _INT64_MAX):
            st.add_bad(line, f"span {span_id}: time out of the int64 nanosecond range")
            return
        if start_ns < 0:
            st.add_warning(line, f"span {span_id}: starts before 1970 (negative time), kept as given")
        if kind not in KINDS:
            kind = "unspecified"
        if status not in STATUSES:
            status = "unset"
        if name is None:
            name = ""
        elif not isinstance(name, str):
            name = str(name)
        # Text columns must hold text: a half-broken exporter may send numbers
        # or objects here, and one of them would fail the whole Arrow batch.
        if status_message is not None and type(status_message) is not str:
            status_message = _dumps(status_message)
        if scope_name is not None and type(scope_name) is not str:
            scope_name = _dumps(scope_name)
        if scope_version is not None and type(scope_version) is not str:
            scope_version = _dumps(scope_version)
        if service is not None and type(service) is not str:
            service = _dumps(service)
        sid = self.next_sid
        self.next_sid += 1
        try:
            attr_text = orjson.dumps(attributes).decode()
        except (TypeError, orjson.JSONEncodeError):
            attributes = clean_json(attributes)
            attr_text = _dumps(attributes)
        agent, typ, model, in_tok, out_tok, session = derive(name, attributes, events)
        self.rows.append((
            sid, trace_id, span_id, parent_span_id, name, kind, status, status_message or None,
            start_ns, end_ns, service, resource_id, scope_name, scope_version, attr_text,
            _dumps(events) if events else None, agent, typ, model,
            int64_or_none(in_tok), int64_or_none(out_tok),
            session, f"{st.path}:{line}" if line is not None else st.path, identity_extra,
        ))
        _attr_rows(sid, attributes, self.arows.append)
        if links:
            self.lrows.extend(link_rows(sid, trace_id, span_id, links))
        st.spans += 1
        self.count += 1
        if self.count >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.count and not self.rrows:
            return
        batch = Batch(
            spans=_table(self.rows, SPAN_SCHEMA),
            attrs=_table(self.arows, ATTR_SCHEMA),
            links=_table(self.lrows, LINK_SCHEMA),
            resources=_table(self.rrows, RES_SCHEMA),
            resource_attrs=_table(self.rarows, RES_ATTR_SCHEMA),
        )
        self._reset()
        self.on_batch(batch)
