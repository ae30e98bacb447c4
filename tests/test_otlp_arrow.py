"""The Arrow reader for Collector lines gives exactly what the Python readers give.

Why: `otlp_arrow.read_chunk` is an optimisation of `parallel._parse_chunk`
(the Python readers) for files that look like OpenTelemetry Collector output.
Its contract: for every chunk of lines it either declines (returns None, the
chunk then goes the Python way) or returns the same result, table for table
(attribute rows may come in another order), with the same counts and no bad
records. A difference would make a big file load differently from a small
one, silently. Checked here on generated lines (a property test over what the
format allows, and a mode that writes only the plain Collector shape, which
must take the fast path), on the benchmark generator's output, on the bundled
and shared samples, and end to end through `agtrace load`.

Examples are derandomised (the same every run) like the other fuzz tests;
AGTRACE_FUZZ_EXAMPLES=2000 AGTRACE_FUZZ_RANDOM=1 explores further.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import math
import os
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agtrace.ingest import otlp_arrow, semantics
from agtrace.ingest.parallel import _parse_chunk
from agtrace.ingest.sink import ATTR_SCHEMA, LINK_SCHEMA, RES_ATTR_SCHEMA, RES_SCHEMA, SPAN_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"
GEN_PATH = ROOT / "benchmarks" / "gen_otlp.py"

EXAMPLES = int(os.environ.get("AGTRACE_FUZZ_EXAMPLES", "150"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("AGTRACE_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

SCHEMAS = {"spans": SPAN_SCHEMA, "attrs": ATTR_SCHEMA, "links": LINK_SCHEMA, "resources": RES_SCHEMA,
           "resource_attrs": RES_ATTR_SCHEMA}


# -- the contract -----------------------------------------------------------------

def _plain(v):
    """A value compared exactly: floats by their repr (so -0.0 != 0.0 and NaN == NaN)."""
    if isinstance(v, float):
        return ("float", repr(v))
    return v


def _rows(table: pa.Table, name: str) -> list[tuple]:
    rows = [tuple(_plain(v) for v in r.values()) for r in table.to_pylist()]
    if name == "attrs":  # the one table whose row order is free: (sid, key, idx)
        rows.sort(key=lambda r: (r[0], r[1], -1 if r[2] is None else r[2]))
    return rows


def _tables(batch) -> dict[str, pa.Table]:
    """A batch's tables; the Python readers give no batch when there is nothing."""
    if batch is None:
        return {name: schema.empty_table() for name, schema in SCHEMAS.items()}
    return {name: getattr(batch, name) for name in SCHEMAS}


def python_result(lines: list[bytes], label: str = "f.jsonl", first_line: int = 1):
    return _parse_chunk(label, first_line, lines)  # fast left False: the Python readers only


def check_contract(lines: list[bytes], label: str = "f.jsonl", first_line: int = 1):
    """Assert the contract; returns the fast result (None when it declined)."""
    slow = python_result(lines, label, first_line)
    fast = otlp_arrow.read_chunk(label, first_line, lines)
    if fast is None:
        return None
    fb, fstats, fseen, fcount, fany = fast
    sb, sstats, sseen, scount, sany = slow
    assert fstats.bad_count == 0 and not fstats.bad
    assert (fcount, fstats.spans, fstats.documents, fstats.bad_count) == (
        scount, sstats.spans, sstats.documents, sstats.bad_count)
    # what else the Python readers report must not be lost either
    assert (fstats.warning_count, fstats.other_signals, fstats.unknown_documents) == (
        sstats.warning_count, sstats.other_signals, sstats.unknown_documents)
    assert (fseen, fany) == (sseen, sany)
    ft, st_ = _tables(fb), _tables(sb)
    for name, schema in SCHEMAS.items():
        assert ft[name].schema == schema, name
        assert st_[name].schema == schema, name
        assert _rows(ft[name], name) == _rows(st_[name], name), name
    return fast


# -- writing JSON with every token shape --------------------------------------------

class Raw(str):
    """A JSON token written verbatim (numbers in shapes json.dumps never writes)."""


