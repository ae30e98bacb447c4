"""`agtrace load` and `agtrace traces`: every framing and quirk of issue 2's formats."""

from __future__ import annotations

import base64
import gzip
import json

import duckdb
import orjson
import pytest

from conftest import SAMPLES, invoke

T1 = "5b8efff798038103d269b633813fc60c"
T2 = "0af7651916cd43dd8448eb211c80319c"
S_ROOT = "eee19b7ec3c1b174"
S_CHILD = "b7ad6b7169203331"
S_GRAND = "00f067aa0ba902b7"


def _kv(key, value):
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def otlp_span(trace, span, parent, name, start, end, *, kind=1, status=None, attrs=None):
    d = {"traceId": trace, "spanId": span, "name": name, "kind": kind,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
         "attributes": [_kv(k, v) for k, v in (attrs or {}).items()]}
    if parent:
        d["parentSpanId"] = parent
    if status:
        d["status"] = status
    return d


def otlp_request(spans, service="svc", scope_key="scopeSpans", rs_key="resourceSpans"):
    scope = "scope" if scope_key == "scopeSpans" else "instrumentationLibrary"
    return {rs_key: [{"resource": {"attributes": [_kv("service.name", service)]},
                      scope_key: [{scope: {"name": "test", "version": "1"}, "spans": spans}]}]}


BASE = 1_705_312_800_000_000_000  # 2024-01-15T10:00:00Z


def three_spans(trace=T1):
    return [
        otlp_span(trace, S_ROOT, None, "workflow", BASE, BASE + 5_000_000_000, attrs={"agent_name": "orchestrator"}),
        otlp_span(trace, S_CHILD, S_ROOT, "tool.web_search", BASE + 1_000_000_000, BASE + 2_000_000_000,
                  attrs={"result_count": 3}),
        otlp_span(trace, S_GRAND, S_CHILD, "agent.decision_point", BASE + 2_500_000_000, BASE + 3_000_000_000,
                  status={"code": 2, "message": "boom"}, attrs={"decision_type": "escalate", "decision_confidence": 0.7}),
    ]


def rows(db, sql, params=()):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def load_ok(*paths, extra=()):
    r = invoke(["load", *paths, *extra])
    assert r.exit_code == 0, r.stderr
    return r


# -- OTLP/JSON framings ------------------------------------------------------

@pytest.mark.parametrize("framing", ["lines", "pretty", "array", "result", "batches", "legacy"])
def test_otlp_json_framings(tmp_path, isolated_store, framing):
    spans = three_spans()
    f = tmp_path / "in.json"
    if framing == "lines":
        text = "\n".join(orjson.dumps(otlp_request([s])).decode() for s in spans) + "\n"
    elif framing == "pretty":
        text = json.dumps(otlp_request(spans), indent=2)
    elif framing == "array":
        text = json.dumps([otlp_request(spans[:1]), otlp_request(spans[1:])])
    elif framing == "result":
        text = json.dumps({"result": otlp_request(spans)})
    elif framing == "batches":
        text = json.dumps(otlp_request(spans, rs_key="batches"))
    else:
        text = json.dumps(otlp_request(spans, scope_key="instrumentationLibrarySpans"))
    f.write_text(text)
    load_ok(f)
    got = rows(isolated_store, "SELECT span_id, parent_span_id, depth, service, scope_name FROM spans ORDER BY start_ns")
    assert got == [(S_ROOT, None, 0, "svc", "test"), (S_CHILD, S_ROOT, 1, "svc", "test"), (S_GRAND, S_CHILD, 2, "svc", "test")]


