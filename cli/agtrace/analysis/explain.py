"""Why a decision was taken and what it led to: the logic of `agtrace explain`.

A decision span (``type = 'decision'``) carries its verdict in attributes, but
the answer to "why did the workflow do that?" is spread over the trace: the
agents above it and what they were handed, the tools the deciding agent called
first, the reasoning it recorded (in whichever encoding its instrumentation
could manage), and the spans that happened *because* of it - below it, naming
it in ``triggered_by``, delegated to, or linking to it from any loaded trace.
This module gathers all of that into plain dicts (the documented JSON of
`agtrace explain --format json`); rendering lives in `render.explain_view`.

Everything works on whole traces fetched once and walked in Python: traces are
small (tens to thousands of spans) and the relations followed here (parent,
``triggered_by``, ``delegated_to``, links) are cheaper to index in memory than
to express as recursive SQL. Missing pieces are reported, never guessed:
empty lists plus a ``missing`` list that names what was not recorded.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from agtrace.errors import NotFoundError
from agtrace.timeutil import format_time

# Attribute conventions, first match wins. Kept as data so the README can list them.
DECISION_TYPE_KEYS = ("decision_type", "decision.type")
CONFIDENCE_KEYS = ("decision_confidence", "decision.confidence", "confidence")
REASON_CODE_KEYS = ("reason_code", "decision.reason_code")
REASONING_KEYS = ("reasoning", "decision.reasoning", "rationale")
STEP_KEYS = ("reasoning_steps", "reasoning.steps", "decision.reasoning_steps")
ALTERNATIVE_KEYS = ("alternatives_considered", "alternatives", "decision.alternatives_considered", "decision.alternatives")
STEP_EVENTS = frozenset({"reasoning_step", "reasoning.step", "reasoning_steps"})
ALTERNATIVE_EVENTS = frozenset({"alternative_considered", "alternative", "alternatives_considered", "decision.alternative"})
TRIGGER_KEYS = ("triggered_by", "triggered_by_span_id")
PASSED_ON_KEYS = ("context_from_parent", "delegated_to", "triggered_by", "input", "inputs", "input.value", "task")
RESULT_COUNT_KEYS = ("result_count", "results_count", "tool.result_count", "search.result_count", "num_results")
OUTCOME_KEYS = ("business_outcome", "escalation_required", "resolution_time_minutes")

_ITERATION_RE = re.compile(r"^reasoning[_.\s]?iteration[_.\s]?(\d+)$", re.IGNORECASE)
_FLAT_RE = re.compile(r"^(reasoning_steps|alternatives_considered)\.(\d+)\.(\w+)$")

# Consequences are a transitive closure; a pathological store (every span
# linking to one decision) must not turn one `explain` into a full scan.
CONSEQUENCE_LIMIT = 1000


@dataclass
class Span:
    sid: int
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    type: str
    agent: str | None
    own_agent: str | None
    status: str
    status_message: str | None
    start_ns: int | None
    end_ns: int | None
    duration_ns: int | None
    attrs: dict
    events: list


@dataclass
class TraceView:
    """One trace's spans, indexed for walking up (parents) and down (children, triggers, links)."""

    trace_id: str
    spans: list[Span]
    root_span_id: str | None = None
    by_id: dict[str, Span] = field(default_factory=dict)
    children: dict[str, list[Span]] = field(default_factory=lambda: defaultdict(list))
    triggered: dict[str, list[Span]] = field(default_factory=lambda: defaultdict(list))
    # span_id -> [(holder trace, holder span, ref_type, link attributes)] for links pointing here
    incoming: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    # span_id -> [(target trace, target span, ref_type, link attributes)] for links held here
    outgoing: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))

    def index(self) -> None:
        for s in self.spans:
            self.by_id.setdefault(s.span_id, s)
        for s in self.spans:
            if s.parent_span_id:
                self.children[s.parent_span_id].append(s)
            for k in TRIGGER_KEYS:
                v = _norm_id(s.attrs.get(k))
                if v:
                    self.triggered[v].append(s)
                    break

    @property
    def start_ns(self) -> int | None:
        starts = [s.start_ns for s in self.spans if s.start_ns is not None]
        return min(starts) if starts else None

    def ancestors(self, s: Span) -> tuple[list[Span], str | None]:
        """Root-first ancestors of `s`, and the id of a parent that is not loaded (if any)."""
        path, seen, cur = [], {s.span_id}, s
        while cur.parent_span_id:
            p = self.by_id.get(cur.parent_span_id)
            if p is None:
                return path[::-1], cur.parent_span_id
            if p.span_id in seen:  # a cycle in bad data: stop rather than loop
                break
            seen.add(p.span_id)
            path.append(p)
            cur = p
        return path[::-1], None

    def own_ids(self, agent_span: Span | None) -> set[str]:
        """Spans below `agent_span` that are its own work: the walk stops at nested agent spans."""
        out: set[str] = set()
        if agent_span is None:
            return out
        stack = [agent_span.span_id]
        while stack:
            for c in self.children.get(stack.pop(), ()):
                if c.span_id in out or c.type == "agent" or (
                        agent_span.own_agent and c.own_agent and c.own_agent != agent_span.own_agent):
                    continue
                out.add(c.span_id)
                stack.append(c.span_id)
        return out

    def subtree_ids(self, s: Span) -> set[str]:
        out, stack = set(), [s.span_id]
        while stack:
            sid = stack.pop()
            if sid in out:
                continue
            out.add(sid)
            stack.extend(c.span_id for c in self.children.get(sid, ()))
        return out


