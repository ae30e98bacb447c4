#!/usr/bin/env python3
"""The yardsticks agtrace is measured against: DuckDB alone, and jq.

Why: agtrace's load target is "at most 0.4x the time DuckDB's own JSON reader
takes to flatten the same OTLP file into a span table". This script measures
that baseline honestly: each formulation runs as a whole process (python +
import duckdb + read_json + unnest of resourceSpans -> scopeSpans -> spans
into a table in a fresh DuckDB file), several times, reporting the median
wall time and the peak RSS. It also times `jq` selecting decision spans, the
baseline for a cold `agtrace query -i FILE`.

Formulations (all produce the same table: trace_id, span_id, parent_span_id,
name, kind, start_ns, end_ns, service, attributes as the raw OTLP list):
  auto          read_json with every option at its default except the
                framing (and maximum_object_size, only where a line is
                longer than the default 16 MiB); schema auto-detected from the
                default sample (20,480 lines: the whole of a 2,000-line file).
  auto-sample   the same, schema detected from the first --sample-lines lines
                (still auto-detected; checked to give the same schema).
  auto-naive    `auto`, but the service name is looked up per span instead of
                once per resource: what a first attempt often looks like.
  explicit      the schema written out by hand (no detection; attributes
                typed as JSON text). Not the baseline: a user would need to
                know the file's exact shape; shown to bound what DuckDB can do.
The baseline is the fastest of the auto-detected ones.

Usage:
    python benchmarks/bench_baseline_duckdb.py benchmarks/data/otlp_750k.jsonl [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DATA_DIR,
    describe_machine,
    file_mb,
    machine,
    run_repeated,
    tool_version,
    warm_page_cache,
)

# DuckDB's default maximum_object_size (16 MiB). It also sizes the reader's
# buffers, and a file read in one buffer is read by one thread: with 1 GiB
# (what this script used until 2026-11-26) the 511 MB file took 12.4 s on one
# core instead of 5.5 s on two. So the default is kept unless a line is
# longer (`object_size_for`).
DEFAULT_MAX_OBJECT = 16 << 20
MAX_OBJECT = DEFAULT_MAX_OBJECT


def longest_line(path: str) -> int:
    longest = 0
    with open(path, "rb") as f:
        for line in f:
            longest = max(longest, len(line))
    return longest


def object_size_for(path: str) -> int:
    """DuckDB's default, or the smallest power of two above the file's longest line."""
    need = longest_line(path) + 1
    size = DEFAULT_MAX_OBJECT
    while size < need:
        size *= 2
    return size

SPAN_COLUMNS = """
    s.traceId AS trace_id,
    s.spanId AS span_id,
    nullif(s.parentSpanId, '') AS parent_span_id,
    s.name AS name,
    s.kind AS kind,
    CAST(s.startTimeUnixNano AS BIGINT) AS start_ns,
    CAST(s.endTimeUnixNano AS BIGINT) AS end_ns,
    {service} AS service,
    s.attributes AS attributes"""

SERVICE_OF = "list_filter({attrs}, lambda a: a.key = 'service.name')[1].value.stringValue"

# Service resolved once per resource (level 2), then spans unnested.
CHAIN_SQL = """
CREATE TABLE spans AS
WITH l1 AS (SELECT unnest(resourceSpans) AS rs FROM {reader}),
     l2 AS (SELECT {service_rs} AS service, unnest(rs.scopeSpans) AS ss FROM l1),
     l3 AS (SELECT service, unnest(ss.spans) AS s FROM l2)
SELECT {columns} FROM l3
""".format(
    reader="{reader}",
    service_rs=SERVICE_OF.format(attrs="rs.resource.attributes"),
    columns=SPAN_COLUMNS.format(service="service"),
)

# The resource travels down with every span and is searched per span.
NAIVE_SQL = """
CREATE TABLE spans AS
WITH l1 AS (SELECT unnest(resourceSpans) AS rs FROM {reader}),
     l2 AS (SELECT rs.resource AS r, unnest(rs.scopeSpans) AS ss FROM l1),
     l3 AS (SELECT r, unnest(ss.spans) AS s FROM l2)
