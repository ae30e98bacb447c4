"""One model of agent semantics, derived per span at load time.

Frameworks disagree on how they say "this span is an agent / a tool call / an
LLM call / a decision". This module maps the conventions of OpenTelemetry
GenAI, OpenInference, Traceloop (OpenLLMetry), Monocle and the
hand-instrumented style of agtrace's samples onto one set of fields, so that
`--by agent` and `type = "tool"` mean the same thing whatever produced the
spans. The original attributes are only read, never changed: they stay
queryable as exported.

Precedence, first match wins (an explicit statement beats a guess):

1. a decision: attribute `decision_type`, or a name like `agent.decision_point`
   / `approval_decision` (hand-instrumented style);
2. an explicit span-type attribute: `gen_ai.operation.name` (GenAI),
   `openinference.span.kind` (OpenInference), `traceloop.span.kind`
   (Traceloop), `span.type` (Monocle); custom values are classified by the
   words they contain (`call_llm` -> llm);
3. the span name: `tool.X`, `X_agent.invoke`, `execute_tool X`,
   `invoke_agent X`, `chat X`, `llm.X`, `retrieve...`, `...workflow`;
4. attributes that only one kind of span carries: `gen_ai.tool.name`,
   model / provider attributes (llm), `tool.name`.

`derive()` is called once per span on the load path, so it does dictionary
lookups and cheap string tests only; custom values are classified once and
memoised.
"""

from __future__ import annotations

import re
from functools import lru_cache

TYPES = ("agent", "tool", "llm", "retrieval", "decision", "workflow", "other")

# OpenTelemetry GenAI `gen_ai.operation.name` (well-known values; any-agent's
# `call_llm` and other custom values go through _classify_word).
_GENAI_OPERATION = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "embeddings": "llm",
    "completion": "llm", "call_llm": "llm",
    "retrieval": "retrieval",
    "execute_tool": "tool",
    "create_agent": "agent", "invoke_agent": "agent",
    "invoke_workflow": "workflow",
}
# OpenInference `openinference.span.kind` (upper case in the spec).
_OPENINFERENCE_KIND = {
    "LLM": "llm", "EMBEDDING": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "workflow",
    "RETRIEVER": "retrieval", "RERANKER": "retrieval",
    "GUARDRAIL": "other", "EVALUATOR": "other", "PROMPT": "other", "UNKNOWN": None,
}
# Traceloop / OpenLLMetry `traceloop.span.kind` (LLM calls carry `llm.request.type`).
_TRACELOOP_KIND = {"workflow": "workflow", "agent": "agent", "tool": "tool", "task": "other", "llm": "llm", "unknown": None}
# Monocle `span.type`.
_MONOCLE_TYPE = {
    "workflow": "workflow", "agentic.request": "workflow", "agentic.turn": "workflow",
    "agentic.invocation": "agent",
    "agentic.delegation": "decision",
    "agentic.tool.invocation": "tool", "agentic.mcp.invocation": "tool",
    "inference": "llm", "inference.framework": "llm", "embedding": "llm",
    # the provider API call inside a framework's inference span: counted once, as the framework's
    "inference.modelapi": "other", "embedding.modelapi": "other",
    "retrieval": "retrieval", "retrieval.embedding": "retrieval",
    "generic": "other", "http.process": "other", "http.send": "other", "custom": "other",
}

_AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name", "agent_name")
_AGENT_SPAN_RE = re.compile(r"^(?:invoke_agent|create_agent)\s+\[?(.+?)\]?\s*$")
_AGENT_INVOKE_RE = re.compile(r"^([\w.-]*agent)\.(?:invoke|run|execute)$", re.IGNORECASE)
_DECISION_NAME_RE = re.compile(r"(?:^|[._])decision(?:_point)?$|decision_point", re.IGNORECASE)
_BARE_AGENT_NAMES = frozenset({"invoke_agent", "create_agent", "agent", "agent.invoke", "agent.run"})
_MODEL_KEYS = (
    "gen_ai.response.model", "gen_ai.request.model", "llm.model_name",
    "llm.response.model", "llm.request.model", "model", "model_name",
)
_INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
    "llm.usage.prompt_tokens", "input_tokens", "prompt_tokens",
)
_OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
    "llm.usage.completion_tokens", "output_tokens", "completion_tokens",
)
_SESSION_KEYS = (
    "session.id", "gen_ai.conversation.id", "session_id", "conversation.id",
    "traceloop.association.properties.session_id", "scope.agentic.session", "langfuse.session.id",
)
# Attributes whose presence alone says "this is an LLM call" (no stronger signal given).
_LLM_HINT_KEYS = ("gen_ai.request.model", "llm.model_name", "llm.request.type", "gen_ai.system", "gen_ai.provider.name")
# Monocle numbers its entities entity.1.*, entity.2.*, ...
_ENTITY_KEYS = tuple((f"entity.{i}.type", f"entity.{i}.name") for i in range(1, 5))


def _first(attrs: dict, keys) -> object:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


