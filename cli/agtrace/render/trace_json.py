"""`agtrace show --format json`: one trace as a nested JSON document.

Shape: `trace_id`, `duration_ms`, `span_count` (and a few more header
fields), then `root` (one top node) or `roots` (several); each node has
`span_id`, `name`, `agent`, `type`, `start_offset_ms`, `duration_ms`,
`status`, `attributes`, ... and `children` ordered by start. A placeholder
for a missing parent is a node with `"placeholder": true` and `name: null`.

Why a hand-made writer: traces can nest 10,000 levels deep, beyond what
orjson (or any recursive encoder) accepts, so nodes are written from an
explicit stack; each node's own fields still go through orjson. Indentation
is capped at `MAX_INDENT_LEVELS` so that a deep chain stays linear in size
(the output is valid JSON either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from agtrace.analysis.tree import Node, TraceTree
from agtrace.timeutil import format_time

MAX_INDENT_LEVELS = 32
_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def _ms(ns) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def node_fields(node: Node, origin: int, critical: frozenset | set | None) -> dict:
    """The fields of one node (without `children`)."""
    if node.span is None:
        return {
            "span_id": node.span_id, "parent_span_id": None, "name": None, "placeholder": True,
            "agent": None, "type": None,
            "start_offset_ms": _ms(node.start_ns - origin) if node.start_ns is not None else None,
            "duration_ms": _ms(node.duration_ns), "status": None, "attributes": {},
        }
    s = node.span
    d = {
        "span_id": s.span_id,
        "parent_span_id": s.parent_span_id,
        "name": s.name,
        "agent": s.agent,
        "type": s.type,
        "kind": s.kind,
        "service": s.service,
        "start_offset_ms": _ms(node.start_ns - origin) if node.start_ns is not None else None,
        "duration_ms": _ms(node.duration_ns),
        "status": s.status,
        "status_message": s.status_message,
        "attributes": s.attrs(),
        "events": s.event_list(),
        "links": [{"trace_id": ln.linked_trace_id, "span_id": ln.linked_span_id, "ref_type": ln.ref_type,
                   "attributes": ln.attrs()} for ln in s.links],
    }
    if s.model is not None or s.input_tokens is not None or s.output_tokens is not None:
        d.update(model=s.model, input_tokens=s.input_tokens, output_tokens=s.output_tokens)
    if critical is not None:
        d["critical_path"] = s.span_id in critical
    if node.cycle is not None:
        d["cycle"] = list(node.cycle)
    return d


def _indent(level: int) -> str:
    return "  " * min(level, MAX_INDENT_LEVELS)


def _fields_text(fields: dict, level: int) -> str:
    """orjson's pretty text of `fields`, re-indented to `level`, without the closing brace."""
    text = orjson.dumps(fields, option=_OPTS, default=str).decode()
    body = text[: text.rfind("\n")] if "\n" in text else text[:-1]  # drop "\n}"
    ind = _indent(level)
    return body.replace("\n", "\n" + ind) if ind else body


def write_nodes(out, tops: Sequence[Node], origin: int, critical, level: int,
                max_depth: int | None = None) -> None:
    """Write a JSON array of `tops` with their subtrees to `out` (a text stream)."""
    if not tops:
        out.write("[]")
        return
    # Frames: ("node", node, level, depth, last) or ("close", level).
    out.write("[\n")
    stack: list[tuple] = []
    for i in range(len(tops) - 1, -1, -1):
        stack.append(("node", tops[i], level + 1, 0, i == len(tops) - 1))
    write = out.write
    while stack:
        frame = stack.pop()
        if frame[0] == "close":
            _, lv, last = frame
            write("\n" + _indent(lv + 1) + "]\n" + _indent(lv) + "}" + ("" if last else ",\n"))
            continue
        _, node, lv, depth, last = frame
        fields = node_fields(node, origin, critical)
        kids = node.children
        if kids and max_depth is not None and depth >= max_depth:
            fields["hidden_descendants"] = node.size - (0 if node.missing else 1)
            kids = []
        write(_indent(lv) + _fields_text(fields, lv))
        if not kids:
            write(",\n" + _indent(lv + 1) + '"children": []\n' + _indent(lv) + "}" + ("" if last else ",\n"))
            continue
        write(",\n" + _indent(lv + 1) + '"children": [\n')
        stack.append(("close", lv, last))
        n = len(kids)
        for j in range(n - 1, -1, -1):
            stack.append(("node", kids[j], lv + 2, depth + 1, j == n - 1))
    write("\n" + _indent(level) + "]")


def write_document(out, tree: TraceTree, trace_id: str, *, tops: Sequence[Node] | None = None,
                   critical=None, max_depth: int | None = None, extra: dict | None = None,
                   problems: Iterable[str] = ()) -> None:
    """The whole document: header fields, then `root` or `roots`."""
    origin = tree.origin_ns or 0
    tops = list(tree.roots if tops is None else tops)
    agents = sorted({n.span.agent for n in tree.nodes if n.span.agent})
    from agtrace.render.waterfall import _primary_root

    top = _primary_root(tree)
    head = {
        "trace_id": trace_id,
        "root_name": top.name if top is not None else None,
        "service": top.span.service if top is not None else None,
        "start": format_time(tree.origin_ns),
        "duration_ms": _ms(tree.duration_ns),
        "span_count": tree.span_count,
        "error_count": tree.error_count,
        "agents": agents,
    }
    if extra:
        head.update(extra)
    head["problems"] = list(tree.problems) + list(problems)
    text = orjson.dumps(head, option=_OPTS, default=str).decode()
    out.write(text[: text.rfind("\n")])
    if len(tops) == 1:
        # A single top node: write the array and unwrap it.
        import io

        buf = io.StringIO()
        write_nodes(buf, tops, origin, critical, 0, max_depth)
        inner = buf.getvalue()
        inner = inner[2:-2]  # strip "[\n" and "\n]"
        out.write(',\n  "root": ' + inner.lstrip() + "\n}\n")
    else:
        out.write(',\n  "roots": ')
        write_nodes(out, tops, origin, critical, 1, max_depth)
        out.write("\n}\n")
