"""Checking `=~` patterns before they reach the database.

DuckDB runs regular expressions with RE2, which has no lookaround,
backreferences, atomic groups or possessive quantifiers, and differs from
Python's `re` in a few escapes (`\\z` vs `\\Z`, `\\p{L}`). A bad pattern must be
a caret error at compile time, not a database error while the query runs, so

1. a scanner names the unsupported Perl constructs with a useful message;
2. the pattern is compiled by RE2 itself (DuckDB's `regexp_matches` on a
   private in-memory connection, no store involved): that is the engine that
   will run it, so anything it accepts is accepted;
3. when RE2 rejects it, Python's `re` (if it also rejects) gives the message
   and the position, else RE2's own description is used.
"""

from __future__ import annotations

import functools
import re
import threading
import warnings

from agtrace.engine import duckdb

_UNSUPPORTED = (
    ("(?=", "a lookahead (?=...)"),
    ("(?!", "a negative lookahead (?!...)"),
    ("(?<=", "a lookbehind (?<=...)"),
    ("(?<!", "a negative lookbehind (?<!...)"),
    ("(?>", "an atomic group (?>...)"),
    ("(?P=", "a backreference (?P=name)"),
    ("(?(", "a conditional (?(...))"),
    ("(?#", "a comment (?#...)"),
)

_lock = threading.Lock()
_con: duckdb.DuckDBPyConnection | None = None


class RegexProblem(Exception):
    """`message`, and `offset`: the index in the pattern, when known."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset


def check_regex(pattern: str) -> None:
    """Raise RegexProblem if RE2 (DuckDB's regex engine) cannot run `pattern`."""
    _scan(pattern)
    re2_error = _re2_error(pattern)
    if re2_error is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        raise RegexProblem(f"bad regular expression: {exc.msg}", exc.pos) from None
    except (RecursionError, OverflowError, ValueError):
        pass
    raise RegexProblem(f"bad regular expression: {re2_error}")


def _scan(pattern: str) -> None:
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if not in_class and nxt in "123456789":
                raise RegexProblem(f"regular expressions cannot use a backreference (\\{nxt})", i)
            if not in_class and nxt == "k" and pattern[i + 2:i + 3] in ("<", "{", "'"):
                raise RegexProblem("regular expressions cannot use a backreference (\\k<name>)", i)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            i += 1
            continue
        if ch == "[":
            in_class = True
            i += 1
            # a ']' right after '[' or '[^' is a literal
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            continue
        if ch == "(":
            for prefix, what in _UNSUPPORTED:
                if pattern.startswith(prefix, i):
                    raise RegexProblem(f"regular expressions cannot use {what}", i)
        if ch in "*+?}" and i + 1 < n and pattern[i + 1] == "+":
            raise RegexProblem("regular expressions cannot use a possessive quantifier (*+, ++, ?+)", i + 1)
        i += 1


@functools.lru_cache(maxsize=256)
def _re2_error(pattern: str) -> str | None:
    """RE2's complaint about `pattern`, or None if it compiles."""
    global _con
    with _lock:
        if _con is None:
            _con = duckdb.connect(":memory:")
        try:
            _con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchone()
        except duckdb.Error as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid pattern"
            for prefix in ("Invalid Input Error: ", "Binder Error: ", "Conversion Error: "):
                if text.startswith(prefix):
                    text = text[len(prefix):]
            return text
    return None