def enc(v, ascii_: bool, sep: str) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, dict):
        return "{" + sep.join(enc(str(k), ascii_, sep) + ":" + enc(x, ascii_, sep) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + sep.join(enc(x, ascii_, sep) for x in v) + "]"
    if isinstance(v, float):
        return orjson.dumps(v).decode()
    return json.dumps(v, ensure_ascii=ascii_)


# -- strategies -----------------------------------------------------------------------
# Most values are picked from pools (one draw each: fast, and it keeps every
# shape in play); random text, ints and floats come in beside them.

SPECIAL_TEXT = [
    "", " ", '"', "\\", "\x00", "\x1f", "\x7f", "\u0085", "\u2028", "\u2029", "\U0001f600", "é", "日本",
    'a"b\\c\nd\te\r', "42", "-7", "0.9", "1e3", "true", "null", "NaN", "{}", "[1]",
]
TEXT = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(st.characters(codec="utf-8"), max_size=4))

_WORD_SOURCES = ("_GENAI_OPERATION", "_OPENINFERENCE_KIND", "_TRACELOOP_KIND", "_MONOCLE_TYPE", "_LANGSMITH_LANGFUSE_KIND")
WORDS = sorted({w for src in _WORD_SOURCES for w in getattr(semantics, src, {})} | {
    "chat", "execute_tool", "invoke_agent", "create_agent", "agent", "tool", "llm", "LLM", "TOOL", "AGENT",
    "agentic.delegation", "agentic.invocation", "agent.oai", "model.llm.openai", "decision", "handoff",
    "gpt-4o", "researcher", "planner_agent", "", "Chat",
})
# every key the agent rules read, and some they do not
KEYS = sorted(semantics.derive_keys()) + [
    "k", "a.b", "result_count", "error.type", "", "x y", "é", 'q"\\', "\U0001f600", "alternatives_considered",
]
ANY_KEY = st.one_of(st.sampled_from(KEYS), TEXT)
NAMES = st.one_of(st.sampled_from([
    "tool.x", "tool.web_search", "x_agent.invoke", "coordinator_agent.invoke", "Research_Agent.run",
    "invoke_agent y", "invoke_agent [y]", "create_agent z", "invoke_agent", "agent", "agent.invoke",
    "chat gpt-4o", "execute_tool kb_search", "agent.decision_point", "route.decision", "retrieve docs",
    "workflow.run", "my_workflow", "embeddings x", "reasoning_iteration_1", "", " ", "\u2028",
]), TEXT)

# Known difference (xfail below): beyond 2**53 the reader's int -> double cast raises; kept
# out of the property test until fixed (then widen to the 18 digits the reader takes).
INT_LIMIT = 2**53
CANON_INT = st.integers(-INT_LIMIT, INT_LIMIT)
PLAIN_INTS = [0, 1, -1, 5, 42, 2166, -7, 443, 10**15, INT_LIMIT, -INT_LIMIT, 1705312932926549]
# Known differences, also left out until the reader declines them (xfail tests below):
# bare NaN / Infinity tokens (not JSON, but Arrow's parser takes them) and the
# integer token -0 as a double (how Go writes -0.0).
PLAIN_DOUBLES = [0.1, 1e-7, 1e16, 1e300, -0.0, 0.0, 5.0, 2.5, 0.91, -1e-300, 5e-324, 1.7976931348623157e308] + [
    Raw(x) for x in ("5", "0", "1E+2", "1e16", "123456789012345678901234567890", "5.0", "-0.0", "1e-7", "1e300",
                     "12345678901234567890", "-3")]
PLAIN_LEAVES = (
    [{"stringValue": s} for s in SPECIAL_TEXT + WORDS]
    + [{"intValue": str(i)} for i in PLAIN_INTS]
    + [{"doubleValue": d} for d in PLAIN_DOUBLES]
    + [{"boolValue": True}, {"boolValue": False}]
)
_pick = __import__("random").Random(7)
PLAIN_ARRAYS = [{"arrayValue": {}}, {"arrayValue": {"values": []}}] + [
    {"arrayValue": {"values": _pick.sample(PLAIN_LEAVES, _pick.randint(1, 3))}} for _ in range(40)]
