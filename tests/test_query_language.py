"""The filter language: expressions -> SQL, expressions -> matching spans, errors.

The store is built here with plain SQL INSERTs (not through the loader), so
the semantics are pinned independently of ingest: types as exports send them
(ints, doubles, numeric strings, arrays, bools), resource attributes that an
unscoped name falls back to, an attribute named like an intrinsic, a parent
cycle and a 50-deep chain.
"""

from __future__ import annotations

import pytest

from agtrace.errors import ExpressionError
from agtrace.query import (
    compile_filter, field_expr, field_info, field_numeric_expr, parse, parse_field, to_text,
)
from agtrace.query.compiler import _Compiler
from agtrace.query.fields import INTRINSICS, TRACE_FIELDS
from agtrace.store import Store, link_parents
from agtrace.timeutil import parse_iso_ns

T1, T2, T3, T4 = "a" * 32, "b" * 32, "c" * 32, "d" * 32
MS = 1_000_000


def _sid_hex(sid: int) -> str:
    return f"{sid:016x}"


# sid, trace, parent sid, name, kind, status, status_message, start (ISO), duration ms,
# service, resource, depth, agent, type, model, input_tokens, output_tokens, session
SPANS = [
    (1, T1, None, "triage_agent.invoke", "server", "ok", None, "2024-01-15T10:00:00Z", 8000,
     "svc-a", "r1", 0, "triage_agent", "agent", None, None, None, "sess-1"),
    (2, T1, 1, "approval_decision", "internal", "unset", None, "2024-01-15T10:30:00Z", 6000,
     "svc-a", "r1", 1, "triage_agent", "decision", None, None, None, "sess-1"),
    (3, T1, 2, "search_tool", "client", "error", "timeout after 2s", "2024-01-15T11:00:00Z", 2600,
     "svc-a", "r1", 2, "technical_agent", "tool", None, None, None, "sess-1"),
    (4, T1, 1, "llm.chat", "client", "unset", None, "2024-01-15T10:05:00Z", 1200,
     "svc-a", "r1", 1, "triage_agent", "llm", "gpt-4o", 100, 20, "sess-1"),
    (5, T2, None, "research_agent.invoke", "server", "unset", None, "2024-01-15T13:00:00Z", 3000,
     "svc-b", "r2", 0, "research_agent", "agent", None, None, None, None),
    (6, T2, 5, "web_search", "client", "error", "HTTP 503", "2024-01-15T13:00:01Z", 500,
     "svc-b", "r2", 1, "research_agent", "tool", None, None, None, None),
    # a parent cycle (bad data): 8 -> 9 -> 8
    (8, T3, 9, "loop_a", "internal", "unset", None, "2024-01-16T00:00:00Z", 10,
     "svc-c", None, 1, None, "other", None, None, None, None),
    (9, T3, 8, "loop_b", "internal", "unset", None, "2024-01-16T00:00:01Z", 10,
     "svc-c", None, 1, None, "other", None, None, None, None),
]
# a 50-deep chain: 100 <- 101 <- ... <- 149
CHAIN = [(100 + k, T4, (99 + k) if k else None, f"chain_{k}", "internal", "unset", None,
          "2024-01-17T00:00:00Z", 1, "svc-d", None, k, None, "other", None, None, None, None)
         for k in range(50)]

# sid, key, idx, vtype, str_val, num_val
ATTRS = [
    (1, "gen_ai.agent.name", None, "string", "triage_agent", None),
    (1, "my key", None, "string", "spaced", None),
    (1, "retries", None, "int", "0", 0.0),
    (2, "decision_type", None, "string", "escalate_to_human", None),
    (2, "decision_confidence", None, "double", "0.7", 0.7),
    (3, "decision_type", None, "string", "approve", None),
    (3, "decision_confidence", None, "string", "0.95", 0.95),  # a numeric string
    (3, "env", None, "string", "span-env", None),  # shadows the resource's env
    (3, "tags", 0, "string", "c", None),
    (4, "gen_ai.usage.input_tokens", None, "int", "100", 100.0),
    (4, "gen_ai.request.model", None, "string", "gpt-4o", None),
    (4, "name", None, "string", "attr-name", None),  # named like an intrinsic
    (5, "gen_ai.agent.name", None, "string", "research_agent", None),
    (6, "gen_ai.usage.input_tokens", None, "string", "42", 42.0),
    (6, "tags", 0, "string", "a", None),
    (6, "tags", 1, "string", "b", None),
    (6, "scores", 0, "int", "3", 3.0),
    (6, "scores", 1, "double", "4.5", 4.5),
    (6, "retry", None, "bool", "true", None),
    (6, "empty", None, "array", "[]", None),
    (6, "http.status_code", None, "int", "503", 503.0),
]
RESOURCE_ATTRS = [
    ("r1", "service.name", None, "string", "svc-a", None),
    ("r1", "env", None, "string", "prod", None),
    ("r1", "region", None, "string", "eu", None),
    ("r2", "service.name", None, "string", "svc-b", None),
    ("r2", "env", None, "string", "dev", None),
    ("r2", "replicas", None, "int", "3", 3.0),
]
ALL = {s[0] for s in SPANS + CHAIN}

