"""Concurrent use, crashes and interrupts, with real `agtrace` processes.

* Two loads on one store: the second waits (saying so) or fails clearly with
  "store busy"; afterwards every span is present exactly once.
* A load killed with SIGKILL at any moment (while reading, while DuckDB writes
  uncommitted blocks, while the write-ahead log is written) leaves the store
  readable with exactly its previous content, or, past the commit, exactly
  the new one; a later load completes it.
* Readers during a load see the old or the new content, or "store busy".
* Ctrl-C (SIGINT to the whole process group, as a terminal sends it, pool
  workers included) exits 130 with "interrupted" and no traceback.
* Commands write nothing but the store (and its .wal) and the paths named.

Timing never decides a result: every assertion holds whatever the
interleaving; sleeps only spread the moments at which signals land.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import corpus_build
from conftest import invoke

ROOT = Path(__file__).resolve().parents[1]
BUSY = "is busy (another agtrace process is writing); waiting up to"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")


def _env(tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGTRACE_")}
    env.update({
        "PYTHONPATH": str(ROOT / "cli") + os.pathsep + env.get("PYTHONPATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AGTRACE_WORKERS": "0",  # the process pool only where a test asks for it
        # The Python readers: the signals below must land while a load still
        # runs, and the Arrow reader finishes the test files in well under a second.
        "AGTRACE_FAST_MIN_BYTES": str(1 << 62),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", "agtrace", *map(str, args)]


def run(args, tmp: Path, cwd: Path | None = None, timeout: float = 120, **env):
    return subprocess.run(_cmd(*args), cwd=cwd or tmp, env=_env(tmp, **env), capture_output=True,
                          text=True, timeout=timeout)


def start(args, tmp: Path, cwd: Path | None = None, **env) -> subprocess.Popen:
    """A background agtrace in its own process group (so a signal reaches its workers too)."""
    return subprocess.Popen(_cmd(*args), cwd=cwd or tmp, env=_env(tmp, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(p: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def no_traceback(*texts: str) -> None:
    for t in texts:
        assert "Traceback" not in t and "Error:" not in t.replace("error:", ""), t


def fingerprint(db: Path) -> tuple:
    """Row count and an order-independent hash of every table (files without its timestamp)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = []
        for table in ("spans", "attrs", "links", "resources", "resource_attrs", "traces"):
            out.append(con.execute(f"SELECT '{table}', count(*), bit_xor(hash(t)) FROM {table} t").fetchone())
        out.append(con.execute(
            "SELECT 'files', count(*), bit_xor(hash(content_hash || path || size || spans)) FROM files").fetchone())
        return tuple(out)
    finally:
        con.close()


