"""The bad-input corpus: every broken or odd file has an exact expected outcome.

tests/corpus/ holds small hostile files (truncated lines, binary garbage, cut
gzip/zstd/protobuf, wrong ids and times, cycles, NaN, invalid UTF-8, ...) and
EXPECTED.toml says, for each, what `agtrace load` must do: the exit code,
the spans kept, every bad record and warning with its line, and SQL checks of
what was stored. The big cases (a 100,000-deep chain, a 10 MB value, 10,000
attributes) are written at test time by corpus_build.py.

For every case: no traceback, good records kept, bad ones reported with file
and line on stderr.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import duckdb
import pytest

import corpus_build
from conftest import invoke

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = tomllib.loads((CORPUS / "EXPECTED.toml").read_text())["case"]


def _rows(db: Path, sql: str, params=()) -> list[list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [list(r) for r in con.execute(sql, list(params)).fetchall()]
    finally:
        con.close()


def _no_traceback(r) -> None:
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


def _matches(actual: list[list], expected: list[list]) -> bool:
    """[line, reason] pairs: same lines, reasons starting with the expected text."""
    return len(actual) == len(expected) and all(
        a[0] == e[0] and a[1].startswith(e[1]) for a, e in zip(actual, expected))


def test_manifest_covers_every_file_and_enough_cases():
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.toml"}
    listed = [c["file"] for c in CASES]
    assert sorted(listed) == sorted(on_disk)
    assert len(listed) == len(set(listed)) >= 40
    assert all(c["about"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_case(case, tmp_path):
    db = tmp_path / "store.duckdb"
    path = CORPUS / case["file"]
    r = invoke(["load", "--db", db, path, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == case["exit"], r.stderr
    if case["exit"]:
        assert r.stdout == ""
        assert r.stderr.splitlines()[0].startswith(f"error: {path}: {case['error']}")
        assert not db.exists() or _rows(db, "SELECT count(*) FROM spans") == [[0]]
        return
    report = json.loads(r.stdout)
    assert report["spans_in_store"] == case["spans"] == _rows(db, "SELECT count(*) FROM spans")[0][0]
    bad = [[b["line"] or 0, b["reason"]] for f in report["files"] for b in f["bad"]]
    warnings = [[w["line"] or 0, w["reason"]] for f in report["files"] for w in f["warning_list"]]
    assert _matches(bad, case["bad"]), bad
    assert report["bad_records"] == len(case["bad"])
    assert _matches(warnings, case.get("warnings", [])), warnings
    assert report["warnings"] == len(case.get("warnings", []))
    assert report["duplicates"] == case.get("duplicates", 0)
    assert report["parent_cycles"] == case.get("parent_cycles", 0)
    if "files" in case:
        assert {Path(f["path"]).name: f["status"] for f in report["files"]} == case["files"]
    # Reported on stderr with file and line (the first ten of each kind).
    lines = r.stderr.splitlines()
    labels = {Path(f["path"]).name: f["path"] for f in report["files"]}
    for f in report["files"]:
        for b in f["bad"][:10]:
            assert f"warning: {f['path']}:{b['line'] or '-'}: skipped: {b['reason']}" in lines
        for w in f["warning_list"][:10]:
            assert f"warning: {f['path']}:{w['line'] or '-'}: {w['reason']}" in lines
    assert labels  # every case names at least one file in the report
    for check in case.get("checks", []):
        assert _rows(db, check["sql"]) == json.loads(check["rows"]), check["sql"]
    # The trace summaries agree with the spans, whatever the input was.
    assert _rows(db, "SELECT coalesce(sum(span_count), 0) FROM traces") == [[case["spans"]]]


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8-sig"))
        return True
    except (ValueError, RecursionError):
        return False


def test_whole_corpus_as_one_directory(tmp_path):
    """A directory walk over every case at once: files that are not traces are
    skipped with one line each, every other file reports what it reports alone."""
    db = tmp_path / "store.duckdb"
    r = invoke(["load", "--db", db, CORPUS, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    by_name = {Path(f["path"]).relative_to(CORPUS).parts[0]: f for f in report["files"]
               if Path(f["path"]).parent == CORPUS}
    for case in CASES:
        if case["file"] == "mixed_dir":
            continue
        f = by_name[case["file"]]
        if case["exit"]:
            # Met in a walk, a file that is not a trace is skipped with one line;
            # JSON that does not parse is a damaged trace file, reported with its reasons.
            raw = (CORPUS / case["file"]).read_bytes()
            if raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[") and not _parses(raw):
                assert f["status"] == "unreadable" and f["bad_records"] >= 1, case["file"]
            else:
                assert (f["status"], f["bad_records"]) == ("unknown format", 0), case["file"]
        else:
            assert f["bad_records"] == len(case["bad"]), case["file"]
    assert by_name["EXPECTED.toml"]["status"] == "unknown format"
    n = _rows(db, "SELECT count(*) FROM spans")[0][0]
    assert report["spans_in_store"] == n == _rows(db, "SELECT sum(span_count) FROM traces")[0][0]
    # Loading the same directory again adds nothing.
    again = json.loads(invoke(["load", "--db", db, CORPUS, "--format", "json"]).stdout)
    assert again["spans_added"] == 0 and again["spans_in_store"] == n


def test_analysis_commands_read_hostile_files_directly(tmp_path):
    """-i FILE goes through the same reader: warnings on stderr, the good spans analysed."""
    path = CORPUS / "truncated_last_line.jsonl"
    r = invoke(["traces", "-i", path, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0
    assert [t["span_count"] for t in json.loads(r.stdout)] == [2]
    assert r.stderr.splitlines()[0].startswith(f"warning: {path}:3: skipped: truncated last line")


# -- the big cases, built at test time --------------------------------------------

@pytest.fixture(scope="module")
def chain_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    built = corpus_build.deep_chain(d)
    db = d / "store.duckdb"
    r = invoke(["load", "--db", db, built.path, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    return built, db, json.loads(r.stdout)


def test_100k_deep_chain_loads_with_exact_depths(chain_store):
    built, db, report = chain_store
    assert (report["spans_added"], report["bad_records"], report["parent_cycles"]) == (100_000, 0, 0)
    assert _rows(db, "SELECT min(depth), max(depth), count(*) FILTER (WHERE is_root), "
                     "count(*) FILTER (WHERE depth::BIGINT = ('0x' || span_id)::BIGINT - 1152921504606846976) FROM spans") \
        == [[0, 99_999, 1, 100_000]]


def test_100k_deep_chain_answers_traces_stats_and_query(chain_store):
    built, db, _ = chain_store
    r = invoke(["traces", "--db", db, "--format", "json"])
    _no_traceback(r)
    assert json.loads(r.stdout) == [{
        "trace_id": built.trace_id, "root_name": "step0", "start": "2024-01-15T10:00:00.000000000Z",
        "duration_ms": 2.0, "span_count": 100_000, "error_count": 0, "agents": [],
    }]
    r = invoke(["query", "--db", db, "--count", "depth >= 99990"])
    _no_traceback(r)
    assert (r.exit_code, r.stdout.strip()) == (0, "10")
    r = invoke(["stats", "--db", db, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    r = invoke(["explain", "--db", db, built.trace_id])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr


def test_10mb_attribute_value_is_stored_whole(tmp_path):
    built = corpus_build.huge_value(tmp_path)
    db = tmp_path / "store.duckdb"
    r = invoke(["load", "--db", db, built.path, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0 and json.loads(r.stdout)["spans_added"] == 2
    size = 10 * 1024 * 1024
    assert _rows(db, "SELECT length(attributes->>'payload'), agent FROM spans WHERE span_id = ?",
                 [corpus_build.span_id(0)]) == [[size, "bulk"]]
    assert _rows(db, "SELECT key, length(str_val) FROM attrs ORDER BY key") == [["agent_name", 4], ["payload", size]]
    r = invoke(["query", "--db", db, "--count", 'payload = "x"'])
    _no_traceback(r)
    assert (r.exit_code, r.stdout.strip()) == (0, "0")


def test_10k_attributes_on_one_span(tmp_path):
    built = corpus_build.many_attributes(tmp_path)
    db = tmp_path / "store.duckdb"
    r = invoke(["load", "--db", db, built.path, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0 and json.loads(r.stdout)["spans_added"] == 1
    assert _rows(db, "SELECT vtype, count(*) FROM attrs GROUP BY vtype ORDER BY vtype") == [
        ["bool", 2500], ["double", 2500], ["int", 2500], ["string", 2500]]
    assert _rows(db, "SELECT str_val, num_val FROM attrs WHERE key = 'attr09998'") == [["9998.5", 9998.5]]
    assert _rows(db, "SELECT count(*) FROM (SELECT unnest(json_keys(attributes)) FROM spans)") == [[10_000]]
    r = invoke(["query", "--db", db, "--count", "attr00001 = 1"])
    _no_traceback(r)
    assert (r.exit_code, r.stdout.strip()) == (0, "1")


# -- file contents are data, never SQL ------------------------------------------------

INJECTIONS = [
    "x'); DROP TABLE spans; --",
    "'; COPY spans TO 'PWNED' (FORMAT csv); --",
    "read_csv_auto('/etc/passwd')",
    "$$; ATTACH 'PWNED' AS p; $$",
    "\" OR 1=1 --",
    "?", "$1", "{name}", "%s", "\\'",
]


def _injection_files(d: Path, pwned: Path) -> list[Path]:
    texts = [t.replace("PWNED", str(pwned)) for t in INJECTIONS]
    trace = "5b8efff798038103d269b633813fc60c"
    spans = []
    for i, t in enumerate(texts):
        spans.append({
            "traceId": trace, "spanId": f"{i + 1:016x}", "parentSpanId": "" if i == 0 else f"{1:016x}",
            "name": t, "startTimeUnixNano": str(1_705_312_800_000_000_000 + i), "endTimeUnixNano": str(1_705_312_800_000_001_000),
            "status": {"code": 2, "message": t},
            "attributes": [{"key": t, "value": {"stringValue": t}}, {"key": "agent_name", "value": {"stringValue": t}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": t}}],
        })
    otlp = d / "otlp.json"
    otlp.write_text(json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": texts[1]}},
                                    {"key": texts[0], "value": {"stringValue": texts[2]}}]},
        "scopeSpans": [{"scope": {"name": texts[3], "version": texts[4]}, "spans": spans}]}]}))
    # Jaeger keeps ids as written when they are not hex: hostile text in the id columns too.
    jaeger = d / "jaeger.json"
    jaeger.write_text(json.dumps({"data": [{"traceID": texts[0], "processes": {"p1": {"serviceName": texts[1], "tags": []}},
                                            "spans": [{"traceID": texts[0], "spanID": texts[2], "operationName": texts[3],
                                                       "references": [{"refType": "CHILD_OF", "traceID": texts[0], "spanID": texts[5]}],
                                                       "startTime": 1705312800000000, "duration": 5, "processID": "p1",
                                                       "tags": [{"key": texts[6], "type": "string", "value": texts[7]}]}]}]}))
    return [otlp, jaeger]


def test_file_contents_never_become_sql(tmp_path):
    """Names, ids, keys and values that look like SQL are stored verbatim and do nothing."""
    pwned = tmp_path / "pwned.csv"
    files = _injection_files(tmp_path, pwned)
    db = tmp_path / "store.duckdb"
    r = invoke(["load", "--db", db, *files, "--format", "json"])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["bad_records"] == 0
    texts = [t.replace("PWNED", str(pwned)) for t in INJECTIONS]
    assert _rows(db, "SELECT name FROM spans WHERE trace_id = '5b8efff798038103d269b633813fc60c' ORDER BY span_id") == \
        [[t] for t in texts]
    assert _rows(db, "SELECT count(*) FROM attrs a JOIN spans s USING (sid) WHERE a.key = s.name AND a.str_val = s.name") \
        == [[len(texts)]]
    assert _rows(db, "SELECT trace_id, span_id, parent_span_id, name FROM spans WHERE trace_id <> '5b8efff798038103d269b633813fc60c'") \
        == [[texts[0], texts[2], texts[5], texts[3]]]
    assert sorted(r[0] for r in _rows(db, "SELECT agent FROM spans WHERE agent IS NOT NULL")) == sorted(texts)
    assert _rows(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1") == [
        [t] for t in sorted(["attrs", "file_stats", "files", "links", "meta", "resource_attrs", "resources", "spans", "traces"])]
    assert _rows(db, "SELECT count(*) FROM duckdb_databases() WHERE NOT internal") == [[1]]
    assert not pwned.exists()
    # The commands that read it back show it as data.
    for args in (["traces", "--db", db, "--format", "json"], ["show", "--db", db, "5b8efff798038103d269b633813fc60c", "--format", "json"],
                 ["stats", "--db", db, "--by", "agent", "--format", "json"],
                 ["query", "--db", db, "--count", json.dumps(texts[0]).join(("name = ", ""))]):
        r = invoke(args)
        _no_traceback(r)
        assert r.exit_code == 0, (args, r.stderr)
    assert r.stdout.strip() == "1"
    assert not pwned.exists()


def test_ingest_never_builds_sql_from_data():
    """Static guard: in the loader and the store, SQL text is a constant, an
    entry of a module table of constant statements, or an f-string over a few
    fixed names (table names from a tuple, a sanitised setting, module
    constants), never a value read from a file."""
    import ast

    allowed = {"name", "_safe_setting(limit)"}
    pkg = Path(__file__).resolve().parents[1] / "cli" / "agtrace"
    checked = 0
    for f in sorted([*(pkg / "ingest").glob("*.py"), pkg / "store.py"]):
        for node in ast.walk(ast.parse(f.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "executemany", "sql", "query") and node.args):
                continue
            checked += 1
            sql = node.args[0]
            if isinstance(sql, ast.Subscript) and ast.unparse(sql.value) == "_INSERT_NEW_ROWS":
                continue  # loader's table of statements, built from constants at import
            if isinstance(sql, ast.Constant) or (isinstance(sql, ast.Name) and sql.id.lstrip("_").isupper()):
                continue  # a literal, or a module constant such as SCHEMA_SQL
            assert isinstance(sql, ast.JoinedStr), f"{f.name}:{node.lineno}: SQL from {ast.unparse(sql)}"
            for part in sql.values:
                if isinstance(part, ast.FormattedValue):
                    text = ast.unparse(part.value)
                    assert text in allowed or text.isupper(), f"{f.name}:{node.lineno}: {text} in SQL text"
    assert checked >= 20


def test_duckdb_out_of_memory_is_a_clear_error(tmp_path, monkeypatch):
    """A load that needs more memory than DuckDB may use fails cleanly, store unchanged."""
    db = tmp_path / "store.duckdb"
    assert invoke(["load", "--db", db, CORPUS / "bom.jsonl"]).exit_code == 0
    built = corpus_build.huge_value(tmp_path)
    monkeypatch.setenv("AGTRACE_MEMORY_LIMIT", "1MB")
    r = invoke(["load", "--db", db, built.path])
    _no_traceback(r)
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: DuckDB ran out of memory while loading (")
    assert lines[0].endswith("); nothing was loaded")
    assert lines[1] == "hint: allow it more with AGTRACE_MEMORY_LIMIT=2GB (or more), or load the files in several runs"
    monkeypatch.delenv("AGTRACE_MEMORY_LIMIT")
    assert _rows(db, "SELECT count(*) FROM spans") == [[3]]
