"""The fast path for Collector files: OTLP/JSON lines read by Arrow, not Python.

Why: reading a span through Python dictionaries costs about 95 µs of CPU (JSON
objects, id and value normalisation, typed attribute rows); a 511 MB Collector
file has 750,000 spans. Arrow's JSON reader parses the same lines in C++ into
columns against the exact OTLP schema, and everything else (ids, kinds,
statuses, the attributes' JSON text, the typed attribute rows) is computed
column-wise. Python still does what is rare or needs the shared rules: one
call per resource, the agent semantics (`semantics.derive`, memoised per
span shape), events and links of the few spans that have them.

The path is optimistic and exact, never approximate: a chunk of lines is read
here only when every value in it has the plain shape the Collector writes
(hex ids, int64 times as digit strings, one typed member per AnyValue,
no kvlists or bytes, no duplicate keys, no field outside the OTLP schema).
Anything else, including every damaged line, makes `read_chunk` return None
and the chunk goes through the Python readers, which name the bad records
with file and line. The result of this path is identical, table for table,
to what the Python readers build for the same chunk (tested).
"""

from __future__ import annotations

import io
import math
import os

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from agtrace.ingest.semantics import (
    INPUT_TOKEN_KEYS, OUTPUT_TOKEN_KEYS, as_int, derive, derive_keys, first_value,
)
from agtrace.ingest.sink import (
    ATTR_SCHEMA, LINK_SCHEMA, RES_ATTR_SCHEMA, RES_SCHEMA, SPAN_SCHEMA, Batch, FileStats, SpanSink, _dumps, _table,
    int64_or_none, link_rows,
)
from agtrace.ingest.values import KINDS, any_value, kv_list

FORMAT = "otlp-json"
# Files from this size on are read in chunks by this reader when their first
# line is an OTLP request; smaller ones are not worth the Arrow start-up.
MIN_BYTES = int(os.environ.get("AGTRACE_FAST_MIN_BYTES", str(1 << 20)))

_S, _I, _D, _B, _N = pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.null()
_LEAVES = [("stringValue", _S), ("intValue", _S), ("doubleValue", _D), ("boolValue", _B)]
_UNSUPPORTED = [("kvlistValue", _N), ("bytesValue", _N)]  # present -> not this path
_ELEMENT = pa.struct(_LEAVES + [("arrayValue", _N)] + _UNSUPPORTED)
_ANY = pa.struct(_LEAVES + [("arrayValue", pa.struct([("values", pa.list_(_ELEMENT))]))] + _UNSUPPORTED)
_KVS = pa.list_(pa.struct([("key", _S), ("value", _ANY)]))
_SPAN = pa.struct([
    ("traceId", _S), ("spanId", _S), ("traceState", _S), ("parentSpanId", _S), ("flags", _I),
    ("name", _S), ("kind", _I), ("startTimeUnixNano", _S), ("endTimeUnixNano", _S),
    ("attributes", _KVS), ("droppedAttributesCount", _I),
    ("events", pa.list_(pa.struct([
        ("timeUnixNano", _S), ("name", _S), ("attributes", _KVS), ("droppedAttributesCount", _I)]))),
    ("droppedEventsCount", _I),
    ("links", pa.list_(pa.struct([
        ("traceId", _S), ("spanId", _S), ("traceState", _S), ("attributes", _KVS),
        ("droppedAttributesCount", _I), ("flags", _I)]))),
    ("droppedLinksCount", _I),
    ("status", pa.struct([("code", _I), ("message", _S)])),
])
_SCHEMA = pa.schema([
    ("resourceSpans", pa.list_(pa.struct([
        ("resource", pa.struct([("attributes", _KVS), ("droppedAttributesCount", _I), ("entityRefs", _N)])),
        ("scopeSpans", pa.list_(pa.struct([
            ("scope", pa.struct([("name", _S), ("version", _S), ("attributes", _N), ("droppedAttributesCount", _I)])),
            ("spans", pa.list_(_SPAN)),
            ("schemaUrl", _S),
        ]))),
        ("schemaUrl", _S),
    ]))),
])
_PARSE = pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="error")