def span_count(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        con.close()


def wait_for(predicate, timeout: float = 60, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three OTLP files (different seeds, so different traces): small, medium, big."""
    d = tmp_path_factory.mktemp("inputs")
    files = {}
    for name, spans, seed in (("small", 1000, 11), ("medium", 2000, 12), ("big", 8000, 13)):
        files[name] = corpus_build.big_otlp_file(d / f"{name}.jsonl", spans * 680, seed=seed)
    counts = {}
    for name, f in files.items():
        db = d / f"{name}.duckdb"
        r = invoke(["load", "--db", db, f, "-q"])
        assert r.exit_code == 0, r.stderr
        counts[name] = span_count(db)
        counts[name + ":content"] = content(db)
    assert counts["small"] >= 1000 and counts["big"] >= 8000
    return files, counts


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """The store `small` then `big` give without any crash."""
    files, _ = inputs
    db = tmp_path_factory.mktemp("reference") / "store.duckdb"
    for f in (files["small"], files["big"]):
        assert invoke(["load", "--db", db, f, "-q"]).exit_code == 0
    return fingerprint(db)


def content(db: Path) -> tuple[int, int, int, int]:
    """What the spans and traces say, whatever surrogate keys the order of loads gave them.

    XOR of row hashes: the content of a union of traces is the XOR of the parts."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT count(*), bit_xor(hash(trace_id, span_id, parent_span_id, name, start_ns, end_ns, attributes, "
            "depth, agent, service)) FROM spans").fetchone() + con.execute(
            "SELECT count(*), bit_xor(hash(trace_id, root_span_id, span_count, error_count, agents)) FROM traces").fetchone()
    finally:
        con.close()


def writer_holds_lock(db: Path, p: subprocess.Popen) -> bool:
    """True once `p` has the store open for writing (or has ended).

    A read-only open fails while a writer holds DuckDB's lock; when it succeeds
    the connection is closed at once (at worst the writer waits 0.2 s)."""
    if p.poll() is not None:
        return True
    if not db.exists():
        return False
    try:
        duckdb.connect(str(db), read_only=True).close()
        return False
    except duckdb.Error as exc:
        return "lock" in str(exc).lower()


class LockHolder:
    """Holds DuckDB's write lock on a store, as a running `agtrace load` does."""

    def __init__(self, db: Path):
        self.con = duckdb.connect(str(db))

    def release(self) -> None:
        self.con.close()


# -- two loads, one store ----------------------------------------------------------

def test_two_loads_at_once_land_every_span_once(tmp_path, inputs):
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    a = start(["load", "--db", db, files["big"], files["small"]], tmp_path)
    assert wait_for(lambda: db.exists() or a.poll() is not None)
    b = start(["load", "--db", db, files["small"], files["medium"]], tmp_path)
    (ra, _, ea), (rb, _, eb) = finish(a), finish(b)
    no_traceback(ea, eb)
    assert (ra, rb) == (0, 0), (ea, eb)
    # Whichever got the lock second either waited, saying so once, or needed not to.
    assert (ea + eb).count(BUSY) <= 1
    assert span_count(db) == counts["big"] + counts["small"] + counts["medium"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) - count(DISTINCT (trace_id, span_id)), count(*) - count(DISTINCT sid) "
                           "FROM spans").fetchone() == (0, 0)
        assert con.execute("SELECT count(*) FROM files").fetchone()[0] == 3
        assert con.execute("SELECT sum(span_count) FROM traces").fetchone()[0] == counts["big"] + counts["small"] + counts["medium"]
    finally:
        con.close()
    # The same content as the three files loaded alone (span keys aside).
    expected = [0, 0, 0, 0]
    for name in ("big", "small", "medium"):
        part = counts[name + ":content"]
        expected = [expected[0] + part[0], expected[1] ^ part[1], expected[2] + part[2], expected[3] ^ part[3]]
    assert list(content(db)) == expected


def test_second_load_waits_for_the_writer_with_a_message(tmp_path, inputs):
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    assert invoke(["load", "--db", db, files["small"], "-q"]).exit_code == 0  # setup, in-process
    holder = LockHolder(db)
    try:
        p = start(["load", "--db", db, files["medium"]], tmp_path)
        first = p.stderr.readline()  # blocks until the waiting message
        assert first == f"store {db} {BUSY} 30s...\n"
        assert p.poll() is None  # still waiting, not failed
    finally:
        holder.release()
    code, out, err = finish(p)
    no_traceback(err)
    assert code == 0, err
    assert span_count(db) == counts["small"] + counts["medium"]


def test_busy_store_fails_clearly_after_the_lock_timeout(tmp_path, inputs):
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    assert invoke(["load", "--db", db, files["small"], "-q"]).exit_code == 0  # setup, in-process
    before = fingerprint(db)
    holder = LockHolder(db)
    try:
        for args in (["load", "--db", db, files["medium"]], ["traces", "--db", db], ["query", "--db", db, "--count"]):
            r = run(args, tmp_path, AGTRACE_LOCK_TIMEOUT="0.5")
            no_traceback(r.stderr)
            assert r.returncode == 2, r.stderr
            assert r.stdout == ""
            assert r.stderr.splitlines()[-2:] == [
                f"error: store busy: {db} is being written by another agtrace process",
                "hint: wait for the other load to finish, use another --db, or wait longer with AGTRACE_LOCK_TIMEOUT=SECONDS",
            ]
    finally:
        holder.release()
    assert fingerprint(db) == before


