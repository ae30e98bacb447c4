#!/usr/bin/env python3
"""Benchmark `agtrace show` on a store of 1,000,000 spans (whole processes).

    PYTHONPATH=cli python benchmarks/bench_show.py [--repeat 5] [--spans 1000000] [--keep]

Targets (issue 3): a 40-span trace in under 0.5 s, a 50,000-span trace in
under 3 s, measured as whole `agtrace show` processes (interpreter start-up,
imports, opening the store, the lookup, rendering), output piped.

The store is generated with SQL, not loaded from files (that is `load`'s
benchmark): 23,750 traces of 40 spans (a workflow root fanning out to agents,
tools and LLM calls, 3 children per span) plus one trace of 50,000 spans,
with ~250-byte attribute objects, 3 `attrs` rows per span and a few links.
Rows are inserted in start-time order with about 40 traces in flight, the
way a Collector file exporter's batches interleave them, so the spans of one
trace are scattered over the row groups: the unfavourable layout for a point
lookup by trace id. A second copy of the store is then rewritten ordered by
(trace_id, start_ns), where DuckDB's min/max zonemaps let the scan skip all
but one row group; both are timed, to show what ordering the spans table on
load would buy.

Stages inside one process (--stages) are timed too, to show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "cli"))

from common import child_env, compile_bytecode, describe_machine, run_repeated  # noqa: E402

BASE_NS = 1_736_899_200_000_000_000  # 2025-01-15T00:00:00Z
MS = 1_000_000
SMALL = 40
BIG = 50_000

# One SELECT generating every span: `t` is the trace number (0 = the big
# trace), `i` the span number inside it; parent (i-1)//3 (a 3-ary heap, so
# depth = floor(log3(2i+1))). Times nest: a span starts 1 ms per level after
# its trace, ends 1 ms per level before the trace's end, with small offsets.
SPANS_SQL = """
WITH ids AS (
    SELECT t, i FROM range(0, 1) r(t), range(0, {big}) s(i)
    UNION ALL
    SELECT t, i FROM range(1, {traces} + 1) r(t), range(0, {small}) s(i)
), d AS (
    SELECT t, i,
           CAST(floor(log(2 * i + 1) / log(3) + 1e-9) AS INTEGER) AS depth,
           {base} + t::BIGINT * 25 * {ms} AS tstart,
           CASE WHEN t = 0 THEN 60000 ELSE 1000 END::BIGINT AS tlen
    FROM ids
)
SELECT
    row_number() OVER () AS sid,
    md5('trace-' || t) AS trace_id,
    substr(md5('span-' || t || '-' || i), 1, 16) AS span_id,
    CASE WHEN i = 0 THEN NULL ELSE substr(md5('span-' || t || '-' || ((i - 1) // 3)), 1, 16) END AS parent_span_id,
    CASE WHEN i = 0 THEN 'research_workflow'
         WHEN depth = 1 THEN ['planner_agent', 'search_agent', 'writer_agent'][1 + i % 3] || '.invoke'
         WHEN i % 5 = 0 THEN 'agent.decision_point'
         WHEN i % 2 = 0 THEN 'tool.web_search'
         ELSE 'chat gpt-4o' END AS name,
    CASE WHEN i = 0 THEN 'server' WHEN i % 2 = 0 THEN 'client' ELSE 'internal' END AS kind,
    CASE WHEN i % 97 = 13 THEN 'error' ELSE 'unset' END AS status,
    CASE WHEN i % 97 = 13 THEN 'upstream returned 503' ELSE NULL END AS status_message,
    tstart + depth * {ms} + (i % 13) * 10000 AS start_ns,
    tstart + tlen * {ms} - depth * {ms} - (i % 7) * 10000 AS end_ns,
    NULL::BIGINT AS duration_ns,
    'research-assistant' AS service,
    'r1' AS resource_id, 'agents' AS scope_name, '1.0' AS scope_version,
    CASE WHEN i = 0 THEN '{{"workflow.name":"research","request.id":"' || t || '"}}'
         WHEN depth = 1 THEN '{{"agent_name":"agent_' || (i % 3) || '","agent_version":"2.1.0","task":"summarise the findings about topic ' || t || ' for the weekly report"}}'
         WHEN i % 5 = 0 THEN '{{"decision_type":"continue","decision_confidence":0.' || (50 + i % 50) || ',"reasoning":"The evidence gathered so far supports continuing with the current plan rather than asking the user again."}}'
         WHEN i % 2 = 0 THEN '{{"tool.name":"web_search","result_count":' || (i % 30) || ',"search.query":"latest figures for segment ' || i || '"}}'
         ELSE '{{"gen_ai.operation.name":"chat","gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":' || (1000 + i) || ',"gen_ai.usage.output_tokens":' || (100 + i % 400) || '}}'
    END AS attributes,
    CASE WHEN i % 97 = 13 THEN '[{{"name":"exception","time_ns":' || (tstart + 5 * {ms}) || ',"attributes":{{"exception.type":"HTTPError","exception.message":"503 Service Unavailable"}}}}]' ELSE NULL END AS events,
    depth, i = 0 AS is_root,
    CASE WHEN depth = 0 THEN NULL ELSE 'agent_' || (i % 3) END AS agent,
    CASE WHEN depth = 1 THEN 'agent_' || (i % 3) ELSE NULL END AS own_agent,
    CASE WHEN i = 0 THEN 'workflow' WHEN depth = 1 THEN 'agent' WHEN i % 5 = 0 THEN 'decision'
         WHEN i % 2 = 0 THEN 'tool' ELSE 'llm' END AS type,
    CASE WHEN i > 0 AND depth > 1 AND i % 5 <> 0 AND i % 2 = 1 THEN 'gpt-4o' END AS model,
    CASE WHEN i > 0 AND depth > 1 AND i % 5 <> 0 AND i % 2 = 1 THEN 1000 + i END AS input_tokens,
    CASE WHEN i > 0 AND depth > 1 AND i % 5 <> 0 AND i % 2 = 1 THEN 100 + i % 400 END AS output_tokens,
    NULL AS session, 'bench:' || t AS source
FROM d
"""


def build_store(path: Path, traces: int) -> None:
    """The 1M-span store, rows in start order (traces interleaved)."""
    from agtrace.store import Store

    store = Store.open(path, read_only=False)
    con = store.con
    con.execute("BEGIN")
    con.execute("CREATE TEMP TABLE gen AS " + SPANS_SQL.format(big=BIG, small=SMALL, traces=traces, base=BASE_NS, ms=MS))
    con.execute("""
        INSERT INTO spans BY NAME
        SELECT * REPLACE (end_ns - start_ns AS duration_ns) FROM gen ORDER BY start_ns, sid
    """)
    # Three attribute rows per span, as filters would have them.
    con.execute("""
        INSERT INTO attrs
        SELECT sid, 'service.tier', NULL, 'string', 'gold', NULL FROM gen
        UNION ALL SELECT sid, 'step', NULL, 'int', CAST(sid % 40 AS VARCHAR), sid % 40 FROM gen
        UNION ALL SELECT sid, 'cost', NULL, 'double', '0.5', 0.5 FROM gen
    """)
    con.execute("""
        INSERT INTO links
        SELECT sid, 0, trace_id, span_id, trace_id, parent_span_id, 'link', '{"link.kind":"caused_by"}'
        FROM gen WHERE sid % 50 = 7 AND parent_span_id IS NOT NULL
    """)
    con.execute("""
        INSERT INTO traces
        SELECT trace_id, arg_min(span_id, depth), arg_min(name, depth), arg_min(service, depth),
               min(start_ns), max(end_ns), max(end_ns) - min(start_ns), count(*),
               count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE depth = 0),
               list_sort(list_distinct(list(agent) FILTER (WHERE agent IS NOT NULL)))
        FROM gen GROUP BY trace_id
    """)
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    store.close()


def reorder_store(src: Path, dst: Path) -> None:
    """A copy whose spans and links are ordered by trace id (zonemap-friendly)."""
    import duckdb

    shutil.copy(src, dst)
    con = duckdb.connect(str(dst))
    con.execute("BEGIN")
    con.execute("CREATE TABLE spans_sorted AS SELECT * FROM spans ORDER BY trace_id, start_ns")
    con.execute("DROP TABLE spans")
    con.execute("ALTER TABLE spans_sorted RENAME TO spans")
    con.execute("CREATE TABLE links_sorted AS SELECT * FROM links ORDER BY trace_id, sid")
    con.execute("DROP TABLE links")
    con.execute("ALTER TABLE links_sorted RENAME TO links")
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    con.close()


def stages(db: Path, trace_id: str) -> dict[str, float]:
    """Time each stage of `show` inside this process (after imports)."""
    import io

    t0 = time.perf_counter()
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.commands.show import critical_spans
    from agtrace.lookup import resolve_trace_id
    from agtrace.render.waterfall import Waterfall
    from agtrace.store import Store
    from agtrace.trace_fetch import fetch_trace

    out = {"imports": time.perf_counter() - t0}
    t = time.perf_counter()
    store = Store.open(db, read_only=True)
    out["open"] = time.perf_counter() - t
    t = time.perf_counter()
    tid = resolve_trace_id(store.con, trace_id[:10])
    out["resolve"] = time.perf_counter() - t
    t = time.perf_counter()
    data = fetch_trace(store.con, tid)
    out["fetch"] = time.perf_counter() - t
    import gc

    gc.disable()
    t = time.perf_counter()
    tree = build_tree(data.spans)
    rows = flatten(tree)
    out["tree"] = time.perf_counter() - t
    t = time.perf_counter()
    marked, _ = critical_spans(data.spans, tid)
    out["critical_path"] = time.perf_counter() - t
    t = time.perf_counter()
    text = Waterfall(tree, rows, trace_id=tid, width=160, critical=marked).plain()
    io.StringIO().write(text)
    out["render"] = time.perf_counter() - t
    gc.enable()
    store.close()
    return out


def _median_cpu(st) -> float:
    import statistics

    return statistics.median(getattr(r, "cpu_seconds", r.seconds) for r in st.runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=1_000_000, help="store size (default 1,000,000)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dir", type=Path, default=None, help="where to build the stores (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    p.add_argument("--stages", action="store_true", help="also time the stages in-process")
    p.add_argument("--reuse", action="store_true", help="reuse the stores in --dir when they exist")
    args = p.parse_args()

    traces = max(1, (args.spans - BIG) // SMALL)
    work = args.dir or Path(tempfile.mkdtemp(prefix="agtrace-bench-show-"))
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "show_1m.duckdb"
    ordered = work / "show_1m_ordered.duckdb"
    print(f"machine: {describe_machine()}")
    if not (args.reuse and plain.exists() and ordered.exists()):
        for f in (plain, ordered):
            f.unlink(missing_ok=True)
        t = time.perf_counter()
        build_store(plain, traces)
        print(f"built {plain} ({BIG + traces * SMALL:,} spans, {traces + 1:,} traces, "
              f"{plain.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        reorder_store(plain, ordered)
        print(f"built {ordered} (spans ordered by trace_id) in {time.perf_counter() - t:.1f}s")
    else:
        print(f"reusing {plain} and {ordered}")

    import duckdb

    con = duckdb.connect(str(plain), read_only=True)
    big_id = con.execute("SELECT md5('trace-0')").fetchone()[0]
    small_id = con.execute(f"SELECT md5('trace-{traces // 2}')").fetchone()[0]
    con.close()

    env = child_env()
    compile_bytecode()
    subprocess.run([sys.executable, "-m", "agtrace", "show", small_id[:12], "--db", str(plain)], env=env,
                   stdout=subprocess.DEVNULL, check=True)
    results = []
    for label, db in (("interleaved", plain), ("ordered by trace_id", ordered)):
        for what, tid, target in (("40 spans", small_id, 0.5), ("50,000 spans", big_id, 3.0)):
            cmd = [sys.executable, "-m", "agtrace", "show", tid[:12], "--db", str(db), "--width", "160"]
            st = run_repeated(f"show {what} [{label}]", cmd, repeat=args.repeat, stdout_path=work / "out.txt",
                              env=env)
            lines = sum(1 for _ in open(work / "out.txt", encoding="utf-8"))
            results.append((st, target, lines))
            if args.stages:
                s = stages(db, tid)
                print("  stages: " + ", ".join(f"{k} {v * 1000:.0f}ms" for k, v in s.items()))
    base = run_repeated("python -c 'import _duckdb' (floor)", [sys.executable, "-c", "import _duckdb"],
                        repeat=args.repeat, env=env)
    typer_floor = run_repeated("python -c 'import _duckdb, typer' (floor)",
                               [sys.executable, "-c", "import _duckdb, typer"], repeat=args.repeat, env=env)
    print()
    # Wall time is what the target is about; CPU time (user + system of the
    # process) is shown beside it because on a shared machine it is much less
    # disturbed by other processes than the wall clock.
    print("| command | store layout | median wall | min wall | median CPU | target | output lines |")
    print("|---|---|---|---|---|---|---|")
    for st, target, lines in results:
        what, _, layout = st.label.partition(" [")
        print(f"| `agtrace {what}` | {layout.rstrip(']')} | {st.median_s:.2f}s | {st.min_s:.2f}s | "
              f"{_median_cpu(st):.2f}s | < {target:g}s {'ok' if st.median_s < target else 'MISSED'} | {lines} |")
    for st in (base, typer_floor):
        print(f"| `{st.label.split(' (')[0]}` | - | {st.median_s:.2f}s | {st.min_s:.2f}s | {_median_cpu(st):.2f}s "
              f"| - | - |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if not args.keep and args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
