"""Structural facts of the bundled sample_traces/ that other tests rely on.

The files are parsed here with the standard library only (no agtrace
imports), so a failure points at the samples, not at a loader. The ids below
are the notable ones listed in sample_traces/README.md; tests elsewhere may
use them.
"""

from __future__ import annotations

import calendar
import gzip
import json
import subprocess
import sys
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"

CUSTOMER = "customer_inquiry.otlp.jsonl"
CUSTOMER_GZ = "customer_inquiry_more.otlp.jsonl.gz"
COMPLAINT = "complaint_handling.console.txt"
MARKET = "market_research.jsonl"
APPROVAL = "approval.otlp.json"
DATA_FILES = [CUSTOMER, CUSTOMER_GZ, COMPLAINT, MARKET, APPROVAL]

# (traces, spans) per file
COUNTS = {CUSTOMER: (12, 100), CUSTOMER_GZ: (4, 33), COMPLAINT: (4, 43), MARKET: (3, 51), APPROVAL: (5, 58)}

MARKET_TRACE_1 = "592ff49b07831bad230d50eb08dd0a54"
MARKET_TRACE_2 = "fd0b1afd85841045eebbdea4bb538d89"
MARKET_TRACE_3 = "bde7b4a9d99dcc347c77d2985f1d4326"
FAILING_TRACE = "3c418e432faf4f36199ebaa4cdf74602"
FAILING_SPAN = "db316fd2f97e2863"
FAILING_DECISION = "acddea61967bba23"
COMPLAINT_ERROR_TRACE = "684de17cd74d815da919c386e43a1e9b"
APPROVAL_BY_ENCODING = {  # encoding -> (trace id, approval_decision span id)
    "json_string": ("5f1aba75b4af2d081c70abf34cb187d1", "165c6274766a3066"),
    "kvlist_array": ("01bca9f6a7617710f1d77a0483ae3355", "f8c03e9ec50e7250"),
    "events": ("d2ec903163a035d182559a954738a142", "ed45493e4877daca"),
}

NS = 10**9


# ---------------------------------------------------------------- parsing


def _any(value: dict):
    """OTLP AnyValue -> plain Python."""
    (kind, v), = value.items()
    if kind == "intValue":
        assert isinstance(v, str), "intValue must be a string in OTLP/JSON"
        return int(v)
    if kind == "doubleValue":
        return float(v)
    if kind == "arrayValue":
        return [_any(x) for x in v.get("values", [])]
    if kind == "kvlistValue":
        return _kv(v.get("values", []))
    return v


def _kv(items) -> dict:
    return {kv["key"]: _any(kv["value"]) for kv in items or []}


def _otlp_spans(requests: list[dict]) -> list[dict]:
    out = []
    for line, req in enumerate(requests):
        for rs in req["resourceSpans"]:
            service = _kv(rs["resource"]["attributes"])["service.name"]
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    status = s.get("status", {})
                    out.append({
                        "trace_id": s["traceId"], "span_id": s["spanId"],
                        "parent": s.get("parentSpanId") or None, "name": s["name"],
                        "kind": s["kind"], "start": int(s["startTimeUnixNano"]),
                        "end": int(s["endTimeUnixNano"]),
                        "status": {0: "unset", 1: "ok", 2: "error"}[status.get("code", 0)],
                        "message": status.get("message", ""), "service": service,
                        "scope": ss["scope"]["name"], "attrs": _kv(s.get("attributes")),
                        "raw_attrs": s.get("attributes", []),
                        "events": [(e["name"], int(e["timeUnixNano"]), _kv(e.get("attributes")))
                                   for e in s.get("events", [])],
                        "links": [(k["traceId"], k["spanId"], _kv(k.get("attributes")))
                                  for k in s.get("links", [])],
                        "line": line,
                    })
    return out