def test_readers_during_a_load_see_old_or_new_content_or_busy(tmp_path, inputs):
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    assert invoke(["load", "--db", db, files["small"], "-q"]).exit_code == 0  # setup, in-process
    old, new = counts["small"], counts["small"] + counts["big"]
    writer = start(["load", "--db", db, files["big"]], tmp_path)
    seen = []
    while True:
        done = writer.poll() is not None
        r = run(["query", "--db", db, "--count"], tmp_path, AGTRACE_LOCK_TIMEOUT="0")
        no_traceback(r.stderr)
        if r.returncode == 2:
            assert "error: store busy:" in r.stderr
            seen.append("busy")
        else:
            assert r.returncode == 0, r.stderr
            assert int(r.stdout) in (old, new)
            seen.append(int(r.stdout))
        if done:
            break
    code, _, err = finish(writer)
    assert code == 0, err
    assert seen[-1] == new  # once the writer is gone, the whole load is visible


# -- crashes --------------------------------------------------------------------------

def _grew(db: Path, size: int) -> bool:
    try:
        return db.stat().st_size > size
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("moment", ["reading", "uncommitted-blocks", "wal"])
def test_sigkill_during_a_load_leaves_the_previous_content(tmp_path, inputs, reference, moment):
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    wal = Path(str(db) + ".wal")
    assert invoke(["load", "--db", db, files["small"], "-q"]).exit_code == 0  # setup, in-process
    before = fingerprint(db)
    size = db.stat().st_size
    p = start(["load", "--db", db, files["big"]], tmp_path)
    if moment == "reading":  # the loader has the store and is parsing the file
        assert wait_for(lambda: writer_holds_lock(db, p), step=0.05)
    elif moment == "uncommitted-blocks":  # DuckDB writes big uncommitted inserts into the file early
        assert wait_for(lambda: _grew(db, size) or wal.exists() or p.poll() is not None, step=0.005)
    else:  # the commit is being written to the write-ahead log
        assert wait_for(lambda: wal.exists() or p.poll() is not None, step=0.002)
    finished_first = p.poll() is not None
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()
    after = fingerprint(db)  # the store opens and reads
    if moment == "wal" or finished_first:
        assert after in (before, reference)  # at the commit: all or nothing
    else:
        assert after == before
    r = invoke(["traces", "--db", db, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    if moment == "reading":
        # Loading again completes the store: exactly the result of loads that never crashed.
        r = run(["load", "--db", db, files["big"]], tmp_path)
        no_traceback(r.stderr)
        assert r.returncode == 0, r.stderr
        assert fingerprint(db) == reference


def test_a_load_killed_while_its_workers_spill_leaves_files_the_next_load_removes(tmp_path, inputs, reference):
    """SIGKILL leaves no chance to clean up: the workers' Parquet files stay
    beside the store until the next load into it removes them."""
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    assert invoke(["load", "--db", db, files["small"], "-q"]).exit_code == 0
    before = fingerprint(db)
    p = start(["load", "--db", db, files["big"]], tmp_path, AGTRACE_WORKERS="2", AGTRACE_PARALLEL_MIN_BYTES=1)
    assert wait_for(lambda: list(tmp_path.glob(".agtrace-load-*/*.parquet")) or p.poll() is not None,
                    step=0.01)
    assert p.poll() is None, "the load ended before its workers spilled"
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()
    assert fingerprint(db) == before
    assert list(tmp_path.glob(".agtrace-load-*"))
    r = run(["load", "--db", db, files["big"]], tmp_path, AGTRACE_WORKERS="2", AGTRACE_PARALLEL_MIN_BYTES=1)
    assert r.returncode == 0, r.stderr
    assert fingerprint(db) == reference
    assert not list(tmp_path.glob(".agtrace-load-*"))


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _running(pid: int, started: str) -> bool:
    """Whether `pid` is still the process that started at `started` and has not exited."""
    fields = _proc_stat(pid)
    # fields[19]: the start time (field 22 of stat), so a reused pid is not taken
    # for the old process; a zombie has exited (a container's init may not reap it).
    return fields is not None and fields[19] == started and fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_workers_die_with_a_load_killed_alone(tmp_path, inputs):
    """The OOM killer or `kill -9 PID` takes the main process only: its reader
    workers used to wait forever on their queue, each holding its memory."""
    files, _ = inputs
    db = tmp_path / "store.duckdb"
    p = start(["load", "--db", db, files["big"]], tmp_path, AGTRACE_WORKERS="2", AGTRACE_PARALLEL_MIN_BYTES=1)
    assert wait_for(lambda: list(tmp_path.glob(".agtrace-load-*/*.parquet")) or p.poll() is not None,
                    step=0.01)
    assert p.poll() is None, "the load ended before its workers started"
    # the workers and multiprocessing's resource tracker, which outlives them
    kids = {k: (_proc_stat(k) or [""] * 20)[19] for k in _children(p.pid)}
    assert len(kids) >= 2
    os.kill(p.pid, signal.SIGKILL)
    p.wait()  # not communicate(): living workers would hold its pipes open
    p.stdout.close()
    p.stderr.close()
    try:
        assert wait_for(lambda: not any(_running(k, t) for k, t in kids.items()), timeout=20), \
            [k for k, t in kids.items() if _running(k, t)]
    finally:
        for k, t in kids.items():
            if _running(k, t):
                os.kill(k, signal.SIGKILL)


# -- Ctrl-C -------------------------------------------------------------------------------



@pytest.mark.parametrize("workers", ["0", "2"])
def test_ctrl_c_during_a_load_exits_130_and_changes_nothing(tmp_path, inputs, workers):
    files, counts = inputs
    db = tmp_path / "store.duckdb"
    assert invoke(["load", "--db", db, files["small"], "-q"]).exit_code == 0  # setup, in-process
    before = fingerprint(db)
    p = start(["load", "--db", db, files["big"]], tmp_path, AGTRACE_WORKERS=workers, AGTRACE_PARALLEL_MIN_BYTES=1)
    assert wait_for(lambda: writer_holds_lock(db, p), step=0.05)
    time.sleep(0.3)  # inside the load (it takes seconds), workers started
    assert p.poll() is None
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    try:
        code, out, err = finish(p, timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("the load did not end after Ctrl-C")
    # 130, or killed by SIGINT at exit (a shell shows that as 130 too).
    assert code in (130, -signal.SIGINT), err
    assert err.splitlines()[-1] == "interrupted"
    no_traceback(err)
    assert "KeyboardInterrupt" not in err
    assert fingerprint(db) == before
    assert not list(tmp_path.glob(".agtrace-load-*"))  # the workers' spilled batches are gone


def test_ctrl_c_during_analysis_of_files_exits_130(tmp_path, inputs):
    files, _ = inputs
    # The big file four times over: reading it takes seconds, so the signal
    # lands inside the load however fast the machine.
    four = tmp_path / "four.jsonl"
    four.write_bytes(files["big"].read_bytes() * 4)
    p = start(["traces", "-i", four], tmp_path)
    time.sleep(1.0)  # past start-up, inside reading the file
    assert p.poll() is None
    os.killpg(p.pid, signal.SIGINT)
    code, out, err = finish(p)
    # 130, or killed by SIGINT at exit (a shell shows that as 130 too).
    assert code in (130, -signal.SIGINT), err
    assert err.splitlines()[-1] == "interrupted", err
    no_traceback(err)
    assert out == ""


def test_interrupted_duckdb_query_is_an_interrupt_not_a_traceback(monkeypatch, tmp_path):
    """DuckDB turns Ctrl-C during a query into RuntimeError('Query interrupted')."""
    def interrupted(*a, **k):
        raise RuntimeError("Query interrupted")

    f = tmp_path / "t.jsonl"
    shutil.copy(ROOT / "tests" / "corpus" / "bom.jsonl", f)
    assert invoke(["load", f]).exit_code == 0
    monkeypatch.setattr("agtrace.analysis.tracelist.list_traces", interrupted)
    r = invoke(["traces"])
    assert (r.exit_code, r.stderr) == (130, "interrupted\n")


def test_ctrl_c_in_an_arrow_scan_is_an_interrupt_not_a_traceback(monkeypatch, tmp_path):
    """Ctrl-C landing in the Python code that feeds DuckDB a registered Arrow
    table (how -i merges its staged batches) comes back as a DuckDB error
    wrapping the KeyboardInterrupt."""
    from agtrace.engine import duckdb

    def interrupted(*a, **k):
        raise duckdb.InvalidInputException(
            "Invalid Input Error: counting the rows of the object registered as 'stage_spans' failed: "
            "KeyboardInterrupt: ")

    monkeypatch.setattr("agtrace.ingest.loader._merge", interrupted)
    r = invoke(["traces", "-i", ROOT / "sample_traces" / "market_research.jsonl"])
    assert (r.exit_code, r.stderr) == (130, "interrupted\n")


# -- nothing escapes ------------------------------------------------------------------------

def _tree(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def test_commands_write_only_the_store_and_named_paths(tmp_path, inputs, monkeypatch):
    files, _ = inputs
    cwd, home, tmpdir, src = (tmp_path / n for n in ("cwd", "home", "tmp", "src"))
    for d in (cwd, home, tmpdir, src):
        d.mkdir()
    shutil.copy(files["small"], src / "a.jsonl")
    shutil.copy(ROOT / "tests" / "corpus" / "gzip_cut_short.jsonl.gz", src / "b.jsonl.gz")
    os.chmod(src, 0o555)
    env = {"HOME": home, "TMPDIR": tmpdir, "XDG_CACHE_HOME": home / ".cache"}

    def unchanged(what) -> None:
        assert _tree(cwd) <= {"store.duckdb", "store.duckdb.wal"}, what
        assert _tree(home) == set() and _tree(tmpdir) == set(), what
        assert _tree(src) == {"a.jsonl", "b.jsonl.gz"}, what

    try:
        # A real process, with the parallel reader's worker pool.
        r = run(["load", "--db", "store.duckdb", src], tmp_path, cwd=cwd, AGTRACE_WORKERS="2",
                AGTRACE_PARALLEL_MIN_BYTES=1, **env)
        no_traceback(r.stderr)
        assert r.returncode == 0, r.stderr
        unchanged("load")
        # Every other command, in-process (same code, no interpreter start-up per command).
        monkeypatch.chdir(cwd)
        for k, v in env.items():
            monkeypatch.setenv(k, str(v))
        monkeypatch.delenv("AGTRACE_DB")
        r = invoke(["traces", "--db", "store.duckdb", "--format", "json"])
        assert r.exit_code == 0, r.stderr
        trace_id = json.loads(r.stdout)[0]["trace_id"]
        for args in (
            ["load", "--db", "store.duckdb", src / "a.jsonl"],  # already loaded
            ["query", "--db", "store.duckdb", "--count", 'name =~ "chat"'],
            ["query", "--db", "store.duckdb", "--format", "jsonl", "depth > 1"],
            ["stats", "--db", "store.duckdb"],
            ["show", "--db", "store.duckdb", trace_id],
            ["explain", "--db", "store.duckdb", trace_id],
            ["traces", "-i", src / "a.jsonl", "--format", "csv"],
            ["query", "-i", src / "b.jsonl.gz", "--count"],
        ):
            r = invoke(args)
            assert r.exception is None or isinstance(r.exception, SystemExit), (args, r.exception)
            assert r.exit_code == 0, (args, r.stderr)
            unchanged(args)
        # Without --db or AGTRACE_DB the store is ./agtrace.duckdb, and nothing else appears.
        assert invoke(["load", src / "a.jsonl"]).exit_code == 0
        assert _tree(cwd) <= {"store.duckdb", "store.duckdb.wal", "agtrace.duckdb", "agtrace.duckdb.wal"}
        assert "agtrace.duckdb" in _tree(cwd)
        assert _tree(home) == set() and _tree(tmpdir) == set()
    finally:
        os.chmod(src, 0o755)
