"""Micro-benchmarks of the critical-path core (not a test; prints medians).

    PYTHONPATH=cli python benchmarks/bench_critical_path.py [--repeat 5] [--store]

* one 100,000-span trace (random tree with fan-outs and sequences), a
  100,000-deep chain and a 100,000-wide fan-out: `analyze_columns` end to end;
* 25,000 traces x 40 spans aggregated by name in pure Python
  (`BottleneckAccumulator`), i.e. the per-trace work of `agtrace bottlenecks`;
* with --store: the same 1,000,000 spans in an in-memory DuckDB store (with 3
  attribute rows per span), then `bottlenecks(store)` and `what_if_store`
  timed including the query and the Arrow fetch;
* with --whole-process DB: a fresh interpreter opening that store file (built
  from the same traces if missing) and running bottlenecks, timed end to end.

Times are wall-clock medians; on a shared machine compare them with care.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from agtrace.analysis.bottlenecks import BottleneckAccumulator, bottlenecks, what_if_store  # noqa: E402
from agtrace.analysis.critical_path import TraceColumns, analyze_columns, gc_paused  # noqa: E402

MS = 1_000_000
NAMES = ["llm.chat", "tool.search", "tool.fetch", "retrieval.query", "decide", "tool.code"]
AGENTS = ["planner", "researcher", "coder", "critic"]


def random_tree(rng: random.Random, n: int) -> dict[str, list]:
    """n spans: each new span hangs under a recent one; children are laid out
    in sequence with some overlap (fan-outs) inside their parent."""
    parents = [None]
    for i in range(1, n):
        parents.append(rng.randrange(max(0, i - 50), i))
    kids: list[list[int]] = [[] for _ in range(n)]
    for i in range(1, n):
        kids[parents[i]].append(i)
    starts = [0] * n
    ends = [0] * n
    ends[0] = 10_000 * MS
    for p in range(n):  # parents come before their children
        k = kids[p]
        if not k:
            continue
        s, e = starts[p], ends[p]
        step = max(1, (e - s) // (len(k) + 1))
        t = s
        for c in k:
            cs = t + rng.randrange(0, step // 4 + 1)
            ce = min(e, cs + rng.randrange(1, 2 * step + 2))
            starts[c], ends[c] = cs, max(ce, cs + 1)
            t += step if rng.random() < 0.6 else 0
    return {
        "ids": [f"{i:016x}" for i in range(n)],
        "parents": [None if p is None else f"{p:016x}" for p in parents],
        "starts": starts, "ends": ends,
        "names": [NAMES[i % len(NAMES)] for i in range(n)],
        "kinds": ["internal"] * n,
    }


def agent_trace(rng: random.Random, n: int = 40) -> dict[str, list]:
    """An orchestrator fanning out to agents that call tools/LLMs in sequence,
    a wait span at the join, then a synthesis step: exactly n spans."""
    ids, parents, names, starts, ends, agents = [], [], [], [], [], []

    def add(parent, name, s, e, agent):
        ids.append(f"{len(ids):016x}")
        parents.append(None if parent is None else ids[parent])
        names.append(name)
        starts.append(s)
        ends.append(e)
        agents.append(agent)
        return len(ids) - 1

    total = 60_000 * MS
    root = add(None, "orchestrator.run", 0, total, "orchestrator")
    add(root, "llm.plan", 100 * MS, 2_000 * MS, "orchestrator")
    fan_start = 2_100 * MS
    remaining = n - 5  # root, plan, wait, synth, synth llm
    n_agents = 3
    per_agent = remaining // n_agents
    join = fan_start
    for a in range(n_agents):
        calls = per_agent - 1 if a < n_agents - 1 else remaining - per_agent * (n_agents - 1) - 1
        agent_end = fan_start
        a_idx = add(root, f"{AGENTS[a]}.invoke", fan_start, fan_start, AGENTS[a])
        t = fan_start + rng.randrange(1, 50) * MS
        for _ in range(calls):
            d = rng.randrange(50, 2_500) * MS
            add(a_idx, rng.choice(NAMES), t, t + d, AGENTS[a])
            t += d + rng.randrange(1, 30) * MS
        agent_end = t
        ends[a_idx] = agent_end
        join = max(join, agent_end)
    add(root, "wait_for_agents", fan_start, join, "orchestrator")
    synth = add(root, "synthesize", join + 5 * MS, join + 4_000 * MS, "orchestrator")
    add(synth, "llm.chat", join + 10 * MS, join + 3_900 * MS, "orchestrator")
    ends[root] = join + 4_100 * MS
    assert len(ids) == n, len(ids)
    return {"ids": ids, "parents": parents, "names": names, "starts": starts, "ends": ends,
            "agents": agents, "kinds": ["internal"] * n}


def chain(n: int) -> dict[str, list]:
    return {
        "ids": [str(i) for i in range(n)],
        "parents": [None] + [str(i - 1) for i in range(1, n)],
        "starts": list(range(n)), "ends": [2 * n - i for i in range(n)],
        "names": ["step"] * n, "kinds": ["internal"] * n,
    }


def wide(n: int) -> dict[str, list]:
    return {
        "ids": [str(i) for i in range(n)],
        "parents": [None] + ["0"] * (n - 1),
        "starts": [0] + [i * 10 for i in range(1, n)], "ends": [n * 10 + 100] + [i * 10 + 25 for i in range(1, n)],
        "names": ["root"] + ["branch"] * (n - 1), "kinds": ["internal"] * n,
    }


def columns(d: dict[str, list]) -> TraceColumns:
    return TraceColumns(list(d["ids"]), list(d["parents"]), list(d["starts"]), list(d["ends"]),
                        d["kinds"], d["names"], d.get("agents"))


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall seconds of `repeat` runs (and the last result); the median
    CPU seconds of this process and its children go to LAST_CPU, because on a
    shared machine wall time says more about the neighbours than about us."""
    global LAST_CPU
    times, cpu = [], []
    out = None
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                   + (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime))
    LAST_CPU = statistics.median(cpu)
    return statistics.median(times), out


