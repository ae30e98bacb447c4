"""The field table: every name the filter language, `--by`, `-c` and `--sort` accept.

One table so that a field means the same thing in a filter, a group-by key,
an output column and a sort key. A field is one of

* an intrinsic span column (`name`, `duration`, `agent`, ...),
* a trace-level column (`trace.duration_ms`, `trace.root_name`, ...),
* a span attribute (`span.x`), a resource attribute (`resource.x`) or an
  unscoped attribute (`x`, `.x`: the span's value, else the resource's),

optionally reached through `parent.` hops (the same field on the parent span).

Name resolution lives here too, with the "did you mean" hints, because a typo
in an intrinsic name (`staus = error`) would otherwise silently become an
attribute that matches nothing.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

# Value kinds of intrinsic and trace columns. They decide how a literal is
# coerced (a number means milliseconds for a duration, an ISO string means a
# time for `start`) and which operators apply.
STRING = "string"  # free text
ID = "id"  # lowercase hex ids: literals are lowercased, bare hex words accepted
ENUM = "enum"  # a small closed vocabulary (status, kind, type)
INT = "int"  # counts and depths
DURATION = "duration"  # nanoseconds in the store; numbers mean ms, units allowed
TIME = "time"  # epoch nanoseconds; compared with ISO-8601 strings
BOOL = "bool"
LIST = "list"  # a VARCHAR[] column (trace.agents): matches when any element does

STATUS_VALUES = ("error", "ok", "unset")
KIND_VALUES = ("unspecified", "internal", "server", "client", "producer", "consumer")
TYPE_VALUES = ("agent", "tool", "llm", "retrieval", "decision", "workflow", "other")


@dataclass(frozen=True)
class Column:
    """An intrinsic or trace-level field backed by one column.

    `column` is the stored column; `display` is the value shown for `-c` and
    used for `--by` (a template over the table alias `{a}`); `numeric` is the
    number used by numeric aggregates (durations in milliseconds, like the
    language's bare numbers; times in epoch nanoseconds).
    """

    name: str
    column: str
    kind: str
    doc: str
    display: str = ""
    numeric: str | None = None
    values: tuple[str, ...] = ()
    validate: bool = False  # reject literals outside `values` (status, kind)

    def display_sql(self, alias: str) -> str:
        return (self.display or "{a}." + self.column).format(a=alias)

    def numeric_sql(self, alias: str) -> str:
        if self.numeric is not None:
            return self.numeric.format(a=alias)
        if self.kind in (INT,):
            return f"{alias}.{self.column}"
        if self.kind == DURATION:
            return f"{alias}.{self.column} / 1e6"
        if self.kind == TIME:
            return f"{alias}.{self.column}"
        if self.kind == BOOL:
            return f"CAST({alias}.{self.column} AS INTEGER)"
        if self.kind == LIST:
            return f"CAST(len({alias}.{self.column}) AS DOUBLE)"
        return f"TRY_CAST({alias}.{self.column} AS DOUBLE)"


def _c(name, column, kind, doc, **kw) -> Column:
    return Column(name, column, kind, doc, **kw)


INTRINSICS: dict[str, Column] = {c.name: c for c in (
    _c("name", "name", STRING, "span name"),
    _c("trace_id", "trace_id", ID, "trace id (lowercase hex)"),
    _c("span_id", "span_id", ID, "span id (lowercase hex)"),
    _c("parent_span_id", "parent_span_id", ID, "parent span id; missing for a root"),
    _c("service", "service", STRING, "service.name of the span's resource"),
    _c("kind", "kind", ENUM, "span kind", values=KIND_VALUES, validate=True),
    _c("status", "status", ENUM, "status code: error, ok or unset", values=STATUS_VALUES, validate=True),
    _c("status_message", "status_message", STRING, "status description"),
    _c("duration", "duration_ns", DURATION, "duration; a bare number means milliseconds"),
    _c("duration_ms", "duration_ns", DURATION, "duration in milliseconds", display="{a}.duration_ns / 1e6"),
    _c("start", "start_ns", TIME, "start time (compare with ISO-8601 strings)"),
    _c("end", "end_ns", TIME, "end time (compare with ISO-8601 strings)"),
    _c("agent", "agent", STRING, "acting agent (inherited from ancestors)"),
    _c("type", "type", ENUM, "span type as agtrace derives it", values=TYPE_VALUES),
    _c("depth", "depth", INT, "0 for a root, parent's depth + 1 below"),
    _c("is_root", "is_root", BOOL, "true for spans without a parent"),
    _c("model", "model", STRING, "model name (gen_ai.request.model and similar)"),
    _c("input_tokens", "input_tokens", INT, "input tokens"),
    _c("output_tokens", "output_tokens", INT, "output tokens"),
    _c("session", "session", STRING, "session / conversation id"),
)}

# Alternative spellings of intrinsics.
ALIASES: dict[str, str] = {"timestamp": "start"}

TRACE_FIELDS: dict[str, Column] = {c.name: c for c in (
    _c("duration", "duration_ns", DURATION, "trace duration; a bare number means milliseconds"),
    _c("duration_ms", "duration_ns", DURATION, "trace duration in milliseconds", display="{a}.duration_ns / 1e6"),
    _c("root_name", "root_name", STRING, "name of the root span"),
    _c("root_span_id", "root_span_id", ID, "span id of the root span"),
    _c("service", "service", STRING, "service of the root span"),
    _c("start", "start_ns", TIME, "trace start time"),
    _c("end", "end_ns", TIME, "trace end time"),
    _c("span_count", "span_count", INT, "number of spans in the trace"),
    _c("error_count", "error_count", INT, "number of error spans in the trace"),
    _c("root_count", "root_count", INT, "number of root spans (more than 1: a broken trace)"),
    _c("agents", "agents", LIST, "agents acting in the trace; matches when any does"),
)}

SCOPES = ("span", "resource", "trace", "parent")

# Field kinds of a resolved field reference.
INTRINSIC = "intrinsic"
TRACE = "trace"
SPAN_ATTR = "span"
RESOURCE_ATTR = "resource"
ANY_ATTR = "attr"  # unscoped: the span attribute, else the resource attribute


@dataclass(frozen=True)
class Field:
    """A resolved field reference.

    `scope` is one of intrinsic / trace / span / resource / attr; `name` is the
    intrinsic's canonical name or the attribute key; `up` counts `parent.`
    hops. `text` and `pos` (1-based column) say where it was written and do
    not take part in equality.
    """

    scope: str
    name: str
    up: int = 0
    text: str = field(default="", compare=False)
    pos: int = field(default=0, compare=False)

    @property
    def column(self) -> Column | None:
        if self.scope == INTRINSIC:
            return INTRINSICS[self.name]
        if self.scope == TRACE:
            return TRACE_FIELDS[self.name]
        return None

    @property
    def is_attribute(self) -> bool:
        return self.scope in (SPAN_ATTR, RESOURCE_ATTR, ANY_ATTR)

    def label(self) -> str:
        """The canonical way to write this field (used for headers and by to_text)."""
        return "parent." * self.up + _base_label(self.scope, self.name, self.up > 0)


def _base_label(scope: str, name: str, after_parent: bool = False) -> str:
    if scope == INTRINSIC:
        return name
    if scope == TRACE:
        return "trace." + name
    key = name if _plain_key(name) else _quote(name)
    if scope == SPAN_ATTR:
        return "span." + key
    if scope == RESOURCE_ATTR:
        return "resource." + key
    # unscoped: written bare when that reads back as the same attribute
    if _plain_key(name) and "." in name and name.split(".", 1)[0] not in SCOPES:
        return name
    if _plain_key(name) and "." not in name and name not in INTRINSICS and name not in ALIASES \
            and name.lower() not in _RESERVED and intrinsic_typo(name) is None:
        return name
    # `parent."name"`: a quoted name is never an intrinsic or a scope
    return _quote(name) if after_parent else "." + key


# Words that cannot be a bare field name (they are keywords of the language).
_RESERVED = {
    "and", "or", "not", "in", "contains", "startswith", "endswith", "exists", "true", "false",
    "nil", "null", "has_parent", "has_child", "has_ancestor", "has_descendant",
}


def _plain_key(key: str) -> bool:
    """Whether an attribute key can be written without quotes."""
    if not key:
        return False
    for part in key.split("."):
        if not part or not is_name_start(part[0]):
            return False
        if not all(is_name_char(ch) for ch in part):
            return False
    return True


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_name_start(ch: str) -> bool:
    return ch == "_" or ch.isalpha()


def is_name_char(ch: str) -> bool:
    return ch in "_-" or ch.isalnum()


class FieldNameError(Exception):
    """Raised by `resolve`; the parser turns it into an ExpressionError."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def resolve(parts: list[tuple[str, bool]], leading_dot: bool = False, *, text: str = "", pos: int = 0) -> Field:
    """Resolve the dotted parts of a field name (each `(text, quoted)`).

    `name` -> intrinsic (or an attribute); `span.x`, `resource.x`,
    `trace.x`, `parent.x`; a leading dot (`.x`) is TraceQL's unscoped
    attribute, never an intrinsic.
    """
    up = 0
    while len(parts) > 1 and not parts[0][1] and parts[0][0] == "parent" and not leading_dot:
        up += 1
        parts = parts[1:]
    prefix = "parent." * up
    if leading_dot:
        key = ".".join(p for p, _ in parts)
        return Field(ANY_ATTR, _nonempty(key, "."), up, text, pos)
    head, head_quoted = parts[0]
    rest = parts[1:]
    if not head_quoted and rest and head in ("span", "resource"):
        key = ".".join(p for p, _ in rest)
        return Field(SPAN_ATTR if head == "span" else RESOURCE_ATTR, _nonempty(key, head + "."), up, text, pos)
    if not head_quoted and rest and head == "trace":
        key = ".".join(p for p, _ in rest)
        if key in TRACE_FIELDS:
            return Field(TRACE, key, up, text, pos)
        raise FieldNameError(f"unknown trace field '{prefix}trace.{key}'", hint=_trace_hint(key))
    if len(parts) == 1 and not head_quoted:
        name = ALIASES.get(head, head)
        if name in INTRINSICS:
            return Field(INTRINSIC, name, up, text, pos)
        guess = intrinsic_typo(head)
        if guess is not None:
            what = f"{prefix}{head}"
            raise FieldNameError(
                f"unknown field '{what}'",
                hint=f"did you mean {prefix}{guess}? (for an attribute with this name, write {prefix}span.{head})",
            )
    key = ".".join(p for p, _ in parts)
    return Field(ANY_ATTR, _nonempty(key, ""), up, text, pos)


def _nonempty(key: str, after: str) -> str:
    if key == "":
        raise FieldNameError(f"expected an attribute name after '{after}'" if after else "empty attribute name")
    return key


def _trace_hint(key: str) -> str:
    close = difflib.get_close_matches(key, list(TRACE_FIELDS), n=1, cutoff=0.6)
    if close:
        return f"did you mean trace.{close[0]}?"
    return "trace fields: " + ", ".join("trace." + n for n in TRACE_FIELDS)


def intrinsic_typo(name: str) -> str | None:
    """The intrinsic `name` is most likely a misspelling of, or None.

    A typo is a case difference, or one edit (two for names longer than eight
    letters; none for names of three letters or fewer) that is not a plain
    extension or truncation: `staus`, `nmae`, `spanid` are typos of an
    intrinsic, while `agents`, `session_id`, `state` and `mode` are plausible
    attribute names and stay attributes.
    """
    low = name.lower()
    if low in INTRINSICS or low in ALIASES:
        return ALIASES.get(low, low) if low != name else None
    best = None
    for cand in list(INTRINSICS) + list(ALIASES):
        if low.startswith(cand) or cand.startswith(low):
            continue
        limit = 0 if len(cand) <= 3 else 1 if len(cand) <= 8 else 2
        d = _osa_distance(low, cand, limit)
        if d <= limit and (best is None or d < best[0]):
            best = (d, ALIASES.get(cand, cand))
    return best[1] if best else None


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment edit distance (adjacent swaps count as one)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def field_names() -> list[str]:
    """Every intrinsic and trace field name, for help texts and completion."""
    return list(INTRINSICS) + list(ALIASES) + ["trace." + n for n in TRACE_FIELDS]