_SPAN_COLS = ("sid, trace_id, span_id, parent_span_id, name, kind, status, status_message, start_ns, end_ns, "
              "duration_ns, service, resource_id, depth, is_root, agent, type, model, input_tokens, output_tokens, "
              "session, attributes, events, source")


def build_store() -> Store:
    store = Store.memory()
    con = store.con
    for (sid, trace, parent, name, kind, status, msg, start, dur, service, res, depth, agent, typ, model,
         tin, tout, session) in SPANS + CHAIN:
        start_ns = parse_iso_ns(start)
        con.execute(
            f"INSERT INTO spans ({_SPAN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{{}}', '[]', 'test:1')",
            [sid, trace, _sid_hex(sid), _sid_hex(parent) if parent is not None else None, name, kind, status, msg,
             start_ns, start_ns + dur * MS, dur * MS, service, res, depth, parent is None, agent, typ, model,
             tin, tout, session])
    link_parents(con)
    con.executemany("INSERT INTO attrs VALUES (?, ?, ?, ?, ?, ?)", [list(r) for r in ATTRS])
    con.executemany("INSERT INTO resource_attrs VALUES (?, ?, ?, ?, ?, ?)", [list(r) for r in RESOURCE_ATTRS])
    con.execute("INSERT INTO resources VALUES ('r1', 'svc-a', '{}'), ('r2', 'svc-b', '{}')")
    con.execute("""
        INSERT INTO traces (trace_id, root_span_id, root_name, service, start_ns, end_ns, duration_ns,
                            span_count, error_count, root_count, agents)
        SELECT trace_id, max(CASE WHEN is_root THEN span_id END), max(CASE WHEN is_root THEN name END),
               min(service), min(start_ns), max(end_ns), max(end_ns) - min(start_ns), count(*),
               count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_root),
               list(DISTINCT agent ORDER BY agent) FILTER (WHERE agent IS NOT NULL)
        FROM spans GROUP BY trace_id""")
    return store


@pytest.fixture(scope="module")
def store():
    s = build_store()
    yield s
    s.close()


def matching(store: Store, text: str) -> set[int]:
    f = compile_filter(text)
    rows = store.con.execute(f"SELECT s.sid FROM spans s WHERE {f.sql}", f.params).fetchall()
    return {r[0] for r in rows}


# -- the examples of query-language.md, exactly as written -----------------------

SPEC_EXAMPLES = [
    ("duration_ms > 5000", {1, 2}),
    ('name = "approval_decision" and duration_ms > 5000 and timestamp > "2024-01-15T10:00:00Z" '
     'and timestamp < "2024-01-15T12:00:00Z"', {2}),
    ('decision_type = "escalate_to_human" and decision_confidence < 0.8', {2}),
    ('type = "tool" and status = error', {3, 6}),
    ('gen_ai.agent.name =~ "^research" or agent in ("triage_agent", "technical_agent")', {1, 2, 3, 4, 5}),
    ("duration > 2.5s and not exists(gen_ai.usage.input_tokens)", {1, 2, 3, 5}),
    ('status = error and has_ancestor(name = "triage_agent.invoke")', {3}),
]


@pytest.mark.parametrize("text,expected", SPEC_EXAMPLES)
def test_spec_examples(store, text, expected):
    assert matching(store, text) == expected


# -- expression -> matching spans ------------------------------------------------