def test_otlp_base64_ids_numbers_and_kind_names(tmp_path, isolated_store):
    b64 = lambda h: base64.b64encode(bytes.fromhex(h)).decode()
    span = otlp_span(b64(T1), b64(S_ROOT), None, "root", BASE, BASE + 10, kind="SPAN_KIND_SERVER",
                     status={"code": "STATUS_CODE_ERROR", "message": "bad"})
    span["startTimeUnixNano"] = BASE  # a number, not a string
    child = otlp_span(T1.upper(), S_CHILD.upper(), S_ROOT.upper(), "child", BASE + 1, BASE + 5, kind=3)
    child["attributes"] = [{"key": "n", "value": {"intValue": 7}}, {"key": "d", "value": {"doubleValue": "NaN"}},
                           {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}},
                           {"key": "kv", "value": {"kvlistValue": {"values": [_kv("x", "y")]}}},
                           {"key": "b", "value": {"bytesValue": "aGk="}}, {"key": "empty", "value": {}},
                           {"key": "snake", "value": {"string_value": "s", "int_value": None}}]
    f = tmp_path / "b.json"
    f.write_text(json.dumps(otlp_request([span, child])))
    load_ok(f)
    got = rows(isolated_store, "SELECT trace_id, span_id, parent_span_id, kind, status, status_message, start_ns FROM spans ORDER BY start_ns")
    assert got == [(T1, S_ROOT, None, "server", "error", "bad", BASE), (T1, S_CHILD, S_ROOT, "client", "unset", None, BASE + 1)]
    attrs = json.loads(rows(isolated_store, "SELECT attributes FROM spans WHERE span_id = ?", [S_CHILD])[0][0])
    assert attrs == {"n": 7, "d": None, "arr": ["a", 2], "kv": {"x": "y"}, "b": "aGk=", "empty": None, "snake": "s"}
    kv = rows(isolated_store, "SELECT key, idx, vtype, str_val, num_val FROM attrs a JOIN spans s USING (sid) WHERE s.span_id = ? ORDER BY key, idx", [S_CHILD])
    assert ("arr", 0, "string", "a", None) in kv and ("arr", 1, "int", "2", 2.0) in kv
    assert ("n", None, "int", "7", 7.0) in kv and ("kv", None, "kvlist", '{"x":"y"}', None) in kv


def test_metric_and_log_lines_are_skipped_and_counted(tmp_path, isolated_store):
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join([
        orjson.dumps(otlp_request(three_spans()[:1])).decode(),
        json.dumps({"resourceMetrics": []}),
        json.dumps({"resourceLogs": []}),
        orjson.dumps(otlp_request(three_spans()[1:])).decode(),
    ]) + "\n")
    r = invoke(["load", f, "--format", "json"])
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["spans_added"] == 3 and out["other_signals_skipped"] == 2 and out["bad_records"] == 0
    assert r.stderr == ""  # --format json: the summary is the data on stdout
    r = invoke(["load", f])
    assert "1 file already loaded, nothing to add" in r.stderr


# -- OpenTelemetry Python SDK span JSON ----------------------------------------

def sdk_span(trace, span, parent, name, start, end, **kw):
    return {"name": name, "context": {"trace_id": trace, "span_id": span, "trace_state": "[]"},
            "kind": kw.get("kind", "SpanKind.INTERNAL"), "parent_id": parent,
            "start_time": start, "end_time": end,
            "status": {"status_code": kw.get("status", "UNSET")},
            "attributes": kw.get("attrs", {}), "events": [], "links": [],
            "resource": {"attributes": {"service.name": "py"}, "schema_url": ""}}


def test_python_sdk_console_concatenated(tmp_path, isolated_store):
    spans = [
        sdk_span("0x" + T2, "0x" + S_CHILD, "0x" + S_ROOT, "child", "2024-01-15T10:00:01.000000Z", "2024-01-15T10:00:02.500000Z", status="ERROR"),
        sdk_span("0x" + T2, "0x" + S_ROOT, None, "root", "2024-01-15T10:00:00.000000Z", "2024-01-15T10:00:03.000000Z", kind="SpanKind.SERVER"),
    ]
    f = tmp_path / "console.txt"
    f.write_text("".join(json.dumps(s, indent=4) + "\n" for s in spans))
    load_ok(f)
    got = rows(isolated_store, "SELECT trace_id, span_id, parent_span_id, kind, status, duration_ns, service FROM spans ORDER BY start_ns")
    assert got == [(T2, S_ROOT, None, "server", "unset", 3_000_000_000, "py"),
                   (T2, S_CHILD, S_ROOT, "internal", "error", 1_500_000_000, "py")]


