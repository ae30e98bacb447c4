"""`agtrace check`: the assertion grammar, rules files, every measure passing
and failing, exit codes, JUnit XML, JSON and GitHub annotations.

Expected values come from a hand-timed fixture (numbers worked out below) and,
on the bundled samples, from independent computations over the raw span rows
(Python percentiles, means, runs and per-trace critical paths), never from the
code under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agtrace.analysis.check import parse_assertion, parse_rules
from agtrace.errors import ExpressionError, UsageError
from conftest import ROOT, SAMPLES, invoke

# -- fixture: three traces timed by hand ------------------------------------------------------
#
# A: orchestrator[0,100] with research.one[5,40], .two[5,60], .three[5,50] in
#    parallel, then synthesis[62,95] (the fan-out of the critical-path spec):
#    critical path orchestrator 0-5, research.two 5-60, orchestrator 60-62,
#    synthesis 62-95, orchestrator 95-100: research 55 of 100 ms.
# B: orchestrator[0,200], research.one[10,110] (error), synthesis[110,190]:
#    research 100 of 200 ms.
# C: decider[0,50] with six 5 ms decisions back to back from 5 ms, agent
#    "judge": approve x3, reject, approve x2 (longest run 3); confidences
#    0.9 .. 0.4 (average 0.65). Critical: the decisions 30 ms, decider 20 ms.
# critical_share(research) = (55 + 100) / (100 + 200 + 50) = 155 / 350.

T0 = 1_705_312_800_000_000_000  # 2024-01-15T10:00:00Z
A, B, C = "a" * 32, "b" * 32, "c" * 32


def _iso(ns: int) -> str:
    s, r = divmod(ns, 10**9)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{r:09d}Z"


def _span(tid, sid, parent, name, start_ms, end_ms, base, status="ok", **attrs):
    return {"trace_id": tid, "span_id": sid, "parent_span_id": parent, "name": name,
            "start": _iso(base + int(start_ms * 1_000_000)), "end": _iso(base + int(end_ms * 1_000_000)),
            "status": status, "service": "fixture", "attributes": attrs}


def fixture_rows() -> list[dict]:
    ta, tb, tc = T0, T0 + 10**9, T0 + 2 * 10**9
    rows = [
        _span(A, "a000000000000001", None, "orchestrator", 0, 100, ta),
        _span(A, "a000000000000002", "a000000000000001", "research.one", 5, 40, ta),
        _span(A, "a000000000000003", "a000000000000001", "research.two", 5, 60, ta),
        _span(A, "a000000000000004", "a000000000000001", "research.three", 5, 50, ta),
        _span(A, "a000000000000005", "a000000000000001", "synthesis", 62, 95, ta, **{"gen_ai.usage.input_tokens": 100}),
        _span(B, "b000000000000001", None, "orchestrator", 0, 200, tb),
        _span(B, "b000000000000002", "b000000000000001", "research.one", 10, 110, tb, status="error"),
        _span(B, "b000000000000003", "b000000000000001", "synthesis", 110, 190, tb, **{"gen_ai.usage.input_tokens": 250}),
        _span(C, "c000000000000001", None, "decider", 0, 50, tc),
    ]
    kinds = ["approve", "approve", "approve", "reject", "approve", "approve"]
    for i, (dt, conf) in enumerate(zip(kinds, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])):
        rows.append(_span(C, f"c00000000000001{i}", "c000000000000001", "agent.decision_point", 5 + 5 * i, 10 + 5 * i,
                          tc, agent_name="judge", decision_type=dt, decision_confidence=conf))
    return rows


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("check") / "fixture.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in fixture_rows()) + "\n")
    return p


@pytest.fixture(scope="module")
def fx_db(fixture_file) -> Path:
    db = fixture_file.parent / "fx.duckdb"
    r = invoke(["load", fixture_file, "--db", db])
    assert r.exit_code == 0, r.stderr
    return db


@pytest.fixture(scope="module")
def samples_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("check_samples") / "samples.duckdb"
    r = invoke(["load", SAMPLES, "--db", db])
    assert r.exit_code == 0, r.stderr
    return db


def check_json(db, *expects, extra=()) -> tuple[int, dict]:
    args = ["check", "--db", db, "--format", "json", *extra]
    for e in expects:
        args += ["--expect", e]
    r = invoke(args)
    assert r.exit_code in (0, 1), r.stderr
    return r.exit_code, json.loads(r.stdout)


def one(db, expect: str, **kw) -> dict:
    code, out = check_json(db, expect, **kw)
    (res,) = out["rules"]
    assert code == (0 if res["verdict"] != "fail" else 1)
    return res


# -- the assertion grammar ---------------------------------------------------------------------

PARSED = [
    ("count == 0", ("count", None, "", "", "==", 0)),
    ("COUNT = 0", ("count", None, "", "", "==", 0)),
    ("count(status = error) == 0", ("count", None, "status = error", "", "==", 0)),
    ('rate(decision_type = "x" of type = "decision") < 0.1',
     ("rate", None, 'decision_type = "x"', 'type = "decision"', "<", 0.1)),
    ("rate < 0.10", ("rate", None, "", "", "<", 0.1)),
    ("p95(duration_ms) < 5000", ("p95", "duration_ms", "", "", "<", 5000)),
    ("p95(duration) <= 2.5s", ("p95", "duration", "", "", "<=", 2500)),
    ("max(duration_ms) < 30s", ("max", "duration_ms", "", "", "<", 30000)),
    ('avg(decision_confidence where type = "decision") >= 0.7',
     ("avg", "decision_confidence", 'type = "decision"', "", ">=", 0.7)),
    ("sum(gen_ai.usage.input_tokens) < 2000000", ("sum", "gen_ai.usage.input_tokens", "", "", "<", 2000000)),
    ("max_streak(decision_type) < 100", ("max_streak", "decision_type", "", "", "<", 100)),
    ("critical_share < 0.5", ("critical_share", None, "", "", "<", 0.5)),
    ('critical_share(type = "llm" of name = "w") != 1', ("critical_share", None, 'type = "llm"', 'name = "w"', "!=", 1)),
    # `of` naming an attribute is a field, not the separator
    ("rate(of = 1 of of = 2) > 0", ("rate", None, "of = 1", "of = 2", ">", 0)),
    ('count(name = "a (b" or (x = 1)) != 3', ("count", None, 'name = "a (b" or (x = 1)', "", "!=", 3)),
    ("min(x) > -1.5", ("min", "x", "", "", ">", -1.5)),
    ('p99(span."odd key") < 1', ("p99", 'span."odd key"', "", "", "<", 1)),
]


@pytest.mark.parametrize("text,expected", PARSED)
def test_parse_assertion(text, expected):
    a = parse_assertion(text)
    assert (a.measure, a.field, a.where, a.of, a.op, a.bound) == expected


PARSE_ERRORS = [
    ("", "expected an assertion, such as count == 0", 1),
    ("cont == 0", "expected a measure, found 'cont'", 1),
    ("count(status = error == 0", "unbalanced parentheses: '(' is never closed", 6),
    ("count(status = error)) == 0", "unbalanced parentheses: ')' without a matching '('", 22),
    ("count(status = eror) == 0", "expected a value after '='", 16),
    ("count == ", "expected a number after '=='", 10),
    ("count == x", "expected a number after '=='", 10),
    ("count == 0 and rate < 1", "expected the end of the assertion, found 'and'", 12),
    ("p95 < 5", "p95 needs a field", 5),
    ("p95() < 1", "expected a field name inside p95(...)", 5),
    ("p95(5) < 1", "expected a field name inside p95(...), found '5'", 5),
    ("p95(name) < 5", "p95() needs a number, and name is text", 5),
    ("avg(start) > 1", "avg() needs a number, and start is a time", 5),
    ("p95(staus) < 1", "unknown field 'staus'", 5),
    ("p95(duration_ms > 5) < 3", "expected 'where' or ')' after the field, found '>'", 17),
    ("p95(duration_ms where) < 1", "expected a filter after 'where'", 22),
    ('count(status = error of type = "tool") == 0', "'of' does not apply to count", 22),
    ("rate(status = error of) < 1", "expected a filter after 'of'", 23),
    ("rate(a = 1 of b = 2 of c = 3) < 1", "'of' is given twice", 21),
    ("count < 5s", "count is not a duration; '5s' has a unit", 9),
    ("avg(decision_confidence) < 5s", "avg(decision_confidence) is not a duration; '5s' has a unit", 28),
    ("max_streak(agent) < 3", "max_streak counts runs per agent, so its field cannot be agent", 12),
    ("count where status = error == 0", "expected a comparison (== != < <= > >=) after 'count'", 7),
    ("count =~ 3", "expected a comparison (== != < <= > >=) after 'count'", 7),
]


@pytest.mark.parametrize("text,message,column", PARSE_ERRORS)
def test_parse_assertion_errors(text, message, column):
    with pytest.raises(ExpressionError) as ei:
        parse_assertion(text)
    assert (ei.value.message, ei.value.column) == (message, column)
    assert ei.value.expression == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='count(rate)p95 max_streak<=>!"\'ofwhere status=error01.5s', max_size=40))
def test_parser_raises_only_expression_errors(text):
    try:
        parse_assertion(text)
    except ExpressionError:
        pass


def test_float_noise_does_not_decide():
    assert parse_assertion("avg(x) == 0.3").compare(0.1 + 0.2)
    assert parse_assertion("avg(x) <= 0.3").compare(0.30000000000000004)
    assert not parse_assertion("avg(x) < 0.3").compare(0.1 + 0.2)


# -- every measure, passing and failing, on the hand-timed fixture -----------------------------

FIXTURE_VALUES = [
    ("count", 15),
    ("count(status = error)", 1),
    ('count(name = "orchestrator" and duration_ms > 150)', 1),
    ('rate(decision_type = "approve" of exists(decision_type))', 0.833333333),
    ('rate(status = error of name startswith "research")', 0.25),
    ('p50(duration_ms where name = "orchestrator")', 150),
    ('p95(duration_ms where name = "orchestrator")', 195),
    # research durations 35, 45, 55, 100 ms: h = 3 * 0.9 = 2.7, so 55 + 0.7 * (100 - 55)
    ('p90(duration where name startswith "research")', 86.5),
    ('avg(duration_ms where name = "synthesis")', 56.5),
    ("min(decision_confidence)", 0.4),
    ("max(decision_confidence)", 0.9),
    ("avg(decision_confidence)", 0.65),
    ("sum(gen_ai.usage.input_tokens)", 350),
    ("max_streak(decision_type)", 3),
    ('max_streak(decision_type where decision_confidence < 0.85)', 2),
    ("max_streak(name)", 6),  # decider's decisions, all named alike, agent judge
    ('critical_share(name startswith "research")', 0.442857143),
    ('critical_share(name startswith "research" of status = error)', 0.5),
    ("critical_share", 1),
]


@pytest.mark.parametrize("measure,value", FIXTURE_VALUES)
def test_measures_on_fixture_pass_and_fail(fx_db, measure, value):
    code, out = check_json(fx_db, f"{measure} == {value}", f"{measure} <= {value}", f"{measure} < {value}",
                           f"{measure} != {value}")
    assert code == 1
    got = [(r["verdict"], r["value"], r["op"], r["bound"]) for r in out["rules"]]
    assert got == [("pass", value, "==", value), ("pass", value, "<=", value),
                   ("fail", value, "<", value), ("fail", value, "!=", value)]


def test_measure_details_on_fixture(fx_db):
    res = one(fx_db, 'max(duration_ms where name = "orchestrator") < 1000')
    assert res["detail"] == {"values": 2, "trace_id": B, "span_id": "b000000000000001"}
    res = one(fx_db, "max_streak(decision_type) < 10")
    assert res["detail"] == {"agent": "judge", "streak_value": "approve", "total": 6,
                             "start_trace_id": C, "start_span_id": "c000000000000010",
                             "end_trace_id": C, "end_span_id": "c000000000000012"}
    res = one(fx_db, 'critical_share(name startswith "research") < 1')
    assert res["detail"] == {"critical_ms": 155.0, "total_critical_ms": 350.0, "traces": 3, "failed_traces": 0}
    res = one(fx_db, "rate(status = error) < 1")
    assert res["detail"] == {"matched": 1, "base": 15}


def test_trace_scope_on_fixture(fx_db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text("""
[[rule]]
name = "traces"
scope = "trace"
expect = "count == 3"