_TRACE_RE = "^[0-9a-f]{32}$"
_SPAN_RE = "^[0-9a-f]{16}$"
# Canonical int64 digits only: Python's int() would also take "+5", " 5", "1_0"
# and "-0", each of which prints differently; those go the Python way.
_INT_RE = "^(0|-?[1-9][0-9]{0,17})$"
_NEEDS_ESCAPE_RE = '[\\x00-\\x1f"\\\\]'
_STATUS_NAMES = pa.array(["unset", "ok", "error"])
_KIND_NAMES = pa.array(list(KINDS))
_NULL_PARENT = "0" * 16


def looks_like(first_line: bytes) -> bool:
    """Whether a file whose first line this is may be Collector output."""
    return first_line.lstrip().startswith(b'{"resourceSpans"')


class _NotPlain(Exception):
    """This chunk holds something only the Python readers handle exactly."""


def read_chunk(label: str, first_line: int, lines: list[bytes]):
    """Read Collector lines; the same result tuple as `parallel._parse_chunk`,
    or None when the chunk must go through the Python readers."""
    numbers = []
    for i, raw in enumerate(lines):
        s = raw.strip()
        if s:
            # Requests are objects. pyarrow's reader also crashes outright on
            # input whose first value is `null` (apache/arrow#47409).
            if s[:1] != b"{":
                return None
            numbers.append(first_line + i)
    if not numbers:
        return None
    data = b"".join(lines)
    if b"\xef\xbb\xbf" in data:
        return None
    try:
        data.decode("utf-8")  # Arrow does not check; Python makes bad bytes U+FFFD
    except UnicodeDecodeError:
        return None
    try:
        table = pj.read_json(
            io.BytesIO(data), parse_options=_PARSE,
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
        )
    except (pa.ArrowException, ValueError, UnicodeDecodeError):
        return None
    if table.num_rows != len(numbers):  # a line held two documents, or none
        return None
    try:
        return _build(label, table, numbers)
    except (_NotPlain, pa.ArrowException, ArithmeticError, LookupError, TypeError, ValueError):
        # Declining is always safe: the Python readers take the chunk (and
        # report whatever is wrong in it with file and line).
        return None


def _one_array(col) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _require(cond) -> None:
    if not cond:
        raise _NotPlain


def _all(mask) -> bool:
    return len(mask) == 0 or bool(pc.all(mask).as_py())


def _lengths(lists) -> pa.Array:
    return pc.fill_null(pc.list_value_length(lists), 0)


def _offsets(lengths) -> pa.Array:
    """List offsets (n + 1 values) for the given lengths."""
    return pa.concat_arrays([pa.array([0], pa.int32()), pc.cast(pc.cumulative_sum(lengths), pa.int32())])


def _parents(lists) -> pa.Array:
    """Index of the parent list of every flattened value (nulls contribute nothing)."""
    return pc.list_parent_indices(lists)


def _json_strings(values: pa.Array) -> pa.Array:
    """JSON string literals exactly as orjson writes them."""
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    esc = pc.match_substring_regex(values, _NEEDS_ESCAPE_RE)
    if len(values) and pc.any(esc).as_py():
        picks = pc.filter(values, esc).to_pylist()
        quoted = pc.replace_with_mask(quoted, esc, pa.array([orjson.dumps(v).decode() for v in picks], _S))
    return quoted


