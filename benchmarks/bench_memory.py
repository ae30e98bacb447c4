"""Peak memory of `agtrace load` on a big file: does loading stream?

Target: under 600 MB for a 2 GB Collector-style OTLP/JSON file.

Each configuration runs `agtrace load --db NEW FILE -q` as its own process
under `/usr/bin/time -v` (its "Maximum resident set size" is the main
process, or the largest single process of the tree, never a sum), while a
sampler reads /proc every 50 ms and records the peak of the *sum* over the
process and all its descendants, both RSS (what `top` shows, counting shared
library pages once per process) and PSS (shared pages divided among the
processes that map them: the honest total). Configurations:

* `sequential`: AGTRACE_WORKERS=0, one process parses everything;
* `pool`: the default, big line-delimited files parsed by a process pool of
  min(cores, 4) workers (AGTRACE_WORKERS=N to force a count).

    python benchmarks/bench_memory.py                      # 2 GB input, generated once into benchmarks/data/
    python benchmarks/bench_memory.py --size-mb 200        # a quicker look
    python benchmarks/bench_memory.py --input FILE --configs sequential

The input is written by benchmarks/gen_otlp.py (via tests/corpus_build.py)
and kept in benchmarks/data/ (git-ignored) for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))

from common import DATA_DIR, describe_machine  # noqa: E402

TARGET_MB = 600


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak of sum(RSS) and sum(PSS) over a process tree, and the most processes seen."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.max_procs = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _tree(self.pid)
            rss = sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids)
            pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.max_procs = max(self.max_procs, len(pids))
            time.sleep(self.interval)


def measure(label: str, input_path: Path, env_extra: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="agtrace-mem-") as d:
        db = Path(d) / "store.duckdb"
        env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT / "cli") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("AGTRACE_MEMORY_LIMIT", None)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "agtrace", "load", "--db", str(db), str(input_path),
               "--format", "json"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        out, err = proc.communicate()
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"{label}: load failed ({proc.returncode}):\n{err[-3000:]}")
        report = json.loads(out)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
        time_rss_kb = int(m.group(1)) if m else 0
        return {
            "config": label,
            "env": env_extra,
            "seconds": round(seconds, 1),
            "spans": report["spans_added"],
            "spans_per_s": round(report["spans_added"] / seconds),
            "max_rss_mb_time_v": round(time_rss_kb / 1024),
            "peak_tree_rss_mb": round(sampler.peak_rss_kb / 1024),
            "peak_tree_pss_mb": round(sampler.peak_pss_kb / 1024),
            "processes": sampler.max_procs - 1,  # /usr/bin/time itself is the root
            "store_mb": round(db.stat().st_size / 2**20),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048, help="size of the generated input (default 2048)")
    ap.add_argument("--input", type=Path, help="use this file instead of generating one")
    ap.add_argument("--configs", default="sequential,pool", help="comma-separated: sequential, pool")
    ap.add_argument("--workers", type=int, default=None, help="pool size (default: agtrace's own choice)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    if args.input:
        path = args.input
    else:
        import corpus_build

        path = DATA_DIR / f"otlp_{args.size_mb}mb.jsonl"
        if not path.exists():
            DATA_DIR.mkdir(parents=True, exist_ok=True)
            print(f"generating {path} ...", file=sys.stderr)
            corpus_build.big_otlp_file(path, args.size_mb << 20)
    size_mb = path.stat().st_size / 2**20
    print(f"input: {path} ({size_mb:,.0f} MB)\nmachine: {describe_machine()}", file=sys.stderr)

    configs = {
        "sequential": {"AGTRACE_WORKERS": "0"},
        "pool": {} if args.workers is None else {"AGTRACE_WORKERS": str(args.workers)},
    }
    results = []
    for name in args.configs.split(","):
        print(f"running {name} ...", file=sys.stderr)
        r = measure(name, path, configs[name])
        results.append(r)
        print(f"  {json.dumps(r)}", file=sys.stderr)

    print(f"\nLoading {size_mb:,.0f} MB of OTLP/JSON ({results[0]['spans']:,} spans); target: under {TARGET_MB} MB.\n")
    print("| configuration | processes | peak RSS, main process (time -v) | peak RSS, sum of processes | peak PSS, sum | time | spans/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['processes']} | {r['max_rss_mb_time_v']} MB | {r['peak_tree_rss_mb']} MB | "
              f"{r['peak_tree_pss_mb']} MB | {r['seconds']:.0f} s | {r['spans_per_s']:,} |")
    if args.json:
        args.json.write_text(json.dumps({"input_mb": round(size_mb), "machine": describe_machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
