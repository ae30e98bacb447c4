"""Jaeger JSON: UI download, API v1 `{"data": [...]}`, bare traces, span arrays, protobuf-JSON."""

from __future__ import annotations

import base64
import json

import orjson
import pytest

from agtrace.ingest import load_paths
from agtrace.store import Store
from conftest import invoke

T = "4a1b2c3d4e5f60718293a4b5c6d7e8f9"
OTHER_T = "0af7651916cd43dd8448eb211c80319c"
US = 1_705_312_800_000_000  # 2024-01-15T10:00:00Z in microseconds


def tag(key, type_, value):
    return {"key": key, "type": type_, "value": value}


def jspan(sid, op, start_us, dur_us, *, refs=(), tags=(), logs=(), pid="p1", trace=T, **extra):
    sp = {"traceID": trace, "spanID": sid, "operationName": op, "references": list(refs),
          "startTime": start_us, "duration": dur_us, "tags": list(tags), "logs": list(logs), "processID": pid}
    sp.update(extra)
    return sp


def child_of(sid, trace=T):
    return {"refType": "CHILD_OF", "traceID": trace, "spanID": sid}


def follows_from(sid, trace=T):
    return {"refType": "FOLLOWS_FROM", "traceID": trace, "spanID": sid}


def ui_trace():
    """A UI download: every tag type, logs, references of both kinds, two processes."""
    return {
        "traceID": T,
        "spans": [
            jspan("0000000000000001", "POST /run", US, 5_000_000, tags=[tag("span.kind", "string", "server")]),
            jspan("0000000000000002", "invoke_agent planner", US + 1000, 3_000_000,
                  refs=[child_of("0000000000000001"), child_of("00000000000000aa", OTHER_T),
                        follows_from("0000000000000003")],
                  tags=[tag("gen_ai.operation.name", "string", "invoke_agent"),
                        tag("gen_ai.agent.name", "string", "planner"),
                        tag("span.kind", "string", "internal"),
                        tag("retries", "int64", 2), tag("big", "int64", "9007199254740993"),
                        tag("ratio", "float64", 0.25), tag("ratio_text", "float64", "1.5"),
                        tag("cached", "bool", False), tag("cached_text", "bool", "true"),
                        tag("blob", "binary", base64.b64encode(b"\x00\x01").decode()),
                        tag("otel.scope.name", "string", "agents"), tag("otel.scope.version", "string", "1.2")],
                  logs=[{"timestamp": US + 2000, "fields": [tag("event", "string", "handoff"),
                                                            tag("to", "string", "writer")]},
                        {"timestamp": US + 3000, "fields": [tag("message", "string", "no event field")]}]),
            jspan("0000000000000003", "chat gpt-4o", US + 1500, 1_000_000, refs=[child_of("0000000000000002")],
                  tags=[tag("gen_ai.operation.name", "string", "chat"), tag("gen_ai.request.model", "string", "gpt-4o"),
                        tag("gen_ai.usage.input_tokens", "int64", 100), tag("gen_ai.usage.output_tokens", "int64", 20),
                        tag("span.kind", "string", "client"), tag("error", "bool", True),
                        tag("otel.status_description", "string", "rate limited")], pid="p2"),
            jspan("0000000000000004", "execute_tool save", US + 2500, 10,
                  refs=[follows_from("0000000000000002"), child_of("0000000000000002"), child_of("0000000000000003")],
                  tags=[tag("gen_ai.operation.name", "string", "execute_tool"), tag("otel.status_code", "string", "OK")]),
        ],
        "processes": {
            "p1": {"serviceName": "agent-svc", "tags": [tag("hostname", "string", "h1"), tag("pid", "int64", 7)]},
            "p2": {"serviceName": "llm-proxy", "tags": []},
        },
        "warnings": None,
    }


def load(tmp_path, doc, name="trace.json"):
    f = tmp_path / name
    f.write_bytes(doc if isinstance(doc, bytes) else orjson.dumps(doc))
    store = Store.memory()
    report = load_paths(store, [str(f)])
    return store, report


def q(store, sql, params=()):
    return store.con.execute(sql, list(params)).fetchall()


