"""`-n 0` / `--limit 0` / `--top 0` mean "no limit" in every command that has a limit."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLES, invoke


@pytest.fixture
def db(samples_db):
    return samples_db


def rows(db, *args):
    r = invoke([*args, "--db", db])
    assert r.exit_code == 0, r.stderr
    assert "more" not in r.stderr  # nothing held back
    return r.stdout.splitlines()


@pytest.mark.parametrize("flag", ["-n", "--limit"])
def test_traces_and_query(db, flag):
    assert len(rows(db, "traces", flag, "0")) == 1 + 28  # header + every trace (the default table stops at 50)
    assert len(rows(db, "traces", flag, "0", "--format", "jsonl")) == 28
    assert len(rows(db, "query", "", flag, "0")) == 1 + 285  # the table default is 50
    assert len(rows(db, "query", "", flag, "0", "--format", "csv")) == 1 + 285
    assert len(rows(db, "query", "", "--traces", flag, "0")) == 1 + 28
    assert rows(db, "query", "", flag, "0", "--count") == ["285"]


def test_stats(db):
    every = rows(db, "stats", "--by", "name", "--format", "jsonl")
    assert len(every) > 10
    assert rows(db, "stats", "--by", "name", "-n", "0", "--format", "jsonl") == every
    assert len(rows(db, "stats", "--by", "name", "--limit", "0")) == 1 + len(every)


def test_bottlenecks_and_critical_path(db):
    every = json.loads("\n".join(rows(db, "bottlenecks", "--by", "name", "--format", "json")))
    assert len(every) > 20  # more than the table's default 20
    assert len(rows(db, "bottlenecks", "--by", "name", "--top", "0")) == 2 + 1 + len(every)  # title, blank, header
    assert len(rows(db, "bottlenecks", "--by", "name", "-n", "0", "--format", "csv")) == 1 + len(every)
    what_if = rows(db, "bottlenecks", "--what-if", 'type = "llm"', "--speedup", "2", "-n", "0")
    assert len([line for line in what_if if len(line) > 32 and all(c in "0123456789abcdef" for c in line[:32])]) == 28
    out = "\n".join(rows(db, "critical-path", "592ff49b", "-n", "0", "--width", "100"))
    assert "more sections" not in out


@pytest.mark.parametrize("command", ["traces", "query", "stats", "bottlenecks", "critical-path"])
def test_help_says_0_is_no_limit(command):
    r = invoke([command, "--help"])
    assert "0: no limit" in " ".join(r.stdout.split())