class _Values:
    """The typed members of a list of AnyValues (leaves, maybe arrays)."""

    def __init__(self, anyv: pa.StructArray, allow_arrays: bool):
        self.s = pc.struct_field(anyv, "stringValue")
        self.i = pc.struct_field(anyv, "intValue")
        self.d = pc.struct_field(anyv, "doubleValue")
        self.b = pc.struct_field(anyv, "boolValue")
        members = [pc.cast(pc.is_valid(x), pa.int8()) for x in (self.s, self.i, self.d, self.b)]
        self.a = pc.struct_field(anyv, "arrayValue") if allow_arrays else None
        if allow_arrays:
            members.append(pc.cast(pc.is_valid(self.a), pa.int8()))
        total = members[0]
        for m in members[1:]:
            total = pc.add(total, m)
        _require(_all(pc.equal(total, 1)))  # exactly one typed member: no nulls, no kvlists
        _require(_all(pc.match_substring_regex(pc.drop_null(self.i), _INT_RE)))
        if self.d.null_count < len(self.d):
            d = pc.drop_null(self.d)
            # Arrow's parser takes bare NaN/Infinity (not JSON; Python makes them null)
            _require(not pc.any(pc.is_nan(d)).as_py() and not pc.any(pc.is_inf(d)).as_py())
            # and reads the integer token -0 as -0.0 where orjson gives int 0 (0.0)
            zeros = pc.filter(d, pc.equal(d, 0.0)).to_pylist()
            _require(all(math.copysign(1.0, z) > 0 for z in zeros))
        self.n = len(anyv)
        self._double_texts = None

    def double_texts(self) -> tuple[list, list]:
        """(repr, orjson text) of the doubles, in order, computed once."""
        if self._double_texts is None:
            ds = pc.drop_null(self.d).to_pylist()
            self._double_texts = ([repr(v) for v in ds], [orjson.dumps(v).decode() for v in ds])
        return self._double_texts

    def _fill(self, base: pa.Array, mask: pa.Array, texts: list) -> pa.Array:
        return pc.replace_with_mask(base, mask, pa.array(texts, _S)) if texts else base

    def json_texts(self, array_texts: pa.Array | None = None) -> pa.Array:
        """Each value as JSON text (what orjson writes for the Python value)."""
        out = pc.if_else(pc.is_valid(self.s), _json_strings(pc.fill_null(self.s, "")), pa.nulls(self.n, _S))
        out = pc.coalesce(out, self.i, pc.if_else(self.b, "true", "false"))
        dmask = pc.is_valid(self.d)
        out = self._fill(out, dmask, self.double_texts()[1])
        if array_texts is not None:
            out = pc.coalesce(out, array_texts)
        return out

    def attr_columns(self) -> tuple[pa.Array, pa.Array, pa.Array]:
        """(vtype, str_val, num_val) of the typed attribute rows (sink._attr_rows)."""
        n = self.n
        vtype = pc.coalesce(
            pc.if_else(pc.is_valid(self.s), "string", pa.nulls(n, _S)),
            pc.if_else(pc.is_valid(self.i), "int", pa.nulls(n, _S)),
            pc.if_else(pc.is_valid(self.d), "double", pa.nulls(n, _S)),
            pc.if_else(pc.is_valid(self.b), "bool", pa.nulls(n, _S)),
        )
        str_val = pc.coalesce(self.s, self.i, pc.if_else(self.b, "true", "false"))
        str_val = self._fill(str_val, pc.is_valid(self.d), self.double_texts()[0])
        # beyond 2**53 the double is rounded, as Python's float(int) rounds it
        num_val = pc.coalesce(pc.cast(pc.cast(self.i, pa.int64()), _D, safe=False), self.d)
        return vtype, str_val, num_val

    def python(self, rows: list[int]) -> list:
        """The Python values (as `values.kv_list` gives them) of some rows."""
        idx = pa.array(rows, pa.int64())
        cols = [pc.take(x, idx).to_pylist() for x in (self.s, self.i, self.d, self.b)]
        arrays = pc.take(self.a, idx).to_pylist() if self.a is not None else [None] * len(rows)
        out = []
        for s, i, d, b, a in zip(*cols, arrays):
            if s is not None:
                out.append(s)
            elif i is not None:
                out.append(int(i))
            elif d is not None:
                out.append(d)
            elif b is not None:
                out.append(b)
            else:
                out.append(any_value({"arrayValue": a}))
        return out


