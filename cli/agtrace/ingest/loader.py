"""`load_paths`: files -> store, in one transaction, idempotently.

Flow: expand paths; skip files whose content hash is already in the store;
read every document into the `SpanSink`, whose Arrow batches go to temporary
staging tables (a big file's, into a file store, to Parquet files the reader
workers write: `ingest.spill`; its span rows are staged from there, its
attribute and link rows read by the final inserts); then, still inside the transaction,
drop duplicates (a span is (trace_id, span_id, kind); a reader may add a
discriminator, as Zipkin does with the start microsecond because one message
received by several consumers gives spans of one id and kind), derive tree
fields over the whole of every touched trace, insert, rebuild the touched
traces' summaries and record the files.
Any failure or interruption rolls back: the store is exactly as before.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from agtrace.engine import relational
from agtrace.errors import InputError, StoreError
from agtrace.ingest.spill import SPILLED_ROWS_SQL, Spill
from agtrace.ingest.sources import BadDocument, Source, expand_paths, iter_documents, open_binary
from agtrace.store import Store

_STAGE_SQL = """
CREATE OR REPLACE TEMP TABLE stage_spans AS SELECT
    sid, trace_id, span_id, parent_span_id, name, kind, status, status_message, start_ns, end_ns,
    service, resource_id, scope_name, scope_version, attributes, events, own_agent, type, model,
    input_tokens, output_tokens, session, source, NULL::BIGINT AS dedupe_key FROM spans LIMIT 0;
