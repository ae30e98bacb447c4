"""The span tree of one trace, as `agtrace show` displays it.

Pure Python over span records (anything with `span_id`, `parent_span_id`,
`name`, `kind`, `status`, `start_ns`, `end_ns`); no DuckDB, no rendering.

Real traces are messy, and an operator looking at a broken run needs to see
all of it, so nothing is ever dropped:

* a span whose parent is not in the data (an orphan) hangs under a
  placeholder node for the missing parent; orphans of the same missing parent
  share one placeholder; several roots are all kept, ordered by start;
* a cycle in the parent links is broken at its earliest span (start, then
  id), which becomes a top-level node and is reported in `problems`;
* duplicate span ids (`analysis.spanids`, the rule the critical path uses
  too): a Zipkin-style server half sharing its client's id becomes that
  client's child, and spans naming the shared id hang under the earliest
  server half, else the earliest span with the id (as the loader's depth
  derivation does);
* every walk is a loop over an explicit stack (a trace can be 10,000 levels
  deep or 50,000 spans wide).

`flatten()` turns the tree into display rows: depth-limited, a subtree with
its ancestors as context, or with wide runs of same-name siblings collapsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from agtrace.analysis.spanids import shared_id_links

GUIDE_PIPE = "│  "
GUIDE_BLANK = "   "
GUIDE_TEE = "├─ "
GUIDE_ELBOW = "└─ "


class Node:
    """A span (or a placeholder for a missing parent) and its place in the tree."""

    __slots__ = ("span", "span_id", "parent", "children", "depth", "start_ns", "end_ns",
                 "missing", "cycle", "size", "errors")

    def __init__(self, span: Any, span_id: str | None, start_ns: int | None, end_ns: int | None,
                 missing: bool = False):
        self.span = span
        self.span_id = span_id
        self.parent: Node | None = None
        self.children: list[Node] = []
        self.depth = 0
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.missing = missing  # a placeholder: the parent id orphans point to
        self.cycle: tuple[str, ...] | None = None  # where a parent cycle was broken
        self.size = 1  # spans in the subtree, this one included (0 for a placeholder)
        self.errors = 0  # error spans in the subtree

    @property
    def name(self) -> str | None:
        return None if self.span is None else self.span.name

    @property
    def is_error(self) -> bool:
        return self.span is not None and self.span.status == "error"

    @property
    def duration_ns(self) -> int | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return self.end_ns - self.start_ns

    def __repr__(self) -> str:  # for test failure messages
        return f"Node({self.span_id!r}, {self.name!r}, depth={self.depth})"


class TraceTree:
    """The tree of one trace. `roots` are ordered by start; so are all children."""

    __slots__ = ("roots", "nodes", "problems", "origin_ns", "end_ns")

    def __init__(self, roots: list[Node], nodes: list[Node], problems: list[str] | None = None,
                 origin_ns: int | None = None, end_ns: int | None = None):
        self.roots = roots
        self.nodes = nodes  # one per span, in input order
        self.problems = problems if problems is not None else []
        self.origin_ns = origin_ns  # earliest start
        self.end_ns = end_ns  # latest end

    @property
    def duration_ns(self) -> int:
        if self.origin_ns is None or self.end_ns is None:
            return 0
        return self.end_ns - self.origin_ns

    @property
    def span_count(self) -> int:
        return len(self.nodes)

    @property
    def error_count(self) -> int:
        return sum(1 for n in self.nodes if n.is_error)

    @property
    def placeholders(self) -> list[Node]:
        return [r for r in self.roots if r.missing]

    def find(self, span_id: str) -> Node | None:
        """The first span node with this id (None if absent)."""
        for n in self.nodes:
            if n.span_id == span_id:
                return n
        return None

    def walk(self, roots: Iterable[Node] | None = None) -> Iterable[Node]:
        """Pre-order, children in start order, without recursion."""
        stack = list(reversed(list(self.roots if roots is None else roots)))
        while stack:
            n = stack.pop()
            yield n
            if n.children:
                stack.extend(reversed(n.children))


def _order_key(n: Node):
    s = n.start_ns
    return (s is None, s if s is not None else 0, n.span_id or "", n.name or "")


def build_tree(spans: Sequence[Any]) -> TraceTree:
    """Build the display tree of one trace's spans (see the module docstring)."""
    nodes = [Node(s, s.span_id, s.start_ns, s.end_ns) for s in spans]
    problems: list[str] = []
    # Spans sharing an id (Zipkin client/server halves): the rule every tree
    # of agtrace follows (analysis.spanids), so the critical path marks the
    # same spans this tree shows.
    pos, up, problems = shared_id_links([n.span_id for n in nodes], [n.span.kind for n in nodes],
                                        [n.start_ns for n in nodes])
    index: dict[str, Node] = {sid: nodes[i] for sid, i in pos.items()}

    placeholders: dict[str, Node] = {}
    roots: list[Node] = []
    for i, n in enumerate(nodes):
        s = n.span
        u = up.get(i) if up else None
        parent = nodes[u] if u is not None else None
        pid = s.parent_span_id
        if parent is None and pid:
            parent = index.get(pid)
            if parent is None:
                ph = placeholders.get(pid)
                if ph is None:
                    ph = placeholders[pid] = Node(None, pid, None, None, missing=True)
                    ph.size = 0
                    roots.append(ph)
                parent = ph
            elif parent is n:
                n.cycle = (n.span_id,)
                problems.append(f"span {n.span_id} is its own parent; shown as a top-level span")
                roots.append(n)
                continue
        if parent is None:
            roots.append(n)
        else:
            n.parent = parent
            parent.children.append(n)

    # Order children by start. The store hands rows over sorted by start and
    # id, so with a C-level key the sorts below are linear.
    starts = [n.start_ns for n in nodes]
    key = _order_key if (None in starts or None in index) \
        else attrgetter("start_ns", "span_id")
    for n in nodes:
        if len(n.children) > 1:
            n.children.sort(key=key)
    for ph in placeholders.values():
        ph.children.sort(key=_order_key)
        ph_starts = [c.start_ns for c in ph.children if c.start_ns is not None]
        ph_ends = [c.end_ns for c in ph.children if c.end_ns is not None]
        ph.start_ns = min(ph_starts) if ph_starts else None
        ph.end_ns = max(ph_ends) if ph_ends else None
    roots.sort(key=_order_key)
    order = _preorder(roots)
    if len(order) < len(nodes) + len(placeholders):
        # What the roots do not reach hangs in (or under) a parent cycle.
        reached = {id(n) for n in order}
        for n in sorted(nodes, key=_order_key):
            if id(n) in reached:
                continue
            # Follow the parents until one repeats: that loop is the cycle.
            seen: dict[int, int] = {}
            path: list[Node] = []
            cur = n
            while id(cur) not in seen:
                seen[id(cur)] = len(path)
                path.append(cur)
                cur = cur.parent
            loop = path[seen[id(cur)]:]
            brk = min(loop, key=_order_key)
            brk.parent.children.remove(brk)
            brk.parent = None
            i = loop.index(brk)
            chain_nodes = loop[i:] + loop[:i]  # brk, its parent, that one's parent, ...
            brk.cycle = tuple(m.span_id for m in chain_nodes)
            chain = " -> ".join(m.span_id for m in chain_nodes) + f" -> {brk.span_id}"
            problems.append(f"parent cycle {chain} (each span's parent is the next); "
                            f"broken at {brk.span_id}, shown as a top-level span")
            roots.append(brk)
            reached.update(id(m) for m in _preorder([brk]))
        roots.sort(key=_order_key)
        order = _preorder(roots)

    # Subtree sizes and error counts, children before parents.
    for n in reversed(order):
        sp = n.span
        if sp is not None and sp.status == "error":
            n.errors += 1
        p = n.parent
        if p is not None:
            p.size += n.size
            p.errors += n.errors
    if placeholders:
        count = sum(len(p.children) for p in placeholders.values())
        ids = ", ".join(sorted(placeholders)[:5]) + (" ..." if len(placeholders) > 5 else "")
        problems.append(f"{count} orphan span(s) whose parent is not in the trace "
                        f"(missing parent{'s' if len(placeholders) > 1 else ''} {ids})")
    good_starts = [x for x in starts if x is not None] if None in starts else starts
    ends = [n.end_ns for n in nodes if n.end_ns is not None]
    return TraceTree(roots, nodes, problems, min(good_starts) if good_starts else None, max(ends) if ends else None)