WILD_LEAVES = (
    [{"intValue": x} for x in ("+5", "007", "-0", " 5", "5 ", "1_0", "99999999999999999999", "-99999999999999999999",
                                "9223372036854775807", "-9223372036854775808", "9223372036854775808", "5.0", "1e3",
                                "", "abc", "0x10", "1234567890123456789", "999999999999999999")]
    + [{"intValue": Raw(x)} for x in ("5", "-5", "0", "-0", "5.0", "1e3", "99999999999999999999",
                                      "9223372036854775807", "true", "null")]
    + [{"doubleValue": x} for x in ("NaN", "Infinity", "-Infinity", "5", "abc", "")]
    + [{"doubleValue": Raw(x)} for x in ("1e400", "-1e400", "true", "null")]
    + [{"boolValue": x} for x in ("true", Raw("1"), Raw("null"))]
    + [{"stringValue": Raw(x)} for x in ("5", "null", '"\\ud800"', '"\\u0000\\/"')]
    + [{}, {"stringValue": "a", "intValue": "5"}, {"intValue": None, "stringValue": "b"},
       {"kvlistValue": None, "boolValue": True}, {"bytesValue": "AAE="}, {"bytesValue": ""}, {"bytesValue": "Zm9v"}]
)
WILD_VALUES = WILD_LEAVES + [
    {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "1"}}, {"key": "b", "value": {"stringValue": "x"}}]}},
    {"kvlistValue": {"values": [{"key": "a", "value": {"kvlistValue": {"values": []}}}]}},
    {"kvlistValue": {}},
    {"arrayValue": {"values": [{"arrayValue": {"values": [{"intValue": "1"}]}}, {"stringValue": "x"}]}},
    {"arrayValue": {"values": [{"arrayValue": {}}]}},
    {"arrayValue": {"values": [{"kvlistValue": {"values": [{"key": "d", "value": {"boolValue": False}}]}}]}},
    {"arrayValue": {"values": [{}]}},
    {"arrayValue": {"values": [{"intValue": "+1"}, {"doubleValue": "NaN"}]}},
    {"arrayValue": {"values": None}},
]
RANDOM_LEAF = st.one_of(
    TEXT.map(lambda s: {"stringValue": s}),
    CANON_INT.map(lambda i: {"intValue": str(i)}),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda d: {"doubleValue": d}),
)
PLAIN_VALUE = st.one_of(st.sampled_from(PLAIN_LEAVES + PLAIN_ARRAYS), RANDOM_LEAF)
WILD_VALUE = st.one_of(st.sampled_from(PLAIN_LEAVES + PLAIN_ARRAYS), st.sampled_from(WILD_VALUES), RANDOM_LEAF)


@st.composite
def attributes(draw, wild: bool, keys=st.sampled_from(KEYS)):
    """A KeyValue list; wild ones may repeat keys and hold damaged entries."""
    names = draw(st.lists(keys, max_size=4, unique=not wild))
    out = [{"key": k, "value": draw(WILD_VALUE if wild else PLAIN_VALUE)} for k in names]
    if wild and out and draw(st.integers(0, 5)) == 0:
        i = draw(st.integers(0, len(out) - 1))
        damage = draw(st.integers(0, 4))
        if damage == 0:
            del out[i]["value"]
        elif damage == 1:
            del out[i]["key"]
        elif damage == 2:
            out[i]["key"] = Raw("5")
        elif damage == 3:
            out[i]["value"] = None
        else:
            out[i]["extra"] = 1
    return out


HEX16 = st.binary(min_size=8, max_size=8).map(bytes.hex)
HEX32 = st.binary(min_size=16, max_size=16).map(bytes.hex)