MATCHES = [
    # intrinsics
    ('name = "llm.chat"', {4}),
    ("name == 'llm.chat'", {4}),
    ('name != "llm.chat"', ALL - {4}),
    ('name =~ "^chain_4[0-9]$"', {140 + k for k in range(10)}),
    ('name !~ "chain"', {1, 2, 3, 4, 5, 6, 8, 9}),
    ('name contains "agent"', {1, 5}),
    ('name startswith "loop"', {8, 9}),
    ('name endswith "_search"', {6}),
    ('name not contains "_"', {4}),
    ('name not startswith "chain" and name not endswith "invoke"', {2, 3, 4, 6, 8, 9}),
    ("duration > 2.5s", {1, 2, 3, 5}),
    ("duration >= 2600", {1, 2, 3, 5}),
    ("duration < 1ms", set()),
    ("duration <= 1ms", {100 + k for k in range(50)}),
    ("duration = 1m", set()),
    ('duration > "2.5s"', {1, 2, 3, 5}),
    ("duration_ms = 1200", {4}),
    ("duration_ms > 1.5s", {1, 2, 3, 5}),
    ("duration > 0.5s and duration < 1h30m", {1, 2, 3, 4, 5}),
    ('start >= "2024-01-15T13:00:00Z" and start < "2024-01-16"', {5, 6}),
    ("start < 2024-01-15T10:30:00Z", {1, 4}),
    ('end > "2024-01-15T13:00:01.4Z" and end < "2024-01-15T14:00:02+01:00"', {6}),
    ('timestamp = "2024-01-15T10:05:00.000000000Z"', {4}),
    ("start < 1705313000", {1}),  # epoch seconds
    ("status = error", {3, 6}),
    ('status = "ERROR"', {3, 6}),
    ("status != unset", {1, 3, 6}),
    ("status in (ok, error)", {1, 3, 6}),
    ("kind = server", {1, 5}),
    ('kind = "SPAN_KIND_CLIENT"', {3, 4, 6}),
    ("type = tool", {3, 6}),
    ('type in ("llm", "decision")', {2, 4}),
    ("depth >= 48", {148, 149}),
    ('depth = "2"', {3, 102}),
    ("is_root", {1, 5, 100}),
    ("is_root = false and depth = 0", set()),
    ("not is_root and service = \"svc-a\"", {2, 3, 4}),
    ('is_root = "true"', {1, 5, 100}),
    ('agent = "triage_agent"', {1, 2, 4}),
    ("agent = nil and service = \"svc-c\"", {8, 9}),
    ("agent != nil and depth > 0", {2, 3, 4, 6}),
    ("exists(model)", {4}),
    ("model = \"gpt-4o\" and input_tokens > 50 and output_tokens = 20", {4}),
    ('session = "sess-1"', {1, 2, 3, 4}),
    ("session != \"sess-1\"", set()),  # missing is not "different"
    ('status_message contains "503"', {6}),
    ("trace_id = " + "a" * 32, {1, 2, 3, 4}),
    ('trace_id = "' + "A" * 32 + '"', {1, 2, 3, 4}),
    ('span_id = "0000000000000006"', {6}),
    ("span_id = 0000000000000006", {6}),
    ('parent_span_id = "0000000000000001"', {2, 4}),
    ('trace_id startswith "bb"', {5, 6}),
    ('name = 5', set()),  # a number against a text field: numeric, no match
    ('service in ("svc-b", "svc-c")', {5, 6, 8, 9}),
    # attributes: strings, numbers, numeric strings, arrays, bools
    ('decision_type = "approve"', {3}),
    ('decision_type != "approve"', {2}),
    ('not decision_type = "approve"', ALL - {3}),
    ("decision_confidence > 0.9", {3}),  # "0.95" is a string holding a number
    ("decision_confidence >= 0.7", {2, 3}),
    ('decision_confidence = "0.7"', {2}),
    ("gen_ai.usage.input_tokens = 42", {6}),
    ('gen_ai.usage.input_tokens = "42"', {6}),
    ("gen_ai.usage.input_tokens > 50", {4}),
    ("gen_ai.usage.input_tokens in (42, 100)", {4, 6}),
    ("gen_ai.usage.input_tokens not in (42)", {4}),
    ('tags = "b"', {6}),
    ('tags != "b"', {3}),
    ('tags in ("a", "c")', {3, 6}),
    ('tags =~ "^[bc]$"', {3, 6}),
    ('tags contains "c"', {3}),
    ("scores > 4", {6}),
    ("scores = 3", {6}),
    ("retry = true", {6}),
    ('retry = "true"', {6}),
    ("retry = false", set()),
    ('empty = "[]"', {6}),
    ("exists(empty)", {6}),
    ("http.status_code >= 500", {6}),
    ("http.status_code =~ \"^5\"", {6}),
    ("retries = 0", {1}),
    ("retries = nil", ALL - {1}),
    ("not retries = 1", ALL),
    ('span."my key" = "spaced"', {1}),
    ('."my key" startswith "sp"', {1}),
    ("exists(span.\"my key\")", {1}),
    ('.name = "attr-name"', {4}),
    ('span.name = "attr-name"', {4}),
    ('name = "attr-name"', set()),
    ('missing = "x"', set()),
    ('not missing = "x"', ALL),
    ('missing != "x"', set()),
    ("missing = nil", ALL),
    # resource attributes and the span-then-resource rule
    ('resource.env = "prod"', {1, 2, 3, 4}),
    ('span.env = "prod"', set()),
    ('env = "prod"', {1, 2, 4}),  # span 3's own env shadows its resource's
    ('env = "span-env"', {3}),
    ('env = "dev"', {5, 6}),
    ('env != "prod"', {3, 5, 6}),
    ("exists(env)", {1, 2, 3, 4, 5, 6}),
    ("exists(resource.env) and not exists(span.env)", {1, 2, 4, 5, 6}),
    ('service.name = "svc-b"', {5, 6}),
    ('resource.service.name = "svc-a"', {1, 2, 3, 4}),
    ("replicas >= 3", {5, 6}),
    ('region = "eu" and not env = "prod"', {3}),
    # trace fields
    ("trace.duration_ms > 10000", {1, 2, 3, 4}),
    ("trace.duration >= 3s and trace.duration < 5s", {5, 6}),
    ("trace.span_count = 2", {5, 6, 8, 9}),
    ("trace.error_count >= 1", {1, 2, 3, 4, 5, 6}),
    ('trace.root_name = "research_agent.invoke"', {5, 6}),
    ('trace.service = "svc-a"', {1, 2, 3, 4}),
    ('trace.start >= "2024-01-16"', {8, 9} | {100 + k for k in range(50)}),
    ('trace.agents = "technical_agent"', {1, 2, 3, 4}),
    ('trace.agents in ("research_agent", "nobody")', {5, 6}),
    ('trace.agents =~ "^tech"', {1, 2, 3, 4}),
    ('trace.agents != "research_agent"', {1, 2, 3, 4}),
    ("trace.root_count = 0", {8, 9}),
    ("exists(trace.agents)", {1, 2, 3, 4, 5, 6}),
    # parent fields
    ('parent.name = "triage_agent.invoke"', {2, 4}),
    ('parent.decision_type = "escalate_to_human"', {3}),
    ("parent.is_root", {2, 4, 6, 101}),
    ('parent.parent.name = "triage_agent.invoke"', {3}),
    ('parent.name = nil', {1, 5, 100}),
    ("parent.depth = 47", {148}),
    # structure
    ('has_parent(name = "web_search" or type = "agent")', {2, 4, 6}),
    ('has_child(type = "tool")', {2, 5}),
    ("has_child(status = error) or has_parent(status = error)", {2, 5}),
    ('has_ancestor(type = "decision")', {3}),
    ('has_descendant(status = error)', {1, 2, 5}),
    ('has_descendant(name = "chain_49")', {100 + k for k in range(49)}),
    ('has_ancestor(name = "chain_0")', {101 + k for k in range(49)}),
    ('has_ancestor(name = "chain_48") and not has_descendant(is_root)', {149}),
    ('has_ancestor(name = "loop_a")', {8, 9}),  # a cycle ends
    ('has_descendant(name = "loop_a")', {8, 9}),
    ('has_ancestor(has_child(name = "search_tool"))', {3}),
    ('not has_parent(name =~ "")', {1, 5, 100}),
    # boolean structure, keywords in any case
    ('name = "llm.chat" OR name = "web_search" AND status = error', {4, 6}),
    ('(name = "llm.chat" or name = "web_search") and status = error', {6}),
    ('NOT (type = tool Or type = agent) And service = "svc-a"', {2, 4}),
    ('!(type = tool) && service = "svc-b" || name = "loop_a"', {5, 8}),
    ("not not is_root", {1, 5, 100}),
]


