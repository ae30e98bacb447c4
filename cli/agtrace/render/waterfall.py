"""The waterfall view of one trace (`agtrace show`), like Jaeger's, in a terminal.

One row per span: critical-path and error marks, the tree (├─ └─ │), a type
glyph, the name and its key facts, the duration, and a bar placed and sized
to scale across the width, so parallel branches overlap and waits show as
gaps. Errors, exception events and decision reasoning get a line of their own
under the span; `--attrs` adds every attribute, event and link.

The view is built once as lines of (text, style) segments. `plain()` joins
the text (what a pipe, a file, CI logs and the golden tests get: no ANSI
codes, every column aligned, no trailing blanks); `Waterfall` is also a rich
renderable, so a terminal gets the same text in colour. Everything from the
trace is cleaned of control characters before display, so an attribute can
neither break the alignment nor send escape codes to the terminal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import orjson

from agtrace.analysis.tree import Node, Row, TraceTree
from agtrace.timeutil import format_time

Segment = tuple[str, "str | None"]
Line = list[Segment]

GLYPHS = {
    "workflow": "◎", "agent": "●", "llm": "✦", "tool": "▸", "retrieval": "≡", "decision": "◆", "other": "·",
}
_GLYPH_SEGS = {t: (g + " ", None) for t, g in GLYPHS.items()}
GLYPH_MISSING = "?"
MARK_CRITICAL = "*"
MARK_ERROR = "✗"
MARK_WIDTH = 3  # "*✗ "
DUR_WIDTH = 8
MIN_BAR = 12
MIN_WIDTH = 40
SHORT_FACT = 12  # facts up to this many cells are shown whole or not at all
# From this many rows the text is rendered in two processes (`Waterfall._text`):
# below it the fork costs more than half the rows.
SPLIT_MIN_ROWS = 5_000

# Style names used in segments -> rich styles (when printed through rich) and
# the equivalent SGR codes (when `ansi()` writes the escape codes itself).
STYLES = {
    "head": "bold", "dim": "dim", "key": "dim", "err": "red", "err.b": "bold red", "crit": "bold yellow",
    "note": "yellow", "fact": "cyan", "decision": "magenta", "ctx": "dim",
    "bar": "blue", "bar.crit": "yellow", "bar.err": "red", "bar.ctx": "bright_black",
    "bar.group": "cyan", "bar.missing": "bright_black",
}

SGR = {
    "head": "1", "dim": "2", "key": "2", "err": "31", "err.b": "1;31", "crit": "1;33", "note": "33",
    "fact": "36", "decision": "35", "ctx": "2", "bar": "34", "bar.crit": "33", "bar.err": "31",
    "bar.ctx": "90", "bar.group": "36", "bar.missing": "90",
}

_LEFT_EIGHTHS = "▏▎▍▌▋▊▉█"
_DENSITY = "░▒▓█"

DECISION_KEYS = ("decision_type", "decision", "decision.type", "decision.outcome", "decision.name",
                 "gen_ai.decision", "outcome")
CONFIDENCE_KEYS = ("decision_confidence", "confidence", "decision.confidence", "confidence_score", "score")
REASONING_KEYS = ("reasoning", "decision.reasoning", "rationale", "reason", "explanation")
TOOL_KEYS = ("tool.name", "gen_ai.tool.name", "tool_name")
RESULT_COUNT_KEYS = ("result_count", "tool.result_count", "results.count", "result.count", "results_count",
                     "retrieval.documents.count", "documents.count", "num_results")
VERSION_KEYS = ("agent_version", "agent.version", "gen_ai.agent.version")


# --------------------------------------------------------------------------
# Text helpers


def _ctrl_table() -> dict[int, str]:
    t = {c: " " for c in range(0x20)}
    t[0x7F] = " "
    for c in range(0x80, 0xA0):
        t[c] = " "
    return t


_CTRL = _ctrl_table()


def clean(text) -> str:
    """One display line: control characters (newlines, ESC, ...) become spaces."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():
        return s
    return s.translate(_CTRL)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d\u2060\ufeff":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# Characters that may not be one cell wide: combining marks, zero-width
