#!/usr/bin/env python3
"""Benchmark of `agtrace stats` on a 1,000,000-span store (whole processes).

Targets (issue 5): `stats --by decision_type` and `stats --by agent --by
decision_type` each under 0.5 s as a whole process, `stats --streaks --by
decision_type` under 2 s, on a store of 1,000,000 spans.

The store is built once, the way a user builds it: `gen_otlp.py` writes an
OTLP/JSON file of N spans (Collector file-exporter shape) and `agtrace load`
loads it; both are skipped when the files exist. Each command then runs
`--repeat` times as a child process (interpreter start-up, imports, store
open, query, output, teardown included) and the median wall time is reported,
with CPU time, which a busy machine disturbs less.

`--plans` also times, in-process, the SQL shapes that stats.py chose between
for an attribute group key: joining `attrs` on (sid, key) versus
`agtrace.query.field_expr`'s correlated scalar subqueries.

    PYTHONPATH=cli python benchmarks/bench_stats.py [--spans 1000000] [--repeat 5] [--plans] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA_DIR, child_env, compile_bytecode, describe_machine, machine, run_repeated  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ("by decision_type", ["--by", "decision_type"], 0.5),
    ("by agent, decision_type", ["--by", "agent", "--by", "decision_type"], 0.5),
    ("streaks by decision_type", ["--streaks", "--by", "decision_type"], 2.0),
    ("by agent (tokens)", ["--by", "agent"], None),
    ("traces, escalation rate", ["--traces", "--rate", 'decision_type = "escalate"'], None),
    ("timeline 1h by decision_type", ["--timeline", "--by", "decision_type", "--every", "1h"], None),
    ("by decision_type, where + metric", ["--by", "decision_type", "--where", "decision_confidence < 0.7",
                                          "--metric", "decision_confidence"], None),
]


def agtrace_cmd() -> list[str]:
    return [sys.executable, "-m", "agtrace"]



def build_store(spans: int, data: Path, store: Path) -> None:
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        print(f"generating {data} ({spans:,} spans)...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_otlp.py"), "--spans", str(spans),
                        "--out", str(data)], check=True)
    if not store.exists():
        print(f"loading {data} into {store}...", file=sys.stderr)
        t0 = time.perf_counter()
        subprocess.run(agtrace_cmd() + ["load", "--db", str(store), str(data)], check=True, env=child_env(),
                       stdout=subprocess.DEVNULL)
        print(f"  loaded in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def time_plans(store: Path, repeat: int) -> list[dict]:
    """In-process timings of the attribute group-key SQL shapes (median of `repeat`)."""
    import duckdb

    from agtrace.query import field_expr

    con = duckdb.connect(str(store), read_only=True)
    aggs = ("count(*), count(*) FILTER (WHERE s.status = 'error'), avg(s.duration_ns), "
            "quantile_cont(s.duration_ns, [0.5, 0.95, 0.99]), max(s.duration_ns)")
    key_sql, key_params = field_expr("decision_type")
    plans = {
        "join attrs on (sid, key)": (
            f"SELECT k.str_val, {aggs} FROM spans s JOIN attrs k ON k.sid = s.sid AND k.key = ? "
            f"AND coalesce(k.idx, 0) = 0 GROUP BY 1", ["decision_type"]),
        "field_expr (correlated subqueries)": (
            f"SELECT g, {aggs} FROM (SELECT {key_sql} AS g, s.* FROM spans s) s WHERE g IS NOT NULL GROUP BY 1",
            key_params),
        "join + confidence joins": (
            f"SELECT k.str_val, {aggs}, avg(coalesce(c1.num_val, c2.num_val)) FROM spans s "
            f"JOIN attrs k ON k.sid = s.sid AND k.key = ? AND coalesce(k.idx, 0) = 0 "
            f"LEFT JOIN attrs c1 ON c1.sid = s.sid AND c1.key = 'decision_confidence' AND c1.idx IS NULL "
            f"LEFT JOIN attrs c2 ON c2.sid = s.sid AND c2.key = 'confidence' AND c2.idx IS NULL GROUP BY 1",
            ["decision_type"]),
    }
    out = []
    for label, (sql, params) in plans.items():
        con.execute(sql, params).fetchall()  # warm
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            con.execute(sql, params).fetchall()
            times.append(time.perf_counter() - t0)
        out.append({"label": label, "median_s": round(statistics.median(times), 4),
                    "runs_s": [round(t, 4) for t in times]})
        print(f"  plan {label}: median {statistics.median(times) * 1000:.0f} ms", file=sys.stderr)
    con.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--data", type=Path, help="OTLP file (default benchmarks/data/otlp_<N>.jsonl)")
    ap.add_argument("--store", type=Path, help="store file (default benchmarks/data/stats_<N>.duckdb)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--plans", action="store_true", help="also time the SQL shapes in-process")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args(argv)
    compile_bytecode()

    tag = f"{args.spans // 1000}k" if args.spans % 1_000_000 else f"{args.spans // 1_000_000}m"
    data = args.data or DATA_DIR / f"otlp_{tag}.jsonl"
    store = args.store or DATA_DIR / f"stats_{tag}.duckdb"
    build_store(args.spans, data, store)

    print(describe_machine())
    results = []
    failed = False
    # The floor: the same command on the 285-span sample store, i.e. start-up,
    # imports, store open and teardown with a trivial query.
    small = store.with_name("stats_samples.duckdb")
    if not small.exists():
        subprocess.run(agtrace_cmd() + ["load", "--db", str(small), str(ROOT / "sample_traces")], check=True,
                       env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    floor = run_repeated("floor: by decision_type on 285 spans",
                         agtrace_cmd() + ["stats", "--db", str(small), "--format", "json", "--by", "decision_type"],
                         repeat=args.repeat, env=child_env())
    print(floor.summary())
    d = floor.as_dict()
    d["target_s"] = None
    results.append(d)
    for label, extra, target in COMMANDS:
        cmd = agtrace_cmd() + ["stats", "--db", str(store), "--format", "json", *extra]
        st = run_repeated(label, cmd, repeat=args.repeat, env=child_env())
        ok = target is None or st.median_s < target
        failed |= not ok
        line = st.summary() + (f"  target < {target}s: {'ok' if ok else 'MISSED'}" if target else "")
        print(line)
        d = st.as_dict()
        d["target_s"] = target
        results.append(d)
    plans = time_plans(store, args.repeat) if args.plans else []
    for p in plans:
        print(f"plan {p['label']}: median {p['median_s'] * 1000:.0f} ms (in-process, warm)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "spans": args.spans, "store": str(store),
                                         "commands": results, "plans": plans}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