def test_ui_download_spans_parents_kinds_status_times(tmp_path):
    store, report = load(tmp_path, ui_trace())
    assert report.files[0].format == "jaeger-json" and report.bad_records == 0 and report.warnings == 0
    assert q(store, """SELECT span_id, parent_span_id, name, kind, status, status_message, start_ns, duration_ns,
                              service, depth, scope_name, scope_version FROM spans ORDER BY span_id""") == [
        ("0000000000000001", None, "POST /run", "server", "unset", None, US * 1000, 5_000_000_000, "agent-svc", 0, None, None),
        ("0000000000000002", "0000000000000001", "invoke_agent planner", "internal", "unset", None,
         (US + 1000) * 1000, 3_000_000_000, "agent-svc", 1, "agents", "1.2"),
        ("0000000000000003", "0000000000000002", "chat gpt-4o", "client", "error", "rate limited",
         (US + 1500) * 1000, 1_000_000_000, "llm-proxy", 2, None, None),
        ("0000000000000004", "0000000000000002", "execute_tool save", "unspecified", "ok", None,
         (US + 2500) * 1000, 10_000, "agent-svc", 2, None, None),
    ]


def test_references_first_child_of_is_parent_the_rest_are_links(tmp_path):
    store, _ = load(tmp_path, ui_trace())
    assert q(store, "SELECT span_id, idx, linked_trace_id, linked_span_id, ref_type FROM links ORDER BY span_id, idx") == [
        ("0000000000000002", 0, OTHER_T, "00000000000000aa", "child_of"),
        ("0000000000000002", 1, T, "0000000000000003", "follows_from"),
        ("0000000000000004", 0, T, "0000000000000002", "follows_from"),
        ("0000000000000004", 1, T, "0000000000000003", "child_of"),
    ]


def test_tags_keep_their_types_and_logs_become_events(tmp_path):
    store, _ = load(tmp_path, ui_trace())
    attrs = q(store, """SELECT key, vtype, str_val, num_val FROM attrs JOIN spans USING (sid)
                        WHERE span_id = '0000000000000002' ORDER BY key""")
    assert attrs == [
        ("big", "int", "9007199254740993", 9007199254740992.0),
        ("blob", "string", "AAE=", None),
        ("cached", "bool", "false", None),
        ("cached_text", "bool", "true", None),
        ("gen_ai.agent.name", "string", "planner", None),
        ("gen_ai.operation.name", "string", "invoke_agent", None),
        ("otel.scope.name", "string", "agents", None),
        ("otel.scope.version", "string", "1.2", None),
        ("ratio", "double", "0.25", 0.25),
        ("ratio_text", "double", "1.5", 1.5),
        ("retries", "int", "2", 2.0),
        ("span.kind", "string", "internal", None),
    ]
    events = json.loads(q(store, "SELECT events FROM spans WHERE span_id = '0000000000000002'")[0][0])
    assert events == [
        {"name": "handoff", "time_ns": (US + 2000) * 1000, "attributes": {"to": "writer"}},
        {"name": "log", "time_ns": (US + 3000) * 1000, "attributes": {"message": "no event field"}},
    ]


def test_processes_become_resources_and_semantics_apply(tmp_path):
    store, _ = load(tmp_path, ui_trace())
    assert q(store, "SELECT service, attributes FROM resources ORDER BY service") == [
        ("agent-svc", '{"hostname":"h1","pid":7,"service.name":"agent-svc"}'),
        ("llm-proxy", '{"service.name":"llm-proxy"}'),
    ]
    assert q(store, "SELECT span_id, agent, type, model, input_tokens, output_tokens FROM spans ORDER BY span_id") == [
        ("0000000000000001", None, "other", None, None, None),
        ("0000000000000002", "planner", "agent", None, None, None),
        ("0000000000000003", "planner", "llm", "gpt-4o", 100, 20),
        ("0000000000000004", "planner", "tool", None, None, None),
    ]