# characters, and the blocks holding East Asian wide / fullwidth characters
# and emoji. A string without any of them is measured by len(), in C.
_MAYBE_NOT_ONE_CLASS = (
    "[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f\u0900-\u0903"
    "\u093a-\u094f\u1100-\u115f\u1ab0-\u1aff\u1dc0-\u1dff\u200b-\u200d\u2060\u20d0-\u20ff"
    "\u231a\u231b\u23e9-\u23f3\u25fd\u25fe\u2614\u2615\u2648-\u2653\u267f\u2693\u26a1"
    "\u26aa-\u26ab\u26bd-\u26be\u26c4-\u26c5\u26ce\u26d4\u26ea\u26f2-\u26f5\u26fa\u26fd"
    "\u2705\u270a\u270b\u2728\u274c\u274e\u2753-\u2755\u2757\u2795-\u2797\u27b0\u27bf"
    "\u2b1b\u2b1c\u2b50\u2b55\u2e80-\u303e\u3040-\ua4cf\ua960-\ua97f\uac00-\ud7a3"
    "\uf900-\ufaff\ufe00-\ufe0f\ufe10-\ufe19\ufe20-\ufe6f\uff00-\uff60\uffe0-\uffe6\ufeff"
    "\U0001f000-\U0001faff\U00020000-\U0003fffd\U000e0000-\U000e01ef]"
)


_maybe_not_one = None
# The view's own characters (tree guides, glyphs, bars, marks) are one cell
# wide: strings made of them and ASCII need no pattern at all.
_OWN_CHARS = "│├└─╌┼┤▏▎▍▌▋▊▉█▐▕░▒▓◎●✦▸≡◆·×…→↻✗“”µ"
# Any character that is neither ASCII nor one of those (a regex search: in C,
# about 20 times faster than str.translate with a deletion table).
_foreign = re.compile("[^\x00-\x7f" + _OWN_CHARS + "]").search


def _not_one_cell(s: str) -> bool:
    """True if `s` may hold a character that is not one cell wide (the
    pattern is compiled on first use: it costs milliseconds at start-up)."""
    global _maybe_not_one
    if _foreign(s) is None:
        return False
    if _maybe_not_one is None:
        _maybe_not_one = re.compile(_MAYBE_NOT_ONE_CLASS).search
    return _maybe_not_one(s) is not None


_CELLS: dict[str, int] = {}  # non-ASCII strings measured (glyphs, guides and names repeat)


def cell_len(s: str) -> int:
    """Terminal cells taken by `s` (wide CJK/emoji count 2, combining marks 0)."""
    if s.isascii():
        return len(s)
    n = _CELLS.get(s)
    if n is None:
        n = len(s) if not _not_one_cell(s) else sum(_char_width(c) for c in s)
        if len(_CELLS) < 50_000:
            _CELLS[s] = n
    return n


def fit(s: str, width: int) -> str:
    """`s` cut to `width` cells, ending in "…" when cut."""
    if width <= 0:
        return ""
    if s.isascii() or not _not_one_cell(s):
        return s if len(s) <= width else s[: width - 1] + "…"
    if cell_len(s) <= width:
        return s
    out, used = [], 0
    for ch in s:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def format_duration(ns: int | float | None) -> str:
    """Short, unit-adaptive: 850ns 12µs 3.25ms 48.1ms 245ms 1.24s 12.3s 2m03s 1h02m."""
    if ns is None:
        return "?"
    ns = int(ns)
    if ns < 0:
        return "-" + format_duration(-ns)
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 999_500:
        return f"{ns / 1_000:.0f}µs"
    if ns < 9_995_000:
        return f"{ns / 1e6:.2f}ms"
    if ns < 99_950_000:
        return f"{ns / 1e6:.1f}ms"
    if ns < 999_500_000:
        return f"{ns / 1e6:.0f}ms"
    if ns < 9_995_000_000:
        return f"{ns / 1e9:.2f}s"
    if ns < 59_950_000_000:
        return f"{ns / 1e9:.1f}s"
    s = int(round(ns / 1e9))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    m = s // 60
    return f"{m // 60}h{m % 60:02d}m"


def _num(v) -> str:
    """A number as written (0.82 stays 0.82, 21.0 becomes 21), at most 4 decimals."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        text = repr(v)
        return text if len(text) <= 8 or "e" in text else f"{v:.4f}".rstrip("0")
    return clean(v)


def _value_text(v) -> str:
    """An attribute value as one line: strings as they are, the rest as JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)
    if isinstance(v, (bool, int)) or v is None:
        return _num(v) if v is not None else "null"
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return str(v)


def _first(attrs: dict, keys: Sequence[str]):
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


# --------------------------------------------------------------------------
# Facts per span type