@pytest.mark.parametrize("text,expected", MATCHES)
def test_matches(store, text, expected):
    assert matching(store, text) == expected


def test_not_is_plain_negation_everywhere(store):
    """Every filter is TRUE or FALSE, never NULL: f and not f split all spans."""
    for text, _ in MATCHES + SPEC_EXAMPLES:
        f = compile_filter(text)
        yes, no, nulls = store.con.execute(
            f"SELECT count(*) FILTER (WHERE {f.sql}), count(*) FILTER (WHERE NOT ({f.sql})), "
            f"count(*) FILTER (WHERE ({f.sql}) IS NULL) FROM spans s", f.params * 3).fetchone()
        assert (yes + no, nulls) == (len(ALL), 0), text


def test_empty_filter_is_true(store):
    for text in ("", "   ", "\n\t", None):
        f = compile_filter(text)
        assert (f.sql, f.params, f.ast, f.is_trivial) == ("TRUE", [], None, True)
    assert matching(store, "") == ALL


def test_text_id_variant(store):
    """The structural SQL also works over text parent ids (a schema without parent_sid)."""
    con = store.con
    for text, expected in [(t, e) for t, e in MATCHES if "has_" in t or "parent." in t]:
        ast = parse(text)
        sql, params = _Compiler(text, parent_sid=False).node(ast, "s")
        assert "parent_sid" not in sql
        got = {r[0] for r in con.execute(f"SELECT s.sid FROM spans s WHERE {sql}", params).fetchall()}
        assert got == expected, text


# -- expression -> SQL and parameters ------------------------------------------------