CREATE OR REPLACE TEMP TABLE stage_attrs AS SELECT * FROM attrs LIMIT 0;
CREATE OR REPLACE TEMP TABLE stage_links AS SELECT * FROM links LIMIT 0;
CREATE OR REPLACE TEMP TABLE stage_resources AS SELECT * FROM resources LIMIT 0;
CREATE OR REPLACE TEMP TABLE stage_resource_attrs AS SELECT * FROM resource_attrs LIMIT 0;
"""
_DROP_STAGE_SQL = """
DROP TABLE IF EXISTS stage_spans; DROP TABLE IF EXISTS stage_attrs; DROP TABLE IF EXISTS stage_links;
DROP TABLE IF EXISTS stage_resources; DROP TABLE IF EXISTS stage_resource_attrs;
DROP VIEW IF EXISTS new_spans; DROP TABLE IF EXISTS new_sids; DROP TABLE IF EXISTS touched; DROP TABLE IF EXISTS derived;
"""


@dataclass
class FileReport:
    path: str
    status: str  # loaded | already loaded | empty | unknown format | duplicate input
    format: str | None
    spans: int
    bad_records: int
    bad: list[tuple[int | None, str]]
    warnings: int
    warning_list: list[tuple[int | None, str]]
    other_signals: int

    def to_dict(self) -> dict:
        return {
            "path": self.path, "status": self.status, "format": self.format, "spans": self.spans,
            "bad_records": self.bad_records,
            "bad": [{"line": ln, "reason": r} for ln, r in self.bad],
            "warnings": self.warnings,
            "warning_list": [{"line": ln, "reason": r} for ln, r in self.warning_list],
            "other_signals_skipped": self.other_signals,
        }


@dataclass
class LoadReport:
    files: list[FileReport] = field(default_factory=list)
    spans_read: int = 0
    spans_added: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0
    traces_touched: int = 0
    traces_in_store: int = 0
    spans_in_store: int = 0
    bad_records: int = 0
    warnings: int = 0
    other_signals: int = 0
    parent_cycles: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "files": [f.to_dict() for f in self.files],
            "spans_read": self.spans_read, "spans_added": self.spans_added,
            "duplicates": self.duplicates, "conflicting_duplicates": self.conflicting_duplicates,
            "traces_touched": self.traces_touched, "bad_records": self.bad_records,
            "warnings": self.warnings, "other_signals_skipped": self.other_signals,
            "parent_cycles": self.parent_cycles,
            "traces_in_store": self.traces_in_store, "spans_in_store": self.spans_in_store,
            "seconds": round(self.seconds, 3),
        }


ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)

# DuckDB's memory limits during a load into a file store (see load_paths), with
# 20,000-span batches and bucketed tree derivation: reading stages rows with
# 128 MB (the rest spills to <store>.tmp, at the same speed), leaving room for
# the worker pool; the merge gets 256 MB, which its deduplication and joins need
# on millions of spans (128 MB ran out on a 2 GB file). Peak of a 2 GB load:
# see benchmarks/bench_memory.py and the README.
LOAD_MEMORY_LIMIT = "128MB"
MERGE_MEMORY_LIMIT = "256MB"


class _ProgressReader(io.RawIOBase):
    """Counts bytes read from the underlying (compressed) file for progress."""

    def __init__(self, f, callback):
        self.f = f
        self.callback = callback
        self.done = 0

    def readable(self):
        return True

    def readinto(self, b):
        n = self.f.readinto(b)
        if n:
            self.done += n
            self.callback(n)
        return n


def _file_stat(src: Source) -> tuple[str, int, int] | None:
    """(absolute path, size, mtime in ns) of a named file, for the re-load shortcut."""
    if src.path is None:
        return None
    try:
        st = src.path.stat()
        return str(src.path.resolve()), st.st_size, st.st_mtime_ns
    except OSError:
        return None


def _hash_source(src: Source, data: bytes | None) -> tuple[str, int]:
    h = hashlib.sha256()
    if data is not None:
        h.update(data)
        return h.hexdigest(), len(data)
    size = 0
    try:
        with open(src.path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"cannot read {src.label}: {exc.strerror or exc}") from None
    return h.hexdigest(), size


def load_paths(
    store: Store,
    paths: list[str],
    *,
    strict: bool = False,
    progress: ProgressFn | None = None,
    stdin_data: bytes | None = None,
    batch_size: int = 20_000,
) -> LoadReport:
    """Load trace files into `store`; see the module docstring for guarantees."""
    t0 = time.perf_counter()
    sources = expand_paths(paths)
    if not sources:
        raise InputError("no input files found", hint="name files, directories, globs or - for stdin")
    con = store.con
    report = LoadReport()
    bounded = store.path is not None and not os.environ.get("AGTRACE_MEMORY_LIMIT")
    if bounded:
        # DuckDB's share of memory while loading into a file store: staged rows
        # beyond it spill to <store>.tmp, so a 2 GB input loads in a few hundred MB.
        con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
    # Where the reader workers write big files' rows (a file store; see ingest.spill).
    spill = Spill(store.path) if store.path is not None else None
    if spill is not None:
        spill.remove_stale()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_STAGE_SQL)
        first_sid = con.execute("SELECT coalesce(max(sid), 0) + 1 FROM spans").fetchone()[0]

        # A memory store (-i) keeps the staged batches as Arrow, and the merge
        # reads them where they are: copying them into DuckDB first took 4-5 s
        # of a 25 s `query -i` on 750,000 spans, with the reader workers idle
        # meanwhile. It costs memory (1.65 GB instead of 1.2 GB for 511 MB of
        # input), so once the held batches pass HOLD_ARROW_MAX_BYTES (whatever
        # the input: compressed, stdin) they are copied and the rest follow as
        # before. A file store copies each batch as it comes, so any file loads
        # in bounded memory.
        held: dict[str, list] | None = {} if store.path is None else None
        held_bytes = 0

        def stage(table, name: str) -> None:
            # Not register() + INSERT: inside a transaction DuckDB keeps a
            # registered Arrow table alive until COMMIT, so a big load held
            # every batch in memory (2.6 GB for a 0.5 GB file).
            con.from_arrow(table).insert_into(name)

        def on_batch(batch) -> None:
            nonlocal held, held_bytes
            relational()  # con.from_arrow (a no-op after the first batch)
            for table, name in ((batch.spans, "stage_spans"), (batch.attrs, "stage_attrs"),
                                (batch.links, "stage_links"), (batch.resources, "stage_resources"),
                                (batch.resource_attrs, "stage_resource_attrs")):
                if not table.num_rows:
                    continue
                if held is None:
                    stage(table, name)
                    continue
                held.setdefault(name, []).append(table)
                held_bytes += table.nbytes
            if held is not None and held_bytes > HOLD_ARROW_MAX_BYTES:
                for name, tables in held.items():
                    for table in tables:
                        stage(table, name)
                held = None

        sink = None  # made when a file needs reading (see below)
        stored_hashes = {r[0] for r in con.execute("SELECT content_hash FROM files").fetchall()}
        known_hashes = set(stored_hashes)  # plus every file met in this load
        # A file at the same path with the same size and modification time as
        # when it was loaded is not read again (hashing 500 MB takes 0.4 s).
        known_stats = {(p, sz, mt): h for p, sz, mt, h in con.execute(
            "SELECT path, size, mtime_ns, content_hash FROM file_stats").fetchall()}
        new_stats: dict[tuple[str, int, int], str] = {}
        loaded_files: list[tuple[str, str, int, int]] = []
        total_bytes = 0
        sizes = {}
        for src in sources:
            if src.path is not None:
                try:
                    sizes[src.label] = src.path.stat().st_size
                except OSError:
                    sizes[src.label] = 0
                total_bytes += sizes[src.label]
        done_bytes = 0

        def advance(n: int) -> None:
            nonlocal done_bytes
            done_bytes += n
            if progress:
                progress(done_bytes, total_bytes)

        for src in sources:
            data = None
            if src.path is None:
                data = stdin_data if stdin_data is not None else open_binary(src)[0].read()
                stdin_data = data
            fstat = _file_stat(src)
            digest = known_stats.get(fstat) if fstat is not None else None
            if digest is None or digest not in known_hashes:
                digest, size = _hash_source(src, data)
            if fstat is not None and fstat not in known_stats:
                new_stats[fstat] = digest
            if digest in known_hashes:
                report.files.append(FileReport(src.label, "already loaded", None, 0, 0, [], 0, [], 0))
                advance(sizes.get(src.label, 0))
                continue
            if sink is None:
                # The readers (and pyarrow, 0.3 s of start-up) are imported only
                # when a file is read: re-loading loaded files stays quick.
                from agtrace.ingest import formats
                from agtrace.ingest.sink import FileStats, SpanSink

                sink = SpanSink(on_batch, first_sid=first_sid, batch_size=batch_size)
                sink.spill = spill
            stats = FileStats(src.label)
            sink.stats = stats
            status = _read_source(src, data, sink, stats, advance)
            if status == "unknown format":
                if src.explicit:
                    first_bad = f" (line {stats.bad[0][0]}: {stats.bad[0][1]})" if stats.bad and stats.bad[0][0] else ""
                    raise InputError(
                        f"{src.label}: not a trace file in any known format{first_bad}",
                        hint="formats tried: " + ", ".join(formats.format_names()),
                    )
            known_hashes.add(digest)
            if status == "unknown format":
                if _broken_json(src, data, stats):
                    # JSON that does not parse (a truncated export): a damaged
                    # trace file, reported with its reasons; --strict fails on it.
                    status = "unreadable"
                else:
                    # A non-trace file met in a directory walk: one line, not N bad records.
                    stats.bad, stats.bad_count = [], 0
            report.files.append(FileReport(
                src.label, status, stats.format, stats.spans, stats.bad_count, stats.bad,
                stats.warning_count, stats.warnings, stats.other_signals,
            ))
            if status == "loaded":
                loaded_files.append((digest, src.label, size, stats.spans))
            report.spans_read += stats.spans
            report.bad_records += stats.bad_count
            report.warnings += stats.warning_count
            report.other_signals += stats.other_signals
        if sink is not None:
            sink.flush()
        if spill is not None:
            spill.stage(con)
        if held:
            import pyarrow as pa

            for name, tables in held.items():
                con.execute(f"DROP TABLE {name}")
                con.register(name, pa.concat_tables(tables))
        if strict and report.bad_records:
            first = next(f for f in report.files if f.bad_records)
            line, reason = first.bad[0]
            raise InputError(
                f"--strict: {report.bad_records} bad record(s); first: {first.path}:{line}: {reason}",
                hint="nothing was loaded; fix the input or load without --strict to skip bad records",
            )
        if bounded:
            con.execute(f"SET memory_limit = '{MERGE_MEMORY_LIMIT}'")
        # A memory store (-i) answers one command: clustering its attribute
        # rows by key costs more than it saves (they go in load order).
        _merge(con, report, cluster=store.path is not None, spill=spill)
        if spill is not None:
            spill.remove(con)
        if loaded_files:
            con.executemany(
                "INSERT INTO files VALUES (?, ?, ?, ?, now()::TIMESTAMP)", [list(x) for x in loaded_files]
            )
        stored_hashes.update(d for d, *_ in loaded_files)
        remember = [[p, sz, mt, h] for (p, sz, mt), h in new_stats.items() if h in stored_hashes]
        if remember:
            con.executemany("DELETE FROM file_stats WHERE path = ?", [[r[0]] for r in remember])
            con.executemany("INSERT INTO file_stats VALUES (?, ?, ?, ?)", remember)
        _unregister(con, held)
        con.execute(_DROP_STAGE_SQL)
        con.execute("COMMIT")
    except BaseException as exc:
        try:
            _unregister(con, held)
            con.execute("ROLLBACK")
        except Exception:
            pass
        if spill is not None:
            spill.remove()
        if type(exc).__name__ == "OutOfMemoryException":  # duckdb's; the store is unchanged
            raise StoreError(
                f"DuckDB ran out of memory while loading ({_exc_text(exc)}); nothing was loaded",
                hint="allow it more with AGTRACE_MEMORY_LIMIT=2GB (or more), or load the files in several runs",
            ) from None
        raise
    report.spans_in_store = store.span_count()
    report.traces_in_store = store.trace_count()
    report.seconds = time.perf_counter() - t0
    return report


def _unregister(con, held: dict[str, list] | None) -> None:
    """Drop the Arrow views of a memory store's staged batches (see `held` in load_paths)."""
    for name in list(held or ()):
        con.unregister(name)
        del held[name]


