"""`agtrace stats`: every figure checked against an independent computation.

The expected distributions are computed here in plain Python from the raw
trace files (OTLP/JSON parsed by hand, not by agtrace's readers) and from
small flat-JSONL fixtures written by the tests; percentiles use the reference
definition below, which is what DuckDB's quantile_cont computes.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, invoke

OTLP_SAMPLES = [SAMPLES / "customer_inquiry.otlp.jsonl", SAMPLES / "customer_inquiry_more.otlp.jsonl.gz",
                SAMPLES / "approval.otlp.json"]


# -- reference computations ------------------------------------------------------------


def percentile(values, p):
    """Linear interpolation between closest ranks (R type 7 / numpy 'linear' / DuckDB quantile_cont)."""
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo, hi = math.floor(h), math.ceil(h)
    return xs[lo] + (xs[hi] - xs[lo]) * (h - lo)


def ms(ns):
    return round(ns / 1e6, 3)


def any_value(v):
    """An OTLP AnyValue as a plain Python value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: any_value(kv["value"]) for kv in v["kvlistValue"].get("values", [])}
    return None


def read_otlp(paths):
    """Spans of OTLP/JSON files (one request per line, or one pretty-printed request)."""
    spans = []
    for path in paths:
        raw = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode()
        docs = [json.loads(text)] if text.lstrip().startswith("{\n") or str(path).endswith(".json") \
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        for doc in docs:
            for rs in doc["resourceSpans"]:
                res = {kv["key"]: any_value(kv["value"]) for kv in rs.get("resource", {}).get("attributes", [])}
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        status = {0: "unset", 1: "ok", 2: "error"}[int(sp.get("status", {}).get("code", 0))]
                        start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
                        spans.append({
                            "trace_id": sp["traceId"].lower(), "span_id": sp["spanId"].lower(),
                            "parent": (sp.get("parentSpanId") or "").lower() or None,
                            "name": sp["name"], "status": status, "start": start, "end": end,
                            "duration": end - start, "service": res.get("service.name"),
                            "attrs": {kv["key"]: any_value(kv["value"]) for kv in sp.get("attributes", [])},
                        })
    return spans


def expected_groups(spans, key_fn, total=None):
    """count, share, error_count and duration figures per group, as agtrace reports them."""
    groups = defaultdict(list)
    for s in spans:
        k = key_fn(s)
        if k is not None:
            groups[k].append(s)
    total = total if total is not None else sum(len(v) for v in groups.values())
    out = {}
    for k, ss in groups.items():
        d = [s["duration"] for s in ss]
        out[k] = {
            "count": len(ss), "share": round(len(ss) / total, 6),
            "error_count": sum(s["status"] == "error" for s in ss),
            "avg_ms": ms(sum(d) / len(d)), "p50_ms": ms(percentile(d, 0.5)), "p95_ms": ms(percentile(d, 0.95)),
            "p99_ms": ms(percentile(d, 0.99)), "max_ms": ms(max(d)),
        }
    return out


def confidence(s):
    a = s["attrs"]
    v = a.get("decision_confidence", a.get("confidence"))
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def assert_row_matches(row, exp):
    for k, v in exp.items():
        if k.endswith("_ms") or k.endswith("_confidence"):
            # both sides are rounded to the unit shown; allow half a unit for the float path
            assert row[k] == pytest.approx(v, abs=0.0005 + 1e-9), (k, row, exp)
        else:
            assert row[k] == v, (k, row, exp)