SQL = [
    ("duration_ms > 5000", "(s.duration_ns > ?) IS TRUE", [5_000_000_000]),
    ("duration > 2.5s", "(s.duration_ns > ?) IS TRUE", [2_500_000_000]),
    ("duration <= 0.5", "(s.duration_ns <= ?) IS TRUE", [500_000]),
    ('timestamp > "2024-01-15T10:00:00Z"', "(s.start_ns > ?) IS TRUE", [1_705_312_800_000_000_000]),
    ("status = error", "(s.status = ?) IS TRUE", ["error"]),
    ('name != "x"', "(s.name <> ?) IS TRUE", ["x"]),
    ('name =~ "^a"', "(regexp_matches(s.name, ?)) IS TRUE", ["^a"]),
    ('name !~ "^a"', "(NOT regexp_matches(s.name, ?)) IS TRUE", ["^a"]),
    ('agent in ("a", "b")', "(s.agent IN (?, ?)) IS TRUE", ["a", "b"]),
    ('agent not in ("a")', "(s.agent <> ?) IS TRUE", ["a"]),
    ("name = 5", "(TRY_CAST(s.name AS DOUBLE) = ?) IS TRUE", [5]),
    ("name != 5", "(s.name IS NOT NULL AND NOT COALESCE(TRY_CAST(s.name AS DOUBLE) = ?, FALSE))", [5]),
    ("is_root", "(s.is_root = ?) IS TRUE", [True]),
    ("exists(model)", "s.model IS NOT NULL", []),
    ("model = nil", "NOT (s.model IS NOT NULL)", []),
    ('span.decision_type = "escalate"',
     "EXISTS (SELECT 1 FROM attrs a1 WHERE a1.sid = s.sid AND a1.key = ? AND a1.str_val = ?)",
     ["decision_type", "escalate"]),
    ("resource.replicas >= 3",
     "EXISTS (SELECT 1 FROM resource_attrs r1 WHERE r1.resource_id = s.resource_id AND r1.key = ? AND r1.num_val >= ?)",
     ["replicas", 3]),
    ('decision_type = "escalate"',
     "s.sid IN (SELECT a1.sid FROM attrs a1 WHERE a1.key = ? AND a1.str_val = ? UNION ALL SELECT s3.sid "
     "FROM resource_attrs r2 JOIN spans s3 ON s3.resource_id = r2.resource_id WHERE r2.key = ? AND r2.str_val = ? "
     "AND NOT EXISTS (SELECT 1 FROM attrs a4 WHERE a4.sid = s3.sid AND a4.key = ?))",
     ["decision_type", "escalate", "decision_type", "escalate", "decision_type"]),
    ("exists(x)",
     "(EXISTS (SELECT 1 FROM attrs a1 WHERE a1.sid = s.sid AND a1.key = ?) OR EXISTS (SELECT 1 FROM "
     "resource_attrs r2 WHERE r2.resource_id = s.resource_id AND r2.key = ?))", ["x", "x"]),
    ('span.tags != "a"',
     "(EXISTS (SELECT 1 FROM attrs a2 WHERE a2.sid = s.sid AND a2.key = ?) AND NOT (EXISTS (SELECT 1 FROM "
     "attrs a1 WHERE a1.sid = s.sid AND a1.key = ? AND a1.str_val = ?)))", ["tags", "tags", "a"]),
    ("span.x in (1, \"1\", true)",
     "EXISTS (SELECT 1 FROM attrs a1 WHERE a1.sid = s.sid AND a1.key = ? AND "
     "(a1.num_val = ? OR a1.str_val = ? OR lower(a1.str_val) = ?))", ["x", 1, "1", "true"]),
    ('span.x contains "y"',
     "EXISTS (SELECT 1 FROM attrs a1 WHERE a1.sid = s.sid AND a1.key = ? AND contains(a1.str_val, ?))", ["x", "y"]),
    ("trace.duration_ms > 10",
     "s.trace_id IN (SELECT t1.trace_id FROM traces t1 WHERE (t1.duration_ns > ?) IS TRUE)", [10_000_000]),
    ('trace.agents = "a"',
     "s.trace_id IN (SELECT t1.trace_id FROM traces t1 WHERE list_has_any(t1.agents, [?]))", ["a"]),
    ('has_parent(name = "x")',
     "EXISTS (SELECT 1 FROM spans p1 WHERE p1.sid = s.parent_sid AND (p1.name = ?) IS TRUE)", ["x"]),
    ('parent.name = "x"',
     "EXISTS (SELECT 1 FROM spans p1 WHERE p1.sid = s.parent_sid AND (p1.name = ?) IS TRUE)", ["x"]),
    ('has_child(name = "x")',
     "EXISTS (SELECT 1 FROM spans c1 WHERE s.sid = c1.parent_sid AND (c1.name = ?) IS TRUE)", ["x"]),
    ('has_ancestor(name = "x")',
     "s.sid IN (WITH RECURSIVE w2(sid) AS (SELECT x3.sid FROM spans m1 JOIN spans x3 ON m1.sid = x3.parent_sid "
     "WHERE (m1.name = ?) IS TRUE UNION SELECT y4.sid FROM w2 JOIN spans y4 ON w2.sid = y4.parent_sid) "
     "SELECT w2.sid FROM w2)", ["x"]),
    ('has_descendant(name = "x")',
     "s.sid IN (WITH RECURSIVE w2(sid, parent_sid) AS (SELECT x3.sid, x3.parent_sid FROM spans m1 JOIN spans x3 "
     "ON x3.sid = m1.parent_sid WHERE (m1.name = ?) IS TRUE UNION SELECT y4.sid, y4.parent_sid FROM w2 "
     "JOIN spans y4 ON y4.sid = w2.parent_sid) SELECT w2.sid FROM w2)", ["x"]),
    ('not (a.b = 1 or name = "x") and depth < 3',
     "(NOT ((s.sid IN (SELECT a1.sid FROM attrs a1 WHERE a1.key = ? AND a1.num_val = ? UNION ALL SELECT s3.sid "
     "FROM resource_attrs r2 JOIN spans s3 ON s3.resource_id = r2.resource_id WHERE r2.key = ? AND r2.num_val = ? "
     "AND NOT EXISTS (SELECT 1 FROM attrs a4 WHERE a4.sid = s3.sid AND a4.key = ?)) OR (s.name = ?) IS TRUE)) "
     "AND (s.depth < ?) IS TRUE)", ["a.b", 1, "a.b", 1, "a.b", "x", 3]),
]