# The last line of defence against reader bugs on hostile input (see _read_source).
READER_SLIPS = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError, OverflowError)
UNREADABLE = "record not readable"


def _read_source(src: Source, data: bytes | None, sink, stats, advance) -> str:
    """Read one source into the SpanSink; returns its status word."""
    from agtrace.ingest import formats, otlp_arrow, parallel
    from agtrace.ingest.context import ReadContext

    try:
        if data is not None:
            stream, _ = open_binary(src, data)
        else:
            raw = open(src.path, "rb")
            counted = io.BufferedReader(_ProgressReader(raw, advance), buffer_size=1 << 20)
            stream, _ = _wrap(counted)
    except OSError as exc:
        raise InputError(f"cannot read {src.label}: {exc}") from None
    decompressed = getattr(stream, "raw", None)  # a DecompressedReader keeps the damage it met
    ctx = ReadContext(sink, stats)
    seen_formats: set[str] = set()
    any_doc = False
    unknown = 0
    line = 0
    try:
        head = stream.peek(8)[:8]
        for name, sniff, read in formats.BINARY_READERS:
            if head and sniff(head):
                read(stream, ctx)
                stats.format = name
                return "loaded" if (stats.spans or stats.bad_count) else "empty"
        size = sizes_hint(src)
        use_pool = parallel.worthwhile(size)
        if src.path is not None and (use_pool or size >= otlp_arrow.MIN_BYTES):
            first, first_no = _first_content_line(stream)
            stream = _Prepended(first, stream)
            fast = otlp_arrow.looks_like(first)
            if first.strip()[:1] in (b"{", b"[") and (use_pool or fast) and _parses(first):
                stream.readline()  # hand the first line over explicitly
                any_doc = parallel.read_lines_parallel(stream.rest, first_no, first, sink, stats, seen_formats,
                                                       fast=fast, pool=use_pool)
                stats.format = ", ".join(sorted(seen_formats)) or None
                if not any_doc and not stats.bad_count:
                    return "empty"
                return "loaded" if seen_formats else "unknown format"
            stream = _Prepended(b"\n" * (first_no - 1) + first, stream.rest)
        for line, doc in iter_documents(stream):
            if isinstance(doc, BadDocument):
                stats.add_bad(line, doc.reason)
                continue
            any_doc = True
            try:
                known = formats.dispatch(doc, line, ctx, seen_formats)
            except READER_SLIPS as exc:
                # A reader met a shape it did not expect: the rest of this document
                # is one bad record (spans read before it are kept), not a traceback.
                stats.add_bad(line, f"{UNREADABLE}: {type(exc).__name__}: {_exc_text(exc)}")
                continue
            if not known:
                unknown += 1
                stats.add_bad(line, "JSON value in no known trace format")
    except (EOFError, zlib.error, OSError) as exc:
        stats.add_bad(line + 1 if line else None, f"compressed stream is corrupt or cut short ({_exc_text(exc)})")
    except Exception as exc:  # zstandard.ZstdError and friends
        if type(exc).__module__.startswith("zstandard") or "zstd" in type(exc).__name__.lower():
            stats.add_bad(line + 1 if line else None, f"zstd stream is corrupt or cut short ({_exc_text(exc)})")
        else:
            raise
    finally:
        damage = getattr(decompressed, "error", None)
        if damage:  # a cut or corrupt gzip/zstd file: the records before it were kept
            stats.add_bad(line or None, damage)
        try:
            stream.close()
        except Exception:
            pass
    stats.format = ", ".join(sorted(seen_formats)) or None
    if not any_doc and not stats.bad_count:
        return "empty"
    if not seen_formats:
        return "loaded" if damage else "unknown format"
    return "loaded"


