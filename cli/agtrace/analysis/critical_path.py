"""Critical path, drag, slack, fan-outs and what-if re-timing of one trace.

Pure Python over plain span records (no DuckDB here), so the same code serves
`agtrace critical-path`, the cross-trace aggregation in `bottlenecks.py` and the
tests. The specification is docs' critical-path reference: Jaeger's "last
finishing child" walk with its known bugs fixed (`<=` for back-to-back
siblings, pre-order sanitising, references into nowhere reported, not crashed).

Why columnar and iterative: traces can be 100,000 spans deep or wide, and the
aggregation runs this over a million spans, so the core works on parallel lists
indexed by position (`cols.starts[i]`), never recurses, and does the expensive
things (sorting siblings, wait detection) only for spans the walk reaches.

Decisions (stated again in the output where they matter):

* Times are int nanoseconds; the `to_dict()` shapes give milliseconds as floats
  rounded to the microsecond (shares to 4 decimals).
* Offsets (`start_ms`, `end_ms`) are from the trace start: the earliest start of
  any span of the trace.
* Children outliving their parent (fire-and-forget work): `async_mode`
  "truncate" (default) clips them to the parent's end, so they can cover the
  parent's tail; "exclude" leaves them and their subtree out of the path, like
  Elastic APM. Overruns up to `SKEW_TOLERANCE_NS` (1 ms) count as clock skew
  and are truncated in both modes.
* Several roots (spans without a parent, and orphans whose parent id is not in
  the trace) are each analysed; the primary root (a true root before an orphan,
  then the longest, then the earliest, then the smallest id) gives the
  top-level fields, the others come in `other_roots`. Spans in a parent cycle
  and spans left off the path (outside their parent, consumers of a producer,
  excluded async children) are listed with the reason.
* Fan-outs are the groups of a span's children that overlap in time (a new
  group starts when a child starts at or after every earlier child has ended).
  Parallelism = sum of the branch durations / the group's wall time (first
  branch start to last branch end), not the parent's duration, so a parent's
  own work before or after the fan-out does not dilute it.
"""

from __future__ import annotations

import gc
import json
import re
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

from agtrace.analysis.spanids import shared_id_links

ASYNC_MODES = ("truncate", "exclude")
DEFAULT_ASYNC_MODE = "truncate"
SKEW_TOLERANCE_NS = 1_000_000

# A wait/synchronisation span, by name: "wait", "barrier", "join", "sync" and
# "synchron..." anywhere in the lower-cased name, except the "sync" inside
# "async" ("async_wait" still counts through "wait"). The same pattern runs in
# Python (`re`) and in DuckDB (`regexp_matches`, RE2), so no look-behind.
WAIT_NAME_PATTERN = r"wait|barrier|join|(?:^|[^a])sync"
# ... or by attribute: any of these keys holding true ("true", "yes", 1).
WAIT_ATTRIBUTE_KEYS = ("sync_point", "wait")

_WAIT_RE = re.compile(WAIT_NAME_PATTERN)
_INF = float("inf")


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes"):
            return True
        try:
            return float(text) == 1
        except ValueError:
            return False
    return False


def is_wait_span(name: str | None, attributes: Mapping[str, Any] | str | None = None) -> bool:
    """True for a span that only waits for others (a synchronisation point).

    Such a span often ends exactly when the slowest parallel branch ends; the
    walk then prefers the branch, so the waiter never takes the blame. Rule:
    the name matches `WAIT_NAME_PATTERN` (case-insensitive), or an attribute in
    `WAIT_ATTRIBUTE_KEYS` is true. `attributes` may be a dict or its JSON text.
    """
    if name and _WAIT_RE.search(name.lower()):
        return True
    if not attributes:
        return False
    if isinstance(attributes, str):
        if "sync_point" not in attributes and '"wait"' not in attributes:
            return False
        try:
            attributes = json.loads(attributes)
        except ValueError:
            return False
    if isinstance(attributes, Mapping):
        return any(_truthy(attributes.get(key)) for key in WAIT_ATTRIBUTE_KEYS)
    return False


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector for an allocation-heavy loop.

    The walk allocates many small lists and tuples but never a reference
    cycle; with a large trace in memory each automatic full collection
    re-scans everything, which made a 100,000-deep chain 2.5x slower.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _ms(ns: float | int | None) -> float | None:
    """Milliseconds rounded to the microsecond. Integers take an exact
    integer path (3x faster than round(); JSON of a 100,000-span trace makes
    a quarter of a million of these), except exact half-microsecond ties,
    which go through round() so the two paths never disagree."""
    if ns is None:
        return None
    if type(ns) is int and ns % 1000 != 500:
        return (ns + 500) // 1000 / 1000
    return round(ns / 1e6, 3)


# --------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class Section:
    """A stretch of the critical path during which `span_id` itself was working."""

    span_id: str
    name: str | None
    start_ns: int
    end_ns: int

    def to_dict(self, origin_ns: int) -> dict:
        return {
            "span_id": self.span_id,
            "name": self.name,
            "start_ms": _ms(self.start_ns - origin_ns),
            "end_ms": _ms(self.end_ns - origin_ns),
        }


