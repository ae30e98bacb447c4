"""Property-based tests of every reader: random mutations of valid files.

Whatever the bytes, reading a file ends in a result (spans kept, bad records
reported with a line) or a clean `AgtraceError`, never another exception.
Two levels:

* reader level (many examples, no DuckDB): a file goes through decompression,
  framing, format detection, the format's reader and the sink's Arrow
  batches (`loader._read_source`), which is where hostile content can hurt;
* store level (fewer examples): `load_paths` into a store, which adds the
  transaction, deduplication, tree derivation and trace summaries, and the
  store must stay consistent afterwards.

Mutations are structural (a value anywhere in the document replaced by a
random JSON value of any type, a key deleted, a list element duplicated) and
byte-level (cut, flipped, inserted or deleted bytes), over every framing
(one document per line, pretty-printed, arrays, gzip, zstd).

Example counts stay modest so CI is fast and the examples are derandomised
(the same ones every run); AGTRACE_FUZZ_EXAMPLES=2000 AGTRACE_FUZZ_RANDOM=1
explores further on a workstation.
"""

from __future__ import annotations

import copy
import gzip
import json

import otlp_proto_encode
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agtrace.errors import AgtraceError
from agtrace.ingest import load_paths, loader
from agtrace.ingest.sink import FileStats, SpanSink
from agtrace.ingest.sources import Source
from agtrace.store import Store
from conftest import fuzz_settings

FUZZ = fuzz_settings(40, HealthCheck.function_scoped_fixture)
EXAMPLES = FUZZ.max_examples
STORE_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 5, 4))

T1 = "5b8efff798038103d269b633813fc60c"
T2 = "0af7651916cd43dd8448eb211c80319c"
S = ["eee19b7ec3c1b174", "b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8"]
BASE = 1_705_312_800_000_000_000


# -- valid seed documents, one set per format ------------------------------------

def _kv(key, value):
    return {"key": key, "value": value}


def otlp_seed() -> dict:
    attrs = [
        _kv("agent_name", {"stringValue": "planner"}), _kv("gen_ai.usage.input_tokens", {"intValue": "120"}),
        _kv("decision_confidence", {"doubleValue": 0.7}), _kv("ok", {"boolValue": True}),
        _kv("tags", {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}),
        _kv("cfg", {"kvlistValue": {"values": [_kv("depth", {"intValue": "3"})]}}),
        _kv("raw", {"bytesValue": "AAEC"}), _kv("empty", {}),
    ]
    spans = [
        {"traceId": T1, "spanId": S[0], "name": "planner_agent.invoke", "kind": 1,
         "startTimeUnixNano": str(BASE), "endTimeUnixNano": str(BASE + 5_000_000), "attributes": attrs,
         "status": {"code": 1}},
        {"traceId": T1, "spanId": S[1], "parentSpanId": S[0], "name": "tool.search", "kind": "SPAN_KIND_CLIENT",
         "startTimeUnixNano": BASE + 1000, "endTimeUnixNano": BASE + 2000,
         "events": [{"timeUnixNano": str(BASE + 1500), "name": "retry", "attributes": [_kv("n", {"intValue": "1"})]}],
         "links": [{"traceId": T2, "spanId": S[2], "attributes": [_kv("why", {"stringValue": "caused"})]}],
         "status": {"code": "STATUS_CODE_ERROR", "message": "timeout"}},
        {"traceId": T1, "spanId": S[2], "parentSpanId": S[1], "name": "chat gpt-4o",
         "startTimeUnixNano": str(BASE + 1200), "endTimeUnixNano": str(BASE + 1900),
         "attributes": [_kv("gen_ai.operation.name", {"stringValue": "chat"}),
                        _kv("gen_ai.request.model", {"stringValue": "gpt-4o"})]},
    ]
    return {"resourceSpans": [{
        "resource": {"attributes": [_kv("service.name", {"stringValue": "agents"})]},
        "scopeSpans": [{"scope": {"name": "agtrace.fuzz", "version": "1"}, "spans": spans}],
    }]}