@pytest.mark.parametrize("text,sql,params", SQL)
def test_sql(text, sql, params):
    f = compile_filter(text)
    assert (f.sql, f.params) == (sql, params)
    assert [type(p) for p in f.params] == [type(p) for p in params]


# -- errors: exact message and column -------------------------------------------------

ERRORS = [
    ('duration_ms > and name = "x"', "expected a value after '>'", 15),
    ("duration_ms >", "expected a value after '>'", 14),
    ('name = "abc', "unterminated string", 8),
    ("name = 'abc\\'", "unterminated string", 8),
    ("name = `abc", "unterminated string", 8),
    ('(name = "x"', "unbalanced parentheses: '(' is never closed", 1),
    ('name = "x")', "unbalanced parentheses: ')' without a matching '('", 11),
    (')', "unbalanced parentheses: ')' without a matching '('", 1),
    ('has_parent(name = "x"', "unbalanced parentheses: '(' is never closed", 11),
    ('x in ("a", "b"', "unbalanced parentheses: '(' is never closed", 6),
    ("exists(name", "unbalanced parentheses: '(' is never closed", 7),
    ("read_csv('/etc/passwd')", "unknown function 'read_csv'", 1),
    ('name = "x" and lower(name) = "x"', "unknown function 'lower'", 16),
    ("exist(name)", "unknown function 'exist'", 1),
    ("name = 5s", "name is not a duration; '5s' has a unit", 8),
    ("depth > 5s", "depth is not a duration; '5s' has a unit", 9),
    ("decision_confidence < 5ms", "decision_confidence is not a duration; '5ms' has a unit", 23),
    ("start > 5s", "start is a time, not a duration; '5s' has a unit", 9),
    ("duration > 5x", "unknown unit 'x' in '5x'", 12),
    ('name =~ "(abc"', "bad regular expression: missing ), unterminated subpattern", 10),
    ('name =~ "a[b"', "bad regular expression: unterminated character set", 11),
    ('x !~ "a(?=b)"', "regular expressions cannot use a lookahead (?=...)", 8),
    ('name =~ "(?<=a)b"', "regular expressions cannot use a lookbehind (?<=...)", 10),
    ('name =~ "(a)\\\\1"', "regular expressions cannot use a backreference (\\1)", 9),
    ('name =~ "a{1001}"', "bad regular expression: invalid repetition size: {1001}", 9),
    ("name =~ true", "expected a regular expression (a string) after '=~'", 9),
    ("trace.durtion_ms > 5", "unknown trace field 'trace.durtion_ms'", 1),
    ("trace.nope = 1", "unknown trace field 'trace.nope'", 1),
    ('parent.nmae = "x"', "unknown field 'parent.nmae'", 1),
    ("staus = error", "unknown field 'staus'", 1),
    ('Name = "x"', "unknown field 'Name'", 1),
    ('x = 1 and duraton_ms > 5', "unknown field 'duraton_ms'", 11),
    ("status = bad", "expected a value after '='", 10),
    ('status = "bad"', 'unknown status "bad"', 10),
    ("kind in (server, sideways)", "expected a value after ','", 18),
    ("name = foo", "expected a value after '='", 8),
    ("name = x.y", "expected a value after '='", 8),
    ('name = "x" name = "y"', "expected 'and', 'or' or the end of the expression, found 'name'", 12),
    ("and x = 1", "expected a condition, found 'and'", 1),
    ("x = 1 and", "expected a condition after 'and'", 10),
    ("x = 1 and or y = 2", "expected a condition after 'and'", 11),
    ("not", "expected a condition after 'not'", 4),
    ("()", "expected a condition after '('", 2),
    ('"my key" = 1', "expected a condition, found '\"my key\"'", 1),
    ('(x = 1 y = 2)', "expected 'and', 'or' or ')', found 'y'", 8),
    ('x in "a"', "expected '(' after 'in'", 6),
    ("x in ()", "expected a value after '('", 7),
    ('x in ("a" "b")', "expected ',' or ')' in the list, found '\"b\"'", 11),
    ("x in (nil, 1)", "nil cannot be in a list", 7),
    ("exists()", "expected a field name after 'exists('", 8),
    ("exists(name = 1)", "expected ')' after the field name, found '='", 13),
    ("exists name", "expected '(' after 'exists'", 8),
    ("has_parent()", "expected a condition after '('", 12),
    ('name contain "x"', "expected an operator after 'name'", 6),
    ('name "x"', "expected an operator after 'name'", 6),
    ("name", "expected an operator after 'name'", 5),
    ('depth contains "x"', "'contains' applies to text, and depth is a number", 7),
    ('duration =~ "1"', "'=~' applies to text, and duration is a duration", 10),
    ("is_root > true", "'>' does not apply to is_root, which is true or false", 11),
    ("is_root = 5", "is_root is true or false; 5 is not", 11),
    ("span.flag > true", "'>' does not apply to true/false", 13),
    ("depth = true", "depth is a number; true is not", 9),
    ("x > nil", "nil can only be compared with = or !=", 5),
    ('depth = "abc"', 'depth is a number; "abc" is not', 9),
    ('start > "yesterday"', 'start is a time; "yesterday" is not an ISO-8601 time', 9),
    ('duration > "abc"', 'duration is a duration; "abc" is not', 12),
    ("x = 1 $", "unexpected character '$'", 7),
    ("x = 1 & y = 2", "unexpected character '&'", 7),
    ("a <> 1", "unknown operator '<>'", 3),
    ("span. = 1", "a field name cannot end with '.'", 5),
    ('span."" = 1', "expected an attribute name after 'span.'", 1),
    ("(" * 70 + "x = 1" + ")" * 70, "expression nested too deeply (more than 64 levels)", 65),
    ("x = 1 and . = 2", "expected a field name after '.'", 11),
    ('parent."" = 1', "empty attribute name", 1),
    ('."" = 1', "expected an attribute name after '.'", 1),
    ('name =~ "a++"', "regular expressions cannot use a possessive quantifier (*+, ++, ?+)", 12),
    ('name =~ "(?#note)a"', "regular expressions cannot use a comment (?#...)", 10),
    ('name =~ "(?P<x>a)\\k<x>"', "regular expressions cannot use a backreference (\\k<name>)", 18),
    ('start contains "x"', "'contains' applies to text, and start is a time", 7),
    ('is_root =~ "t"', "'=~' applies to text, and is_root is true or false", 9),
    ('kind = "sideways"', 'unknown kind "sideways"', 8),
]