@dataclass(slots=True)
class PathSpan:
    """A span the path passes through: its own critical time and its drag.

    `drag_ns`: how much shorter the root would get if this span took no time,
    before something else becomes the bottleneck (first-order estimate):
    min(own duration, its end - the latest end of another sibling ending no
    later (a childless wait span ending with it does not count: it waits for
    it), and how far the path spans it delays and its ancestors can move).
    """

    span_id: str
    name: str | None
    agent: str | None
    type: str | None
    critical_ns: int
    drag_ns: int

    def to_dict(self, duration_ns: int) -> dict:
        share = round(self.critical_ns / duration_ns, 4) if duration_ns > 0 else 0.0
        return {
            "span_id": self.span_id,
            "name": self.name,
            "agent": self.agent,
            "type": self.type,
            "critical_ms": _ms(self.critical_ns),
            "share": share,
            "drag_ms": _ms(self.drag_ns),
        }


@dataclass(slots=True)
class Branch:
    """One child in a fan-out. `slack_ns`: how much later it could have ended
    without delaying the join (0 for a branch on the critical path)."""

    span_id: str
    name: str | None
    agent: str | None
    start_ns: int
    end_ns: int
    slack_ns: int
    on_path: bool
    wait: bool

    def to_dict(self, origin_ns: int) -> dict:
        return {
            "span_id": self.span_id,
            "name": self.name,
            "agent": self.agent,
            "start_ms": _ms(self.start_ns - origin_ns),
            "end_ms": _ms(self.end_ns - origin_ns),
            "duration_ms": _ms(self.end_ns - self.start_ns),
            "slack_ms": _ms(self.slack_ns),
            "on_path": self.on_path,
            "wait": self.wait,
        }


@dataclass(frozen=True, slots=True)
class FanOut:
    """Children of `span_id` that ran in parallel, joined when the last one ended.

    `busy_ns` is the work of the branches: wait/sync branches (`Branch.wait`,
    `is_wait_span`) are left out of it, so `parallelism` (busy / wall) counts
    only the branches that did something.
    """

    span_id: str
    name: str | None
    agent: str | None
    on_path: bool
    start_ns: int
    end_ns: int
    busy_ns: int
    critical_span_id: str
    branches: tuple[Branch, ...]

    @property
    def wall_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def parallelism(self) -> float:
        return self.busy_ns / self.wall_ns if self.wall_ns > 0 else 0.0

    @property
    def idle_ns(self) -> int:
        """Branch time spent waiting at the join: the sum of the branches' slack."""
        return sum(b.slack_ns for b in self.branches)

    def to_dict(self, origin_ns: int) -> dict:
        branches = self.branches
        cid = self.critical_span_id
        critical = next(b for b in branches if b.span_id == cid)
        return {
            "span_id": self.span_id,
            "name": self.name,
            "agent": self.agent,
            "on_path": self.on_path,
            "start_ms": _ms(self.start_ns - origin_ns),
            "join_ms": _ms(self.end_ns - origin_ns),
            "wall_ms": _ms(self.wall_ns),
            "busy_ms": _ms(self.busy_ns),
            "parallelism": round(self.parallelism, 3),
            "critical_span_id": self.critical_span_id,
            "critical_name": critical.name,
            "idle_at_join_ms": _ms(sum([b.slack_ns for b in branches])),
            "wait_spans": [b.span_id for b in branches if b.wait],
            "branches": [b.to_dict(origin_ns) for b in branches],
        }


@dataclass(frozen=True, slots=True)
class Excluded:
    """A span left off the path analysis, with its whole subtree."""

    span_id: str
    name: str | None
    reason: str
    subtree_spans: int

    def to_dict(self) -> dict:
        return {"span_id": self.span_id, "name": self.name, "reason": self.reason,
                "subtree_spans": self.subtree_spans}


@dataclass(slots=True)
class RootPath:
    """The critical path under one root span. Sections are chronological."""

    span_id: str
    name: str | None
    orphan: bool
    missing_parent_id: str | None
    start_ns: int
    end_ns: int
    sections: list[Section]
    spans: list[PathSpan]
    fanouts: list[FanOut]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_dict(self, origin_ns: int) -> dict:
        d = self.duration_ns
        return {
            "root_span_id": self.span_id,
            "root_name": self.name,
            "orphan": self.orphan,
            "missing_parent_id": self.missing_parent_id,
            "start_ms": _ms(self.start_ns - origin_ns),
            "end_ms": _ms(self.end_ns - origin_ns),
            "duration_ms": _ms(d),
            "sections": [s.to_dict(origin_ns) for s in self.sections],
            "spans": [s.to_dict(d) for s in self.spans],
            "fanouts": [f.to_dict(origin_ns) for f in self.fanouts],
        }