def pysdk_seed(i: int) -> dict:
    return {
        "name": f"agent.decision_point {i}",
        "context": {"trace_id": "0x" + T2, "span_id": "0x" + S[i], "trace_state": "[]"},
        "kind": "SpanKind.INTERNAL",
        "parent_id": None if i == 0 else "0x" + S[0],
        "start_time": "2024-01-15T10:00:00.000000Z", "end_time": "2024-01-15T10:00:01.250000Z",
        "status": {"status_code": "ERROR", "description": "bad"} if i == 2 else {"status_code": "UNSET"},
        "attributes": {"agent_name": "router", "decision_type": "route", "confidence": 0.4,
                       "alternatives_considered": ["a", "b"], "reasoning": {"steps": [1, 2]}},
        "events": [{"name": "exception", "timestamp": "2024-01-15T10:00:00.500000Z",
                    "attributes": {"exception.message": "x"}}],
        "links": [{"context": {"trace_id": "0x" + T1, "span_id": "0x" + S[1], "trace_state": "[]"},
                   "attributes": {}}],
        "resource": {"attributes": {"service.name": "py"}, "schema_url": ""},
    }


def flat_seed(i: int) -> dict:
    return {
        "trace_id": T1, "span_id": S[i], "parent_span_id": None if i == 0 else S[0], "name": f"tool.lookup{i}",
        "kind": "client", "start": "2024-01-15T10:00:00Z" if i else 1705312800.25, "duration_ms": 12.5,
        "status": {"code": "error", "message": "boom"} if i == 1 else "ok", "service": "flat",
        "attributes": {"agent_name": "searcher", "n": i, "nested": {"k": [1, 2, {"z": None}]}},
        "events": [{"name": "e", "time": "2024-01-15T10:00:00.001Z", "attributes": {"a": 1}}],
        "links": [{"trace_id": T2, "span_id": S[3], "ref_type": "follows_from"}],
    }


def jaeger_seed() -> dict:
    spans = [
        {"traceID": "463ac35c9f6413ad", "spanID": "a2fb4a1d1a96d312", "operationName": "root",
         "references": [], "startTime": 1705312800000000, "duration": 5000, "processID": "p1",
         "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                  {"key": "n", "type": "int64", "value": 3}, {"key": "f", "type": "float64", "value": 0.5},
                  {"key": "b", "type": "bool", "value": True}, {"key": "bin", "type": "binary", "value": "AAE="}],
         "logs": [{"timestamp": 1705312800001000, "fields": [{"key": "event", "type": "string", "value": "retry"}]}]},
        {"traceID": "463ac35c9f6413ad", "spanID": "b2fb4a1d1a96d312", "operationName": "child",
         "references": [{"refType": "CHILD_OF", "traceID": "463ac35c9f6413ad", "spanID": "a2fb4a1d1a96d312"},
                        {"refType": "FOLLOWS_FROM", "traceID": "1", "spanID": "2"}],
         "startTime": 1705312800001000, "duration": 1000, "processID": "p2", "tags": [], "logs": []},
    ]
    return {"data": [{"traceID": "463ac35c9f6413ad", "spans": spans,
                      "processes": {"p1": {"serviceName": "front", "tags": [{"key": "host", "type": "string", "value": "h"}]},
                                    "p2": {"serviceName": "back", "tags": []}}}],
            "total": 0, "limit": 0, "offset": 0, "errors": None}


def zipkin_seed() -> list:
    return [
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "name": "get /api",
         "kind": "SERVER", "timestamp": 1705312800000000, "duration": 2000,
         "localEndpoint": {"serviceName": "front", "ipv4": "10.0.0.1"},
         "remoteEndpoint": {"serviceName": "client", "port": 443},
         "annotations": [{"timestamp": 1705312800000500, "value": "ws"}], "tags": {"http.method": "GET"}},
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "b2fb4a1d1a96d312", "parentId": "a2fb4a1d1a96d312",
         "name": "query", "kind": "CLIENT", "timestamp": 1705312800000600, "duration": 700, "shared": False,
         "localEndpoint": {"serviceName": "front"}, "tags": {"error": "true"}},
    ]


SEEDS = {
    "otlp-json": lambda: [otlp_seed(), otlp_seed()],
    "otel-python-sdk": lambda: [pysdk_seed(i) for i in range(3)],
    "agtrace-jsonl": lambda: [flat_seed(i) for i in range(3)],
    "jaeger-json": lambda: [jaeger_seed()],
    "zipkin-json": lambda: [zipkin_seed()],
}

# Field names of every format, so random objects look like (broken) spans.
KEYS = sorted({
    "traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano", "attributes",
    "events", "links", "status", "code", "message", "resourceSpans", "scopeSpans", "spans", "resource", "scope",
    "key", "value", "stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue",
    "bytesValue", "values", "context", "trace_id", "span_id", "parent_id", "start_time", "end_time",
    "status_code", "description", "timestamp", "start", "end", "duration_ms", "traceID", "spanID",
    "operationName", "references", "refType", "startTime", "duration", "processID", "processes",
    "serviceName", "tags", "type", "logs", "fields", "data", "id", "parentId", "localEndpoint",
    "remoteEndpoint", "annotations", "shared", "service", "ref_type", "time", "timeUnixNano", "result",
    "batches", "instrumentationLibrarySpans", "instrumentationLibrary", "resourceMetrics", "process",
})

