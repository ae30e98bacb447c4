#!/usr/bin/env python3
"""A cold question on a file: `agtrace query -i FILE` against jq (issue 4).

    python benchmarks/bench_query_file.py [--file benchmarks/data/otlp_750k.jsonl] [--repeat 3]

Both answer "which spans have decision_type = escalate?" straight from the
same OTLP/JSON file, with no store: jq with the filter below, agtrace with
`query -i FILE 'decision_type = "escalate"' --format jsonl`. The runs are
interleaved (jq, agtrace, jq, agtrace, ...) after one read of the file to
warm the page cache, so both see the same machine state. Both must print
the same number of spans.

Target (issue 4): agtrace faster than jq, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_baseline_duckdb import JQ_FILTER  # noqa: E402
from common import DATA_DIR, child_env, compile_bytecode, describe_machine, machine, run_once, warm_page_cache  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DATA_DIR / "otlp_750k.jsonl",
                    help="OTLP/JSON file (default benchmarks/data/otlp_750k.jsonl, made by gen_otlp.py)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--decision-type", default="escalate")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args(argv)
    jq = shutil.which("jq")
    if jq is None:
        print("jq not found (apt-get install -y jq)", file=sys.stderr)
        return 2
    if not args.file.exists():
        print(f"{args.file} not found; make it with: python benchmarks/gen_otlp.py --spans 750000 --out {args.file}",
              file=sys.stderr)
        return 2
    compile_bytecode()
    warm_page_cache(args.file)
    out = DATA_DIR / "query_file.out"
    cmds = {
        "jq": [jq, "-c", "--arg", "dt", args.decision_type, JQ_FILTER, str(args.file)],
        "agtrace query -i": [sys.executable, "-m", "agtrace", "query", "-i", str(args.file),
                             f'decision_type = "{args.decision_type}"', "--format", "jsonl"],
    }
    print(describe_machine())
    print(f"file: {args.file} ({args.file.stat().st_size / 1e6:.0f} MB)")
    runs: dict[str, list] = {k: [] for k in cmds}
    matches: dict[str, int] = {}
    for r in range(args.repeat):
        for name, cmd in cmds.items():
            with open(out, "wb") as f:
                run = run_once(cmd, stdout=f, env=child_env())
            if run.returncode != 0:
                print(f"{name} failed (exit {run.returncode})", file=sys.stderr)
                return 1
            with open(out, "rb") as f:
                matches[name] = sum(1 for _ in f)
            runs[name].append(run)
            print(f"  {name} run {r + 1}/{args.repeat}: {run.seconds:.2f}s wall, {run.cpu_seconds:.2f}s CPU, "
                  f"{run.max_rss_kb / 1024:.0f} MB, {matches[name]} spans, load {os.getloadavg()[0]:.1f}", flush=True)
    out.unlink(missing_ok=True)
    med = {k: statistics.median(r.seconds for r in v) for k, v in runs.items()}
    print()
    print("| command | median wall | runs | median CPU | peak RSS | spans |")
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        print(f"| `{name}` | {med[name]:.2f} s | {', '.join(f'{r.seconds:.2f}' for r in rs)} | "
              f"{statistics.median(r.cpu_seconds for r in rs):.2f} s | {max(r.max_rss_kb for r in rs) / 1024:.0f} MB | "
              f"{matches[name]:,} |")
    ratio = med["agtrace query -i"] / med["jq"]
    same = matches["jq"] == matches["agtrace query -i"]
    print(f"\nagtrace / jq: {ratio:.2f} (target < 1: {'met' if ratio < 1 else 'MISSED'}); "
          f"same spans: {'yes' if same else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "file": str(args.file),
            "runs": {k: [{"wall_s": round(r.seconds, 3), "cpu_s": round(r.cpu_seconds, 3),
                          "rss_mb": round(r.max_rss_kb / 1024, 1)} for r in v] for k, v in runs.items()},
            "matches": matches, "ratio": round(ratio, 3)}, indent=2) + "\n")
    return 0 if ratio < 1 and same else 1


if __name__ == "__main__":
    sys.exit(main())
