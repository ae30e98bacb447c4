"""Critical path of one trace: every case of the reference table, the tiling
invariant over random trees (against a naive transcription of the reference
walk), drag/slack/fan-outs, what-if re-timing, and a 100,000-deep chain."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agtrace.analysis.critical_path import (
    SKEW_TOLERANCE_NS,
    TraceColumns,
    analyze_columns,
    analyze_trace,
    is_wait_span,
    what_if,
)

MS = 1_000_000


def sp(span_id, parent, start, end, **extra):
    """A span record with times in milliseconds (stored as ns)."""
    rec = {"span_id": span_id, "parent_span_id": parent, "name": extra.pop("name", span_id),
           "start_ns": start * MS, "end_ns": end * MS}
    rec.update(extra)
    return rec


def walk_order(root_path):
    """Sections as the reference writes them: latest first, in ms, absolute."""
    return [f"{s.span_id} {s.start_ns / MS:g}-{s.end_ns / MS:g}" for s in reversed(root_path.sections)]


def crit(result, span_id):
    return next(s for s in result.primary.spans if s.span_id == span_id)


MARKET = [sp("orch", None, 0, 100), sp("a1", "orch", 5, 40), sp("a2", "orch", 5, 60),
          sp("a3", "orch", 5, 50), sp("synth", "orch", 62, 95)]


# --------------------------------------------------------------------------
# the reference example and table


def test_market_research_example():
    r = analyze_trace(MARKET, trace_id="t1")
    assert walk_order(r.primary) == ["orch 95-100", "synth 62-95", "orch 60-62", "a2 5-60", "orch 0-5"]
    assert {s.span_id: s.critical_ns / MS for s in r.primary.spans} == {"a2": 55, "synth": 33, "orch": 12}
    assert crit(r, "a2").drag_ns == 10 * MS  # 60 - max(40, 50)
    assert crit(r, "synth").drag_ns == 33 * MS
    assert crit(r, "orch").drag_ns == 100 * MS
    (fan,) = r.primary.fanouts
    assert fan.span_id == "orch" and fan.critical_span_id == "a2"
    assert {b.span_id: b.slack_ns / MS for b in fan.branches} == {"a1": 20, "a2": 0, "a3": 10}
    assert (fan.start_ns, fan.end_ns, fan.busy_ns) == (5 * MS, 60 * MS, 135 * MS)
    assert fan.parallelism == pytest.approx(135 / 55)
    assert fan.idle_ns == 30 * MS


def test_wait_branch_is_not_work_in_a_fanouts_parallelism():
    """A sync span waiting for the branches is a branch of the fan-out, never its work."""
    spans = MARKET + [sp("sync.wait_for_research", "orch", 5, 60)]
    (fan,) = analyze_trace(spans, trace_id="t1").primary.fanouts
    assert fan.critical_span_id == "a2"  # the wait never takes the blame
    assert [b.span_id for b in fan.branches if b.wait] == ["sync.wait_for_research"]
    assert fan.busy_ns == 135 * MS  # a1 35 + a2 55 + a3 45; the 55 ms of waiting left out
    assert fan.parallelism == pytest.approx(135 / 55)
    # flagged by attribute rather than by name: the same
    spans = MARKET + [sp("barrier_less_name", "orch", 5, 60, attributes={"sync_point": True})]
    (fan,) = analyze_trace(spans, trace_id="t1").primary.fanouts
    assert fan.busy_ns == 135 * MS


def test_market_research_json_shape():
    d = analyze_trace(MARKET, trace_id="t1").to_dict()
    assert d["trace_id"] == "t1" and d["duration_ms"] == 100.0 and d["async_mode"] == "truncate"
    assert d["sections"] == [
        {"span_id": "orch", "name": "orch", "start_ms": 0.0, "end_ms": 5.0},
        {"span_id": "a2", "name": "a2", "start_ms": 5.0, "end_ms": 60.0},
        {"span_id": "orch", "name": "orch", "start_ms": 60.0, "end_ms": 62.0},
        {"span_id": "synth", "name": "synth", "start_ms": 62.0, "end_ms": 95.0},
        {"span_id": "orch", "name": "orch", "start_ms": 95.0, "end_ms": 100.0},
    ]
    assert d["spans"][0] == {"span_id": "a2", "name": "a2", "agent": None, "type": None,
                             "critical_ms": 55.0, "share": 0.55, "drag_ms": 10.0}
    assert [s["span_id"] for s in d["spans"]] == ["a2", "synth", "orch"]
    fan = d["fanouts"][0]
    assert (fan["wall_ms"], fan["busy_ms"], fan["parallelism"], fan["join_ms"]) == (55.0, 135.0, 2.455, 60.0)
    assert [(b["span_id"], b["slack_ms"], b["on_path"]) for b in fan["branches"]] == [
        ("a1", 20.0, False), ("a3", 10.0, False), ("a2", 0.0, True)]
    assert d["other_roots"] == [] and d["excluded"] == [] and d["problems"] == []
    json.dumps(d)  # plain JSON types only


def test_offsets_are_from_the_trace_start():
    d = analyze_trace([sp("r", None, 1000, 1010), sp("c", "r", 1002, 1004)]).to_dict()
    assert [(s["span_id"], s["start_ms"], s["end_ms"]) for s in d["sections"]] == [
        ("r", 0.0, 2.0), ("c", 2.0, 4.0), ("r", 4.0, 10.0)]


def test_sequential_children():
    r = analyze_trace([sp("C", None, 1, 101), sp("D", "C", 20, 40), sp("E", "C", 50, 60)])
    assert walk_order(r.primary) == ["C 60-101", "E 50-60", "C 40-50", "D 20-40", "C 1-20"]
    assert r.primary.fanouts == []


def test_overlapping_children_hide_the_earlier_one():
    r = analyze_trace([sp("X", None, 1, 101), sp("A", "X", 10, 50), sp("C", "X", 20, 60)])
    assert walk_order(r.primary) == ["X 60-101", "C 20-60", "X 1-20"]
    assert crit(r, "C").drag_ns == 10 * MS
    assert "A" not in {s.span_id for s in r.primary.spans}


def test_child_starting_after_parent_end_is_dropped_with_subtree():
    r = analyze_trace([sp("P", None, 0, 10), sp("late", "P", 20, 30), sp("g", "late", 22, 25)])
    assert walk_order(r.primary) == ["P 0-10"]
    assert [e.to_dict() for e in r.excluded] == [
        {"span_id": "late", "name": "late", "reason": "starts at or after its parent's end", "subtree_spans": 2}]


def test_child_ending_before_parent_start_is_dropped():
    r = analyze_trace([sp("P", None, 10, 20), sp("early", "P", 0, 5)])
    assert walk_order(r.primary) == ["P 10-20"]
    assert [(e.span_id, e.reason) for e in r.excluded] == [("early", "ends at or before its parent's start")]


def test_child_covering_parent_is_clipped_and_root_has_no_section():
    r = analyze_trace([sp("A", None, 10, 30), sp("B", "A", 5, 35)])
    assert walk_order(r.primary) == ["B 10-30"]
    assert {s.span_id: s.critical_ns for s in r.primary.spans} == {"B": 20 * MS, "A": 0}


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_grandchild_is_clipped_against_the_clipped_child(order):
    spans = [sp("A", None, 0, 100), sp("B", "A", 50, 150), sp("G", "B", 90, 140)]
    r = analyze_trace([spans[i] for i in order])
    assert walk_order(r.primary) == ["G 90-100", "B 50-90", "A 0-50"]
    spans = [sp("A", None, 0, 100), sp("B", "A", 50, 150), sp("G", "B", 40, 70)]
    r = analyze_trace([spans[i] for i in order])
    assert walk_order(r.primary) == ["B 70-100", "G 50-70", "A 0-50"]


def test_consumer_of_producer_is_not_on_the_path():
    r = analyze_trace([sp("R", None, 0, 100), sp("P", "R", 0, 10, kind="producer"),
                       sp("C", "P", 5, 100, kind="consumer"), sp("W", "C", 6, 90)])
    assert walk_order(r.primary) == ["R 10-100", "P 0-10"]
    assert [(e.span_id, e.subtree_spans) for e in r.excluded] == [("C", 2)]
    assert "consumer" in r.excluded[0].reason
    # a consumer under a non-producer is ordinary
    r = analyze_trace([sp("R", None, 0, 100), sp("C", "R", 5, 100, kind="consumer")])
    assert walk_order(r.primary) == ["C 5-100", "R 0-5"]


def test_back_to_back_siblings_are_both_on_the_path():
    r = analyze_trace([sp("R", None, 0, 60), sp("c1", "R", 10, 30), sp("c2", "R", 30, 50)])
    assert walk_order(r.primary) == ["R 50-60", "c2 30-50", "c1 10-30", "R 0-10"]


def test_fire_and_forget_truncate_is_the_default():
    spans = [sp("R", None, 0, 100), sp("F", "R", 80, 200), sp("g", "F", 150, 190)]
    r = analyze_trace(spans)
    assert r.async_mode == "truncate" and r.to_dict()["async_mode"] == "truncate"
    assert walk_order(r.primary) == ["F 80-100", "R 0-80"]
    assert [e.span_id for e in r.excluded] == ["g"]  # starts after the truncated F ends


def test_fire_and_forget_exclude():
    spans = [sp("R", None, 0, 100), sp("F", "R", 80, 200), sp("g", "F", 150, 190)]
    r = analyze_trace(spans, async_mode="exclude")
    assert r.to_dict()["async_mode"] == "exclude"
    assert walk_order(r.primary) == ["R 0-100"]
    assert [e.to_dict() for e in r.excluded] == [{"span_id": "F", "name": "F", "subtree_spans": 2,
                                                  "reason": "outlives its parent (async_mode=exclude)"}]


def test_exclude_mode_tolerates_clock_skew():
    spans = [sp("R", None, 0, 100), sp("c", "R", 10, 100)]
    spans[1]["end_ns"] += SKEW_TOLERANCE_NS // 2
    r = analyze_trace(spans, async_mode="exclude")
    assert walk_order(r.primary) == ["c 10-100", "R 0-10"] and r.excluded == []


def test_unknown_async_mode():
    with pytest.raises(ValueError, match="async_mode"):
        analyze_trace(MARKET, async_mode="keep")


def test_several_roots_and_orphans_are_each_reported():
    spans = [sp("R1", None, 0, 100), sp("a", "R1", 10, 20),
             sp("O", "lost-parent", 30, 40), sp("o1", "O", 31, 39),
             sp("R2", None, 200, 250)]
    r = analyze_trace(spans)
    assert r.primary.span_id == "R1" and not r.primary.orphan
    others = {rp.span_id: rp for rp in r.other_roots}
    assert set(others) == {"O", "R2"}
    assert others["O"].orphan and others["O"].missing_parent_id == "lost-parent"
    assert walk_order(others["O"]) == ["O 39-40", "o1 31-39", "O 30-31"]
    assert walk_order(others["R2"]) == ["R2 200-250"]
    assert any("3 roots (1 orphan(s)" in p for p in r.problems)
    d = r.to_dict()
    assert [o["root_span_id"] for o in d["other_roots"]] == ["R2", "O"]
    assert d["other_roots"][1]["missing_parent_id"] == "lost-parent"


def test_orphans_only_the_longest_is_primary():
    r = analyze_trace([sp("x", "gone", 0, 10), sp("y", "gone", 0, 30)])
    assert r.primary.span_id == "y" and r.primary.orphan
    assert r.to_dict()["orphan_root"] is True


def test_wait_span_ending_with_the_slowest_branch_never_takes_the_blame():
    for names in (["wait_for_agents", "a2"], ["a2", "wait_for_agents"]):
        spans = [sp("orch", None, 0, 100), sp("a1", "orch", 5, 40)]
        spans += [sp(n, "orch", 5, 60) for n in names]
        r = analyze_trace(spans)
        assert walk_order(r.primary) == ["orch 60-100", "a2 5-60", "orch 0-5"]
        # the waiter does not count as a sibling that ends as late: a2 keeps its drag
        assert crit(r, "a2").drag_ns == 20 * MS
        fan = r.primary.fanouts[0]
        assert fan.critical_span_id == "a2"
        assert [b.span_id for b in fan.branches if b.wait] == ["wait_for_agents"]


def test_wait_by_attribute_and_started_earlier():
    # the waiter started earlier, which alone would make it win the tie
    spans = [sp("R", None, 0, 100), sp("gather", "R", 1, 60, attributes={"sync_point": True}),
             sp("worker", "R", 5, 60)]
    assert walk_order(analyze_trace(spans).primary) == ["R 60-100", "worker 5-60", "R 0-5"]
    spans[1]["attributes"] = json.dumps({"wait": "true"})
    assert walk_order(analyze_trace(spans).primary) == ["R 60-100", "worker 5-60", "R 0-5"]
    spans[1]["attributes"] = {"sync_point": False}
    assert walk_order(analyze_trace(spans).primary) == ["R 60-100", "gather 1-60", "R 0-1"]
    spans[1]["is_wait"], spans[2]["is_wait"] = True, False  # the loader's flag wins
    spans[1]["attributes"] = None
    assert walk_order(analyze_trace(spans).primary) == ["R 60-100", "worker 5-60", "R 0-5"]


def test_equal_ends_prefer_the_branch_with_children_then_earlier_start_then_id():
    spans = [sp("R", None, 0, 100), sp("leaf", "R", 5, 60), sp("busy", "R", 10, 60),
             sp("k", "busy", 20, 50)]
    assert walk_order(analyze_trace(spans).primary) == ["R 60-100", "busy 50-60", "k 20-50", "busy 10-20", "R 0-10"]
    spans = [sp("R", None, 0, 100), sp("late", "R", 20, 60), sp("early", "R", 10, 60)]
    assert walk_order(analyze_trace(spans).primary)[1] == "early 10-60"
    spans = [sp("R", None, 0, 100), sp("b", "R", 10, 60), sp("a", "R", 10, 60)]
    assert walk_order(analyze_trace(spans).primary)[1] == "a 10-60"
    assert walk_order(analyze_trace(spans[::-1]).primary)[1] == "a 10-60"


def test_zero_length_children_are_not_on_the_path():
    r = analyze_trace([sp("R", None, 0, 10), sp("z", "R", 10, 10), sp("y", "R", 5, 5)])
    assert walk_order(r.primary) == ["R 0-10"]


def test_failures_are_reported_not_silent():
    r = analyze_trace([])
    assert not r.ok and r.problems == ["the trace has no spans"] and r.to_dict()["sections"] == []
    r = analyze_trace([sp("a", "b", 0, 10), sp("b", "a", 0, 10)])
    assert not r.ok
    assert r.problems[0] == "2 span(s) in a parent cycle, not analysed: a, b"
    r = analyze_trace([sp("R", None, 0, 10), sp("x", "x", 2, 3)])  # its own parent
    assert r.ok and r.problems == ["1 span(s) in a parent cycle, not analysed: x"]
    bad = sp("R", None, 0, 10)
    bad["end_ns"] = None
    r = analyze_trace([bad, sp("c", "R", 1, 2)])
    assert not r.ok and "root span R not analysed: missing start or end time" in r.problems
    r = analyze_trace([sp("R", None, 10, 0)])
    assert not r.ok and r.problems == ["root span R not analysed: ends before it starts"]
    r = analyze_trace([sp("R", None, 0, 10), {"span_id": "c", "parent_span_id": "R", "name": "c"}])
    assert walk_order(r.primary) == ["R 0-10"]
    assert [(e.span_id, e.reason) for e in r.excluded] == [("c", "missing start or end time")]


def test_duplicate_span_ids_are_reported():
    r = analyze_trace([sp("R", None, 0, 10), sp("c", "R", 2, 4), sp("c", "R", 5, 9)])
    assert r.problems == ["span id c occurs 2 times; children attach to the earliest"]
    assert walk_order(r.primary) == ["R 9-10", "c 5-9", "R 4-5", "c 2-4", "R 0-2"]


def test_nested_drag_is_capped_by_the_parents():
    # shrinking c only helps until Q (ends 95) becomes the bottleneck
    r = analyze_trace([sp("R", None, 0, 100), sp("P", "R", 0, 100), sp("Q", "R", 0, 95),
                       sp("c", "P", 10, 90)])
    assert crit(r, "c").drag_ns == 5 * MS and crit(r, "P").drag_ns == 5 * MS
    # shrinking B moves C earlier, until A (ends 50) ends last
    r = analyze_trace([sp("X", None, 0, 100), sp("B", "X", 0, 15), sp("A", "X", 10, 50), sp("C", "X", 20, 60)])
    assert walk_order(r.primary) == ["X 60-100", "C 20-60", "X 15-20", "B 0-15"]
    assert crit(r, "B").drag_ns == 10 * MS


@pytest.mark.parametrize("name,attrs,expected", [
    ("wait_for_agents", None, True), ("Barrier", None, True), ("thread.join", None, True),
    ("synchronize", None, True), ("sync_results", None, True), ("asyncio.sleep", None, False),
    ("run_async", None, False), ("async_wait", None, True), ("fetch", None, False), (None, None, False),
    ("gather", {"sync_point": True}, True), ("gather", {"wait": 1}, True), ("gather", {"wait": "yes"}, True),
    ("gather", {"wait": False}, False), ("gather", '{"sync_point": "1.0"}', True),
    ("gather", '{"other": 1}', False), ("gather", "not json {\"wait\"", False),
])
def test_is_wait_span(name, attrs, expected):
    assert is_wait_span(name, attrs) is expected


# --------------------------------------------------------------------------
# what-if


def test_what_if_speedup_of_the_critical_branch():
    r = what_if(MARKET, lambda s: s["name"] == "a2", speedup=2, trace_id="t")
    assert (r.before_ns, r.after_ns, r.saving_ns, r.matched) == (100 * MS, 90 * MS, 10 * MS, 1)
    assert r.to_dict() == {"trace_id": "t", "before_ms": 100.0, "after_ms": 90.0, "saving_ms": 10.0,
                           "matched_spans": 1, "problem": None}


def test_what_if_later_siblings_shift_and_children_move():
    spans = MARKET + [sp("llm", "synth", 70, 90)]
    r = what_if(spans, lambda s: s["name"] in ("a1", "a2", "a3"), speedup=5)
    # fan-out ends at 5 + 55/5 = 16; synth starts 2 later and keeps its 33; orch tail 5
    assert r.after_ns == (16 + 2 + 33 + 5) * MS
    r = what_if(spans, lambda s: s["name"] == "synth", delta_ns=-10 * MS)
    # synth's own time (33 - 20 of llm = 13) drops by 10; its llm child moves with it
    assert r.after_ns == 90 * MS
    r = what_if(spans, lambda s: s["name"] == "llm", delta_ns=-30 * MS)
    assert r.after_ns == 80 * MS  # clamped to zero duration: saves its 20


def test_what_if_wait_span_shrinks_with_what_it_waited_for():
    spans = [sp("R", None, 0, 50), sp("a2", "R", 0, 30), sp("wait_all", "R", 0, 30)]
    r = what_if(spans, lambda s: s["name"] == "a2", speedup=2)
    assert r.after_ns == 35 * MS


def test_what_if_positive_delta_and_no_own_time():
    spans = [sp("R", None, 0, 10), sp("c", "R", 0, 10)]
    assert what_if(spans, lambda s: s["span_id"] == "R", delta_ns=5 * MS).after_ns == 15 * MS
    assert what_if(spans, lambda s: s["span_id"] == "c", delta_ns=5 * MS).after_ns == 15 * MS


def test_what_if_argument_errors():
    with pytest.raises(ValueError):
        what_if(MARKET, lambda s: True)
    with pytest.raises(ValueError):
        what_if(MARKET, lambda s: True, speedup=2, delta_ns=1)
    with pytest.raises(ValueError):
        what_if(MARKET, lambda s: True, speedup=0)
    assert what_if([], lambda s: True, speedup=2).problem == "the trace has no spans"


# --------------------------------------------------------------------------
# scale: no recursion anywhere


def test_100k_deep_chain():
    n = 100_000
    cols = TraceColumns([str(i) for i in range(n)], [None] + [str(i) for i in range(n - 1)],
                        list(range(n)), [2 * n - i for i in range(n)], names=["step"] * n)
    limit = sys.getrecursionlimit()
    r = analyze_columns(cols, "deep", with_fanouts=True)
    assert sys.getrecursionlimit() == limit
    secs = r.primary.sections
    assert len(secs) == 2 * n - 1
    assert secs[0].start_ns == 0 and secs[-1].end_ns == 2 * n
    assert sum(s.critical_ns for s in r.primary.spans) == 2 * n
    assert r.primary.sections[n - 1].span_id == str(n - 1)  # the innermost in the middle


def test_wide_fan_out_with_many_ties():
    n = 20_000
    spans = [sp("R", None, 0, 10)] + [sp(f"c{i:05d}", "R", 1, 50) for i in range(n)]
    r = analyze_trace(spans)
    assert walk_order(r.primary) == ["c00000 1-10", "R 0-1"]
    assert r.primary.fanouts[0].parallelism == pytest.approx(n)


# --------------------------------------------------------------------------
# properties over random trees


def reference_walk(spans, root_id, async_mode):
    """The reference pseudo-code transcribed naively (full scans), for comparison."""
    by_id = {}
    for s in spans:
        by_id.setdefault(s["span_id"], s)
    kids = {}
    for s in spans:
        p = s["parent_span_id"]
        if p is not None and p in by_id and s["span_id"] != p:
            kids.setdefault(p, []).append(s)
    clip = {}
    root = by_id[root_id]
    clip[id(root)] = (root["start_ns"], root["end_ns"])
    todo = [root]
    ok_kids = {}
    while todo:
        p = todo.pop()
        ps, pe = clip[id(p)]
        for c in kids.get(p["span_id"], []):
            s, e = c["start_ns"], c["end_ns"]
            if s >= pe or e <= ps or e < s:
                continue
            if p.get("kind") == "producer" and c.get("kind") == "consumer":
                continue
            if e > pe and async_mode == "exclude" and e - pe > SKEW_TOLERANCE_NS:
                continue
            clip[id(c)] = (max(s, ps), min(e, pe))
            ok_kids.setdefault(id(p), []).append(c)
            todo.append(c)

    def has_kids(c):
        return any(clip[id(k)][1] > clip[id(k)][0] for k in ok_kids.get(id(c), []))

    parent_of = {id(c): p for p in [root, *[x for v in ok_kids.values() for x in v]]
                 for c in ok_kids.get(id(p), [])}
    cur, limit, sections = root, None, []
    while True:
        bound = clip[id(cur)][1] if limit is None else limit
        cands = [c for c in ok_kids.get(id(cur), []) if clip[id(c)][1] > clip[id(c)][0]
                 and (limit is None or clip[id(c)][1] <= limit)]
        if cands:
            best_end = max(clip[id(c)][1] for c in cands)
            c = min((c for c in cands if clip[id(c)][1] == best_end),
                    key=lambda c: (is_wait_span(c["name"]), not has_kids(c), clip[id(c)][0], c["span_id"]))
            if best_end < bound:
                sections.append((cur["span_id"], best_end, bound))
            cur, limit = c, None
        else:
            s = clip[id(cur)][0]
            if s < bound:
                sections.append((cur["span_id"], s, bound))
            if cur is root:
                return sections
            limit, cur = s, parent_of[id(cur)]


@st.composite
def random_trace(draw):
    n = draw(st.integers(1, 25))
    spans = []
    for i in range(n):
        if i == 0:
            parent = None
        else:
            choice = draw(st.integers(-2, i - 1))
            parent = None if choice == -1 else ("missing" if choice == -2 else f"s{choice}")
        start = draw(st.integers(0, 100))
        length = draw(st.integers(-5, 100))
        spans.append({
            "span_id": f"s{i}", "parent_span_id": parent,
            "name": draw(st.sampled_from(["work", "llm", "tool", "wait_all", "sync"])),
            "kind": draw(st.sampled_from(["internal", "internal", "producer", "consumer"])),
            "start_ns": start, "end_ns": start + length,
        })
    return spans


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_trace(), st.sampled_from(["truncate", "exclude"]))
def test_sections_tile_every_root_and_match_the_reference(spans, mode):
    r = analyze_trace(spans, async_mode=mode)
    analysed = ([r.primary] if r.primary else []) + r.other_roots
    for rp in analysed:
        secs = rp.sections
        if rp.duration_ns == 0:
            assert secs == []
            continue
        assert secs[0].start_ns == rp.start_ns and secs[-1].end_ns == rp.end_ns
        for a, b in zip(secs, secs[1:]):
            assert a.end_ns == b.start_ns  # contiguous, no overlap
        assert all(s.start_ns < s.end_ns for s in secs)
        assert sum(s.critical_ns for s in rp.spans) == rp.duration_ns
        assert 0 <= min(s.drag_ns for s in rp.spans)
        expected = reference_walk(spans, rp.span_id, mode)
        assert [(s.span_id, s.start_ns, s.end_ns) for s in reversed(secs)] == expected
        for f in rp.fanouts:
            assert all(b.slack_ns >= 0 for b in f.branches)
            # work excludes the wait/sync branches; without them, overlap means > 1
            assert f.busy_ns == sum(b.end_ns - b.start_ns for b in f.branches if not b.wait)
            if not any(b.wait for b in f.branches):
                assert f.parallelism > 1
    # every span is accounted for: analysed, excluded, or named in a problem
    roots = {rp.span_id for rp in analysed}
    assert len(roots) + len(r.excluded) >= 1


@settings(max_examples=60, deadline=None)
@given(random_trace(), st.data())
def test_what_if_properties(spans, data):
    base = analyze_trace(spans)
    if not base.ok:
        return
    before = base.primary.duration_ns
    nothing = what_if(spans, lambda s: False, speedup=3)
    assert (nothing.before_ns, nothing.after_ns, nothing.matched) == (before, before, 0)
    everything = what_if(spans, lambda s: True, speedup=2)
    assert abs(everything.after_ns - before / 2) <= 1
    pick = data.draw(st.sets(st.sampled_from([s["span_id"] for s in spans])))
    faster = what_if(spans, lambda s: s["span_id"] in pick, speedup=data.draw(st.sampled_from([1.5, 4])))
    assert faster.after_ns <= before
    slower = what_if(spans, lambda s: s["span_id"] in pick, delta_ns=7)
    assert slower.after_ns >= before


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_trace(), st.sampled_from(["truncate", "exclude"]))
def test_drag_never_promises_more_than_removing_the_span_saves(spans, mode):
    """Drag is a first-order estimate: for a leaf on the path it never exceeds
    what the what-if model saves when that span takes no time at all."""
    r = analyze_trace(spans, async_mode=mode)
    if not r.ok:
        return
    parents = {s["parent_span_id"] for s in spans}
    for ps in r.primary.spans:
        if ps.span_id == r.primary.span_id or ps.span_id in parents:
            continue
        w = what_if(spans, lambda s, sid=ps.span_id: s["span_id"] == sid, delta_ns=-1000, async_mode=mode)
        assert 0 <= ps.drag_ns <= w.saving_ns