_SHAPE_REASONS = ("JSON value in no known", "array element in no known", "nested array in no known")


def _broken_json(src: Source, data: bytes | None, stats) -> bool:
    """Whether a file in no known format is JSON that failed to parse.

    Such a file is most likely a damaged export (cut short, corrupted), unlike
    a README or a valid JSON file of another kind met in a directory walk.
    """
    if not stats.bad or all(r.startswith(_SHAPE_REASONS) for _, r in stats.bad):
        return False
    try:
        stream, _ = open_binary(src, data) if data is not None else open_binary(src)
        try:
            head = stream.read(4096)
        finally:
            stream.close()
    except Exception:
        return False
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


def sizes_hint(src: Source) -> int:
    try:
        return src.path.stat().st_size if src.path is not None else 0
    except OSError:
        return 0


def _first_content_line(stream) -> tuple[bytes, int]:
    """The first non-blank line (BOM removed) and its 1-based number."""
    n = 1
    line = stream.readline()
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    while line and not line.strip():
        line = stream.readline()
        n += 1
    return line, n


def _parses(line: bytes) -> bool:
    from agtrace.ingest.sources import parse_json

    try:
        parse_json(line.strip())
        return True
    except ValueError:
        return False


class _Prepended:
    """A byte stream with some bytes put back in front (readline/iter/read/peek)."""

    def __init__(self, head: bytes, rest):
        self.head = head
        self.rest = rest

    def readline(self) -> bytes:
        if self.head:
            i = self.head.find(b"\n")
            if i == -1:
                out, self.head = self.head, b""
                return out + (self.rest.readline() if not out.endswith(b"\n") else b"")
            out, self.head = self.head[: i + 1], self.head[i + 1 :]
            return out
        return self.rest.readline()

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def read(self, n: int = -1) -> bytes:
        head, self.head = self.head, b""
        return head + self.rest.read()

    def peek(self, n: int = 1) -> bytes:
        return self.head or self.rest.peek(n)

    def close(self) -> None:
        self.rest.close()


