"""Parallel parsing of big line-delimited files (the Collector file exporter).

Parsing JSON and normalising spans is CPU-bound Python; on a multi-core machine
the lines of a big file are cut into chunks of a few megabytes and read by a
pool of worker processes, each into its own `SpanSink`. The main process keeps
the order of the chunks, renumbers their span keys (`sid`) into one sequence
and feeds the batches to the loader (or, loading into a file store, records
where the workers wrote them: `ingest.spill`), so the result is exactly what
the sequential reader gives, only sooner. Small files never pay the start-up
cost.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from agtrace.ingest import formats, otlp_arrow
from agtrace.ingest.context import ReadContext
from agtrace.ingest.sink import Batch, FileStats, SpanSink
from agtrace.ingest.spill import SPILLED_TABLES
from agtrace.ingest.sources import parse_json

CHUNK_BYTES = 4 << 20
MIN_BYTES = int(os.environ.get("AGTRACE_PARALLEL_MIN_BYTES", str(48 << 20)))


def worker_count() -> int:
    forced = os.environ.get("AGTRACE_WORKERS")
    if forced and forced.isdigit():
        return int(forced)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return min(n, 4)


def worthwhile(size: int) -> bool:
    return size >= MIN_BYTES and worker_count() >= 2


def _worker_init(parent: int | None = None) -> None:
    """Workers leave Ctrl-C to the main process, which cancels the pool and
    rolls the load back; a worker that took it too would print a traceback.

    They also die with the main process (`parent`, its pid): killed alone (the
    OOM killer, `kill -9 PID`), it left its workers waiting forever on a queue
    whose write end they hold themselves, each with its memory.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if parent is not None:
        _die_with(parent)
    # pyarrow tries `import dateutil` whenever a compute function is given a
    # Python literal; where it is not installed, every try searches sys.path
    # again (about 5% of a worker's time). A worker never needs it, so the
    # failure is remembered. (Not done in the main process: agtrace may be
    # imported next to code that installs it later.)
    try:
        import dateutil  # noqa: F401
    except ImportError:
        sys.modules["dateutil"] = None


def _die_with(parent: int) -> None:
    """Have the kernel send SIGTERM when the process that started this one
    exits (Linux's PR_SET_PDEATHSIG); elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        zero = ctypes.c_ulong(0)
        if libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(int(signal.SIGTERM)), zero, zero, zero) != 0:
            return  # refused (a seccomp filter): the worker lives as before
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


class _SigintBlocked:
    """Block SIGINT in this thread while a worker is spawned, so the child
    starts with it blocked (the mask survives exec) until `_worker_init` runs."""

    def __enter__(self):
        self.old = None
        if hasattr(signal, "pthread_sigmask"):
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc):
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def _parse_chunk(label: str, first_line: int, lines: list[bytes], fast: bool = False,
                 spill_to: str | None = None):
    """Worker: parse one chunk of lines into a single Batch (sids from 0).

    `fast`: the file looks like Collector output; try the Arrow reader first
    (it hands back None for any chunk it cannot read exactly). `spill_to`:
    write the spans, attribute and link rows as Parquet files named
    `<spill_to>-<table>.parquet` and hand back only their paths
    (`ingest.spill`); if that fails, the rows come back as usual.
    """
    done = _parse_lines(label, first_line, lines, fast)
    if spill_to is None or done[0] is None:
        return done + ([],)
    return _spill(done, spill_to)


def _spill(done: tuple, spill_to: str) -> tuple:
    import pyarrow.parquet as pq

    batch = done[0]
    written: list[tuple[str, str]] = []
    try:
        for name in SPILLED_TABLES:
            table = getattr(batch, name)
            if table.num_rows:
                path = f"{spill_to}-{name}.parquet"
                # Uncompressed: the files live for one load; Parquet's dictionary
                # encoding alone makes them smaller than the JSON they came from.
                pq.write_table(table, path, compression="none")
                written.append((name, path))
    except Exception:  # no space, no inodes...: this chunk's rows go back the usual way
        for name in SPILLED_TABLES:  # a file may be half written
            try:
                os.remove(f"{spill_to}-{name}.parquet")
            except OSError:
                pass
        return done + ([],)
    kept = Batch(resources=batch.resources, resource_attrs=batch.resource_attrs,
                 **{name: getattr(batch, name).schema.empty_table() for name in SPILLED_TABLES})
    return (kept,) + tuple(done[1:]) + (written,)


def _parse_lines(label: str, first_line: int, lines: list[bytes], fast: bool):
    if fast:
        done = otlp_arrow.read_chunk(label, first_line, lines)
        if done is not None:
            return done
    batches: list[Batch] = []
    sink = SpanSink(batches.append, first_sid=0, batch_size=1 << 60)
    stats = FileStats(label)
    sink.stats = stats
    ctx = ReadContext(sink, stats)
    seen: set[str] = set()
    any_doc = False
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not s:
            continue
        ln = first_line + i
        try:
            doc = parse_json(s)
        except ValueError as exc:
            reason = str(exc)
            if not raw.endswith(b"\n"):
                reason = "truncated last line (" + reason + ")"
            stats.add_bad(ln, reason)
            continue
        any_doc = True
        if not formats.dispatch(doc, ln, ctx, seen):
            stats.add_bad(ln, "JSON value in no known trace format")
    sink.flush()
    return (batches[0] if batches else None), stats, seen, sink.next_sid, any_doc


def _shift(table: pa.Table, column: str, offset: int) -> pa.Table:
    if not table.num_rows or offset == 0:
        return table
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pc.add(table.column(column), pa.scalar(offset, pa.int64())))


def _merge_stats(into: FileStats, part: FileStats) -> None:
    into.spans += part.spans
    into.documents += part.documents
    into.other_signals += part.other_signals
    into.unknown_documents += part.unknown_documents
    for line, reason in part.bad:
        into.add_bad(line, reason)
    into.bad_count += part.bad_count - len(part.bad)
    for line, reason in part.warnings:
        into.add_warning(line, reason)
    into.warning_count += part.warning_count - len(part.warnings)


class _InProcess:
    """The pool's interface, run in this process: chunked reading without workers
    (the Arrow reader on a file too small to pay for starting a pool)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f: Future = Future()
        f.set_result(fn(*args))
        return f

    def shutdown(self, **kwargs):
        pass