@dataclass(slots=True)
class TraceCriticalPath:
    """Result for one trace: the primary root's path at top level, the rest beside it.

    `problems` says what could not be analysed and why; a trace whose
    `primary` is None has no usable root (the problems say why).
    """

    trace_id: str | None
    origin_ns: int
    async_mode: str
    primary: RootPath | None
    other_roots: list[RootPath] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.primary is not None

    def to_dict(self) -> dict:
        p = self.primary
        out: dict[str, Any] = {"trace_id": self.trace_id, "async_mode": self.async_mode}
        if p is None:
            out.update(root_span_id=None, root_name=None, duration_ms=None,
                       sections=[], spans=[], fanouts=[])
        else:
            body = p.to_dict(self.origin_ns)
            out.update(
                root_span_id=body["root_span_id"], root_name=body["root_name"],
                orphan_root=body["orphan"], duration_ms=body["duration_ms"],
                sections=body["sections"], spans=body["spans"], fanouts=body["fanouts"],
            )
        out["other_roots"] = [r.to_dict(self.origin_ns) for r in self.other_roots]
        out["excluded"] = [e.to_dict() for e in self.excluded]
        out["problems"] = list(self.problems)
        return out


# --------------------------------------------------------------------------
# Columnar core (also used by bottlenecks.py)


class TraceColumns:
    """One trace as parallel lists; position i is one span.

    `waits` (the wait/sync flag per span) may be None, or hold None for some
    spans: those are computed from names (and `attributes`, when given) on
    first use, by `is_wait_span`. `parents` hold None for roots.
    """

    __slots__ = ("ids", "parents", "names", "kinds", "starts", "ends", "agents", "types",
                 "attributes", "_waits", "bad")

    def __init__(self, ids, parents, starts, ends, kinds=None, names=None, agents=None,
                 types=None, waits=None, attributes=None):
        self.ids = ids
        self.parents = parents
        self.starts = starts
        self.ends = ends
        n = len(ids)
        self.kinds = kinds if kinds is not None else [None] * n
        self.names = names if names is not None else [None] * n
        self.agents = agents
        self.types = types
        self.attributes = attributes
        self._waits = waits
        self.bad: set[int] = set()

    @property
    def waits(self) -> list[bool]:
        w = self._waits
        if w is None or None in w:
            attrs = self.attributes
            cache: dict[str | None, bool] = {}
            out = []
            for i, name in enumerate(self.names):
                if w is not None and w[i] is not None:
                    out.append(bool(w[i]))
                elif attrs is not None and attrs[i]:
                    out.append(is_wait_span(name, attrs[i]))
                else:
                    flag = cache.get(name)
                    if flag is None:
                        flag = cache[name] = is_wait_span(name)
                    out.append(flag)
            self._waits = out
        return self._waits

    @classmethod
    def from_records(cls, spans: Iterable[Any]) -> "TraceColumns":
        """Columns from dicts (or objects with the same attribute names)."""
        ids, parents, starts, ends, kinds, names, agents, types, waits, attrs = ([] for _ in range(10))
        for rec in spans:
            get = rec.get if isinstance(rec, Mapping) else (lambda k, d=None, _r=rec: getattr(_r, k, d))
            ids.append(get("span_id"))
            parents.append(get("parent_span_id"))
            starts.append(get("start_ns"))
            ends.append(get("end_ns"))
            kinds.append(get("kind"))
            names.append(get("name"))
            agents.append(get("agent"))
            types.append(get("type"))
            attrs.append(get("attributes"))
            waits.append(get("is_wait"))
        cols = cls(ids, parents, starts, ends, kinds, names, agents, types, waits, attrs)
        cols.normalise()
        return cols

    def normalise(self) -> None:
        """Give id-less spans a placeholder id, empty parent ids None, and mark
        spans without usable times as bad (they are dropped with a reason)."""
        ids, parents = self.ids, self.parents
        if None in ids or "" in ids:
            for i, s in enumerate(ids):
                if not s:
                    ids[i] = f"<no id #{i}>"
        if "" in parents:
            for i, p in enumerate(parents):
                if p == "":
                    parents[i] = None
        starts, ends = self.starts, self.ends
        if None in starts or None in ends:
            for i in range(len(ids)):
                if starts[i] is None or ends[i] is None:
                    self.bad.add(i)
                    starts[i] = 0
                    ends[i] = -1