def span_facts(span) -> list[Segment]:
    """The key facts of a span, for its row: decision and confidence, tool and
    result count, model and tokens, agent and version."""
    t = span.type
    name = span.name or ""
    out: list[Segment] = []
    if t == "decision":
        a = span.attrs()
        d = _first(a, DECISION_KEYS)
        c = _first(a, CONFIDENCE_KEYS)
        if d is not None:
            out.append((_value_text(d), "decision"))
        if c is not None:
            out.append((f"conf {_num(c)}", "decision"))
    elif t == "llm":
        model = span.model
        if model and model not in name:
            out.append((model, "fact"))
        i, o = span.input_tokens, span.output_tokens
        if i is not None or o is not None:
            out.append((f"{'?' if i is None else i}→{'?' if o is None else o} tok", "fact"))
    elif t in ("tool", "retrieval"):
        a = span.attrs()
        tool = _first(a, TOOL_KEYS)
        if tool is not None and str(tool) not in name:
            out.append((_value_text(tool), "fact"))
        n = _first(a, RESULT_COUNT_KEYS)
        if n is not None:
            out.append((f"{_num(n)} result{'' if n == 1 else 's'}", "fact"))
    elif t == "agent":
        a = span.attrs()
        agent = span.own_agent or span.agent
        if agent and agent not in name:
            out.append((agent, "fact"))
        v = _first(a, VERSION_KEYS)
        if v is not None:
            v = _value_text(v)
            out.append((v if v[:1] in "vV" else f"v{v}", "fact"))
    return [(clean(s), st) for s, st in out]


def detail_lines(span, facts: Sequence[Segment] = ()) -> list[list[Segment]]:
    """Lines under a span's row, as segments: the error's status message, its
    exception events (red for an error span), and a decision's reasoning. A
    status message repeated by an exception event is shown once. `facts`
    (the decision and confidence when the row had no room for them) lead
    the reasoning line."""
    out: list[list[Segment]] = []
    is_error = span.status == "error"
    exceptions = []
    if span.events and "exception" in span.events:
        for e in span.event_list():
            if e.get("name") != "exception":
                continue
            ea = e.get("attributes") or {}
            etype, msg = ea.get("exception.type"), ea.get("exception.message")
            exceptions.append(": ".join(str(x) for x in (etype, msg) if x not in (None, "")) or "(no message)")
    if is_error:
        msg = span.status_message
        if msg and not any(msg in x for x in exceptions):
            out.append([(f"{MARK_ERROR} {clean(msg)}", "err")])
        elif not msg and not exceptions:
            out.append([(f"{MARK_ERROR} error (no status message)", "err")])
    for x in exceptions:
        out.append([(f"{MARK_ERROR} exception {clean(x)}", "err") if is_error else (f"! exception {clean(x)}", "note")])
    if span.type == "decision":
        lead: list[Segment] = []
        for t, st in facts:
            lead += [(t, st), (" · ", "dim")]
        a = span.attrs()
        r = _first(a, REASONING_KEYS)
        if r is not None:
            out.append(lead + [(f"“{clean(_value_text(r))}”", "dim")])
        else:
            steps = sum(1 for e in span.event_list() if e.get("name") == "reasoning_step") if span.events else 0
            if steps:
                out.append(lead + [(f"{steps} reasoning steps (see --attrs)", "dim")])
            elif lead:
                out.append(lead[:-1])
    return out


def span_type_of(node: Node) -> str | None:
    return None if node.span is None else (node.span.type or "other")


# --------------------------------------------------------------------------
# Bars


def bar_cells(start: float, end: float, width: int) -> tuple[int, str]:
    """A bar from cell position `start` to `end` (floats, in cells) within
    `width` cells: (first cell, its characters), with eighth-block edges so
    that short spans and offsets below one cell still read. Never empty."""
    return _bar_eighths(int(round(start * 8)), int(round(end * 8)), width)


def _bar_eighths(a0: int, a1: int, width: int) -> tuple[int, str]:
    """`bar_cells` with both ends in eighths of a cell."""
    full = width * 8
    a0 = min(max(a0, 0), full - 1)
    a1 = min(max(a1, a0 + 1), full)
    c0, c1 = a0 // 8, (a1 - 1) // 8
    if c0 == c1:  # a short bar inside one cell
        lo, hi = a0 - c0 * 8, a1 - c0 * 8
        f = hi - lo
        if f >= 6:
            ch = "█"
        elif lo == 0:
            ch = _LEFT_EIGHTHS[f - 1]
        elif hi == 8:
            ch = "▐" if f >= 3 else "▕"
        elif f >= 3:
            ch = "▌" if lo + hi < 8 else "▐"
        else:
            ch = "▏" if lo + hi < 8 else "▕"
        return c0, ch
    f_first = 8 - (a0 - c0 * 8)  # eighths of the first cell covered, from its right
    first = "█" if f_first >= 6 else "▐" if f_first >= 3 else "▕"
    last = _LEFT_EIGHTHS[a1 - c1 * 8 - 1]  # eighths of the last cell, from its left
    return c0, first + "█" * (c1 - c0 - 1) + last


