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
   (Traceloop), `span.type` (Monocle), `langsmith.span.kind` (LangSmith),
   `langfuse.observation.type` (Langfuse); custom values are classified by
   the words they contain (`call_llm` -> llm);
3. the span name: `tool.X`, `X_agent.invoke`, `execute_tool X`,
   `invoke_agent X`, `chat X`, `llm.X`, `retrieve...`, `...workflow`;
4. attributes that only one kind of span carries: `gen_ai.tool.name`,
   model / provider attributes (llm), `tool.name`.

`derive()` is called once per span on the load path, so it does dictionary
lookups and cheap string tests only: what a span name says is worked out once
per distinct name, custom values once per value, and one set intersection
finds which of the attributes any rule reads are present (for most
infrastructure spans none are, and the name alone decides).
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
# LangSmith `langsmith.span.kind` and Langfuse `langfuse.observation.type` (lower case).
_LANGSMITH_LANGFUSE_KIND = {
    "llm": "llm", "generation": "llm", "embedding": "llm", "chain": "workflow", "tool": "tool",
    "retriever": "retrieval", "agent": "agent", "prompt": "other", "parser": "other", "span": "other",
    "event": "other", "evaluator": "other", "guardrail": "other",
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


_DECLARED_KEYS = frozenset({"gen_ai.operation.name", "openinference.span.kind", "traceloop.span.kind", "span.type",
                            "langsmith.span.kind", "langfuse.observation.type"})
_LLM_HINTS = frozenset(_LLM_HINT_KEYS)
_AGENT_KEYS = frozenset(_AGENT_NAME_KEYS)
_MODELS = frozenset(_MODEL_KEYS)
_INPUTS = frozenset(_INPUT_TOKEN_KEYS)
_OUTPUTS = frozenset(_OUTPUT_TOKEN_KEYS)
_SESSIONS = frozenset(_SESSION_KEYS)
# Every attribute key any rule reads: a span carrying none of them is typed by its name alone.
_ALL_KEYS = (_DECLARED_KEYS | _LLM_HINTS | _AGENT_KEYS | _MODELS | _INPUTS | _OUTPUTS | _SESSIONS
             | {"decision_type", "gen_ai.tool.name", "tool.name", "gen_ai.agent.id"})
_EMPTY: frozenset = frozenset()

_TOOL_PREFIXES = ("tool.", "execute_tool", "tool ")
_AGENT_PREFIXES = ("invoke_agent", "create_agent", "agent.invoke")
_LLM_PREFIXES = ("chat ", "llm.", "text_completion", "generate_content", "embeddings")
_RETRIEVAL_PREFIXES = ("retrieve", "retrieval", "vector_search")

_NAME_CACHE: dict = {}
_NAME_CACHE_MAX = 100_000


def _name_facts(name: str) -> tuple:
    """(is_decision, type_by_name, agent_by_name, name_as_agent) -- memoised: names repeat."""
    f = _NAME_CACHE.get(name)
    if f is not None:
        return f
    lower = name.lower()
    if lower.startswith(_TOOL_PREFIXES):
        cls = "tool"
    elif _AGENT_INVOKE_RE.match(name) or lower.startswith(_AGENT_PREFIXES):
        cls = "agent"
    elif lower.startswith(_LLM_PREFIXES):
        cls = "llm"
    elif lower.startswith(_RETRIEVAL_PREFIXES):
        cls = "retrieval"
    elif lower.endswith("workflow") or lower.startswith("invoke_workflow"):
        cls = "workflow"
    else:
        cls = None
    m = _AGENT_SPAN_RE.match(name)
    if m:
        agent = m.group(1).strip()
    else:
        m = _AGENT_INVOKE_RE.match(name)
        agent = m.group(1) if m else None
    fallback = name if name and lower not in _BARE_AGENT_NAMES else None
    f = (bool(_DECISION_NAME_RE.search(name)), cls, agent, fallback)
    if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
        _NAME_CACHE.clear()
    _NAME_CACHE[name] = f
    return f


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
    for key in ("langsmith.span.kind", "langfuse.observation.type"):
        kind = attrs.get(key)
        if kind is not None and isinstance(kind, str) and kind:
            low = kind.lower()
            t = _LANGSMITH_LANGFUSE_KIND[low] if low in _LANGSMITH_LANGFUSE_KIND else _classify_word(kind)
            if t:
                return t
    return None


def _type(attrs: dict, facts: tuple, present) -> str:
    decision, cls, _, _ = facts
    if decision or "decision_type" in present:
        return "decision"
    if not _DECLARED_KEYS.isdisjoint(present):
        t = _declared_type(attrs)
        if t:
            return t
    if cls == "tool" or "gen_ai.tool.name" in present:
        return "tool"
    if cls == "agent" or cls == "llm":
        return cls
    if not _LLM_HINTS.isdisjoint(present):
        return "llm"
    if cls == "retrieval":
        return cls
    if "tool.name" in present:
        return "tool"
    return cls or "other"  # "workflow" or nothing


def span_type(name: str, attrs: dict) -> str:
    """The normalised span type (see TYPES), first matching convention wins."""
    return _type(attrs, _name_facts(name), _ALL_KEYS.intersection(attrs) if attrs else _EMPTY)


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


def _agent(attrs: dict, facts: tuple, present, typ: str) -> str | None:
    if not _AGENT_KEYS.isdisjoint(present):
        v = _first(attrs, _AGENT_NAME_KEYS)
        if isinstance(v, str):
            return v
    if "traceloop.span.kind" in present and attrs["traceloop.span.kind"] == "agent":
        v = attrs.get("traceloop.entity.name")
        if isinstance(v, str) and v:
            return v
    if "span.type" in present:
        if attrs["span.type"] == "agentic.delegation":
            v = attrs.get("entity.1.from_agent")
            if isinstance(v, str) and v:
                return v
        v = _entity(attrs, "agent")
        if v:
            return v
    if facts[2]:
        return facts[2]
    if typ == "agent":
        if "gen_ai.agent.id" in present:
            v = attrs["gen_ai.agent.id"]
            if v is not None and v != "":
                return str(v)
        return facts[3]  # an agent span that names no agent: its own name is the best identity
    return None


def own_agent(name: str, attrs: dict, typ: str | None = None) -> str | None:
    """The agent a span itself names (descendants inherit it at load time)."""
    facts = _name_facts(name)
    present = _ALL_KEYS.intersection(attrs) if attrs else _EMPTY
    return _agent(attrs, facts, present, typ or _type(attrs, facts, present))


_EVENT_INPUT_KEYS = ("prompt_tokens", "input_tokens", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_EVENT_OUTPUT_KEYS = ("completion_tokens", "output_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")


def _event_tokens(events) -> tuple[int | None, int | None]:
    """Token usage recorded on an event (Monocle's `metadata` event)."""
    for ev in events:
        a = ev.get("attributes") if isinstance(ev, dict) else None
        if not a or not isinstance(a, dict):
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
    facts = _name_facts(name)
    present = _ALL_KEYS.intersection(attrs) if attrs else _EMPTY
    typ = _type(attrs, facts, present)
    agent = _agent(attrs, facts, present, typ)
    if not present:  # the common case for infrastructure spans: nothing more to find
        if events:
            i, o = _event_tokens(events)
            return agent, typ, None, i, o, None
        return agent, typ, None, None, None, None
    model = None
    if not _MODELS.isdisjoint(present):
        v = _first(attrs, _MODEL_KEYS)
        if isinstance(v, str):
            model = v
    if model is None and "span.type" in present:
        model = _entity(attrs, "model.")
    in_tok = _as_int(_first(attrs, _INPUT_TOKEN_KEYS)) if not _INPUTS.isdisjoint(present) else None
    out_tok = _as_int(_first(attrs, _OUTPUT_TOKEN_KEYS)) if not _OUTPUTS.isdisjoint(present) else None
    if in_tok is None and out_tok is None and events:
        in_tok, out_tok = _event_tokens(events)
    session = None
    if not _SESSIONS.isdisjoint(present):
        v = _first(attrs, _SESSION_KEYS)
        if v is not None and not isinstance(v, (dict, list)):
            session = str(v)
    return agent, typ, model, in_tok, out_tok, session


def derive_keys() -> frozenset:
    """Every attribute key `derive` reads: a span's other attributes cannot
    change its result, so a columnar reader hands over only these."""
    extra = {"traceloop.entity.name", "entity.1.from_agent"}
    extra.update(k for pair in _ENTITY_KEYS for k in pair)
    return _ALL_KEYS | extra


# The token rules, for readers that read token counts apart from the rest.
INPUT_TOKEN_KEYS = _INPUT_TOKEN_KEYS
OUTPUT_TOKEN_KEYS = _OUTPUT_TOKEN_KEYS
as_int = _as_int
first_value = _first