def _wrap(counted):
    from agtrace.ingest.sources import GZIP_MAGIC, ZSTD_MAGIC
    from agtrace.ingest.sources import DecompressedReader

    head = counted.peek(4)[:4]
    if head[:2] == GZIP_MAGIC:
        return io.BufferedReader(DecompressedReader(counted, "gzip"), buffer_size=1 << 20), "gzip"
    if head[:4] == ZSTD_MAGIC:
        return io.BufferedReader(DecompressedReader(counted, "zstd"), buffer_size=1 << 20), "zstd"
    return counted, "none"


def _exc_text(exc: BaseException) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


# Spans whose tree fields are derived in one bucket (one query, one Arrow
# table): bounds the memory of a load's last step whatever the input's size.
DERIVE_BUCKET_SPANS = 100_000
HOLD_ARROW_MAX_BYTES = 1 << 30  # Arrow bytes; 511 MB of Collector JSON stage as 680 MB (see `held` in load_paths)


def _merge(con, report: LoadReport, cluster: bool = True, spill=None) -> None:
    """Deduplicate staged spans, derive tree fields, insert, rebuild trace rows."""
    staged = con.execute("SELECT count(*) FROM stage_spans").fetchone()[0]
    # The first copy of each span: a grouped min(sid) over the key columns only,
    # not a window over whole rows (which ran out of memory on 3M spans). Only
    # the sids are kept: copying whole staged rows cost seconds on big loads.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE new_sids AS
        SELECT s.sid FROM stage_spans s
        WHERE sid IN (SELECT min(sid) FROM stage_spans GROUP BY trace_id, span_id, kind, dedupe_key)
          AND NOT EXISTS (
            SELECT 1 FROM spans e WHERE e.trace_id = s.trace_id AND e.span_id = s.span_id AND e.kind = s.kind
              AND (s.dedupe_key IS NULL OR e.start_ns // 1000 = s.dedupe_key))
    """)
    added = con.execute("SELECT count(*) FROM new_sids").fetchone()[0]
    # Every staged span new (the usual first load): no filtering join needed.
    everything = added == staged
    if everything:
        con.execute("CREATE OR REPLACE TEMP VIEW new_spans AS SELECT * FROM stage_spans")
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW new_spans AS "
                    "SELECT * FROM stage_spans WHERE sid IN (SELECT sid FROM new_sids)")
    report.spans_added = added
    report.duplicates = staged - added
    if report.duplicates:
        report.conflicting_duplicates = con.execute("""
            WITH firsts AS (
                SELECT trace_id, span_id, kind, name, start_ns, end_ns, attributes FROM new_spans
                UNION ALL
                SELECT e.trace_id, e.span_id, e.kind, e.name, e.start_ns, e.end_ns, e.attributes
                FROM spans e SEMI JOIN stage_spans s
                  ON e.trace_id = s.trace_id AND e.span_id = s.span_id AND e.kind = s.kind
                 AND (s.dedupe_key IS NULL OR e.start_ns // 1000 = s.dedupe_key)
            )
            SELECT count(*) FROM stage_spans s JOIN firsts f
              ON s.trace_id = f.trace_id AND s.span_id = f.span_id AND s.kind = f.kind
             AND (s.dedupe_key IS NULL OR f.start_ns // 1000 = s.dedupe_key)
            WHERE s.sid NOT IN (SELECT sid FROM new_spans)
              AND (s.name IS DISTINCT FROM f.name OR s.start_ns IS DISTINCT FROM f.start_ns
                   OR s.end_ns IS DISTINCT FROM f.end_ns OR s.attributes IS DISTINCT FROM f.attributes)
        """).fetchone()[0]
    if not added:
        con.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT NULL::VARCHAR AS trace_id LIMIT 0")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT trace_id FROM new_spans")
    report.traces_touched = con.execute("SELECT count(*) FROM touched").fetchone()[0]
    if not added:
        return
    # Resources first (content-addressed, so existing ids are the same resource).
    con.execute("""
        INSERT INTO resources SELECT DISTINCT ON (resource_id) * FROM stage_resources r
        WHERE resource_id NOT IN (SELECT resource_id FROM resources)
    """)
    con.execute("""
        INSERT INTO resource_attrs SELECT DISTINCT ra.* FROM stage_resource_attrs ra
        WHERE ra.resource_id IN (SELECT resource_id FROM stage_resources)
          AND ra.resource_id NOT IN (SELECT resource_id FROM resource_attrs)
    """)
    # Tree fields are derived over whole traces, a bucket of traces at a time,
    # so the Python lists stay small however many spans a load touches.
    total = added + con.execute(
        "SELECT count(*) FROM spans WHERE trace_id IN (SELECT trace_id FROM touched)").fetchone()[0]
    buckets = max(1, -(-total // DERIVE_BUCKET_SPANS))
    # The rows the tree fields need, once, in bucket order: each bucket's
    # query then reads its own row groups. Filtering the staged spans by
    # bucket in every query read them all each time: 8 x 750,000 rows for
    # 511 MB, but 32 x 3.2 M for 2 GB, 30 s of a 160 s load.
    con.execute(_TREE_ROWS_SQL, [buckets])
    con.execute("CREATE OR REPLACE TEMP TABLE derived (sid BIGINT, depth INTEGER, is_root BOOLEAN, agent VARCHAR, "
                "parent_sid BIGINT, is_new BOOLEAN)")
    report.parent_cycles = 0
    for bucket in range(buckets):
        report.parent_cycles += _derive_bucket(con, bucket)
    con.execute("DROP TABLE tree_rows")
    _insert_derived(con, everything, cluster, spill)
    rebuild_traces(con)


# What the tree fields need of every span of the touched traces, stored and
# new, with its bucket (see _merge).
_TREE_ROWS_SQL = """
    CREATE OR REPLACE TEMP TABLE tree_rows AS
    SELECT hash(trace_id) % $1 AS bucket, * FROM (
        SELECT sid, trace_id, span_id, parent_span_id, kind, own_agent, depth, is_root, agent, parent_sid,
               false AS is_new
        FROM spans WHERE trace_id IN (SELECT trace_id FROM touched)
        UNION ALL
        SELECT sid, trace_id, span_id, parent_span_id, kind, own_agent, NULL, NULL, NULL, NULL, true
        FROM new_spans)
    ORDER BY bucket
"""

# The bucket's rows in sid order (rn), each with the row of its parent (p, -1
# for none): the parent rule of `derive.derive_tree`, as one query. Under one
# (trace, span id) the index entry is the first server half, else the first
# row; a server half whose id a client half also has hangs under that client
# (the last one); a span naming its own id as parent is top-level.
_BUCKET_SQL = """
    WITH b AS (
        SELECT row_number() OVER (ORDER BY sid) - 1 AS rn, * EXCLUDE (bucket) FROM tree_rows WHERE bucket = $1),
    idx AS (
        SELECT trace_id, span_id, coalesce(min(rn) FILTER (WHERE kind = 'server'), min(rn)) AS j
        FROM b GROUP BY trace_id, span_id),
    cl AS (SELECT trace_id, span_id, max(rn) AS c FROM b WHERE kind = 'client' GROUP BY trace_id, span_id)
    SELECT b.rn, b.sid, b.trace_id, b.span_id, b.parent_span_id, b.kind, b.own_agent, b.is_new,
           b.depth AS old_depth, b.is_root AS old_is_root, b.agent AS old_agent, b.parent_sid AS old_parent_sid,
           CASE WHEN b.kind = 'server' AND cl.c IS NOT NULL THEN cl.c
                WHEN b.parent_span_id IS NOT NULL AND b.parent_span_id <> b.span_id AND idx.j IS NOT NULL THEN idx.j
                ELSE -1 END AS p
    FROM b LEFT JOIN cl ON cl.trace_id = b.trace_id AND cl.span_id = b.span_id
           LEFT JOIN idx ON idx.trace_id = b.trace_id AND idx.span_id = b.parent_span_id
    ORDER BY b.rn
"""


def _derive_bucket(con, bucket: int) -> int:
    """Derive the traces of one bucket of `tree_rows` into `derived`; returns cycles broken.

    Parents are resolved in SQL and depth / agent computed column-wise
    (`derive.jump_pointers`); only traces with a parent cycle go through the
    row-at-a-time `derive.derive_tree`, whose cycle rule is the reference.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from agtrace.ingest.derive import jump_pointers

    relational()
    t = con.sql(_BUCKET_SQL, params=[bucket]).to_arrow_table()
    parent = t.column("p").combine_chunks()
    own_agent = t.column("own_agent").combine_chunks()
    # derive_tree takes an empty name for no agent (`if own:`): so does this
    own = pc.if_else(pc.equal(own_agent, ""), pa.scalar(None, pa.string()), own_agent).dictionary_encode()
    own_code = pc.fill_null(pc.cast(own.indices, pa.int32()), -1)
    depth, code, unresolved = jump_pointers(parent, own_code)
    cycles = 0
    if pc.any(unresolved).as_py():
        parent, depth, code, cycles = _settle_cycles(t, parent, depth, code, own, unresolved)
    agent = pc.take(own.dictionary, pc.if_else(pc.equal(code, -1), pa.scalar(None, pa.int32()), code))
    sid = t.column("sid").combine_chunks()
    has_parent = pc.not_equal(parent, -1)
    parent_sid = pc.if_else(has_parent, pc.take(sid, pc.if_else(has_parent, parent, 0)), pa.scalar(None, pa.int64()))
    is_root = pc.is_null(t.column("parent_span_id"))
    is_new = t.column("is_new")

    def changed(new, old):  # `new != old` as Python compares, None included
        both_null = pc.and_(pc.is_null(new), pc.is_null(old))
        return pc.invert(pc.or_(pc.fill_null(pc.equal(new, old), False), both_null))

    keep = pc.or_(pc.or_(is_new, changed(depth, t.column("old_depth"))),
                  pc.or_(pc.or_(changed(agent, t.column("old_agent")), changed(is_root, t.column("old_is_root"))),
                         changed(parent_sid, t.column("old_parent_sid"))))
    derived = pa.table({
        "sid": sid, "depth": pc.cast(depth, pa.int32()), "is_root": is_root, "agent": agent,
        "parent_sid": parent_sid, "is_new": is_new,
    }).filter(keep)
    con.from_arrow(derived).insert_into("derived")  # not register(): see on_batch in load_paths
    return cycles


def _settle_cycles(t, parent, depth, code, own, unresolved):
    """Re-derive, row by row, the traces holding rows on or under a parent cycle."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from agtrace.ingest.derive import derive_tree

    bad = pc.unique(pc.filter(t.column("trace_id"), unresolved))
    rows = pc.indices_nonzero(pc.is_in(t.column("trace_id"), value_set=bad)).to_pylist()
    sub = t.take(rows)
    d, _, agents, pidx, cycles = derive_tree(*(sub.column(c).to_pylist()
                                               for c in ("trace_id", "span_id", "parent_span_id", "kind", "own_agent")))
    parent, depth, code = parent.to_pylist(), depth.to_pylist(), code.to_pylist()
    codes = {a: i for i, a in enumerate(own.dictionary.to_pylist())}
    for k, (row, agent) in enumerate(zip(rows, agents)):
        parent[row] = rows[pidx[k]] if pidx[k] >= 0 else -1
        depth[row] = d[k]
        code[row] = codes[agent] if agent is not None else -1
    return (pa.array(parent, pa.int64()), pa.array(depth, pa.int32()), pa.array(code, pa.int32()), cycles)


_INSERT_SPANS_SQL = """
    INSERT INTO spans BY NAME
    SELECT n.* EXCLUDE (dedupe_key), n.end_ns - n.start_ns AS duration_ns,
           d.depth, d.is_root, d.agent, d.parent_sid
    FROM new_spans n JOIN derived d ON d.sid = n.sid
    WHERE n.sid BETWEEN $1 AND $2 AND d.sid BETWEEN $1 AND $2
"""
# New spans inserted per join (see _insert_derived).
INSERT_RANGE_SIDS = 1_000_000


def _insert_derived(con, everything: bool, cluster: bool = True, spill=None) -> None:
    """Insert the new spans with their tree fields, update the old ones, add attrs and links.

    `spill`: the load's `ingest.spill.Spill`, whose attribute and link rows
    are read from its files here, with the staged ones.
    """
    # In ranges of sids: the staged spans are in sid order, so each range
    # reads its own row groups, and each join's hash table stays small. One
    # join of 3.2 M spans took 27 s under the merge's memory limit.
    lo, hi = con.execute("SELECT min(sid), max(sid) FROM derived WHERE is_new").fetchone()
    while lo is not None and lo <= hi:
        con.execute(_INSERT_SPANS_SQL, [lo, lo + INSERT_RANGE_SIDS - 1])
        lo += INSERT_RANGE_SIDS
    con.execute("""
        UPDATE spans SET depth = d.depth, is_root = d.is_root, agent = d.agent, parent_sid = d.parent_sid
        FROM derived d WHERE spans.sid = d.sid AND NOT d.is_new
    """)
    for name in ("attrs", "links"):
        params = spill.rows(name) if spill is not None else None
        con.execute(_INSERT_NEW_ROWS[name, params is not None, everything, cluster and name == "attrs"],
                    params or [])


def _insert_new_rows_sql(name: str, spilled: bool, everything: bool, clustered: bool) -> str:
    """The INSERT of the load's new `name` rows (attrs or links): from the
    staging table, plus the spilled rows (`ingest.spill`) where there are
    some, only the new spans' rows unless every staged span is new.

    `clustered`: in key order, which clusters each key's rows into few row
    groups, so the zone maps let a filter or group-by on one key skip the
    rest of the table. Sorting on each key's rank among the distinct keys
    gives the order of ORDER BY key, sid a third faster than comparing the
    key strings themselves (4.3 M rows: 2.0 s, not 3.0 s).
    """
    rows = f"SELECT * FROM stage_{name}" + (f" UNION ALL {SPILLED_ROWS_SQL}" if spilled else "")
    new = f"SELECT * FROM ({rows})" + ("" if everything else " WHERE sid IN (SELECT sid FROM new_sids)")
    if not clustered:
        return f"INSERT INTO {name} {new}"
    return f"""
        WITH a AS ({new}),
             k AS (SELECT key, row_number() OVER (ORDER BY key) AS r FROM (SELECT DISTINCT key FROM a))
        INSERT INTO {name} SELECT a.* FROM a JOIN k ON a.key IS NOT DISTINCT FROM k.key ORDER BY k.r, a.sid"""


# Every variant, built once from constants (SQL text never holds data).
_INSERT_NEW_ROWS = {
    (name, spilled, everything, clustered): _insert_new_rows_sql(name, spilled, everything, clustered)
    for name in ("attrs", "links") for spilled in (False, True) for everything in (False, True)
    for clustered in ((False, True) if name == "attrs" else (False,))
}


def rebuild_traces(con) -> None:
    """Recompute the `traces` rows of the traces listed in temp table `touched`."""
    con.execute("DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM touched)")
    con.execute("""
        INSERT INTO traces
        SELECT s.trace_id,
               arg_min(s.span_id, [CASE WHEN s.is_root THEN 0 ELSE 1 END, s.depth, s.start_ns]),
               arg_min(s.name, [CASE WHEN s.is_root THEN 0 ELSE 1 END, s.depth, s.start_ns]),
               arg_min(s.service, [CASE WHEN s.is_root THEN 0 ELSE 1 END, s.depth, s.start_ns]),
               min(s.start_ns), max(s.end_ns), max(s.end_ns) - min(s.start_ns),
               count(*), count(*) FILTER (WHERE s.status = 'error'),
               count(*) FILTER (WHERE s.depth = 0),
               list_sort(list_distinct(list(s.agent) FILTER (WHERE s.agent IS NOT NULL)))
        FROM spans s WHERE s.trace_id IN (SELECT trace_id FROM touched)
        GROUP BY s.trace_id
    """)
