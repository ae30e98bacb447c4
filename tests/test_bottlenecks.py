"""Bottleneck aggregation and what-if across traces, over an in-memory store
filled with plain INSERTs (independent of the loader)."""

from __future__ import annotations

import json

import pytest

from agtrace.store import link_parents

from agtrace.analysis import bottlenecks as bn
from agtrace.analysis.bottlenecks import (
    BottleneckAccumulator,
    bottlenecks,
    critical_path_store,
    fetch_trace_spans,
    iter_store_trace_ids,
    percentile,
    what_if_store,
)
from agtrace.analysis.critical_path import TraceColumns, is_wait_span
from agtrace.errors import UsageError
from agtrace.store import Store

MS = 1_000_000


def insert(store, rows):
    """rows: (trace, span, parent, name, start_ms, end_ms, agent, type[, kind])."""
    base = store.con.execute("SELECT count(*) FROM spans").fetchone()[0]
    for n, row in enumerate(rows):
        trace, span, parent, name, start, end, agent, typ, *kind = row
        store.con.execute(
            "INSERT INTO spans (sid, trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns,"
            " duration_ns, agent, type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [base + n, trace, span, parent, name, kind[0] if kind else "internal",
             None if start is None else start * MS, None if end is None else end * MS,
             None if start is None or end is None else (end - start) * MS, agent, typ])
    link_parents(store.con)


MARKET = [
    ("t1", "orch", None, "orch", 0, 100, "boss", "agent"),
    ("t1", "a1", "orch", "a1", 5, 40, "worker", "tool"),
    ("t1", "a2", "orch", "a2", 5, 60, "worker", "tool"),
    ("t1", "a3", "orch", "a3", 5, 50, "worker", "tool"),
    ("t1", "synth", "orch", "synth", 62, 95, "boss", "llm"),
    ("t2", "orch", None, "orch", 0, 50, "boss", "agent"),
    ("t2", "a2", "orch", "a2", 0, 30, "worker", "tool"),
    ("t2", "wait", "orch", "wait_all", 0, 30, "boss", None),
]


@pytest.fixture
def store():
    s = Store.memory()
    insert(s, MARKET)
    yield s
    s.con.close()


def rows(report):
    return [r.to_dict(report.by) for r in report.rows]


def test_by_name(store):
    rep = bottlenecks(store)
    assert rows(rep) == [
        {"name": "a2", "critical_ms": 85.0, "share": 0.5667, "traces": 2, "mean_critical_ms": 42.5,
         "p95_critical_ms": 53.75, "mean_drag_ms": 20.0},
        {"name": "synth", "critical_ms": 33.0, "share": 0.22, "traces": 1, "mean_critical_ms": 33.0,
         "p95_critical_ms": 33.0, "mean_drag_ms": 33.0},
        {"name": "orch", "critical_ms": 32.0, "share": 0.2133, "traces": 2, "mean_critical_ms": 16.0,
         "p95_critical_ms": 19.6, "mean_drag_ms": 75.0},
    ]
    d = rep.to_dict()
    assert (d["traces_analysed"], d["total_critical_ms"], d["groups"], d["failures"]) == (2, 150.0, 3, [])
    json.dumps(d)


def test_by_agent_counts_nested_drag_once(store):
    rep = bottlenecks(store, by="agent")
    assert [(r.key, r.critical_ns / MS, r.traces, r.mean_drag_ns / MS) for r in rep.rows] == [
        ("worker", 85, 2, 20), ("boss", 65, 2, 75)]  # synth's drag is inside orch's


def test_by_type_keeps_null_groups(store):
    insert(store, [("t3", "r", None, "r", 0, 10, None, None)])
    rep = bottlenecks(store, by="type")
    assert [(r.key, r.critical_ns / MS) for r in rep.rows] == [
        ("tool", 85), ("llm", 33), ("agent", 32), (None, 10)]
    assert rep.to_dict()["rows"][-1]["type"] is None


def test_top(store):
    rep = bottlenecks(store, top=1)
    assert [r.key for r in rep.rows] == ["a2"] and rep.groups == 3


def test_where_selects_traces_with_a_matching_span(store):
    rep = bottlenecks(store, "s.name = ?", ["synth"])
    assert rep.traces_analysed == 1 and {r.key for r in rep.rows} == {"a2", "synth", "orch"}
    rep = bottlenecks(store, "s.name = $n", {"n": "wait_all"})
    assert rep.traces_analysed == 1 and rep.total_critical_ns == 50 * MS
    assert bottlenecks(store, "s.name = ?", ["nothing"]).traces_analysed == 0


