"""Tokens of the filter language, each with the 1-based column it starts at.

The lexer decides what a run of characters is (a field name with its dotted
parts, a string, a number, a duration, an operator); whether a word is a
keyword is left to the parser, which knows the position (`error` is a status
literal after `=`, an attribute name before it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agtrace.errors import ExpressionError
from agtrace.query.fields import is_name_char, is_name_start
from agtrace.timeutil import parse_iso_ns

WORD = "word"  # a field name or keyword: value = (parts, leading_dot)
STRING = "string"
NUMBER = "number"
DURATION = "duration"  # value = nanoseconds (int)
BARE = "bare"  # a run starting with a digit that is not a number: a hex id, say
OP = "op"  # = == != > >= < <= =~ !~
AND = "&&"
OR = "||"
BANG = "!"
LPAREN = "("
RPAREN = ")"
COMMA = ","
EOF = "end"

UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_TYPO_RE = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)([^\W\d_]+)")
_ISO_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?"
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0", "`": "`"}
_TWO_CHAR_OPS = ("==", "!=", ">=", "<=", "=~", "!~")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str  # as written
    pos: int  # 1-based column of the first character
    value: object = None
    quoted: bool = False  # a STRING written with quotes (not an unquoted ISO time)

    @property
    def keyword(self) -> str | None:
        """The lowercased word if this token is a single plain word, else None."""
        if self.kind != WORD:
            return None
        parts, leading_dot = self.value
        if leading_dot or len(parts) != 1 or parts[0][1]:
            return None
        return parts[0][0].lower()

    def describe(self) -> str:
        return "the end of the expression" if self.kind == EOF else f"'{self.text}'"


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens, ending with an EOF token; raises ExpressionError."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            tokens.append(Token(EOF, "", n + 1))
            return tokens
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch in "\"'":
            value, j = _read_string(text, i)
            tokens.append(Token(STRING, text[i:j], i + 1, value, quoted=True))
            i = j
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise ExpressionError("unterminated string", text, i + 1,
                                      hint="close it with a matching `")
            tokens.append(Token(STRING, text[i:j + 1], i + 1, text[i + 1:j], quoted=True))
            i = j + 1
        elif ch.isdigit() or (ch == "." and nxt.isdigit()) or (ch in "+-" and _NUMBER_RE.match(text, i)):
            tok, i = _read_number(text, i)
            tokens.append(tok)
        elif is_name_start(ch) or (ch == "." and (is_name_start(nxt) or nxt in "\"'")):
            tok, i = _read_word(text, i)
            tokens.append(tok)
        elif text.startswith("<>", i):
            raise ExpressionError("unknown operator '<>'", text, i + 1, hint="use != for 'not equal'")
        elif text[i:i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token(OP, text[i:i + 2], i + 1))
            i += 2
        elif text.startswith("&&", i) or text.startswith("||", i):
            tokens.append(Token(text[i:i + 2], text[i:i + 2], i + 1))
            i += 2
        elif ch in "=<>":
            tokens.append(Token(OP, ch, i + 1))
            i += 1
        elif ch in "!(),":
            tokens.append(Token(ch, ch, i + 1))
            i += 1
        elif ch in "&|":
            raise ExpressionError(f"unexpected character '{ch}'", text, i + 1,
                                  hint=f"write {ch * 2} or {'and' if ch == '&' else 'or'}")
        elif ch == ".":
            raise ExpressionError("expected a field name after '.'", text, i + 1)
        else:
            shown = ch if ch.isprintable() else repr(ch)
            raise ExpressionError(f"unexpected character '{shown}'", text, i + 1)


def _read_string(text: str, start: int) -> tuple[str, int]:
    """A quoted string from `start` (the quote); returns (value, index after)."""
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < n:
            esc = text[i + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
                continue
            if esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            # Unknown escapes keep their backslash, so "\d+" is the regex \d+.
            out.append(ch + esc)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ExpressionError("unterminated string", text, start + 1, hint=f"close it with a matching {quote}")


def _read_number(text: str, start: int) -> tuple[Token, int]:
    """A number, duration, unquoted ISO time or other digit-led word."""
    m = _ISO_RE.match(text, start)
    if m and (m.end() >= len(text) or not _word_char(text[m.end()])):
        raw = m.group(0)
        if parse_iso_ns(raw) is not None:
            return Token(STRING, raw, start + 1, raw), m.end()
    nm = _NUMBER_RE.match(text, start)
    j = nm.end() if nm else start + 1
    while j < len(text) and _word_char(text[j]):
        j += 1
    raw = text[start:j]
    if _NUMBER_RE.fullmatch(raw):
        value: object = float(raw) if any(c in raw for c in ".eE") else int(raw)
        return Token(NUMBER, raw, start + 1, value), j
    sign = -1 if raw[0] == "-" else 1
    body = raw[1:] if raw[0] in "+-" else raw
    if _DURATION_PART_RE.match(body):
        total, k = 0.0, 0
        while k < len(body):
            dm = _DURATION_PART_RE.match(body, k)
            if not dm:
                break
            total += float(dm.group(1)) * UNITS_NS[dm.group(2)]
            k = dm.end()
        if k == len(body):
            return Token(DURATION, raw, start + 1, sign * int(round(total))), j
    um = _UNIT_TYPO_RE.fullmatch(raw)
    if um:
        raise ExpressionError(f"unknown unit '{um.group(1)}' in '{raw}'", text, start + 1,
                              hint="duration units: ns, us, ms, s, m, h; quote text: \"" + raw + "\"")
    return Token(BARE, raw, start + 1, raw), j


def _word_char(ch: str) -> bool:
    return ch == "." or is_name_char(ch) or ch == "µ"


def _read_word(text: str, start: int) -> tuple[Token, int]:
    """A field name: dotted parts, each plain (`gen_ai`) or quoted (`"my key"`)."""
    parts: list[tuple[str, bool]] = []
    i, n = start, len(text)
    leading_dot = text[i] == "."
    if leading_dot:
        i += 1
    while True:
        if i < n and text[i] in "\"'":
            value, i = _read_string(text, i)
            parts.append((value, True))
        else:
            j = i
            while j < n and is_name_char(text[j]):
                j += 1
            if j == i:
                raise ExpressionError("expected a field name after '.'", text, i + 1)
            parts.append((text[i:j], False))
            i = j
        if i + 1 < n and text[i] == "." and (is_name_char(text[i + 1]) or text[i + 1] in "\"'"):
            i += 1
            continue
        if i < n and text[i] == ".":
            raise ExpressionError("a field name cannot end with '.'", text, i + 1)
        break
    return Token(WORD, text[start:i], start + 1, (tuple(parts), leading_dot)), i