@st.composite
def an_id(draw, nbytes: int, wild: bool):
    good = draw(HEX32 if nbytes == 16 else HEX16)
    if not wild or draw(st.integers(0, 5)):
        return good
    raw = bytes.fromhex(good)
    return draw(st.sampled_from([
        good.upper(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="),
        good[:-1], good + "0", "0x" + good, "", Raw(str(int(good, 16))), Raw("null"), " " + good, "zz" * nbytes,
    ]))


@st.composite
def times(draw, wild: bool):
    start = draw(st.integers(0, 1 << 62))
    end = start + draw(st.sampled_from([0, 1, 999, 10**6, 10**9, 10**12]))
    out = {"startTimeUnixNano": str(start), "endTimeUnixNano": str(end)}
    if wild and draw(st.integers(0, 4)) == 0:
        which = draw(st.sampled_from(["startTimeUnixNano", "endTimeUnixNano"]))
        odd = draw(st.sampled_from([Raw(str(start)), Raw("1.5e9"), "", " 5", "+5", "-5", "007", "1.5e9", "0",
                                    "99999999999999999999", "9223372036854775807", None, "x", str(start - 1)]))
        if odd is None:
            del out[which]
        else:
            out[which] = odd
    return out


@st.composite
def event(draw, wild: bool):
    bits = draw(st.integers(0, 15))
    ev = {}
    if bits & 1:
        ev["timeUnixNano"] = str(draw(st.integers(0, 1 << 62)))
        if wild and draw(st.integers(0, 3)) == 0:
            ev["timeUnixNano"] = draw(st.sampled_from(["", "-5", Raw("5"), "1.5", "99999999999999999999999", "0"]))
    if bits & 2:
        ev["name"] = draw(st.one_of(st.just("exception"), TEXT))
    if bits & 4:
        ev["attributes"] = draw(attributes(wild))
    if bits & 8:
        ev["droppedAttributesCount"] = 1
    return ev


@st.composite
def link(draw, wild: bool):
    bits = draw(st.integers(0, 7))
    ln = {"traceId": draw(an_id(16, wild)), "spanId": draw(an_id(8, wild))}
    if bits & 1:
        ln["attributes"] = draw(attributes(wild, ANY_KEY))
    if bits & 2:
        ln["traceState"] = "k=v"
    if bits & 4:
        ln["flags"] = 1
    return ln


WILD_KINDS = [7, -1, 1 << 40, "SPAN_KIND_SERVER", "2", Raw("2.0"), Raw("true"), None]
WILD_CODES = [3, -1, "STATUS_CODE_ERROR", "error", "2", Raw("2.0"), None]


@st.composite
def a_span(draw, wild: bool, trace_ids: list[str]):
    bits = draw(st.integers(0, (1 << 11) - 1))
    has = lambda i: bits >> i & 1  # noqa: E731
    sp = {"traceId": draw(an_id(16, wild)) if has(0) else draw(st.sampled_from(trace_ids)),
          "spanId": draw(an_id(8, wild))}
    if has(1):
        sp["parentSpanId"] = draw(an_id(8, wild)) if has(2) else draw(st.sampled_from(["", "0" * 16]))
    if not has(3):
        sp["name"] = draw(NAMES)
    if has(4):
        sp["kind"] = draw(st.sampled_from(WILD_KINDS)) if wild and draw(st.booleans()) else draw(st.integers(0, 5))
    sp.update(draw(times(wild)))
    if not has(5):
        sp["attributes"] = draw(attributes(wild))
    if has(6):
        status = {}
        if draw(st.integers(0, 3)):
            status["code"] = draw(st.sampled_from(WILD_CODES)) if wild and draw(st.booleans()) else draw(
                st.integers(0, 2))
        if draw(st.booleans()):
            status["message"] = draw(TEXT)
        sp["status"] = status
    if has(7):
        sp["events"] = draw(st.lists(event(wild), max_size=2))
    if has(8) and has(9):
        sp["links"] = draw(st.lists(link(wild), max_size=2))
    if has(10):
        sp.update(flags=257, traceState="", droppedAttributesCount=0, droppedEventsCount=0)
    if wild and draw(st.integers(0, 20)) == 0:
        sp[draw(st.sampled_from(["trace_id", "foo", "start_time_unix_nano"]))] = "x"
    return sp


@st.composite
def resource(draw, wild: bool):
    r = draw(st.integers(0, 7))
    if r == 0:
        return None
    if r == 1:
        return {}
    attrs = draw(attributes(wild, ANY_KEY))
    if r > 2:
        service = draw(st.sampled_from([{"stringValue": "svc-a"}, {"stringValue": "svc-b"}, {"stringValue": ""},
                                        {"intValue": "5"}, {"boolValue": True}, {"doubleValue": 1.5}]))
        if r == 7:
            service = draw(WILD_VALUE if wild else PLAIN_VALUE)
        attrs.insert(draw(st.integers(0, len(attrs))), {"key": "service.name", "value": service})
    res = {"attributes": attrs}
    if r == 4:
        res["droppedAttributesCount"] = 0
    return res


@st.composite
def scope_spans(draw, wild: bool, trace_ids: list[str]):
    ss = {}
    r = draw(st.integers(0, 5))
    if r == 1:
        ss["scope"] = {}
    elif r >= 2:
        scope = {"name": draw(st.one_of(st.sampled_from(["agents", "", "openai.instrumentation"]), TEXT))}
        if r >= 4:
            scope["version"] = draw(st.sampled_from(["1.0", ""]))
        if wild and r == 5 and draw(st.booleans()):
            scope[draw(st.sampled_from(["attributes", "name", "version"]))] = draw(st.sampled_from([[], Raw("5")]))
        ss["scope"] = scope
    ss["spans"] = draw(st.lists(a_span(wild, trace_ids), max_size=3))
    if r == 3:
        ss["schemaUrl"] = "https://opentelemetry.io/schemas/1.21.0"
    return ss


@st.composite
def request(draw, wild: bool):
    trace_ids = draw(st.lists(HEX32, min_size=1, max_size=2))
    rss = []
    for _ in range(draw(st.integers(1, 2))):
        rs = {}
        res = draw(resource(wild))
        if res is not None:
            rs["resource"] = res
        rs["scopeSpans"] = draw(st.lists(scope_spans(wild, trace_ids), min_size=1, max_size=2))
        if draw(st.integers(0, 4)) == 0:
            rs["schemaUrl"] = ""
        rss.append(rs)
    return {"resourceSpans": rss}


DAMAGE = [b"\n", b"   \n", b"\r\n", b"\t\n", b"\x0c\n", b'{"resourceLogs":[]}\n', b"{}\n", b"[]\n", b"null\n",
          b'{"resourceSpans":[]}\n', b'{"resourceSpans":null}\n', b'{"resourceSpans":[]} {"resourceSpans":[]}\n',
          b'{"resourceSpans":[],"x":1}\n', b"BOM", b"CUT", b'{"resourceSpans":[{"scopeSpans":[{"spans":[]}]}]}\r\n',
          b'{"resourceSpans":[null]}\n', b'{"resourceSpans":[{"scopeSpans":[null]}]}\n']


@st.composite
def chunk(draw, wild: bool) -> list[bytes]:
    """A few Collector lines (one request each); wild ones with damage between."""
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        ascii_ = draw(st.booleans())
        sep = ", " if wild and draw(st.integers(0, 3)) == 0 else ","
        text = enc(draw(request(wild)), ascii_, sep).encode()
        if wild and draw(st.integers(0, 5)) == 0:
            extra = draw(st.sampled_from(DAMAGE))
            if extra == b"BOM":
                extra = b"\xef\xbb\xbf" + text + b"\n"
            elif extra == b"CUT":
                extra = text[: draw(st.integers(1, len(text) - 1))] + b"\n"
            lines.append(extra)
        lines.append(text + b"\n")
    if wild and draw(st.integers(0, 4)) == 0:
        lines[-1] = lines[-1].rstrip(b"\n")  # the file's last line, without its newline
    return lines


# -- the property tests ---------------------------------------------------------------

@PROPERTY
@given(lines=st.booleans().flatmap(lambda wild: chunk(wild)), first_line=st.integers(1, 10**6))
def test_fast_reader_declines_or_matches_python(lines, first_line):
    """For any chunk: None, or exactly the Python readers' result."""
    check_contract(lines, first_line=first_line)


@settings(PROPERTY, max_examples=max(EXAMPLES // 3, 10))
@given(lines=chunk(wild=False))
def test_plain_collector_lines_take_the_fast_path(lines):
    """What the Collector writes (hex ids, digit-string times, typed leaf values,
    arrays, events, links, no duplicate keys) is read by Arrow, and exactly."""
    assert check_contract(lines) is not None


# -- known differences: flip to plain tests when the reader is fixed ---------------------

def _line_with_value(value_json: bytes, key: str = "k", extra: list | None = None, name: str = "n") -> bytes:
    attrs = [{"key": key, "value": {"stringValue": "PLACEHOLDER"}}] + (extra or [])
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                              "scopeSpans": [{"scope": {"name": "sc"}, "spans": [{
                                  "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                                  "name": name, "kind": 1, "startTimeUnixNano": "10", "endTimeUnixNano": "20",
                                  "attributes": attrs}]}]}]}
    return orjson.dumps(doc).replace(b'{"stringValue":"PLACEHOLDER"}', value_json) + b"\n"