@pytest.mark.parametrize("text,message,column", ERRORS)
def test_errors(text, message, column):
    with pytest.raises(ExpressionError) as info:
        compile_filter(text)
    err = info.value
    assert (err.message, err.column, err.expression) == (message, column, text)


HINTS = [
    ("read_csv('/etc/passwd')", "functions: exists, has_parent, has_child, has_ancestor, has_descendant"),
    ("has_parnt(name = \"x\")", "did you mean has_parent?"),
    ("trace.durtion_ms > 5", "did you mean trace.duration_ms?"),
    ('parent.nmae = "x"', "did you mean parent.name? (for an attribute with this name, write parent.span.nmae)"),
    ("staus = error", "did you mean status? (for an attribute with this name, write span.staus)"),
    ("spanid = 1", "did you mean span_id? (for an attribute with this name, write span.spanid)"),
    ("name = 5s", 'to compare text, quote it: "5s"'),
    ("name = foo", 'to compare with the text, quote it: "foo"'),
    ("status = bad", "status is one of: error, ok, unset"),
    ('name contain "x"', "did you mean contains?"),
    ('name = "abc', 'close it with a matching "'),
    ("a <> 1", "use != for 'not equal'"),
]


@pytest.mark.parametrize("text,hint", HINTS)
def test_error_hints(text, hint):
    with pytest.raises(ExpressionError) as info:
        compile_filter(text)
    assert info.value.hint == hint


def test_error_render_points_at_the_first_bad_token():
    with pytest.raises(ExpressionError) as info:
        compile_filter('duration_ms > and name = "x"')
    assert info.value.render() == (
        "error: expected a value after '>' at column 15\n"
        '  duration_ms > and name = "x"\n'
        "                ^"
    )


def test_plausible_attribute_names_are_not_typos():
    for name in ("agents", "session_id", "mode", "state", "env", "kinds", "start_time", "model_name", "names"):
        f = compile_filter(f'{name} = "x"')
        assert f.params[0] == name


# -- parsing details ---------------------------------------------------------------------

def test_spellings_give_the_same_tree():
    a = parse('name = "x" and (depth > 1 or not is_root)')
    b = parse("NAME_unused" if False else "name == 'x' && (depth > 1 || !is_root = true)")
    assert a == b


def test_string_escapes():
    f = compile_filter(r'name = "a\"b\\c\n\t\u00e9\d" or name = ' + "'it\\'s'")
    assert f.params == ['a"b\\c\n\té\\d', "it's"]
    assert compile_filter(r"name =~ `\d+\.\d`").params == [r"\d+\.\d"]


def test_numbers_and_durations():
    assert compile_filter("x.y = -1.5e3").params == ["x.y", -1500.0, "x.y", -1500.0, "x.y"]
    assert compile_filter("duration > 1h30m").params == [5_400_000_000_000]
    assert compile_filter("duration > 250us").params == [250_000]
    assert compile_filter("duration > 1.5m").params == [90_000_000_000]
    assert compile_filter("depth > 99999999999999999999999").params == [1e23]


@pytest.mark.parametrize("text", [t for t, _ in SPEC_EXAMPLES + MATCHES] + [t for t, _, _ in SQL])
def test_to_text_round_trips(text):
    ast = parse(text)
    again = parse(to_text(ast))
    assert again == ast
    assert compile_filter(to_text(ast)).sql == compile_filter(text).sql


def test_to_text_canonical():
    assert to_text(parse("duration > 2.5s AND NOT (a = 1 OR b = 'x')")) == 'duration > 2500ms and not (a = 1 or b = "x")'
    assert to_text(parse('span."my key" = 1 and .name = 2 and timestamp > 2024-01-15')) == \
        'span."my key" = 1 and .name = 2 and start > "2024-01-15"'