def _check_kvs(kvs: pa.Array) -> tuple[pa.Array, pa.Array, _Values, pa.Array | None]:
    """Flatten a list of key/values; (parents, keys, values, array elements)."""
    flat = kvs.flatten()
    keys = pc.struct_field(flat, "key")
    _require(keys.null_count == 0)
    vals = _Values(pc.struct_field(flat, "value"), allow_arrays=True)
    elements = None
    if vals.a.null_count < len(vals.a):
        elements = _Values(pc.struct_field(vals.a, "values").flatten(), allow_arrays=False)
    return pc.cast(_parents(kvs), pa.int64()), keys, vals, elements


def _build(label: str, table: pa.Table, numbers: list[int]):
    rs_lists = _one_array(table.column("resourceSpans"))
    _require(rs_lists.null_count == 0)
    rs = rs_lists.flatten()
    _require(rs.null_count == 0)
    rs_line = _parents(rs_lists)
    ss_lists = pc.struct_field(rs, "scopeSpans")
    ss = ss_lists.flatten()
    _require(ss.null_count == 0)
    ss_rs = _parents(ss_lists)
    sp_lists = pc.struct_field(ss, "spans")
    spans = sp_lists.flatten()
    _require(spans.null_count == 0)
    sp_ss = _parents(sp_lists)
    n = len(spans)

    # ids, times, kind and status: validated column-wise
    trace_id = pc.struct_field(spans, "traceId")
    span_id = pc.struct_field(spans, "spanId")
    parent = pc.struct_field(spans, "parentSpanId")
    _require(trace_id.null_count == 0 and span_id.null_count == 0)
    _require(_all(pc.match_substring_regex(trace_id, _TRACE_RE)))
    _require(_all(pc.match_substring_regex(span_id, _SPAN_RE)))
    parent = pc.if_else(pc.or_kleene(pc.equal(parent, ""), pc.equal(parent, _NULL_PARENT)), pa.nulls(n, _S), parent)
    _require(_all(pc.match_substring_regex(pc.drop_null(parent), _SPAN_RE)))
    try:
        start = pc.cast(pc.struct_field(spans, "startTimeUnixNano"), pa.int64())
        end = pc.cast(pc.struct_field(spans, "endTimeUnixNano"), pa.int64())
    except pa.ArrowInvalid:
        raise _NotPlain from None
    _require(start.null_count == 0 and end.null_count == 0)
    _require(_all(pc.greater_equal(start, 0)) and _all(pc.greater_equal(end, start)))
    # digits only: Arrow's cast also reads "0x10", which Python's int() refuses
    _require(_all(pc.utf8_is_digit(pc.struct_field(spans, "startTimeUnixNano"))))
    _require(_all(pc.utf8_is_digit(pc.struct_field(spans, "endTimeUnixNano"))))
    kind_num = pc.struct_field(spans, "kind")
    kind_ok = pc.and_kleene(pc.greater_equal(kind_num, 0), pc.less_equal(kind_num, 5))
    kind = pc.take(_KIND_NAMES, pc.if_else(pc.fill_null(kind_ok, False), kind_num, 0))
    status = pc.struct_field(spans, "status")
    code = pc.struct_field(status, "code")
    code_ok = pc.fill_null(pc.and_kleene(pc.greater_equal(code, 0), pc.less_equal(code, 2)), False)
    status_word = pc.take(_STATUS_NAMES, pc.if_else(code_ok, code, 0))
    message = pc.struct_field(status, "message")
    message = pc.if_else(pc.equal(message, ""), pa.nulls(n, _S), message)
    name = pc.fill_null(pc.struct_field(spans, "name"), "")

    # resources (few per chunk): the sink's own rules, once each
    sink = SpanSink(lambda b: None, first_sid=0, batch_size=1 << 60)
    stats = FileStats(label)
    sink.stats = stats
    res_attrs = pc.struct_field(pc.struct_field(rs, "resource"), "attributes")
    _check_kvs(res_attrs)
    rids, services = [], []
    for items in res_attrs.to_pylist():
        # pyarrow gives every AnyValue member (unset ones None): the usual
        # kv_list rules pick the one that is set
        rid, service = sink.resource(kv_list(items))
        rids.append(rid)
        services.append(service)
    ss_res = pc.take(pa.array(rids, _S), ss_rs), pc.take(pa.array(services, _S), ss_rs)
    scope = pc.struct_field(ss, "scope")
    scope_name = pc.struct_field(scope, "name")
    scope_version = pc.struct_field(scope, "version")
    scope_name = pc.if_else(pc.equal(scope_name, ""), pa.nulls(len(ss), _S), scope_name)
    scope_version = pc.if_else(pc.equal(scope_version, ""), pa.nulls(len(ss), _S), scope_version)
    sid = pa.array(range(n), pa.int64())
    span_line = pc.take(pc.take(rs_line, ss_rs), sp_ss)
    line_texts = [f"{label}:{numbers[i]}" for i in range(len(numbers))]
    source = pc.take(pa.array(line_texts, _S), span_line)

    # attributes: typed rows, JSON text, the values the semantics read
    attr_lists = pc.struct_field(spans, "attributes")
    a_parent, a_key, a_vals, a_elems = _check_kvs(attr_lists)
    # Keys repeat: encode them once, escape each distinct key once, and find
    # duplicate keys within a span as duplicate (span, key code) integers.
    key_codes = pc.dictionary_encode(a_key)
    if len(a_key):
        codes = pc.cast(key_codes.indices, pa.int64())
        pair = pc.add(pc.multiply(a_parent, len(key_codes.dictionary)), codes)
        _require(pc.count_distinct(pair).as_py() == len(a_key))  # duplicate keys: Python's dict rules
    array_json = None
    elem_rows = None
    if a_elems is not None:
        arrays = a_vals.a
        elem_lists = pc.struct_field(arrays, "values")
        elem_len = _lengths(elem_lists)
        elem_offsets = _offsets(elem_len)
        elem_parent = _parents(elem_lists)
        elem_list_json = pa.ListArray.from_arrays(elem_offsets, a_elems.json_texts())
        array_json = pc.binary_join_element_wise("[", pc.binary_join(elem_list_json, ","), "]", "")
        array_json = pc.if_else(pc.is_valid(arrays), array_json, pa.nulls(len(arrays), _S))
        starts = pc.take(elem_offsets, elem_parent)
        e_idx = pc.cast(pc.subtract(pa.array(range(len(elem_parent)), pa.int64()), pc.cast(starts, pa.int64())), pa.int32())
        ev_type, ev_str, ev_num = a_elems.attr_columns()
        elem_rows = (pc.take(a_parent, elem_parent), pc.take(a_key, elem_parent), e_idx, ev_type, ev_str, ev_num)
        empty = pc.and_(pc.is_valid(arrays), pc.equal(elem_len, 0))
    attr_json = a_vals.json_texts(array_json)
    key_json = pc.take(_json_strings(key_codes.dictionary), key_codes.indices)
    frag = pc.binary_join_element_wise(key_json, attr_json, ":")
    attr_offsets = _offsets(_lengths(attr_lists))
    per_span = pa.ListArray.from_arrays(attr_offsets, frag)
    attributes = pc.binary_join_element_wise("{", pc.binary_join(per_span, ","), "}", "")

    vtype, str_val, num_val = a_vals.attr_columns()
    scalar = pc.is_null(a_vals.a)
    parts = [pa.table([
        pc.filter(a_parent, scalar), pc.filter(a_key, scalar), pa.nulls(pc.sum(scalar).as_py() or 0, pa.int32()),
        pc.filter(vtype, scalar), pc.filter(str_val, scalar), pc.filter(num_val, scalar),
    ], schema=ATTR_SCHEMA)]
    if elem_rows is not None:
        parts.append(pa.table(list(elem_rows), schema=ATTR_SCHEMA))
        m = pc.sum(empty).as_py() or 0
        if m:
            parts.append(pa.table([
                pc.filter(a_parent, empty), pc.filter(a_key, empty), pa.nulls(m, pa.int32()),
                pa.array(["array"] * m, _S), pa.array(["[]"] * m, _S), pa.nulls(m, _D),
            ], schema=ATTR_SCHEMA))
    attrs = pa.concat_tables(parts)
    attrs = attrs.set_column(0, "sid", pc.cast(attrs.column("sid"), pa.int64()))

    # events and links: rare, read by the Python rules per span that has them
    events_text = [None] * n
    events_py: dict[int, list] = {}
    ev_lists = pc.struct_field(spans, "events")
    if ev_lists.null_count < n and pc.sum(_lengths(ev_lists)).as_py():
        ev_flat = ev_lists.flatten()
        _require(ev_flat.null_count == 0)
        _check_kvs(pc.struct_field(ev_flat, "attributes"))
        times = pc.struct_field(ev_flat, "timeUnixNano")
        _require(_all(pc.match_substring_regex(pc.drop_null(times), "^[0-9]+$")))
        owners = _parents(ev_lists).to_pylist()
        for owner, ev in zip(owners, ev_flat.to_pylist()):
            t = ev["timeUnixNano"]
            events_py.setdefault(owner, []).append(
                {"name": ev["name"], "time_ns": int(t) if t else None, "attributes": kv_list(ev["attributes"])})
        for owner, evs in events_py.items():
            events_text[owner] = _dumps(evs)
    links_out: list[tuple] = []
    ln_lists = pc.struct_field(spans, "links")
    if ln_lists.null_count < n and pc.sum(_lengths(ln_lists)).as_py():
        ln_flat = ln_lists.flatten()
        _require(ln_flat.null_count == 0)
        _check_kvs(pc.struct_field(ln_flat, "attributes"))
        lt, ls = pc.struct_field(ln_flat, "traceId"), pc.struct_field(ln_flat, "spanId")
        _require(lt.null_count == 0 and ls.null_count == 0)
        _require(_all(pc.match_substring_regex(lt, _TRACE_RE)) and _all(pc.match_substring_regex(ls, _SPAN_RE)))
        per_span: dict[int, list] = {}
        for owner, ln in zip(_parents(ln_lists).to_pylist(), ln_flat.to_pylist()):
            per_span.setdefault(owner, []).append(
                {"trace_id": ln["traceId"], "span_id": ln["spanId"], "attributes": kv_list(ln["attributes"])})
        tids, sids_ = trace_id.to_pylist(), span_id.to_pylist()
        for owner, links in per_span.items():
            links_out.extend(link_rows(owner, tids[owner], sids_[owner], links))

    # agent semantics: Python rules on the few attributes they read, memoised
    derived = _derive_all(name, a_parent, a_key, a_vals, frag, attr_offsets, events_py, n)
    own_agent, typ, model, in_tok, out_tok, session = derived

    ss_rid, ss_service = ss_res
    span_table = pa.table([
        sid, trace_id, span_id, parent, name, kind, status_word, message, start, end,
        pc.take(ss_service, sp_ss), pc.take(ss_rid, sp_ss),
        pc.take(scope_name, sp_ss), pc.take(scope_version, sp_ss),
        attributes, pa.array(events_text, _S),
        own_agent, typ, model, in_tok, out_tok, session, source, pa.nulls(n, pa.int64()),
    ], schema=SPAN_SCHEMA)
    batch = Batch(
        spans=span_table, attrs=attrs, links=_table(links_out, LINK_SCHEMA),
        resources=_table(sink.rrows, RES_SCHEMA), resource_attrs=_table(sink.rarows, RES_ATTR_SCHEMA),
    )
    stats.spans = n
    stats.documents = len(numbers)
    return batch, stats, {FORMAT}, n, True


