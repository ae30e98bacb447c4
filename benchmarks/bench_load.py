"""agtrace load against DuckDB's own read_json + unnest, in one run (issue 2).

    python benchmarks/bench_load.py benchmarks/data/otlp_750k.jsonl [--repeat 3]

Measures, each as a whole process, median of --repeat runs:
1. DuckDB alone: `read_json` + `unnest` of resourceSpans -> scopeSpans -> spans
   into a flat span table (bench_baseline_duckdb.py's "auto" = all defaults,
   and "auto-sample" = schema detected from 20 lines, the fastest honest one);
2. `agtrace load FILE` into a fresh store (parallel reader, default workers),
   and with AGTRACE_WORKERS=0 (one process);
3. `agtrace load FILE` again into the loaded store (content hash: nothing to do).
Prints the ratios against the targets: load <= 0.4x DuckDB, peak memory under
600 MB, a re-load under 1 s. Peak RSS is the main process's (ru_maxrss of the
reaped child covers waited-for descendants as their own maximum, not a sum).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_machine, file_mb, run_repeated, warm_page_cache  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", type=Path)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline-variants", default="auto-sample,auto")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    print(f"machine: {describe_machine()}")
    print(f"file: {args.file} ({file_mb(args.file):.1f} MB)")
    warm_page_cache(args.file)
    results: dict = {"file": str(args.file), "file_mb": round(file_mb(args.file), 1)}

    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        base_json = Path(tmp) / "baseline.json"
        subprocess.run([sys.executable, str(HERE / "bench_baseline_duckdb.py"), str(args.file),
                        "--repeat", str(args.repeat), "--variants", args.baseline_variants, "--no-jq",
                        "--json", str(base_json)], check=True, stdout=sys.stderr)
        base = json.loads(base_json.read_text())
        results["duckdb"] = {k: v for k, v in base["variants"].items()}

        agtrace = [sys.executable, "-m", "agtrace"]
        db = Path(tmp) / "store.duckdb"

        def fresh():
            for f in (db, db.with_name(db.name + ".wal")):
                if f.exists():
                    f.unlink()

        env = dict(os.environ)
        par = run_repeated("agtrace load (parallel)", agtrace + ["load", "-q", "--db", str(db), str(args.file)],
                           repeat=args.repeat, before_each=fresh, env=env)
        seq = run_repeated("agtrace load (1 process)", agtrace + ["load", "-q", "--db", str(db), str(args.file)],
                           repeat=args.repeat, before_each=fresh, env={**env, "AGTRACE_WORKERS": "0"})
        again = run_repeated("agtrace load again", agtrace + ["load", "-q", "--db", str(db), str(args.file)],
                             repeat=args.repeat, env=env)
        results["agtrace"] = {"parallel": par.as_dict(), "one_process": seq.as_dict(), "reload": again.as_dict()}

    print()
    for name, v in results["duckdb"].items():
        print(f"duckdb {name}: median {v['median_s']:.2f}s, CPU {v['median_cpu_s']:.2f}s, peak {v['peak_rss_mb']:.0f} MB")
    for s in (par, seq, again):
        print(s.summary())
    for name, v in results["duckdb"].items():
        print(f"ratio agtrace load (parallel) / duckdb {name}: {par.median_s / v['median_s']:.2f}x (target <= 0.4x); "
              f"one process: {seq.median_s / v['median_s']:.2f}x")
    print(f"re-load of a loaded file: {again.median_s:.2f}s (target < 1 s)")
    print(f"peak RSS, agtrace load: {max(par.peak_rss_mb, seq.peak_rss_mb):.0f} MB (target < 600 MB)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
