#!/usr/bin/env python3
"""Does a 5,000,000-span store answer as fast, scaled no worse than linearly?

`query --count`, `stats` and `traces` run as whole processes (start-up,
imports, store open, query, output) on a 1,000,000-span store and on a
5,000,000-span one, `--repeat` times each; the report gives both medians and
their ratio. Linear scaling is a ratio of 5 or less; the targets set for
1,000,000 spans (stats --by under 0.5 s, --streaks under 2 s: issue 5) are
shown scaled by 5 next to the 5M figure.

The 1M store is loaded the way a user loads one (benchmarks/gen_otlp.py, then
`agtrace load`). The 5M store is that store plus four copies of its traces
under new trace ids, made with SQL in one transaction per copy: the same
shape as five loads of the same workload (each copy's attrs rows are written
in key order, as a load writes them), in seconds instead of many minutes.
`--real` loads four more generated files instead.

    python benchmarks/bench_scale.py [--base 1000000] [--factor 5] [--repeat 3] [--real] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import DATA_DIR, child_env, compile_bytecode, describe_machine, machine, run_repeated  # noqa: E402

COMMANDS = [
    # (label, arguments, target at 1M spans in seconds or None)
    ("query --count (all spans)", ["query", "--count"], None),
    ("query --count attribute filter", ["query", "--count", 'decision_type = "escalate"'], None),
    ("query --count regex on name", ["query", "--count", 'name =~ "^tool\\\\."'], None),
    ("query --count status and duration", ["query", "--count", "status = error and duration_ms > 1000"], None),
    ("query --count structural", ["query", "--count", 'type = "llm" and has_ancestor(name =~ "coordinator")'], None),
    ("stats --by decision_type", ["stats", "--format", "json", "--by", "decision_type"], 0.5),
    ("stats --by agent --by decision_type", ["stats", "--format", "json", "--by", "agent", "--by", "decision_type"], 0.5),
    ("stats --streaks --by decision_type", ["stats", "--format", "json", "--streaks", "--by", "decision_type"], 2.0),
    ("traces (first 50)", ["traces"], None),
    ("traces --format json (all)", ["traces", "--format", "json"], None),
    ("traces --sort duration --limit 20", ["traces", "--sort", "duration", "--limit", "20"], None),
]



def agtrace(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agtrace", *args], env=child_env(), check=check,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def generate(spans: int, path: Path, seed: int) -> None:
    if path.exists():
        return
    print(f"generating {path} ({spans:,} spans) ...", file=sys.stderr)
    subprocess.run([sys.executable, str(HERE / "gen_otlp.py"), "--spans", str(spans), "--out", str(path),
                    "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)


def build_base(spans: int, store: Path) -> None:
    if store.exists():
        return
    tag = f"{spans // 1_000_000}m" if spans % 1_000_000 == 0 else f"{spans // 1000}k"
    data = DATA_DIR / f"otlp_{tag}.jsonl"
    generate(spans, data, seed=1)
    print(f"loading {data} into {store} ...", file=sys.stderr)
    t0 = time.perf_counter()
    agtrace("load", "--db", str(store), str(data), "-q")
    print(f"  loaded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def replicate(base: Path, store: Path, factor: int) -> None:
    """`store` = `base` plus factor-1 copies of its traces under new trace ids."""
    if store.exists():
        return
    import duckdb

    tmp = store.with_suffix(".building")
    shutil.copyfile(base, tmp)
    con = duckdb.connect(str(tmp))
    top = con.execute("SELECT max(sid) FROM spans").fetchone()[0]
    # A new trace id per copy: the hex digits of md5(trace_id || copy), so ids stay 32 lowercase hex.
    new_id = "md5(trace_id || '/' || $k)"
    for k in range(1, factor):
        print(f"  copy {k} of {factor - 1} ...", file=sys.stderr)
        off = k * top
        con.execute("BEGIN")
        con.execute(f"""
            INSERT INTO spans BY NAME SELECT * REPLACE (sid + $off AS sid, parent_sid + $off AS parent_sid,
                   {new_id} AS trace_id)
            FROM spans WHERE sid <= $top ORDER BY sid""", {"off": off, "top": top, "k": k})
        con.execute("""INSERT INTO attrs SELECT * REPLACE (sid + $off AS sid) FROM attrs WHERE sid <= $top
                       ORDER BY key, sid""", {"off": off, "top": top})
        con.execute(f"""INSERT INTO links SELECT * REPLACE (sid + $off AS sid, {new_id} AS trace_id)
                        FROM links WHERE sid <= $top""", {"off": off, "top": top, "k": k})
        con.execute(f"""INSERT INTO traces SELECT * REPLACE ({new_id} AS trace_id)
                        FROM traces WHERE trace_id IN (SELECT trace_id FROM spans WHERE sid <= $top)""",
                    {"top": top, "k": k})
        con.execute("COMMIT")
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(store)


def build_real(base: Path, store: Path, spans: int, factor: int) -> None:
    if store.exists():
        return
    shutil.copyfile(base, store.with_suffix(".building"))
    for k in range(1, factor):
        data = DATA_DIR / f"otlp_scale_{spans}_{k}.jsonl"
        generate(spans, data, seed=100 + k)
        agtrace("load", "--db", str(store.with_suffix(".building")), str(data), "-q")
    store.with_suffix(".building").rename(store)


def counts(store: Path) -> tuple[int, int]:
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM traces)").fetchone()
    finally:
        con.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=1_000_000, help="spans in the small store (default 1,000,000)")
    ap.add_argument("--factor", type=int, default=5, help="the big store has factor x base spans (default 5)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--real", action="store_true", help="build the big store by loading generated files")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--replicate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    compile_bytecode()

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    small = DATA_DIR / f"scale_{args.base}.duckdb"
    big = DATA_DIR / f"scale_{args.base}x{args.factor}{'_real' if args.real else ''}.duckdb"
    if args.replicate_only:
        replicate(small, big, args.factor)
        return 0
    build_base(args.base, small)
    if args.real:
        build_real(small, big, args.base, args.factor)
    elif not big.exists():
        # In a child process: a forked child's peak RSS starts from its parent's,
        # so this process must stay small for the per-command figures to be true.
        subprocess.run([sys.executable, __file__, "--replicate-only", "--base", str(args.base),
                        "--factor", str(args.factor)], check=True)
    sizes = {small: counts(small), big: counts(big)}
    print(describe_machine())
    for s, (n, t) in sizes.items():
        print(f"{s.name}: {n:,} spans in {t:,} traces, {s.stat().st_size / 2**20:,.0f} MB")

    rows = []
    for label, cmd, target in COMMANDS:
        res = {}
        for store in (small, big):
            full = [sys.executable, "-m", "agtrace", cmd[0], "--db", str(store), *cmd[1:]]
            res[store] = run_repeated(f"{label} [{sizes[store][0]:,}]", full, repeat=args.repeat, env=child_env())
        a, b = res[small], res[big]
        ratio = b.median_s / a.median_s
        rows.append({
            "command": label, "args": cmd, "small_s": round(a.median_s, 3), "big_s": round(b.median_s, 3),
            "small_cpu_s": round(a.median_cpu_s, 3), "big_cpu_s": round(b.median_cpu_s, 3),
            "ratio": round(ratio, 2), "target_1m_s": target,
            "scaled_target_s": None if target is None else target * args.factor,
            "peak_rss_mb_big": round(b.peak_rss_mb),
        })
        print(f"{label}: {a.median_s:.2f} s -> {b.median_s:.2f} s (x{ratio:.2f})", file=sys.stderr)

    n_small, n_big = sizes[small][0], sizes[big][0]
    print(f"\n| command | {n_small:,} spans | {n_big:,} spans | ratio (linear = {n_big / n_small:.0f}) | "
          f"target scaled x{args.factor} | peak RSS at {n_big:,} |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for r in rows:
        tgt = "" if r["scaled_target_s"] is None else (
            f"< {r['scaled_target_s']:g} s: {'ok' if r['big_s'] < r['scaled_target_s'] else 'MISSED'}")
        print(f"| `{r['command']}` | {r['small_s']:.2f} s | {r['big_s']:.2f} s | {r['ratio']:.2f} | {tgt} | "
              f"{r['peak_rss_mb_big']} MB |")
        worst = max(worst, r["ratio"])
    linear = n_big / n_small
    print(f"\nworst ratio {worst:.2f} (linear would be {linear:.0f}): {'no worse than linear' if worst <= linear else 'WORSE than linear'}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "small": {"store": str(small), "spans": n_small},
                                         "big": {"store": str(big), "spans": n_big, "real_loads": args.real},
                                         "commands": rows}, indent=2) + "\n")
    return 0 if worst <= linear else 1


if __name__ == "__main__":
    sys.exit(main())