@pytest.mark.parametrize("framing", ["lines", "array", "wrapper"])
def test_python_sdk_framings_and_decimal_ids(tmp_path, isolated_store, framing):
    tid, sid, pid = int(T2, 16), int(S_CHILD, 16), int(S_ROOT, 16)
    spans = [
        sdk_span(tid, pid, None, "root", BASE, BASE + 3000, kind="internal"),
        sdk_span(tid, sid, pid, "child", BASE + 1000, BASE + 2000, kind="internal", status="ok"),
    ]
    # Raw decimal ids (128-bit: beyond double precision) must survive exactly.
    body = [json.dumps(s) for s in spans]
    f = tmp_path / "sdk.json"
    if framing == "lines":
        f.write_text("\n".join(body) + "\n")
    elif framing == "array":
        f.write_text("[" + ",".join(body) + "]")
    else:
        f.write_text('{"spans": [' + ",".join(body) + "]}")
    load_ok(f)
    got = rows(isolated_store, "SELECT trace_id, span_id, parent_span_id, status, duration_ns FROM spans ORDER BY start_ns")
    assert got == [(T2, S_ROOT, None, "unset", 3000), (T2, S_CHILD, S_ROOT, "ok", 1000)]


# -- flat JSONL -------------------------------------------------------------------

def test_flat_jsonl_with_duration_and_epoch_times(tmp_path, isolated_store):
    lines = [
        {"trace_id": T1, "span_id": S_ROOT, "parent_span_id": None, "name": "r", "start": "2024-01-15T10:00:00.000000001Z",
         "end": "2024-01-15T10:00:01Z", "service": "flat", "status": "ok", "attributes": {"nested": {"a": [1, 2]}}},
        {"trace_id": T1, "span_id": S_CHILD, "parent_span_id": S_ROOT, "name": "c", "start": 1705312800.5, "duration_ms": 250,
         "status": {"code": "error", "message": "nope"}, "events": [{"name": "exception", "time": "2024-01-15T10:00:00.6Z", "attributes": {"exception.type": "E"}}],
         "links": [{"trace_id": T2, "span_id": S_GRAND}]},
    ]
    f = tmp_path / "flat.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    load_ok(f)
    got = rows(isolated_store, "SELECT span_id, start_ns, duration_ns, status, status_message, service FROM spans ORDER BY start_ns")
    assert got == [(S_ROOT, BASE + 1, 999_999_999, "ok", None, "flat"),
                   (S_CHILD, BASE + 500_000_000, 250_000_000, "error", "nope", None)]
    assert rows(isolated_store, "SELECT linked_trace_id, linked_span_id, trace_id, span_id FROM links") == [(T2, S_GRAND, T1, S_CHILD)]
    ev = json.loads(rows(isolated_store, "SELECT events FROM spans WHERE span_id = ?", [S_CHILD])[0][0])
    assert ev == [{"name": "exception", "time_ns": BASE + 600_000_000, "attributes": {"exception.type": "E"}}]


# -- compression, idempotence, split traces -------------------------------------------

def test_gzip_and_zstd_detected_from_content(tmp_path, isolated_store):
    import zstandard

    data = ("\n".join(orjson.dumps(otlp_request([s])).decode() for s in three_spans()) + "\n").encode()
    (tmp_path / "a.data").write_bytes(gzip.compress(data))
    (tmp_path / "b.data").write_bytes(zstandard.ZstdCompressor().compress(
        ("\n".join(orjson.dumps(otlp_request([s])).decode() for s in three_spans(T2)) + "\n").encode()))
    r = load_ok(tmp_path / "a.data", tmp_path / "b.data")
    assert rows(isolated_store, "SELECT count(*), count(DISTINCT trace_id) FROM spans") == [(6, 2)]
    assert "loaded 2 files: 6 spans added in 2 traces" in r.stderr


def test_loading_twice_adds_nothing_and_says_so(tmp_path, isolated_store):
    f = tmp_path / "x.jsonl"
    f.write_text(orjson.dumps(otlp_request(three_spans())).decode() + "\n")
    load_ok(f)
    r = load_ok(f)
    assert "1 file already loaded, nothing to add" in r.stderr
    # Same spans in a different file: recognised as duplicates, not added.
    g = tmp_path / "y.json"
    g.write_text(json.dumps(otlp_request(three_spans()), indent=1))
    r = load_ok(g)
    assert "0 spans added" in r.stderr and "3 duplicates ignored" in r.stderr
    assert rows(isolated_store, "SELECT count(*) FROM spans") == [(3,)]