def _preorder(roots: list[Node]) -> list[Node]:
    """Nodes in pre-order, setting each child's depth from its parent's."""
    order: list[Node] = []
    append = order.append
    stack = list(reversed(roots))
    for r in roots:
        r.depth = 0
    pop = stack.pop
    while stack:
        n = pop()
        append(n)
        kids = n.children
        if kids:
            d = n.depth + 1
            for c in kids:
                c.depth = d
            stack.extend(reversed(kids))
    return order


def ancestors(node: Node) -> list[Node]:
    """The ancestors of `node`, root first."""
    out = []
    p = node.parent
    while p is not None:
        out.append(p)
        p = p.parent
    out.reverse()
    return out


# --------------------------------------------------------------------------
# Display rows


class Group:
    """Same-name siblings shown as one row (`--collapse-over N`)."""

    __slots__ = ("name", "members", "start_ns", "end_ns", "min_duration_ns", "max_duration_ns", "spans", "errors")

    def __init__(self, name, members, start_ns, end_ns, min_duration_ns, max_duration_ns, spans, errors):
        self.name: str | None = name
        self.members: list[Node] = members
        self.start_ns: int | None = start_ns
        self.end_ns: int | None = end_ns
        self.min_duration_ns: int | None = min_duration_ns
        self.max_duration_ns: int | None = max_duration_ns
        self.spans: int = spans  # members and their descendants
        self.errors: int = errors  # error spans among them

    @property
    def count(self) -> int:
        return len(self.members)