def density_cells(intervals: Iterable[tuple[float, float]], width: int) -> tuple[int, str]:
    """A bar for many spans at once: each cell shaded by how many of them are
    running there (░ ▒ ▓ █, relative to the busiest cell)."""
    diff = [0] * (width + 1)
    for s, e in intervals:
        c0 = min(max(int(s), 0), width - 1)
        c1 = min(max(int(e - 1e-9) if e > s else c0, c0), width - 1)
        diff[c0] += 1
        diff[c1 + 1] -= 1
    counts, run = [], 0
    for c in range(width):
        run += diff[c]
        counts.append(run)
    peak = max(counts) if counts else 0
    if peak == 0:
        return 0, ""
    first = next(i for i, k in enumerate(counts) if k)
    last = max(i for i, k in enumerate(counts) if k)
    chars = []
    for k in counts[first:last + 1]:
        chars.append(" " if k == 0 else _DENSITY[min(3, (4 * k - 1) // peak)])
    return first, "".join(chars)


# --------------------------------------------------------------------------
# The view


class Waterfall:
    """The rendered view of one trace; `plain()` for text, or print with rich."""

    def __init__(
        self,
        tree: TraceTree,
        rows: Sequence[Row],
        *,
        trace_id: str,
        width: int = 120,
        critical: set[str] | frozenset[str] | None = None,
        show_attrs: bool = False,
        focus: Node | None = None,
        notes: Sequence[str] = (),
    ):
        self.tree = tree
        self.rows = rows
        self.trace_id = trace_id
        self.width = max(int(width), MIN_WIDTH)
        self.critical = critical
        self.show_attrs = show_attrs
        self.focus = focus
        self.notes = list(notes)
        self._lines: list[Line] | None = None

    # -- output ------------------------------------------------------------
    def lines(self) -> list[Line]:
        """The view as lines of (text, style) segments."""
        if self._lines is None:
            self._lines = self._build(plain=False)
        return self._lines

    def plain(self) -> str:
        """The view as plain text (no ANSI codes), lines stripped on the right.

        Built without segments (the same code path, joined as it goes): on a
        50,000-span trace that is most of the rendering time.
        """
        if self._lines is not None:
            return plain_text(self._lines)
        return self._text(plain=True)

    def ansi(self) -> str:
        """The view with ANSI colour codes (basic 16 colours), for a terminal.

        Written directly rather than through rich: a 50,000-row trace prints
        in a fraction of the time, and a small one does not pay rich's import.
        """
        if self._lines is not None:
            return ansi_text(self._lines)
        return self._text(plain=False)

    def _text(self, plain: bool) -> str:
        """The whole view as text; a big one rendered half here, half in a
        forked child (`background.Exchange`), since rows cost ~20 µs each in
        Python and there is a second core. The column widths depend on every
        row, so each side measures its half first and both use the widths
        decided from the two. Same text either way (tested)."""
        to_text = plain_text if plain else ansi_text
        rows = self.rows
        if len(rows) < SPLIT_MIN_ROWS:
            return to_text(self._build(plain))
        mid = len(rows) // 2

        def measure_theirs():
            prepared, need_name, need_all = self._measure(rows[mid:])
            return prepared, (need_name, need_all)

        def emit_theirs(prepared, cols):
            return to_text(self._emit(prepared, cols, plain))

        from agtrace import background

        with background.Exchange(measure_theirs, emit_theirs) as job:
            prepared, need_name, need_all = self._measure(rows[:mid])
            their_name, their_all = job.summary()
            cols = self._columns(max(need_name, their_name), max(need_all, their_all))
            job.send(cols)
            mine = to_text(self._top(cols) + self._emit(prepared, cols, plain))
            return mine + job.result()

    def __rich_console__(self, console, options):
        from rich.segment import Segment as RichSegment
        from rich.style import Style

        cache: dict = {}

        def style(name):
            if name is None:
                return None
            s = cache.get(name)
            if s is None:
                s = cache[name] = Style.parse(STYLES.get(name, name))
            return s

        newline = RichSegment.line()
        for line in self.lines():
            # Drop trailing blanks so a narrower console does not wrap them.
            while line and not line[-1][0].strip():
                line = line[:-1]
            if line:
                t, st = line[-1]
                line = line[:-1] + [(t.rstrip(), st)]
            for t, st in line:
                if t:
                    yield RichSegment(t, style(st))
            yield newline

    # -- building ----------------------------------------------------------
    def _window(self) -> tuple[int, int]:
        if self.focus is not None and self.focus.start_ns is not None and self.focus.end_ns is not None \
                and self.focus.end_ns > self.focus.start_ns:
            return self.focus.start_ns, self.focus.end_ns
        o = self.tree.origin_ns or 0
        return o, max(self.tree.end_ns or o, o)

    def _row_name(self, row: Row) -> tuple[list[Segment], list[Segment]]:
        """(name segments, fact segments) of a row, before fitting."""
        if row.group is not None:
            g = row.group
            t = span_type_of(g.members[0]) or "other"
            name = [(GLYPHS.get(t, "·") + " ", None), (clean(g.name or "(unnamed)"), None),
                    (f" ×{g.count}", "head")]
            facts: list[Segment] = [(f"{format_duration(g.min_duration_ns)}…{format_duration(g.max_duration_ns)}", "fact")]
            if g.spans > g.count:
                facts.append((f"{g.spans - g.count} spans inside", "dim"))
            if g.errors:
                facts.append((f"{g.errors} {MARK_ERROR}", "err.b"))
            return name, facts
        node = row.node
        if node.missing:
            return [(GLYPH_MISSING + " ", "note"), (f"missing parent {clean(node.span_id or '')}", "note")], []
        span = node.span
        if row.context:
            name = [(GLYPHS.get(span.type or "other", "·") + " ", "ctx"), (clean(span.name or "(unnamed)"), "ctx")]
        else:
            name = [_GLYPH_SEGS.get(span.type) or _GLYPH_SEGS["other"],
                    (clean(span.name or "(unnamed)"), "err.b" if span.status == "error" else None)]
        facts = []
        if node.cycle is not None:
            facts.append(("↻ parent cycle broken here", "note"))
        if not row.context:
            facts.extend(span_facts(span))
        if row.hidden:
            facts.append((f"+{row.hidden} span{'s' if row.hidden != 1 else ''}", "dim"))
            if row.hidden_errors:
                facts.append((f"({row.hidden_errors} {MARK_ERROR})", "err.b"))
        return name, facts

    def _build(self, plain: bool = False) -> list:
        """Lines of segments; with `plain`, span rows come as ready strings."""
        prepared, need_name, need_all = self._measure(self.rows)
        cols = self._columns(need_name, need_all)
        return self._top(cols) + self._emit(prepared, cols, plain)

    def _top(self, cols: tuple) -> list:
        """The header and the axis, above the rows."""
        nw, bw, _, w0, span_ns = cols
        out: list = self._header(bw)
        out.extend(self._axis(nw, bw, w0 - (self.tree.origin_ns or 0), span_ns))
        return out

    def _measure(self, rows: Sequence[Row]) -> tuple[list, int, int]:
        """Each row's name and fact segments with their cell lengths, and the
        widest name and widest name-plus-facts (what the columns are sized by)."""
        glen: dict[str, int] = {}  # guides -> cells (guides repeat a lot)
        prepared = []
        need_name = need_all = 8
        row_name = self._row_name
        for row in rows:
            name, facts = row_name(row)
            g = row.guides
            lead = glen.get(g)
            if lead is None:
                lead = glen[g] = cell_len(g)
            nlen = lead + sum([len(t) if t.isascii() else cell_len(t) for t, _ in name])
            flens = [len(t) if t.isascii() else cell_len(t) for t, _ in facts]
            total = nlen + sum(flens) + 2 * len(flens)
            if nlen > need_name:
                need_name = nlen
            if total > need_all:
                need_all = total
            prepared.append((row, name, facts, lead, flens, total))
        return prepared, need_name, need_all

    def _columns(self, need_name: int, need_all: int) -> tuple[int, int, float, int, int]:
        """(name column, bar column, eighths of a cell per ns, window start, window length).

        Names first; facts share what is left of the name column."""
        W = self.width
        w0, w1 = self._window()
        span_ns = w1 - w0
        avail = W - MARK_WIDTH - 1 - DUR_WIDTH - 2
        cap = max(int(avail * 0.58), min(need_name, int(avail * 0.7)))
        nw = max(min(need_all, cap), 8)
        if avail - nw < MIN_BAR:
            nw = max(8, avail - MIN_BAR)
        bw = max(avail - nw, 1)
        scale8 = 8 * bw / span_ns if span_ns > 0 else 0.0
        return nw, bw, scale8, w0, span_ns

    def _emit(self, prepared: list, cols: tuple, plain: bool) -> list:
        """The lines of measured rows (and the lines under them)."""
        W = self.width
        nw, bw, scale8, w0, _ = cols
        origin = self.tree.origin_ns or 0
        crit = self.critical or frozenset()
        out: list = []
        blank = (" ", None)
        m_crit, m_err = (MARK_CRITICAL, "crit"), (MARK_ERROR, "err.b")
        sep = ("  ", None)
        marks = {(False, False): "   ", (True, False): MARK_CRITICAL + "  ",
                 (False, True): " " + MARK_ERROR + " ", (True, True): MARK_CRITICAL + MARK_ERROR + " "}
        bars: dict[tuple[int, int], tuple[int, str]] = {}  # many spans share a bar
        show_attrs = self.show_attrs
        for row, name, facts, lead, flens, total in prepared:
            node, group = row.node, row.group
            if group is None:
                on_path = node.span_id in crit and not node.missing
                is_err = node.span is not None and node.span.status == "error"
            else:
                on_path = any(m.span_id in crit for m in group.members)
                is_err = group.errors > 0
            # Name column: guides, glyph + name (cut last), then facts.
            shown = len(facts)
            if total <= nw:  # everything fits (the common case)
                fitted_name, fitted_facts = name, facts
                room = nw - total
            else:
                fitted_name, fitted_facts = [], []
                room = nw - lead
                for t, st in name:
                    ft = fit(t, room)
                    if ft:
                        fitted_name.append((ft, st))
                        room -= cell_len(ft)
                    if ft != t:
                        room = 0
                        break
                shown = 0
                for (t, st), fl in zip(facts, flens):
                    # A fact fits whole; a long one may be cut, but a short
                    # one ("conf 0.81") cut in the middle says nothing: stop.
                    if fl <= room - 2:
                        ft = t
                    elif fl > SHORT_FACT and room - 2 >= SHORT_FACT:
                        ft = fit(t, room - 2)
                    else:
                        break
                    fitted_facts.append((ft, st))
                    room -= 2 + (fl if ft is t else cell_len(ft))
                    shown += 1
            # Duration and bar.
            if group is not None:
                g = group
                dur = format_duration(g.end_ns - g.start_ns) if g.start_ns is not None and g.end_ns is not None else "?"
                ivals = [((m.start_ns - w0) * scale8 / 8, (m.end_ns - w0) * scale8 / 8) for m in g.members
                         if m.start_ns is not None and m.end_ns is not None] if scale8 else [(0, 0)]
                col, bar = density_cells(ivals, bw)
                bstyle = "bar.crit" if on_path else "bar.err" if is_err else "bar.group"
            else:
                dur = format_duration(node.duration_ns)
                if node.start_ns is None or node.end_ns is None:
                    col, bar = 0, ""
                elif scale8:
                    key = (int(round((node.start_ns - w0) * scale8)), int(round((node.end_ns - w0) * scale8)))
                    cb = bars.get(key)
                    if cb is None:
                        cb = bars[key] = _bar_eighths(key[0], key[1], bw)
                    col, bar = cb
                else:
                    col, bar = 0, "▏"
                if node.missing:
                    bar = "╌" * len(bar)
                    bstyle = "bar.missing"
                else:
                    bstyle = ("bar.ctx" if row.context else "bar.err" if is_err else
                              "bar.crit" if on_path else "bar")
            if plain:
                out.append("".join([marks[on_path, is_err], row.guides, *[t for t, _ in fitted_name],
                                    *["  " + t for t, _ in fitted_facts], " " * (room + 1), dur.rjust(DUR_WIDTH),
                                    "  ", " " * col, bar]))
            else:
                segs: list[Segment] = [m_crit if on_path else blank, m_err if is_err else blank, blank,
                                       (row.guides, "dim")]
                segs.extend(fitted_name)
                for f in fitted_facts:
                    segs.append(sep)
                    segs.append(f)
                segs.append((" " * (room + 1), None))
                segs.append((dur.rjust(DUR_WIDTH), "ctx" if row.context else None))
                segs.append(("  " + " " * col, None))
                segs.append((bar, bstyle))
                out.append(segs)
            # Lines under the row.
            if group is None and node.span is not None and not row.context:
                span = node.span
                if span.events or span.type == "decision" or is_err:
                    lost = [f for f in facts[shown:] if f[1] == "decision"] if span.type == "decision" else ()
                    details = detail_lines(span, lost)
                else:
                    details = ()
                if details or show_attrs:
                    pre = [(" " * MARK_WIDTH, None), (row.cont.ljust(lead + 2), "dim")]
                    width = max(W - MARK_WIDTH - lead - 2, 20)
                    for segs_d in details:
                        line = list(pre)
                        room = width
                        for t, st in segs_d:
                            ft = fit(t, room)
                            if ft:
                                line.append((ft, st))
                                room -= cell_len(ft)
                            if ft != t or room <= 0:
                                break
                        out.append(line)
                    if show_attrs:
                        out.extend(pre + seg for seg in self._attr_lines(node, origin))
            elif group is not None and show_attrs:
                pre = [(" " * MARK_WIDTH, None), (row.cont.ljust(lead + 2), "dim")]
                ids = ", ".join(m.span_id or "?" for m in group.members)
                out.append(pre + [("members ", "key"), (ids, None)])
        return out

    def _header(self, bw: int) -> list[Line]:
        tree = self.tree
        top = _primary_root(tree)
        out: list[Line] = []
        root_name = clean(top.name) if top is not None and top.name else "(no root span)"
        out.append([("Trace ", "head"), (self.trace_id, "head"), ("  ", None), (root_name, "head")])
        service = top.span.service if top is not None and top.span is not None else None
        errors = tree.error_count
        facts: list[list[Segment]] = []
        if service:
            facts.append([("service ", "key"), (clean(service), None)])
        facts += [[("start ", "key"), (format_time(tree.origin_ns, table=True) or "?", None)],
                  [("duration ", "key"), (format_duration(tree.duration_ns), None)],
                  [(f"{tree.span_count} span{'s' if tree.span_count != 1 else ''}", None)],
                  [(f"{errors} error{'s' if errors != 1 else ''}", "err.b" if errors else None)]]
        n_roots = sum(1 for r in tree.roots if not r.missing) + sum(len(r.children) for r in tree.roots if r.missing)
        if n_roots > 1:
            facts.append([(f"{n_roots} roots", "note")])
        out.extend(self._flow("", facts, [(" · ", "dim")]))
        agents = sorted({n.span.agent for n in tree.nodes if n.span.agent})
        if agents:
            out.extend(self._flow("agents  ", [[(clean(a), None)] for a in agents], [(", ", None)]))
        if self.focus is not None:
            f = self.focus
            out.extend(self._flow("subtree ", [[(clean(f.span_id or ""), None)], [(clean(f.name or "?"), "head")],
                                              [(f"{f.size} span{'s' if f.size != 1 else ''}", None)],
                                              [("timeline zoomed to it", "dim")]],
                                  [(" · ", "dim")]))
        types = {n.span.type or "other" for n in tree.nodes}
        legend = [[(f"{g} {t}", None)] for t, g in GLYPHS.items() if t in types]
        if any(r.missing for r in tree.roots):
            legend.append([(f"{GLYPH_MISSING} missing parent", "note")])
        if self.critical is not None:
            legend.append([(f"{MARK_CRITICAL} critical path", "crit")])
        legend.append([(f"{MARK_ERROR} error", "err.b")])
        out.extend(self._flow("legend  ", legend, [("  ", None)]))
        for note in tree.problems + self.notes:
            out.extend(self._flow("note: ", [[(w, "note")] for w in clean(note).split(" ")], [(" ", None)],
                                  label_style="note"))
        out.append([])
        return out

    def _flow(self, label: str, items: list[list[Segment]], sep: list[Segment],
              label_style: str = "key") -> list[Line]:
        """`  label item<sep>item...`, wrapped at the width under the first item."""
        lines: list[Line] = []
        cur: Line = [("  " + label, label_style)]
        indent = 2 + cell_len(label)
        used = indent
        sep_len = sum(cell_len(t) for t, _ in sep)
        for j, item in enumerate(items):
            n = sum(cell_len(t) for t, _ in item)
            if j and used + sep_len + n > self.width:
                tail = "".join(t for t, _ in sep).rstrip()
                if tail:
                    cur.append((tail, sep[0][1]))
                lines.append(cur)
                cur = [(" " * indent, None)]
                used = indent
            elif j:
                cur.extend(sep)
                used += sep_len
            cur.extend(item)
            used += n
        lines.append(cur)
        return lines

    def _axis(self, nw: int, bw: int, offset_ns: int, span_ns: int) -> list[Line]:
        """Tick labels (offsets from the trace start) and the column headings."""
        ticks = 4 if bw >= 40 else 2 if bw >= 16 else 1
        cols = [round(k * (bw - 1) / ticks) for k in range(ticks + 1)]
        labels = ["0" if offset_ns + span_ns * k / ticks == 0 else
                  ("+" if self.focus is not None else "") + format_duration(offset_ns + span_ns * k / ticks)
                  for k in range(ticks + 1)]
        if span_ns <= 0:  # one instant: a single label
            labels = labels[:1]
        buf = [" "] * bw
        taken = -1
        for k, (c, lab) in enumerate(zip(cols, labels)):
            if k == 0:
                s = 0
            elif k == ticks:
                s = bw - len(lab)
            else:
                s = c - len(lab) // 2
            if s <= taken or s < 0 or s + len(lab) > bw:
                continue
            buf[s:s + len(lab)] = list(lab)
            taken = s + len(lab)
        ruler = ["─"] * bw
        for c in cols:
            ruler[c] = "┼"
        ruler[0] = "├"
        ruler[-1] = "┤"
        lead = " " * (MARK_WIDTH + nw + 1 + DUR_WIDTH + 2)
        head = [(" " * MARK_WIDTH, None), ("span".ljust(nw), "key"), (" ", None),
                ("duration".rjust(DUR_WIDTH), "key"), ("  ", None), ("".join(ruler), "dim")]
        return [[(lead, None), ("".join(buf), "dim")], head]

    def _attr_lines(self, node: Node, origin: int) -> list[Line]:
        """Every attribute, event and link of a span, values whole."""
        span = node.span
        out: list[Line] = []
        ident = [("span_id ", "key"), (clean(span.span_id or ""), None)]
        if span.parent_span_id:
            ident += [("  parent ", "key"), (clean(span.parent_span_id), None)]
        ident += [("  kind ", "key"), (clean(span.kind or "?"), None),
                  ("  status ", "key"), (clean(span.status or "?"), "err" if span.status == "error" else None)]
        if span.service:
            ident += [("  service ", "key"), (clean(span.service), None)]
        if node.start_ns is not None:
            off = node.start_ns - origin
            ident += [("  start ", "key"), (f"+{format_duration(off)}" if off else "0", None)]
        if span.agent:
            ident += [("  agent ", "key"), (clean(span.agent), None)]
        out.append(ident)
        for k, v in span.attrs().items():
            out.extend(_kv_lines(f"{k}: ", v))
        for e in span.event_list():
            at = e.get("time_ns")
            when = f" @+{format_duration(at - origin)}" if isinstance(at, int) else ""
            out.append([("event ", "key"), (clean(e.get("name") or "?"), "note"), (when, "dim")])
            for k, v in (e.get("attributes") or {}).items():
                out.extend(_kv_lines(f"  {k}: ", v))
        for ln in span.links:
            if ln.linked_trace_id == self.trace_id:
                target = self.tree.find(ln.linked_span_id or "")
                what = f"→ {ln.linked_span_id} {target.name if target is not None else '(not in this trace)'}"
            else:
                what = f"→ trace {ln.linked_trace_id or '?'} span {ln.linked_span_id or '?'}"
            out.append([("link ", "key"), (clean(what), None), (f" ({clean(ln.ref_type or 'link')})", "dim")])
            for k, v in ln.attrs().items():
                out.extend(_kv_lines(f"  {k}: ", v))
        return out


def plain_text(lines: list) -> str:
    """Lines (segments, or ready strings from the plain path) as text, no trailing blanks."""
    return "".join([(ln if ln.__class__ is str else "".join([t for t, _ in ln])).rstrip() + "\n"
                    for ln in lines])


def ansi_text(lines: list[Line], sgr: dict[str, str] = SGR) -> str:
    """Lines of segments as text with SGR colour codes (style name -> code in `sgr`)."""
    out = []
    for line in lines:
        parts = []
        for t, st in line:
            if st is None or not t.strip():
                parts.append(t)
            else:
                parts.append(f"\x1b[{sgr.get(st, '0')}m{t}\x1b[0m")
        out.append("".join(parts).rstrip() + "\n")
    return "".join(out)


def _kv_lines(key: str, value) -> list[Line]:
    """`key: value`, the value whole; a multi-line string continues below, indented."""
    text = _value_text(value)
    parts = text.splitlines() or [""]
    lines = [[(clean(key), "key"), (clean(parts[0]), None)]]
    pad = " " * (cell_len(key) + 2)
    for p in parts[1:]:
        lines.append([(pad, None), (clean(p), None)])
    return lines


def _primary_root(tree: TraceTree) -> Node | None:
    """The trace's main root: a true root before an orphan, then the longest."""
    best, key = None, None
    for r in tree.roots:
        cands = r.children if r.missing else [r]
        for n in cands:
            k = (0 if (not r.missing and n.span.parent_span_id is None) else 1,
                 -(n.duration_ns or 0), n.start_ns or 0, n.span_id or "")
            if key is None or k < key:
                best, key = n, k
    return best
