"""Normalisation of the small values every format disagrees on.

Ids, span kinds, status codes, OTLP AnyValues and 64-bit integers sent as
strings. Readers call these; they raise `BadRecord` with a reason a user can act
on when a value cannot be made sense of.
"""

from __future__ import annotations

import base64
import binascii
import math
from decimal import Decimal, InvalidOperation
import re

from agtrace.timeutil import parse_iso_ns

_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_B64_RE = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")

KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES = ("unset", "ok", "error")


class BadRecord(ValueError):
    """A record that cannot become a span; the reason is shown to the user."""


def norm_id(value, *, nbytes: int, what: str, allow_empty: bool = False) -> str | None:
    """Normalise a trace id (nbytes=16) or span id (nbytes=8) to lowercase hex.

    Accepts hex (any case, with or without 0x), base64 of exactly `nbytes` bytes
    (what generic protobuf JSON writes) and decimal integers (what some Python
    dumps write; 128-bit values arrive as Python ints, never floats). Returns
    None for an empty/absent id when `allow_empty`, else raises BadRecord.
    """
    if type(value) is str and len(value) == nbytes * 2:
        # Fast path: the common case of a well-formed hex id.
        try:
            bytes.fromhex(value)
        except ValueError:
            pass
        else:
            if allow_empty and value.count("0") == len(value):
                return None
            return value.lower()
    if value is None or value == "" or value == 0 and isinstance(value, int) and allow_empty:
        if allow_empty:
            return None
        raise BadRecord(f"missing {what}")
    if isinstance(value, bool):
        raise BadRecord(f"{what} is a boolean")
    if isinstance(value, int):
        if value < 0 or value >= 1 << (nbytes * 8):
            raise BadRecord(f"{what} {value} is out of range")
        return format(value, f"0{nbytes * 2}x")
    if isinstance(value, float):
        raise BadRecord(f"{what} is a floating-point number (precision lost in the export)")
    if not isinstance(value, str):
        raise BadRecord(f"{what} is not a string")
    s = value.strip()
    if s[:2] in ("0x", "0X"):
        s = s[2:]
    if len(s) == nbytes * 2 and _HEX_RE.match(s):
        if allow_empty and set(s) == {"0"}:
            return None
        return s.lower()
    b64_len = ((nbytes + 2) // 3) * 4
    if len(s) in (b64_len, math.ceil(nbytes * 4 / 3)) and _B64_RE.match(s):
        try:
            raw = base64.b64decode(s + "=" * (-len(s) % 4), altchars=b"-_" if ("-" in s or "_" in s) else None, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == nbytes:
            h = raw.hex()
            if allow_empty and set(h) == {"0"}:
                return None
            return h
    if s.isdigit() and len(s) > nbytes * 2:
        n = int(s)
        if n < 1 << (nbytes * 8):
            return format(n, f"0{nbytes * 2}x")
    if _HEX_RE.match(s) and len(s) < nbytes * 2:
        return s.lower()  # unpadded hex (Jaeger, Zipkin): kept as given, lowercased
    raise BadRecord(f"{what} {value!r} is not {nbytes * 2} hex digits")


def loose_id(value, *, what: str) -> str:
    """An id kept as given (Jaeger's old non-hex fixtures), lowercased if hex."""
    if value is None or value == "":
        raise BadRecord(f"missing {what}")
    s = str(value).strip()
    if s[:2] in ("0x", "0X"):
        s = s[2:]
    return s.lower() if _HEX_RE.match(s) else s


_KIND_NAMES = {
    "0": "unspecified", "1": "internal", "2": "server", "3": "client", "4": "producer", "5": "consumer",
    "span_kind_unspecified": "unspecified", "span_kind_internal": "internal",
    "span_kind_server": "server", "span_kind_client": "client",
    "span_kind_producer": "producer", "span_kind_consumer": "consumer",
    "spankind.internal": "internal", "spankind.server": "server", "spankind.client": "client",
    "spankind.producer": "producer", "spankind.consumer": "consumer",
    "unspecified": "unspecified", "internal": "internal", "server": "server", "client": "client",
    "producer": "producer", "consumer": "consumer",
}


def norm_kind(value) -> str:
    """Span kind as one lowercase word; unknown or missing kinds are 'unspecified'."""
    if value is None or value == "":
        return "unspecified"
    return _KIND_NAMES.get(str(value).strip().lower(), "unspecified")


_STATUS_NAMES = {
    "0": "unset", "1": "ok", "2": "error",
    "status_code_unset": "unset", "status_code_ok": "ok", "status_code_error": "error",
    "statuscode.unset": "unset", "statuscode.ok": "ok", "statuscode.error": "error",
    "unset": "unset", "ok": "ok", "error": "error", "": "unset",
}


def norm_status(value) -> str:
    if value is None:
        return "unset"
    return _STATUS_NAMES.get(str(value).strip().lower(), "unset")


def to_int(value, what: str) -> int | None:
    """An int64 sent as a number or a string (OTLP/JSON does both); None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRecord(f"{what} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise BadRecord(f"{what} is {value}")
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise BadRecord(f"{what} {value!r} is not a number") from None
            if math.isnan(f) or math.isinf(f):
                raise BadRecord(f"{what} is {value}")
            return int(f)
    raise BadRecord(f"{what} is not a number")


def _double(v):
    if isinstance(v, str):
        t = v.strip()
        if t in ("NaN", "nan"):
            return None  # JSON has no NaN; kept as absent-valued (null)
        if t in ("Infinity", "inf", "+Infinity"):
            return None
        if t in ("-Infinity", "-inf"):
            return None
        try:
            return float(t)
        except ValueError:
            return t
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)  # the Collector writes whole doubles without a decimal point
    return v


def any_value(v):
    """OTLP AnyValue (camelCase or snake_case) -> a plain JSON value.

    kvlists become objects, arrays lists, bytes their base64 text; `{}` is null.
    Doubles that are NaN/Infinity become null (JSON cannot hold them).
    """
    if not isinstance(v, dict):
        return v
    for key, val in v.items():
        if val is None:
            continue
        if key in ("stringValue", "string_value"):
            return val
        if key in ("intValue", "int_value"):
            if isinstance(val, str):
                try:
                    return int(val)
                except ValueError:
                    return val
            return val
        if key in ("doubleValue", "double_value"):
            return _double(val)
        if key in ("boolValue", "bool_value"):
            return val if isinstance(val, bool) else str(val).lower() == "true"
        if key in ("arrayValue", "array_value"):
            vals = val.get("values") if isinstance(val, dict) else None
            return [any_value(x) for x in vals or ()]
        if key in ("kvlistValue", "kvlist_value"):
            vals = val.get("values") if isinstance(val, dict) else None
            return kv_list(vals or ())
        if key in ("bytesValue", "bytes_value"):
            return val
    return None


def kv_list(items) -> dict:
    """OTLP `[{"key":..,"value":AnyValue}]` -> dict (later keys win)."""
    out = {}
    if type(items) is not list:
        return out
    for kv in items:
        if type(kv) is not dict:
            continue
        k = kv.get("key")
        if k is None:
            continue
        if type(k) is not str:
            k = str(k)
        val = kv.get("value")
        if type(val) is dict and len(val) == 1:
            # Fast path: one typed member, the usual OTLP/JSON shape.
            sv = val.get("stringValue")
            if sv is not None:
                out[k] = sv
                continue
            iv = val.get("intValue")
            if iv is not None and type(iv) is not bool:
                if type(iv) is int:
                    out[k] = iv
                    continue
                try:
                    out[k] = int(iv)
                    continue
                except (TypeError, ValueError):
                    pass
        out[k] = any_value(val)
    return out


def clean_json(v, depth: int = 0):
    """Make a plain JSON value storable: NaN/Infinity -> null, non-str keys -> str.

    Nesting deeper than 64 levels is kept as its JSON text, so hostile input
    cannot exhaust the stack of later readers.
    """
    if isinstance(v, float):
        return None if (math.isnan(v) or math.isinf(v)) else v
    if isinstance(v, dict):
        if depth > 64:
            return str(v)[:10000]
        return {str(k): clean_json(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        if depth > 64:
            return str(v)[:10000]
        return [clean_json(x, depth + 1) for x in v]
    return v


def micros_to_ns(value, what: str) -> int | None:
    """Microseconds (Jaeger v1, Zipkin: a number or digits) or an RFC 3339 time -> ns."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRecord(f"{what} is a boolean")
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadRecord(f"{what} is {value}")
        return int(round(value * 1000))
    if isinstance(value, str):
        s = value.strip()
        if s.lstrip("-").isdigit():
            return int(s) * 1000
        ns = parse_iso_ns(s)
        if ns is not None:
            return ns
        try:
            return int(Decimal(s) * 1000)
        except InvalidOperation:
            pass
    raise BadRecord(f"{what} {value!r} is not a time in microseconds")