[[rule]]
name = "traces with an error"
scope = "trace"
where = "status = error"
expect = "count == 1"

[[rule]]
name = "error rate per trace"
scope = "trace"
where = "status = error"
of = 'name = "orchestrator"'
expect = "rate == 0.5"

[[rule]]
name = "slowest trace"
scope = "trace"
expect = "max(duration_ms) < 200"

[[rule]]
name = "median spans"
scope = "trace"
expect = "p50(span_count) == 5"

[[rule]]
name = "root field"
scope = "trace"
where = 'name = "decider"'
expect = "avg(duration) == 50ms"
""")
    r = invoke(["check", rules, "--db", fx_db, "--format", "json"])
    assert r.exit_code == 1, r.stderr
    out = json.loads(r.stdout)
    got = [(x["name"], x["value"], x["verdict"]) for x in out["rules"]]
    assert got == [
        ("traces", 3, "pass"),
        ("traces with an error", 1, "pass"),
        ("error rate per trace", 0.5, "pass"),
        ("slowest trace", 200, "fail"),
        ("median spans", 5, "pass"),
        ("root field", 50, "pass"),
    ]
    assert out["summary"] == {"rules": 6, "passed": 5, "failed": 1, "warnings": 0}
    assert out["rules"][3]["detail"] == {"values": 3, "trace_id": B}


def test_filters_are_and_ed_with_the_rule_where(fx_db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text("""[[rule]]
name = "research errors"
where = 'name startswith "research"'
expect = "count(status = error) == 1"

