"""Nanosecond timestamps <-> ISO-8601, without float rounding.

Trace times are int64 nanoseconds since the epoch. Python's datetime keeps only
microseconds, so formatting and parsing of the fractional part is done here by
hand; everything else goes through datetime for the calendar arithmetic.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ISO_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,12}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2}|UTC)?\s*$"
)


def parse_iso_ns(text: str) -> int | None:
    """Parse an ISO-8601 date or date-time into epoch nanoseconds (UTC if no zone).

    Returns None when the text is not ISO-8601. Fractions beyond nanoseconds are
    truncated.
    """
    m = _ISO_RE.match(text)
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=timezone.utc)
    except ValueError:
        return None
    seconds = (dt - _EPOCH).days * 86400 + (dt - _EPOCH).seconds
    ns = seconds * 1_000_000_000
    if frac:
        ns += int((frac + "000000000")[:9])
    if tz and tz not in ("Z", "z", "UTC"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        ns -= sign * offset * 1_000_000_000
    return ns


def format_iso_ns(ns: int | None, precision: int = 6) -> str | None:
    """Format epoch nanoseconds as ISO-8601 UTC with `precision` fractional digits (0-9)."""
    if ns is None:
        return None
    seconds, rem = divmod(int(ns), 1_000_000_000)
    try:
        base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ns)
    if precision <= 0:
        return base + "Z"
    return f"{base}.{rem:09d}"[: len(base) + 1 + precision] + "Z"


# One rule for every timestamp agtrace writes (all commands, all formats):
# data formats (json, jsonl, csv, tsv) carry the full nanosecond precision the
# store keeps, so nothing is lost and `query --format jsonl` loads back
# exactly; tables and terminal views show milliseconds, which is what a
# person reads. Analyses produce data-precision text (`format_time`);
# renderers of tables shorten it (`table_time`).
DATA_PRECISION = 9
TABLE_PRECISION = 3

_ISO_OUT_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$")


def format_time(ns: int | None, *, table: bool = False) -> str | None:
    """Epoch ns as agtrace writes a timestamp: 9 fraction digits, 3 in a table."""
    return format_iso_ns(ns, TABLE_PRECISION if table else DATA_PRECISION)


def table_time(value):
    """A timestamp written by `format_time` (or any UTC ISO text), shortened to
    milliseconds for a table; anything else is returned unchanged."""
    if not isinstance(value, str):
        return value
    m = _ISO_OUT_RE.match(value)
    if not m:
        return value
    return f"{m.group(1)}.{((m.group(2) or '') + '000')[:TABLE_PRECISION]}Z"


def epoch_number_to_ns(value: float | int) -> int:
    """Interpret a bare epoch number by magnitude: s, ms, us or ns.

    Used by the flat JSONL reader, where producers disagree on units; the
    thresholds place every date between 1973 and 5138 in one unit only.
    """
    v = abs(value)
    if v >= 1e17:
        return int(value)
    if v >= 1e14:
        return int(value * 1_000)
    if v >= 1e11:
        return int(value * 1_000_000)
    return int(round(value * 1_000_000_000))


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)\s*$")


def parse_duration_ns(text: str) -> int | None:
    """Parse `250ms`, `1.5s`, `2h` into nanoseconds; None if not a duration."""
    m = _DURATION_RE.match(text)
    if not m:
        return None
    return int(round(float(m.group(1)) * _DURATION_UNITS[m.group(2)]))