class Tree:
    """Parent links of a trace: `pidx[i]` (-1 for roots), `kids[i]` (None for leaves)."""

    __slots__ = ("cols", "index", "pidx", "kids", "roots", "problems", "cyclic")

    def __init__(self, cols: TraceColumns):
        self.cols = cols
        ids, parents = cols.ids, cols.parents
        n = len(ids)
        self.problems: list[str] = []
        # Shared ids (Zipkin client/server halves) follow the one rule of
        # analysis.spanids, the rule `agtrace show` draws its tree by.
        index, up, problems = shared_id_links(ids, cols.kinds, cols.starts, cols.bad)
        self.problems.extend(problems)
        self.index = index
        get = index.get
        pidx = [-1] * n
        kids: list[list[int] | None] = [None] * n
        roots: list[int] = []
        for i, p in enumerate(parents):
            j = -1 if p is None else get(p, -1)
            if up and i in up:
                j = up[i]
            if j < 0:
                roots.append(i)
                continue
            pidx[i] = j
            k = kids[j]
            if k is None:
                kids[j] = [i]
            else:
                k.append(i)
        self.pidx, self.kids, self.roots = pidx, kids, roots
        # Spans not reachable from any root hang in a parent cycle.
        seen = 0
        stack = list(roots)
        pop, extend = stack.pop, stack.extend
        while stack:
            k = kids[pop()]
            seen += 1
            if k is not None:
                extend(k)
        self.cyclic: list[int] = []
        if seen < n:
            reach = [False] * n
            stack = list(roots)
            while stack:
                i = stack.pop()
                reach[i] = True
                if kids[i] is not None:
                    stack.extend(kids[i])
            self.cyclic = [i for i in range(n) if not reach[i]]
            shown = ", ".join(ids[i] for i in self.cyclic[:5])
            more = "" if len(self.cyclic) <= 5 else f" and {len(self.cyclic) - 5} more"
            self.problems.append(
                f"{len(self.cyclic)} span(s) in a parent cycle, not analysed: {shown}{more}")

    def is_orphan(self, i: int) -> bool:
        return self.cols.parents[i] is not None

    def root_order(self) -> list[int]:
        """Roots, primary first: usable times, a true root before an orphan,
        then the longest, the earliest, the smallest id."""
        c = self.cols
        starts, ends, ids, bad, parents = c.starts, c.ends, c.ids, c.bad, c.parents
        return sorted(self.roots, key=lambda i: (
            i in bad or ends[i] < starts[i], parents[i] is not None, -(ends[i] - starts[i]), starts[i], ids[i]))

    def primary_root(self) -> int:
        return self.roots[0] if len(self.roots) == 1 else self.root_order()[0]

    def subtree_size(self, i: int) -> int:
        kids, stack, count = self.kids, [i], 0
        while stack:
            k = kids[stack.pop()]
            count += 1
            if k is not None:
                stack.extend(k)
        return count


def _drop_reason(cols: TraceColumns, c: int, s: int, e: int, ps: int, pe: int) -> str:
    if c in cols.bad:
        return "missing start or end time"
    if e < s:
        return "ends before it starts"
    if s >= pe:
        return "starts at or after its parent's end"
    return "ends at or before its parent's start"


class Clipped:
    """The sanitised subtree of one root: clipped times and the kept children.

    `kk[p]`: p's kept children of positive length, only for parents that have
    some, inserted parents before children (pre-order); `dropped`: (span,
    reason) for each span left out with its subtree.
    """

    __slots__ = ("root", "cs", "ce", "kk", "dropped")

    def __init__(self, tree: Tree, root: int, cs: list[int], ce: list[int], async_mode: str):
        cols = tree.cols
        kids, kinds = tree.kids, cols.kinds
        kk: dict[int, list[int]] = {}
        dropped: list[tuple[int, str]] = []
        exclude_async = async_mode == "exclude"
        tol = SKEW_TOLERANCE_NS
        stack = [root] if kids[root] is not None else []
        pop, push = stack.pop, stack.append
        while stack:  # only spans with children are pushed
            p = pop()
            ps = cs[p]
            pe = ce[p]
            producer = kinds[p] == "producer"
            keep = []
            for c in kids[p]:
                s = cs[c]
                e = ce[c]
                if s >= pe or e <= ps or e < s:
                    dropped.append((c, _drop_reason(cols, c, s, e, ps, pe)))
                    continue
                if producer and kinds[c] == "consumer":
                    dropped.append((c, "consumer of a producer span (asynchronous, not waited for)"))
                    continue
                if e > pe:
                    if exclude_async and e - pe > tol:
                        dropped.append((c, "outlives its parent (async_mode=exclude)"))
                        continue
                    ce[c] = e = pe
                if s < ps:
                    cs[c] = s = ps
                if e > s:
                    keep.append(c)
                if kids[c] is not None:
                    push(c)
            if keep:
                kk[p] = keep
        self.root, self.cs, self.ce, self.kk, self.dropped = root, cs, ce, kk, dropped


def _tie_break(k: list[int], j: int, e: int, ce, cs, kk, waits, ids) -> int:
    """Among siblings k[j:] ending exactly at e, the one that did the work:
    non-wait first, then with children, then the earlier start, then the id."""
    best = k[j]
    bkey = (waits[best], best not in kk, cs[best], ids[best])
    jj, n = j + 1, len(k)
    while jj < n and ce[k[jj]] == e:
        o = k[jj]
        key = (waits[o], o not in kk, cs[o], ids[o])
        if key < bkey:
            best, bkey = o, key
        jj += 1
    return best