[[rule]]
name = "approvals among confident decisions"
where = 'decision_type = "approve"'
of = "decision_confidence > 0.55"
expect = "rate(decision_confidence < 0.85 of exists(decision_type)) == 0.5"
""")
    code, out = check_json(fx_db, extra=[rules])
    assert code == 0
    assert [x["value"] for x in out["rules"]] == [1, 0.5]
    assert out["rules"][0]["where"] == '(name startswith "research") and (status = error)'
    assert out["rules"][1]["of"] == "(decision_confidence > 0.55) and (exists(decision_type))"


def test_empty_measures_pass_unless_if_empty_fail(fx_db, tmp_path):
    res = one(fx_db, 'rate(status = error of name = "nothing") < 0.1')
    assert (res["verdict"], res["value"], res["note"]) == ("pass", None, 'no spans in the base set (name = "nothing")')
    res = one(fx_db, 'p95(duration_ms where name = "nothing") < 1')
    assert (res["verdict"], res["value"], res["note"]) == ("pass", None, "no duration_ms values in the selected spans")
    assert one(fx_db, 'max_streak(decision_type where name = "nothing") == 0')["verdict"] == "pass"
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nwhere = \'name = "nothing"\'\nexpect = "avg(duration_ms) < 1"\nif_empty = "fail"\n')
    r = invoke(["check", rules, "--db", fx_db])
    assert r.exit_code == 1
    assert r.stdout.splitlines()[1].split() == ["FAIL", "x", "avg(duration_ms)", "<", "1", "no", "value", "(no",
                                                "duration_ms", "values", "in", "the", "selected", "spans)"]


def test_text_in_filters_is_bound_not_pasted(fx_db):
    res = one(fx_db, "count(name = \"x'; DROP TABLE spans; --\") == 0")
    assert res["value"] == 0
    assert one(fx_db, "count == 15")["verdict"] == "pass"


# -- every measure on the bundled samples, against independent computations ---------------------


def _rows(db):
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = ["trace_id", "span_id", "parent_span_id", "name", "kind", "status", "start_ns", "end_ns",
                "duration_ns", "type", "agent", "attributes", "sid"]
        data = con.execute(f"SELECT {', '.join(cols)} FROM spans").fetchall()
    finally:
        con.close()
    out = []
    for row in data:
        d = dict(zip(cols, row))
        d["attrs"] = json.loads(d["attributes"] or "{}")
        out.append(d)
    return out


def _num(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _percentile(values, q):
    xs = sorted(values)
    h = (len(xs) - 1) * q
    f = int(h)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (h - f)


def _longest_run(rows, key):
    best = 0
    by_agent: dict = {}
    for r in rows:
        if key in r["attrs"]:
            by_agent.setdefault(r["agent"], []).append(r)
    for spans in by_agent.values():
        spans.sort(key=lambda r: (r["start_ns"], r["sid"]))
        run, prev = 0, object()
        for r in spans:
            v = r["attrs"][key]
            run = run + 1 if v == prev else 1
            prev = v
            best = max(best, run)
    return best


def _critical_share(rows, selected):
    from agtrace.analysis.critical_path import analyze_trace

    by_trace: dict = {}
    for r in rows:
        by_trace.setdefault(r["trace_id"], []).append(r)
    crit = total = 0
    for tid, spans in by_trace.items():
        res = analyze_trace([{**r, "attributes": r["attrs"]} for r in spans], trace_id=tid, with_fanouts=False)
        p = res.primary
        total += p.duration_ns
        chosen = {r["span_id"] for r in spans if selected(r)}
        crit += sum(s.end_ns - s.start_ns for s in p.sections if s.span_id in chosen)
    return crit / total


@pytest.fixture(scope="module")
def sample_expectations(samples_db):
    rows = _rows(samples_db)
    llm = [r["duration_ns"] / 1e6 for r in rows if r["type"] == "llm"]
    decisions = [r for r in rows if r["type"] == "decision"]
    conf = [_num(r["attrs"]["decision_confidence"]) for r in decisions]
    tokens = [_num(r["attrs"]["gen_ai.usage.input_tokens"]) for r in rows if "gen_ai.usage.input_tokens" in r["attrs"]]
    escalations = [r for r in decisions if r["attrs"].get("decision_type") in ("escalate_to_human", "escalate")]
    return [
        ("count(status = error)", sum(r["status"] == "error" for r in rows)),
        ('rate(decision_type in ("escalate_to_human", "escalate") of type = "decision")',
         len(escalations) / len(decisions)),
        ('p95(duration_ms where type = "llm")', _percentile(llm, 0.95)),
        ('p50(duration_ms where type = "llm")', _percentile(llm, 0.5)),
        ('max(duration_ms where type = "agent")', max(r["duration_ns"] / 1e6 for r in rows if r["type"] == "agent")),
        ('avg(decision_confidence where type = "decision")', sum(conf) / len(conf)),
        ("sum(gen_ai.usage.input_tokens)", sum(tokens)),
        ("max_streak(decision_type)", _longest_run(rows, "decision_type")),
        ('critical_share(type = "tool")', _critical_share(rows, lambda r: r["type"] == "tool")),
        ('critical_share(type = "llm")', _critical_share(rows, lambda r: r["type"] == "llm")),
    ]


def test_measures_on_samples_match_independent_computations(samples_db, sample_expectations):
    code, out = check_json(samples_db, *(f"{m} >= 0" for m, _ in sample_expectations))
    assert code == 0
    for (m, expected), res in zip(sample_expectations, out["rules"]):
        assert res["value"] == pytest.approx(expected, abs=1e-9), m
    # the documented figures of sample_traces/README.md and the stats table
    values = {m: res["value"] for (m, _), res in zip(sample_expectations, out["rules"])}
    assert values["count(status = error)"] == 3
    assert values["max_streak(decision_type)"] == 5
    assert out["spans"] == 285 and out["traces"] == 28


def test_measures_on_samples_pass_and_fail(samples_db, sample_expectations):
    """Each kind at its exact measured value: <= and == pass, < and != fail."""
    _, measured = check_json(samples_db, *(f"{m} >= 0" for m, _ in sample_expectations))
    exprs = []
    for (m, _), res in zip(sample_expectations, measured["rules"]):
        v = res["value"]
        exprs += [f"{m} <= {v}", f"{m} == {v}", f"{m} < {v}", f"{m} != {v}"]
    code, out = check_json(samples_db, *exprs)
    assert code == 1
    verdicts = [r["verdict"] for r in out["rules"]]
    assert verdicts == ["pass", "pass", "fail", "fail"] * len(sample_expectations)
    assert out["summary"] == {"rules": len(exprs), "passed": len(exprs) // 2, "failed": len(exprs) // 2, "warnings": 0}


def test_sample_rules_file(samples_db):
    r = invoke(["check", SAMPLES / "rules.toml", "--db", samples_db])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["RESULT", "RULE", "EXPECT", "MEASURED"]
    verdicts = [ln.split()[0] for ln in lines[1:-1]]
    assert verdicts == ["PASS"] * 3 + ["WARN"] + ["PASS"] * 8
    assert "escalation to humans among decisions" in lines[4]
    assert lines[4].endswith("0.1622 (6 of 37 spans)")
    assert lines[-1] == "OK: 0 failed, 1 warning, 11 passed (12 rules, 285 spans in 28 traces)"
    assert r.stderr == ""


# -- exit codes, warn severity, inputs ---------------------------------------------------------


def test_exit_codes(fx_db, tmp_path):
    assert invoke(["check", "--db", fx_db, "-e", "count == 15"]).exit_code == 0
    assert invoke(["check", "--db", fx_db, "-e", "count == 15", "-e", "count(status = error) == 0"]).exit_code == 1
    r = invoke(["check", "--db", fx_db, "-e", "count(status = eror) == 0"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == (
        "error: --expect #1: expected a value after '=' at column 16\n"
        "  count(status = eror) == 0\n"
        "                 ^\n"
        "hint: status is one of: error, ok, unset\n"
    )
    r = invoke(["check", "--db", fx_db])
    assert (r.exit_code, r.stderr) == (2, "error: no rules to check\nhint: give a rules file (agtrace check rules.toml)"
                                          " or --expect 'count(status = error) == 0'\n")
    r = invoke(["check", tmp_path / "missing.toml", "--db", fx_db])
    assert (r.exit_code, r.stderr) == (2, f"error: rules file not found: {tmp_path / 'missing.toml'}\n")


def test_warn_severity_does_not_fail(fx_db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "errors"\nwhere = "status = error"\nexpect = "count == 0"\nseverity = "warn"\n')
    r = invoke(["check", rules, "--db", fx_db])
    assert r.exit_code == 0
    assert r.stdout == (
        "RESULT  RULE    EXPECT      MEASURED\n"
        "WARN    errors  count == 0  1 span\n"
        "OK: 0 failed, 1 warning, 0 passed (1 rule, 15 spans in 3 traces)\n"
    )
    rules.write_text(rules.read_text().replace('severity = "warn"', 'severity = "error"'))
    r = invoke(["check", rules, "--db", fx_db])
    assert r.exit_code == 1
    assert r.stdout.splitlines()[1].startswith("FAIL    errors")
    assert r.stdout.splitlines()[-1] == "FAILED: 1 failed, 0 warnings, 0 passed (1 rule, 15 spans in 3 traces)"


def test_inline_table_output(fx_db):
    r = invoke(["check", "--db", fx_db, "-e", "count(status = error) == 0", "-e", "p95(duration_ms) < 1s"])
    assert r.exit_code == 1
    assert r.stdout == (
        "RESULT  EXPECT                      MEASURED\n"
        "FAIL    count(status = error) == 0  1 span\n"
        "PASS    p95(duration_ms) < 1s       130.0 ms (15 values)\n"
        "FAILED: 1 failed, 0 warnings, 1 passed (2 rules, 15 spans in 3 traces)\n"
    )


def test_straight_on_files(fixture_file):
    r = invoke(["check", "-i", fixture_file, "-e", "count == 15", "-e", "critical_share(name = \"synthesis\") < 0.5"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "OK: 0 failed, 0 warnings, 2 passed (2 rules, 15 spans in 3 traces)"


def test_empty_input_is_reported(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = invoke(["check", "-i", empty, "-e", "count == 0"])
    assert r.exit_code == 0
    assert "warning: there are no spans to check in the input files\n" in r.stderr


def test_bad_expression_fails_before_reading_the_store(tmp_path):
    # the store does not exist: the expression error must win (exit 2 and its message)
    r = invoke(["check", "--db", tmp_path / "none.duckdb", "-e", "p95(name) < 1"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: --expect #1: p95() needs a number, and name is text at column 5\n")


# -- rules files: good and bad -----------------------------------------------------------------


def test_parse_rules_keys_and_lines():
    text = """# rules