class Graph:
    """Traces fetched on demand from the store, each once."""

    def __init__(self, con):
        self.con = con
        self._traces: dict[str, TraceView | None] = {}

    def trace(self, trace_id: str) -> TraceView | None:
        if trace_id not in self._traces:
            self._traces[trace_id] = self._fetch(trace_id)
        return self._traces[trace_id]

    def span(self, trace_id: str, span_id: str) -> Span | None:
        tv = self.trace(trace_id)
        return tv.by_id.get(span_id) if tv else None

    def _fetch(self, trace_id: str) -> TraceView | None:
        rows = self.con.execute(
            """SELECT sid, trace_id, span_id, parent_span_id, name, type, agent, own_agent, status,
                      status_message, start_ns, end_ns, duration_ns, attributes, events
               FROM spans WHERE trace_id = ? ORDER BY start_ns NULLS LAST, sid""",
            [trace_id],
        ).fetchall()
        if not rows:
            return None
        spans = [
            Span(r[0], r[1], r[2], r[3], r[4] or "", r[5] or "other", r[6], r[7], r[8] or "unset", r[9],
                 r[10], r[11], r[12], _load_obj(r[13], dict), _load_obj(r[14], list))
            for r in rows
        ]
        root = self.con.execute("SELECT root_span_id FROM traces WHERE trace_id = ?", [trace_id]).fetchone()
        tv = TraceView(trace_id, spans, root_span_id=root[0] if root else None)
        tv.index()
        for holder_trace, holder_span, target_span, ref_type, attrs in self.con.execute(
            "SELECT trace_id, span_id, linked_span_id, ref_type, attributes FROM links WHERE linked_trace_id = ? ORDER BY sid, idx",
            [trace_id],
        ).fetchall():
            tv.incoming[target_span].append((holder_trace, holder_span, ref_type, _load_obj(attrs, dict)))
        for holder_span, target_trace, target_span, ref_type, attrs in self.con.execute(
            "SELECT span_id, linked_trace_id, linked_span_id, ref_type, attributes FROM links WHERE trace_id = ? ORDER BY sid, idx",
            [trace_id],
        ).fetchall():
            tv.outgoing[holder_span].append((target_trace, target_span, ref_type, _load_obj(attrs, dict)))
        return tv


# -- small value helpers ------------------------------------------------------

def _load_obj(text, kind):
    if text is None:
        return kind()
    if isinstance(text, kind):
        return text
    try:
        v = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return kind()
    return v if isinstance(v, kind) else kind()


def _norm_id(v) -> str | None:
    if not isinstance(v, str) or not v.strip():
        return None
    s = v.strip().lower()
    return s[2:] if s.startswith("0x") else s


def _first(attrs: dict, keys):
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


def _number(v) -> float | int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return int(f) if f.is_integer() and "." not in v else f
    return None