def stats_json(*args):
    r = invoke(["stats", *args, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def by_key(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


# -- fixtures ------------------------------------------------------------------------



@pytest.fixture(scope="module")
def otlp_spans():
    return read_otlp(OTLP_SAMPLES)


@pytest.fixture(scope="module")
def otlp_db(tmp_path_factory):
    """The three OTLP samples loaded once (one test reads them with -i instead)."""
    db = tmp_path_factory.mktemp("stats") / "otlp.duckdb"
    r = invoke(["load", "--db", db, *OTLP_SAMPLES])
    assert r.exit_code == 0, r.stderr
    return ["--db", str(db)]


def otlp_inputs():
    out = []
    for p in OTLP_SAMPLES:
        out += ["-i", str(p)]
    return out


# A hand-written decision log: agent alpha decides 10 times a minute apart,
# beta 4 times, one decision has no agent, and two tool spans carry no
# decision at all.
DECISIONS = [
    # (agent, minute, decision, confidence, duration_ms, status)
    ("alpha", 0, "approve", 0.9, 10, "ok"),
    ("alpha", 1, "approve", 0.8, 20, "ok"),
    ("alpha", 2, "reject", 0.6, 30, "ok"),
    ("alpha", 3, "approve", 0.95, 40, "ok"),
    ("alpha", 4, "approve", 0.85, 50, "error"),
    ("alpha", 5, "approve", 0.75, 60, "ok"),
    ("alpha", 6, "escalate", 0.5, 70, "ok"),
    ("alpha", 7, "approve", 0.9, 80, "ok"),
    ("alpha", 17, "reject", 0.7, 90, "ok"),
    ("alpha", 18, "reject", 0.65, 100, "ok"),
    ("beta", 20, "reject", 0.55, 5, "ok"),
    ("beta", 21, "reject", 0.6, 15, "ok"),
    ("beta", 35, "approve", 0.7, 25, "ok"),
    ("beta", 36, "approve", 0.8, 35, "ok"),
    (None, 40, "escalate", None, 45, "ok"),
]


@pytest.fixture(scope="module")
def decisions_file(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("decisions")
    lines = []
    for i, (agent, minute, decision, conf, dur, status) in enumerate(DECISIONS):
        attrs = {"decision_type": decision}
        if agent:
            attrs["agent_name"] = agent
        if conf is not None:
            # beta reports `confidence`, alpha `decision_confidence`
            attrs["confidence" if agent == "beta" else "decision_confidence"] = conf
        attrs["cost.usd"] = 0.01 * (i + 1)
        lines.append({
            "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "name": "agent.decision_point",
            "start": f"2024-03-01T10:{minute:02d}:00Z", "duration_ms": dur, "status": status,
            "service": "svc-b" if agent == "beta" else "svc-a", "attributes": attrs,
        })
    for j, minute in enumerate((3, 22)):
        lines.append({
            "trace_id": f"{100 + j:032x}", "span_id": f"{100 + j:016x}", "name": "tool.search",
            "start": f"2024-03-01T10:{minute:02d}:30Z", "duration_ms": 7, "status": "ok",
            "service": "svc-a", "attributes": {"tool.name": "search"},
        })
    path = tmp_path / "decisions.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture(scope="module")
def decisions(decisions_file):
    """The decision log loaded once: `--db PATH` arguments."""
    db = decisions_file.with_suffix(".duckdb")
    r = invoke(["load", "--db", db, decisions_file])
    assert r.exit_code == 0, r.stderr
    return ["--db", str(db)]


# -- distributions from the bundled samples ------------------------------------------------


def test_by_decision_type_matches_raw_otlp(otlp_spans):
    rows = stats_json(*otlp_inputs(), "--by", "decision_type")
    exp = expected_groups(otlp_spans, lambda s: s["attrs"].get("decision_type"))
    assert by_key(rows, "decision_type").keys() == exp.keys()
    for r in rows:
        assert_row_matches(r, exp[r["decision_type"]])
        confs = [confidence(s) for s in otlp_spans if s["attrs"].get("decision_type") == r["decision_type"]]
        assert r["avg_confidence"] == pytest.approx(round(sum(confs) / len(confs), 4), abs=1e-9)
        assert r["min_confidence"] == min(confs)
    # sorted by count, largest first; shares add up to 1
    assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)
    assert sum(r["share"] for r in rows) == pytest.approx(1, abs=1e-5)
    assert by_key(rows, "decision_type")["escalate_to_human"]["count"] == 4  # inquiries 3, 5, 8, 14


def test_by_name_and_status_matches_raw_otlp(otlp_spans, otlp_db):
    rows = stats_json(*otlp_db, "--by", "name", "--by", "status")
    exp = expected_groups(otlp_spans, lambda s: (s["name"], s["status"]))
    got = by_key(rows, "name", "status")
    assert got.keys() == exp.keys()
    for k, r in got.items():
        assert_row_matches(r, exp[k])
    assert got[("tool.create_ticket", "error")]["count"] == 1  # the 503 in inquiry 5


def test_tokens_per_name_match_raw_usage(otlp_spans, otlp_db):
    rows = stats_json(*otlp_db, "--by", "name")
    got = by_key(rows, "name")
    sums = defaultdict(lambda: [0, 0, 0])
    for s in otlp_spans:
        a = s["attrs"]
        if "gen_ai.usage.input_tokens" in a:
            sums[s["name"]][0] += a["gen_ai.usage.input_tokens"]
            sums[s["name"]][1] += a["gen_ai.usage.output_tokens"]
            sums[s["name"]][2] += 1
    assert sums
    for name, (inp, out, _) in sums.items():
        assert got[name]["input_tokens"] == inp
        assert got[name]["output_tokens"] == out
    assert got["tool.create_ticket"]["input_tokens"] is None


def test_metric_sum_avg_p95_match_raw(otlp_spans, otlp_db):
    key = "gen_ai.usage.input_tokens"
    rows = stats_json(*otlp_db, "--by", "gen_ai.request.model", "--metric", key)
    vals = defaultdict(list)
    for s in otlp_spans:
        if "gen_ai.request.model" in s["attrs"] and key in s["attrs"]:
            vals[s["attrs"]["gen_ai.request.model"]].append(s["attrs"][key])
    got = by_key(rows, "gen_ai.request.model")
    assert got.keys() == vals.keys()
    for model, v in vals.items():
        assert got[model][f"{key}_sum"] == sum(v)
        assert got[model][f"{key}_avg"] == pytest.approx(sum(v) / len(v), abs=1e-6)
        assert got[model][f"{key}_p95"] == pytest.approx(percentile(v, 0.95), abs=1e-6)


def test_where_filters_before_grouping(otlp_spans, otlp_db):
    rows = stats_json(*otlp_db, "--by", "decision_type", "--where", "decision_confidence < 0.8")
    keep = [s for s in otlp_spans if (confidence(s) or 1) < 0.8]
    exp = expected_groups(keep, lambda s: s["attrs"].get("decision_type"))
    got = by_key(rows, "decision_type")
    assert got.keys() == exp.keys()
    for k, r in got.items():
        assert_row_matches(r, exp[k])


def test_traces_by_root_name_with_rate(otlp_spans, otlp_db):
    rows = stats_json(*otlp_db, "--traces", "--rate", 'decision_type = "escalate_to_human"')
    traces = defaultdict(list)
    for s in otlp_spans:
        traces[s["trace_id"]].append(s)
    per_root = defaultdict(list)
    for tid, ss in traces.items():
        root = [s for s in ss if s["parent"] is None][0]
        per_root[root["name"]].append(ss)
    got = by_key(rows, "root_name")
    assert got.keys() == per_root.keys()
    for name, tlist in per_root.items():
        durs = [max(s["end"] for s in ss) - min(s["start"] for s in ss) for ss in tlist]
        errs = sum(any(s["status"] == "error" for s in ss) for ss in tlist)
        hits = sum(any(s["attrs"].get("decision_type") == "escalate_to_human" for s in ss) for ss in tlist)
        r = got[name]
        assert_row_matches(r, {
            "count": len(tlist), "share": round(len(tlist) / len(traces), 6), "error_count": errs,
            "error_rate": round(errs / len(tlist), 6), "avg_ms": ms(sum(durs) / len(durs)),
            "p50_ms": ms(percentile(durs, 0.5)), "p95_ms": ms(percentile(durs, 0.95)),
            "p99_ms": ms(percentile(durs, 0.99)), "max_ms": ms(max(durs)),
            "rate_count": hits, "rate": round(hits / len(tlist), 6),
        })
    assert got["customer_inquiry_workflow"]["rate_count"] == 4
    assert got["customer_inquiry_workflow"]["rate"] == 0.25


def test_samples_store_escalation_rate_per_workflow(samples_db):
    rows = stats_json("--db", samples_db, "--traces", "--by", "workflow.name",
                      "--rate", 'decision_type =~ "^escalate"')
    got = by_key(rows, "workflow.name")
    assert got["customer_inquiry"]["count"] == 16
    assert got["customer_inquiry"]["rate_count"] == 4
    assert got["complaint_handling"]["count"] == 4
    assert got["complaint_handling"]["error_count"] == 1
    assert sum(r["count"] for r in rows) == 28


# -- generated traces ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    gen = ROOT / "benchmarks" / "gen_otlp.py"
    if not gen.exists():
        pytest.skip("benchmarks/gen_otlp.py is not present")
    out = tmp_path_factory.mktemp("gen") / "gen.jsonl"
    subprocess.run([sys.executable, str(gen), "--spans", "3000", "--seed", "11", "--out", str(out)],
                   check=True, capture_output=True)
    db = out.with_suffix(".duckdb")
    r = invoke(["load", "--db", db, out])
    assert r.exit_code == 0, r.stderr
    return ["--db", str(db)], read_otlp([out])


def test_generated_decisions_and_operations(generated):
    db, spans = generated
    rows = stats_json(*db, "--by", "decision_type")
    exp = expected_groups(spans, lambda s: s["attrs"].get("decision_type"))
    got = by_key(rows, "decision_type")
    assert got.keys() == exp.keys() and len(exp) >= 3
    for k, r in got.items():
        assert_row_matches(r, exp[k])
        confs = [confidence(s) for s in spans if s["attrs"].get("decision_type") == k]
        assert r["min_confidence"] == pytest.approx(min(confs), abs=1e-9)

    rows = stats_json(*db, "--by", "gen_ai.operation.name", "--by", "status",
                      "--metric", "gen_ai.usage.output_tokens")
    exp = expected_groups(spans, lambda s: (s["attrs"]["gen_ai.operation.name"], s["status"])
                          if "gen_ai.operation.name" in s["attrs"] else None)
    got = by_key(rows, "gen_ai.operation.name", "status")
    assert got.keys() == exp.keys()
    for k, r in got.items():
        assert_row_matches(r, exp[k])
        outs = [s["attrs"]["gen_ai.usage.output_tokens"] for s in spans
                if (s["attrs"].get("gen_ai.operation.name"), s["status"]) == k
                and "gen_ai.usage.output_tokens" in s["attrs"]]
        assert r["gen_ai.usage.output_tokens_sum"] == (sum(outs) if outs else None)


# -- the decision log fixture: missing keys, formats, streaks, timeline ---------------------


def test_missing_keys_are_counted_in_the_footer(decisions_file):
    r = invoke(["stats", "-i", decisions_file, "--by", "agent"])
    assert r.exit_code == 0, r.stderr
    assert "(3 spans without agent left out; --include-missing shows them)" in r.stderr
    # data formats carry no footer
    r = invoke(["stats", "-i", decisions_file, "--by", "agent", "-f", "json"])
    assert r.stderr == ""
    rows = json.loads(r.stdout)
    assert [(x["agent"], x["count"], x["share"]) for x in rows] == [("alpha", 10, 0.714286), ("beta", 4, 0.285714)]


def test_include_missing_adds_a_null_group(decisions):
    rows = stats_json(*decisions, "--by", "agent", "--include-missing")
    assert [(x["agent"], x["count"], x["share"]) for x in rows] == [
        ("alpha", 10, 0.588235), ("beta", 4, 0.235294), (None, 3, 0.176471)]
    r = invoke(["stats", *decisions, "--by", "agent", "--include-missing"])
    assert r.stdout.splitlines()[3].startswith("(missing)")


def test_exact_plain_table(decisions):
    r = invoke(["stats", *decisions, "--by", "decision_type"])
    assert r.exit_code == 0
    assert r.stdout == (
        "decision_type  count  share  errors  avg_ms  p50_ms  p95_ms  p99_ms  max_ms  avg_conf  min_conf\n"
        "approve            8  53.3%       1    40.0    37.5    73.0    78.6    80.0     0.831     0.700\n"
        "reject             5  33.3%       0    48.0    30.0    98.0    99.6   100.0     0.620     0.550\n"
        "escalate           2  13.3%       0    57.5    57.5    68.8    69.8    70.0     0.500     0.500\n"
    )
    assert r.stderr == "(2 spans without decision_type left out; --include-missing shows them)\n"


def test_exact_csv_tsv_jsonl(decisions):
    args = ["stats", *decisions, "--by", "service", "--where", 'type = "decision"']
    r = invoke(args + ["-f", "csv"])
    assert r.stdout == (
        "service,count,share,error_count,avg_ms,p50_ms,p95_ms,p99_ms,max_ms,avg_confidence,min_confidence\n"
        "svc-a,11,0.733333,1,54.091,50.0,95.0,99.0,100.0,0.76,0.5\n"
        "svc-b,4,0.266667,0,20.0,20.0,33.5,34.7,35.0,0.6625,0.55\n"
    )
    r = invoke(args + ["-f", "tsv"])
    assert r.stdout.splitlines()[1] == "svc-a\t11\t0.733333\t1\t54.091\t50.0\t95.0\t99.0\t100.0\t0.76\t0.5"
    r = invoke(args + ["-f", "jsonl"])
    first = json.loads(r.stdout.splitlines()[0])
    assert first == {"service": "svc-a", "count": 11, "share": 0.733333, "error_count": 1, "avg_ms": 54.091,
                     "p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0, "max_ms": 100.0,
                     "avg_confidence": 0.76, "min_confidence": 0.5}
    assert isinstance(first["count"], int) and isinstance(first["share"], float)


def test_sort_and_reverse_and_limit(decisions):
    rows = stats_json(*decisions, "--by", "decision_type", "--sort", "key")
    assert [x["decision_type"] for x in rows] == ["approve", "escalate", "reject"]
    rows = stats_json(*decisions, "--by", "decision_type", "--sort", "p95")
    assert [x["decision_type"] for x in rows] == ["reject", "approve", "escalate"]
    rows = stats_json(*decisions, "--by", "decision_type", "--sort", "confidence", "--reverse")
    assert [x["decision_type"] for x in rows] == ["escalate", "reject", "approve"]
    rows = stats_json(*decisions, "--by", "decision_type", "--limit", "1")
    assert [x["decision_type"] for x in rows] == ["approve"]
    r = invoke(["stats", *decisions, "--by", "decision_type", "--sort", "bogus"])
    assert r.exit_code == 2
    assert "error: cannot sort by 'bogus'" in r.stderr and "p95_ms" in r.stderr


def test_numeric_group_values_stay_numbers(decisions):
    rows = stats_json(*decisions, "--by", "decision_confidence", "--sort", "key", "--limit", "2")
    assert [(x["decision_confidence"], x["count"]) for x in rows] == [(0.5, 1), (0.6, 1)]


def test_rate_on_span_groups(decisions):
    rows = stats_json(*decisions, "--by", "agent", "--rate", 'decision_type = "reject"')
    assert [(x["agent"], x["rate_count"], x["rate"]) for x in rows] == [("alpha", 3, 0.3), ("beta", 2, 0.5)]


def test_metric_on_fixture(decisions):
    rows = stats_json(*decisions, "--by", "agent", "--metric", "cost.usd", "--metric", "duration_ms")
    alpha = by_key(rows, "agent")["alpha"]
    costs = [0.01 * (i + 1) for i in range(10)]
    assert alpha["cost.usd_sum"] == pytest.approx(sum(costs), abs=1e-9)
    assert alpha["cost.usd_avg"] == pytest.approx(sum(costs) / 10, abs=1e-9)
    assert alpha["cost.usd_p95"] == pytest.approx(percentile(costs, 0.95), abs=1e-6)
    assert alpha["duration_ms_sum"] == 550
    assert alpha["duration_ms_p95"] == pytest.approx(percentile(list(range(10, 101, 10)), 0.95))


def test_metric_without_numbers_is_an_error(decisions):
    r = invoke(["stats", *decisions, "--by", "agent", "--metric", "decision_type"])
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "error: --metric decision_type: no value of 'decision_type' is a number (values seen: string (15))",
        "hint: --metric takes a numeric field such as gen_ai.usage.input_tokens or duration_ms; "
        "to group by this one, use --by decision_type"]
    r = invoke(["stats", *decisions, "--metric", "name"])
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == "error: --metric name: name is not a number (values seen: string (17))"
    # a key no span has: the columns are empty, and stderr says why
    r = invoke(["stats", *decisions, "--by", "agent", "--metric", "cost.usdd", "--format", "json"])
    assert r.exit_code == 0
    assert r.stderr == ("warning: no span or resource has an attribute 'cost.usdd'; "
                        "the --metric cost.usdd columns will be empty\n")


def test_streaks(decisions):
    rows = stats_json(*decisions, "--streaks", "--by", "decision_type")
    assert rows == [
        {"agent": "alpha", "decision_type": "approve", "streak": 3, "total": 10,
         "start": "2024-03-01T10:03:00.000000000Z", "end": "2024-03-01T10:05:00.000000000Z",
         "start_trace_id": f"{4:032x}", "start_span_id": f"{4:016x}",
         "end_trace_id": f"{6:032x}", "end_span_id": f"{6:016x}"},
        # a tie (2 rejects, then 2 approves): the earlier run wins
        {"agent": "beta", "decision_type": "reject", "streak": 2, "total": 4,
         "start": "2024-03-01T10:20:00.000000000Z", "end": "2024-03-01T10:21:00.000000000Z",
         "start_trace_id": f"{11:032x}", "start_span_id": f"{11:016x}",
         "end_trace_id": f"{12:032x}", "end_span_id": f"{12:016x}"},
        {"agent": None, "decision_type": "escalate", "streak": 1, "total": 1,
         "start": "2024-03-01T10:40:00.000000000Z", "end": "2024-03-01T10:40:00.000000000Z",
         "start_trace_id": f"{15:032x}", "start_span_id": f"{15:016x}",
         "end_trace_id": f"{15:032x}", "end_span_id": f"{15:016x}"},
    ]


def longest_runs(seq_by_agent):
    """Reference for --streaks: per agent, (length, value, first index) of the longest run."""
    out = {}
    for agent, seq in seq_by_agent.items():
        best = (0, None, None)
        i = 0
        while i < len(seq):
            j = i
            while j < len(seq) and seq[j] == seq[i]:
                j += 1
            if j - i > best[0]:
                best = (j - i, seq[i], i)
            i = j
        out[agent] = best
    return out


def test_streaks_match_reference_on_samples(samples_db):
    import duckdb

    rows = stats_json("--db", samples_db, "--streaks", "--by", "decision_type")
    # the reference reads plain columns (agent, start, attributes JSON), not attrs
    con = duckdb.connect(str(samples_db), read_only=True)
    data = con.execute("SELECT agent, start_ns, sid, attributes FROM spans ORDER BY start_ns, sid").fetchall()
    con.close()
    seqs = defaultdict(list)
    for agent, _, _, attrs in data:
        d = json.loads(attrs).get("decision_type")
        if d is not None:
            seqs[agent].append(d)
    ref = longest_runs(seqs)
    got = {r["agent"]: r for r in rows}
    assert got.keys() == ref.keys()
    for agent, (n, value, _) in ref.items():
        assert (got[agent]["streak"], got[agent]["decision_type"], got[agent]["total"]) == (n, value, len(seqs[agent]))
    assert rows[0]["streak"] == max(n for n, _, _ in ref.values())


def test_timeline_buckets(decisions):
    rows = stats_json(*decisions, "--timeline", "--by", "decision_type", "--every", "15m")
    got = [(x["bucket"], x["decision_type"], x["count"], x["share"], x["error_count"]) for x in rows]
    assert got == [
        ("2024-03-01T10:00:00.000000000Z", "approve", 6, 0.75, 1),
        ("2024-03-01T10:00:00.000000000Z", "escalate", 1, 0.125, 0),
        ("2024-03-01T10:00:00.000000000Z", "reject", 1, 0.125, 0),
        ("2024-03-01T10:15:00.000000000Z", "reject", 4, 1.0, 0),
        ("2024-03-01T10:30:00.000000000Z", "approve", 2, 0.666667, 0),
        ("2024-03-01T10:30:00.000000000Z", "escalate", 1, 0.333333, 0),
    ]
    rows = stats_json(*decisions, "--timeline", "--every", "1h")
    assert [(x["bucket"], x["type"], x["count"]) for x in rows] == [
        ("2024-03-01T10:00:00.000000000Z", "decision", 15), ("2024-03-01T10:00:00.000000000Z", "tool", 2)]
    rows = stats_json(*decisions, "--timeline", "--every", "1d", "--by", "status")
    assert [(x["bucket"], x["status"], x["count"]) for x in rows] == [
        ("2024-03-01T00:00:00.000000000Z", "ok", 16), ("2024-03-01T00:00:00.000000000Z", "error", 1)]


def test_usage_errors(decisions_file):
    cases = [
        (["--streaks", "--traces", "--by", "decision_type"], "error: --traces and --streaks cannot be combined"),
        (["--streaks"], "error: --streaks needs --by KEY"),
        (["--streaks", "--by", "agent"], "error: --streaks needs a --by key other than agent"),
        (["--timeline", "--every", "0s"], "error: --every '0s' is not a positive duration"),
        (["--timeline", "--every", "soon"], "error: --every 'soon' is not a positive duration"),
        (["--traces", "--metric", "x"], "error: --metric applies to span groups, not --traces"),
        (["--by", "agent", "--by", "agent"], "error: --by agent is given twice"),
    ]
    for args, message in cases:
        r = invoke(["stats", "-i", decisions_file, *args])
        assert r.exit_code == 2, (args, r.stdout)
        assert r.stderr.splitlines()[0] == message
        assert "Traceback" not in r.stderr


def test_bad_expressions_show_a_caret(decisions):
    r = invoke(["stats", *decisions, "--by", "agent", "--where", "duration_ms > and"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: expected a value after '>' at column 15\n  duration_ms > and\n")
    r = invoke(["stats", *decisions, "--by", "staus"])
    assert r.exit_code == 2
    assert "unknown field 'staus'" in r.stderr and "did you mean status?" in r.stderr


def test_empty_result(decisions):
    r = invoke(["stats", *decisions, "--by", "agent", "--where", 'name = "nothing"'])
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "agent  count  share  errors  avg_ms  p50_ms  p95_ms  p99_ms  max_ms"]
    assert r.stderr == "no spans match\n"
    assert stats_json(*decisions, "--by", "agent", "--where", 'name = "nothing"') == []


# -- the terminal table ---------------------------------------------------------------------


def test_share_bar():
    from agtrace.commands.stats import share_bar

    assert share_bar(0) == " " * 10
    assert share_bar(1) == "█" * 10
    assert share_bar(0.5) == "█████     "
    assert share_bar(0.0625) == "▋         "  # 5 eighths of one cell


def test_rich_table_has_bars_and_drops_columns_when_narrow(decisions_file, capsys):
    from rich.console import Console

    from agtrace.analysis.stats import sort_rows, span_stats
    from agtrace.commands.stats import _rich_table
    from agtrace.ingest import load_paths
    from agtrace.store import Store

    store = Store.memory()
    load_paths(store, [str(decisions_file)])
    res = span_stats(store.con, ["decision_type"])
    sort_rows(res, None)
    numeric = [c for c in res.columns if c not in res.keys]
    buf = io.StringIO()
    _rich_table(res.rows, res.columns, numeric, res.keys, Console(file=buf, width=140, color_system=None))
    lines = buf.getvalue().splitlines()
    assert lines[2].startswith("approve ")
    assert "█████▍      53.3%" in lines[2]
    buf = io.StringIO()
    _rich_table(res.rows, res.columns, numeric, res.keys, Console(file=buf, width=80, color_system=None))
    text = buf.getvalue()
    assert "█" not in text and "p99_ms" not in text and "53.3%" in text
    assert text.splitlines()[0].split() == ["decision_type", "┃", "count", "┃", "share", "┃", "errors", "┃",
                                            "p50_ms", "┃", "p95_ms", "┃", "max_ms", "┃", "avg_conf"]
    assert all(len(line) <= 80 for line in text.splitlines())
    assert capsys.readouterr().err == (
        "(p99_ms, avg_ms, min_confidence not shown: the terminal is too narrow; use --format to see every column)\n")
    store.close()


def test_streaks_and_timeline_honour_where(decisions):
    rows = stats_json(*decisions, "--streaks", "--by", "decision_type", "--where", 'decision_type != "escalate"')
    # without the escalation at minute 6, alpha's approvals at minutes 3-5 and 7 form one run of 4
    alpha = by_key(rows, "agent")["alpha"]
    assert (alpha["decision_type"], alpha["streak"], alpha["total"]) == ("approve", 4, 9)
    assert alpha["end_span_id"] == f"{8:016x}"
    rows = stats_json(*decisions, "--timeline", "--by", "agent", "--every", "30m", "--where", "duration_ms >= 45",
                      "--include-missing")
    assert [(x["bucket"], x["agent"], x["count"]) for x in rows] == [
        ("2024-03-01T10:00:00.000000000Z", "alpha", 6), ("2024-03-01T10:30:00.000000000Z", None, 1)]


def test_streaks_by_two_keys(decisions):
    rows = stats_json(*decisions, "--streaks", "--by", "service", "--by", "decision_type", "--limit", "1")
    assert [(x["agent"], x["service"], x["decision_type"], x["streak"]) for x in rows] == [
        ("alpha", "svc-a", "approve", 3)]


def test_traces_include_missing_key(decisions):
    rows = stats_json(*decisions, "--traces", "--by", "agent_name", "--include-missing")
    assert [(x["agent_name"], x["count"], x["error_count"], x["error_rate"]) for x in rows] == [
        ("alpha", 10, 1, 0.1), ("beta", 4, 0, 0.0), (None, 3, 0, 0.0)]
    r = invoke(["stats", *decisions, "--traces", "--by", "agent_name"])
    assert r.stderr == "(3 traces without agent_name left out; --include-missing shows them)\n"


def test_boolean_and_numeric_keys_come_back_typed(samples_db):
    rows = stats_json("--db", samples_db, "--by", "escalation_required", "--sort", "key")
    assert [(x["escalation_required"], x["count"]) for x in rows] == [(False, 24), (True, 8)]
    rows = stats_json("--db", samples_db, "--by", "http.response.status_code", "--sort", "key")
    assert [(x["http.response.status_code"], x["count"]) for x in rows] == [(201, 4), (503, 1)]
    # text that merely looks numeric in some groups stays text
    rows = stats_json("--db", samples_db, "--by", "ticket.priority", "--sort", "key")
    assert all(isinstance(x["ticket.priority"], str) for x in rows)


def test_confidence_per_agent_from_either_key(decisions):
    # grouping by an intrinsic reads the confidence in a second query; alpha
    # reports decision_confidence, beta `confidence`
    rows = stats_json(*decisions, "--by", "agent", "--where", "duration_ms >= 20")
    got = {x["agent"]: (x["count"], x["avg_confidence"], x["min_confidence"]) for x in rows}
    assert got == {"alpha": (9, 0.7444, 0.5), "beta": (2, 0.75, 0.7)}
    rows = stats_json(*decisions, "--by", "service", "--include-missing", "--where", 'type = "tool"')
    assert [(x["service"], x["count"]) for x in rows] == [("svc-a", 2)]
    assert "avg_confidence" not in rows[0]