[[rule]]
name = "a"
expect = "count == 0"

[[rule]]
description = "d"
name = " b "
where = 'type = "tool"'
of = "exists(x)"
expect = "rate < 0.5"
scope = "trace"
severity = "warn"
if_empty = "fail"
"""
    a, b = parse_rules(text, "r.toml")
    assert (a.name, a.line, a.source, a.scope, a.severity, a.if_empty) == ("a", 3, "r.toml:3", "span", "error", "pass")
    assert (b.name, b.line, b.where, b.of, b.scope, b.severity, b.if_empty, b.description) == (
        "b", 8, 'type = "tool"', "exists(x)", "trace", "warn", "fail", "d")
    (c,) = parse_rules('[[rules]]\nname = "c"\nexpect = "count == 0"\n', "r.toml")
    assert (c.name, c.line) == ("c", 2)


BAD_FILES = [
    ('[[rule]]\nname = "a"\nexpect = count == 0\n',
     "error: r.toml:3: not valid TOML: invalid value at column 10\n"
     "  expect = count == 0\n"
     "           ^\n"
     "hint: strings need quotes: expect = \"count == 0\"; use 'single quotes' around text with \"double quotes\"\n"),
    ('[[rule]]\nname = "no errors"\nwhere = "status = eror"\nexpect = "count == 0"\n',
     "error: r.toml:3: rule \"no errors\": where: expected a value after '=' at column 10\n"
     "  status = eror\n"
     "           ^\n"
     "hint: status is one of: error, ok, unset\n"),
    ('# c\n\n[[rule]]\nname = "x"\nexpect = "count == 0"\n\n[[rule]]\nname = "no errors"\nexpct = "count == 0"\n',
     "error: r.toml:9: rule \"no errors\": unknown key 'expct'\nhint: did you mean expect?\n"),
    ('[[rule]]\nname = "x"\n',
     "error: r.toml:1: rule \"x\": missing 'expect'\n"
     "hint: every rule needs name = \"...\" and expect = \"...\" (e.g. expect = \"count == 0\")\n"),
    ('[[rule]]\nexpect = "count == 0"\n',
     "error: r.toml:1: rule 1: missing 'name'\n"
     "hint: every rule needs name = \"...\" and expect = \"...\" (e.g. expect = \"count == 0\")\n"),
    ('[[rule]]\nname = "slow"\n\nexpect = "p95(duration_ms > 5) < 3"\n',
     "error: r.toml:4: rule \"slow\": expect: expected 'where' or ')' after the field, found '>' at column 17\n"
     "  p95(duration_ms > 5) < 3\n"
     "                  ^\n"
     "hint: p95(FIELD) or p95(FIELD where FILTER)\n"),
    ('[[rule]]\nname = "x"\nexpect = "count == 0"\n[[rule]]\nname = "x"\nexpect = "count == 1"\n',
     "error: r.toml:5: rule \"x\": the name is used twice (first at line 2)\n"
     "hint: rule names are test case names in CI reports; make them unique\n"),
    ('x = 1\n', "error: r.toml:1: unknown top-level key 'x'\nhint: rules are [[rule]] tables\n"),
    ('[[rlue]]\nname = "a"\n', "error: r.toml:1: unknown top-level key 'rlue'\nhint: rules are [[rule]] tables (did you mean rule?)\n"),
    ('', "error: r.toml: no rules\nhint: add rules as [[rule]] tables with name = \"...\" and expect = \"...\"\n"),
    ('rule = "count == 0"\n', "error: r.toml:1: 'rule' must be a list of tables\n"
     "hint: write each rule as a [[rule]] table with name = \"...\" and expect = \"...\"\n"),
    ('[[rule]]\nname = "x"\nexpect = "count == 0"\nseverity = "warning"\n',
     "error: r.toml:4: rule \"x\": severity must be one of error, warn, not \"warning\"\n"
     "hint: did you mean severity = \"warn\"?\n"),
    ('[[rule]]\nname = "x"\nexpect = "max_streak(decision_type) < 3"\nscope = "trace"\n',
     "error: r.toml:4: rule \"x\": max_streak works on spans, not in scope = \"trace\"\n"
     "hint: trace scope takes count, rate and p50/p90/p95/p99/avg/min/max/sum\n"),
    ('[[rule]]\nname = "x"\nexpect = "count < 3"\nof = "type = tool"\n',
     "error: r.toml:4: rule \"x\": 'of' does not apply to count\nhint: only rate and critical_share take a base set\n"),
    ('[[rule]]\nname = "x"\nexpect = 3\n',
     "error: r.toml:3: rule \"x\": expect must be a string, not a number\nhint: quote it: expect = '...'\n"),
    ('rule = [{name = "x", expect = "count < 3"},\n  {name = "y", expect = "cnt < 3"}]\n',
     "error: r.toml:2: rule \"y\": expect: expected a measure, found 'cnt' at column 1\n"
     "  cnt < 3\n"
     "  ^\n"
     "hint: did you mean count?\n"),
]


@pytest.mark.parametrize("text,stderr", BAD_FILES)
def test_bad_rules_files(tmp_path, monkeypatch, fx_db, text, stderr):
    monkeypatch.chdir(tmp_path)
    Path("r.toml").write_text(text)
    r = invoke(["check", "r.toml", "--db", fx_db])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)


def test_toml_error_points_at_the_line(tmp_path):
    # tomllib's wording differs between Python versions; the place does not
    p = tmp_path / "r.toml"
    p.write_text('[[rule]]\nname = "a"\nexpect = "count == 0\n')
    with pytest.raises(UsageError) as ei:
        parse_rules(p.read_text(), "r.toml")
    first, shown, caret = ei.value.message.split("\n")
    assert first.startswith("r.toml:3: not valid TOML: ") and first.endswith(" at column 21")
    assert (shown, caret) == ('  expect = "count == 0', "  " + " " * 20 + "^")


def test_rules_file_not_utf8(tmp_path):
    p = tmp_path / "r.toml"
    p.write_bytes(b'[[rule]]\nname = "\xff"\n')
    with pytest.raises(UsageError) as ei:
        from agtrace.analysis.check import load_rules

        load_rules(p)
    assert ei.value.message == f"{p}:2: not UTF-8 text (byte offset 17)"


# -- machine output: JSON, CSV, JUnit, GitHub annotations --------------------------------------

RULES_MIXED = """[[rule]]
name = "no errors"
where = "status = error"
expect = "count == 0"

