"""One model of agent semantics, derived per span at load time.

Frameworks disagree on how they say "this span is an agent / a tool call / an
LLM call / a decision". This module maps the conventions of OpenTelemetry GenAI,
OpenInference, Traceloop and the hand-instrumented style of agtrace's samples
onto one set of fields, so that `--by agent` and `type = "tool"` mean the same
thing whatever produced the spans. The original attributes stay untouched.

`derive()` is called once per span on the load path, so it does dictionary
lookups and cheap string tests only.
"""

from __future__ import annotations

import re

TYPES = ("agent", "tool", "llm", "retrieval", "decision", "workflow", "other")

_GENAI_OPERATION = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "embeddings": "llm",
    "completion": "llm",
    "retrieval": "retrieval",
    "execute_tool": "tool",
    "create_agent": "agent", "invoke_agent": "agent",
    "invoke_workflow": "workflow",
}
_OPENINFERENCE_KIND = {
    "LLM": "llm", "EMBEDDING": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "workflow",
    "RETRIEVER": "retrieval", "RERANKER": "retrieval",
}
_TRACELOOP_KIND = {"workflow": "workflow", "agent": "agent", "tool": "tool", "task": "other", "llm": "llm"}

_AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name", "agent_name")
_AGENT_SPAN_RE = re.compile(r"^(?:invoke_agent|create_agent)\s+(.+)$")
_AGENT_INVOKE_RE = re.compile(r"^([\w.-]*agent)\.(?:invoke|run|execute)$", re.IGNORECASE)
_DECISION_NAME_RE = re.compile(r"(?:^|[._])decision(?:_point)?$|decision_point", re.IGNORECASE)
_MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "model", "model_name")
_INPUT_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens")
_OUTPUT_TOKEN_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens")
_SESSION_KEYS = ("session.id", "gen_ai.conversation.id", "session_id", "conversation.id")


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
        return int(v)
    if isinstance(v, str):
        try:
            return int(float(v))
        except ValueError:
            return None
    return None


def span_type(name: str, attrs: dict) -> str:
    """The normalised span type (see TYPES), first matching convention wins."""
    if "decision_type" in attrs or _DECISION_NAME_RE.search(name):
        return "decision"
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op in _GENAI_OPERATION:
        return _GENAI_OPERATION[op]
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str):
        t = _OPENINFERENCE_KIND.get(kind.upper())
        if t:
            return t
    kind = attrs.get("traceloop.span.kind")
    if isinstance(kind, str) and kind.lower() in _TRACELOOP_KIND:
        return _TRACELOOP_KIND[kind.lower()]
    lower = name.lower()
    if lower.startswith(("tool.", "execute_tool", "tool ")) or "gen_ai.tool.name" in attrs:
        return "tool"
    if _AGENT_INVOKE_RE.match(name) or lower.startswith(("invoke_agent", "create_agent", "agent.invoke")):
        return "agent"
    if lower.startswith(("chat ", "llm.", "text_completion", "generate_content", "embeddings")) or (
        "gen_ai.request.model" in attrs or "llm.model_name" in attrs
    ):
        return "llm"
    if lower.startswith(("retrieve", "retrieval", "vector_search")):
        return "retrieval"
    if "tool.name" in attrs:
        return "tool"
    if lower.endswith("workflow") or lower.startswith("invoke_workflow"):
        return "workflow"
    return "other"


def own_agent(name: str, attrs: dict) -> str | None:
    """The agent a span itself names (descendants inherit it at load time)."""
    v = _first(attrs, _AGENT_NAME_KEYS)
    if isinstance(v, str):
        return v
    m = _AGENT_SPAN_RE.match(name)
    if m:
        return m.group(1).strip()
    m = _AGENT_INVOKE_RE.match(name)
    if m:
        return m.group(1)
    return None


def derive(name: str, attrs: dict) -> tuple:
    """(own_agent, type, model, input_tokens, output_tokens, session) for one span."""
    model = _first(attrs, _MODEL_KEYS)
    session = _first(attrs, _SESSION_KEYS)
    return (
        own_agent(name, attrs),
        span_type(name, attrs),
        model if isinstance(model, str) else None,
        _as_int(_first(attrs, _INPUT_TOKEN_KEYS)),
        _as_int(_first(attrs, _OUTPUT_TOKEN_KEYS)),
        str(session) if session is not None else None,
    )