def test_failing_traces_are_reported_and_the_others_aggregated(store):
    insert(store, [("t3", "a", "b", "a", 0, 10, None, None), ("t3", "b", "a", "b", 0, 10, None, None),
                   ("t4", "r", None, "r", 0, None, None, None)])
    rep = bottlenecks(store)
    assert [f.to_dict() for f in rep.failures] == [
        {"trace_id": "t3", "reason": "no root span (parent cycle)"},
        {"trace_id": "t4", "reason": "root span r has no usable start/end times"}]
    assert rep.traces_analysed == 2 and rep.rows[0].critical_ns == 85 * MS


def test_accumulator_survives_an_unexpected_error():
    acc = BottleneckAccumulator()
    good = TraceColumns(["r"], [None], [0], [10], waits=[False])
    acc.add("bad", TraceColumns(["r", "c"], [None, "r"], [0, 1], [10, 5], waits=[False, False]), ["x"])
    acc.add("good", good, ["x"])
    rep = acc.report()
    assert [(f.trace_id, f.reason.split(":")[0]) for f in rep.failures] == [("bad", "IndexError")]
    assert rep.traces_analysed == 1 and rep.rows[0].critical_ns == 10


def test_other_roots_and_excluded_spans_are_counted(store):
    insert(store, [("t5", "r", None, "r", 0, 10, None, None), ("t5", "o", "gone", "o", 2, 4, None, None),
                   ("t5", "p", "r", "p", 1, 2, None, None, "producer"),
                   ("t5", "c", "p", "c", 1, 9, None, None, "consumer")])
    rep = bottlenecks(store)
    assert (rep.traces_with_other_roots, rep.spans_excluded) == (1, 1)


def test_async_mode_exclude(store):
    insert(store, [("t6", "r", None, "r", 0, 10, None, None), ("t6", "bg", "r", "bg", 5, 30, None, None)])
    assert bottlenecks(store, "s.trace_id = ?", ["t6"]).rows[0].key == "bg"
    rep = bottlenecks(store, "s.trace_id = ?", ["t6"], async_mode="exclude")
    assert [r.key for r in rep.rows] == ["r"] and rep.spans_excluded == 1 and rep.async_mode == "exclude"


def test_small_batches_give_the_same_report(store, monkeypatch):
    insert(store, [(f"u{i}", "r", None, "r", 0, 10 + i, None, None) for i in range(5)])
    expected = bottlenecks(store).to_dict()
    monkeypatch.setattr(bn, "BATCH_ROWS", 2)
    assert bottlenecks(store).to_dict() == expected
    monkeypatch.setattr(bn, "BATCH_ROWS", 1)
    assert bottlenecks(store).to_dict() == expected


def test_empty_store():
    rep = bottlenecks(Store.memory())
    assert (rep.rows, rep.traces_analysed, rep.total_critical_ns) == ([], 0, 0)


@pytest.mark.parametrize("kwargs", [{"by": "service"}, {"top": 0}, {"async_mode": "keep"}])
def test_bad_options_are_usage_errors(store, kwargs):
    with pytest.raises(UsageError):
        bottlenecks(store, **kwargs)


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)