def test_trace_split_over_files_is_one_trace_and_depth_is_rederived(tmp_path, isolated_store):
    s = three_spans()
    (tmp_path / "child.jsonl").write_text(orjson.dumps(otlp_request(s[1:])).decode() + "\n")
    (tmp_path / "root.jsonl").write_text(orjson.dumps(otlp_request(s[:1])).decode() + "\n")
    load_ok(tmp_path / "child.jsonl")
    assert rows(isolated_store, "SELECT span_id, depth, agent FROM spans ORDER BY start_ns") == [(S_CHILD, 0, None), (S_GRAND, 1, None)]
    load_ok(tmp_path / "root.jsonl")
    assert rows(isolated_store, "SELECT span_id, depth, agent FROM spans ORDER BY start_ns") == [
        (S_ROOT, 0, "orchestrator"), (S_CHILD, 1, "orchestrator"), (S_GRAND, 2, "orchestrator")]
    assert rows(isolated_store, "SELECT trace_id, root_span_id, root_name, span_count, error_count, root_count FROM traces") == [
        (T1, S_ROOT, "workflow", 3, 1, 1)]


# -- bad input ----------------------------------------------------------------------

def test_bad_records_skipped_with_file_and_line(tmp_path, isolated_store):
    good = three_spans()
    bad_id = otlp_span("xyz", S_ROOT, None, "bad", BASE, BASE + 1)
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join([
        orjson.dumps(otlp_request(good[:1])).decode(),
        "{not json",
        orjson.dumps(otlp_request([bad_id] + good[1:2])).decode(),
        orjson.dumps(otlp_request(good[2:])).decode()[:-5],  # truncated last line
    ]))
    r = invoke(["load", f])
    assert r.exit_code == 0
    assert f"warning: {f}:2: skipped: invalid JSON" in r.stderr
    assert f"warning: {f}:3: skipped: traceId 'xyz' is not 32 hex digits" in r.stderr
    assert f"warning: {f}:4: skipped: truncated last line" in r.stderr
    assert rows(isolated_store, "SELECT span_id FROM spans ORDER BY start_ns") == [(S_ROOT,), (S_CHILD,)]


def test_strict_fails_and_changes_nothing(tmp_path, isolated_store):
    ok = tmp_path / "ok.jsonl"
    ok.write_text(orjson.dumps(otlp_request(three_spans(T2))).decode() + "\n")
    load_ok(ok)
    f = tmp_path / "bad.jsonl"
    f.write_text(orjson.dumps(otlp_request(three_spans())).decode() + "\n{oops\n")
    r = invoke(["load", "--strict", f])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: --strict: 1 bad record(s); first: {f}:2: invalid JSON")
    assert rows(isolated_store, "SELECT DISTINCT trace_id FROM spans") == [(T2,)]


def test_unknown_format_is_a_usage_error_naming_formats(tmp_path, isolated_store):
    f = tmp_path / "notes.json"
    f.write_text('{"hello": "world"}')
    r = invoke(["load", f])
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == (
        f"error: {f}: not a trace file in any known format (line 1: JSON value in no known trace format)")
    assert r.stderr.splitlines()[1].startswith("hint: formats tried: otlp-json, otel-python-sdk, agtrace-jsonl")
    assert r.stdout == ""


def test_missing_path_is_a_usage_error(tmp_path):
    r = invoke(["load", tmp_path / "nope.json"])
    assert r.exit_code == 2 and "no such file or directory" in r.stderr


def test_interrupted_load_leaves_store_unchanged(tmp_path, isolated_store, monkeypatch):
    ok = tmp_path / "ok.jsonl"
    ok.write_text(orjson.dumps(otlp_request(three_spans(T2))).decode() + "\n")
    load_ok(ok)
    from agtrace.ingest import loader

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loader, "rebuild_traces", boom)
    f = tmp_path / "more.jsonl"
    f.write_text(orjson.dumps(otlp_request(three_spans())).decode() + "\n")
    r = invoke(["load", f])
    assert r.exit_code == 130 and "interrupted" in r.stderr
    assert rows(isolated_store, "SELECT count(*), count(DISTINCT trace_id) FROM spans") == [(3, 1)]
    assert rows(isolated_store, "SELECT count(*) FROM files") == [(1,)]


def test_stdin(tmp_path, isolated_store):
    data = orjson.dumps(otlp_request(three_spans())).decode() + "\n"
    r = invoke(["load", "-"], input=data)
    assert r.exit_code == 0, r.stderr
    assert rows(isolated_store, "SELECT count(*) FROM spans") == [(3,)]


# -- traces ----------------------------------------------------------------------------

