"""Writers of the big bad-input cases, generated at test time instead of committed.

The small cases of the corpus are files in tests/corpus/ (see EXPECTED.toml);
these would bloat the repository, so tests and benchmarks build them into a
temporary directory. Every writer is deterministic and returns what a correct
load must give, so the tests can assert exact values.

* `deep_chain`: one trace whose spans form a single parent chain (100,000
  deep by default): tree derivation and every later reader of the tree must
  be iterative.
* `huge_value`: a span with one 10 MB string attribute.
* `many_attributes`: a span with 10,000 attributes.
* `big_otlp_file`: a line-delimited OTLP/JSON file of about N bytes (the
  2 GB memory benchmark input), written by benchmarks/gen_otlp.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TRACE = "7f3a9c2e4b1d8f6a0c5e7b9d2f4a6c8e"
BASE_NS = 1_705_312_800_000_000_000  # 2024-01-15T10:00:00Z


def span_id(i: int) -> str:
    return f"{0x1000000000000000 + i:016x}"


@dataclass(frozen=True)
class Built:
    path: Path
    spans: int  # spans a correct load keeps
    trace_id: str


def _request(spans: list[dict], service: str = "corpus") -> str:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "corpus_build"}, "spans": spans}],
    }]}, separators=(",", ":"))


def _span(i: int, parent: int | None, **extra) -> dict:
    d = {"traceId": TRACE, "spanId": span_id(i), "name": f"step{i}", "kind": 1,
         "startTimeUnixNano": str(BASE_NS + i * 10), "endTimeUnixNano": str(BASE_NS + 2_000_000 - i * 10)}
    if parent is not None:
        d["parentSpanId"] = span_id(parent)
    d.update(extra)
    return d


def deep_chain(directory: Path, depth: int = 100_000, per_line: int = 5000) -> Built:
    """Span i is the child of span i-1; written deepest-first, so no parent
    precedes its child in the file (the order exporters that flush on end use)."""
    path = Path(directory) / f"chain_{depth}.jsonl"
    with open(path, "w") as f:
        order = range(depth - 1, -1, -1)
        chunk: list[dict] = []
        for i in order:
            chunk.append(_span(i, i - 1 if i else None))
            if len(chunk) == per_line:
                f.write(_request(chunk) + "\n")
                chunk = []
        if chunk:
            f.write(_request(chunk) + "\n")
    return Built(path, depth, TRACE)


def huge_value(directory: Path, size: int = 10 * 1024 * 1024) -> Built:
    """One span carrying a `size`-character string attribute, and a normal child."""
    path = Path(directory) / "huge_value.jsonl"
    big = ("0123456789abcdef" * (size // 16 + 1))[:size]
    root = _span(0, None, attributes=[{"key": "payload", "value": {"stringValue": big}},
                                      {"key": "agent_name", "value": {"stringValue": "bulk"}}])
    with open(path, "w") as f:
        f.write(_request([root]) + "\n")
        f.write(_request([_span(1, 0)]) + "\n")
    return Built(path, 2, TRACE)


def many_attributes(directory: Path, count: int = 10_000) -> Built:
    """One span with `count` attributes attr00000..: alternating string, int, double, bool."""
    path = Path(directory) / "many_attributes.jsonl"
    attrs = []
    for k in range(count):
        v = ({"stringValue": f"v{k}"}, {"intValue": str(k)}, {"doubleValue": k + 0.5}, {"boolValue": k % 8 == 3})[k % 4]
        attrs.append({"key": f"attr{k:05d}", "value": v})
    with open(path, "w") as f:
        f.write(_request([_span(0, None, attributes=attrs)]) + "\n")
    return Built(path, 1, TRACE)


def big_otlp_file(path: Path, approx_bytes: int, seed: int = 1) -> Path:
    """A Collector-style OTLP/JSON file of about `approx_bytes`, for the benchmarks.

    benchmarks/gen_otlp.py writes a given number of spans; its output runs at
    roughly 680 bytes a span, so the span count is sized from that and the
    actual size is whatever the generator wrote.
    """
    gen = Path(__file__).resolve().parents[1] / "benchmarks" / "gen_otlp.py"
    spans = max(1000, approx_bytes // 680)
    subprocess.run([sys.executable, str(gen), "--spans", str(spans), "--out", str(path), "--seed", str(seed)],
                   check=True, stdout=subprocess.DEVNULL)
    return Path(path)