def test_api_v1_data_wrapper_with_two_traces_and_empty_response(tmp_path):
    t2 = ui_trace()
    t2["traceID"] = OTHER_T
    for sp in t2["spans"]:
        sp["traceID"] = OTHER_T
        for r in sp["references"]:
            if r["traceID"] == T:
                r["traceID"] = OTHER_T
    store, report = load(tmp_path, {"data": [ui_trace(), t2], "total": 0, "limit": 0, "offset": 0, "errors": None})
    assert report.spans_added == 8
    assert q(store, "SELECT trace_id, span_count, root_name FROM traces ORDER BY trace_id") == [
        (OTHER_T, 4, "POST /run"), (T, 4, "POST /run")]
    store, report = load(tmp_path, {"data": [], "total": 0, "limit": 0, "offset": 0, "errors": None}, "empty.json")
    assert report.files[0].status == "loaded" and report.spans_added == 0 and report.bad_records == 0


def test_array_of_spans_with_embedded_process_and_loose_ids(tmp_path):
    spans = [
        {"traceID": "2", "spanID": "1", "operationName": "root", "references": [], "startTime": US,
         "duration": 100, "tags": [], "process": {"serviceName": "svc-a", "tags": []}},
        {"traceID": "2", "spanID": "ABC", "parentSpanID": "1", "operationName": "child", "startTime": US + 10,
         "duration": 50, "tags": [], "process": {"serviceName": "svc-b", "tags": [tag("ip", "string", "10.0.0.1")]}},
        {"traceID": "2", "spanID": "span-x", "operationName": "odd", "startTime": US + 20, "duration": 5,
         "references": [{"refType": "CHILD_OF", "traceID": "2", "spanID": "abc"}], "process": {"serviceName": "svc-b"}},
        {"traceID": "0X00F067AA0BA902B700F067AA0BA902B7", "spanID": "00F067AA0BA902B7", "parentSpanID": "0",
         "operationName": "hex", "startTime": US, "duration": 1, "process": {"serviceName": "svc-c"}},
    ]
    store, report = load(tmp_path, spans)
    assert report.files[0].format == "jaeger-json" and report.bad_records == 0
    assert q(store, "SELECT trace_id, span_id, parent_span_id, service, depth FROM spans ORDER BY start_ns, span_id") == [
        ("00f067aa0ba902b700f067aa0ba902b7", "00f067aa0ba902b7", None, "svc-c", 0),
        ("2", "1", None, "svc-a", 0),
        ("2", "abc", "1", "svc-b", 1),
        ("2", "span-x", "abc", "svc-b", 2),
    ]


def test_missing_duration_and_bad_spans_are_reported_not_fatal(tmp_path):
    trace = ui_trace()
    del trace["spans"][3]["duration"]
    del trace["spans"][2]["spanID"]
    trace["spans"][1]["startTime"] = "yesterday"
    store, report = load(tmp_path, trace)
    assert report.spans_added == 2
    assert [r for _, r in report.files[0].bad] == ["startTime 'yesterday' is not a time in microseconds", "missing spanID"]
    assert [r for _, r in report.files[0].warning_list] == ["span 0000000000000004: missing end time, duration set to 0"]


def test_odd_shapes_are_tolerated(tmp_path):
    trace = ui_trace()
    trace["spans"][0]["processID"] = ["p1"]          # not an id: no service
    trace["spans"][1]["tags"] = {"k": "v"}           # not a list: no attributes
    trace["spans"][2]["logs"] = [None, {"fields": None}]
    trace["spans"][3]["references"] = [None, {"refType": "CHILD_OF"}, {"spanID": "0000000000000002"}]
    trace["processes"] = {"p1": None, "p2": {"serviceName": None, "tags": "x"}}
    store, report = load(tmp_path, trace)
    assert (report.spans_added, report.bad_records) == (4, 0)
    assert [r for _, r in report.files[0].warning_list] == [
        "span 0000000000000004: reference dropped: missing reference spanID"]
    assert q(store, "SELECT span_id, parent_span_id, service, resource_id FROM spans ORDER BY span_id") == [
        ("0000000000000001", None, None, None), ("0000000000000002", "0000000000000001", None, None),
        ("0000000000000003", "0000000000000002", None, None), ("0000000000000004", "0000000000000002", None, None)]
    assert q(store, "SELECT attributes FROM spans WHERE span_id = '0000000000000002'") == [("{}",)]
    assert q(store, "SELECT events FROM spans WHERE span_id = '0000000000000003'") == [
        ('[{"name":"log","time_ns":null,"attributes":{}}]',)]


