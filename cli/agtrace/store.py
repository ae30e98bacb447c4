"""The one module that talks to DuckDB: schema, migrations, opening and locking.

Schema (version 1), designed for every command at once:

* ``spans`` - one row per span, ids normalised to lowercase hex, times in int64
  nanoseconds, the attributes as a JSON object (for display and output), plus
  fields derived at load time: ``depth``, ``is_root``, ``agent`` (inherited by
  descendants; ``own_agent`` is what the span itself names), ``type``, ``model``, ``input_tokens``, ``output_tokens``,
  ``session``. ``sid`` is a store-wide surrogate key used by every join;
  ``parent_sid`` is the parent's ``sid`` (NULL for roots and orphans), so
  structural predicates join integers, not text ids.
* ``attrs`` - the span attributes again as a typed key/value table (one row per
  scalar, one per array element), which is what filters and ``--by KEY`` read:
  a selective predicate becomes a semi-join over a narrow, dictionary-compressed
  column instead of parsing JSON on every row (see the README's measurements).
* ``resources`` / ``resource_attrs`` - resources de-duplicated by content.
* ``links`` - span links and extra references, looked up from either side.
* ``traces`` - one summary row per trace, rebuilt for the traces a load touches.
* ``files`` - content hashes of loaded files, so a re-load is a no-op.
* ``meta`` - the schema version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from agtrace.engine import duckdb

from agtrace.errors import StoreError

SCHEMA_VERSION = 2
DEFAULT_DB = "agtrace.duckdb"
ENV_DB = "AGTRACE_DB"
ENV_LOCK_TIMEOUT = "AGTRACE_LOCK_TIMEOUT"

SPAN_COLUMNS = (
    "sid", "trace_id", "span_id", "parent_span_id", "parent_sid", "name", "kind", "status", "status_message",
    "start_ns", "end_ns", "duration_ns", "service", "resource_id", "scope_name", "scope_version",
    "attributes", "events", "depth", "is_root", "agent", "own_agent", "type", "model", "input_tokens",
    "output_tokens", "session", "source",
)

SCHEMA_SQL = """
CREATE TABLE meta (key VARCHAR, value VARCHAR);
CREATE TABLE files (
    content_hash VARCHAR, path VARCHAR, size BIGINT, spans BIGINT, loaded_at TIMESTAMP
);
CREATE TABLE file_stats (path VARCHAR, size BIGINT, mtime_ns BIGINT, content_hash VARCHAR);
CREATE TABLE resources (resource_id VARCHAR, service VARCHAR, attributes JSON);
CREATE TABLE resource_attrs (
    resource_id VARCHAR, key VARCHAR, idx INTEGER, vtype VARCHAR, str_val VARCHAR, num_val DOUBLE
);
CREATE TABLE spans (
    sid BIGINT,
    trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, parent_sid BIGINT,
    name VARCHAR, kind VARCHAR, status VARCHAR, status_message VARCHAR,
    start_ns BIGINT, end_ns BIGINT, duration_ns BIGINT,
    service VARCHAR, resource_id VARCHAR, scope_name VARCHAR, scope_version VARCHAR,
    attributes JSON, events JSON,
    depth INTEGER, is_root BOOLEAN, agent VARCHAR, own_agent VARCHAR, type VARCHAR,
    model VARCHAR, input_tokens BIGINT, output_tokens BIGINT, session VARCHAR,
    source VARCHAR
);
CREATE TABLE attrs (
    sid BIGINT, key VARCHAR, idx INTEGER, vtype VARCHAR, str_val VARCHAR, num_val DOUBLE
);
CREATE TABLE links (
    sid BIGINT, idx INTEGER, trace_id VARCHAR, span_id VARCHAR,
    linked_trace_id VARCHAR, linked_span_id VARCHAR, ref_type VARCHAR, attributes JSON
);
CREATE TABLE traces (
    trace_id VARCHAR, root_span_id VARCHAR, root_name VARCHAR, service VARCHAR,
    start_ns BIGINT, end_ns BIGINT, duration_ns BIGINT,
    span_count BIGINT, error_count BIGINT, root_count INTEGER, agents VARCHAR[]
);
"""

# Migrations from version N to N+1, as small named functions, run by the first
# writing command (`load`) inside one transaction; read-only commands ask for
# that load. A store from a newer agtrace is refused rather than misread.
def _v1_to_v2(con: duckdb.DuckDBPyConnection) -> None:
    """Schema 2 remembers where a loaded file lives, its size and modification
    time, so loading it again answers "already loaded" without reading it."""
    con.execute("CREATE TABLE file_stats (path VARCHAR, size BIGINT, mtime_ns BIGINT, content_hash VARCHAR)")


MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {1: _v1_to_v2}


def resolve_db_path(db: str | os.PathLike | None) -> Path:
    """--db, else $AGTRACE_DB, else ./agtrace.duckdb."""
    if db:
        return Path(db)
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    return Path(DEFAULT_DB)


def lock_timeout() -> float:
    """Seconds to wait for a store another process is writing: $AGTRACE_LOCK_TIMEOUT, else 30."""
    raw = os.environ.get(ENV_LOCK_TIMEOUT, "").strip()
    if not raw:
        return 30.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):
        raise StoreError(f"{ENV_LOCK_TIMEOUT}={raw!r} is not a number of seconds", hint="use e.g. 0, 5 or 120")
    return value


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Could not set lock" in text or "Conflicting lock" in text)


class Store:
    """An open agtrace store (a DuckDB connection with the agtrace schema)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, read_only: bool):
        self.con = con
        self.path = path
        self.read_only = read_only

    # -- opening -----------------------------------------------------------
    @classmethod
    def memory(cls) -> "Store":
        """A throw-away store for `-i FILE` analysis without a persistent load."""
        con = duckdb.connect(":memory:")
        _configure(con)
        con.execute(SCHEMA_SQL)
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        return cls(con, None, read_only=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        *,
        read_only: bool = True,
        wait_seconds: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> "Store":
        """Open (or, for writing, create) the store at `path`.

        DuckDB allows one writing process per file; while another agtrace holds
        the lock we retry for `wait_seconds` (default: $AGTRACE_LOCK_TIMEOUT, else
        30), telling `on_wait` once, then fail with a clear "store busy" error.
        """
        p = resolve_db_path(path)
        if "?" in str(p):
            # DuckDB reads what follows a "?" as connection options: it would
            # write the log of a store at /a?b/s.duckdb to "/a.wal?b/s.duckdb".
            raise StoreError(f"a store path cannot contain '?': {p}",
                             hint="choose a --db path (file and directories) without '?'")
        if wait_seconds is None:
            wait_seconds = lock_timeout()
        if read_only and not p.exists():
            raise StoreError(
                f"no agtrace store at {p}",
                hint="load traces first with `agtrace load FILE...`, point --db/AGTRACE_DB at a store, or analyse files directly with -i FILE",
            )
        if p.exists() and p.is_dir():
            raise StoreError(f"{p} is a directory, not an agtrace store", hint="pass a file path with --db")
        if p.exists() and p.is_file() and not _looks_like_duckdb(p):
            raise StoreError(
                f"{p} is not a DuckDB store" + (" (it is empty)" if p.stat().st_size == 0 else ""),
                hint="to analyse trace files use -i FILE or `agtrace load FILE`; --db names the store file",
            )
        if not read_only and not p.exists():
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory for store {p}: {exc.strerror or exc}",
                                 hint="choose a writable --db path") from None
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                con = duckdb.connect(str(p), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"cannot open store {p}: {_first_line(exc)}",
                                     hint="check that the path is writable (load) or readable, or choose another --db") from None
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"store busy: {p} is being written by another agtrace process",
                        hint=f"wait for the other load to finish, use another --db, or wait longer with {ENV_LOCK_TIMEOUT}=SECONDS",
                    ) from None
                if on_wait and not told:
                    on_wait(f"store {p} is busy (another agtrace process is writing); waiting up to {wait_seconds:.0f}s...")
                    told = True
                time.sleep(0.2)
            except duckdb.Error as exc:
                raise StoreError(
                    f"{p} is not a readable agtrace store: {_first_line(exc)}",
                    hint="pass another --db path, or remove the file if it is not needed",
                ) from None
        _configure(con)
        store = cls(con, p, read_only)
        try:
            store._check_schema()
        except BaseException:
            con.close()  # a refused store must not stay open in this process
            raise
        return store

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        if not tables:
            if self.read_only:
                raise StoreError(f"{self.path} is an empty database, not an agtrace store",
                                 hint="load traces into it with `agtrace load --db PATH FILE...`")
            self.con.execute("BEGIN")
            self.con.execute(SCHEMA_SQL)
            self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            self.con.execute("COMMIT")
            return
        if "meta" not in tables:
            raise StoreError(f"{self.path} is a DuckDB file but not an agtrace store",
                             hint="use another --db path")
        rows = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        row = rows[0] if rows else None
        version = int(row[0]) if row and str(row[0]).isdigit() else None
        if version is None:
            raise StoreError(f"{self.path} has no agtrace schema version", hint="use another --db path")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer agtrace (schema {version}, this agtrace reads up to {SCHEMA_VERSION})",
                hint="upgrade agtrace, or load the traces into a new store",
            )
        if version < SCHEMA_VERSION:
            if self.read_only:
                raise StoreError(
                    f"{self.path} uses schema {version}; this agtrace needs {SCHEMA_VERSION}",
                    hint="run `agtrace load` on it once (it migrates the store), or load into a new store",
                )
            self.con.execute("BEGIN")
            for v in range(version, SCHEMA_VERSION):
                migrate = MIGRATIONS.get(v)
                if migrate is None:
                    self.con.execute("ROLLBACK")
                    raise StoreError(f"no migration from schema {v}", hint="load the traces into a new store")
                migrate(self.con)
            self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
            self.con.execute("COMMIT")

    # -- helpers -----------------------------------------------------------
    def close(self) -> None:
        self.con.close()
        if self.path is not None and not self.read_only:
            try:  # DuckDB's spill directory, left behind empty by a big load
                os.rmdir(f"{self.path}.tmp")
            except OSError:
                pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def span_count(self) -> int:
        return self.con.execute("SELECT count(*) FROM spans").fetchall()[0][0]

    def trace_count(self) -> int:
        return self.con.execute("SELECT count(*) FROM traces").fetchall()[0][0]


