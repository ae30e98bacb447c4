"""One timestamp rule for every command: data formats carry nanoseconds, tables milliseconds.

A span starting at 10:00:00.123456789 must read `2024-03-01T10:00:00.123456789Z`
in json/jsonl/csv/tsv (and load back exactly) and `2024-03-01T10:00:00.123Z`
in every table, whatever the command. The formatting is agtrace.timeutil's
`format_time` / `table_time`.
"""

from __future__ import annotations

import json

import pytest

from agtrace.timeutil import format_time, parse_iso_ns, table_time
from conftest import invoke

T = "ab" * 16
NS_TEXT = "2024-03-01T10:00:00.123456789Z"
MS_TEXT = "2024-03-01T10:00:00.123Z"


@pytest.fixture
def fx(tmp_path):
    spans = [
        {"trace_id": T, "span_id": "0000000000000001", "name": "flow_workflow", "start": NS_TEXT,
         "end": "2024-03-01T10:00:01.5Z", "attributes": {"agent_name": "alpha"}},
        {"trace_id": T, "span_id": "0000000000000002", "parent_span_id": "0000000000000001",
         "name": "agent.decision_point", "start": "2024-03-01T10:00:00.200000001Z", "end": "2024-03-01T10:00:00.3Z",
         "attributes": {"agent_name": "alpha", "decision_type": "approve", "decision_confidence": 0.9}},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in spans))
    return path


def run(*args):
    r = invoke(list(args))
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_helpers():
    ns = parse_iso_ns(NS_TEXT)
    assert (format_time(ns), format_time(ns, table=True)) == (NS_TEXT, MS_TEXT)
    assert table_time(NS_TEXT) == MS_TEXT and table_time("2024-03-01T10:00:00Z") == "2024-03-01T10:00:00.000Z"
    assert table_time(None) is None and table_time("not a time") == "not a time"


def test_traces(fx):
    assert json.loads(run("traces", "-i", fx, "--format", "json"))[0]["start"] == NS_TEXT
    assert run("traces", "-i", fx, "--format", "csv").splitlines()[1].split(",")[2] == NS_TEXT
    assert run("traces", "-i", fx, "--format", "tsv").splitlines()[1].split("\t")[2] == NS_TEXT
    assert f"  {MS_TEXT}  " in run("traces", "-i", fx)
    assert f"  {MS_TEXT}  " in run("query", "-i", fx, "--traces")


def test_query_data_and_table_and_jsonl_loads_back(fx, tmp_path):
    rows = json.loads(run("query", "-i", fx, "--format", "json", "-c", "start", "-c", "end"))
    assert rows[0] == {"start": NS_TEXT, "end": "2024-03-01T10:00:01.500000000Z"}
    assert run("query", "-i", fx, "--format", "csv", "-c", "start").splitlines()[1] == NS_TEXT
    assert f"  {MS_TEXT}  " in run("query", "-i", fx)
    dump = tmp_path / "dump.jsonl"
    dump.write_text(run("query", "-i", fx, "--format", "jsonl"))
    assert json.loads(run("query", "-i", dump, "--format", "json", "-c", "start"))[0]["start"] == NS_TEXT
    assert json.loads(run("query", "-i", dump, "--format", "json", "-c", "start", "--sort", "-start"))[0]["start"] \
        == "2024-03-01T10:00:00.200000001Z"


def test_explain(fx):
    doc = json.loads(run("explain", "-i", fx, T[:8], "--format", "json"))
    assert doc["decisions"][0]["start"] == "2024-03-01T10:00:00.200000001Z"
    assert doc["trace_outcome"]["start"] == NS_TEXT
    one = json.loads(run("explain", "-i", fx, T[:8], "0000000000000002", "--format", "json"))
    assert one["decision"]["start"] == "2024-03-01T10:00:00.200000001Z"
    assert "  when         2024-03-01T10:00:00.200Z (+0.077s into the trace)" in run(
        "explain", "-i", fx, T[:8], "0000000000000002")


def test_stats_streaks_and_timeline(fx):
    row = json.loads(run("stats", "-i", fx, "--streaks", "--by", "decision_type", "--format", "json"))[0]
    assert (row["start"], row["end"]) == ("2024-03-01T10:00:00.200000001Z", "2024-03-01T10:00:00.200000001Z")
    assert "2024-03-01T10:00:00.200Z" in run("stats", "-i", fx, "--streaks", "--by", "decision_type")
    assert "2024-03-01T10:00:00.200000001Z" not in run("stats", "-i", fx, "--streaks", "--by", "decision_type")
    b = json.loads(run("stats", "-i", fx, "--timeline", "--every", "1h", "--format", "json"))[0]["bucket"]
    assert b == "2024-03-01T10:00:00.000000000Z"
    assert run("stats", "-i", fx, "--timeline", "--every", "1h").splitlines()[1].startswith("2024-03-01T10:00:00.000Z")


def test_show(fx):
    assert json.loads(run("show", "-i", fx, T[:8], "--format", "json"))["start"] == NS_TEXT
    assert f"start {MS_TEXT} ·" in run("show", "-i", fx, T[:8], "--width", "100")