def test_with_the_filter_language(store):
    compiler = pytest.importorskip("agtrace.query.compiler")
    f = compiler.compile_filter('has_parent(name = "orch") and duration > 50ms')  # only t1's a2
    rep = bottlenecks(store, f.sql, f.params, by="agent")
    assert rep.traces_analysed == 1 and [r.key for r in rep.rows] == ["worker", "boss"]
    f = compiler.compile_filter("")
    assert bottlenecks(store, f.sql, f.params).traces_analysed == 2
    target = compiler.compile_filter('name = "a2"')
    rep = what_if_store(store, f.sql, f.params, target.sql, target.params, speedup=2)
    assert [r.saving_ns // MS for r in rep.per_trace] == [10, 15]


# --------------------------------------------------------------------------
# what-if


def test_what_if_speedup(store):
    rep = what_if_store(store, None, (), "s.name = ?", ["a2"], speedup=2)
    assert [(r.trace_id, r.before_ns / MS, r.after_ns / MS, r.saving_ns / MS, r.matched)
            for r in rep.per_trace] == [("t1", 100, 90, 10, 1), ("t2", 50, 35, 15, 1)]
    assert rep.aggregate() == {
        "traces": 2, "affected": 2, "matched_spans": 2,
        "before_p50_ms": 75.0, "before_p95_ms": 97.5, "after_p50_ms": 62.5, "after_p95_ms": 87.25,
        "saving_p50_ms": 12.5, "saving_p95_ms": 10.25, "saving_mean_ms": 12.5, "saving_max_ms": 15.0,
        "saving_total_ms": 25.0, "saving_share": 0.1667,
    }
    d = rep.to_dict()
    assert d["change"] == "speedup 2x" and d["traces"][0]["saving_ms"] == 10.0
    json.dumps(d)


def test_what_if_delta_keeps_unaffected_traces(store):
    rep = what_if_store(store, None, (), "s.name = ?", ["synth"], delta_ns=-10 * MS)
    assert [(r.trace_id, r.after_ns / MS, r.matched) for r in rep.per_trace] == [("t1", 90, 1), ("t2", 50, 0)]
    assert rep.aggregate()["affected"] == 1 and rep.change == "delta -10 ms"


def test_what_if_with_a_trace_filter_positional_and_named(store):
    rep = what_if_store(store, "s.name = ?", ["synth"], "s.name = ?", ["a2"], speedup=2)
    assert [(r.trace_id, r.after_ns / MS) for r in rep.per_trace] == [("t1", 90)]
    rep = what_if_store(store, "s.name = $p0", {"p0": "wait_all"}, "s.name = $p0", {"p0": "a2"}, speedup=2)
    assert [(r.trace_id, r.after_ns / MS) for r in rep.per_trace] == [("t2", 35)]


def test_what_if_reports_failing_traces(store):
    insert(store, [("t3", "a", "b", "a", 0, 10, None, None), ("t3", "b", "a", "b", 0, 10, None, None)])
    rep = what_if_store(store, None, (), "s.name = ?", ["a2"], speedup=2)
    assert [f.to_dict() for f in rep.failures] == [{"trace_id": "t3", "reason": "no root span (parent cycle)"}]
    assert rep.aggregate()["traces"] == 2


@pytest.mark.parametrize("kwargs", [{}, {"speedup": 2, "delta_ns": 1}, {"speedup": 0}, {"speedup": -1}])
def test_what_if_usage_errors(store, kwargs):
    with pytest.raises(UsageError):
        what_if_store(store, None, (), "s.name = ?", ["a2"], **kwargs)
    with pytest.raises(UsageError):
        what_if_store(store, None, (), "", (), speedup=2)


# --------------------------------------------------------------------------
# one trace from the store


def test_critical_path_store(store):
    r = critical_path_store(store, "t2")
    d = r.to_dict()
    assert [(s["span_id"], s["start_ms"], s["end_ms"]) for s in d["sections"]] == [
        ("a2", 0.0, 30.0), ("orch", 30.0, 50.0)]
    assert d["fanouts"][0]["wait_spans"] == ["wait"]
    assert [s["agent"] for s in d["spans"]] == ["worker", "boss"]
    missing = critical_path_store(store, "nope")
    assert not missing.ok and missing.problems == ["no spans for trace nope in the store"]


def test_iter_store_trace_ids(store):
    assert iter_store_trace_ids(store) == ["t1", "t2"]
    assert iter_store_trace_ids(store, "s.name = ?", ["wait_all"]) == ["t2"]


WAIT_CASES = [
    ("wait_for_agents", {}), ("Barrier", {}), ("thread.join", {}), ("synchronize", {}),
    ("run_async", {}), ("async_wait", {}), ("fetch", {}), ("gather", {"sync_point": True}),
    ("gather", {"wait": 1}), ("gather", {"wait": "yes"}), ("gather", {"wait": False}),
    ("gather", {"sync_point": "1.0"}), ("gather", {"other": True}),
]


def test_sql_wait_rule_agrees_with_python():
    s = Store.memory()
    insert(s, [("w", f"s{i}", None, name, 0, 1, None, None) for i, (name, _) in enumerate(WAIT_CASES)])
    for i, (_name, attrs) in enumerate(WAIT_CASES):
        for key, value in attrs.items():
            vtype = {bool: "bool", int: "int", str: "string"}[type(value)]
            text = str(value).lower() if isinstance(value, bool) else str(value)
            num = float(value) if vtype == "int" else (1.0 if value == "1.0" else None)
            s.con.execute("INSERT INTO attrs VALUES (?, ?, NULL, ?, ?, ?)", [i, key, vtype, text, num])
    got = {r["span_id"]: r["is_wait"] for r in fetch_trace_spans(s, "w")}
    expected = {f"s{i}": is_wait_span(name, attrs) for i, (name, attrs) in enumerate(WAIT_CASES)}
    assert got == expected
    assert sum(expected.values()) == 9