def link_parents(con: duckdb.DuckDBPyConnection) -> None:
    """Fill `parent_sid` for spans inserted without it (tests and tools that
    write rows directly; the loader fills it itself)."""
    con.execute("""
        UPDATE spans SET parent_sid = p.sid FROM spans p
        WHERE spans.parent_sid IS NULL AND p.trace_id = spans.trace_id
          AND p.span_id = spans.parent_span_id AND p.sid <> spans.sid
    """)


def _looks_like_duckdb(p: Path) -> bool:
    """DuckDB files carry the magic bytes "DUCK" at offset 8."""
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError:
        return True  # let DuckDB report what is wrong
    return head[8:12] == b"DUCK"


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    # Bound DuckDB's own memory so that big loads stream to disk instead of
    # growing without limit; the figure leaves room for Python's batches.
    limit = os.environ.get("AGTRACE_MEMORY_LIMIT", "1GB")
    try:
        con.execute(f"SET memory_limit = '{_safe_setting(limit)}'")
    except duckdb.Error:
        pass
    con.execute("SET enable_progress_bar = false")


def _safe_setting(value: str) -> str:
    # The memory limit comes from the environment, not from trace files or
    # expressions; still, keep it to the characters a size can have.
    return "".join(ch for ch in value if ch.isalnum() or ch in ". ")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
