#!/usr/bin/env python3
"""Time the SQL the filter language compiles to, on a 1,000,000-span store.

    PYTHONPATH=cli python benchmarks/bench_filter_sql.py [--spans 1000000] [--repeat 5] [--keep PATH]

Measures DuckDB time inside one process (compile time is separate and
negligible): each filter runs as `SELECT count(*) FROM spans s WHERE <filter>`
`--repeat` times after one warm-up run; the median wall time and the median
process CPU time are reported. Target (issue 4): a selective attribute
filter, a regex on names and a count each well under 0.3 s.

The store is made with SQL (range()), not loaded from files, to time the
query layer alone: traces of 20 spans (a root, a binary tree below it, depth
0-4), 5 services with 2 resource attributes each, and about 7 `attrs` rows per
span: gen_ai.system, gen_ai.request.model, gen_ai.agent.name, component and
http.status_code on every span, gen_ai.usage.input_tokens on two thirds,
decision_type + decision_confidence on 5% (decision_type = "escalate" on
1%), a two-element `tags` array on a quarter. The `traces` table is filled
by aggregation.

`--parent-sid` also times the structural predicates over an integer
`parent_sid` column (added to a copy of spans), to measure what that column
would buy over joining on (trace_id, parent_span_id).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "cli"))

from common import describe_machine  # noqa: E402

from agtrace.query import compile_filter, field_expr, parse  # noqa: E402
from agtrace.query.compiler import _Compiler  # noqa: E402
from agtrace.store import Store  # noqa: E402

SPANS_PER_TRACE = 20

FILTERS = [
    "",  # count(*)
    'decision_type = "escalate"',
    'span.decision_type = "escalate"',
    r'name =~ "^tool\\.search"',
    "duration > 2.5s",
    "status = error",
    # the examples of query-language.md
    "duration_ms > 5000",
    'name = "approval_decision" and duration_ms > 5000 and timestamp > "2024-01-15T10:00:00Z" '
    'and timestamp < "2024-01-15T12:00:00Z"',
    'decision_type = "escalate_to_human" and decision_confidence < 0.8',
    'type = "tool" and status = error',
    'gen_ai.agent.name =~ "^research" or agent in ("triage_agent", "technical_agent")',
    "duration > 2.5s and not exists(gen_ai.usage.input_tokens)",
    'status = error and has_ancestor(name = "triage_agent.invoke")',
    # more shapes
    'component = "comp3"',
    'not component = "comp3"',
    'service.name = "svc1"',
    'tags = "tag3"',
    "http.status_code >= 500 and name contains \"fetch\"",
    'trace.duration_ms > 9000',
    'trace.agents = "triage_agent"',
    'parent.name = "triage_agent.invoke"',
    'has_parent(name = "triage_agent.invoke")',
    'has_child(status = error)',
    'has_ancestor(name = "triage_agent.invoke")',
    'has_descendant(status = error)',
]
GROUP_BY = ["agent", "decision_type", "trace.root_name"]


def build(path: Path, spans: int) -> Store:
    store = Store.open(path, read_only=False)
    con = store.con
    t = time.perf_counter()
    n = SPANS_PER_TRACE
    con.execute(f"""
    INSERT INTO spans (sid, trace_id, span_id, parent_span_id, name, kind, status, status_message, start_ns, end_ns,
                       duration_ns, service, resource_id, scope_name, scope_version, attributes, events, depth,
                       is_root, agent, type, model, input_tokens, output_tokens, session, source)
    SELECT i, printf('%032x', i // {n}), printf('%016x', i),
      CASE WHEN i % {n} = 0 THEN NULL ELSE printf('%016x', (i // {n}) * {n} + ((i % {n}) - 1) // 2) END,
      CASE WHEN i % {n} = 0 THEN 'triage_agent.invoke'
           ELSE (['agent.invoke', 'llm.chat', 'tool.search', 'tool.fetch', 'approval_decision',
                  'research_agent.invoke', 'retrieve.docs', 'workflow.step'])[1 + (hash(i) % 8)::INT] END,
      'internal', CASE WHEN hash(i * 3) % 33 = 0 THEN 'error' WHEN i % 5 = 0 THEN 'ok' ELSE 'unset' END, NULL,
      1705312800000000000 + i * 10000000, 1705312800000000000 + i * 10000000 + (hash(i * 7) % 10000000000)::BIGINT,
      (hash(i * 7) % 10000000000)::BIGINT,
      'svc' || (i // {n}) % 5, 'r' || (i // {n}) % 5, 'scope', '1.0', '{{}}', '[]',
      CASE WHEN i % {n} = 0 THEN 0 ELSE floor(log2((i % {n}) + 1))::INT END, i % {n} = 0,
      (['triage_agent', 'technical_agent', 'billing_agent', 'research_agent'])[1 + (hash(i // {n}) % 4)::INT],
      (['agent', 'tool', 'llm', 'retrieval', 'decision', 'workflow', 'other'])[1 + (hash(i) % 7)::INT],
      'gpt-4o', 100 + i % 1000, 50 + i % 500, 'sess' || (i // 200), 'bench:1'
    FROM range({spans}) t(i)""")
    con.execute("""
    INSERT INTO attrs
    SELECT sid, 'gen_ai.system', NULL, 'string', 'openai', NULL FROM spans
    UNION ALL SELECT sid, 'gen_ai.request.model', NULL, 'string', model, NULL FROM spans
    UNION ALL SELECT sid, 'gen_ai.usage.input_tokens', NULL, 'int', input_tokens::VARCHAR, input_tokens
        FROM spans WHERE sid % 3 <> 0
    UNION ALL SELECT sid, 'gen_ai.agent.name', NULL, 'string', agent, NULL FROM spans
    UNION ALL SELECT sid, 'http.status_code', NULL, 'int', (200 + (sid % 4) * 100)::VARCHAR, 200 + (sid % 4) * 100
        FROM spans
    UNION ALL SELECT sid, 'decision_type', NULL, 'string',
        (['escalate', 'approve', 'reject', 'escalate_to_human', 'defer'])[1 + (hash(sid) % 5)::INT], NULL
        FROM spans WHERE sid % 20 = 7
    UNION ALL SELECT sid, 'decision_confidence', NULL, 'double', ((sid % 100) / 100.0)::VARCHAR, (sid % 100) / 100.0
        FROM spans WHERE sid % 20 = 7
    UNION ALL SELECT sid, 'tags', k, 'string', 'tag' || ((sid + k) % 10), NULL
        FROM spans, range(2) r(k) WHERE sid % 4 = 1
    UNION ALL SELECT sid, 'component', NULL, 'string', 'comp' || sid % 17, NULL FROM spans
    ORDER BY 1""")
    con.execute("INSERT INTO resources SELECT 'r' || i, 'svc' || i, '{}' FROM range(5) t(i)")
    con.execute("""INSERT INTO resource_attrs
        SELECT 'r' || i, 'service.name', NULL, 'string', 'svc' || i, NULL FROM range(5) t(i)
        UNION ALL SELECT 'r' || i, 'deployment.environment', NULL, 'string', 'prod', NULL FROM range(5) t(i)""")
    con.execute("""INSERT INTO traces (trace_id, root_span_id, root_name, service, start_ns, end_ns, duration_ns,
                                       span_count, error_count, root_count, agents)
        SELECT trace_id, max(CASE WHEN is_root THEN span_id END), max(CASE WHEN is_root THEN name END),
               any_value(service), min(start_ns), max(end_ns), max(end_ns) - min(start_ns), count(*),
               count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_root),
               list(DISTINCT agent ORDER BY agent)
        FROM spans GROUP BY trace_id""")
    con.execute("CHECKPOINT")
    attrs = con.execute("SELECT count(*) FROM attrs").fetchone()[0]
    print(f"built {spans:,} spans, {attrs:,} attrs rows in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return store


def timed(con, sql: str, params: list, repeat: int) -> tuple[float, float, int]:
    con.execute(sql, params).fetchall()  # warm-up
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = con.execute(sql, params).fetchall()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result[0][0] if len(result) == 1 else len(result)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the store at this path instead of a temp file")
    ap.add_argument("--parent-sid", action="store_true", help="also time structural filters over parent_sid")
    args = ap.parse_args()

    print(describe_machine(), file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.duckdb"
        store = Store.open(path, read_only=False) if path.exists() else build(path, args.spans)
        con = store.con
        total = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        print(f"\n{total:,} spans; median of {args.repeat} (wall ms / CPU ms / result)\n")
        print(f"{'wall ms':>8} {'cpu ms':>8} {'rows':>9}  filter")
        for text in FILTERS:
            f = compile_filter(text)
            wall, cpu, rows = timed(con, f"SELECT count(*) FROM spans s WHERE {f.sql}", f.params, args.repeat)
            print(f"{wall * 1000:8.1f} {cpu * 1000:8.1f} {rows:9,}  {text or '(none: count)'}")
        for name in GROUP_BY:
            sql, params = field_expr(name)
            wall, cpu, rows = timed(con, f"SELECT count(*) FROM (SELECT {sql} AS k, count(*) FROM spans s GROUP BY k)",
                                    params, args.repeat)
            print(f"{wall * 1000:8.1f} {cpu * 1000:8.1f} {rows:9,}  group by {name} (groups)")
        t = time.perf_counter()
        for _ in range(100):
            compile_filter(FILTERS[10])
        print(f"\ncompile time: {(time.perf_counter() - t) * 10:.2f} ms per filter (spec example 5)")
        if args.parent_sid:
            con.execute("CREATE TEMP TABLE spans AS SELECT s.*, p.sid AS parent_sid FROM main.spans s "
                        "LEFT JOIN main.spans p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id")
            print("\nwith an integer parent_sid column:")
            for text in [x for x in FILTERS if "has_" in x or "parent." in x]:
                sql, params = _Compiler(text, parent_sid=True).node(parse(text), "s")
                wall, cpu, rows = timed(con, f"SELECT count(*) FROM spans s WHERE {sql}", params, args.repeat)
                print(f"{wall * 1000:8.1f} {cpu * 1000:8.1f} {rows:9,}  {text}")
        store.close()


if __name__ == "__main__":
    main()