@pytest.mark.xfail(strict=True, reason=(
    "Arrow's JSON parser takes bare NaN/Infinity tokens as doubles; the Python readers make them null "
    "(values._double): attrs row vtype 'double' str_val 'nan' num_val NaN instead of vtype 'null', NULLs"))
@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_bare_nan_double_is_null_as_in_python(token):
    check_contract([_line_with_value(b'{"doubleValue":' + token + b"}")])


@pytest.mark.xfail(strict=True, reason="a bare NaN array element: attrs row 'double'/'nan' instead of 'null'")
def test_bare_nan_array_element_is_null_as_in_python():
    check_contract([_line_with_value(b'{"arrayValue":{"values":[{"doubleValue":NaN},{"intValue":"3"}]}}')])


@pytest.mark.xfail(strict=True, reason=(
    "gen_ai.usage.input_tokens = bare NaN: Python skips the null and takes prompt_tokens (5); "
    "the fast path takes NaN as the first value and gives input_tokens NULL"))
def test_bare_nan_token_count_falls_through_as_in_python():
    extra = [{"key": "prompt_tokens", "value": {"intValue": "5"}}]
    check_contract([_line_with_value(b'{"doubleValue":NaN}', key="gen_ai.usage.input_tokens", extra=extra,
                                     name="chat gpt-4o")])