# -- fields for --by / -c / --sort ------------------------------------------------------

FIELD_SQL = [
    ("name", "s.name", []),
    ("duration", "s.duration_ns", []),
    ("duration_ms", "s.duration_ns / 1e6", []),
    ("timestamp", "s.start_ns", []),
    ("trace.root_name", "(SELECT t1.root_name FROM traces t1 WHERE t1.trace_id = s.trace_id LIMIT 1)", []),
    ("span.x", "(SELECT any_value(a1.str_val) FROM attrs a1 WHERE a1.sid = s.sid AND a1.key = ? "
               "AND coalesce(a1.idx, 0) = 0)", ["x"]),
]


@pytest.mark.parametrize("name,sql,params", FIELD_SQL)
def test_field_expr_sql(name, sql, params):
    assert field_expr(name) == (sql, params)


FIELD_VALUES = [
    ("name", False, {1: "triage_agent.invoke", 6: "web_search"}),
    ("duration_ms", False, {1: 8000.0, 6: 500.0}),
    ("duration", True, {1: 8000.0, 6: 500.0}),
    ("duration", False, {1: 8_000_000_000, 6: 500_000_000}),
    ("decision_type", False, {2: "escalate_to_human", 3: "approve", 6: None}),
    ("decision_confidence", True, {2: 0.7, 3: 0.95, 6: None}),
    ("tags", False, {3: "c", 6: "a", 1: None}),
    ("env", False, {1: "prod", 3: "span-env", 6: "dev", 8: None}),
    ("span.env", False, {1: None, 3: "span-env"}),
    ("resource.env", False, {3: "prod"}),
    ("span.name", False, {4: "attr-name", 1: None}),
    ("trace.span_count", True, {1: 4, 8: 2}),
    ("trace.duration_ms", False, {5: 3000.0}),
    ("parent.name", False, {1: None, 3: "approval_decision"}),
    ("parent.decision_type", False, {3: "escalate_to_human", 2: None}),
    ("parent.parent.name", False, {3: "triage_agent.invoke"}),
    ("is_root", True, {1: 1, 2: 0}),
    ("gen_ai.usage.input_tokens", True, {4: 100.0, 6: 42.0}),
]


@pytest.mark.parametrize("name,numeric,expected", FIELD_VALUES)
def test_field_values(store, name, numeric, expected):
    sql, params = field_numeric_expr(name) if numeric else field_expr(name)
    rows = dict(store.con.execute(f"SELECT s.sid, {sql} FROM spans s", params).fetchall())
    assert {sid: rows[sid] for sid in expected} == expected


def test_field_group_by(store):
    sql, params = field_expr("type")
    rows = store.con.execute(
        f"SELECT {sql} AS k, count(*) FROM spans s WHERE s.trace_id = ? GROUP BY k ORDER BY k", params + [T1]
    ).fetchall()
    assert rows == [("agent", 1), ("decision", 1), ("llm", 1), ("tool", 1)]


def test_field_info():
    assert (field_info("duration").kind, field_info("duration").unit) == ("duration", "ns")
    assert (field_info("duration_ms").unit, field_info("start").unit) == ("ms", "ns")
    assert (field_info("gen_ai.x").kind, field_info("gen_ai.x").label) == ("attribute", "gen_ai.x")
    assert field_info("timestamp").label == "start"
    assert field_info("parent.trace.span_count").label == "parent.trace.span_count"
    assert parse_field('span."a b"').name == "a b"


@pytest.mark.parametrize("name,message,column", [
    ("", "expected a field name", 1),
    ("name depth", "expected a single field name, found 'depth'", 6),
    ("trace.bogus", "unknown trace field 'trace.bogus'", 1),
    ("staus", "unknown field 'staus'", 1),
    ("5", "expected a field name", 1),
])
def test_field_expr_errors(name, message, column):
    with pytest.raises(ExpressionError) as info:
        field_expr(name)
    assert (info.value.message, info.value.column) == (message, column)


def test_field_table_is_complete():
    assert set(INTRINSICS) == {
        "name", "trace_id", "span_id", "parent_span_id", "service", "kind", "status", "status_message",
        "duration", "duration_ms", "start", "end", "agent", "type", "depth", "is_root", "model",
        "input_tokens", "output_tokens", "session"}
    assert {"duration_ms", "root_name", "span_count", "error_count", "service", "start"} <= set(TRACE_FIELDS)


def test_vocabularies_match_ingest():
    """status / kind / type literals are validated against what the loader writes."""
    from agtrace.ingest.semantics import TYPES
    from agtrace.ingest.values import KINDS, STATUSES
    from agtrace.query.fields import KIND_VALUES, STATUS_VALUES, TYPE_VALUES

    assert (set(KIND_VALUES), set(STATUS_VALUES), set(TYPE_VALUES)) == (set(KINDS), set(STATUSES), set(TYPES))


def test_core_does_not_import_the_cli():
    import subprocess
    import sys

    code = "import sys, agtrace.query; print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1] / "cli")})
    assert out.stdout.strip() == "[]"