SELECT {columns} FROM l3
""".format(reader="{reader}", columns=SPAN_COLUMNS.format(service=SERVICE_OF.format(attrs="r.attributes")))

KV = 'STRUCT("key" VARCHAR, "value" JSON)[]'
EXPLICIT_COLUMNS = (
    "{'resourceSpans': 'STRUCT(resource STRUCT(attributes " + KV + "), scopeSpans STRUCT(scope STRUCT(name VARCHAR, "
    "version VARCHAR), spans STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR, name VARCHAR, kind BIGINT, "
    "startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, attributes JSON)[])[])[]'}"
)
SERVICE_JSON = "list_filter(rs.resource.attributes, lambda a: a.key = 'service.name')[1].value->>'stringValue'"
EXPLICIT_SQL = CHAIN_SQL.replace(SERVICE_OF.format(attrs="rs.resource.attributes"), SERVICE_JSON)

READER = "read_json(?, format = 'newline_delimited', maximum_object_size = {max_obj}{extra})"

VARIANTS = {
    "auto": (CHAIN_SQL, ""),
    "auto-sample": (CHAIN_SQL, ", sample_size = SAMPLE"),
    "auto-naive": (NAIVE_SQL, ""),
    "explicit": (EXPLICIT_SQL, ", columns = " + EXPLICIT_COLUMNS),
}
AUTO_VARIANTS = ["auto", "auto-sample", "auto-naive"]


def variant_sql(name: str, sample_lines: int) -> str:
    sql, extra = VARIANTS[name]
    reader = READER.format(max_obj=MAX_OBJECT, extra=extra.replace("SAMPLE", str(int(sample_lines))))
    return sql.format(reader=reader)


def child(variant: str, path: str, db: str, sample_lines: int, max_object: int) -> int:
    """One timed run: load `path` into a fresh DuckDB file `db`, print counts as JSON."""
    import duckdb

    global MAX_OBJECT
    MAX_OBJECT = max_object

    con = duckdb.connect(db)
    t0 = time.perf_counter()
    con.execute(variant_sql(variant, sample_lines), [path])
    inside = time.perf_counter() - t0
    spans, services, roots = con.execute(
        "SELECT count(*), count(DISTINCT service), count(*) FILTER (WHERE parent_span_id IS NULL) FROM spans"
    ).fetchone()
    con.close()
    print(json.dumps({"variant": variant, "spans": spans, "services": services, "roots": roots,
                      "load_s": round(inside, 3)}))
    return 0


def detected_schema(path: str, sample_lines: int | None) -> str:
    import duckdb

    extra = "" if sample_lines is None else f", sample_size = {int(sample_lines)}"
    con = duckdb.connect()
    rows = con.execute(f"DESCRIBE SELECT * FROM {READER.format(max_obj=MAX_OBJECT, extra=extra)}", [path]).fetchall()
    return repr(rows)


JQ_FILTER = (
    '.resourceSpans[]?.scopeSpans[]?.spans[]? | select(.name == "agent.decision_point") '
    '| select(any(.attributes[]?; .key == "decision_type" and .value.stringValue == $dt))'
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="DuckDB read_json + unnest and jq baselines.")
    p.add_argument("file", type=Path, help="OTLP/JSON file (one ExportTraceServiceRequest per line)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", default="auto,auto-sample,auto-naive,explicit",
                   help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--sample-lines", type=int, default=20, help="sample_size for auto-sample (default 20 lines)")
    p.add_argument("--decision-type", default="escalate", help="decision_type the jq filter selects")
    p.add_argument("--no-jq", action="store_true", help="skip the jq measurement")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--max-load", type=float, default=None,
                   help="before each run, wait (up to 15 min) for the 1-minute load average to drop to this")
    p.add_argument("--max-object-size", type=int, default=None,
                   help="read_json's maximum_object_size in bytes (default: DuckDB's 16 MiB, "
                        "or the next power of two above the longest line)")
    p.add_argument("--child", nargs=2, metavar=("VARIANT", "DB"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    global MAX_OBJECT
    if args.child:
        return child(args.child[0], str(args.file), args.child[1], args.sample_lines,
                     args.max_object_size or DEFAULT_MAX_OBJECT)
    if not args.file.is_file():
        p.error(f"{args.file}: no such file (generate one with benchmarks/gen_otlp.py)")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s): {', '.join(unknown)}")

    print(f"machine: {describe_machine()}", file=sys.stderr)
    print(f"file: {args.file} ({file_mb(args.file):.1f} MB)", file=sys.stderr)
    MAX_OBJECT = args.max_object_size or object_size_for(str(args.file))
    print(f"read_json maximum_object_size: {MAX_OBJECT} bytes", file=sys.stderr)
    results: dict = {"machine": machine(), "file": str(args.file), "file_mb": round(file_mb(args.file), 1),
                     "max_object_size": MAX_OBJECT, "variants": {}}
    if "auto-sample" in variants:
        same = detected_schema(str(args.file), args.sample_lines) == detected_schema(str(args.file), None)
        results["auto_sample_schema_matches_full"] = same
        print(f"auto-sample schema from {args.sample_lines} lines == full-sample schema: {same}", file=sys.stderr)

    warm_page_cache(args.file)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="baseline-", dir=DATA_DIR))
    counts = {}
    try:
        db = tmp / "baseline.duckdb"

        def fresh() -> None:
            for f in (db, Path(str(db) + ".wal")):
                if f.exists():
                    f.unlink()

        for v in variants:
            out = tmp / f"{v}.out"
            cmd = [sys.executable, os.path.abspath(__file__), str(args.file), "--child", v, str(db),
                   "--sample-lines", str(args.sample_lines), "--max-object-size", str(MAX_OBJECT)]
            stats = run_repeated(f"duckdb {v}", cmd, args.repeat, stdout_path=out, before_each=fresh,
                                 max_load=args.max_load)
            info = json.loads(out.read_text())
            counts[v] = (info["spans"], info["services"], info["roots"])
            d = stats.as_dict()
            d.update(spans=info["spans"], services=info["services"], roots=info["roots"],
                     db_mb=round(db.stat().st_size / 1e6, 1))
            results["variants"][v] = d
            print(stats.summary() + f"; {info['spans']} spans", file=sys.stderr)
        fresh()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if len(set(counts.values())) > 1:
        print(f"WARNING: variants disagree on (spans, services, roots): {counts}", file=sys.stderr)
        results["counts_agree"] = False
    else:
        results["counts_agree"] = True

    auto = {v: results["variants"][v] for v in AUTO_VARIANTS if v in results["variants"]}
    if auto:
        best = min(auto, key=lambda v: auto[v]["median_s"])
        if best == "auto-sample" and not results.get("auto_sample_schema_matches_full", False):
            best = min((v for v in auto if v != "auto-sample"), key=lambda v: auto[v]["median_s"], default=best)
        results["baseline"] = {"variant": best, **auto[best]}

    if not args.no_jq:
        jq = shutil.which("jq")
        if jq is None:
            print("jq not found (apt-get install -y jq); skipping", file=sys.stderr)
        else:
            results["jq_version"] = tool_version([jq, "--version"])
            out = DATA_DIR / "jq-decisions.out"
            cmd = [jq, "-c", "--arg", "dt", args.decision_type, JQ_FILTER, str(args.file)]
            stats = run_repeated(f"jq decision_type={args.decision_type}", cmd, args.repeat, stdout_path=out,
                                 max_load=args.max_load)
            with open(out, "rb") as f:
                matched = sum(1 for _ in f)
            out.unlink()
            d = stats.as_dict()
            d.update(matched=matched, filter=JQ_FILTER, decision_type=args.decision_type)
            results["jq"] = d
            print(stats.summary() + f"; {matched} spans matched", file=sys.stderr)

    if "baseline" in results:
        b = results["baseline"]
        print(f"baseline (duckdb {b['variant']}): median {b['median_s']:.2f}s, peak RSS {b['peak_rss_mb']:.0f} MB, "
              f"{b['spans']} spans; agtrace load target <= {0.4 * b['median_s']:.2f}s")
    if "jq" in results:
        print(f"jq: median {results['jq']['median_s']:.2f}s, peak RSS {results['jq']['peak_rss_mb']:.0f} MB, "
              f"{results['jq']['matched']} spans matched")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