def test_traces_json_and_table(tmp_path, isolated_store):
    f = tmp_path / "t.jsonl"
    f.write_text(orjson.dumps(otlp_request(three_spans())).decode() + "\n")
    load_ok(f)
    r = invoke(["traces", "--format", "json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout) == [{"trace_id": T1, "root_name": "workflow", "start": "2024-01-15T10:00:00.000000000Z",
                                     "duration_ms": 5000.0, "span_count": 3, "error_count": 1, "agents": ["orchestrator"]}]
    r = invoke(["traces"])
    assert r.stdout.splitlines() == [
        "trace_id                          root_name  start                     duration_ms  spans  errors  agents",
        f"{T1}  workflow   2024-01-15T10:00:00.000Z         5000      3       1  orchestrator",
    ]
    r = invoke(["traces", "-i", f, "--format", "csv"])
    assert r.stdout.splitlines()[1] == f"{T1},workflow,2024-01-15T10:00:00.000000000Z,5000,3,1,orchestrator"


def test_traces_without_store_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("AGTRACE_DB", str(tmp_path / "none.duckdb"))
    r = invoke(["traces"])
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == f"error: no agtrace store at {tmp_path / 'none.duckdb'}"


@pytest.mark.parametrize("where", ["dir?x/s.duckdb", "s?.duckdb"])
def test_a_store_path_with_a_question_mark_is_refused_clearly(tmp_path, where):
    """DuckDB takes what follows '?' as options and writes its log elsewhere:
    refused before anything is written, not a traceback at commit."""
    db = tmp_path / where
    r = invoke(["load", "--db", db, SAMPLES])
    assert r.exit_code == 2
    assert r.stderr == (f"error: a store path cannot contain '?': {db}\n"
                        "hint: choose a --db path (file and directories) without '?'\n")
    assert not db.exists()