def _as_int(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                f = float(v)
            except ValueError:
                return None
            return int(f) if f == f and f not in (float("inf"), float("-inf")) else None
    return None


@lru_cache(maxsize=1024)
def _classify_word(value: str) -> str | None:
    """Type of a custom span-kind / operation value, from the words it contains."""
    v = value.lower()
    if "decision" in v or "handoff" in v or "delegat" in v or "routing" in v:
        return "decision"
    if "tool" in v or "function_call" in v:
        return "tool"
    if "agent" in v:
        return "agent"
    if "retriev" in v or "rerank" in v or "search" in v:
        return "retrieval"
    if "llm" in v or "chat" in v or "completion" in v or "generat" in v or "embed" in v or "inference" in v:
        return "llm"
    if "workflow" in v or "chain" in v or "pipeline" in v:
        return "workflow"
    return None


def _declared_type(attrs: dict) -> str | None:
    """The type a convention's span-type attribute states, or None."""
    op = attrs.get("gen_ai.operation.name")
    if op is not None and isinstance(op, str) and op:
        t = _GENAI_OPERATION.get(op)
        if t is None:
            t = _classify_word(op)
        if t:
            return t
    kind = attrs.get("openinference.span.kind")
    if kind is not None and isinstance(kind, str) and kind:
        up = kind.upper()
        if up in _OPENINFERENCE_KIND:
            t = _OPENINFERENCE_KIND[up]
        else:
            t = _classify_word(kind)
        if t:
            return t
    kind = attrs.get("traceloop.span.kind")
    if kind is not None and isinstance(kind, str) and kind:
        low = kind.lower()
        t = _TRACELOOP_KIND[low] if low in _TRACELOOP_KIND else _classify_word(kind)
        if t:
            return t
    kind = attrs.get("span.type")
    if kind is not None and isinstance(kind, str) and kind:
        t = _MONOCLE_TYPE.get(kind)
        if t:
            return t
    return None


def span_type(name: str, attrs: dict) -> str:
    """The normalised span type (see TYPES), first matching convention wins."""
    if "decision_type" in attrs or _DECISION_NAME_RE.search(name):
        return "decision"
    t = _declared_type(attrs)
    if t:
        return t
    lower = name.lower()
    if lower.startswith(("tool.", "execute_tool", "tool ")) or "gen_ai.tool.name" in attrs:
        return "tool"
    if _AGENT_INVOKE_RE.match(name) or lower.startswith(("invoke_agent", "create_agent", "agent.invoke")):
        return "agent"
    if lower.startswith(("chat ", "llm.", "text_completion", "generate_content", "embeddings")):
        return "llm"
    for k in _LLM_HINT_KEYS:
        if k in attrs:
            return "llm"
    if lower.startswith(("retrieve", "retrieval", "vector_search")):
        return "retrieval"
    if "tool.name" in attrs:
        return "tool"
    if lower.endswith("workflow") or lower.startswith("invoke_workflow"):
        return "workflow"
    return "other"


def _entity(attrs: dict, prefix: str) -> str | None:
    """Name of the first Monocle entity whose type starts with `prefix`."""
    for tkey, nkey in _ENTITY_KEYS:
        t = attrs.get(tkey)
        if t is None:
            if nkey not in attrs:
                return None
            continue
        if isinstance(t, str) and t.startswith(prefix):
            n = attrs.get(nkey)
            if isinstance(n, str) and n:
                return n
    return None


def own_agent(name: str, attrs: dict, typ: str | None = None) -> str | None:
    """The agent a span itself names (descendants inherit it at load time)."""
    v = _first(attrs, _AGENT_NAME_KEYS)
    if isinstance(v, str):
        return v
    if "traceloop.span.kind" in attrs and attrs["traceloop.span.kind"] == "agent":
        v = attrs.get("traceloop.entity.name")
        if isinstance(v, str) and v:
            return v
    if "span.type" in attrs:
        st = attrs["span.type"]
        if st == "agentic.delegation":
            v = attrs.get("entity.1.from_agent")
            if isinstance(v, str) and v:
                return v
        v = _entity(attrs, "agent")
        if v:
            return v
    m = _AGENT_SPAN_RE.match(name)
    if m:
        return m.group(1).strip()
    m = _AGENT_INVOKE_RE.match(name)
    if m:
        return m.group(1)
    if typ is None:
        typ = span_type(name, attrs)
    if typ == "agent":
        v = attrs.get("gen_ai.agent.id")
        if v is not None and v != "":
            return str(v)
        if name and name.lower() not in _BARE_AGENT_NAMES:
            return name  # an agent span that names no agent: its own name is the best identity
    return None


def _model(attrs: dict) -> str | None:
    v = _first(attrs, _MODEL_KEYS)
    if isinstance(v, str):
        return v
    if "span.type" in attrs:
        return _entity(attrs, "model.")
    return None


_EVENT_INPUT_KEYS = ("prompt_tokens", "input_tokens", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_EVENT_OUTPUT_KEYS = ("completion_tokens", "output_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")


def _event_tokens(events) -> tuple[int | None, int | None]:
    """Token usage recorded on an event (Monocle's `metadata` event)."""
    for ev in events:
        a = ev.get("attributes") if isinstance(ev, dict) else None
        if not a:
            continue
        i = _as_int(_first(a, _EVENT_INPUT_KEYS))
        o = _as_int(_first(a, _EVENT_OUTPUT_KEYS))
        if i is not None or o is not None:
            return i, o
    return None, None


def derive(name: str, attrs: dict, events: list | None = None) -> tuple:
    """(own_agent, type, model, input_tokens, output_tokens, session) for one span.

    `events` (items {name, time_ns, attributes}) is consulted only for token
    usage that a span does not carry as attributes.
    """
    typ = span_type(name, attrs)
    in_tok = _as_int(_first(attrs, _INPUT_TOKEN_KEYS))
    out_tok = _as_int(_first(attrs, _OUTPUT_TOKEN_KEYS))
    if in_tok is None and out_tok is None and events:
        in_tok, out_tok = _event_tokens(events)
    session = _first(attrs, _SESSION_KEYS)
    return (
        own_agent(name, attrs, typ),
        typ,
        _model(attrs),
        in_tok,
        out_tok,
        str(session) if session is not None and not isinstance(session, (dict, list)) else None,
    )