def _group(name: str | None, members: list[Node]) -> Group:
    starts = [m.start_ns for m in members if m.start_ns is not None]
    ends = [m.end_ns for m in members if m.end_ns is not None]
    durs = [m.duration_ns for m in members if m.duration_ns is not None]
    return Group(name, members, min(starts) if starts else None, max(ends) if ends else None,
                 min(durs) if durs else None, max(durs) if durs else None,
                 sum(m.size for m in members), sum(m.errors for m in members))


class Row:
    """One display row: a span node, a placeholder, or a collapsed group.

    `guides` is the tree prefix of the row (├─ └─ │); `cont` the prefix for
    lines printed under it (details, attributes). `hidden` counts descendants
    cut off by the depth limit (`hidden_errors` of them failed); `context`
    marks an ancestor shown above a `--span` subtree.
    """

    __slots__ = ("node", "group", "depth", "guides", "cont", "hidden", "hidden_errors", "context")

    def __init__(self, node, group, depth, guides, cont, hidden=0, hidden_errors=0, context=False):
        self.node: Node | None = node
        self.group: Group | None = group
        self.depth: int = depth
        self.guides: str = guides
        self.cont: str = cont
        self.hidden = hidden
        self.hidden_errors = hidden_errors
        self.context = context

    def __repr__(self) -> str:
        what = f"group {self.group.name}x{self.group.count}" if self.group else repr(self.node)
        return f"Row({self.guides!r}, {what})"


def _children_items(node: Node, collapse_over: int | None) -> list:
    """The children of `node` as display items: Nodes, or Groups of same-name
    siblings when more than `collapse_over` share a name. A group sits where
    its first member would."""
    kids = node.children
    if not collapse_over or len(kids) <= collapse_over:
        return kids
    counts: dict = {}
    for c in kids:
        counts[c.name] = counts.get(c.name, 0) + 1
    big = {name for name, k in counts.items() if k > collapse_over}
    if not big:
        return kids
    items: list = []
    groups: dict = {}
    for c in kids:
        nm = c.name
        if nm in big:
            g = groups.get(nm)
            if g is None:
                g = groups[nm] = []
                items.append(g)
            g.append(c)
        else:
            items.append(c)
    return [_group(it[0].name, it) if isinstance(it, list) else it for it in items]


