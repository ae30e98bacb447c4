"""Terminal rendering of `agtrace explain`: one document, styled on a terminal, plain when piped.

The view is built once as a list of indented lines made of (text, style)
segments; `write()` prints it either through rich (colour, hanging indents
when the terminal wraps) or as plain text with no escape codes and no
wrapping, so piped output stays greppable and the two can never say different
things. Only the order and wording live here; every fact comes from the dicts
of `agtrace.analysis.explain`.
"""

from __future__ import annotations

from agtrace.render.output import cell_text, color_allowed, dumps
from agtrace.timeutil import table_time

MAX_VALUE = 240  # characters of one attribute value shown before "..."
MAX_CONSEQUENCES = 40  # lines of "What it caused" before "... N more"

Seg = tuple[str, str | None]


class Doc:
    """Indented lines of styled segments."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, list[Seg]]] = []

    def line(self, indent: int = 0, *segs) -> None:
        self.lines.append((indent, [s if isinstance(s, tuple) else (str(s), None) for s in segs if s not in (None, "")]))

    def blank(self) -> None:
        if self.lines and self.lines[-1][1]:
            self.lines.append((0, []))

    def plain(self) -> str:
        return "".join(("  " * i + "".join(t for t, _ in segs)).rstrip() + "\n" for i, segs in self.lines)

    def write(self, out, color: bool | None = None, width: int | None = None) -> None:
        if color is None:
            color = color_allowed(out)
        if not color:
            out.write(self.plain())
            return
        from rich.console import Console
        from rich.padding import Padding
        from rich.text import Text

        console = Console(file=out, highlight=False, force_terminal=True, width=width)
        for indent, segs in self.lines:
            if not segs:
                console.print()
                continue
            text = Text.assemble(*[(t, s or "") for t, s in segs])
            console.print(Padding(text, (0, 0, 0, 2 * indent), expand=False))


# -- formatting helpers ---------------------------------------------------------------

def fmt_ms(ms) -> str:
    if ms is None:
        return "?"
    if abs(ms) < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def fmt_offset(ms) -> str:
    return "" if ms is None else f"+{ms / 1000:.3f}s"


def fmt_conf(v) -> str:
    return "?" if v is None else cell_text(v)


def fmt_value(v, limit: int = MAX_VALUE) -> str:
    if isinstance(v, dict):
        text = ", ".join(f"{k}={fmt_value(x, limit)}" for k, x in v.items())
    elif isinstance(v, list):
        text = dumps(v)
    else:
        text = cell_text(v)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_seg(ref: dict) -> list[Seg]:
    if ref.get("status") == "error":
        return [("ERROR", "bold red"), (": " + ref["error"], "red") if ref.get("error") else ("", None)]
    return [(ref.get("status") or "unset", "green" if ref.get("status") == "ok" else "dim")]


def _heading(doc: Doc, text: str, note: str | None = None) -> None:
    doc.blank()
    doc.line(0, (text, "bold"), (f"  ({note})", "dim") if note else None)


# -- one decision -----------------------------------------------------------------------

def _decision(doc: Doc, ex: dict) -> None:
    d = ex["decision"]
    dtype = d.get("decision_type")
    if d.get("is_decision"):
        doc.line(0, ("Decision ", "bold"), (dtype or "(type not recorded)", "bold cyan"),
                 ("  confidence ", None), (fmt_conf(d.get("confidence")), "bold"))
    else:
        doc.line(0, ("Span ", "bold"), (d["name"], "bold cyan"), (f"  (type {d['type']}, not a decision span)", "yellow"))
    rows = [
        ("span", [(f"{d['name']} {d['span_id']}", None), (f" in trace {d['trace_id']}", "dim")]),
        ("agent", [(d.get("agent") or "(no agent recorded)", None)]),
        ("reason code", [(d.get("reason_code") or "(not recorded)", None)]),
        ("reasoning", [(d.get("reasoning") or "(not recorded)", None)]),
        ("when", [(f"{table_time(d.get('start')) or '?'} ({fmt_offset(d.get('offset_ms'))} into the trace), took {fmt_ms(d.get('duration_ms'))}", None)]),
        ("status", status_seg(d)),
    ]
    if d.get("attributes"):
        rows.append(("also", [(fmt_value(d["attributes"]), None)]))
    for link in d.get("links") or []:
        rows.append(("links to", [(f"{link.get('name') or '(not loaded)'} {link['span_id']} in trace {link['trace_id']}", None)]))
    width = max(len(k) for k, _ in rows)
    for k, segs in rows:
        doc.line(1, (k.ljust(width) + "  ", "dim"), *segs)


def _steps(doc: Doc, ex: dict) -> None:
    steps = ex["reasoning_steps"]
    _heading(doc, "Reasoning steps", ex["encodings"].get("reasoning_steps"))
    if not steps:
        doc.line(1, ("no reasoning steps recorded", "dim"))
    for s in steps:
        doc.line(1, (f"{cell_text(s['step'])}. ", "bold"), s.get("description") or "(no description)")
        pad = " " * len(cell_text(s["step"]))  # under the description, past "N. "
        if s.get("result") is not None:
            doc.line(2, pad, ("result: ", "dim"), fmt_value(s["result"]))
        if s.get("evidence") is not None:
            doc.line(2, pad, ("evidence: ", "dim"), fmt_value(s["evidence"]))
        if s.get("extra"):
            doc.line(2, pad, ("also: ", "dim"), fmt_value(s["extra"]))


def _alternatives(doc: Doc, ex: dict) -> None:
    alts = ex["alternatives"]
    _heading(doc, "Alternatives considered", ex["encodings"].get("alternatives"))
    if not alts:
        doc.line(1, ("no alternatives recorded", "dim"))
        return
    names = [cell_text(a.get("decision")) or "?" for a in alts]
    confs = [fmt_conf(a.get("confidence")) for a in alts]
    wn, wc = max(map(len, names)), max(map(len, confs))
    for a, n, c in zip(alts, names, confs):
        doc.line(1, (n.ljust(wn), "cyan"), "  ", c.rjust(wc), "  ", a.get("reason") or ("(no reason recorded)", "dim"))


def _iterations(doc: Doc, ex: dict) -> None:
    its = ex["reasoning_iterations"]
    _heading(doc, f"Reasoning iterations before the decision: {len(its)}")
    if not its:
        doc.line(1, ("no reasoning_iteration_N spans recorded", "dim"))
    for it in its:
        doc.line(1, (f"#{it['iteration']}", "bold"), f"  {it['name']}  {fmt_ms(it.get('duration_ms'))}  ",
                 it.get("reasoning") or ("(no reasoning recorded)", "dim"))


def _chain(doc: Doc, ex: dict) -> None:
    _heading(doc, "How it got here", "root first")
    if any(m.startswith("parent span ") for m in ex["missing"]):
        doc.line(1, ("(the chain starts below a " + next(m for m in ex["missing"] if m.startswith("parent span "))
                     + " that is not loaded)", "yellow"))
    for e in ex["chain"]:
        ind = 1 + e["depth"]
        if e["role"] == "target":
            if e["type"] == "decision":
                doc.line(ind, ("> this decision: ", "bold"), (e.get("decision_type") or e["name"], "bold cyan"),
                         f" ({fmt_conf(e.get('confidence'))})")
            else:
                doc.line(ind, ("> this span: ", "bold"), (e["name"], "bold cyan"))
            continue
        if e["role"] == "decision":
            p = e.get("passed_on") or {}
            doc.line(ind, f"{e.get('agent') or '(no agent)'} ", ("decided ", "dim"), (e.get("decision_type") or "?", "cyan"), f" ({fmt_conf(e.get('confidence'))})",
                     f" -> {p['delegated_to']}" if p.get("delegated_to") else "",
                     (f"  {e['span_id']}", "dim"), (": " + e["reasoning"]) if e.get("reasoning") else "")
            for led in e.get("led_to") or []:
                doc.line(ind + 1, ("led to ", "dim"), led["name"], (f" {led['span_id']}", "dim"), "  ",
                         *status_seg(led), (f"  ({', '.join(led['via'])})", "dim"))
            continue
        label = f"[{e['type']}{' ' + e['agent'] if e.get('agent') and e['type'] == 'agent' else ''}]"
        doc.line(ind, (e["name"], "bold"), f"  {label}  ", (e["span_id"], "dim"), "  ", *status_seg(e))
        passed = dict(e.get("passed_on") or {})
        trig = passed.pop("triggered_by", None)
        if trig:
            doc.line(ind + 1, ("triggered by ", "dim"), f"{e.get('triggered_by_name') or '(span not loaded)'} {trig}")
        elif e.get("delegated_by"):
            doc.line(ind + 1, ("delegated to by decision ", "dim"), e["delegated_by"])
        for k, v in passed.items():
            doc.line(ind + 1, (f"{k}: ", "dim"), fmt_value(v))
        for link in e.get("links") or []:
            doc.line(ind + 1, ("links to ", "dim"), f"{link.get('name') or '(not loaded)'} {link['span_id']} in trace {link['trace_id']}")


def _tools(doc: Doc, ex: dict) -> None:
    agent = ex["decision"].get("agent") or "the deciding agent"
    tools = ex["tools_before"]
    # An agent span is its own scope: its tools are the ones it called before it ended.
    own = ex["decision"].get("type") == "agent"
    heading = f"Tools {agent} called in this invocation" if own else f"Tools {agent} called before deciding"
    _heading(doc, heading, str(len(tools)) if tools else None)
    if not tools:
        doc.line(1, (f"no tool calls by {agent} " + ("in this invocation" if own else "before the decision"), "dim"))
        return
    names = [t["name"] for t in tools]
    durs = [fmt_ms(t.get("duration_ms")) for t in tools]
    counts = ["" if t.get("result_count") is None else
              f"{cell_text(t['result_count'])} result{'' if t['result_count'] == 1 else 's'}" for t in tools]
    wn, wd, wc = max(map(len, names)), max(map(len, durs)), max(map(len, counts))
    for t, n, du, count in zip(tools, names, durs, counts):
        doc.line(1, n.ljust(wn), "  ", du.rjust(wd), ("  " + count.ljust(wc)) if wc else "", "  ",
                 *(status_seg(t) if t.get("status") == "error" else [(fmt_offset(t.get("offset_ms")), "dim")]))


def _consequences(doc: Doc, ex: dict) -> None:
    cons = ex["consequences"]
    failed = sum(1 for c in cons if c.get("status") == "error")
    note = f"{len(cons)} span{'s' if len(cons) != 1 else ''}" + (f", {failed} failed" if failed else "") if cons else None
    _heading(doc, "What it caused", note)
    if not cons:
        doc.line(1, ("no consequences recorded (no spans below it, triggered by it, delegated to or linking to it)", "dim"))
        return
    d = ex["decision"]
    keys = {(c["trace_id"], c["span_id"]) for c in cons}
    kids: dict[tuple, list[dict]] = {}
    for c in cons:  # shown under its span parent when that is a consequence too
        parent = (c["trace_id"], c.get("parent_span_id"))
        top = parent if parent in keys else (None, None)
        kids.setdefault(top, []).append(c)
    shown = 0

    def walk(key, depth):
        nonlocal shown
        for c in kids.get(key, ()):
            if shown >= MAX_CONSEQUENCES:
                return
            shown += 1
            via = ", ".join(c["via"])
            if c["cause_span_id"] == d["span_id"] and c["cause_trace_id"] == d["trace_id"]:
                why = f"  <- {via}"
            elif c["via"] == ["child"] and (c["trace_id"], c.get("parent_span_id")) in keys:
                why = ""
            else:
                why = f"  <- {via} of {c['cause_span_id']}"
            where = f"  in trace {c['trace_id']}" if c["trace_id"] != d["trace_id"] else ""
            label = f"[{c['type']}{' ' + c['agent'] if c.get('agent') and c['type'] == 'agent' else ''}]"
            doc.line(1 + depth, (c["name"], "bold"), f"  {label}  ", (c["span_id"], "dim"), "  ", *status_seg(c),
                     (why, "dim"), (where, "yellow"))
            walk((c["trace_id"], c["span_id"]), depth + 1)

    walk((None, None), 0)
    if len(cons) > shown:
        doc.line(1, (f"... and {len(cons) - shown} more (--format json lists all)", "dim"))
    if ex.get("consequences_truncated"):
        doc.line(1, ("(stopped following after the first spans; the store links this decision to very many)", "yellow"))


def _outcome(doc: Doc, o: dict) -> None:
    _heading(doc, "Trace outcome")
    errs = o.get("error_count") or 0
    doc.line(1, (o.get("root_name") or "(no root span)", "bold"), f"  {o['trace_id']}  status ",
             (o.get("status") or "?", "red" if o.get("status") == "error" else "green" if o.get("status") == "ok" else "dim"),
             f", {o.get('span_count')} spans, ", (f"{errs} error{'s' if errs != 1 else ''}", "red" if errs else None),
             f", {fmt_ms(o.get('duration_ms'))}")
    if o.get("outcome"):
        src = "" if o.get("outcome_span_id") == o.get("root_span_id") else f" (from span {o.get('outcome_span_id')})"
        for k, v in o["outcome"].items():
            doc.line(1, (f"{k}: ", "dim"), (fmt_value(v), "bold"), (src, "dim"))
    else:
        doc.line(1, ("no business outcome recorded (business_outcome, escalation_required, resolution_time_minutes)", "dim"))
    for e in o.get("errors") or []:
        doc.line(1, ("failed: ", "red"), f"{e['name']} {e['span_id']}", (": " + e["error"]) if e.get("error") else "")


def explanation(ex: dict) -> Doc:
    """The view of one decision: decision, reasoning, alternatives, chain, tools, consequences, outcome."""
    doc = Doc()
    _decision(doc, ex)
    _steps(doc, ex)
    _alternatives(doc, ex)
    _iterations(doc, ex)
    _chain(doc, ex)
    _tools(doc, ex)
    _consequences(doc, ex)
    _outcome(doc, ex["trace_outcome"])
    return doc


def summary(s: dict) -> Doc:
    """The view of a whole trace: its decisions in time order, then its outcome."""
    doc = Doc()
    o = s["trace_outcome"]
    ds = s["decisions"]
    doc.line(0, ("Decisions in trace ", "bold"), (s["trace_id"], "bold"), f"  {o.get('root_name') or ''}",
             (f"  ({len(ds)})", "dim"))
    if not ds:
        doc.line(1, ("no decisions recorded in this trace (spans with decision_type or a decision-point name)", "dim"))
    else:
        cols = [[fmt_offset(d.get("offset_ms")) for d in ds], [d["span_id"] for d in ds],
                [d.get("decision_type") or "?" for d in ds], [d.get("agent") or "-" for d in ds],
                [fmt_conf(d.get("confidence")) for d in ds]]
        heads = ["at", "span", "decision", "agent", "conf"]
        widths = [max(len(h), *map(len, c)) for h, c in zip(heads, cols)]
        doc.line(1, ("  ".join(h.ljust(w) for h, w in zip(heads, widths)) + "  reasoning", "dim"))
        for i, d in enumerate(ds):
            first = (d.get("reasoning") or "").strip().splitlines()
            doc.line(1, cols[0][i].ljust(widths[0]) + "  ", (cols[1][i].ljust(widths[1]), "dim"), "  ",
                     (cols[2][i].ljust(widths[2]), "cyan"), "  ", cols[3][i].ljust(widths[3]), "  ",
                     cols[4][i].rjust(widths[4]), "  ", first[0] if first else ("(no reasoning recorded)", "dim"),
                     *(("  ", ("ERROR", "bold red")) if d.get("status") == "error" else ()))
    _outcome(doc, o)
    return doc
