"""Every real trace file in ../shared/samples loads with the right counts, parents and services.

The folder holds other projects' public fixtures (see its SOURCES.md); a user's
clone does not have it, so these tests skip there.
"""

from __future__ import annotations

import pytest

from agtrace.ingest import load_paths
from agtrace.store import Store

# file -> (format, spans, traces, spans whose parent is not in the data, links, services)
EXPECTED = {
    "anyagent_OPENAI_trace.json": ("otel-python-sdk", 6, 1, 0, 0, ["unknown_service"]),
    "generated_py_console_exporter_concat.txt": ("otel-python-sdk", 3, 1, 0, 1, ["agtrace-demo"]),
    "jaeger_apiv3_hotrod_otlp_result.json": (
        "otlp-json", 40, 1, 0, 0, ["customer", "driver", "frontend", "mysql", "redis-manual", "route"]),
    "jaeger_ui_genai_agent_trace.json": (
        "jaeger-json", 57, 1, 0, 0,
        ["api-edge", "auth-service", "coding-agent", "graphql-gateway", "k8s-api", "mcp-gateway", "metrics-backend",
         "summarizer-agent", "trace-store", "vector-store"]),
    "monocle_pyjson_array_langgraph_multi_agent.json": ("otel-python-sdk", 43, 1, 0, 0, ["langchain_agent_1"]),
    # One flagd EventStream span's parent was never exported: the only orphan.
    "otelcol_fileexporter_mixed_signals_oteldemo.jsonl": (
        "otlp-json", 547, 141, 1, 53,
        ["adservice", "checkoutservice", "flagd", "frontend", "frontend-proxy", "loadgenerator",
         "productcatalogservice", "recommendationservice"]),
    "zipkin_v2_smartthings_oauth.json": (
        "zipkin-json", 175, 1, 0, 0, ["account", "auth", "bouncer", "datamgmt", "dove", "paperboy", "pusher", "stlogin"]),
}


def q(store, sql):
    return store.con.execute(sql).fetchall()


def test_every_sample_file_is_covered(shared_samples):
    files = sorted(p.name for p in shared_samples.iterdir() if p.name != "SOURCES.md")
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_loads_with_counts_parents_and_services(shared_samples, name):
    fmt, spans, traces, orphans, links, services = EXPECTED[name]
    store = Store.memory()
    report = load_paths(store, [str(shared_samples / name)])
    f = report.files[0]
    assert (f.status, f.format, f.spans, f.bad_records, f.warnings) == ("loaded", fmt, spans, 0, 0)
    assert report.spans_added == spans and report.duplicates == 0
    assert q(store, "SELECT count(*) FROM spans") == [(spans,)]
    assert q(store, "SELECT count(*) FROM traces") == [(traces,)]
    assert q(store, """SELECT count(*) FROM spans s WHERE parent_span_id IS NOT NULL AND NOT EXISTS (
                         SELECT 1 FROM spans p WHERE p.trace_id = s.trace_id AND p.span_id = s.parent_span_id)""") == [(orphans,)]
    # Every span is placed in its tree: the roots, plus the orphans, are the only top-level spans.
    assert q(store, "SELECT count(*) FROM spans WHERE depth = 0") == [(q(store, "SELECT count(*) FROM spans WHERE is_root")[0][0] + orphans,)]
    assert q(store, "SELECT count(*) FROM links") == [(links,)]
    assert [r[0] for r in q(store, "SELECT DISTINCT service FROM spans ORDER BY 1")] == services


def test_all_samples_together_in_one_store(shared_samples):
    store = Store.memory()
    report = load_paths(store, [str(shared_samples)])
    by_name = {f.path.rsplit("/", 1)[-1]: f for f in report.files}
    assert by_name["SOURCES.md"].status == "unknown format"  # met in a directory walk: skipped, not an error
    assert report.spans_added == sum(e[1] for e in EXPECTED.values()) == 871
    assert q(store, "SELECT count(*) FROM traces") == [(sum(e[2] for e in EXPECTED.values()),)]
    assert report.other_signals == 56  # the Collector file's metric and log lines


def test_monocle_langgraph_agents_and_types(shared_samples):
    store = Store.memory()
    load_paths(store, [str(shared_samples / "monocle_pyjson_array_langgraph_multi_agent.json")])
    assert q(store, "SELECT agent, type, count(*) FROM spans GROUP BY ALL ORDER BY ALL") == [
        ("flight_assistant", "agent", 1), ("flight_assistant", "llm", 2), ("flight_assistant", "other", 4),
        ("flight_assistant", "tool", 1),
        ("hotel_assistant", "agent", 1), ("hotel_assistant", "llm", 2), ("hotel_assistant", "other", 4),
        ("hotel_assistant", "tool", 1),
        ("supervisor", "agent", 3), ("supervisor", "llm", 6), ("supervisor", "other", 12), ("supervisor", "tool", 4),
        (None, "workflow", 2),
    ]
    # Tokens come from Monocle's `metadata` events, the model from its entity attributes.
    assert q(store, """SELECT agent, model, sum(input_tokens), sum(output_tokens) FROM spans WHERE type = 'llm'
                       GROUP BY ALL ORDER BY ALL""") == [
        ("flight_assistant", "gpt-4o", 464, 151), ("hotel_assistant", "gpt-4o", 840, 130),
        ("supervisor", "gpt-4o", 2929, 190)]
    assert q(store, "SELECT agents FROM traces") == [(["flight_assistant", "hotel_assistant", "supervisor"],)]


def test_anyagent_sample_agents_and_types(shared_samples):
    store = Store.memory()
    load_paths(store, [str(shared_samples / "anyagent_OPENAI_trace.json")])
    assert q(store, "SELECT agent, type, count(*), sum(input_tokens), sum(output_tokens) FROM spans GROUP BY ALL ORDER BY ALL") == [
        ("any_agent", "agent", 1, None, None), ("any_agent", "llm", 3, 1020, 76), ("any_agent", "tool", 2, None, None)]