@pytest.mark.xfail(strict=True, reason=(
    "doubleValue written as the integer token -0 (Go's encoding of -0.0): orjson reads int 0 and the "
    "Python readers store 0.0 ('{\"k\":0.0}', str_val '0.0'); Arrow reads -0.0 ('{\"k\":-0.0}', str_val '-0.0')"))
@pytest.mark.parametrize("value", [b'{"doubleValue":-0}', b'{"arrayValue":{"values":[{"doubleValue":-0}]}}'])
def test_integer_minus_zero_double_as_in_python(value):
    check_contract([_line_with_value(value)])


@pytest.mark.xfail(strict=True, reason=(
    "resource attribute doubleValue -0: resource service/attributes '-0.0' (fast) vs '0.0' (Python), "
    "so the resource_id differs too"))
def test_integer_minus_zero_double_in_resource_as_in_python():
    line = (b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"doubleValue":-0}}]},'
            b'"scopeSpans":[{"spans":[]}]}]}\n')
    check_contract([line])


@pytest.mark.xfail(strict=True, raises=pa.ArrowInvalid, reason=(
    "intValue beyond 2**53 (e.g. \"9007199254740993\", a plain Collector value): the safe int64 -> double "
    "cast in _Values.attr_columns raises ArrowInvalid out of read_chunk, so `agtrace load` of such a "
    "file (>= 1 MB) ends in a traceback; Python stores num_val float(v)"))
@pytest.mark.parametrize("value", [b'{"intValue":"9007199254740993"}', b'{"intValue":"-999999999999999999"}',
                                   b'{"arrayValue":{"values":[{"intValue":"9007199254740993"}]}}'])
def test_int_beyond_2_pow_53_as_in_python(value):
    check_contract([_line_with_value(value)])


def test_bare_nan_outside_span_attributes_matches():
    """In resource, event and link attributes the values go through the Python rules: same result."""
    base = orjson.loads(_line_with_value(b'{"stringValue":"x"}'))
    sp = base["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    sp["events"] = [{"name": "e", "timeUnixNano": "15", "attributes": [{"key": "a", "value": {"stringValue": "P"}}]}]
    sp["links"] = [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                    "attributes": [{"key": "a", "value": {"stringValue": "P"}}]}]
    base["resourceSpans"][0]["resource"]["attributes"].append({"key": "r", "value": {"stringValue": "P"}})
    line = orjson.dumps(base).replace(b'{"stringValue":"P"}', b'{"doubleValue":NaN}') + b"\n"
    assert check_contract([line]) is not None


# -- exact examples ---------------------------------------------------------------------

def test_number_shapes_match_python():
    """Doubles in every JSON shape and canonical ints take the fast path with Python's values."""
    cases = [b'{"doubleValue":5}', b'{"doubleValue":-0.0}', b'{"doubleValue":1e16}',
             b'{"doubleValue":1E+2}', b'{"doubleValue":1e-7}', b'{"doubleValue":1e300}', b'{"doubleValue":5e-324}',
             b'{"doubleValue":123456789012345678901234567890}', b'{"doubleValue":0.30000000000000004}',
             b'{"intValue":"0"}', b'{"intValue":"-42"}', b'{"intValue":"9007199254740992"}',
             b'{"arrayValue":{}}', b'{"arrayValue":{"values":[]}}',
             b'{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"1"},{"doubleValue":2},{"boolValue":false}]}}',
             b'{"stringValue":"\\u2028\\ud83d\\ude00\\u007f\\u0001\\"\\\\"}']
    for case in cases:
        assert check_contract([_line_with_value(case)]) is not None, case
    fast = otlp_arrow.read_chunk("f", 1, [_line_with_value(b'{"doubleValue":1e16}')])
    attrs = fast[0].attrs.to_pylist()
    assert attrs == [{"sid": 0, "key": "k", "idx": None, "vtype": "double", "str_val": "1e+16", "num_val": 1e16}]
    assert fast[0].spans.column("attributes").to_pylist() == ['{"k":1e+16}']