def read_lines_parallel(stream, first_line: int, first_raw: bytes, sink: SpanSink, stats: FileStats,
                        seen_formats: set[str], *, fast: bool = False, pool: bool = True) -> bool:
    """Read the rest of a line-delimited stream in chunks, with a process pool
    unless `pool` is False; `fast` tries the Arrow reader on each chunk.

    `first_raw` is the first non-blank line (already consumed from `stream`),
    numbered `first_line`. Returns whether any JSON document was found.

    Where the sink has a `spill` (a load into a file store), the workers
    write the spans, attribute and link rows of each chunk to Parquet and
    only the paths come back, recorded with the chunk's sid offset; the
    loader reads them all at the end (`ingest.spill`).
    """
    sink.flush()
    spill = sink.spill if pool else None
    workers = worker_count() if pool else 1
    ctx = multiprocessing.get_context("spawn")
    any_doc = False
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                   initargs=(os.getpid(),)) if pool else _InProcess()
    with executor as pool:
        pending: deque = deque()

        def collect(future) -> None:
            nonlocal any_doc
            batch, part, seen, count, found, spilled = future.result()
            any_doc = any_doc or found
            seen_formats.update(seen)
            _merge_stats(stats, part)
            if batch is not None and count:
                offset = sink.next_sid
                sink.next_sid += count
                if spilled:
                    spill.record(spilled, offset)
                batch = Batch(
                    spans=_shift(batch.spans, "sid", offset), attrs=_shift(batch.attrs, "sid", offset),
                    links=_shift(batch.links, "sid", offset), resources=batch.resources,
                    resource_attrs=batch.resource_attrs,
                )
                sink.on_batch(batch)
            elif batch is not None and batch.resources.num_rows:
                sink.on_batch(batch)

        def submit(start: int, lines: list[bytes]) -> None:
            spill_to = spill.chunk_path() if spill is not None else None
            with _SigintBlocked():  # submit may spawn a worker
                pending.append(pool.submit(_parse_chunk, stats.path, start, lines, fast, spill_to))

        try:
            lines = [first_raw]
            size = len(first_raw)
            start = first_line
            line_no = first_line
            for raw in stream:
                line_no += 1
                lines.append(raw)
                size += len(raw)
                if size >= CHUNK_BYTES:
                    submit(start, lines)
                    lines, size, start = [], 0, line_no + 1
                    while len(pending) > workers + 1:
                        collect(pending.popleft())
            if lines:
                submit(start, lines)
            while pending:
                collect(pending.popleft())
        except BaseException:
            for f in pending:
                f.cancel()
            # Stop the workers now: one still starting up would otherwise find
            # its parent's pipe closed and print an EOFError traceback.
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                try:
                    proc.terminate()
                except Exception:
                    pass
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return any_doc
