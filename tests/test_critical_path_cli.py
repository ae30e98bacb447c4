"""`agtrace critical-path` and `agtrace bottlenecks` (with --what-if): exact figures
on the market-research sample, goldens, messy traces, options and errors.

Goldens live in tests/golden/critical_*.txt; regenerate them after an
intended change with `AGTRACE_UPDATE_GOLDEN=1 pytest tests/test_critical_path_cli.py`
and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from conftest import SAMPLES, invoke
from test_formats_zipkin import T as ZIPKIN_TRACE, US as ZIPKIN_US, zspan

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("AGTRACE_UPDATE_GOLDEN") == "1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

MR1 = "592ff49b07831bad230d50eb08dd0a54"  # market research trace 1: the fan-out
MR2 = "bde7b4a9d99dcc347c77d2985f1d4326"
MR3 = "fd0b1afd85841045eebbdea4bb538d89"
SENTIMENT = "a5068b34e34d1cd0"
SYNC = "c5e4bd4775cfe0fa"
ROOT = "bfaa244397d5a612"
SENTIMENT_EXPR = 'name = "customer_sentiment_agent.invoke"'

MESSY = "abcd0000000000000000000000000001"
NOROOT = "abcd0000000000000000000000000002"  # only a parent cycle: cannot be analysed
BASE_NS = 1_705_313_700_000_000_000
MS = 1_000_000


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with AGTRACE_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def ok(*args) -> str:
    r = invoke(list(args))
    assert r.exit_code == 0, r.stderr
    return r.stdout


def fails(*args, code: int = 2):
    r = invoke(list(args))
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


@pytest.fixture(scope="module")
def mr_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("cp_samples") / "mr.duckdb"
    r = invoke(["load", "--db", db, SAMPLES / "market_research.jsonl"])
    assert r.exit_code == 0, r.stderr
    return db


def _span(sid, parent, name, start_ms, end_ms, trace=MESSY, **kw):
    d = {"trace_id": trace, "span_id": sid, "parent_span_id": parent, "name": name,
         "start": BASE_NS + start_ms * MS, "end": BASE_NS + end_ms * MS, "service": "messy"}
    d.update(kw)
    return d


def messy_spans() -> list[dict]:
    """A root with a child outliving it, a producer/consumer pair, a child
    ending before its parent starts, an orphan with its own fan-out, a parent
    cycle; and a second trace that is nothing but a cycle."""
    return [
        _span("00000000000000a1", None, "orchestrator.run", 0, 100, attributes={"agent_name": "boss"}),
        _span("00000000000000a2", "00000000000000a1", "planner.invoke", 10, 50, attributes={"agent_name": "planner"}),
        _span("00000000000000a3", "00000000000000a2", "tool.early", 0, 5),
        _span("00000000000000a4", "00000000000000a1", "worker.invoke", 20, 120, attributes={"agent_name": "worker"}),
        _span("00000000000000a5", "00000000000000a4", "llm.chat", 30, 110),
        _span("00000000000000a6", "00000000000000a1", "queue.publish", 60, 70, kind="producer"),
        _span("00000000000000a7", "00000000000000a6", "queue.consume", 65, 90, kind="consumer"),
        _span("00000000000000b1", "00000000000000ff", "orphan.work", 5, 60, attributes={"agent_name": "stray"}),
        _span("00000000000000b2", "00000000000000b1", "tool.a", 10, 40),
        _span("00000000000000b3", "00000000000000b1", "tool.b", 15, 55),
        _span("00000000000000c1", "00000000000000c2", "loop.x", 1, 2),
        _span("00000000000000c2", "00000000000000c1", "loop.y", 1, 2),
        _span("00000000000000d1", "00000000000000d2", "cycle.a", 0, 10, trace=NOROOT),
        _span("00000000000000d2", "00000000000000d1", "cycle.b", 0, 10, trace=NOROOT),
    ]


@pytest.fixture(scope="module")
def messy_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("cp_messy")
    path = d / "messy.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in messy_spans()) + "\n", encoding="utf-8")
    db = d / "messy.duckdb"
    r = invoke(["load", "--db", db, path])
    assert r.exit_code == 0, r.stderr
    return db


def cp_json(db, *args) -> dict:
    return json.loads(ok("critical-path", "--db", db, *args, "--format", "json"))


# -- critical-path: the market-research fan-out ------------------------------------------


def test_market_research_path_sections_tile_the_root(mr_db):
    doc = cp_json(mr_db, MR1[:8])
    assert doc["trace_id"] == MR1
    assert (doc["root_span_id"], doc["duration_ms"], doc["async_mode"]) == (ROOT, 5800.0, "truncate")
    secs = doc["sections"]
    assert secs[0]["start_ms"] == 0.0 and secs[-1]["end_ms"] == 5800.0
    assert all(a["end_ms"] == b["start_ms"] for a, b in zip(secs, secs[1:]))
    assert [s["name"] for s in secs] == [
        "market_research_workflow", "customer_sentiment_agent.invoke", "tool.review_search",
        "customer_sentiment_agent.invoke", "tool.social_listening", "customer_sentiment_agent.invoke",
        "llm.chat", "customer_sentiment_agent.invoke", "market_research_workflow", "synthesis_agent.invoke",
        "chat gpt-4o", "synthesis_agent.invoke", "agent.decision_point", "synthesis_agent.invoke",
        "market_research_workflow"]
    assert set(secs[0]) == {"span_id", "name", "start_ms", "end_ms"}
    assert (doc["other_roots"], doc["excluded"], doc["problems"]) == ([], [], [])


def test_market_research_spans_critical_time_and_share(mr_db):
    doc = cp_json(mr_db, MR1)
    got = [(s["name"], s["agent"], s["critical_ms"], s["share"]) for s in doc["spans"]]
    assert got == [
        ("tool.social_listening", "customer_sentiment_agent", 2372.304, 0.409),
        ("tool.review_search", "customer_sentiment_agent", 1617.48, 0.2789),
        ("llm.chat", "customer_sentiment_agent", 1401.816, 0.2417),
        ("chat gpt-4o", "synthesis_agent", 347.048, 0.0598),
        ("market_research_workflow", None, 26.0, 0.0045),
        ("agent.decision_point", "synthesis_agent", 22.152, 0.0038),
        ("customer_sentiment_agent.invoke", "customer_sentiment_agent", 8.4, 0.0014),
        ("synthesis_agent.invoke", "synthesis_agent", 4.8, 0.0008),
    ]
    assert round(sum(s["critical_ms"] for s in doc["spans"]), 3) == 5800.0
    sentiment = next(s for s in doc["spans"] if s["span_id"] == SENTIMENT)
    assert sentiment["drag_ms"] == 2400.3  # until the competitor agent becomes the bottleneck


def test_market_research_fanout_slow_agent_critical_with_slack_for_the_others(mr_db):
    (fan,) = cp_json(mr_db, MR1)["fanouts"]
    assert (fan["span_id"], fan["on_path"], fan["critical_span_id"], fan["critical_name"]) == (
        ROOT, True, SENTIMENT, "customer_sentiment_agent.invoke")
    assert (fan["start_ms"], fan["join_ms"], fan["wall_ms"], fan["parallelism"]) == (9.75, 5410.3, 5400.55, 1.944)
    assert fan["wait_spans"] == [SYNC]
    slack = {b["name"]: (b["duration_ms"], b["slack_ms"], b["on_path"], b["wait"]) for b in fan["branches"]}
    assert slack == {
        "sync.wait_for_research": (5400.55, 0.0, False, True),
        "competitor_analysis_agent.invoke": (3000.0, 2400.3, False, False),
        "market_trends_agent.invoke": (2100.0, 3300.15, False, False),
        "customer_sentiment_agent.invoke": (5400.0, 0.0, True, False),
    }
    assert fan["idle_at_join_ms"] == 5700.45


def test_same_spans_as_show_marks(mr_db):
    doc = cp_json(mr_db, MR1)
    rows = [json.loads(line) for line in ok("show", "--db", mr_db, MR1, "--format", "jsonl").splitlines()]
    assert {r["span_id"] for r in rows if r["critical_path"]} == {s["span_id"] for s in doc["spans"]}


def test_input_file_instead_of_store():
    doc = json.loads(ok("critical-path", "-i", SAMPLES / "market_research.jsonl", MR1[:6], "--format", "json"))
    assert doc["duration_ms"] == 5800.0


def test_csv_rows_per_path_span(mr_db):
    rows = list(csv.DictReader(io.StringIO(ok("critical-path", "--db", mr_db, MR1, "--format", "csv"))))
    assert len(rows) == 8
    assert rows[0] == {"root_span_id": ROOT, "span_id": "33f981cde56c205f", "name": "tool.social_listening",
                       "agent": "customer_sentiment_agent", "type": "tool", "critical_ms": "2372.304",
                       "share": "0.409", "drag_ms": "2372.304"}


# -- critical-path: goldens and the terminal --------------------------------------------


GOLDEN_CASES = {
    "critical_market_research_w100.txt": ["--width", "100"],
    "critical_market_research_w80.txt": ["--width", "80"],
    "critical_market_research_whatif_w100.txt": ["--width", "100", "--what-if", SENTIMENT_EXPR, "--speedup", "2"],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_market_research_piped(mr_db, name):
    out = ok("critical-path", "--db", mr_db, MR1, *GOLDEN_CASES[name])
    assert "\x1b" not in out
    check_golden(name, out)


def test_golden_messy(messy_db):
    r = invoke(["critical-path", "--db", messy_db, MESSY, "--width", "100"])
    assert r.exit_code == 0, r.stderr
    check_golden("critical_messy_w100.txt", r.stdout)
    assert r.stderr.splitlines() == [
        "warning: 2 span(s) in a parent cycle, not analysed: 00000000000000c1, 00000000000000c2",
        "warning: 2 roots (1 orphan(s) whose parent is not in the trace); each is analysed, "
        "the primary one is reported at top level",
    ]


def test_lines_fit_the_width(mr_db):
    for width in (60, 80, 100, 140):
        out = ok("critical-path", "--db", mr_db, MR1, "--width", str(width))
        assert max(len(line) for line in out.splitlines()) <= width, width


def test_terminal_gets_colour_and_the_same_text(mr_db, monkeypatch):
    import agtrace.render.output as output

    golden = (GOLDEN / "critical_market_research_w100.txt").read_text(encoding="utf-8")
    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    coloured = ok("critical-path", "--db", mr_db, MR1, "--width", "100")
    assert "\x1b[1;33m*\x1b[0m" in coloured  # the path marks in bold yellow
    assert ANSI.sub("", coloured) == golden
    monkeypatch.setenv("NO_COLOR", "1")
    assert ok("critical-path", "--db", mr_db, MR1, "--width", "100") == golden


def test_limit_cuts_each_block_and_says_so(mr_db):
    out = ok("critical-path", "--db", mr_db, MR1, "--width", "100", "--limit", "3")
    assert "… 12 more sections (--limit 0 shows all)" in out
    assert "… 5 more spans (--limit 0 shows all)" in out
    assert "… 1 more branches, all with more slack" in out
    full = ok("critical-path", "--db", mr_db, MR1, "--width", "100", "--limit", "0")
    assert full == (GOLDEN / "critical_market_research_w100.txt").read_text(encoding="utf-8")


# -- critical-path: roots, orphans, async children, failures ----------------------------


def test_several_roots_and_orphans_are_all_reported(messy_db):
    doc = cp_json(messy_db, MESSY)
    assert (doc["root_name"], doc["orphan_root"], doc["duration_ms"]) == ("orchestrator.run", False, 100.0)
    (other,) = doc["other_roots"]
    assert (other["root_name"], other["orphan"], other["missing_parent_id"]) == ("orphan.work", True, "00000000000000ff")
    assert [(s["name"], s["start_ms"], s["end_ms"]) for s in other["sections"]] == [
        ("orphan.work", 5.0, 15.0), ("tool.b", 15.0, 55.0), ("orphan.work", 55.0, 60.0)]
    assert [b["slack_ms"] for b in other["fanouts"][0]["branches"]] == [15.0, 0.0]
    assert sorted((e["name"], e["reason"]) for e in doc["excluded"]) == [
        ("queue.consume", "consumer of a producer span (asynchronous, not waited for)"),
        ("tool.early", "ends at or before its parent's start"),
    ]
    assert any("parent cycle" in p for p in doc["problems"])


def test_async_truncate_and_exclude(messy_db):
    trunc = cp_json(messy_db, MESSY)
    excl = cp_json(messy_db, MESSY, "--async", "exclude")
    assert [(s["name"], s["start_ms"], s["end_ms"]) for s in trunc["sections"]] == [
        ("orchestrator.run", 0.0, 20.0), ("worker.invoke", 20.0, 30.0), ("llm.chat", 30.0, 100.0)]
    assert excl["async_mode"] == "exclude"
    assert [(s["name"], s["start_ms"], s["end_ms"]) for s in excl["sections"]] == [
        ("orchestrator.run", 0.0, 10.0), ("planner.invoke", 10.0, 50.0), ("orchestrator.run", 50.0, 60.0),
        ("queue.publish", 60.0, 70.0), ("orchestrator.run", 70.0, 100.0)]
    assert ("worker.invoke", "outlives its parent (async_mode=exclude)", 2) in [
        (e["name"], e["reason"], e["subtree_spans"]) for e in excl["excluded"]]
    out = ok("critical-path", "--db", messy_db, MESSY, "--async", "exclude", "--width", "140")
    assert "async children excluded" in out
    assert "left off the path: worker.invoke 00000000000000a4: outlives its parent (async_mode=exclude), with 1 below it" in out


def test_a_trace_without_a_root_is_an_error_not_an_empty_path(messy_db):
    r = fails("critical-path", "--db", messy_db, NOROOT)
    assert "no root span: every span's parent is in the trace (a cycle)" in r.stderr
    assert r.stderr.splitlines()[-1] == f"error: no critical path for trace {NOROOT} (see the warnings above)"
    r = fails("critical-path", "--db", messy_db, NOROOT, "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["root_span_id"] is None and doc["spans"] == [] and doc["problems"]


def test_unknown_and_ambiguous_trace_ids(messy_db):
    r = fails("critical-path", "--db", messy_db, "ffff")
    assert r.stderr.startswith("error: no trace with id 'ffff'")
    r = fails("critical-path", "--db", messy_db, "abcd")
    assert "ambiguous" in r.stderr and "hint: give more characters of the id" in r.stderr


# -- critical-path --what-if -----------------------------------------------------------


def test_critical_path_what_if_one_trace(mr_db):
    doc = cp_json(mr_db, MR1, "--what-if", SENTIMENT_EXPR, "--speedup", "2")
    assert doc["what_if"] == {"expression": SENTIMENT_EXPR, "change": "speedup 2x (subtree)", "trace_id": MR1,
                              "before_ms": 5800.0, "after_ms": 3399.7, "saving_ms": 2400.3, "matched_spans": 1,
                              "problem": None}
    # the path itself is the one measured, not the re-timed one
    assert doc["duration_ms"] == 5800.0
    own = cp_json(mr_db, MR1, "--what-if", SENTIMENT_EXPR, "--speedup", "2", "--own-time")["what_if"]
    assert (own["change"], own["after_ms"], own["saving_ms"]) == ("speedup 2x", 5795.8, 4.2)


def test_delta_with_a_leading_minus_is_the_option_value(mr_db):
    for args in (["--delta", "-1500ms"], ["--delta=-1.5s"], ["--delta", "-1500000us"]):
        w = cp_json(mr_db, MR1, "--what-if", SENTIMENT_EXPR, *args)["what_if"]
        assert (w["before_ms"], w["after_ms"], w["saving_ms"]) == (5800.0, 4300.0, 1500.0), args
    w = cp_json(mr_db, MR1, "--what-if", 'name = "tool.web_search"', "--delta", "+2s")["what_if"]
    assert (w["after_ms"], w["saving_ms"]) == (5800.0, 0.0)  # the competitor agent had 2.4 s of slack
    w = cp_json(mr_db, MR1, "--what-if", 'name = "tool.web_search"', "--delta", "+3s")["what_if"]
    assert w["saving_ms"] == -599.7  # 3 s more than its 2.4003 s of slack: 0.5997 s later


# -- bottlenecks ----------------------------------------------------------------------


def test_bottlenecks_by_agent_slow_agent_first(mr_db):
    rows = json.loads(ok("bottlenecks", "--db", mr_db, "--by", "agent", "--format", "json"))
    assert rows[0] == {"agent": "customer_sentiment_agent", "critical_ms": 5400.0, "share": 0.3522, "traces": 1,
                       "mean_critical_ms": 5400.0, "p95_critical_ms": 5400.0, "mean_drag_ms": 2400.3}
    assert [(r["agent"], r["critical_ms"], r["traces"]) for r in rows] == [
        ("customer_sentiment_agent", 5400.0, 1), ("competitor_analysis_agent", 4611.4, 1),
        ("market_trends_agent", 3811.75, 1), ("synthesis_agent", 1436.25, 3), (None, 74.6, 3)]
    assert round(sum(r["share"] for r in rows), 3) == 1.0


def test_bottlenecks_where_one_trace(mr_db):
    rows = json.loads(ok("bottlenecks", "--db", mr_db, "--by", "agent", "--where", f'trace_id = "{MR1}"',
                         "--format", "json"))
    assert [(r["agent"], r["critical_ms"], r["share"]) for r in rows] == [
        ("customer_sentiment_agent", 5400.0, 0.931), ("synthesis_agent", 374.0, 0.0645), (None, 26.0, 0.0045)]


def test_bottlenecks_by_name_top_and_formats(mr_db):
    rows = json.loads(ok("bottlenecks", "--db", mr_db, "--top", "3", "--format", "json"))
    assert [(r["name"], r["critical_ms"], r["traces"], r["mean_critical_ms"], r["p95_critical_ms"])
            for r in rows] == [
        ("llm.chat", 5138.643, 3, 1712.881, 1993.939), ("tool.web_search", 2607.917, 2, 1303.958, 1621.768),
        ("tool.social_listening", 2372.304, 1, 2372.304, 2372.304)]
    lines = ok("bottlenecks", "--db", mr_db, "--by", "type", "--format", "jsonl").splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["tool", "llm", "decision", "workflow", "agent"]
    tsv = ok("bottlenecks", "--db", mr_db, "--by", "type", "--format", "tsv").splitlines()
    assert tsv[0].split("\t") == ["type", "critical_ms", "share", "traces", "mean_critical_ms", "p95_critical_ms",
                                  "mean_drag_ms"]


def test_golden_bottlenecks_table(mr_db):
    r = invoke(["bottlenecks", "--db", mr_db, "--by", "agent"])
    assert r.exit_code == 0 and r.stderr == ""
    check_golden("critical_bottlenecks_by_agent.txt", r.stdout)
    r = invoke(["bottlenecks", "--db", mr_db, "--top", "4"])
    check_golden("critical_bottlenecks_top4.txt", r.stdout)
    assert r.stderr == "(9 more groups; use --top to see more)\n"


def test_bottlenecks_reports_a_failed_trace_and_counts_the_rest(messy_db):
    r = invoke(["bottlenecks", "--db", messy_db, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["name"], x["critical_ms"]) for x in rows] == [
        ("llm.chat", 70.0), ("orchestrator.run", 20.0), ("worker.invoke", 10.0)]
    assert r.stderr.splitlines() == [
        f"warning: trace {NOROOT}: not analysed: no root span (parent cycle)",
        "note: 1 trace has more than one root; only the primary root of each is counted "
        "(`agtrace critical-path ID` shows every root)",
        "note: 4 spans left off the paths (outside their parent, consumers of a producer, excluded async "
        "children or parent cycles)",
    ]


def test_bottlenecks_when_nothing_matches(mr_db, tmp_path):
    r = invoke(["bottlenecks", "--db", mr_db, "--where", 'name = "nothing"', "--format", "json"])
    assert (r.exit_code, json.loads(r.stdout), r.stderr) == (0, [], "no traces match\n")
    from agtrace.store import Store

    Store.open(tmp_path / "empty.duckdb", read_only=False).close()
    r = invoke(["bottlenecks", "--db", tmp_path / "empty.duckdb", "--what-if", SENTIMENT_EXPR, "--speedup", "2"])
    assert (r.exit_code, r.stderr) == (0, "no traces in the store\n")
    assert "0 traces, 0 with matching spans (0 spans)" in r.stdout


# -- bottlenecks --what-if -----------------------------------------------------------


def test_what_if_per_trace_and_aggregate(mr_db):
    doc = json.loads(ok("bottlenecks", "--db", mr_db, "--what-if", SENTIMENT_EXPR, "--speedup", "2",
                        "--format", "json"))
    assert (doc["expression"], doc["change"], doc["async_mode"]) == (SENTIMENT_EXPR, "speedup 2x (subtree)", "truncate")
    assert [(t["trace_id"], t["before_ms"], t["after_ms"], t["saving_ms"], t["matched_spans"])
            for t in doc["traces"]] == [
        (MR1, 5800.0, 3399.7, 2400.3, 1), (MR2, 4460.1, 4460.1, 0.0, 1), (MR3, 5073.9, 5073.9, 0.0, 1)]
    assert doc["aggregate"] == {
        "traces": 3, "affected": 3, "matched_spans": 3,
        "before_p50_ms": 5073.9, "before_p95_ms": 5727.39, "after_p50_ms": 4460.1, "after_p95_ms": 5012.52,
        "saving_p50_ms": 613.8, "saving_p95_ms": 714.87, "saving_mean_ms": 800.1, "saving_max_ms": 2400.3,
        "saving_total_ms": 2400.3, "saving_share": 0.1565}
    assert doc["failures"] == []


def test_what_if_delta_and_own_time(mr_db):
    def savings(*extra):
        out = ok("bottlenecks", "--db", mr_db, "--what-if", SENTIMENT_EXPR, *extra, "--format", "jsonl")
        return [json.loads(x)["saving_ms"] for x in out.splitlines()]

    assert savings("--delta", "-1500ms") == [1500.0, 0.0, 0.0]
    assert savings("--delta", "-1500ms", "--own-time") == [8.4, 0.0, 0.0]  # its own time is 8.4 ms
    assert savings("--speedup", "2x", "--own-time") == [4.2, 0.0, 0.0]
    # slower: the sentiment agent takes 10.8 s, and 15.4 s; the other traces wait for it too
    assert savings("--speedup", "0.5") == [-5400.0, -2028.64, -1600.24]
    assert savings("--delta", "+10s") == [-10000.0, -9108.49, -8494.54]


def test_what_if_csv_and_top(mr_db):
    out = ok("bottlenecks", "--db", mr_db, "--what-if", 'type = "llm"', "--speedup", "2", "--top", "1",
             "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 and list(rows[0]) == ["trace_id", "before_ms", "after_ms", "saving_ms", "matched_spans",
                                                 "problem"]


def test_golden_what_if_table(mr_db):
    r = invoke(["bottlenecks", "--db", mr_db, "--what-if", SENTIMENT_EXPR, "--speedup", "2"])
    assert r.exit_code == 0 and r.stderr == ""
    check_golden("critical_bottlenecks_whatif.txt", r.stdout)


# -- options and errors ---------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--speedup", "2"], "error: --speedup needs --what-if"),
    (["--delta", "-1s"], "error: --delta needs --what-if"),
    (["--what-if", SENTIMENT_EXPR], "error: --what-if needs exactly one of --speedup and --delta"),
    (["--what-if", SENTIMENT_EXPR, "--speedup", "2", "--delta", "-1s"],
     "error: --what-if needs exactly one of --speedup and --delta"),
    (["--what-if", SENTIMENT_EXPR, "--speedup", "0"], "error: --speedup must be a number greater than 0, not '0'"),
    (["--what-if", SENTIMENT_EXPR, "--speedup", "fast"], "error: --speedup 'fast' is not a number"),
    (["--what-if", SENTIMENT_EXPR, "--delta", "1500"], "error: --delta '1500' is not a duration"),
    (["--what-if", "", "--speedup", "2"], "error: --what-if needs a filter selecting the spans to change"),
    (["--what-if", "name =", "--speedup", "2"], "error: expected a value after '=' at column 7"),
    (["--what-if", SENTIMENT_EXPR, "--speedup", "2", "--by", "agent"], "error: --by has no effect with --what-if"),
    (["--by", "service"], "error: cannot group by 'service'"),
    (["--async", "later"], "error: unknown --async mode 'later'"),
    (["--top", "-1"], "error: --top must be at least 0, not -1"),
    (["--where", "name ~ 1"], "error:"),
])
def test_bottlenecks_usage_errors(mr_db, args, message):
    r = fails("bottlenecks", "--db", mr_db, *args)
    assert r.stderr.startswith(message), r.stderr
    assert r.stdout == ""


def test_usage_errors_have_hints(mr_db):
    r = fails("bottlenecks", "--db", mr_db, "--what-if", SENTIMENT_EXPR, "--delta", "1500")
    assert "hint: give a number with a unit and an optional sign: -1500ms" in r.stderr
    r = fails("critical-path", "--db", mr_db, MR1, "--async", "maybe")
    assert r.stderr == "error: unknown --async mode 'maybe'\nhint: use one of: truncate, exclude\n"
    r = fails("critical-path", "--db", mr_db, MR1, "--width", "20")
    assert r.stderr == "error: --width must be at least 60, not 20\n"


def test_help_states_the_async_default():
    out = " ".join(ok("critical-path", "--help").split())
    assert "--async [truncate|exclude]" in out and "[default: truncate]" in out
    out = " ".join(ok("bottlenecks", "--help").split())
    assert "[default: truncate]" in out and "--what-if EXPR" in out and "--own-time" in out


# -- the analysis behind --what-if (scope "subtree") ----------------------------------


def test_subtree_scope_scales_a_span_with_its_children():
    from agtrace.analysis.critical_path import what_if

    spans = [
        {"span_id": "r", "parent_span_id": None, "name": "root", "start_ns": 0, "end_ns": 100},
        {"span_id": "a", "parent_span_id": "r", "name": "agent", "start_ns": 0, "end_ns": 80},
        {"span_id": "a1", "parent_span_id": "a", "name": "llm", "start_ns": 10, "end_ns": 40},
        {"span_id": "a2", "parent_span_id": "a", "name": "llm", "start_ns": 40, "end_ns": 70},
        {"span_id": "b", "parent_span_id": "r", "name": "other", "start_ns": 0, "end_ns": 30},
        {"span_id": "s", "parent_span_id": "r", "name": "synth", "start_ns": 80, "end_ns": 100},
    ]
    agent = lambda s: s["name"] == "agent"  # noqa: E731
    assert what_if(spans, agent, speedup=2, scope="subtree").after_ns == 60  # 40 + synth 20
    assert what_if(spans, agent, speedup=2).after_ns == 90  # own time 20 -> 10
    assert what_if(spans, agent, speedup=4, scope="subtree").after_ns == 50  # b (30) becomes the longest
    assert what_if(spans, agent, delta_ns=-30, scope="subtree").after_ns == 70
    assert what_if(spans, agent, delta_ns=-500, scope="subtree").after_ns == 50  # never below zero
    # a hit inside a hit subtree is not sped up twice
    both = lambda s: s["name"] in ("agent", "llm")  # noqa: E731
    assert what_if(spans, both, speedup=2, scope="subtree").after_ns == 60
    with pytest.raises(ValueError):
        what_if(spans, agent, speedup=2, scope="everything")


def test_retiming_is_exact_at_epoch_magnitudes():
    """Times near 1.7e18 ns: floats there are 256 ns apart, offsets are not."""
    from agtrace.analysis.critical_path import what_if

    base = BASE_NS + 123
    spans = [
        {"span_id": "r", "parent_span_id": None, "name": "root", "start_ns": base, "end_ns": base + 5_800_000_001},
        {"span_id": "a", "parent_span_id": "r", "name": "a", "start_ns": base + 7, "end_ns": base + 3_000_000_011},
    ]
    r = what_if(spans, lambda s: s["name"] == "nothing", speedup=3)
    assert (r.before_ns, r.after_ns, r.saving_ns) == (5_800_000_001, 5_800_000_001, 0)
    r = what_if(spans, lambda s: s["name"] == "a", speedup=1)
    assert r.saving_ns == 0


def test_big_and_small_trace_fetches_agree(mr_db, monkeypatch):
    """Traces above SMALL_TRACE spans come through Arrow, the rest as tuples: same answer."""
    import agtrace.analysis.bottlenecks as bn

    small = ok("critical-path", "--db", mr_db, MR1, "--format", "json", "--what-if", SENTIMENT_EXPR, "--speedup", "2")
    monkeypatch.setattr(bn, "SMALL_TRACE", 0)
    assert ok("critical-path", "--db", mr_db, MR1, "--format", "json", "--what-if", SENTIMENT_EXPR,
              "--speedup", "2") == small


# -- Zipkin shared ids: the same tree as `agtrace show` ----------------------------------

ZK_TRACE = ZIPKIN_TRACE


def _zspan(sid, name, ts, dur, parent=None, kind=None, service="svc", **extra):
    return zspan(sid, name, ZIPKIN_US + ts, dur, parent=parent, kind=kind, service=service, **extra)


def test_zipkin_shared_id_attaches_children_by_the_rule_show_uses(tmp_path):
    """A client and a server half share id ...02: the server half runs inside the client, the
    id's children inside the server half; `show` and `critical-path` agree (analysis.spanids)."""
    path = tmp_path / "zipkin.json"
    path.write_text(json.dumps([
        _zspan("0000000000000001", "get /login", 0, 10_000, kind="SERVER", service="gateway"),
        _zspan("0000000000000002", "post /token", 100, 5_000, "0000000000000001", "CLIENT", "gateway"),
        _zspan("0000000000000002", "handle /token", 300, 4_000, "0000000000000001", "SERVER", "auth", shared=True),
        _zspan("0000000000000003", "select-user", 400, 3_000, "0000000000000002", "CLIENT", "auth"),
    ]))
    r = invoke(["critical-path", "-i", path, ZK_TRACE, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    # no fan-out: the server half is not a sibling running beside its own client call
    assert doc["fanouts"] == [] and doc["problems"] == []
    assert [(s["name"], s["start_ms"], s["end_ms"]) for s in doc["sections"]] == [
        ("get /login", 0.0, 0.1), ("post /token", 0.1, 0.3), ("handle /token", 0.3, 0.4),
        ("select-user", 0.4, 3.4), ("handle /token", 3.4, 4.3), ("post /token", 4.3, 5.1),
        ("get /login", 5.1, 10.0)]
    r = invoke(["show", "-i", path, ZK_TRACE, "--format", "csv"])
    assert [(row.split(",")[2], row.split(",")[3], row.split(",")[-1]) for row in r.stdout.splitlines()[1:]] == [
        ("0", "get /login", "true"), ("1", "post /token", "true"), ("2", "handle /token", "true"),
        ("3", "select-user", "true")]


def test_shared_id_rule_is_one_helper():
    from agtrace.analysis.spanids import shared_id_links

    ids = ["r", "s", "s", "k", "d", "d"]
    kinds = ["server", "client", "server", None, None, None]
    starts = [0, 10, 12, 20, 65, 60]
    index, up, problems = shared_id_links(ids, kinds, starts)
    assert (index["s"], index["d"], up) == (2, 5, {2: 1})  # server half; earliest by start
    assert problems == ["span id d occurs 2 times; children attach to the earliest"]
    assert shared_id_links(["a", "b"], None, [0, 1]) == ({"a": 0, "b": 1}, {}, [])