@pytest.mark.parametrize("value", [b'{"intValue":"+5"}', b'{"intValue":"007"}', b'{"intValue":"-0"}',
                                   b'{"intValue":" 5"}', b'{"intValue":"99999999999999999999"}',
                                   b'{"intValue":5}', b'{"intValue":"5.0"}', b'{"doubleValue":"NaN"}',
                                   b'{"doubleValue":1e400}', b'{"kvlistValue":{"values":[]}}',
                                   b'{"bytesValue":"AAE="}', b"{}", b'{"stringValue":"a","intValue":"5"}',
                                   b'{"stringValue":5}', b'{"boolValue":"true"}',
                                   b'{"arrayValue":{"values":[{"arrayValue":{}}]}}'])
def test_values_only_python_reads_exactly_are_declined(value):
    """Non-canonical ints ("+5" prints as 5 in Python), kvlists, bytes, empty values: the Python way."""
    line = _line_with_value(value)
    assert otlp_arrow.read_chunk("f", 1, [line]) is None
    assert python_result([line])[1].spans == 1


def test_sources_blank_lines_and_counts():
    """Spans name their own file line; blank lines are skipped but still counted."""
    line = _line_with_value(b'{"boolValue":true}')
    lines = [b"\n", line, b"  \n", b"\n", line]
    fast = check_contract(lines, label="big.jsonl", first_line=41)
    assert fast is not None
    assert fast[0].spans.column("source").to_pylist() == ["big.jsonl:42", "big.jsonl:45"]
    assert (fast[1].spans, fast[1].documents, fast[3]) == (2, 2, 2)


@pytest.mark.parametrize("lines", [
    [b"\xef\xbb\xbf" + _line_with_value(b'{"boolValue":true}')],
    [_line_with_value(b'{"boolValue":true}'), b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":'],
    [_line_with_value(b'{"boolValue":true}'), b'{"resourceLogs":[]}\n'],
    [b"\n", b"  \n"],
    [_line_with_value(b'{"boolValue":true}').rstrip(b"\n") + b' {"resourceSpans":[]}\n'],
], ids=["bom", "damaged", "other-signal", "blank", "two-documents"])
def test_lines_with_damage_or_other_content_are_declined(lines):
    assert otlp_arrow.read_chunk("f", 1, lines) is None


def test_empty_request_and_resource_only():
    """A request with no spans: no spans either way; its resource is still registered."""
    lines = [b'{"resourceSpans":[]}\n',
             b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},'
             b'"scopeSpans":[{"spans":[]}]}]}\n']
    fast = check_contract(lines)
    assert fast is not None
    assert fast[0].resources.column("service").to_pylist() == ["s"]
    assert (fast[0].spans.num_rows, fast[1].documents) == (0, 2)


# -- real files ------------------------------------------------------------------------------