def test_protobuf_json_form_in_result_wrapper(tmp_path):
    tid = bytes.fromhex(T)
    b64 = lambda h: base64.b64encode(bytes.fromhex(h)).decode()  # noqa: E731
    doc = {"result": {"spans": [
        {"traceId": base64.b64encode(tid).decode(), "spanId": b64("0000000000000001"), "operationName": "root",
         "startTime": "2024-01-15T10:00:00.000001Z", "duration": "0.5s",
         "tags": [{"key": "span.kind", "vStr": "server"}, {"key": "n", "vType": "INT64", "vInt64": "42"},
                  {"key": "ok", "vType": "BOOL", "vBool": True}, {"key": "f", "vType": "FLOAT64", "vFloat64": 0.5}],
         "process": {"serviceName": "svc", "tags": []}},
        {"traceId": base64.b64encode(tid).decode(), "spanId": b64("0000000000000002"), "operationName": "child",
         "references": [{"traceId": base64.b64encode(tid).decode(), "spanId": b64("0000000000000001")}],
         "startTime": "2024-01-15T10:00:00.100Z", "duration": "0.000200s",
         "logs": [{"timestamp": "2024-01-15T10:00:00.1001Z", "fields": [{"key": "event", "vStr": "retry"}]}],
         "process": {"serviceName": "svc"}},
    ]}}
    store, report = load(tmp_path, doc)
    assert report.files[0].format == "jaeger-json" and report.bad_records == 0
    assert q(store, "SELECT trace_id, span_id, parent_span_id, kind, start_ns, duration_ns, events FROM spans ORDER BY span_id") == [
        (T, "0000000000000001", None, "server", US * 1000 + 1000, 500_000_000, None),
        (T, "0000000000000002", "0000000000000001", "unspecified", US * 1000 + 100_000_000, 200_000,
         '[{"name":"retry","time_ns":1705312800100100000,"attributes":{}}]'),
    ]
    assert q(store, "SELECT key, vtype, str_val FROM attrs JOIN spans USING (sid) WHERE span_id = '0000000000000001' ORDER BY key") == [
        ("f", "double", "0.5"), ("n", "int", "42"), ("ok", "bool", "true"), ("span.kind", "string", "server")]


def test_cli_detects_jaeger_from_content_not_extension(tmp_path):
    f = tmp_path / "export.txt"
    f.write_text(json.dumps(ui_trace(), indent=2))
    r = invoke(["load", f])
    assert r.exit_code == 0, r.stderr
    assert f"{f}: 4 spans [jaeger-json]" in r.stderr


def test_genai_agent_sample_agents_and_types(shared_samples):
    store = Store.memory()
    load_paths(store, [str(shared_samples / "jaeger_ui_genai_agent_trace.json")])
    assert q(store, "SELECT agent, type, count(*) FROM spans GROUP BY ALL ORDER BY ALL") == [
        ("summarizer", "agent", 1), ("summarizer", "llm", 1), ("summarizer", "other", 1),
        ("triage-agent", "agent", 1), ("triage-agent", "llm", 4), ("triage-agent", "other", 36),
        ("triage-agent", "retrieval", 3), ("triage-agent", "tool", 7),
        (None, "other", 3),
    ]
    assert q(store, "SELECT model, sum(input_tokens), sum(output_tokens) FROM spans WHERE type = 'llm' GROUP BY ALL ORDER BY ALL") == [
        ("model-a", 7360, 1040), ("model-b", 920, 140)]
    # The GET /api/v1/pods span carries error=true.
    assert q(store, "SELECT name, service FROM spans WHERE status = 'error'") == [("GET /api/v1/pods", "k8s-api")]


@pytest.mark.parametrize("doc", [
    {"data": [{"foo": 1}]},
    {"data": [], "other": 1},
    {"traceID": "1"},
    {"traceID": "1", "operationName": "x"},
    {"traceId": "1", "id": "2", "name": "zipkin"},
])
def test_lookalikes_are_not_taken_for_jaeger(doc):
    from agtrace.ingest import jaeger

    assert not jaeger.matches(doc)