LAST_CPU = 0.0


def bench_single(repeat: int) -> None:
    rng = random.Random(1)
    for label, data in (("random tree", random_tree(rng, 100_000)), ("deep chain", chain(100_000)),
                        ("wide fan-out", wide(100_000))):
        for fan in (False, True):
            t, res = timed(lambda: analyze_columns(columns(data), "t", with_fanouts=fan), repeat)
            print(f"critical path, 100,000-span {label:12s} fanouts={fan!s:5s}: median {t * 1000:7.1f} ms "
                  f"(cpu {LAST_CPU * 1000:7.1f} ms; {len(res.primary.sections)} sections)")


def bench_aggregate(repeat: int, n_traces: int = 25_000) -> list[dict]:
    rng = random.Random(2)
    traces = [agent_trace(rng) for _ in range(n_traces)]

    def run():  # as bottlenecks(store) does, minus the fetch
        acc = BottleneckAccumulator("name")
        with gc_paused():
            for k, d in enumerate(traces):
                cols = TraceColumns(d["ids"][:], d["parents"][:], d["starts"][:], d["ends"][:], d["kinds"],
                                    waits=[False] * len(d["ids"]))
                acc.add(str(k), cols, d["names"])
        return acc.report()

    t, rep = timed(run, repeat)
    spans = sum(len(d["ids"]) for d in traces)
    print(f"aggregation, {n_traces:,} traces x 40 spans (pure Python): median {t:6.2f} s "
          f"(cpu {LAST_CPU:.2f} s = {LAST_CPU / spans * 1e6:.2f} us/span); top: {rep.rows[0].key} "
          f"{rep.rows[0].share:.3f}")
    return traces