def walk(cl: Clipped, pidx: list[int], waits: list[bool], ids: list[str],
         groups: Sequence[Any] | None = None):
    """The critical-path walk of the reference, as a loop.

    Returns (sections, drag, tops): sections as (span, start, end) tuples in
    walk order (latest first); drag as {span: ns} for every span the path
    passes through, in the order it reaches them (parents before children);
    with `groups` (a group key per span), tops lists the path spans with no
    path ancestor of the same group (so group drags can be summed without
    counting nested spans twice), else None.

    Each parent's kept kids are sorted by end, latest first, when the walk
    first reaches it; the walk only ever looks further down that list (each
    return to a parent lowers its limit), so a parent costs O(k log k) however
    many of its kids are on the path.
    """
    root, cs, ce, kk = cl.root, cl.cs, cl.ce, cl.kk
    kget = kk.get
    sec: list[tuple[int, int, int]] = []
    app = sec.append
    drag = {root: ce[root] - cs[root]}
    # sf: how far a path span could move earlier before another sibling ends last
    sf = {root: _INF}
    ptr: dict[int, int] = {}  # parent -> position in its sorted kids
    last: dict[int, int] = {}  # parent -> the kid the path took last (the later one)
    key = ce.__getitem__
    tops: list[int] | None = None
    if groups is not None:
        tops = [root]
        active = {groups[root]: 1}  # group -> path spans of it from the root down to cur
    k = kget(root)
    if k is not None and len(k) > 1:
        k.sort(key=key, reverse=True)
    cur = root
    bound = ce[root]
    while True:
        k = kget(cur)
        c = -1
        if k is not None:
            j = ptr.get(cur, 0)
            nk = len(k)
            while j < nk and ce[k[j]] > bound:
                j += 1
            ptr[cur] = j
            if j < nk:
                c = k[j]
                e = ce[c]
                if j + 1 < nk and ce[k[j + 1]] == e:
                    c = _tie_break(k, j, e, ce, cs, kk, waits, ids)
        if c < 0:
            s = cs[cur]
            if s < bound:
                app((cur, s, bound))
            if cur == root:
                break
            if tops is not None:
                active[groups[cur]] -= 1
            bound = s
            cur = pidx[cur]
            continue
        if e < bound:
            app((cur, e, bound))
        # E: the latest end of another sibling ending no later than c. A
        # childless wait span ending with c waits for c: it would end when
        # c does, but not before it began, so it counts with its start (W).
        E = W = None
        cw = waits[c]
        jj = j
        while jj < nk:
            o = k[jj]
            if o != c:
                eo = ce[o]
                if cw or eo != e or not waits[o] or o in kk:
                    E = eo
                    break
                if W is None or cs[o] > W:
                    W = cs[o]
            jj += 1
        prev = last.get(cur)
        f = sf[cur] if prev is None else sf[prev]
        s = cs[c]
        d = e - s if e - s < f else f
        if W is not None:
            if e - W < d:
                d = e - W
            if e - W < f:
                f = e - W
        if E is not None:
            local = e - E
            if local < d:
                d = local
            if E > s:
                if local < f:
                    f = local
                if cw and c not in kk:
                    # a wait span ends after the work it waits for (the non-wait
                    # siblings ending inside it): moving it earlier gains nothing
                    while jj < nk:
                        o = k[jj]
                        if ce[o] <= s:
                            break
                        if o != c and not waits[o]:
                            f = 0
                            break
                        jj += 1
        sf[c] = f
        drag[c] = d
        last[cur] = c
        if tops is not None:
            g = groups[c]
            na = active.get(g, 0)
            if na == 0:
                tops.append(c)
            active[g] = na + 1
        k = kget(c)
        if k is not None and len(k) > 1:
            k.sort(key=key, reverse=True)
        cur = c
        bound = e
    return sec, drag, tops


def fanouts(cl: Clipped, cols: TraceColumns, on_path: Mapping[int, Any]) -> list[FanOut]:
    """Overlapping groups of children, for every kept span (on the path or not).

    Written for traces with tens of thousands of fan-outs: children are
    ordered by (start, end) with two stable C-level sorts instead of a tuple
    key, and branches are built positionally.
    """
    cs, ce, kk = cl.cs, cl.ce, cl.kk
    ids, names, waits = cols.ids, cols.names, cols.waits
    agents = cols.agents or None
    by_start, by_end = cs.__getitem__, ce.__getitem__
    out: list[FanOut] = []
    for p, k in kk.items():  # parents before children
        if len(k) < 2:
            continue
        ks = sorted(k, key=by_end)
        ks.sort(key=by_start)
        groups: list[list[int]] = []
        group = [ks[0]]
        gend = ce[ks[0]]
        for c in ks[1:]:
            if cs[c] < gend:
                group.append(c)
                if ce[c] > gend:
                    gend = ce[c]
            else:
                groups.append(group)
                group = [c]
                gend = ce[c]
        groups.append(group)
        for g in groups:
            if len(g) < 2:
                continue
            gstart = cs[g[0]]
            gend = max(map(by_end, g))
            cands = [c for c in g if ce[c] == gend]
            crit = cands[0] if len(cands) == 1 else min(
                cands, key=lambda c: (waits[c], c not in kk, cs[c], ids[c]))
            branches = tuple([
                Branch(ids[c], names[c], agents[c] if agents else None, cs[c], ce[c],
                       0 if (c == crit or c in on_path) else gend - ce[c], c in on_path, waits[c])
                for c in g
            ])
            # Work is what the branches did: a wait/sync branch (the same
            # classification the tie-break above uses) only waited for the
            # others, so its time is not work and does not raise parallelism.
            out.append(FanOut(ids[p], names[p], agents[p] if agents else None, p in on_path, gstart, gend,
                              sum([ce[c] - cs[c] for c in g if not waits[c]]), ids[crit], branches))
    return out