def test_version_and_help():
    from agtrace import __version__

    r = invoke(["--version"])
    assert r.stdout == f"agtrace {__version__}\n"
    for cmd in ("load", "traces"):
        r = invoke([cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.stdout


def test_parallel_reader_gives_the_same_store_as_sequential(tmp_path, monkeypatch):
    """Big line-delimited files are parsed by a process pool, and Collector lines
    by the Arrow reader (in the pool, or chunked in-process); the result must not change."""
    from agtrace.ingest import otlp_arrow, parallel

    lines = []
    for t in range(40):
        trace = f"{t:032x}"
        lines.append(orjson.dumps(otlp_request(three_spans(trace)[:2], service=f"s{t % 3}")).decode())
        lines.append(orjson.dumps(otlp_request(three_spans(trace)[2:], service=f"s{t % 3}")).decode())
    lines.insert(7, "{broken")
    f = tmp_path / "big.jsonl"
    f.write_text("\n".join(lines) + "\n")
    results = []
    calls = []
    real = parallel.read_lines_parallel
    monkeypatch.setattr(parallel, "read_lines_parallel",
                        lambda *a, **k: calls.append((k["fast"], k["pool"])) or real(*a, **k))
    fast_chunks = []
    real_chunk = otlp_arrow.read_chunk
    monkeypatch.setattr(otlp_arrow, "read_chunk", lambda *a: fast_chunks.append(r := real_chunk(*a)) or r)
    for mode, min_bytes, fast_min in (("seq", 1 << 40, 1 << 40), ("par", 1, 1 << 40), ("fast", 1 << 40, 1)):
        db = tmp_path / f"{mode}.duckdb"
        monkeypatch.setattr(parallel, "MIN_BYTES", min_bytes)
        monkeypatch.setattr(otlp_arrow, "MIN_BYTES", fast_min)
        monkeypatch.setattr(parallel, "CHUNK_BYTES", 2000)
        monkeypatch.setenv("AGTRACE_WORKERS", "2")
        r = invoke(["load", "--db", db, f])
        assert r.exit_code == 0, r.stderr
        assert f"warning: {f}:8: skipped: invalid JSON" in r.stderr
        results.append([rows(db, q) for q in (
            "SELECT sid, trace_id, span_id, parent_span_id, depth, agent, service, resource_id FROM spans ORDER BY sid",
            "SELECT * FROM attrs ORDER BY sid, key, idx",
            "SELECT * FROM resource_attrs ORDER BY resource_id, key",
            "SELECT * FROM traces ORDER BY trace_id",
        )])
    assert calls == [(True, True), (True, False)]  # pool for the second load, in-process for the third
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) == 120
    # the chunk with the broken line went the Python way, the others the Arrow way
    assert sum(c is None for c in fast_chunks) == 1 and sum(c is not None for c in fast_chunks) > 3


@pytest.mark.parametrize("duplicates", [True, False])
def test_spilled_worker_batches_give_the_same_store(tmp_path, monkeypatch, duplicates):
    """Into a file store, the pool's workers write spans, attribute and link
    rows as Parquet, read back with each chunk's sids moved up; a load mixing
    that with a small file read in-process, links, and duplicates or none
    (the merge's two ways: new rows picked out, or all taken) gives the store
    the sequential reader gives, sid for sid, and leaves no files behind."""
    from agtrace.ingest import otlp_arrow, parallel, spill

    def linked(trace, n):
        spans = three_spans(trace)
        spans[2]["links"] = [{"traceId": f"{n + 1:032x}", "spanId": S_ROOT,
                              "attributes": [_kv("link.kind", "follows")]}]
        spans[1]["events"] = [{"name": "retry", "timeUnixNano": str(BASE + 1_500_000_000),
                               "attributes": [_kv("attempt", 2)]}]
        return spans

    lines = []
    for t in range(60):
        spans = linked(f"{t:032x}", t)
        lines.append(orjson.dumps(otlp_request(spans[:2], service=f"s{t % 3}")).decode())
        lines.append(orjson.dumps(otlp_request(spans[2:], service=f"s{t % 3}")).decode())
    lines.insert(9, "{broken")
    if duplicates:
        lines += lines[20:26]  # duplicates inside the file
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(lines) + "\n")
    small = tmp_path / "small.jsonl"
    small.write_text(orjson.dumps(otlp_request(linked("f" * 32, 99))).decode() + "\n")
    staged = []
    real_stage = spill.Spill.stage
    monkeypatch.setattr(spill.Spill, "stage", lambda self, con: staged.append(len(self.files))
                        or real_stage(self, con))
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 3000)
    monkeypatch.setattr(otlp_arrow, "MIN_BYTES", 1 << 40)
    monkeypatch.setenv("AGTRACE_WORKERS", "2")
    stores = []
    for mode, min_bytes in (("pool", 1), ("sequential", 1 << 40)):
        db = tmp_path / mode / "store.duckdb"
        db.parent.mkdir()
        monkeypatch.setattr(parallel, "MIN_BYTES", min_bytes)
        r = invoke(["load", "--db", db, small, big])
        assert r.exit_code == 0, r.stderr
        assert ("duplicate" in r.stderr) == duplicates
        assert sorted(p.name for p in db.parent.iterdir()) == ["store.duckdb"]  # no spill left
        stores.append([rows(db, f"SELECT * FROM {t} ORDER BY ALL")
                       for t in ("spans", "attrs", "links", "resources", "resource_attrs", "traces")])
        stored_order = rows(db, "SELECT key, sid FROM attrs ORDER BY rowid")
        assert stored_order == sorted(stored_order)  # clustered by key, then sid
        assert len({k for k, _ in stored_order}) > 3
    assert staged[0] >= 3 * 10  # spans, attrs and links files of 10+ chunks
    assert staged[1] == 0  # only the pool spills
    for pool_rows, seq_rows, table in zip(*stores, ("spans", "attrs", "links", "resources", "resource_attrs",
                                                     "traces")):
        assert pool_rows == seq_rows, table
    assert len(stores[0][0]) == 183 and len(stores[0][2]) == 61


def test_a_failed_load_removes_its_spilled_batches(tmp_path, monkeypatch):
    """A load that fails after the workers wrote their Parquet files (here:
    --strict with a bad line) leaves the store as it was and no files."""
    from agtrace.ingest import parallel

    lines = [orjson.dumps(otlp_request(three_spans(f"{t:032x}"))).decode() for t in range(40)]
    lines.insert(5, "{broken")
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s" / "store.duckdb"
    db.parent.mkdir()
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 3000)
    monkeypatch.setattr(parallel, "MIN_BYTES", 1)
    monkeypatch.setenv("AGTRACE_WORKERS", "2")
    r = invoke(["load", "--db", db, "--strict", big])
    assert r.exit_code == 2
    assert sorted(p.name for p in db.parent.iterdir()) == ["store.duckdb"]
    assert rows(db, "SELECT count(*) FROM spans") == [(0,)]