_TOKEN_KEYS = frozenset(INPUT_TOKEN_KEYS) | frozenset(OUTPUT_TOKEN_KEYS)
_SHAPE_KEYS = pa.array(sorted(derive_keys() - _TOKEN_KEYS), _S)
_TOKEN_KEY_ARRAY = pa.array(sorted(_TOKEN_KEYS), _S)


def _derive_all(name, a_parent, a_key, a_vals: _Values, frag, attr_offsets, events_py: dict, n: int):
    """`semantics.derive` for every span, column-wise.

    A span's agent, type, model and session depend on its name and on the
    attributes `derive` reads, token counts aside: spans are grouped by that
    shape (name plus those attributes as JSON text, built with Arrow) and the
    rules run once per distinct shape. Token counts are read per span that has
    them, and spans with events (token usage may hide there) get the whole rule.
    """
    rel = pc.is_in(a_key, value_set=_SHAPE_KEYS)
    counts = pc.cumulative_sum(pc.cast(rel, pa.int64())) if len(rel) else pa.array([], pa.int64())
    cum = pa.concat_arrays([pa.array([0], pa.int64()), counts])
    rel_offsets = pc.cast(pc.take(cum, attr_offsets), pa.int32())
    shapes = pa.ListArray.from_arrays(rel_offsets, pc.filter(frag, rel))
    shape = pc.binary_join_element_wise(
        pc.binary_join_element_wise("{", pc.binary_join(shapes, ","), "}", ""), name, "\x00")
    encoded = pc.dictionary_encode(shape)
    results = []
    for text in encoded.dictionary.to_pylist():
        attrs_json, _, nm = text.partition("\x00")
        results.append(derive(nm, orjson.loads(attrs_json)))
    cols = list(zip(*results)) if results else [()] * 6
    idx = encoded.indices
    own_agent = pc.take(pa.array(cols[0], _S), idx)
    typ = pc.take(pa.array(cols[1], _S), idx)
    model = pc.take(pa.array(cols[2], _S), idx)
    session = pc.take(pa.array(cols[5], _S), idx)

    in_tok: list = [None] * n
    out_tok: list = [None] * n
    tok_rows = pc.indices_nonzero(pc.is_in(a_key, value_set=_TOKEN_KEY_ARRAY)).to_pylist()
    if tok_rows:
        per_span: dict[int, dict] = {}
        owners = pc.take(a_parent, pa.array(tok_rows, pa.int64())).to_pylist()
        keys = pc.take(a_key, pa.array(tok_rows, pa.int64())).to_pylist()
        for owner, k, v in zip(owners, keys, a_vals.python(tok_rows)):
            per_span.setdefault(owner, {})[k] = v
        for owner, d in per_span.items():
            in_tok[owner] = int64_or_none(as_int(first_value(d, INPUT_TOKEN_KEYS)))
            out_tok[owner] = int64_or_none(as_int(first_value(d, OUTPUT_TOKEN_KEYS)))
    if events_py:
        own_agent, typ, model, session = (x.to_pylist() for x in (own_agent, typ, model, session))
        names = name.to_pylist()
        offsets = attr_offsets.to_pylist()
        rows = [r for owner in events_py for r in range(offsets[owner], offsets[owner + 1])]
        keys = pc.take(a_key, pa.array(rows, pa.int64())).to_pylist() if rows else []
        values = iter(zip(keys, a_vals.python(rows))) if rows else iter(())
        for owner, evs in events_py.items():
            d = dict(next(values) for _ in range(offsets[owner + 1] - offsets[owner]))
            r = derive(names[owner], d, evs)
            own_agent[owner], typ[owner], model[owner], session[owner] = r[0], r[1], r[2], r[5]
            in_tok[owner], out_tok[owner] = int64_or_none(r[3]), int64_or_none(r[4])
        own_agent, typ, model, session = (pa.array(x, _S) for x in (own_agent, typ, model, session))
    return own_agent, typ, model, pa.array(in_tok, pa.int64()), pa.array(out_tok, pa.int64()), session