ODD_STRINGS = [
    "", " ", "0x", "0X" + T1, T1.upper(), S[0] + S[0], S[0][:7], "zzzz", "NaN", "Infinity", "-Infinity", "1e400",
    "-1", "18446744073709551616", "2024-01-15T10:00:00Z", "2024-13-45T99:99:99Z", "not a time",
    "SPAN_KIND_SERVER", "SpanKind.CLIENT", "STATUS_CODE_ERROR", "ERROR", "CHILD_OF", "FOLLOWS_FROM",
    "\ud800", "\x00", "é\u2028\ufeff", "'; DROP TABLE spans; --", "read_csv('/etc/passwd')", "x" * 300,
]
LEAVES = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2 ** 130), max_value=2 ** 130),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(ODD_STRINGS),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _paths(doc, prefix=()):
    """Every (container, key) location inside a JSON value."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((doc, k))
            out.extend(_paths(v))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((doc, i))
            out.extend(_paths(v))
    return out


@st.composite
def mutated_docs(draw, fmt: str):
    docs = copy.deepcopy(SEEDS[fmt]())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        target = draw(st.integers(min_value=0, max_value=len(docs) - 1))
        locations = _paths(docs[target])
        if not locations:
            docs[target] = draw(VALUES)
            continue
        container, key = locations[draw(st.integers(min_value=0, max_value=len(locations) - 1))]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "duplicate", "wrap", "empty"]))
        if op == "replace":
            container[key] = draw(VALUES)
        elif op == "delete":
            del container[key]
        elif op == "duplicate":
            v = container[key]
            if isinstance(container, list):
                container.insert(key, copy.deepcopy(v))
            else:
                container[key] = [v, copy.deepcopy(v)]
        elif op == "wrap":
            container[key] = [container[key]]
        else:
            container[key] = {} if isinstance(container[key], dict) else []
    return docs


def frame(docs: list, framing: str) -> bytes:
    if framing == "lines":
        return "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs).encode()
    if framing == "pretty":  # ConsoleSpanExporter: pretty values one after another
        return "".join(json.dumps(d, indent=4) + "\n" for d in docs).encode()
    return json.dumps(docs, indent=1).encode()  # "array"


@st.composite
def byte_mutations(draw, data: bytes):
    data = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not data:
            break
        pos = draw(st.integers(min_value=0, max_value=len(data) - 1))
        op = draw(st.sampled_from(["cut", "flip", "insert", "delete", "dup"]))
        if op == "cut":
            del data[pos:]
        elif op == "flip":
            data[pos] ^= draw(st.integers(min_value=1, max_value=255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
                [b"\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b'{"', b"]", b"\\u", b"NaN", b"\r\n"]))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(min_value=1, max_value=16))]
        else:
            n = draw(st.integers(min_value=1, max_value=200))
            data[pos:pos] = data[pos:pos + n]
    return bytes(data)


def seed_bytes(fmt: str, framing: str, how: str) -> bytes:
    """A valid file of `fmt`. For OTLP protobuf (the Collector's length-prefixed
    messages) framing "array" means each message zstd-compressed on its own."""
    if fmt == "otlp-proto":
        msgs = [otlp_proto_encode.request(otlp_seed()) for _ in range(2)]
        return compress(otlp_proto_encode.frame(msgs, compress_each=framing == "array"), how)
    return compress(frame(SEEDS[fmt](), framing), how)


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


# -- the properties -----------------------------------------------------------------

def read_file(path) -> tuple[str, FileStats, int]:
    """The reader-level path of one file: everything but the store."""
    batches = []
    sink = SpanSink(batches.append, batch_size=7)
    stats = FileStats(str(path))
    sink.stats = stats
    status = loader._read_source(Source(str(path), path, True), None, sink, stats, lambda n: None)
    sink.flush()
    rows = sum(b.spans.num_rows for b in batches)
    return status, stats, rows


# Every reader's own code must handle every shape: the loader's last-resort net
# (`loader.UNREADABLE`, which keeps a reader bug from becoming a traceback) must
# never be what caught the input.
NET_FREE = set(SEEDS) | {"otlp-proto"}


def assert_reader_contract(path, fmt: str | None = None) -> None:
    status, stats, rows = read_file(path)
    assert status in ("loaded", "empty", "unknown format")
    assert rows == stats.spans
    assert stats.bad_count >= len(stats.bad)
    for line, reason in stats.bad + stats.warnings:
        assert line is None or (isinstance(line, int) and line >= 1)
        assert isinstance(reason, str) and reason
        if fmt in NET_FREE:
            assert not reason.startswith(loader.UNREADABLE), reason
    if status == "empty":
        assert stats.spans == 0 and stats.bad_count == 0


FORMATS = sorted(SEEDS)  # JSON formats: structural mutations
ALL_FORMATS = FORMATS + ["otlp-proto"]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_seeds_are_valid_and_fully_read(fmt, fuzz_dir):
    """The unmutated seeds load without a bad record in every framing, so mutations start from valid files."""
    for framing in ("lines", "pretty", "array"):
        for how in ("none", "gzip", "zstd"):
            f = fuzz_dir / f"seed-{fmt}-{framing}-{how}"
            f.write_bytes(seed_bytes(fmt, framing, how))
            status, stats, rows = read_file(f)
            assert (status, stats.bad_count, stats.format) == ("loaded", 0, fmt), (framing, how, stats.bad)
            assert rows == {"otlp-json": 6, "otel-python-sdk": 3, "agtrace-jsonl": 3, "jaeger-json": 2,
                            "zipkin-json": 2, "otlp-proto": 6}[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_structural_mutations_read_cleanly(fmt, fuzz_dir, data):
    docs = data.draw(mutated_docs(fmt))
    framing = data.draw(st.sampled_from(["lines", "pretty", "array"]))
    how = data.draw(st.sampled_from(["none", "none", "gzip", "zstd"]))
    f = fuzz_dir / f"struct-{fmt}"
    f.write_bytes(compress(frame(docs, framing), how))
    assert_reader_contract(f, fmt)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@FUZZ
@given(data=st.data())
def test_byte_mutations_read_cleanly(fmt, fuzz_dir, data):
    framing = data.draw(st.sampled_from(["lines", "pretty", "array"]))
    how = data.draw(st.sampled_from(["none", "none", "gzip", "zstd"]))
    raw = seed_bytes(fmt, framing, how)
    f = fuzz_dir / f"bytes-{fmt}"
    f.write_bytes(data.draw(byte_mutations(raw)))
    assert_reader_contract(f, fmt)


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_read_cleanly(fuzz_dir, data):
    f = fuzz_dir / "random.bin"
    f.write_bytes(data)
    assert_reader_contract(f)


def _store_consistent(store: Store) -> None:
    con = store.con
    n_spans, n_distinct = con.execute(
        "SELECT count(*), count(DISTINCT (sid)) FROM spans").fetchone()
    assert n_spans == n_distinct
    assert con.execute("SELECT coalesce(sum(span_count), 0) FROM traces").fetchone()[0] == n_spans
    assert con.execute("SELECT count(*) FROM attrs WHERE sid NOT IN (SELECT sid FROM spans)").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM spans WHERE depth IS NULL OR depth < 0").fetchone()[0] == 0
    # Every stored JSON text is valid JSON.
    assert con.execute("SELECT count(*) FROM spans WHERE NOT json_valid(attributes)").fetchone()[0] == 0


@pytest.fixture(scope="module")
def stores():
    """One store per format, reused by the examples (each load adds to it)."""
    opened: dict[str, Store] = {}
    yield lambda fmt: opened.setdefault(fmt, Store.memory())
    for store in opened.values():
        store.close()


@pytest.mark.parametrize("fmt", FORMATS)
@STORE_FUZZ
@given(data=st.data())
def test_mutated_files_load_into_a_consistent_store(fmt, fuzz_dir, stores, data):
    docs = data.draw(mutated_docs(fmt))
    raw = frame(docs, data.draw(st.sampled_from(["lines", "pretty", "array"])))
    if data.draw(st.booleans()):
        raw = data.draw(byte_mutations(raw))
    f = fuzz_dir / f"store-{fmt}.json"
    f.write_bytes(raw)
    store = stores(fmt)
    before = store.span_count()
    try:
        report = load_paths(store, [str(f)])
    except AgtraceError as exc:
        assert exc.message
        assert store.span_count() == before  # rolled back
        return
    assert report.spans_in_store == store.span_count() == before + report.spans_added
    assert report.spans_read == report.spans_added + report.duplicates
    _store_consistent(store)
