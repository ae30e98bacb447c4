"""`agtrace load`: trace files -> the store."""

from __future__ import annotations

import sys
import time
from enum import Enum
from typing import Annotated

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, err, report_problems
from agtrace.render.output import dumps


class LoadFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(
    "load",
    help=(
        "Load trace files into the store (created if missing).\n\n"
        "PATHS are files, directories (read recursively), globs or - for stdin. gzip and zstd are "
        "detected from their bytes and formats from the content: OTLP/JSON (Collector file exporter "
        "lines, pretty-printed requests, arrays, {\"result\"}/{\"batches\"} wrappers), OTLP protobuf "
        "(Collector file exporter format: proto, zstd per message or whole file), Jaeger JSON (UI "
        "download, API v1), Zipkin v2 JSON, OpenTelemetry Python SDK span JSON (ConsoleSpanExporter "
        "output, JSON lines, arrays, {\"spans\"}) and agtrace's flat JSONL.\n\n"
        "Loading is idempotent (a span is trace id + span id + kind, plus the start time for Zipkin; "
        "a file already loaded is skipped) "
        "and atomic: a failed or interrupted load leaves the store as it was. Bad records are skipped "
        "and reported with file and line; --strict makes any of them fail the whole load.\n\n"
        "The summary goes to stderr; --format json prints it to stdout as data.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace load sample_traces/\n"
        "  agtrace load --db ci.duckdb 'exports/*.jsonl.gz'\n"
        "  otel-export | agtrace load -"
    ),
)
def load_cmd(
    paths: Annotated[list[str], typer.Argument(help="Files, directories, globs, or - for stdin.", show_default=False, metavar="PATH...")],
    db: DbOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail (exit 2, store unchanged) on any bad record.")] = False,
    fmt: Annotated[LoadFormat, typer.Option("--format", "-f", help="text: summary on stderr; json: summary object on stdout.")] = LoadFormat.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr (errors still shown).")] = False,
) -> None:
    from agtrace.ingest import load_paths
    from agtrace.store import Store, resolve_db_path

    stdin_data = sys.stdin.buffer.read() if "-" in paths else None
    store = Store.open(db, read_only=False, on_wait=err)
    try:
        with _progress(enabled=not quiet) as progress:
            report = load_paths(store, paths, strict=strict, progress=progress, stdin_data=stdin_data)
    finally:
        store.close()
    if fmt == LoadFormat.json:
        d = report.to_dict()
        d["store"] = str(resolve_db_path(db))
        sys.stdout.write(dumps(d, pretty=True) + "\n")
    if not quiet:
        report_problems(report)
        if fmt == LoadFormat.text:
            for line in summary_lines(report, str(resolve_db_path(db))):
                err(line)


def summary_lines(report, store_path: str) -> list[str]:
    """The human summary of a load (stderr)."""
    lines = []
    loaded = [f for f in report.files if f.status == "loaded"]
    already = [f for f in report.files if f.status == "already loaded"]
    other = [f for f in report.files if f.status not in ("loaded", "already loaded")]
    for f in report.files:
        extra = []
        if f.bad_records:
            extra.append(f"{f.bad_records} bad record{'s' if f.bad_records != 1 else ''} skipped")
        if f.warnings:
            extra.append(f"{f.warnings} warning{'s' if f.warnings != 1 else ''}")
        if f.other_signals:
            extra.append(f"{f.other_signals} metric/log record{'s' if f.other_signals != 1 else ''} skipped")
        what = f"{f.spans} span{'s' if f.spans != 1 else ''}" if f.status == "loaded" else (
            "skipped, not a trace file" if f.status == "unknown format" else f.status)
        fmt = f" [{f.format}]" if f.format else ""
        lines.append(f"  {f.path}: {what}{fmt}" + (f" ({', '.join(extra)})" if extra else ""))
    head = (
        f"loaded {len(loaded)} file{'s' if len(loaded) != 1 else ''}: {report.spans_added} span"
        f"{'s' if report.spans_added != 1 else ''} added in {report.traces_touched} trace"
        f"{'s' if report.traces_touched != 1 else ''}"
    )
    if report.duplicates:
        head += f", {report.duplicates} duplicate{'s' if report.duplicates != 1 else ''} ignored"
        if report.conflicting_duplicates:
            head += f" ({report.conflicting_duplicates} with different content; the first copy was kept)"
    if already:
        head += f"; {len(already)} file{'s' if len(already) != 1 else ''} already loaded, nothing to add"
    if other:
        head += f"; {len(other)} file{'s' if len(other) != 1 else ''} skipped"
    lines.insert(0, head)
    if report.bad_records:
        lines.append(f"skipped {report.bad_records} bad record{'s' if report.bad_records != 1 else ''} (see warnings above)")
    if report.parent_cycles:
        lines.append(f"warning: {report.parent_cycles} parent cycle{'s' if report.parent_cycles != 1 else ''} broken (the span where each cycle was entered is shown as top-level)")
    lines.append(
        f"store {store_path}: {report.spans_in_store} span{'s' if report.spans_in_store != 1 else ''} in "
        f"{report.traces_in_store} trace{'s' if report.traces_in_store != 1 else ''} ({report.seconds:.2f}s)"
    )
    return lines


class _progress:
    """A progress bar on stderr for loads that take more than a moment, on a terminal only."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None
        self.task = None
        self.t0 = time.monotonic()

    def __enter__(self):
        return self.update if self.enabled else None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.t0 < 0.7 or not total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            self.bar = Progress("loading", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("load", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
