"""From paths to JSON documents: expansion, decompression, framing.

Trace files come as one JSON value per line (the Collector file exporter), one
pretty-printed value, or pretty-printed values one after another (the Python
SDK's ConsoleSpanExporter), possibly gzip- or zstd-compressed, possibly with a
BOM, a truncated last line or garbage in the middle. This module yields
`(line, document)` pairs and `(line, BadDocument)` for what cannot be parsed,
never raising for a file's content.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from agtrace.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BIG_INT_RE = re.compile(rb"[\[:,]\s*-?\d{20,}\s*[,\]}\r\n]")
_TRACE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".txt", ".log", ".gz", ".zst", ".zstd", ".pb", ".proto", ".bin", ".otlp")


@dataclass
class BadDocument:
    reason: str


@dataclass
class Source:
    """One input: a path on disk or standard input."""

    label: str  # what the user sees in messages
    path: Path | None  # None for stdin
    explicit: bool  # named by the user (vs found in a directory walk)


def expand_paths(paths: list[str]) -> list[Source]:
    """Files, directories (recursive, sorted), globs and `-` -> sources."""
    out: list[Source] = []
    seen: set[str] = set()
    for raw in paths:
        if raw == "-":
            out.append(Source("<stdin>", None, True))
            continue
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            for f in found:
                key = str(f.resolve())
                if key not in seen:
                    seen.add(key)
                    out.append(Source(str(f), f, False))
            continue
        if p.is_file():
            key = str(p.resolve())
            if key not in seen:
                seen.add(key)
                out.append(Source(raw, p, True))
            continue
        if any(ch in raw for ch in "*?["):
            matches = sorted(glob.glob(raw, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise InputError(f"no files match {raw}")
            for f in files:
                key = str(f.resolve())
                if key not in seen:
                    seen.add(key)
                    out.append(Source(str(f), f, True))
            continue
        if p.exists():
            raise InputError(f"{raw} is not a regular file or directory")
        raise InputError(f"no such file or directory: {raw}", hint="check the path; directories are read recursively")
    return out


def _stdin_bytes() -> bytes:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    return data


def open_binary(src: Source, stdin_data: bytes | None = None) -> tuple[io.BufferedIOBase, str]:
    """Open a source as a decompressed byte stream; returns (stream, compression)."""
    if src.path is None:
        raw: io.BufferedIOBase = io.BytesIO(stdin_data if stdin_data is not None else _stdin_bytes())
    else:
        try:
            raw = open(src.path, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {src.label}: {exc.strerror or exc}") from None
    head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    if not head:
        pos = raw.tell()
        head = raw.read(4)
        raw.seek(pos)
    if head[:2] == GZIP_MAGIC:
        return io.BufferedReader(DecompressedReader(raw, "gzip"), buffer_size=1 << 20), "gzip"
    if head[:4] == ZSTD_MAGIC:
        return io.BufferedReader(DecompressedReader(raw, "zstd"), buffer_size=1 << 20), "zstd"
    return raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw), "none"


class DecompressedReader(io.RawIOBase):
    """The decompressed bytes of a gzip or zstd stream (several members or frames
    allowed) that ends cleanly where the data is cut short or corrupt.

    `gzip.GzipFile` behind a buffer raises at a cut and loses what it had
    already decompressed, and zstandard's stream reader stops silently, so a CI
    artifact cut short would lose every good record or its damage would go
    unreported. This reader returns everything that decompresses, then EOF,
    and keeps the reason in `error` for the loader to report as a bad record.
    Output per step is bounded, so a highly compressed input cannot balloon.
    """

    IN_CHUNK = 1 << 16
    ZSTD_SLICE = 1 << 13  # zstd's decompressobj has no output bound: feed it little at a time
    OUT_MAX = 1 << 20

    def __init__(self, raw, kind: str):
        self.raw = raw
        self.kind = kind
        self.error: str | None = None
        self._d = None  # decompressor of the current member / frame
        self._pending = b""  # compressed bytes not fed yet
        self._out = b""
        self._off = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._off >= len(self._out) and not self._done:
            self._out, self._off = self._step(), 0
        n = min(len(b), len(self._out) - self._off)
        b[:n] = self._out[self._off : self._off + n]
        self._off += n
        return n

    def _step(self) -> bytes:
        try:
            if not self._pending:
                self._pending = self.raw.read(self.IN_CHUNK)
                if not self._pending:
                    self._done = True
                    if self._d is not None:
                        self.error = f"{self.kind} data cut short (the file ends inside compressed data); what followed is lost"
                    return b""
            if self._d is None:
                if self.kind == "gzip":
                    self._pending = self._pending.lstrip(b"\x00")  # zero padding after a member is allowed
                    if not self._pending:
                        return b""
                    self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    import zstandard

                    self._d = zstandard.ZstdDecompressor().decompressobj()
            if self.kind == "gzip":
                out = self._d.decompress(self._pending, self.OUT_MAX)
                self._pending = self._d.unconsumed_tail
            else:
                piece, self._pending = self._pending[: self.ZSTD_SLICE], self._pending[self.ZSTD_SLICE :]
                out = self._d.decompress(piece)
            if self._d.eof:
                self._pending = self._d.unused_data + self._pending
                self._d = None
            return out
        except Exception as exc:  # zlib.error, zstandard.ZstdError, OSError
            self._done = True
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.error = f"{self.kind} data is corrupt ({text}); what followed is lost"
            return b""

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            super().close()


def parse_json(data: bytes) -> object:
    """Parse one JSON value exactly: big integers never go through a float.

    orjson silently turns integers beyond 64 bits (128-bit decimal trace ids)
    into floats, and rejects NaN/Infinity and invalid UTF-8; those cases fall
    back to the standard library (NaN -> float, bad UTF-8 -> U+FFFD).
    Raises ValueError with a short reason.
    """
    # OTLP/JSON requests carry ids as strings, so the (costly, on megabyte
    # Collector lines) scan for bare big integers is only for other shapes.
    if b"resource" not in data[:48] and _BIG_INT_RE.search(data):
        return _stdlib_loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            return _stdlib_loads(data)
        except ValueError:
            raise ValueError(_short_reason(exc)) from None


def _stdlib_loads(data: bytes) -> object:
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return fix_surrogates(json.loads(text), text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def fix_surrogates(value, text: str):
    """Replace lone UTF-16 surrogates (from `\\ud800`-style escapes) by U+FFFD.

    The standard library accepts them (orjson does not); they cannot be
    encoded as UTF-8, so one of them would fail the whole batch later. Only
    walks the value when the text has such an escape at all.
    """
    if not _SURROGATE_ESCAPE_RE.search(text):
        return value
    return _fix(value, 0)


def _fix(v, depth: int):
    if isinstance(v, str):
        return _SURROGATE_RE.sub("\ufffd", v)
    if depth > 2000:
        return v
    if isinstance(v, dict):
        return {_fix(k, depth + 1): _fix(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [_fix(x, depth + 1) for x in v]
    return v


def _short_reason(exc: Exception) -> str:
    msg = str(exc)
    return "invalid JSON: " + msg.split(":")[0] if msg else "invalid JSON"


def iter_documents(stream: io.BufferedIOBase) -> Iterator[tuple[int, object]]:
    """Yield (line, document) or (line, BadDocument) for every JSON value.

    Line mode (one value per line) streams; otherwise the whole input is read
    and split into consecutive top-level values, resynchronising after garbage
    at the next line that starts a value.
    """
    first = stream.readline()
    line_no = 1
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    while first and not first.strip(b" \t\r\n\x00"):
        if b"\x00" in first:
            # NUL-filled lines: what a crash leaves in a file not fully written.
            yield line_no, BadDocument("a line of NUL bytes (a file not fully written?)")
        first = stream.readline()
        line_no += 1
    if not first:
        return
    stripped = first.strip()
    line_mode = False
    if stripped[:1] in (b"{", b"["):
        try:
            doc = parse_json(stripped)
            line_mode = True
        except ValueError:
            line_mode = False
    elif stripped[:1] in (b"\x00",) or not _looks_textual(stripped):
        # Binary content (protobuf, garbage): leave it to the caller's detector.
        yield line_no, BadDocument("not JSON (binary content)")
        return
    if line_mode:
        yield line_no, doc
        for raw in stream:
            line_no += 1
            s = raw.strip()
            if not s:
                continue
            try:
                yield line_no, parse_json(s)
            except ValueError as exc:
                reason = str(exc)
                if not raw.endswith(b"\n"):
                    reason = "truncated last line (" + reason + ")"
                yield line_no, BadDocument(reason)
        return
    rest = stream.read()
    data = first + rest
    yield from _split_values(data, line_no)


def _looks_textual(b: bytes) -> bool:
    try:
        b[:256].decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


_VALUE_START_RE = re.compile(rb"^[\[{]", re.MULTILINE)


# Arrays whose elements are whole records (requests, resource/scope groups,
# traces, spans): a JSON value cut short is closed after its last complete one.
_RECORD_KEYS = frozenset(f'"{k}"' for k in (
    "resourceSpans", "resource_spans", "scopeSpans", "scope_spans", "instrumentationLibrarySpans",
    "instrumentation_library_spans", "batches", "spans", "data"))
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:]')


def salvage_cut(text: str, start: int, stop: int) -> object | None:
    """The complete records of a JSON value that is cut short (a truncated
    pretty-printed export: one OTLP request, a Jaeger download, a Zipkin or SDK
    array), or None.

    Scans the brackets of text[start:stop] (stop: where the parser failed),
    remembers the end of the last complete element of a record array (the
    top-level array, an array inside it, or one under a key of _RECORD_KEYS)
    with the brackets still open there, and closes them: what remains is
    valid JSON holding every record that was complete, and nothing partial.
    """
    stack: list[tuple[str, str | None]] = []  # (bracket, the key it sits under)
    last_string = key = None
    best = None
    for m in _TOKEN_RE.finditer(text, start, stop):
        t = m.group()
        c = t[0]
        if c == '"':
            last_string = t
        elif c == ":":
            key = last_string
        elif c in "{[":
            stack.append((c, key if stack and stack[-1][0] == "{" else None))
            key = None
        else:
            if not stack:
                return None
            stack.pop()
            key = None
            if stack and stack[-1][0] == "[" and (
                    len(stack) == 1 or (len(stack) == 2 and stack[0][0] == "[") or stack[-1][1] in _RECORD_KEYS):
                best = (m.end(), [b for b, _ in stack])
    if best is None:
        return None
    end, still_open = best
    closed = text[start:end] + "".join("]" if b == "[" else "}" for b in reversed(still_open))
    try:
        return fix_surrogates(json.loads(closed), closed)
    except (ValueError, RecursionError):
        return None


def _split_values(data: bytes, first_line: int) -> Iterator[tuple[int, object]]:
    """Whole-input parse, falling back to consecutive pretty-printed values."""
    try:
        yield first_line, parse_json(data)
        return
    except ValueError:
        pass
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = 0
    n = len(text)
    line_base = first_line
    line_at = 0  # index whose line number is line_base
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        line = line_base + text.count("\n", line_at, pos)
        line_base, line_at = line, pos
        try:
            value, end = decoder.raw_decode(text, pos)
            yield line, fix_surrogates(value, text[pos:end])
            pos = end
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = f"invalid JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "JSON nested too deeply"
            # Resynchronise at the next line that starts a value.
            nxt = text.find("\n", pos)
            while nxt != -1:
                if text[nxt + 1 : nxt + 2] in ("{", "["):
                    break
                nxt = text.find("\n", nxt + 1)
            if nxt == -1:
                salvaged = salvage_cut(text, pos, exc.pos) if isinstance(exc, json.JSONDecodeError) else None
                if salvaged is not None:
                    at = line + text.count("\n", pos, exc.pos)
                    yield line, salvaged
                    yield at, BadDocument(reason + (" (the file ends here)" if exc.pos >= n - 1 else "")
                                          + f"; the records complete before line {at} were kept")
                    return
                yield line, BadDocument(reason + (" (truncated)" if isinstance(exc, json.JSONDecodeError) and exc.pos >= n - 1 else ""))
                return
            yield line, BadDocument(reason)
            pos = nxt + 1