def _pool_file(tmp_path, traces=40):
    lines = [orjson.dumps(otlp_request(three_spans(f"{t:032x}"))).decode() for t in range(traces)]
    f = tmp_path / "big.jsonl"
    f.write_text("\n".join(lines) + "\n")
    return f


def _use_pool(monkeypatch):
    from agtrace.ingest import parallel

    monkeypatch.setattr(parallel, "CHUNK_BYTES", 3000)
    monkeypatch.setattr(parallel, "MIN_BYTES", 1)
    monkeypatch.setenv("AGTRACE_WORKERS", "2")


def test_a_store_under_a_partition_like_directory_spills_and_loads(tmp_path, monkeypatch):
    """DuckDB's read_parquet takes `name=value` directories for Hive
    partitions and adds a column per level: under `day=1/` the spilled rows
    had one value too many and the load ended in a traceback."""
    from agtrace.ingest import spill

    _use_pool(monkeypatch)
    f = _pool_file(tmp_path)
    db = tmp_path / "day=1" / "store.duckdb"
    db.parent.mkdir()
    staged = []
    real_stage = spill.Spill.stage
    monkeypatch.setattr(spill.Spill, "stage", lambda self, con: staged.append(len(self.files))
                        or real_stage(self, con))
    r = invoke(["load", "--db", db, f])
    assert r.exit_code == 0, r.stderr
    assert staged and staged[0] >= 2  # it did spill
    assert rows(db, "SELECT count(*), count(DISTINCT trace_id) FROM spans") == [(120, 40)]
    assert rows(db, "SELECT count(*) FROM attrs") == rows(db, "SELECT sum(json_array_length(json_keys(attributes))) "
                                                            "FROM spans")
    assert sorted(p.name for p in db.parent.iterdir()) == ["store.duckdb"]


@pytest.mark.parametrize("dirname", ["odd[x]", "a*b{c,d}"])
def test_a_store_under_a_glob_like_directory_loads_without_spilling(tmp_path, monkeypatch, dirname):
    """DuckDB would read a spill path holding * ? [ ] { } as a pattern (and
    match other files, or none): there the batches are staged as before."""
    from agtrace.ingest import spill

    _use_pool(monkeypatch)
    f = _pool_file(tmp_path)
    db = tmp_path / dirname / "store.duckdb"
    db.parent.mkdir()
    chunk_paths = []
    real = spill.Spill.chunk_path
    monkeypatch.setattr(spill.Spill, "chunk_path", lambda self: chunk_paths.append(real(self)) or chunk_paths[-1])
    r = invoke(["load", "--db", db, f])
    assert r.exit_code == 0, r.stderr
    assert rows(db, "SELECT count(*), count(DISTINCT trace_id) FROM spans") == [(120, 40)]
    assert chunk_paths and set(chunk_paths) == {None}
    assert sorted(p.name for p in db.parent.iterdir()) == ["store.duckdb"]


def test_stale_spills_of_this_store_are_removed_and_others_kept(tmp_path, monkeypatch):
    """A killed load leaves its spill directory; the next load into the same
    store removes it, and never another store's (named by a hash of the store name)."""
    from agtrace.ingest.spill import Spill

    mine = tmp_path / (Spill(tmp_path / "a.duckdb").prefix + "dead1")
    theirs = tmp_path / (Spill(tmp_path / "b.duckdb").prefix + "live1")
    for d in (mine, theirs):
        d.mkdir()
        (d / "00000001-spans.parquet").write_bytes(b"x")
    assert Spill(tmp_path / "a.duckdb").prefix != Spill(tmp_path / "b.duckdb").prefix
    r = invoke(["load", "--db", tmp_path / "a.duckdb", _pool_file(tmp_path, 3)])
    assert r.exit_code == 0, r.stderr
    assert not mine.exists() and (theirs / "00000001-spans.parquet").exists()


