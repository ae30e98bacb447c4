#!/usr/bin/env python3
"""Whole-process benchmark of `agtrace bottlenecks` and `agtrace critical-path`.

Targets (issue 6): `agtrace bottlenecks` over 25,000 traces / 1,000,000 spans
in under 10 s, and `agtrace critical-path` of one 100,000-span trace in
under 2 s, each as a whole process (interpreter start-up, imports, store open,
query, analysis, output and teardown).

The stores are built the way a user builds them, once, and kept in
benchmarks/data/ (git-ignored):

* `otlp_1m.jsonl` from `gen_otlp.py --spans 1000000` (about 25,000 traces of
  about 40 spans: a coordinator fanning out to parallel research agents, sync
  spans, a synthesis agent), loaded by `agtrace load` into `b1m.duckdb`;
* `big_trace_100k.jsonl`, written here: one trace of exactly 100,000 spans in
  agtrace's flat JSONL (a workflow root, a planner, 40 research agents in
  parallel, each looping over iterations of an LLM call followed by 1-3
  parallel tool calls and a sync span, then a synthesis agent), loaded into
  `cp100k.duckdb` together with the 1M-span file, so the trace is looked up
  in a store of 1.1 million spans.

Each command runs `--repeat` times as a child process (`common.run_repeated`);
medians of wall and CPU time (user + system of the child; DuckDB's threads
make it exceed wall time) are printed. CPU time is the figure to compare on a
busy machine; `--max-load L` waits for a 1-minute load average of at most L
before each run. The floor is the same commands on the 51-span
market-research sample: start-up and teardown with no work.

    PYTHONPATH=cli python benchmarks/bench_bottlenecks.py [--repeat 5] [--max-load 1.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA_DIR, child_env, compile_bytecode, describe_machine, machine, run_repeated  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIG_TRACE = "b16b16b16b16b16b16b16b16b16b1600"
BIG_SPANS = 100_000
BASE_NS = 1_705_313_700_000_000_000  # 2024-01-15T10:15:00Z
MS = 1_000_000


def agtrace_cmd() -> list[str]:
    return [sys.executable, "-m", "agtrace"]



def load(store: Path, *files: Path) -> None:
    print(f"loading {', '.join(f.name for f in files)} into {store}...", file=sys.stderr)
    t0 = time.perf_counter()
    subprocess.run(agtrace_cmd() + ["load", "--db", str(store), *map(str, files)], check=True, env=child_env(),
                   stdout=subprocess.DEVNULL)
    print(f"  loaded in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def big_trace(path: Path, n: int = BIG_SPANS, agents: int = 40, seed: int = 6) -> None:
    """One trace of exactly n spans as flat JSONL (see the module docstring)."""
    rng = random.Random(seed)
    out = []

    def add(parent: str | None, name: str, start: int, end: int, agent: str | None = None, **attrs) -> str:
        sid = f"{len(out) + 1:016x}"
        if agent:
            attrs["agent_name"] = agent
        out.append({"trace_id": BIG_TRACE, "span_id": sid, "parent_span_id": parent, "name": name,
                    "start": BASE_NS + start, "end": BASE_NS + end, "service": "deep-research",
                    "attributes": attrs})
        return sid

    root = add(None, "deep_research.run", 0, 0)
    add(root, "planner_agent.invoke", 5 * MS, 1_500 * MS, "planner_agent")
    fan_start = 1_600 * MS
    budget = n - 6 - agents  # root, planner, sync, synthesis + its llm, decision; one invoke per agent
    per_agent = budget // agents
    join = fan_start
    for a in range(agents):
        name = f"research_agent_{a:02d}"
        inv = add(root, f"{name}.invoke", fan_start + a * MS, fan_start + a * MS, name)
        left = per_agent + (budget - per_agent * agents if a == agents - 1 else 0)
        t = fan_start + a * MS + rng.randrange(1, 20) * MS
        it = 0
        while left > 0:
            it += 1
            tools = min(rng.randint(1, 3), max(left - 3, 0))
            size = 2 + tools + (1 if tools > 1 else 0)  # iteration, llm, tools, sync if parallel
            if size > left:  # the last few spans: plain tool calls in sequence
                for _ in range(left):
                    d = rng.randrange(20, 400) * MS
                    add(inv, "tool.web_search", t, t + d, name, result_count=rng.randrange(0, 30))
                    t += d + MS
                left = 0
                break
            s0 = t
            itr = add(inv, f"reasoning_iteration_{it}", s0, s0)
            d = rng.randrange(200, 3_000) * MS
            add(itr, "chat gpt-4o", t + MS, t + MS + d, name, **{"gen_ai.request.model": "gpt-4o"})
            t += d + 2 * MS
            ends = []
            for k in range(tools):
                d = rng.randrange(50, 2_500) * MS
                add(itr, "tool.web_search" if k % 2 == 0 else "execute_tool kb_search", t + k * MS,
                    t + k * MS + d, name, result_count=rng.randrange(0, 30))
                ends.append(t + k * MS + d)
            if tools > 1:
                add(itr, "agent.sync", t, max(ends), name, sync_point=True)
            t = max(ends, default=t) + MS
            out[int(itr, 16) - 1]["end"] = BASE_NS + t
            left -= size
            t += MS
        out[int(inv, 16) - 1]["end"] = BASE_NS + t + MS
        join = max(join, t + MS)
    add(root, "agent.sync", fan_start, join, None, sync_point=True)
    syn = add(root, "synthesis_agent.invoke", join + 5 * MS, join + 9_000 * MS, "synthesis_agent")
    add(syn, "chat gpt-4o", join + 10 * MS, join + 8_500 * MS, "synthesis_agent")
    add(syn, "agent.decision_point", join + 8_510 * MS, join + 8_900 * MS, "synthesis_agent",
        decision_type="approve", decision_confidence=0.9)
    out[0]["end"] = BASE_NS + join + 9_100 * MS
    assert len(out) == n, len(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for span in out:
            f.write(json.dumps(span, separators=(",", ":")) + "\n")


def build(data_dir: Path) -> tuple[Path, Path, Path]:
    otlp = data_dir / "otlp_1m.jsonl"
    b1m = data_dir / "b1m.duckdb"
    flat = data_dir / "big_trace_100k.jsonl"
    cp = data_dir / "cp100k.duckdb"
    small = data_dir / "market_research.duckdb"
    if not otlp.exists():
        print(f"generating {otlp}...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_otlp.py"), "--spans", "1000000",
                        "--out", str(otlp)], check=True)
    if not b1m.exists():
        load(b1m, otlp)
    if not flat.exists():
        big_trace(flat)
    if not cp.exists():
        load(cp, otlp, flat)
    if not small.exists():
        load(small, ROOT / "sample_traces" / "market_research.jsonl")
    return b1m, cp, small


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-load", type=float, default=None,
                    help="wait for a 1-minute load average at most this before each run")
    ap.add_argument("--data", type=Path, default=DATA_DIR, help="where the generated files and stores go")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args(argv)
    compile_bytecode()

    b1m, cp, small = build(args.data)
    print(describe_machine())
    sample = "592ff49b"
    cases = [
        ("floor: bottlenecks, 51 spans", ["bottlenecks", "--db", str(small)], None),
        ("floor: critical-path, 17 spans", ["critical-path", "--db", str(small), sample], None),
        ("bottlenecks by name, 1M spans (table)", ["bottlenecks", "--db", str(b1m)], 10.0),
        ("bottlenecks --by agent, 1M spans (json)", ["bottlenecks", "--db", str(b1m), "--by", "agent",
                                                     "--format", "json"], 10.0),
        ("bottlenecks --where, 1M spans", ["bottlenecks", "--db", str(b1m), "--where",
                                           'service = "research-workers"'], 10.0),
        ("bottlenecks --what-if llm x2, 1M spans", ["bottlenecks", "--db", str(b1m), "--what-if",
                                                    'gen_ai.request.model = "gpt-4o"', "--speedup", "2",
                                                    "--format", "json"], 10.0),
        ("critical-path, 100k-span trace (table)", ["critical-path", "--db", str(cp), BIG_TRACE[:12]], 2.0),
        ("critical-path, 100k-span trace (json)", ["critical-path", "--db", str(cp), BIG_TRACE[:12],
                                                   "--format", "json"], 2.0),
    ]
    results, failed = [], False
    for label, extra, target in cases:
        st = run_repeated(label, agtrace_cmd() + extra, repeat=args.repeat, env=child_env(), max_load=args.max_load)
        ok = target is None or st.median_s < target
        failed |= not ok
        print(st.summary() + (f"  target < {target:g}s: {'ok' if ok else 'MISSED'}" if target else ""))
        d = st.as_dict()
        d["target_s"] = target
        results.append(d)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "commands": results}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