def _prefix(stack: list[bool], last: bool, max_guides: int) -> tuple[str, str]:
    """The guides of a row whose ancestors' "has more siblings" flags are
    `stack` (outermost first, roots excluded), and of its continuation lines.

    Rows deeper than `max_guides` levels start with their depth in brackets
    and show only their innermost levels: one for the first row past the
    limit, one more per level below it, wrapping back to one when the name
    column is full. So a child is still drawn one step right of its parent
    (except at a wrap, where the depth label says where it is), no row is
    wider than `max_guides` levels, and a 10,000-deep chain costs
    O(max_guides) per row, not O(depth).
    """
    depth = len(stack)
    end = GUIDE_ELBOW if last else GUIDE_TEE
    tail = GUIDE_BLANK if last else GUIDE_PIPE
    if depth + 1 <= max_guides:
        outer = "".join([GUIDE_PIPE if more else GUIDE_BLANK for more in stack])
        return outer + end, outer + tail
    label = f"[{depth + 1}]"
    cells = -(-len(label) // 3)
    band = max(1, max_guides - cells)  # levels that fit after the label
    shown = (depth - max_guides) % band  # ancestor levels drawn, 0 .. band-1
    inner = "".join([GUIDE_PIPE if more else GUIDE_BLANK for more in stack[depth - shown:]]) if shown else ""
    return label.ljust(3 * cells) + inner + end, " " * (3 * cells) + inner + tail


def flatten(
    tree: TraceTree,
    *,
    focus: Node | None = None,
    max_depth: int | None = None,
    collapse_over: int | None = None,
    max_guides: int = 12,
) -> list[Row]:
    """Display rows in pre-order (children by start).

    `focus`: only that span's subtree, under its ancestors (context rows).
    `max_depth`: levels shown below the top (0 = the top nodes only); a row
    at the limit counts its hidden descendants. `collapse_over`: more than N
    same-name siblings become one Group row (their subtrees are not shown).
    """
    rows: list[Row] = []
    if focus is not None:
        anc = ancestors(focus)
        for i, a in enumerate(anc):
            if i == 0:
                g, c = "", ""
            else:
                g, c = _prefix([False] * (i - 1), True, max_guides)
            rows.append(Row(a, None, i, g, c, context=True))
        tops: list = [focus]
        base = len(anc)
    else:
        tops = list(tree.roots)
        base = 0
    # Stack entries: (item, level below the top, is last, outer guides). The
    # outer guides (one 3-character cell per ancestor level below the top)
    # are built once per parent and shared by its children; only the last
    # `max_guides` cells are kept, since no row draws more, so a 10,000-deep
    # chain costs O(max_guides) per row, not O(depth).
    keep = 3 * max_guides
    outer0 = GUIDE_BLANK * min(max(0, base - 1), max_guides)
    stack: list[tuple[Any, int, bool, str]] = [
        (t, 0, i == len(tops) - 1, outer0) for i, t in reversed(list(enumerate(tops)))]
    pop, push, append = stack.pop, stack.append, rows.append
    while stack:
        item, level, last, outer = pop()
        depth = base + level
        if depth == 0:
            guides = cont = ""
        elif depth <= max_guides:
            if last:
                guides, cont = outer + GUIDE_ELBOW, outer + GUIDE_BLANK
            else:
                guides, cont = outer + GUIDE_TEE, outer + GUIDE_PIPE
        else:
            guides, cont = _deep_prefix(depth, outer, last, max_guides)
        if item.__class__ is Group:
            append(Row(None, item, depth, guides, cont))
            continue
        node = item
        kids = node.children
        if kids and max_depth is not None and level >= max_depth:
            append(Row(node, None, depth, guides, cont, hidden=node.size - (0 if node.missing else 1),
                       hidden_errors=node.errors - (1 if node.is_error else 0)))
            continue
        # Continuation lines of a row with children draw the child pipe.
        append(Row(node, None, depth, guides, cont + "│" if kids else cont))
        if not kids:
            continue
        items = _children_items(node, collapse_over)
        if depth == 0:
            inner = ""
        else:
            inner = outer + (GUIDE_BLANK if last else GUIDE_PIPE)
            if len(inner) > keep:
                inner = inner[-keep:]
        n = len(items)
        for j in range(n - 1, -1, -1):
            push((items[j], level + 1, j == n - 1, inner))
    return rows


def _deep_prefix(depth: int, outer: str, last: bool, max_guides: int) -> tuple[str, str]:
    """Guides of a row deeper than `max_guides` levels (see `_prefix`);
    `outer` holds (at least) the innermost ancestor cells."""
    label = f"[{depth}]"
    cells = -(-len(label) // 3)
    band = max(1, max_guides - cells)
    shown = (depth - 1 - max_guides) % band
    inner = outer[len(outer) - 3 * shown:] if shown else ""
    end, tail = (GUIDE_ELBOW, GUIDE_BLANK) if last else (GUIDE_TEE, GUIDE_PIPE)
    return label.ljust(3 * cells) + inner + end, " " * (3 * cells) + inner + tail