def test_a_worker_that_cannot_write_hands_its_rows_back(tmp_path):
    """A full disk (here: a missing directory) while spilling costs no rows:
    the chunk's batch comes back whole, as without spilling, and nothing is left."""
    from agtrace.ingest import parallel

    lines = [orjson.dumps(otlp_request(three_spans(f"{t:032x}"))) + b"\n" for t in range(5)]
    plain = parallel._parse_chunk("f.jsonl", 1, lines)
    failed = parallel._parse_chunk("f.jsonl", 1, lines, False, str(tmp_path / "gone" / "00000001"))
    assert failed[-1] == [] and plain[-1] == []
    for name in ("spans", "attrs", "links"):
        assert getattr(failed[0], name).equals(getattr(plain[0], name))
    assert failed[0].spans.num_rows == 15
    ok = parallel._parse_chunk("f.jsonl", 1, lines, False, str(tmp_path / "00000001"))
    assert [n for n, _ in ok[-1]] == ["spans", "attrs"] and ok[0].spans.num_rows == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000001-attrs.parquet", "00000001-spans.parquet"]


def test_same_ids_with_different_content_is_one_span_first_kept(tmp_path, isolated_store):
    """Outside Zipkin a span is (trace id, span id, kind): a re-export with other times is a duplicate."""
    a = three_spans()
    b = three_spans()
    b[1]["startTimeUnixNano"] = str(BASE + 1_500_000_000)
    b[1]["name"] = "tool.renamed"
    (tmp_path / "a.jsonl").write_text(orjson.dumps(otlp_request(a)).decode() + "\n")
    (tmp_path / "b.jsonl").write_text(orjson.dumps(otlp_request(b)).decode() + "\n")
    load_ok(tmp_path / "a.jsonl")
    r = load_ok(tmp_path / "b.jsonl")
    assert "3 duplicates ignored (1 with different content; the first copy was kept)" in r.stderr
    assert rows(isolated_store, "SELECT name FROM spans WHERE span_id = ?", [S_CHILD]) == [("tool.web_search",)]


def _dateutil_in_worker():
    import sys

    try:
        import dateutil  # noqa: F401
    except ImportError:
        return "not importable", sys.modules.get("dateutil", "absent")
    return "imported", None


def test_reader_workers_remember_that_dateutil_is_missing():
    """pyarrow retries `import dateutil` on every Python literal given to a
    compute function; a reader worker where it is not installed remembers the
    failure (sys.modules holds None) instead of searching sys.path each time."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from agtrace.ingest import parallel

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=parallel._worker_init) as pool:
        outcome, cached = pool.submit(_dateutil_in_worker).result()
    try:
        import dateutil  # noqa: F401
        installed = True
    except ImportError:
        installed = False
    assert outcome == ("imported" if installed else "not importable")
    if not installed:
        assert cached is None


def test_tree_fields_are_the_same_in_small_derive_buckets_and_insert_ranges(tmp_path, monkeypatch):
    """The merge derives tree fields a bucket of traces at a time and inserts
    new spans a range of sids at a time; many small buckets and ranges (here
    7 spans and 5 sids) give the store one bucket and one range give, for a
    first load and for a second load that completes traces already stored."""
    from agtrace.ingest import loader

    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    halves = [[], []]
    for t in range(30):
        spans = three_spans(f"{t + 1:032x}")
        spans[0]["attributes"] = [_kv("agent_name", f"agent{t % 4}")]
        halves[0].append(orjson.dumps(otlp_request(spans[:2] if t % 3 else spans[1:])).decode())
        halves[1].append(orjson.dumps(otlp_request(spans[2:] if t % 3 else spans[:1])).decode())
    first.write_text("\n".join(halves[0]) + "\n")
    second.write_text("\n".join(halves[1]) + "\n")
    stores = []
    for bucket, span_range in ((7, 5), (10**9, 10**9)):
        monkeypatch.setattr(loader, "DERIVE_BUCKET_SPANS", bucket)
        monkeypatch.setattr(loader, "INSERT_RANGE_SIDS", span_range)
        db = tmp_path / f"b{bucket}.duckdb"
        snapshots = []
        for f in (first, SAMPLES, second):
            r = invoke(["load", "--db", db, f])
            assert r.exit_code == 0, r.stderr
            snapshots.append([rows(db, f"SELECT * FROM {t} ORDER BY ALL") for t in ("spans", "traces")])
        stores.append(snapshots)
    assert stores[0] == stores[1]
    spans = rows(db, "SELECT depth, agent FROM spans WHERE trace_id = ? ORDER BY depth", (f"{2:032x}",))
    assert spans == [(0, "agent1"), (1, "agent1"), (2, "agent1")]  # completed by the second load