def _int_if_integral(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _maybe_json(v):
    """A string holding a JSON object or array becomes that value; anything else stays."""
    if isinstance(v, str) and v.strip()[:1] in ("{", "["):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _ms(ns) -> float | None:
    return round(ns / 1e6, 3) if ns is not None else None


def error_text(s: Span) -> str | None:
    """Why a span failed, in one line: status message, else its exception event, else the HTTP code."""
    if s.status != "error":
        return None
    if s.status_message:
        return s.status_message.strip().splitlines()[0]
    for ev in s.events:
        if isinstance(ev, dict) and ev.get("name") == "exception":
            a = ev.get("attributes") or {}
            typ, msg = a.get("exception.type"), a.get("exception.message")
            if typ or msg:
                return ": ".join(str(x) for x in (typ, msg) if x)
    code = _first(s.attrs, ("http.response.status_code", "http.status_code"))
    return f"HTTP {code}" if code is not None else "error"


def span_ref(s: Span, trace_start: int | None = None) -> dict:
    """The fields every section shows for a span."""
    d = {
        "trace_id": s.trace_id, "span_id": s.span_id, "name": s.name, "type": s.type, "agent": s.agent,
        "status": s.status, "error": error_text(s), "start": format_time(s.start_ns),
        "duration_ms": _ms(s.duration_ns),
    }
    if trace_start is not None and s.start_ns is not None:
        d["offset_ms"] = _ms(s.start_ns - trace_start)
    return d


# -- reasoning steps and alternatives in their several encodings ---------------

def _items(value) -> tuple[list, str | None]:
    """The items of a structured attribute value and the name of its encoding.

    Encodings: ``json_string`` (a string holding a JSON array or object, as the
    Python SDK forces), ``kvlist_array`` (an OTLP arrayValue of kvlistValues),
    ``kvlist`` (one object), ``string_array`` (an array of strings, each JSON or
    plain text), ``text`` (a plain string).
    """
    if value is None or value == "" or value == []:
        return [], None
    if isinstance(value, str):
        parsed = _maybe_json(value)
        if parsed is value:
            return [value], "text"
        items = parsed if isinstance(parsed, list) else [parsed]
        return [_maybe_json(x) for x in items], "json_string"
    if isinstance(value, list):
        enc = "kvlist_array" if all(isinstance(x, dict) for x in value) else "string_array" if all(
            isinstance(x, str) for x in value) else "array"
        return [_maybe_json(x) for x in value], enc
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(next(iter(value.values())), list):  # {"steps": [...]}
            return [_maybe_json(x) for x in next(iter(value.values()))], "kvlist"
        return [value], "kvlist"
    return [value], "text"


def _short_keys(d: dict) -> dict:
    """A copy with `reasoning_step.description` renamed `description` when that key is free."""
    out = {}
    for k, v in d.items():
        short = k.rsplit(".", 1)[1] if "." in k else k
        out[short if short == k or short not in d else k] = v
    return out


def _pop(d: dict, keys):
    for k in keys:
        if k in d and d[k] is not None and d[k] != "":
            return d.pop(k)
    for k in keys:
        d.pop(k, None)
    return None


def normalize_step(item, i: int) -> dict:
    if isinstance(item, dict):
        used = _short_keys(item)
        step = _pop(used, ("step", "index", "step_number", "number", "n"))
        desc = _pop(used, ("description", "action", "thought", "title", "name"))
        result = _pop(used, ("result", "observation", "outcome", "output", "conclusion"))
        evidence = _pop(used, ("evidence", "source", "sources"))
        extra = used
        n = _number(step)
        return {"step": _int_if_integral(n) if n is not None else (step if step is not None else i + 1),
                "description": desc, "result": result, "evidence": evidence, "extra": extra or None}
    return {"step": i + 1, "description": item if isinstance(item, str) else orjson.dumps(item).decode(),
            "result": None, "evidence": None, "extra": None}


def normalize_alternative(item) -> dict:
    if isinstance(item, dict):
        used = _short_keys(item)
        dec = _pop(used, ("decision", "option", "alternative", "choice", "action", "name"))
        conf = _pop(used, ("confidence", "score", "probability"))
        reason = _pop(used, ("reason", "reasoning", "rationale", "why", "rejected_because"))
        extra = used
        return {"decision": dec, "confidence": _number(conf) if _number(conf) is not None else conf,
                "reason": reason, "extra": extra or None}
    return {"decision": item if isinstance(item, str) else orjson.dumps(item).decode(), "confidence": None,
            "reason": None, "extra": None}


def _flattened(attrs: dict, prefix: str) -> list[dict]:
    """`reasoning_steps.0.description = ...` style attributes, regrouped by index."""
    groups: dict[int, dict] = {}
    for k, v in attrs.items():
        m = _FLAT_RE.match(k)
        if m and m.group(1) == prefix:
            groups.setdefault(int(m.group(2)), {})[m.group(3)] = v
    return [groups[i] for i in sorted(groups)]


def _structured(span: Span, keys, prefix: str, event_names) -> tuple[list, list[str]]:
    """Items of one structured field from attributes, flattened attributes and events."""
    items, encodings = [], []
    value = _first(span.attrs, keys)
    got, enc = _items(value)
    if got:
        items.extend(got)
        encodings.append(enc)
    flat = _flattened(span.attrs, prefix)
    if flat:
        items.extend(flat)
        encodings.append("flattened")
    evs = [ev.get("attributes") or {} for ev in span.events
           if isinstance(ev, dict) and ev.get("name") in event_names]
    if evs:
        items.extend(evs)
        encodings.append("events")
    return items, encodings


def reasoning_steps(span: Span) -> tuple[list[dict], str | None]:
    items, enc = _structured(span, STEP_KEYS, "reasoning_steps", STEP_EVENTS)
    return [normalize_step(x, i) for i, x in enumerate(items)], "+".join(enc) or None


def alternatives(span: Span) -> tuple[list[dict], str | None]:
    items, enc = _structured(span, ALTERNATIVE_KEYS, "alternatives_considered", ALTERNATIVE_EVENTS)
    return [normalize_alternative(x) for x in items], "+".join(enc) or None


# -- the decision itself ----------------------------------------------------------

_CONSUMED = frozenset(DECISION_TYPE_KEYS + CONFIDENCE_KEYS + REASON_CODE_KEYS + REASONING_KEYS + STEP_KEYS
                      + ALTERNATIVE_KEYS + ("agent_name", "gen_ai.agent.name", "agent.name"))


def decision_fields(s: Span) -> dict:
    a = s.attrs
    dtype = _first(a, DECISION_TYPE_KEYS)
    reasoning = _first(a, REASONING_KEYS)
    return {
        "decision_type": str(dtype) if dtype is not None else None,
        "confidence": _number(_first(a, CONFIDENCE_KEYS)),
        "reason_code": _first(a, REASON_CODE_KEYS),
        "reasoning": reasoning if isinstance(reasoning, str) or reasoning is None else orjson.dumps(reasoning).decode(),
    }


def _other_attributes(s: Span) -> dict:
    return {k: v for k, v in s.attrs.items() if k not in _CONSUMED and not _FLAT_RE.match(k)}


def _agent_scope(tv: TraceView, s: Span) -> Span | None:
    """The agent invocation `s` belongs to: `s` itself when it is an agent span,
    else the nearest agent span above it (the deciding agent's invocation).

    An agent span is its own scope, not its caller's: explaining
    ``billing_agent.invoke`` is about billing_agent's work, and the agent that
    delegated to it is another agent (its tools are not billing_agent's).
    """
    if s.type == "agent":
        return s
    path, _ = tv.ancestors(s)
    for p in reversed(path):
        if p.type == "agent" or p.own_agent:
            return p
    return None


def passed_on(s: Span) -> dict:
    """What a span was handed or handed on: context_from_parent, delegated_to, triggered_by, inputs."""
    out = {}
    for k in PASSED_ON_KEYS:
        if k in s.attrs and s.attrs[k] not in (None, ""):
            out[k] = _maybe_json(s.attrs[k])
    for k, v in s.attrs.items():
        if (k.startswith("input.") or k.startswith("inputs.")) and k not in out:
            out[k] = _maybe_json(v)
    return out


# -- relations: what a span caused -------------------------------------------------

def _delegate_target(tv: TraceView, s: Span) -> Span | None:
    """The first top-most span of the agent `s` delegated to, starting at or after `s`."""
    target = s.attrs.get("delegated_to")
    if not isinstance(target, str) or not target:
        return None
    for c in tv.spans:  # in start order
        if c.own_agent != target or c.span_id == s.span_id:
            continue
        if s.start_ns is not None and c.start_ns is not None and c.start_ns < s.start_ns:
            continue
        parent = tv.by_id.get(c.parent_span_id) if c.parent_span_id else None
        if parent is not None and parent.own_agent == target:
            continue
        return c
    return None


def caused_by(graph: Graph, s: Span) -> list[tuple[Span, str]]:
    """Spans one step downstream of `s`, each with the relation that makes it so.

    Relations: ``child`` (parent_span_id), ``triggered_by`` (its attribute names
    `s`), ``link`` (a span link to `s`, from any loaded trace), ``delegated_to``
    (the agent `s` delegated to, its first invocation after `s`).
    """
    tv = graph.trace(s.trace_id)
    out: list[tuple[Span, str]] = []
    if tv is None:
        return out
    out.extend((c, "child") for c in tv.children.get(s.span_id, ()))
    out.extend((c, "triggered_by") for c in tv.triggered.get(s.span_id, ()) if c.span_id != s.span_id)
    for holder_trace, holder_span, _ref, _attrs in tv.incoming.get(s.span_id, ()):
        h = graph.span(holder_trace, holder_span)
        if h is not None:
            out.append((h, "link"))
    d = _delegate_target(tv, s)
    if d is not None:
        out.append((d, "delegated_to"))
    return out


def consequences(graph: Graph, s: Span, limit: int = CONSEQUENCE_LIMIT) -> tuple[list[dict], bool]:
    """Everything downstream of `s`, breadth first: (entries in start order, truncated?).

    Each entry names the span it was reached from (`cause_span_id`, `cause_trace_id`),
    the relations to it (`via`) and how many steps from the decision it is (`hops`).
    """
    seen = {(s.trace_id, s.span_id)}
    frontier, hops, found_all, truncated = [s], 0, [], False
    while frontier and not truncated:
        hops += 1
        level: dict[tuple, list] = {}
        for cause in frontier:
            for sp, rel in caused_by(graph, cause):
                k = (sp.trace_id, sp.span_id)
                if k in level and level[k][1] is cause:
                    if rel not in level[k][2]:
                        level[k][2].append(rel)
                    continue
                if k in seen:
                    continue
                if len(seen) > limit:
                    truncated = True
                    break
                seen.add(k)
                level[k] = [sp, cause, [rel]]
        new = sorted(level.values(), key=lambda e: (e[0].start_ns is None, e[0].start_ns or 0, e[0].span_id))
        found_all.extend((sp, cause, via, hops) for sp, cause, via in new)
        frontier = [e[0] for e in new]
    starts = {}
    out = []
    for sp, cause, via, h in found_all:
        tv = graph.trace(sp.trace_id)
        if sp.trace_id not in starts:
            starts[sp.trace_id] = tv.start_ns if tv else None
        d = span_ref(sp, starts[sp.trace_id])
        d.update({"parent_span_id": sp.parent_span_id, "cause_trace_id": cause.trace_id,
                  "cause_span_id": cause.span_id, "via": via, "hops": h})
        out.append(d)
    out.sort(key=lambda d: (d["trace_id"] != s.trace_id, d["trace_id"], d["start"] or "", d["hops"], d["span_id"]))
    return out, truncated


# -- the causal chain ------------------------------------------------------------------

def _decisions_in_scope(tv: TraceView, owner: Span, exclude: set[str], before_ns: int | None) -> list[Span]:
    """Decisions made directly by `owner` (no agent span in between), outside `exclude`, before `before_ns`."""
    out = [tv.by_id[i] for i in tv.own_ids(owner) - exclude]
    out = [c for c in out if c.type == "decision" and (before_ns is None or c.start_ns is None or c.start_ns < before_ns)]
    out.sort(key=lambda d: (d.start_ns or 0, d.span_id))
    return out


def _led_to(graph: Graph, d: Span) -> list[dict]:
    """Direct consequences of an earlier decision, except its own children (which are how it was made)."""
    tv = graph.trace(d.trace_id)
    out: dict[tuple, dict] = {}
    for sp, rel in caused_by(graph, d):
        if rel == "child":
            continue
        k = (sp.trace_id, sp.span_id)
        if k not in out:
            out[k] = span_ref(sp, tv.start_ns if tv else None)
            out[k]["via"] = []
        if rel not in out[k]["via"]:
            out[k]["via"].append(rel)
    return sorted(out.values(), key=lambda e: (e["trace_id"] != d.trace_id, e["trace_id"], e["start"] or "", e["span_id"]))


def _links_of(graph: Graph, tv: TraceView, s: Span) -> list[dict]:
    out = []
    for target_trace, target_span, ref_type, attrs in tv.outgoing.get(s.span_id, ()):
        t = graph.span(target_trace, target_span)
        out.append({"trace_id": target_trace, "span_id": target_span, "name": t.name if t else None,
                    "status": t.status if t else None, "ref_type": ref_type, "attributes": attrs or None,
                    "loaded": t is not None})
    return out


def _delegated_by(tv: TraceView, s: Span) -> Span | None:
    """The decision whose `delegated_to` led to agent span `s`, if one did."""
    if not s.own_agent:
        return None
    for dec in tv.spans:
        if dec.type == "decision" and dec.attrs.get("delegated_to") == s.own_agent and _delegate_target(tv, dec) is s:
            return dec
    return None


def _decision_entry(graph: Graph, tv: TraceView, dec: Span, depth: int, relation: str) -> dict:
    e = span_ref(dec, tv.start_ns)
    e.update({"role": "decision", "relation": relation, "depth": depth, "passed_on": passed_on(dec),
              "links": _links_of(graph, tv, dec), "led_to": _led_to(graph, dec)})
    e.update(decision_fields(dec))
    return e


def causal_chain(graph: Graph, tv: TraceView, d: Span) -> tuple[list[dict], str | None]:
    """Root-first path to `d`: each ancestor, the decisions taken on the way, then `d`.

    Decisions on the way are those an ancestor's agent took before the path
    moved on (``relation = "earlier"``) and, when an ancestor was started by a
    decision elsewhere in the trace (its ``triggered_by``, or the decision that
    delegated to its agent), that decision just before it (``relation =
    "triggered"``). Returns the entries and the id of a missing parent (the
    chain then starts below it).
    """
    path, missing_parent = tv.ancestors(d)
    entries: list[dict] = []
    in_chain: set[str] = set()
    steps = path + [d]
    for i, s in enumerate(steps):
        is_target = s is d
        trig_id = _norm_id(_first(s.attrs, TRIGGER_KEYS))
        trig = tv.by_id.get(trig_id) if trig_id else None
        deleg = _delegated_by(tv, s) if i > 0 and not is_target else None
        cause = trig or deleg
        if i > 0 and cause is not None and cause.span_id not in in_chain and cause.span_id != s.span_id:
            if cause.type == "decision":
                entries.append(_decision_entry(graph, tv, cause, i, "triggered"))
                in_chain.add(cause.span_id)
        role = "target" if is_target else "root" if i == 0 and not missing_parent else (
            "agent" if s.type == "agent" or s.own_agent else "span")
        e = span_ref(s, tv.start_ns)
        e.update({"role": role, "depth": i, "passed_on": passed_on(s), "links": _links_of(graph, tv, s)})
        if trig_id:
            e["triggered_by_name"] = trig.name if trig else None
        if deleg is not None:
            e["delegated_by"] = deleg.span_id
        if s.type == "decision":
            e.update(decision_fields(s))
        entries.append(e)
        in_chain.add(s.span_id)
        if is_target:
            break
        nxt = steps[i + 1]
        for dec in _decisions_in_scope(tv, s, tv.subtree_ids(nxt) | {d.span_id}, nxt.start_ns):
            if dec.span_id not in in_chain:
                entries.append(_decision_entry(graph, tv, dec, i + 1, "earlier"))
                in_chain.add(dec.span_id)
    return entries, missing_parent


# -- tools, iterations, outcome --------------------------------------------------------

def _tool_name(s: Span) -> str:
    v = _first(s.attrs, ("tool.name", "gen_ai.tool.name"))
    if isinstance(v, str):
        return v
    n = s.name
    for p in ("tool.", "execute_tool "):
        if n.startswith(p):
            return n[len(p):]
    return n


def _result_count(s: Span):
    v = _number(_first(s.attrs, RESULT_COUNT_KEYS))
    if v is None:
        for k, val in s.attrs.items():
            if k.endswith("result_count"):
                v = _number(val)
                break
    return _int_if_integral(v)


def reference_ns(d: Span) -> int | None:
    """The moment "before" is measured against for `d`.

    A decision (or any span that is not an agent span) is judged by what was
    known when it started. An agent span is its own scope (see `_agent_scope`):
    its tools run inside it, after it started, so for it "before" means before
    it ended - the work the agent did during its invocation.
    """
    if d.type == "agent":
        return d.end_ns if d.end_ns is not None else d.start_ns
    return d.start_ns


def tools_before(tv: TraceView, d: Span, scope: Span | None) -> list[dict]:
    """Tool and retrieval calls of the deciding agent that ended before the decision started.

    The deciding agent's calls are those of its own invocation (`scope`, nested
    agent spans excluded) and any other span acting for the same agent. For an
    agent span `d`, the scope is `d` itself and the cut-off its end
    (`reference_ns`): the tools that agent called itself, never its caller's.
    """
    in_scope = tv.own_ids(scope)
    cutoff = reference_ns(d)
    out = []
    for s in tv.spans:
        if s.type not in ("tool", "retrieval") or cutoff is None:
            continue
        if not ((d.agent and s.agent == d.agent) or s.span_id in in_scope):
            continue
        end = s.end_ns if s.end_ns is not None else s.start_ns
        if end is None or end > cutoff:
            continue
        e = span_ref(s, tv.start_ns)
        e.update({"tool": _tool_name(s), "result_count": _result_count(s)})
        out.append(e)
    return out


def reasoning_iterations(tv: TraceView, d: Span, scope: Span | None) -> list[dict]:
    """`reasoning_iteration_N` spans of the deciding agent that started before the decision
    (before an agent span's end, as for `tools_before`)."""
    in_scope = tv.own_ids(scope)
    cutoff = reference_ns(d)
    out = []
    for s in tv.spans:
        m = _ITERATION_RE.match(s.name)
        if not m or s.span_id == d.span_id:
            continue
        if not ((d.agent and s.agent == d.agent) or s.span_id in in_scope):
            continue
        if cutoff is not None and s.start_ns is not None and s.start_ns >= cutoff:
            continue
        e = span_ref(s, tv.start_ns)
        it = _number(s.attrs.get("iteration"))
        r = s.attrs.get("reasoning")
        e.update({"iteration": _int_if_integral(it) if it is not None else int(m.group(1)),
                  "reasoning": r if isinstance(r, str) else None})
        out.append(e)
    return out


def trace_outcome(con, tv: TraceView) -> dict:
    """Final status and business outcome of a trace, from its root span (or, failing that, any span)."""
    row = con.execute(
        "SELECT root_name, span_count, error_count, duration_ns, start_ns, root_count FROM traces WHERE trace_id = ?",
        [tv.trace_id],
    ).fetchone()
    root = tv.by_id.get(tv.root_span_id) if tv.root_span_id else None
    if root is None:
        roots = [s for s in tv.spans if not s.parent_span_id or s.parent_span_id not in tv.by_id]
        root = roots[0] if roots else None
    attrs, source = {}, root.span_id if root else None
    if root is not None:
        attrs = {k: v for k, v in root.attrs.items()
                 if k in OUTCOME_KEYS or "outcome" in k or k.startswith(("resolution", "escalat"))}
    if not attrs:
        for s in sorted(tv.spans, key=lambda s: (s.end_ns or 0)):
            hit = {k: v for k, v in s.attrs.items() if "outcome" in k}
            if hit:
                attrs, source = hit, s.span_id
    errors = [{"span_id": s.span_id, "name": s.name, "error": error_text(s)} for s in tv.spans if s.status == "error"]
    return {
        "trace_id": tv.trace_id,
        "root_span_id": root.span_id if root else None,
        "root_name": row[0] if row else (root.name if root else None),
        "status": root.status if root else None,
        "span_count": row[1] if row else len(tv.spans),
        "error_count": row[2] if row else len(errors),
        "errors": errors,
        "duration_ms": _ms(row[3]) if row else None,
        "start": format_time(row[4]) if row else None,
        "outcome": attrs,
        "outcome_span_id": source if attrs else None,
    }


# -- public API ---------------------------------------------------------------------------

class Explainer:
    """Explanations over one store connection, sharing fetched traces between calls."""

    def __init__(self, con):
        self.con = con
        self.graph = Graph(con)

    def _trace(self, trace_id: str) -> TraceView:
        tv = self.graph.trace(trace_id)
        if tv is None:
            raise NotFoundError(f"no trace with id {trace_id!r} in the store", hint="list the loaded traces with `agtrace traces`")
        return tv

    def decisions(self, trace_id: str) -> list[Span]:
        return [s for s in self._trace(trace_id).spans if s.type == "decision"]

    def summary(self, trace_id: str) -> dict:
        """Every decision of the trace in time order, and the trace's outcome."""
        tv = self._trace(trace_id)
        rows = []
        for s in self.decisions(trace_id):
            e = span_ref(s, tv.start_ns)
            e.update(decision_fields(s))
            rows.append(e)
        return {"trace_id": trace_id, "decisions": rows, "trace_outcome": trace_outcome(self.con, tv)}

    def of_type(self, trace_id: str, decision_type: str) -> list[str]:
        """Span ids of the trace's decisions of one type (case-insensitive)."""
        want = decision_type.strip().lower()
        ds = self.decisions(trace_id)
        hits = [s.span_id for s in ds if (decision_fields(s)["decision_type"] or "").lower() == want]
        if not hits:
            types = sorted({decision_fields(s)["decision_type"] or "?" for s in ds})
            raise NotFoundError(
                f"no {decision_type!r} decision in trace {trace_id}",
                hint=("decision types in this trace: " + ", ".join(types)) if types else "this trace records no decisions",
            )
        return hits

    def explain(self, trace_id: str, span_id: str) -> dict:
        """The full explanation of one decision span, the object `--format json` prints.

        Keys: ``decision`` (span fields, decision_type, confidence, reason_code,
        reasoning, agent_span_id, is_decision, other ``attributes``, outgoing
        ``links``); ``reasoning_steps`` [{step, description, result, evidence,
        extra}]; ``alternatives`` [{decision, confidence, reason, extra}];
        ``encodings`` (where each came from: json_string, kvlist_array, kvlist,
        string_array, text, flattened, events, joined by "+"); ``reasoning_iterations``;
        ``chain`` (root-first entries with role root|agent|span|decision|target,
        depth, passed_on, links; decisions also relation earlier|triggered and
        led_to); ``tools_before`` (plus tool, result_count); ``consequences``
        (plus via, hops, cause_span_id, parent_span_id); ``consequences_truncated``;
        ``trace_outcome`` (status, error_count, errors, outcome attributes);
        ``missing`` (names of what was not recorded). Every span entry has
        trace_id, span_id, name, type, agent, status, error, start, duration_ms
        and offset_ms (from its trace's start).
        """
        tv = self._trace(trace_id)
        d = tv.by_id.get(span_id)
        if d is None:
            raise NotFoundError(f"no span with id {span_id!r} in trace {trace_id}")
        scope = _agent_scope(tv, d)
        decision = span_ref(d, tv.start_ns)
        decision.update(decision_fields(d))
        decision["is_decision"] = d.type == "decision"
        decision["agent_span_id"] = scope.span_id if scope else None
        decision["attributes"] = _other_attributes(d)
        decision["links"] = _links_of(self.graph, tv, d)
        steps, steps_enc = reasoning_steps(d)
        alts, alts_enc = alternatives(d)
        chain, missing_parent = causal_chain(self.graph, tv, d)
        tools = tools_before(tv, d, scope)
        iterations = reasoning_iterations(tv, d, scope)
        cons, truncated = consequences(self.graph, d)
        missing = []
        for name, value in (("decision_type", decision["decision_type"]), ("confidence", decision["confidence"]),
                            ("reason_code", decision["reason_code"]), ("reasoning", decision["reasoning"])):
            if value is None:
                missing.append(name)
        if not steps:
            missing.append("reasoning_steps")
        if not alts:
            missing.append("alternatives")
        if missing_parent:
            missing.append(f"parent span {missing_parent}")
        if not tools:
            missing.append("tools_before")
        if not cons:
            missing.append("consequences")
        target = d.attrs.get("delegated_to")
        if isinstance(target, str) and target and not any(
                s.own_agent == target or s.agent == target for s in tv.spans):
            missing.append(f"spans of delegated agent {target}")
        return {
            "decision": decision,
            "reasoning_steps": steps,
            "alternatives": alts,
            "encodings": {"reasoning_steps": steps_enc, "alternatives": alts_enc},
            "reasoning_iterations": iterations,
            "chain": chain,
            "tools_before": tools,
            "consequences": cons,
            "consequences_truncated": truncated,
            "trace_outcome": trace_outcome(self.con, tv),
            "missing": missing,
        }


def explain_decision(con, trace_id: str, span_id: str) -> dict:
    return Explainer(con).explain(trace_id, span_id)


def explain_trace(con, trace_id: str) -> dict:
    return Explainer(con).summary(trace_id)