[[rule]]
name = "confidence"
expect = "avg(decision_confidence) >= 0.7"
severity = "warn"
description = "decisions should be sure of themselves"

[[rule]]
name = "orchestrator p95"
where = 'name = "orchestrator"'
expect = "p95(duration_ms) < 1s"
"""


def test_json_output(fx_db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_MIXED)
    code, out = check_json(fx_db, extra=[rules])
    assert code == 1
    assert out["ok"] is False
    assert out["summary"] == {"rules": 3, "passed": 1, "failed": 1, "warnings": 1}
    assert (out["spans"], out["traces"]) == (15, 3)
    first = out["rules"][0]
    assert first == {
        "name": "no errors", "verdict": "fail", "value": 1, "op": "==", "bound": 0, "expect": "count == 0",
        "measure": "count", "field": None, "where": "status = error", "of": None, "scope": "span",
        "severity": "error", "if_empty": "pass", "description": None, "source": f"{rules}:2",
        "file": str(rules), "line": 2, "detail": {}, "note": None, "unknown_fields": [],
    }
    assert (out["rules"][1]["verdict"], out["rules"][1]["value"]) == ("warn", 0.65)
    assert (out["rules"][2]["verdict"], out["rules"][2]["value"], out["rules"][2]["bound"]) == ("pass", 195, 1000)


def test_unknown_field_is_a_warning_or_with_strict_a_failure(fx_db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "typo"\nwhere = \'decison_type = "approve"\'\nexpect = "count == 0"\n\n'
                     '[[rule]]\nname = "fine"\nexpect = "max(decision_confidence) <= 1"\n')
    r = invoke(["check", rules, "--db", fx_db, "-e", "avg(span.decision_confidense) < 1"])
    assert r.exit_code == 0  # a typo is reported, not failed, by default
    assert r.stderr == (
        f'warning: {rules}:2: rule "typo": no span has the field \'decison_type\' (did you mean decision_type?)\n'
        'warning: --expect: rule "avg(span.decision_confidense) < 1": no span has the field '
        "'span.decision_confidense' (did you mean decision_confidence?)\n")
    code, out = check_json(fx_db, extra=[rules])
    assert code == 0
    assert [r["unknown_fields"] for r in out["rules"]] == [
        [{"field": "decison_type", "did_you_mean": "decision_type"}], []]
    # a key nothing resembles: no suggestion
    code, out = check_json(fx_db, "count(zzqx_flag = 1) == 0")
    assert out["rules"][0]["unknown_fields"] == [{"field": "zzqx_flag", "did_you_mean": None}]
    junit = tmp_path / "j.xml"
    r = invoke(["check", rules, "--db", fx_db, "--strict", "--junit", junit])
    assert r.exit_code == 1
    assert r.stdout.splitlines()[1:3] == ["FAIL    typo  count == 0                     0 spans",
                                          "PASS    fine  max(decision_confidence) <= 1  0.9 (6 values)"]
    assert r.stderr.endswith("(did you mean decision_type?) (--strict: the rule fails)\n")
    case = ET.parse(junit).getroot().find("testsuite").findall("testcase")[0]
    assert case.find("failure").get("message") == (
        "count == 0: measured 0 spans; no span has the field 'decison_type' (did you mean decision_type?)")
    assert "warning: no span has the field 'decison_type' (did you mean decision_type?)\n" in case.find("system-out").text


def test_csv_output(fx_db):
    r = invoke(["check", "--db", fx_db, "-e", "count == 15", "--format", "csv"])
    assert r.stdout == ("verdict,name,value,op,bound,expect,where,of,scope,severity,source,note\n"
                        "pass,count == 15,15,==,15,count == 15,,,span,error,--expect,\n")


def test_junit_report(fx_db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_MIXED)
    junit = tmp_path / "reports" / "agtrace.xml"
    r = invoke(["check", rules, "--db", fx_db, "--junit", junit, "-e", "count(status = ok) >= 1"])
    assert r.exit_code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("name", "tests", "failures", "errors", "skipped")} == {
        "name": "agtrace check", "tests": "4", "failures": "1", "errors": "0", "skipped": "1"}
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == str(rules)
    assert suite.get("tests") == "4"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["no errors", "confidence", "orchestrator p95", "count(status = ok) >= 1"]
    assert [(c.get("file"), c.get("line")) for c in cases] == [(str(rules), "2"), (str(rules), "7"),
                                                              (str(rules), "13"), (None, None)]
    assert cases[3].get("classname") == "agtrace.check"
    failure = cases[0].find("failure")
    assert failure.get("message") == "count == 0: measured 1 span"
    assert "measured: 1 span\n" in failure.text and "where: status = error\n" in failure.text
    skipped = cases[1].find("skipped")
    assert skipped.get("message") == "warning: avg(decision_confidence) >= 0.7: measured 0.65 (6 values)"
    assert cases[2].find("failure") is None and cases[2].find("skipped") is None
    assert "measured: 195 ms (2 values)\n" in cases[2].find("system-out").text
    for c in cases:
        float(c.get("time"))


def test_junit_survives_control_characters():
    from agtrace.analysis.check import CheckReport, RuleResult, inline_rule
    from agtrace.render.junit import junit_xml

    rule = inline_rule('count(name = "a\x01b") == 1')
    text = junit_xml(CheckReport([RuleResult(rule, 0, "fail")]))
    case = ET.fromstring(text.split("\n", 1)[1]).find("testsuite/testcase")
    assert case.get("name") == 'count(name = "a\ufffdb") == 1'


def test_junit_unwritable_path(fx_db, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = invoke(["check", "--db", fx_db, "-e", "count == 15", "--junit", blocker / "x.xml"])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: cannot write the JUnit report {blocker / 'x.xml'}: ")


def test_github_annotations(fx_db, tmp_path, monkeypatch):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_MIXED)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    r = invoke(["check", rules, "--db", fx_db, "--format", "json", "-e", "count(status = error) < 1"])
    assert r.exit_code == 1
    json.loads(r.stdout)  # annotations stay off stdout
    f = str(rules).replace(":", "%3A").replace(",", "%2C")
    assert r.stderr.splitlines() == [
        f"::error file={f},line=2,title=agtrace check%3A no errors::count == 0: measured 1 span",
        f"::warning file={f},line=7,title=agtrace check%3A confidence::"
        "avg(decision_confidence) >= 0.7: measured 0.65 (6 values)",
        "::error title=agtrace check%3A count(status = error) < 1::count(status = error) < 1: measured 1 span",
    ]
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    r = invoke(["check", rules, "--db", fx_db, "--format", "json"])
    assert r.stderr == ""


def test_colour_table_on_a_terminal(fx_db, monkeypatch, capsys):
    import io

    from agtrace.analysis.check import check, inline_rule
    from agtrace.commands.check import _write
    from agtrace.render.output import OutputFormat
    from agtrace.store import Store

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    with Store.open(fx_db, read_only=True) as store:
        report = check(store, [inline_rule("count == 15"), inline_rule("count(status = error) == 0", 2)])
    _write(report, OutputFormat.table)
    text = out.getvalue()
    assert "\x1b[" in text and "PASS" in text and "FAIL" in text
    assert "FAILED: 1 failed, 0 warnings, 1 passed (2 rules, 15 spans in 3 traces)" in text
    monkeypatch.setenv("NO_COLOR", "1")
    out2 = Tty()
    monkeypatch.setattr(sys, "stdout", out2)
    _write(report, OutputFormat.table)
    assert "\x1b[" not in out2.getvalue()


# -- the README's CI example, as written ---------------------------------------------------------

README_STEP = "agtrace check sample_traces/rules.toml -i sample_traces/ --junit agtrace-junit.xml"


def test_readme_ci_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = README_STEP.split()[1:]
    args[args.index("agtrace-junit.xml")] = str(tmp_path / "agtrace-junit.xml")  # not into the repository
    r = invoke(args)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "OK: 0 failed, 1 warning, 11 passed (12 rules, 285 spans in 28 traces)"
    root = ET.parse(tmp_path / "agtrace-junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("12", "0", "1")


def test_core_does_not_import_the_cli():
    code = ("import sys, agtrace.analysis.check, agtrace.render.junit; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "cli")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