def _root_path(tree: Tree, root: int, cs: list[int], ce: list[int], async_mode: str,
               with_fanouts: bool) -> tuple[RootPath, Clipped]:
    cols = tree.cols
    cl = Clipped(tree, root, cs, ce, async_mode)
    waits = cols.waits
    sec, drag, _ = walk(cl, tree.pidx, waits, cols.ids)
    ids, names = cols.ids, cols.names
    agents, types = cols.agents, cols.types
    crit: dict[int, int] = dict.fromkeys(drag, 0)
    sec.reverse()
    sections = [Section(ids[i], names[i], s, e) for i, s, e in sec]
    first = {}  # span -> start of its first section, for a stable order
    for i, s, e in sec:
        crit[i] += e - s
        if i not in first:
            first[i] = s
    last = ce[root]
    order = sorted(drag, key=lambda i: (-crit[i], first.get(i, last), ids[i]))
    spans = [
        PathSpan(ids[i], names[i], agents[i] if agents else None, types[i] if types else None,
                 crit[i], int(drag[i]))
        for i in order
    ]
    fans = fanouts(cl, cols, drag) if with_fanouts else []
    rp = RootPath(
        span_id=ids[root], name=names[root], orphan=tree.is_orphan(root),
        missing_parent_id=cols.parents[root], start_ns=cs[root], end_ns=ce[root],
        sections=sections, spans=spans, fanouts=fans,
    )
    return rp, cl


def _check_async_mode(async_mode: str) -> None:
    if async_mode not in ASYNC_MODES:
        raise ValueError(f"async_mode must be one of {', '.join(ASYNC_MODES)}, not {async_mode!r}")


def analyze_columns(cols: TraceColumns, trace_id: str | None = None,
                    async_mode: str = DEFAULT_ASYNC_MODE, with_fanouts: bool = True) -> TraceCriticalPath:
    """`analyze_trace` over columns already built."""
    _check_async_mode(async_mode)
    with gc_paused():
        return _analyze_columns(cols, trace_id, async_mode, with_fanouts)


def _analyze_columns(cols: TraceColumns, trace_id: str | None, async_mode: str,
                     with_fanouts: bool) -> TraceCriticalPath:
    starts = cols.starts
    good = [s for i, s in enumerate(starts) if i not in cols.bad] if cols.bad else starts
    origin = min(good) if good else 0
    result = TraceCriticalPath(trace_id, origin, async_mode, None)
    if not cols.ids:
        result.problems.append("the trace has no spans")
        return result
    tree = Tree(cols)
    result.problems.extend(tree.problems)
    if not tree.roots:
        result.problems.append("no root span: every span's parent is in the trace (a cycle)")
        return result
    cs, ce = list(starts), list(cols.ends)
    ids = cols.ids
    for r in tree.root_order():
        if r in cols.bad or ce[r] < cs[r]:
            why = "missing start or end time" if r in cols.bad else "ends before it starts"
            result.problems.append(f"root span {ids[r]} not analysed: {why}")
            result.excluded.append(Excluded(ids[r], cols.names[r], f"root {why}", tree.subtree_size(r)))
            continue
        try:
            rp, cl = _root_path(tree, r, cs, ce, async_mode, with_fanouts)
        except Exception as exc:  # never let one root take the others down silently
            result.problems.append(f"root span {ids[r]} failed: {type(exc).__name__}: {exc}")
            continue
        if result.primary is None:
            result.primary = rp
        else:
            result.other_roots.append(rp)
        for c, reason in cl.dropped:
            result.excluded.append(Excluded(ids[c], cols.names[c], reason, tree.subtree_size(c)))
    if len(tree.roots) > 1:
        n_orphans = sum(1 for r in tree.roots if tree.is_orphan(r))
        result.problems.append(
            f"{len(tree.roots)} roots ({n_orphans} orphan(s) whose parent is not in the trace); "
            "each is analysed, the primary one is reported at top level")
    if cols.bad:
        result.problems.append(f"{len(cols.bad)} span(s) without start or end time")
    return result


def analyze_trace(spans: Iterable[Any], async_mode: str = DEFAULT_ASYNC_MODE,
                  trace_id: str | None = None, with_fanouts: bool = True) -> TraceCriticalPath:
    """The critical path of one trace.

    `spans`: dicts (or objects) with span_id, parent_span_id, name, start_ns,
    end_ns, and optionally kind, agent, type, attributes (dict or JSON text)
    and is_wait (overrides `is_wait_span`). `trace_id` defaults to the spans'.
    """
    spans = list(spans)
    if trace_id is None and spans:
        first = spans[0]
        trace_id = first.get("trace_id") if isinstance(first, Mapping) else getattr(first, "trace_id", None)
    return analyze_columns(TraceColumns.from_records(spans), trace_id, async_mode, with_fanouts)


# --------------------------------------------------------------------------
# What-if


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """The primary root's duration before and after re-timing the matching spans."""

    trace_id: str | None
    before_ns: int | None
    after_ns: int | None
    matched: int
    problem: str | None = None

    @property
    def saving_ns(self) -> int | None:
        if self.before_ns is None or self.after_ns is None:
            return None
        return self.before_ns - self.after_ns

    def to_dict(self) -> dict:
        return {
            "trace_id": self.trace_id,
            "before_ms": _ms(self.before_ns),
            "after_ms": _ms(self.after_ns),
            "saving_ms": _ms(self.saving_ns),
            "matched_spans": self.matched,
            "problem": self.problem,
        }