def build_store(traces: list[dict], path: str | None = None):
    """The traces in a store (in memory, or a file), with 3 attribute rows per span."""
    import pyarrow as pa

    from agtrace.store import Store

    store = Store.memory() if path is None else Store.open(path, read_only=False)
    cols: dict[str, list] = {k: [] for k in ("sid", "trace_id", "span_id", "parent_span_id", "name", "kind",
                                             "start_ns", "end_ns", "agent", "type")}
    sid = 0
    for k, d in enumerate(traces):
        tid = f"{k:032x}"
        for i in range(len(d["ids"])):
            cols["sid"].append(sid)
            sid += 1
            cols["trace_id"].append(tid)
            cols["span_id"].append(d["ids"][i])
            cols["parent_span_id"].append(d["parents"][i])
            cols["name"].append(d["names"][i])
            cols["kind"].append("internal")
            cols["start_ns"].append(d["starts"][i])
            cols["end_ns"].append(d["ends"][i])
            cols["agent"].append(d["agents"][i])
            cols["type"].append("tool")
    tbl = pa.table(cols)
    con = store.con
    con.register("bench_spans", tbl)
    con.execute(f"INSERT INTO spans ({', '.join(cols)}) SELECT * FROM bench_spans")
    con.execute("""INSERT INTO attrs SELECT sid, k.key, NULL, 'string', 'v' || (sid % 97)::VARCHAR, NULL
                   FROM spans, (VALUES ('gen_ai.system'), ('gen_ai.request.model'), ('session.id')) k(key)""")
    con.unregister("bench_spans")
    return store, sid


def bench_store(traces: list[dict], repeat: int) -> None:
    store, n_spans = build_store(traces)
    t, rep = timed(lambda: bottlenecks(store, by="name"), repeat)
    print(f"bottlenecks(store) over {rep.traces_analysed:,} traces / {n_spans:,} spans: median {t:6.2f} s "
          f"(cpu {LAST_CPU:.2f} s)")
    t, rep = timed(lambda: bottlenecks(store, "s.name = ?", ["tool.code"], by="agent"), repeat)
    print(f"bottlenecks(store, where name = tool.code, by agent) over {rep.traces_analysed:,} traces: "
          f"median {t:6.2f} s (cpu {LAST_CPU:.2f} s)")
    t, wi = timed(lambda: what_if_store(store, None, (), "s.name = ?", ["llm.chat"], speedup=2), repeat)
    agg = wi.aggregate()
    print(f"what_if_store(llm.chat x2) over {agg['traces']:,} traces: median {t:6.2f} s (cpu {LAST_CPU:.2f} s); "
          f"p50 {agg['before_p50_ms']:.0f} -> {agg['after_p50_ms']:.0f} ms")


WHOLE_PROCESS = """
import sys
sys.path.insert(0, {cli!r})
from agtrace.store import Store
from agtrace.analysis.bottlenecks import bottlenecks
rep = bottlenecks(Store.open({db!r}, read_only=True), by="name", top=10)
print(rep.traces_analysed, rep.rows[0].key)
"""


def bench_whole_process(traces: list[dict], db: Path, repeat: int) -> None:
    """A fresh interpreter that imports agtrace, opens the store file and runs
    bottlenecks: the budget the issue states (under 10 s for 1M spans)."""
    import subprocess

    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        store, _ = build_store(traces, str(db))
        store.con.close()
    code = WHOLE_PROCESS.format(cli=str(Path(__file__).resolve().parents[1] / "cli"), db=str(db))
    t, out = timed(lambda: subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                          text=True).stdout.strip(), repeat)
    print(f"whole process (python start, open {db.name}, bottlenecks --top 10): median {t:6.2f} s "
          f"(cpu {LAST_CPU:.2f} s) [{out}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--store", action="store_true", help="also time the DuckDB path (needs ~2 GB RAM)")
    ap.add_argument("--whole-process", metavar="DB", type=Path,
                    help="time a fresh process running bottlenecks on store file DB (built if missing)")
    args = ap.parse_args()
    bench_single(args.repeat)
    traces = bench_aggregate(args.repeat)
    if args.store:
        bench_store(traces, args.repeat)
    if args.whole_process:
        bench_whole_process(traces, args.whole_process, args.repeat)


if __name__ == "__main__":
    main()
