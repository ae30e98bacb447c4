"""The benchmark generator writes valid, deterministic OTLP/JSON.

Why it is tested: every performance figure in the README is measured on its
output, so a generator that silently wrote orphans, wrong counts or
non-OTLP shapes would make those figures meaningless.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

GEN_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gen_otlp.py"


def _load_gen():
    spec = importlib.util.spec_from_file_location("gen_otlp", GEN_PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_gen()

N = 1200
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DIGITS = re.compile(r"^[0-9]+$")
ANY_KEYS = {"stringValue", "intValue", "doubleValue", "boolValue", "arrayValue"}


@pytest.fixture(scope="module")
def otlp_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "t.jsonl"
    gen.generate(out, N, seed=7, traces_per_line=6)
    return out


@pytest.fixture(scope="module")
def parsed(otlp_file):
    lines = otlp_file.read_bytes().split(b"\n")
    assert lines[-1] == b""
    return [orjson.loads(line) for line in lines[:-1]]


def _spans(docs):
    for i, doc in enumerate(docs):
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    yield i, rs, ss, s


def _attrs(span) -> dict:
    return {kv["key"]: kv["value"] for kv in span["attributes"]}


def test_exact_span_count_and_line_framing(parsed):
    assert sum(1 for _ in _spans(parsed)) == N
    for doc in parsed:
        assert list(doc) == ["resourceSpans"]
    sizes = [sum(len(ss["spans"]) for rs in d["resourceSpans"] for ss in rs["scopeSpans"]) for d in parsed]
    assert all(200 <= n <= 500 for n in sizes[:-1])
    assert 1 <= sizes[-1] <= 500


def test_lines_are_grouped_by_resource_then_scope(parsed):
    for doc in parsed:
        services = [_service(rs) for rs in doc["resourceSpans"]]
        hosts = [(_service(rs), _res_attr(rs, "host.name")) for rs in doc["resourceSpans"]]
        assert len(hosts) == len(set(hosts))
        assert set(services) <= {"research-assistant", "support-desk", "due-diligence", "content-review",
                                 "research-workers"}
        for rs in doc["resourceSpans"]:
            scopes = [(ss["scope"]["name"], ss["scope"]["version"]) for ss in rs["scopeSpans"]]
            assert len(scopes) == len(set(scopes))


def _res_attr(rs, key):
    return {kv["key"]: kv["value"] for kv in rs["resource"]["attributes"]}[key]["stringValue"]


def _service(rs):
    return _res_attr(rs, "service.name")


def test_span_fields_are_otlp_json(parsed):
    for _, _, _, s in _spans(parsed):
        assert HEX32.match(s["traceId"]) and HEX16.match(s["spanId"])
        assert s["parentSpanId"] == "" or HEX16.match(s["parentSpanId"])
        assert s["kind"] in (1, 2, 3)
        assert DIGITS.match(s["startTimeUnixNano"]) and DIGITS.match(s["endTimeUnixNano"])
        assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"])
        assert 4 <= len(s["attributes"]) <= 10
        for kv in s["attributes"]:
            (vkey,) = kv["value"].keys()
            assert vkey in ANY_KEYS
            if vkey == "intValue":
                assert DIGITS.match(kv["value"]["intValue"])
        assert s["status"] in ({}, {"code": 1}) or (s["status"]["code"] == 2 and s["status"]["message"])


def test_every_parent_is_present_and_ids_unique(parsed):
    spans = [s for _, _, _, s in _spans(parsed)]
    ids = {(s["traceId"], s["spanId"]) for s in spans}
    assert len(ids) == N
    for s in spans:
        if s["parentSpanId"]:
            assert (s["traceId"], s["parentSpanId"]) in ids
    roots = Counter(s["traceId"] for s in spans if not s["parentSpanId"])
    assert set(roots.values()) == {1}
    assert len(roots) == len({s["traceId"] for s in spans})


def test_traces_are_spread_over_several_lines(parsed):
    lines_of = defaultdict(set)
    for i, _, _, s in _spans(parsed):
        lines_of[s["traceId"]].add(i)
    assert max(len(v) for v in lines_of.values()) >= 2
    # about 40 spans per trace
    assert 30 <= N / len(lines_of) <= 50


def test_agent_vocabulary(parsed):
    spans = [s for _, _, _, s in _spans(parsed)]
    names = Counter(s["name"] for s in spans)
    assert names["agent.decision_point"] > 0 and names["tool.web_search"] > 0
    assert names["execute_tool kb_search"] > 0 and names["chat gpt-4o"] > 0 and names["agent.sync"] > 0
    assert any(n.startswith("reasoning_iteration_") for n in names)
    invokes = [s for s in spans if s["name"].endswith("_agent.invoke")]
    assert any("gen_ai.agent.name" in _attrs(s) for s in invokes)
    assert any("agent_name" in _attrs(s) for s in invokes)
    for s in spans:
        a = _attrs(s)
        if s["name"] == "agent.decision_point":
            assert a["decision_type"]["stringValue"] in gen.DECISION_TYPES
            assert 0.0 <= a["decision_confidence"]["doubleValue"] <= 1.0
        if s["name"].startswith("chat "):
            assert a["gen_ai.operation.name"] == {"stringValue": "chat"}
            assert s["name"] == "chat " + a["gen_ai.request.model"]["stringValue"]
            assert int(a["gen_ai.usage.input_tokens"]["intValue"]) > 0
        if s["name"] == "execute_tool kb_search":
            assert a["gen_ai.operation.name"] == {"stringValue": "execute_tool"}
            assert a["gen_ai.tool.name"] == {"stringValue": "kb_search"}
            assert "result_count" in a


def test_errors_carry_status_and_exception_event():
    # more spans so that the ~2% error rate surely produces some
    spans = list(gen.span_stream(4000, 3, 8))
    errors = [s.otlp for s in spans if s.otlp["status"].get("code") == 2]
    assert errors
    for e in errors:
        assert e["status"]["message"]
        (event,) = e["events"]
        assert event["name"] == "exception"
        assert {kv["key"] for kv in event["attributes"]} >= {"exception.type", "exception.message"}


def test_deterministic_for_a_seed(tmp_path, otlp_file):
    again = tmp_path / "again.jsonl"
    other = tmp_path / "other.jsonl"
    gen.generate(again, N, seed=7, traces_per_line=6)
    gen.generate(other, N, seed=8, traces_per_line=6)
    assert again.read_bytes() == otlp_file.read_bytes()
    assert other.read_bytes() != otlp_file.read_bytes()


def test_zero_spans_writes_an_empty_file(tmp_path):
    out = tmp_path / "empty.jsonl"
    assert gen.generate(out, 0) == (0, 0)
    assert out.read_bytes() == b""


def test_flat_format_holds_the_same_spans(tmp_path, parsed):
    out = tmp_path / "flat.jsonl"
    size, lines = gen.generate(out, N, seed=7, traces_per_line=6, fmt="jsonl-flat")
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert lines == len(rows) == N and size == out.stat().st_size
    by_id = {(s["traceId"], s["spanId"]): (rs, s) for _, rs, _, s in _spans(parsed)}
    for row in rows:
        rs, s = by_id[(row["trace_id"], row["span_id"])]
        assert row["parent_span_id"] == (s["parentSpanId"] or None)
        assert row["name"] == s["name"]
        assert row["service"] == _service(rs)
        assert row["kind"] == {1: "internal", 2: "server", 3: "client"}[s["kind"]]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", row["start"])
        assert row["start"][-10:-1] == s["startTimeUnixNano"][-9:]
        assert row["status"] == {0: "unset", 1: "ok", 2: "error"}[s["status"].get("code", 0)]
        assert len(row["attributes"]) == len(s["attributes"])
    first = next(r for r in rows if r["name"].startswith("chat "))
    assert isinstance(first["attributes"]["gen_ai.usage.input_tokens"], int)


def test_iso_ns_keeps_nanoseconds():
    assert gen.iso_ns(1_736_899_200_000_000_001) == "2025-01-15T00:00:00.000000001Z"
    assert gen.iso_ns(1_736_899_261_123_456_789) == "2025-01-15T00:01:01.123456789Z"