def _check_change(speedup: float | None, delta_ns: int | None) -> None:
    if (speedup is None) == (delta_ns is None):
        raise ValueError("give exactly one of speedup and delta_ns")
    if speedup is not None and not speedup > 0:
        raise ValueError("speedup must be greater than 0")


class _Frame:
    """A parent being re-timed: its kids by start, the next one to place, a
    heap of placed kids by original end (not yet predecessors of the next),
    the latest original/new end of its predecessors and of all its kids, its
    own-time change, and its wait kids whose end waits for their siblings."""

    __slots__ = ("p", "ks", "i", "heap", "pred_orig", "pred_new", "max_orig", "max_new",
                 "scale", "extra", "deferred")


def retime(cl: Clipped, hits: Sequence[bool], waits: Sequence[bool], speedup: float | None = None,
           delta_ns: int | None = None,
           scales: Mapping[int, float] | None = None) -> tuple[dict[int, float], dict[int, float], int]:
    """Re-time the sanitised tree after changing the own time of the hit spans.

    Model (the reference's): a span's own time is its duration minus the time
    covered by its children. A child keeps its offset from the latest end of
    the siblings that ended before it started (or from its parent's start when
    none did), so children move with their parent and a span that started
    after a fan-out waits for the fan-out's latest branch; a parent ends its
    original tail after its latest child. A childless wait/sync span that
    overlaps siblings ending inside it waits for them: it ends its original
    tail after the latest of them, so it shrinks when they do. A hit span's own
    time is divided by `speedup` or changed by `delta_ns` (spread over its own
    stretches in proportion, never below zero; with no own time a positive
    delta extends its tail). Children change only if they are hit themselves.

    `scales` (span -> factor), when given, replaces that rule: each span in it
    has its own stretches multiplied by its factor, the others keep theirs
    (`subtree_scales` builds it for "the whole subtree runs faster").

    Returns (new_starts, new_ends, number of hit spans) over the kept spans,
    as offsets from the root's start: epoch nanoseconds (~1.7e18) in floats
    would be off by up to 256 ns, enough to show "-0.001 ms" savings.
    """
    cs, ce, kk = cl.cs, cl.ce, cl.kk
    ns: dict[int, float] = {cl.root: 0.0}
    ne: dict[int, float] = {}
    matched = 0

    def own_change(own: float, c: int) -> tuple[float, float]:
        """(scale of the own stretches, extra tail) of a hit span with `own` time."""
        if scales is not None:
            return scales.get(c, 1.0), 0.0
        if speedup is not None:
            return 1.0 / speedup, 0.0
        if own > 0:
            return max(0.0, own + delta_ns) / own, 0.0
        return 1.0, float(max(0, delta_ns))

    def covered(ks: list[int]) -> int:
        total, run_s, run_e = 0, cs[ks[0]], ce[ks[0]]
        for c in ks:  # sorted by start
            if cs[c] > run_e:
                total += run_e - run_s
                run_s, run_e = cs[c], ce[c]
            elif ce[c] > run_e:
                run_e = ce[c]
        return total + run_e - run_s

    def resolve(f: _Frame, w: int) -> None:
        """End of a deferred wait span: after the latest sibling it waited for."""
        members, hit = f.deferred.pop(w)
        m_orig = max(ce[c] for c in members)
        m_new = max(ne[c] for c in members)
        tail = ce[w] - m_orig
        scale, extra = own_change(tail, w) if hit else (1.0, 0.0)
        ne[w] = max(ns[w], m_new + tail * scale + extra)

    def kid_done(f: _Frame, c: int) -> None:
        heappush(f.heap, (ce[c], c))
        if f.max_orig is None or ce[c] > f.max_orig:
            f.max_orig = ce[c]
        if c in f.deferred:
            return
        if f.max_new is None or ne[c] > f.max_new:
            f.max_new = ne[c]

    stack: list[_Frame] = []

    def place(c: int, parent: _Frame | None) -> None:
        """c's new start is known: finish it if it is a leaf, else open a frame."""
        nonlocal matched
        hit = bool(hits[c])
        matched += hit
        if scales is not None:
            hit = c in scales
        ks = kk.get(c)
        if ks is None:
            if parent is not None and waits[c]:
                members = [o for o in parent.ks
                           if o != c and not waits[o] and cs[c] < ce[o] <= ce[c]]
                if members:
                    parent.deferred[c] = (members, hit)
                    return
            scale, extra = own_change(ce[c] - cs[c], c) if hit else (1.0, 0.0)
            ne[c] = ns[c] + (ce[c] - cs[c]) * scale + extra
            return
        ks = sorted(ks, key=lambda o: (cs[o], ce[o]))
        f = _Frame()
        f.p, f.ks, f.i, f.heap, f.deferred = c, ks, 0, [], {}
        f.pred_orig = f.pred_new = f.max_orig = f.max_new = None
        f.scale, f.extra = own_change(ce[c] - cs[c] - covered(ks), c) if hit else (1.0, 0.0)
        stack.append(f)

    place(cl.root, None)
    while stack:
        f = stack[-1]
        if f.i < len(f.ks):
            c = f.ks[f.i]
            f.i += 1
            sc = cs[c]
            heap = f.heap
            while heap and heap[0][0] <= sc:
                e0, o = heappop(heap)
                if o in f.deferred:
                    resolve(f, o)
                if f.pred_orig is None or e0 > f.pred_orig:
                    f.pred_orig = e0
                if f.pred_new is None or ne[o] > f.pred_new:
                    f.pred_new = ne[o]
            if f.pred_orig is None:
                ns[c] = ns[f.p] + (sc - cs[f.p]) * f.scale
            else:
                ns[c] = f.pred_new + (sc - f.pred_orig) * f.scale
            place(c, f)
            if stack[-1] is f:  # c was a leaf: done already (or deferred)
                kid_done(f, c)
            continue
        for w in list(f.deferred):
            resolve(f, w)
            if f.max_new is None or ne[w] > f.max_new:
                f.max_new = ne[w]
        p = f.p
        ne[p] = f.max_new + (ce[p] - f.max_orig) * f.scale + f.extra
        stack.pop()
        if stack:
            kid_done(stack[-1], p)
    return ns, ne, matched