def _iso_ns(text: str) -> int:
    assert text.endswith("Z"), text
    base, _, frac = text[:-1].partition(".")
    secs = calendar.timegm(datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").timetuple())
    return secs * NS + int(frac.ljust(9, "0"))


def _console_objects(text: str) -> list[dict]:
    dec, pos, objs = json.JSONDecoder(), 0, []
    while pos < len(text.rstrip()):
        obj, end = dec.raw_decode(text, pos)
        objs.append(obj)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return objs


def _strip0x(value: str) -> str:
    assert value.startswith("0x"), value
    return value[2:]


@lru_cache(maxsize=None)
def load(name: str) -> tuple:
    path = SAMPLES / name
    if name == CUSTOMER:
        spans = _otlp_spans([json.loads(line) for line in path.read_text().splitlines()])
    elif name == CUSTOMER_GZ:
        spans = _otlp_spans([json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()])
    elif name == APPROVAL:
        spans = _otlp_spans([json.loads(path.read_text())])
    elif name == COMPLAINT:
        spans = []
        for o in _console_objects(path.read_text()):
            spans.append({
                "trace_id": _strip0x(o["context"]["trace_id"]), "span_id": _strip0x(o["context"]["span_id"]),
                "parent": _strip0x(o["parent_id"]) if o["parent_id"] else None, "name": o["name"],
                "kind": o["kind"], "start": _iso_ns(o["start_time"]), "end": _iso_ns(o["end_time"]),
                "status": o["status"]["status_code"].lower(), "message": o["status"].get("description", ""),
                "service": o["resource"]["attributes"]["service.name"], "attrs": o["attributes"],
                "events": [(e["name"], _iso_ns(e["timestamp"]), e["attributes"]) for e in o["events"]],
                "links": [(_strip0x(k["context"]["trace_id"]), _strip0x(k["context"]["span_id"]), k["attributes"])
                          for k in o["links"]],
            })
    else:
        spans = []
        for line in path.read_text(encoding="utf-8").splitlines():
            o = json.loads(line)
            start = _iso_ns(o["start"])
            end = _iso_ns(o["end"]) if "end" in o else start + round(o["duration_ms"] * 1_000_000)
            spans.append({
                "trace_id": o["trace_id"], "span_id": o["span_id"], "parent": o["parent_span_id"],
                "name": o["name"], "kind": o["kind"], "start": start, "end": end, "status": o["status"],
                "message": o["status_message"] or "", "service": o["service"], "attrs": o["attributes"],
                "events": [(e["name"], _iso_ns(e["time"]), e["attributes"]) for e in o["events"]],
                "links": [(k["trace_id"], k["span_id"], k["attributes"]) for k in o["links"]],
                "raw": o,
            })
    return tuple(spans)


def by_trace(spans) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in spans:
        out.setdefault(s["trace_id"], []).append(s)
    return out


def ancestors(span: dict, index: dict[str, dict]):
    p = span["parent"]
    while p is not None:
        yield index[p]
        p = index[p]["parent"]


def one(spans, **match) -> dict:
    found = [s for s in spans if all(s.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, len(found))
    return found[0]


# ---------------------------------------------------------------- whole directory


def test_directory_holds_exactly_the_documented_files():
    names = sorted(p.name for p in SAMPLES.iterdir() if not p.name.startswith((".", "__")))
    assert names == sorted(DATA_FILES + ["README.md", "make_samples.py", "rules.toml"])
    size = sum((SAMPLES / n).stat().st_size for n in DATA_FILES + ["README.md"])
    assert size < 300_000


@pytest.mark.parametrize("name", DATA_FILES)
def test_trace_and_span_counts_match_readme(name):
    spans = load(name)
    traces, count = COUNTS[name]
    assert (len(by_trace(spans)), len(spans)) == (traces, count)
    readme = (SAMPLES / "README.md").read_text()
    assert f"| `{name}` |" in readme
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
    assert row.split("|")[4:6] == [f" {traces} ", f" {count} "]


def test_ids_unique_parents_present_one_root_per_trace():
    seen: set[str] = set()
    for name in DATA_FILES:
        for trace_id, spans in by_trace(load(name)).items():
            assert len(trace_id) == 32 and int(trace_id, 16) and trace_id == trace_id.lower()
            ids = {s["span_id"] for s in spans}
            assert len(ids) == len(spans)
            assert not ids & seen, name
            seen |= ids
            assert all(len(s["span_id"]) == 16 and s["span_id"] == s["span_id"].lower() for s in spans)
            assert [s["parent"] for s in spans].count(None) == 1
            assert all(s["parent"] is None or s["parent"] in ids for s in spans)


def test_times_are_sane_and_children_nest_inside_parents():
    lo = _iso_ns("2024-01-15T10:00:00Z")
    hi = _iso_ns("2024-01-15T12:30:00Z")
    for name in DATA_FILES:
        spans = load(name)
        index = {s["span_id"]: s for s in spans}
        for s in spans:
            assert lo <= s["start"] < s["end"] <= hi, (name, s["name"])
            if s["parent"]:
                p = index[s["parent"]]
                assert p["start"] <= s["start"] and s["end"] <= p["end"], (name, s["name"])
            for _, t, _ in s["events"]:
                assert s["start"] <= t <= s["end"], (name, s["name"])


def test_every_file_uses_its_service_name():
    services = {name: {s["service"] for s in load(name)} for name in DATA_FILES}
    assert services == {CUSTOMER: {"support-workflow"}, CUSTOMER_GZ: {"support-workflow"},
                        COMPLAINT: {"complaint-handling"}, MARKET: {"market-research"}, APPROVAL: {"approvals"}}


# ---------------------------------------------------------------- OTLP framing


def test_collector_file_spreads_traces_over_lines():
    spans = load(CUSTOMER)
    lines_per_trace = {t: {s["line"] for s in ss} for t, ss in by_trace(spans).items()}
    assert all(len(lines) >= 2 for lines in lines_per_trace.values())
    traces_per_line: dict[int, set] = {}
    for s in spans:
        traces_per_line.setdefault(s["line"], set()).add(s["trace_id"])
    assert max(len(t) for t in traces_per_line.values()) == 2
    assert len((SAMPLES / CUSTOMER).read_text().splitlines()) == len(traces_per_line)
    assert {s["scope"] for s in spans} == {"support_workflow.agents", "opentelemetry.instrumentation.openai_v2"}
    assert {s["kind"] for s in spans} == {1, 2, 3}


def test_collector_writes_integral_doubles_go_style():
    text = (SAMPLES / CUSTOMER).read_text()
    assert '"doubleValue":96}' in text  # resolution_time_minutes 96.0 of inquiry 3
    raw = [kv for s in load(CUSTOMER) for kv in s["raw_attrs"] if kv["key"] == "resolution_time_minutes"]
    assert len(raw) == 12 and all("doubleValue" in kv["value"] for kv in raw)


def test_approval_file_is_one_pretty_printed_request():
    text = (SAMPLES / APPROVAL).read_text()
    assert text.startswith('{\n  "resourceSpans": [\n')
    assert len(json.loads(text)["resourceSpans"]) == 1


def test_gzip_file_is_deterministic_and_holds_distinct_traces():
    data = (SAMPLES / CUSTOMER_GZ).read_bytes()
    assert data[:4] == b"\x1f\x8b\x08\x00" and data[4:8] == b"\x00\x00\x00\x00"  # no name, mtime 0
    assert not set(by_trace(load(CUSTOMER_GZ))) & set(by_trace(load(CUSTOMER)))


# ---------------------------------------------------------------- customer inquiry


def test_customer_inquiry_decisions_mix():
    for name, expected in [(CUSTOMER, {"escalate_to_human": [0.64, 0.72, 0.86], "respond_directly": 9}),
                           (CUSTOMER_GZ, {"escalate_to_human": [0.58], "respond_directly": 3})]:
        decisions = [s for s in load(name) if s["name"] == "agent.decision_point"]
        assert len(decisions) == len(by_trace(load(name)))
        esc = sorted(s["attrs"]["decision_confidence"] for s in decisions
                     if s["attrs"]["decision_type"] == "escalate_to_human")
        direct = [s for s in decisions if s["attrs"]["decision_type"] == "respond_directly"]
        assert esc == expected["escalate_to_human"] and len(direct) == expected["respond_directly"]
        for s in decisions:
            assert s["attrs"]["agent_name"] == "research_agent"
            assert s["attrs"]["reason_code"] and s["attrs"]["reasoning"].endswith(".")
            alts = s["attrs"]["alternatives_considered"]
            assert alts and all(set(a) == {"decision", "confidence", "reason"} for a in alts)
    # the motivating example: decision_type = "escalate_to_human" and decision_confidence < 0.8
    low = [s for n in (CUSTOMER, CUSTOMER_GZ) for s in load(n)
           if s["attrs"].get("decision_type") == "escalate_to_human" and s["attrs"]["decision_confidence"] < 0.8]
    assert len(low) == 3


def test_customer_inquiry_roots_carry_business_attributes():
    roots = [s for s in load(CUSTOMER) if s["parent"] is None]
    assert {s["name"] for s in roots} == {"customer_inquiry_workflow"}
    escalated = sorted(s["attrs"]["escalation_required"] for s in roots)
    assert escalated == [False] * 9 + [True] * 3
    assert {s["attrs"]["business_outcome"] for s in roots} == {"answered", "escalated"}
    assert all(isinstance(s["attrs"]["resolution_time_minutes"], float) for s in roots)


def test_tool_calls_report_result_counts():
    spans = load(CUSTOMER)
    searches = [s for s in spans if s["name"] in ("tool.web_search", "tool.kb_search")]
    assert len(searches) == 24
    assert all(isinstance(s["attrs"]["result_count"], int) for s in searches)
    assert all(s["attrs"]["tool.name"] == s["name"].removeprefix("tool.") for s in spans if s["name"].startswith("tool."))
    llm = [s for s in spans if s["name"] == "chat gpt-4o"]
    assert len(llm) == 12
    assert all(s["attrs"]["gen_ai.request.model"] == "gpt-4o" and s["attrs"]["gen_ai.usage.input_tokens"] > 0
               for s in llm)


def test_ticket_is_triggered_by_and_linked_to_the_escalation_decision():
    for name in (CUSTOMER, CUSTOMER_GZ):
        for trace_id, spans in by_trace(load(name)).items():
            index = {s["span_id"]: s for s in spans}
            decision = one(spans, name="agent.decision_point")
            tickets = [s for s in spans if s["name"] == "tool.create_ticket"]
            agents = [s for s in spans if s["name"] == "escalation_agent.invoke"]
            if decision["attrs"]["decision_type"] != "escalate_to_human":
                assert not tickets and not agents
                continue
            assert len(agents) == 1 and agents[0]["attrs"]["triggered_by"] == decision["span_id"]
            assert agents[0]["attrs"]["context_from_parent"]["reason_code"] == decision["attrs"]["reason_code"]
            assert tickets
            for t in tickets:
                assert t["attrs"]["triggered_by"] == decision["span_id"]
                assert t["links"] == [(trace_id, decision["span_id"], {"link.kind": "caused_by"})]
                assert agents[0] in ancestors(t, index)
                assert t["start"] >= decision["end"]


def test_exactly_one_failing_tool_downstream_of_a_decision():
    errors = [s for n in (CUSTOMER, CUSTOMER_GZ) for s in load(n) if s["status"] == "error"]
    assert [(s["trace_id"], s["span_id"], s["name"]) for s in errors] == [
        (FAILING_TRACE, FAILING_SPAN, "tool.create_ticket")]
    failing = errors[0]
    assert failing["message"] == "ticketing API returned 503 Service Unavailable"
    (ev_name, _, ev_attrs), = failing["events"]
    assert ev_name == "exception"
    assert ev_attrs["exception.type"] == "httpx.HTTPStatusError"
    assert ev_attrs["exception.message"].startswith("Server error '503 Service Unavailable'")
    spans = by_trace(load(CUSTOMER))[FAILING_TRACE]
    decision = one(spans, span_id=FAILING_DECISION)
    assert decision["attrs"]["decision_type"] == "escalate_to_human"
    assert decision["attrs"]["decision_confidence"] == 0.72
    assert failing["attrs"]["triggered_by"] == FAILING_DECISION and failing["start"] > decision["end"]
    retry = [s for s in spans if s["name"] == "tool.create_ticket" and s["status"] != "error"]
    assert len(retry) == 1 and retry[0]["attrs"]["retry.attempt"] == 2 and retry[0]["start"] > failing["end"]


# ---------------------------------------------------------------- complaint handling


def test_console_file_looks_like_the_python_sdk():
    text = (SAMPLES / COMPLAINT).read_text()
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        json.loads(text)
    objs = _console_objects(text)
    assert all(o["context"]["trace_id"].startswith("0x") and o["context"]["trace_state"] == "[]" for o in objs)
    assert {o["kind"] for o in objs} == {"SpanKind.SERVER", "SpanKind.INTERNAL", "SpanKind.CLIENT"}
    assert all(len(o["start_time"]) == len("2024-01-15T10:05:17.207673Z") for o in objs)
    for o in objs:  # the SDK only keeps primitives and homogeneous arrays of primitives
        for v in o["attributes"].values():
            assert isinstance(v, (str, bool, int, float)) or all(isinstance(x, (str, bool, int, float)) for x in v)
    printed = [_strip0x(o["context"]["span_id"]) for o in objs]
    position = {sid: i for i, sid in enumerate(printed)}
    for o in objs:  # spans are printed as they end: children before parents
        if o["parent_id"]:
            assert position[_strip0x(o["parent_id"])] > position[_strip0x(o["context"]["span_id"])]
    order = [o["context"]["trace_id"] for o in objs]
    changes = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert changes > 3  # two complaints ran concurrently: traces interleave


def test_complaint_delegation_chain_and_decisions():
    spans = load(COMPLAINT)
    decisions = [s for s in spans if s["name"] == "agent.decision_point"]
    assert sorted({s["attrs"]["decision_type"] for s in decisions}) == ["classify", "delegate", "escalate", "recommend"]
    delegated = sorted(s["attrs"]["delegated_to"] for s in decisions if "delegated_to" in s["attrs"])
    assert delegated == ["engineering_agent", "engineering_agent", "human_supervisor", "oncall_engineer",
                         "technical_agent", "technical_agent", "technical_agent"]
    index = {s["span_id"]: s for s in spans}
    for s in spans:
        if s["name"] in ("technical_agent.invoke", "engineering_agent.invoke"):
            parent_agent = {"technical_agent.invoke": "triage_agent.invoke",
                            "engineering_agent.invoke": "technical_agent.invoke"}[s["name"]]
            assert index[s["parent"]]["name"] == parent_agent
            context = json.loads(s["attrs"]["context_from_parent"])
            assert context["classification"] == "technical"
            trigger = index[s["attrs"]["triggered_by"]]
            assert trigger["attrs"]["decision_type"] == "delegate"
            assert trigger["attrs"]["delegated_to"] == s["attrs"]["agent_name"]
    steps = [json.loads(s["attrs"]["reasoning_steps"]) for s in decisions if "reasoning_steps" in s["attrs"]]
    assert len(steps) == 2
    assert all(set(step) == {"step", "description", "result", "evidence"} for st in steps for step in st)


def test_error_below_triage_agent():
    spans = load(COMPLAINT)
    index = {s["span_id"]: s for s in spans}
    # status = error and has_ancestor(name = "triage_agent.invoke")
    hits = [s for s in spans if s["status"] == "error"
            and any(a["name"] == "triage_agent.invoke" for a in ancestors(s, index))]
    assert sorted((s["trace_id"], s["name"]) for s in hits) == [
        (COMPLAINT_ERROR_TRACE, "engineering_agent.invoke"), (COMPLAINT_ERROR_TRACE, "tool.query_incidents")]
    assert all(s["events"][0][0] == "exception" and s["events"][0][2]["exception.type"] == "TimeoutError"
               for s in hits)
    assert [s for s in spans if s["status"] == "error"] == hits


# ---------------------------------------------------------------- market research


def _children(spans, parent):
    return [s for s in spans if s["parent"] == parent["span_id"]]


def test_market_research_trace_1_is_the_fan_out_example():
    spans = by_trace(load(MARKET))[MARKET_TRACE_1]
    root = one(spans, parent=None)
    assert root["name"] == "market_research_workflow"
    assert root["end"] - root["start"] == 5_800_000_000
    agents = {s["name"]: s for s in _children(spans, root) if s["name"].endswith("_agent.invoke")}
    assert sorted(agents) == ["competitor_analysis_agent.invoke", "customer_sentiment_agent.invoke",
                              "market_trends_agent.invoke", "synthesis_agent.invoke"]
    research = [agents[n] for n in ("competitor_analysis_agent.invoke", "market_trends_agent.invoke",
                                    "customer_sentiment_agent.invoke")]
    assert [s["end"] - s["start"] for s in research] == [3_000_000_000, 2_100_000_000, 5_400_000_000]
    assert sum(s["end"] - s["start"] for s in research) == 10_500_000_000
    assert max(s["start"] for s in research) - min(s["start"] for s in research) < 1_000_000  # start together
    sentiment = agents["customer_sentiment_agent.invoke"]
    assert max(research, key=lambda s: s["end"]) is sentiment
    sync = one(spans, name="sync.wait_for_research")
    assert sync["parent"] == root["span_id"] and sync["attrs"]["sync_point"] is True
    assert sync["end"] == sentiment["end"]
    assert abs(sync["start"] - min(s["start"] for s in research)) < 1_000_000
    synth = agents["synthesis_agent.invoke"]
    assert synth["start"] > sync["end"] and synth["end"] < root["end"]
    for agent in research:
        kids = _children(spans, agent)
        assert any(k["name"].startswith("tool.") for k in kids) and any(k["name"] == "llm.chat" for k in kids)
        assert all(k["kind"] == "client" for k in kids)
    assert {k["name"] for k in _children(spans, synth)} == {"chat gpt-4o", "agent.decision_point"}
    assert sorted(sid for _, sid, _ in synth["links"]) == sorted(s["span_id"] for s in research)


def test_market_research_other_traces():
    traces = by_trace(load(MARKET))
    assert list(traces) == [MARKET_TRACE_1, MARKET_TRACE_2, MARKET_TRACE_3]
    for trace_id, slowest in [(MARKET_TRACE_2, "competitor_analysis_agent.invoke"),
                              (MARKET_TRACE_3, "market_trends_agent.invoke")]:
        spans = traces[trace_id]
        agents = [s for s in spans if s["name"].endswith("_agent.invoke") and s["name"] != "synthesis_agent.invoke"]
        assert max(agents, key=lambda s: s["end"])["name"] == slowest
        assert one(spans, name="sync.wait_for_research")["end"] == max(s["end"] for s in agents)
    assert all("duration_ms" in s["raw"] and "end" not in s["raw"] for s in traces[MARKET_TRACE_3])
    assert all("end" in s["raw"] for t in (MARKET_TRACE_1, MARKET_TRACE_2) for s in traces[t])
    decision = one(traces[MARKET_TRACE_1], name="agent.decision_point")
    assert [st["step"] for st in decision["attrs"]["reasoning_steps"]] == [1, 2, 3]
    assert decision["attrs"]["decision_type"] == "recommend"


# ---------------------------------------------------------------- approvals


def test_approval_decision_query_of_the_motivating_example():
    lo, hi = _iso_ns("2024-01-15T10:00:00Z"), _iso_ns("2024-01-15T12:00:00Z")
    spans = load(APPROVAL)
    hits = [s for s in spans if s["name"] == "approval_decision" and (s["end"] - s["start"]) / 1e6 > 5000
            and lo < s["start"] < hi]
    assert sorted((s["trace_id"], s["span_id"]) for s in hits) == sorted(APPROVAL_BY_ENCODING.values())
    assert all(s["attrs"]["decision_type"] == "approve" for s in hits)
    assert len([s for s in spans if s["name"] == "approval_decision"]) == 5


def test_each_reasoning_encoding_is_present():
    spans = load(APPROVAL)
    keys = {"step", "description", "result", "evidence"}
    found = {}
    for encoding, (trace_id, span_id) in APPROVAL_BY_ENCODING.items():
        dec = one(spans, span_id=span_id)
        raw = {kv["key"]: kv["value"] for kv in dec["raw_attrs"]}
        assert dec["trace_id"] == trace_id and dec["attrs"]["reasoning_encoding"] == encoding
        assert 0 < dec["attrs"]["decision_confidence"] < 1 and dec["attrs"]["reason_code"]
        assert dec["attrs"]["reasoning"].endswith(".")
        if encoding == "json_string":
            steps = json.loads(raw["reasoning_steps"]["stringValue"])
            alts = json.loads(raw["alternatives_considered"]["stringValue"])
        elif encoding == "kvlist_array":
            assert all("kvlistValue" in v for v in raw["reasoning_steps"]["arrayValue"]["values"])
            assert all("kvlistValue" in v for v in raw["alternatives_considered"]["arrayValue"]["values"])
            steps, alts = dec["attrs"]["reasoning_steps"], dec["attrs"]["alternatives_considered"]
        else:
            assert "reasoning_steps" not in raw and "alternatives_considered" not in raw
            steps = [a for n, _, a in dec["events"] if n == "reasoning_step"]
            alts = [a for n, _, a in dec["events"] if n == "alternative_considered"]
        found[encoding] = len(steps)
        assert all(set(st) == keys for st in steps) and [st["step"] for st in steps] == list(range(1, len(steps) + 1))
        assert alts and all(set(a) == {"decision", "confidence", "reason"} for a in alts)
    assert found == {"json_string": 3, "kvlist_array": 4, "events": 3}


def test_approval_decision_is_preceded_by_iterations_and_tools():
    for trace_id, span_id in APPROVAL_BY_ENCODING.values():
        spans = by_trace(load(APPROVAL))[trace_id]
        dec = one(spans, span_id=span_id)
        siblings = [s for s in spans if s["parent"] == dec["parent"] and s["start"] < dec["start"]]
        iterations = sorted(s["name"] for s in siblings if s["name"].startswith("reasoning_iteration_"))
        assert iterations == [f"reasoning_iteration_{i}" for i in range(1, len(iterations) + 1)]
        assert len(iterations) >= 2
        assert len([s for s in siblings if s["name"].startswith("tool.")]) == 3
        assert all(s["end"] <= dec["start"] for s in siblings)
        notify = one(spans, name="tool.notify_requester")
        assert notify["attrs"]["triggered_by"] == span_id and notify["start"] >= dec["end"]


# ---------------------------------------------------------------- regeneration


def test_generator_rewrites_identical_bytes(tmp_path):
    subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), str(tmp_path)], check=True,
                   capture_output=True)
    produced = sorted(p.name for p in tmp_path.iterdir())
    assert produced == sorted(DATA_FILES + ["README.md"])
    for name in produced:
        new, old = (tmp_path / name).read_bytes(), (SAMPLES / name).read_bytes()
        if name.endswith(".gz"):
            # deflate output may vary between zlib builds; the content and header may not
            assert new[:10] == old[:10]
            new, old = gzip.decompress(new), gzip.decompress(old)
        assert new == old, name
