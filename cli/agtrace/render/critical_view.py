"""The terminal view of `agtrace critical-path`: the path, its spans, the fan-outs.

It reads like `agtrace show`: one row per item, a name column, numbers, and a
bar on one timeline shared by every block (offsets from the trace start), so
the path reads as a staircase down and back up the tree, and a fan-out's
branches overlap with their slack drawn up to the join (╌). Blocks:

* the path: its sections in time order (the span working then, indented by
  its depth under the root), with start and end offsets and the length;
* the spans on the path, most critical time first: critical time, share of
  the trace's duration, drag, and where on the timeline their critical time
  fell;
* fan-outs (children that overlapped): parallelism, the critical branch, each
  branch's slack, and who waited at the join.

Every fact comes from `analysis.critical_path` objects; this module only lays
them out. Built once as lines of (text, style) segments: `plain()` for pipes
and golden tests (no ANSI codes, no trailing blanks), `ansi()` for a colour
terminal, the same text either way. Trace text is cleaned of control
characters (`waterfall.clean`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agtrace.render.waterfall import GLYPHS, ansi_text, bar_cells, cell_len, clean, fit, format_duration, plain_text

Segment = tuple[str, "str | None"]
Line = list[Segment]

MARK_WIDTH = 3  # "*  "
NUM_WIDTH = 8
NUM_COLUMNS = 3
MIN_BAR = 12
MIN_WIDTH = 60
INDENT_CAP = 12  # levels drawn as indentation; deeper ones say their depth

# Style names -> SGR codes for `ansi()`.
SGR = {
    "head": "1", "dim": "2", "key": "2", "note": "33", "crit": "1;33", "fact": "36", "warn": "33",
    "bar": "34", "bar.crit": "33", "bar.wait": "90", "slack": "2", "num.crit": "1",
}


def _offset(ns: int | float) -> str:
    return "0" if ns == 0 else format_duration(ns)


def _share(x: float) -> str:
    pct = 100.0 * x
    if pct == 0:
        return "0%"
    if pct < 0.1:
        return "<0.1%"
    return f"{pct:.1f}%"


class _Row:
    """One row of the table part: mark, indented name and facts, three
    numbers, and a bar of one or more stretches on the shared timeline."""

    __slots__ = ("mark", "depth", "glyph", "name", "facts", "nums", "stretches", "style", "slack_to")

    def __init__(self, mark: Segment, depth: int, glyph: str, name: str, facts: list[Segment],
                 nums: Sequence[str], stretches: Sequence[tuple[int, int]], style: str,
                 slack_to: int | None = None):
        self.mark, self.depth, self.glyph, self.name, self.facts = mark, depth, glyph, name, facts
        self.nums, self.stretches, self.style, self.slack_to = nums, stretches, style, slack_to


class _Head:
    __slots__ = ("title", "cols")

    def __init__(self, title: str, cols: Sequence[str]):
        self.title, self.cols = title, cols


class CriticalPathView:
    """`agtrace critical-path` as text; `plain()`, `ansi()`.

    `cols`: the trace's `TraceColumns` (for parent links and span types);
    `limit`: rows per block (sections, spans, fan-outs, branches per fan-out),
    0 for all; `what_if`: a `WhatIfResult` and its label, shown under the
    header.
    """

    def __init__(self, result, cols, *, width: int = 120, limit: int = 50, what_if=None,
                 what_if_label: str | None = None):
        self.result = result
        self.cols = cols
        self.width = max(int(width), MIN_WIDTH)
        self.limit = limit
        self.what_if = what_if
        self.what_if_label = what_if_label
        index: dict[str, int] = {}
        ids = cols.ids
        for i in range(len(ids) - 1, -1, -1):  # the first occurrence wins, as in the analysis
            index[ids[i]] = i
        self._index = index
        self._depth: dict[str, int] = {}
        self._lines: list[Line] | None = None

    # -- output ------------------------------------------------------------
    def lines(self) -> list[Line]:
        if self._lines is None:
            self._lines = self._build()
        return self._lines

    def plain(self) -> str:
        return plain_text(self.lines())

    def ansi(self) -> str:
        """The same text with SGR colour codes (for a terminal)."""
        return ansi_text(self.lines(), SGR)

    # -- facts about spans -------------------------------------------------
    def _type(self, span_id: str) -> str | None:
        i = self._index.get(span_id)
        types = self.cols.types
        return types[i] if i is not None and types is not None else None

    def _glyph(self, span_id: str) -> str:
        return GLYPHS.get(self._type(span_id) or "other", GLYPHS["other"])

    def depth(self, span_id: str, root_id: str) -> int:
        """Levels below the root (path spans descend from it); memoised, no recursion."""
        memo = self._depth
        if span_id in memo:
            return memo[span_id]
        index, parents = self._index, self.cols.parents
        chain = []
        cur = span_id
        base = 0
        while cur is not None and cur != root_id:
            if cur in memo:
                base = memo[cur]
                break
            chain.append(cur)
            i = index.get(cur)
            cur = parents[i] if i is not None else None
            if len(chain) > len(parents):  # a cycle: cannot happen on a path, but never loop
                break
        else:
            memo[root_id] = 0
        for k, sid in enumerate(reversed(chain)):
            memo[sid] = base + k + 1
        return memo.get(span_id, 0)

    # -- blocks ------------------------------------------------------------
    def _cut(self, items: list, what: str) -> tuple[list, str | None]:
        if self.limit and len(items) > self.limit:
            more = len(items) - self.limit
            return items[:self.limit], f"… {more} more {what}{'s' if more != 1 else ''} (--limit 0 shows all)"
        return items, None

    def _path_block(self, rp, items: list) -> None:
        sections, more = self._cut(rp.sections, "section")
        origin = self.result.origin_ns
        items.append(_Head("path", ("start", "end", "time")))
        for s in sections:
            items.append(_Row(("*", "crit"), self.depth(s.span_id, rp.span_id), self._glyph(s.span_id),
                              s.name or "(unnamed)", [],
                              (_offset(s.start_ns - origin), _offset(s.end_ns - origin),
                               format_duration(s.end_ns - s.start_ns)),
                              [(s.start_ns, s.end_ns)], "bar.crit"))
        if more:
            items.append([("   " + more, "dim")])

    def _spans_block(self, rp, items: list) -> None:
        stretches: dict[str, list[tuple[int, int]]] = {}
        for s in rp.sections:
            stretches.setdefault(s.span_id, []).append((s.start_ns, s.end_ns))
        spans, more = self._cut(rp.spans, "span")
        d = rp.duration_ns
        items.append(_Head("on the path", ("critical", "share", "drag")))
        for p in spans:
            facts: list[Segment] = []
            if p.agent and p.agent not in (p.name or ""):
                facts.append((clean(p.agent), "fact"))
            share = p.critical_ns / d if d > 0 else 0.0
            items.append(_Row((" ", None), 0, self._glyph(p.span_id), p.name or "(unnamed)", facts,
                              (format_duration(p.critical_ns), _share(share), format_duration(p.drag_ns)),
                              stretches.get(p.span_id, []), "bar.crit"))
        if more:
            items.append([("   " + more, "dim")])

    def _fanout_block(self, rp, items: list) -> None:
        if not rp.fanouts:
            return
        origin = self.result.origin_ns
        # On-path fan-outs first (they decide the trace's duration), then the
        # rest, each in time order.
        fans = sorted(rp.fanouts, key=lambda f: (not f.on_path, f.start_ns, f.end_ns))
        fans, more = self._cut(fans, "fan-out")
        items.append(_Head("fan-outs", ("start", "duration", "slack")))
        for f in fans:
            crit = next(b for b in f.branches if b.span_id == f.critical_span_id)
            items.append(_Row(("*", "crit") if f.on_path else (" ", None), 0, self._glyph(f.span_id),
                              f.name or "(unnamed)", [(f"{len(f.branches)} in parallel", "fact")],
                              (_offset(f.start_ns - origin), format_duration(f.wall_ns), ""),
                              [(f.start_ns, f.end_ns)], "bar.crit" if f.on_path else "bar"))
            branches = list(f.branches)
            if self.limit and len(branches) > self.limit:
                # keep the critical branch and its closest competitors, shown by start
                keep = sorted(branches, key=lambda b: (b.span_id != crit.span_id, not b.on_path, b.wait,
                                                       b.slack_ns, b.start_ns, b.span_id))[:self.limit]
                kept = {id(b) for b in keep}
                hidden = len(branches) - len(keep)
                branches = [b for b in branches if id(b) in kept]
            else:
                hidden = 0
            for b in branches:
                facts = []
                if b.wait:
                    facts.append(("wait", "note"))
                elif b.agent and b.agent not in (b.name or "") and b.agent != f.agent:
                    facts.append((clean(b.agent), "fact"))
                critical = b.span_id == crit.span_id
                on = b.on_path or critical
                slack = "" if b.wait else ("0" if on else format_duration(b.slack_ns))
                items.append(_Row(("*", "crit") if b.on_path else (" ", None), 1, self._glyph(b.span_id),
                                  b.name or "(unnamed)", facts,
                                  (_offset(b.start_ns - origin), format_duration(b.end_ns - b.start_ns), slack),
                                  [(b.start_ns, b.end_ns)],
                                  "bar.wait" if b.wait else "bar.crit" if on else "bar",
                                  slack_to=None if (on or b.wait) else f.end_ns))
            if hidden:
                items.append([("   " + " " * 3 + f"… {hidden} more branches, all with more slack", "dim")])
            for text in self._join_notes(f, crit):
                items.extend(self._flow("", text.split(" "), " ", style="dim", lead="      ", hang=2))
        if more:
            items.append([("   " + more, "dim")])

    def _join_notes(self, f, crit) -> list[str]:
        """Parallelism, the join and who waited there."""
        origin = self.result.origin_ns
        notes = [f"parallelism {f.parallelism:.2f}: {format_duration(f.busy_ns)} of work in "
                 f"{format_duration(f.wall_ns)}",
                 f"join at {_offset(f.end_ns - origin)}, when {clean(crit.name or crit.span_id)} ended"]
        for w in f.branches:
            if w.wait and w.span_id != crit.span_id:
                until = "until the join" if w.end_ns == f.end_ns else f"until {_offset(w.end_ns - origin)}"
                notes.append(f"{clean(w.name or w.span_id)} (sync point) waited "
                             f"{format_duration(w.end_ns - w.start_ns)}, {until}")
        idle = sum(b.slack_ns for b in f.branches if not b.wait)
        if idle > 0:
            notes.append(f"the other branches sat idle {format_duration(idle)} in total before the join")
        return notes

    # -- header ------------------------------------------------------------
    def _header(self) -> list[Line]:
        r = self.result
        p = r.primary
        out: list[Line] = []
        root_name = clean(p.name) if p is not None and p.name else "(no usable root)"
        title = [("Critical path of trace ", "head"), (clean(r.trace_id or "?"), "head")]
        used = sum(cell_len(x) for x, _ in title)
        if used + 2 + cell_len(root_name) <= self.width:
            out.append(title + [("  ", None), (root_name, "head")])
        else:
            out.append(title)
            out.append([("  " + fit(root_name, self.width - 2), "head")])
        if p is not None:
            facts = [f"duration {format_duration(p.duration_ns)}",
                     f"{len(p.spans)} span{'s' if len(p.spans) != 1 else ''} on the path",
                     f"{len(p.sections)} section{'s' if len(p.sections) != 1 else ''}",
                     f"{len(p.fanouts)} fan-out{'s' if len(p.fanouts) != 1 else ''}"]
            n_roots = 1 + len(r.other_roots)
            if n_roots > 1:
                facts.append(f"{n_roots} roots")
            facts.append("async children " + ("truncated" if r.async_mode == "truncate" else "excluded"))
            out.extend(self._flow("", facts, " · "))
        if self.what_if is not None:
            out.extend(self._what_if_lines())
        for prob in r.problems:
            out.extend(self._flow("note: ", clean(prob).split(" "), " ", style="note"))
        if r.excluded:
            shown, more = self._cut(list(r.excluded), "span")
            for e in shown:
                extra = f", with {e.subtree_spans - 1} below it" if e.subtree_spans > 1 else ""
                text = f"{clean(e.name or '(unnamed)')} {clean(e.span_id)}: {clean(e.reason)}{extra}"
                out.extend(self._flow("left off the path: ", text.split(" "), " ", style="note"))
            if more:
                out.append([("  " + more, "dim")])
        return out

    def _what_if_lines(self) -> list[Line]:
        w = self.what_if
        label = self.what_if_label or "what if"
        out: list[Line] = self._flow("", label.split(" "), " ", style="key")
        if w.before_ns is None:
            out.append([("    not computed: " + clean(w.problem or "no usable root"), "note")])
            return out
        saving = w.saving_ns
        pct = f" ({100.0 * saving / w.before_ns:.1f}%)" if w.before_ns > 0 else ""
        out.append([("    ", None), (format_duration(w.before_ns), None), (" → ", "dim"),
                    (format_duration(w.after_ns), "head"),
                    ("  saving " if saving >= 0 else "  longer by ", "key"),
                    (format_duration(abs(saving)) + pct, "head"),
                    (f"  ({w.matched} matching span{'s' if w.matched != 1 else ''})", "dim")])
        return out

    def _flow(self, label: str, words: list[str], sep: str, style: str | None = None, lead: str = "  ",
              hang: int | None = None) -> list[Line]:
        """`  label word<sep>word...`, wrapped at the width under the first word
        (or `hang` columns in from the lead); a word longer than a line is cut."""
        lines: list[Line] = []
        cur = lead + label
        indent = len(cur) if hang is None else len(lead) + hang
        room = max(self.width - indent, 8)
        first = True
        for w in words:
            w = fit(w, room)
            if not first and cell_len(cur) + len(sep) + cell_len(w) > self.width:
                lines.append([(cur.rstrip(), style)])
                cur = " " * indent + w
            else:
                cur = cur + ("" if first else sep) + w
            first = False
        lines.append([(cur, style)])
        return lines

    # -- layout ------------------------------------------------------------
    def _build(self) -> list[Line]:
        r = self.result
        out = self._header()
        if r.primary is None:
            return out
        roots = [r.primary] + list(r.other_roots)
        blocks: list[tuple[object, list]] = []
        for k, rp in enumerate(roots):
            items: list = []
            self._path_block(rp, items)
            self._spans_block(rp, items)
            self._fanout_block(rp, items)
            blocks.append((rp, items))
        # One layout for every block, so all bars share the timeline.
        w0 = r.origin_ns
        w1 = max(rp.end_ns for rp in roots)
        span_ns = w1 - w0
        W = self.width
        num_w = NUM_COLUMNS * (NUM_WIDTH + 1)
        avail = W - MARK_WIDTH - num_w - 2
        need = 8
        for _, items in blocks:
            for it in items:
                if isinstance(it, _Row):
                    need = max(need, self._name_len(it))
                elif isinstance(it, _Head):
                    need = max(need, len(it.title))
        cap = max(int(avail * 0.55), 8)
        nw = min(need, cap)
        if avail - nw < MIN_BAR:
            nw = max(8, avail - MIN_BAR)
        bw = max(avail - nw, 1)
        scale = bw / span_ns if span_ns > 0 else 0.0
        axis = self._axis(nw, bw, span_ns)
        for k, (rp, items) in enumerate(blocks):
            if k:
                out.append([])
                out.extend(self._root_title(rp, k + 1, len(roots)))
            for it in items:
                if isinstance(it, _Head):
                    out.append([])
                    out.extend(axis)
                    out.append(self._head_line(it, nw, bw))
                elif isinstance(it, _Row):
                    out.append(self._row_line(it, nw, bw, w0, scale))
                else:
                    out.append(it)
        return out

    def _root_title(self, rp, k: int, n: int) -> list[Line]:
        text = f"{clean(rp.name or '(unnamed)')} {clean(rp.span_id)} · duration {format_duration(rp.duration_ns)}"
        if rp.orphan:
            text += f" · orphan: its parent {clean(rp.missing_parent_id or '?')} is not in the trace"
        return self._flow(f"root {k} of {n}: ", text.split(" "), " ", style="head")

    def _indent(self, row: _Row) -> str:
        if row.depth <= INDENT_CAP:
            return "  " * row.depth
        return "  " * INDENT_CAP + f"[{row.depth}] "

    def _name_len(self, row: _Row) -> int:
        n = len(self._indent(row)) + 2 + cell_len(clean(row.name))
        for t, _ in row.facts:
            n += 2 + cell_len(t)
        return n

    def _axis(self, nw: int, bw: int, span_ns: int) -> list[Line]:
        ticks = 4 if bw >= 40 else 2 if bw >= 16 else 1
        cols = [round(k * (bw - 1) / ticks) for k in range(ticks + 1)]
        labels = [_offset(span_ns * k / ticks) for k in range(ticks + 1)]
        if span_ns <= 0:
            labels = labels[:1]
        buf = [" "] * bw
        taken = -1
        for k, (c, lab) in enumerate(zip(cols, labels)):
            s = 0 if k == 0 else bw - len(lab) if k == ticks else c - len(lab) // 2
            if s <= taken or s < 0 or s + len(lab) > bw:
                continue
            buf[s:s + len(lab)] = list(lab)
            taken = s + len(lab)
        lead = " " * (MARK_WIDTH + nw + NUM_COLUMNS * (NUM_WIDTH + 1) + 2)
        return [[(lead, None), ("".join(buf), "dim")]]

    def _head_line(self, head: _Head, nw: int, bw: int) -> Line:
        ruler = ["─"] * bw
        ticks = 4 if bw >= 40 else 2 if bw >= 16 else 1
        for k in range(ticks + 1):
            ruler[round(k * (bw - 1) / ticks)] = "┼"
        ruler[0] = "├"
        ruler[-1] = "┤"
        nums = "".join(" " + c.rjust(NUM_WIDTH) for c in head.cols)
        return [(" " * MARK_WIDTH, None), (fit(head.title, nw).ljust(nw), "key"), (nums, "key"), ("  ", None),
                ("".join(ruler), "dim")]

    def _row_line(self, row: _Row, nw: int, bw: int, w0: int, scale: float) -> Line:
        segs: list[Segment] = [(row.mark[0], row.mark[1]), ("  ", None)]
        lead = self._indent(row)
        room = nw
        name_segs: list[Segment] = [(lead, "dim"), (row.glyph + " ", None), (clean(row.name), None)]
        for f in row.facts:
            name_segs.append(("  ", None))
            name_segs.append(f)
        for t, st in name_segs[:3]:  # the name is cut to fit
            ft = fit(t, room) if cell_len(t) > room else t
            segs.append((ft, st))
            room -= cell_len(ft)
        for k in range(3, len(name_segs), 2):  # facts fit whole or not at all
            n = 2 + cell_len(name_segs[k + 1][0])
            if n > room:
                break
            segs.extend(name_segs[k:k + 2])
            room -= n
        segs.append((" " * room, None))
        for k, v in enumerate(row.nums):
            segs.append((" " + v.rjust(NUM_WIDTH), None))
        segs.append(("  ", None))
        segs.extend(self._bar(row, bw, w0, scale))
        return segs

    def _bar(self, row: _Row, bw: int, w0: int, scale: float) -> list[Segment]:
        if not row.stretches:
            return []
        if not scale:
            return [("▏", row.style)]
        cells = [" "] * bw
        lo, hi = bw, -1
        for s, e in row.stretches:
            c0, chars = bar_cells((s - w0) * scale, (e - w0) * scale, bw)
            for j, ch in enumerate(chars):
                c = c0 + j
                if c >= bw:
                    break
                old = cells[c]
                cells[c] = ch if old == " " or ch == "█" or old == ch else "█"
            lo, hi = min(lo, c0), max(hi, min(c0 + len(chars), bw) - 1)
        out: list[Segment] = [(" " * lo, None), ("".join(cells[lo:hi + 1]), row.style)]
        if row.slack_to is not None:
            end = int(round((row.slack_to - w0) * scale))
            gap = min(end, bw) - (hi + 1)
            if gap > 0:
                out.append(("╌" * gap, "slack"))
        return out