def subtree_scales(cl: Clipped, hits: Sequence[bool], speedup: float | None = None,
                   delta_ns: int | None = None) -> dict[int, float]:
    """Factors for `retime(scales=...)` that make each hit span run faster as
    a whole, everything below it included ("the agent 2x faster").

    A hit span with no hit ancestor sets the factor of its kept subtree:
    1/speedup, or with a delta (new duration) / duration, its clipped
    duration changed by `delta_ns` and never below zero. Hit spans below it
    just go along (a span is not sped up twice). Scaling a whole subtree by
    one factor keeps every offset in proportion, so the span's duration
    changes by exactly that factor (or delta).
    """
    cs, ce, kk = cl.cs, cl.ce, cl.kk
    out: dict[int, float] = {}
    stack: list[tuple[int, float | None]] = [(cl.root, None)]
    pop, push = stack.pop, stack.append
    while stack:
        c, f = pop()
        if f is None and hits[c]:
            if speedup is not None:
                f = 1.0 / speedup
            else:
                d = ce[c] - cs[c]
                f = max(0.0, d + delta_ns) / d if d > 0 else 1.0
        if f is not None:
            out[c] = f
        k = kk.get(c)
        if k is not None:
            for o in k:
                push((o, f))
    return out


WHAT_IF_SCOPES = ("own", "subtree")


def what_if_columns(cols: TraceColumns, hits: Sequence[bool], trace_id: str | None = None,
                    speedup: float | None = None, delta_ns: int | None = None,
                    async_mode: str = DEFAULT_ASYNC_MODE, copy: bool = True,
                    scope: str = "own") -> WhatIfResult:
    """`what_if` over columns and a per-span hit list. Problems come back in
    the result, not raised. With copy=False the columns' start/end lists are
    clipped in place (for callers whose columns are throw-away slices).

    `scope` "own" changes the hit spans' own time (`retime`'s model);
    "subtree" makes each hit span faster or slower as a whole, its children
    included (`subtree_scales`)."""
    _check_change(speedup, delta_ns)
    _check_async_mode(async_mode)
    if scope not in WHAT_IF_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(WHAT_IF_SCOPES)}, not {scope!r}")
    if not cols.ids:
        return WhatIfResult(trace_id, None, None, 0, "the trace has no spans")
    tree = Tree(cols)
    if not tree.roots:
        return WhatIfResult(trace_id, None, None, 0, "no root span (parent cycle)")
    root = tree.primary_root()
    if root in cols.bad or cols.ends[root] < cols.starts[root]:
        return WhatIfResult(trace_id, None, None, 0, f"root span {cols.ids[root]} has no usable start/end times")
    starts, ends = (list(cols.starts), list(cols.ends)) if copy else (cols.starts, cols.ends)
    cl = Clipped(tree, root, starts, ends, async_mode)
    scales = subtree_scales(cl, hits, speedup, delta_ns) if scope == "subtree" else None
    ns, ne, matched = retime(cl, hits, cols.waits, speedup, delta_ns, scales)
    return WhatIfResult(trace_id, cl.ce[root] - cl.cs[root], int(round(ne[root] - ns[root])), matched)


def what_if(spans: Iterable[Any], predicate: Callable[[Any], bool], speedup: float | None = None,
            delta_ns: int | None = None, async_mode: str = DEFAULT_ASYNC_MODE,
            trace_id: str | None = None, scope: str = "own") -> WhatIfResult:
    """Re-time one trace with the spans matching `predicate` sped up or shifted.

    Exactly one of `speedup` (> 0; 2 halves the matching spans' own time) and
    `delta_ns` (e.g. -1_500_000_000) is given; see `retime` for the model and
    `what_if_columns` for `scope`.
    """
    spans = list(spans)
    if trace_id is None and spans:
        first = spans[0]
        trace_id = first.get("trace_id") if isinstance(first, Mapping) else getattr(first, "trace_id", None)
    cols = TraceColumns.from_records(spans)
    return what_if_columns(cols, [bool(predicate(s)) for s in spans], trace_id, speedup, delta_ns, async_mode,
                           scope=scope)