def _gen():
    spec = importlib.util.spec_from_file_location("gen_otlp_for_arrow_test", GEN_PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "otlp.jsonl"
    _gen().generate(out, 2500, seed=11, traces_per_line=6)
    return out


def test_benchmark_generator_output_takes_the_fast_path(generated):
    lines = generated.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 6
    fast = check_contract(lines, label=str(generated))
    assert fast is not None and fast[3] == 2500
    # and in chunks, as the loader cuts them (any line may start a chunk)
    for start in range(0, len(lines), 3):
        assert check_contract(lines[start:start + 3], first_line=start + 1) is not None


def _line_delimited_otlp(data: bytes) -> bool:
    lines = [x for x in data.splitlines() if x.strip()]
    return len(lines) > 1 and all(x.lstrip().startswith(b'{"resource') for x in lines)


def _bundled():
    out = []
    for p in sorted(SAMPLES.glob("*")):
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() if p.is_file() else b""
        if otlp_arrow.looks_like(data[:64]) and _line_delimited_otlp(data):
            out.append(pytest.param(p.name, data, id=p.name))
    return out


@pytest.mark.parametrize("name,data", _bundled())
def test_bundled_collector_samples_decline_or_match(name, data):
    """The bundled Collector files: the whole file, each line alone (as a chunk
    boundary may leave it) and the lines the fast path takes, together.
    (Lines with kvlists inside arrays are declined: the Python way, by design.)"""
    lines = data.splitlines(keepends=True)
    check_contract(lines, label=name)
    taken = []
    for i, line in enumerate(lines):
        if line.strip() and check_contract([line], label=name, first_line=i + 1) is not None:
            taken.append(line)
    assert len(taken) >= 3
    fast = check_contract(taken, label=name)
    assert fast is not None and fast[3] > len(taken)


def test_bundled_samples_include_collector_files():
    names = {x.values[0] for x in _bundled()}
    assert {"customer_inquiry.otlp.jsonl", "customer_inquiry_more.otlp.jsonl.gz"} <= names


def test_shared_samples_decline_or_match():
    """Real files from other projects: whatever the fast path reads, it reads exactly."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("../shared/samples is not present (a user's clone)")
    checked = 0
    for p in sorted(SHARED_SAMPLES.iterdir()):
        if not p.is_file():
            continue
        data = p.read_bytes()
        lines = data.splitlines(keepends=True)
        if len([x for x in lines if x.strip()]) < 2 or not lines[0].lstrip().startswith(b"{"):
            continue
        check_contract(lines, label=p.name)
        for i, line in enumerate(lines):
            if line.strip():
                check_contract([line], label=p.name, first_line=i + 1)
        checked += 1
    assert checked >= 1


# -- end to end --------------------------------------------------------------------------------

STORE_QUERIES = {
    "spans": "SELECT * EXCLUDE (sid) FROM spans ORDER BY sid",
    "attrs": "SELECT s.span_id, a.key, a.idx, a.vtype, a.str_val, a.num_val FROM attrs a JOIN spans s USING (sid) "
             "ORDER BY s.span_id, a.key, a.idx",
    "sids": "SELECT sid, span_id FROM spans ORDER BY sid",
    "resources": "SELECT * FROM resources ORDER BY resource_id",
    "resource_attrs": "SELECT * FROM resource_attrs ORDER BY resource_id, key, idx",
    "links": "SELECT * FROM links ORDER BY sid, idx",
    "traces": "SELECT * FROM traces ORDER BY trace_id",
}


def _store_rows(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: [tuple(_plain(v) for v in r) for r in con.execute(q).fetchall()] for name, q in STORE_QUERIES.items()}
    finally:
        con.close()


def test_load_with_fast_path_gives_the_same_store(generated, tmp_path, monkeypatch):
    """`agtrace load` of a Collector file: chunked through Arrow in-process
    (AGTRACE_FAST_MIN_BYTES=0) or read by the Python readers, the store is the same."""
    from typer.testing import CliRunner

    from agtrace.cli import app
    from agtrace.ingest import parallel

    f = tmp_path / "more.jsonl"
    # plain lines, then lines the fast path declines (a damaged line, a kvlist), then plain ones again
    kv = _line_with_value(b'{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}}')
    lines = generated.read_bytes().splitlines(keepends=True)
    f.write_bytes(b"".join(lines[:4]) + b"{broken\n" + kv + b"".join(lines[4:]))
    fast_chunks = []
    real = otlp_arrow.read_chunk
    monkeypatch.setattr(otlp_arrow, "read_chunk", lambda *a: fast_chunks.append(r := real(*a)) or r)
    monkeypatch.setattr(parallel, "MIN_BYTES", 1 << 50)  # no process pool: the in-process chunked path
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 64 << 10)
    results = {}
    for mode, min_bytes in (("fast", 0), ("python", 1 << 50)):
        db = tmp_path / f"{mode}.duckdb"
        monkeypatch.setattr(otlp_arrow, "MIN_BYTES", min_bytes)
        r = CliRunner().invoke(app, ["load", "--db", str(db), str(f)])
        assert r.exit_code == 0, r.stderr
        assert f"{f}:5: skipped: invalid JSON" in r.stderr
        results[mode] = _store_rows(db)
    assert sum(c is not None for c in fast_chunks) >= 2 and sum(c is None for c in fast_chunks) == 1
    fast, python = results["fast"], results["python"]
    for name in STORE_QUERIES:
        assert fast[name] == python[name], name
    assert len(fast["spans"]) == 2501 and len(fast["traces"]) > 10 and len(fast["resources"]) > 1


def test_fast_min_bytes_comes_from_the_environment():
    import subprocess
    import sys

    env = dict(os.environ, AGTRACE_FAST_MIN_BYTES="0", PYTHONPATH=str(ROOT / "cli"))
    r = subprocess.run([sys.executable, "-c", "from agtrace.ingest import otlp_arrow; print(otlp_arrow.MIN_BYTES)"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.stdout == "0\n", r.stderr
