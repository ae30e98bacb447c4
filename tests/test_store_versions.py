"""Schema versions and the re-load shortcut (schema 2's `file_stats`)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from conftest import invoke

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "customer_inquiry.otlp.jsonl"


def _rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _as_version_1(db: Path) -> None:
    """Turn a store into what agtrace wrote with schema 1 (no file_stats)."""
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE file_stats")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()


@pytest.fixture
def sample(tmp_path):
    if not SAMPLE.exists():
        pytest.skip("sample file renamed")
    f = tmp_path / "inquiry.jsonl"
    f.write_bytes(SAMPLE.read_bytes())
    return f


def test_schema_1_store_is_refused_read_only_and_migrated_by_load(tmp_path, sample):
    db = tmp_path / "old.duckdb"
    assert invoke(["load", "--db", db, sample]).exit_code == 0
    _as_version_1(db)
    r = invoke(["traces", "--db", db])
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == f"error: {db} uses schema 1; this agtrace needs 2"
    assert r.stderr.splitlines()[1] == (
        "hint: run `agtrace load` on it once (it migrates the store), or load into a new store")
    r = invoke(["load", "--db", db, sample])
    assert r.exit_code == 0, r.stderr
    assert "already loaded" in r.stderr  # the content hash still recognises it
    assert _rows(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    assert invoke(["traces", "--db", db]).exit_code == 0


def test_store_from_a_newer_agtrace_is_refused(tmp_path, sample):
    db = tmp_path / "new.duckdb"
    assert invoke(["load", "--db", db, sample]).exit_code == 0
    con = duckdb.connect(str(db))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    for args in (["traces", "--db", db], ["load", "--db", db, sample]):
        r = invoke(args)
        assert r.exit_code == 2
        assert r.stderr.splitlines()[0] == (
            f"error: {db} was written by a newer agtrace (schema 99, this agtrace reads up to 2)")


def test_unchanged_file_is_not_read_again(tmp_path, sample, monkeypatch):
    from agtrace.ingest import loader

    db = tmp_path / "s.duckdb"
    assert invoke(["load", "--db", db, sample]).exit_code == 0
    stats = _rows(db, "SELECT path, size, mtime_ns FROM file_stats")
    st = sample.stat()
    assert stats == [(str(sample.resolve()), st.st_size, st.st_mtime_ns)]

    def no_hashing(*a):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(loader, "_hash_source", no_hashing)
    r = invoke(["load", "--db", db, sample])
    assert r.exit_code == 0, r.stderr
    assert f"{sample}: already loaded" in r.stderr


def test_changed_file_is_read_and_same_content_elsewhere_is_recognised(tmp_path, sample):
    db = tmp_path / "s.duckdb"
    assert invoke(["load", "--db", db, sample]).exit_code == 0
    before = _rows(db, "SELECT count(*) FROM spans")[0][0]
    # same size and content, new modification time: hashed again, still the same file
    st = sample.stat()
    os.utime(sample, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    r = invoke(["load", "--db", db, sample])
    assert "already loaded" in r.stderr
    assert _rows(db, "SELECT count(*) FROM file_stats") == [(1,)]
    assert _rows(db, "SELECT mtime_ns FROM file_stats") == [(st.st_mtime_ns + 5_000_000_000,)]
    # a copy at another path: read, recognised by content
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(sample.read_bytes())
    r = invoke(["load", "--db", db, copy])
    assert f"{copy}: already loaded" in r.stderr
    # new content at the old path (one span dropped): loaded, nothing duplicated
    lines = sample.read_bytes().splitlines(keepends=True)
    sample.write_bytes(b"".join(lines[:-1]))
    r = invoke(["load", "--db", db, sample])
    assert r.exit_code == 0, r.stderr
    assert "already loaded" not in r.stderr
    assert _rows(db, "SELECT count(*) FROM spans")[0][0] == before
