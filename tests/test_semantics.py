"""Agent semantics: every convention maps onto agent / type / model / tokens / session.

`derive(name, attrs, events=None)` -> (own_agent, type, model, input_tokens,
output_tokens, session); one block of tests per convention, then precedence,
value quirks and the load path (inheritance, original attributes kept).
"""

from __future__ import annotations

import copy

import pytest

from agtrace.ingest import load_paths
from agtrace.ingest.semantics import TYPES, derive, span_type
from agtrace.store import Store


def d(name, attrs=None, events=None):
    return derive(name, attrs or {}, events)


# -- OpenTelemetry GenAI -----------------------------------------------------

@pytest.mark.parametrize("op, expected", [
    ("chat", "llm"), ("text_completion", "llm"), ("generate_content", "llm"), ("embeddings", "llm"),
    ("retrieval", "retrieval"), ("execute_tool", "tool"), ("create_agent", "agent"),
    ("invoke_agent", "agent"), ("invoke_workflow", "workflow"),
    ("call_llm", "llm"),            # any-agent's custom value
    ("plan_handoff", "decision"),   # custom values are classified by their words
    ("run_tool_batch", "tool"), ("vector_search", "retrieval"), ("frobnicate", "other"),
])
def test_genai_operation_names(op, expected):
    assert span_type("x", {"gen_ai.operation.name": op}) == expected


def test_genai_agent_span_names_its_agent():
    assert d("invoke_agent triage-agent", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage-agent",
                                            "gen_ai.provider.name": "example-ai"}) == (
        "triage-agent", "agent", None, None, None, None)
    # The name alone is enough (span name convention `invoke_agent {agent}`), brackets dropped.
    assert d("invoke_agent [any_agent]")[:2] == ("any_agent", "agent")
    assert d("invoke_agent", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "asst_42"})[:2] == ("asst_42", "agent")


def test_genai_chat_model_and_usage_current_and_older_names():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
             "gen_ai.usage.input_tokens": 1840, "gen_ai.usage.output_tokens": 260, "gen_ai.conversation.id": "conv-7"}
    assert d("chat gpt-4o", attrs) == (None, "llm", "gpt-4o-2024-08-06", 1840, 260, "conv-7")
    older = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo",
             "gen_ai.usage.prompt_tokens": 12, "gen_ai.usage.completion_tokens": 3}
    assert d("openai.chat", older) == (None, "llm", "gpt-3.5-turbo", 12, 3, None)
    # gen_ai.system alone still says "an LLM call".
    assert d("openai.chat", {"gen_ai.system": "openai"})[1] == "llm"


def test_genai_tool_span():
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "list_dashboards",
             "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": '{"window":"1h"}'}
    assert d("execute_tool list_dashboards", attrs) == (None, "tool", None, None, None, None)
    assert d("lookup", {"gen_ai.tool.name": "lookup"})[1] == "tool"  # no operation name: the tool attribute


# -- OpenInference -----------------------------------------------------------

@pytest.mark.parametrize("kind, expected", [
    ("LLM", "llm"), ("EMBEDDING", "llm"), ("CHAIN", "workflow"), ("RETRIEVER", "retrieval"),
    ("RERANKER", "retrieval"), ("TOOL", "tool"), ("AGENT", "agent"), ("GUARDRAIL", "other"),
    ("EVALUATOR", "other"), ("PROMPT", "other"), ("llm", "llm"), ("SUB_AGENT", "agent"),
])
def test_openinference_span_kinds(kind, expected):
    assert span_type("x", {"openinference.span.kind": kind}) == expected


def test_openinference_fields():
    llm = {"openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-sonnet", "llm.token_count.prompt": 900,
           "llm.token_count.completion": 120, "llm.token_count.total": 1020, "session.id": "s-1",
           "llm.input_messages.0.message.role": "user"}
    assert d("ChatAnthropic", llm) == (None, "llm", "claude-3-5-sonnet", 900, 120, "s-1")
    assert d("get_weather", {"openinference.span.kind": "TOOL", "tool.name": "get_weather"})[1] == "tool"
    assert d("researcher", {"openinference.span.kind": "AGENT", "agent.name": "researcher"})[:2] == ("researcher", "agent")
    # An AGENT span that names no agent: the span's own name is its identity.
    assert d("ResearchCrew", {"openinference.span.kind": "AGENT"})[:2] == ("ResearchCrew", "agent")
    assert d("CodeAgent.run", {"openinference.span.kind": "AGENT"})[:2] == ("CodeAgent", "agent")
    assert d("agent", {"openinference.span.kind": "AGENT"})[:2] == (None, "agent")  # a bare word names nobody
    # tool.name without a span kind is still a tool.
    assert d("search", {"tool.name": "search"})[1] == "tool"


# -- Traceloop / OpenLLMetry -------------------------------------------------

@pytest.mark.parametrize("kind, expected", [
    ("workflow", "workflow"), ("task", "other"), ("agent", "agent"), ("tool", "tool"), ("unknown", "other"),
])
def test_traceloop_span_kinds(kind, expected):
    assert span_type("x", {"traceloop.span.kind": kind}) == expected


def test_traceloop_fields():
    agent = {"traceloop.span.kind": "agent", "traceloop.entity.name": "planner",
             "traceloop.association.properties.session_id": "sess-9"}
    assert d("planner.agent", agent) == ("planner", "agent", None, None, None, "sess-9")
    llm = {"llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
           "gen_ai.usage.prompt_tokens": 50, "gen_ai.usage.completion_tokens": 7, "llm.usage.total_tokens": 57}
    assert d("openai.chat", llm) == (None, "llm", "gpt-4o-mini", 50, 7, None)
    # A tool's entity name is not an agent name.
    assert d("fetch.tool", {"traceloop.span.kind": "tool", "traceloop.entity.name": "fetch"})[:2] == (None, "tool")


# -- Monocle -----------------------------------------------------------------

@pytest.mark.parametrize("span_type_value, expected", [
    ("workflow", "workflow"), ("agentic.turn", "workflow"), ("agentic.request", "workflow"),
    ("agentic.invocation", "agent"), ("agentic.delegation", "decision"),
    ("agentic.tool.invocation", "tool"), ("agentic.mcp.invocation", "tool"),
    ("inference", "llm"), ("inference.framework", "llm"), ("inference.modelapi", "other"),
    ("embedding", "llm"), ("retrieval", "retrieval"), ("generic", "other"), ("http.send", "other"),
])
def test_monocle_span_types(span_type_value, expected):
    assert span_type("x", {"span.type": span_type_value}) == expected


def test_monocle_entities_and_metadata_event_tokens():
    agent = {"span.type": "agentic.invocation", "entity.1.type": "agent.langgraph", "entity.1.name": "flight_assistant",
             "scope.agentic.session": "sess-3"}
    assert d("langgraph.graph.state.CompiledStateGraph.ainvoke", agent) == (
        "flight_assistant", "agent", None, None, None, "sess-3")
    tool = {"span.type": "agentic.tool.invocation", "entity.1.name": "book_flight", "entity.1.type": "tool.langgraph",
            "entity.2.name": "flight_assistant", "entity.2.type": "agent.langgraph"}
    assert d("StructuredTool._run", tool)[:2] == ("flight_assistant", "tool")
    inference = {"span.type": "inference.framework", "entity.1.type": "inference.openai",
                 "entity.2.name": "gpt-4o", "entity.2.type": "model.llm.gpt-4o"}
    events = [{"name": "data.input", "time_ns": 1, "attributes": {"input": ["hi"]}},
              {"name": "metadata", "time_ns": 2, "attributes": {"completion_tokens": 15, "prompt_tokens": 269,
                                                                "total_tokens": 284}}]
    assert d("BaseChatModel.ainvoke", inference, events) == (None, "llm", "gpt-4o", 269, 15, None)
    delegation = {"span.type": "agentic.delegation", "entity.1.type": "agent.langgraph",
                  "entity.1.from_agent": "supervisor", "entity.1.to_agent": "hotel_assistant"}
    assert d("transfer_to_hotel_assistant", delegation)[:2] == ("supervisor", "decision")
    # The turn span names an agent type but no agent: no agent.
    assert d("CompiledStateGraph.ainvoke", {"span.type": "agentic.turn", "entity.1.type": "agent.langgraph"})[:2] == (
        None, "workflow")


# -- LangSmith and Langfuse span kinds ---------------------------------------

@pytest.mark.parametrize("key, kind, expected", [
    ("langsmith.span.kind", "llm", "llm"), ("langsmith.span.kind", "chain", "workflow"),
    ("langsmith.span.kind", "tool", "tool"), ("langsmith.span.kind", "retriever", "retrieval"),
    ("langsmith.span.kind", "parser", "other"), ("langfuse.observation.type", "generation", "llm"),
    ("langfuse.observation.type", "agent", "agent"), ("langfuse.observation.type", "span", "other"),
    ("langfuse.observation.type", "GUARDRAIL", "other"),
])
def test_langsmith_and_langfuse_kinds(key, kind, expected):
    assert span_type("step", {key: kind}) == expected


# -- agtrace's hand-instrumented style ---------------------------------------

@pytest.mark.parametrize("name, attrs, expected", [
    ("research_agent.invoke", {}, ("research_agent", "agent")),
    ("escalation_agent.run", {}, ("escalation_agent", "agent")),
    ("tool.web_search", {"tool.name": "web_search"}, (None, "tool")),
    ("tool.kb_search", {"agent_name": "research_agent"}, ("research_agent", "tool")),
    ("agent.decision_point", {"decision_type": "escalate_to_human", "agent_name": "triage_agent"}, ("triage_agent", "decision")),
    ("approval_decision", {}, (None, "decision")),
    ("llm.chat", {"agent_name": "triage_agent", "gen_ai.request.model": "gpt-4o-mini"}, ("triage_agent", "llm")),
    ("customer_inquiry_workflow", {"workflow.name": "customer_inquiry"}, (None, "workflow")),
    ("reasoning_iteration_1", {}, (None, "other")),
    ("sync.wait_for_research", {"sync_point": True}, (None, "other")),
    ("retrieve_documents", {}, (None, "retrieval")),
])
def test_hand_instrumented_style(name, attrs, expected):
    assert d(name, attrs)[:2] == expected


def test_hand_style_tokens_and_model():
    attrs = {"agent_name": "triage_agent", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 888, "gen_ai.usage.output_tokens": 47, "session_id": "cust-17"}
    assert d("llm.chat", attrs) == ("triage_agent", "llm", "gpt-4o-mini", 888, 47, "cust-17")


# -- precedence and value quirks ---------------------------------------------

def test_precedence():
    # A decision statement beats the operation name; a declared type beats the span name.
    assert span_type("execute_tool x", {"decision_type": "route", "gen_ai.operation.name": "execute_tool"}) == "decision"
    assert span_type("tool.search", {"gen_ai.operation.name": "chat"}) == "llm"
    assert span_type("tool.search", {"openinference.span.kind": "RETRIEVER"}) == "retrieval"
    # GenAI before OpenInference before Traceloop before Monocle.
    both = {"gen_ai.operation.name": "execute_tool", "openinference.span.kind": "LLM",
            "traceloop.span.kind": "agent", "span.type": "workflow"}
    assert span_type("x", both) == "tool"
    assert span_type("x", {"openinference.span.kind": "LLM", "traceloop.span.kind": "agent"}) == "llm"
    assert span_type("x", {"traceloop.span.kind": "agent", "span.type": "workflow"}) == "agent"
    # An explicit agent attribute beats a name-derived one.
    assert d("invoke_agent a", {"gen_ai.agent.name": "b"})[0] == "b"
    assert d("x_agent.invoke", {"agent_name": "y"})[0] == "y"


def test_token_and_session_values():
    assert d("chat", {"gen_ai.usage.input_tokens": "42", "gen_ai.usage.output_tokens": "7.0"})[3:5] == (42, 7)
    assert d("chat", {"gen_ai.usage.input_tokens": True, "gen_ai.usage.output_tokens": "many"})[3:5] == (None, None)
    assert d("chat", {"gen_ai.usage.input_tokens": float("nan"), "gen_ai.usage.output_tokens": 3.9})[3:5] == (None, 3)
    assert d("x", {"session.id": 12345})[5] == "12345"
    assert d("x", {"session.id": ""})[5] is None
    assert d("x", {"session.id": {"a": 1}})[5] is None
    assert d("x", {"gen_ai.request.model": 5})[2] is None  # a model is text
    # Event tokens are only a fallback.
    ev = [{"name": "metadata", "time_ns": 1, "attributes": {"prompt_tokens": 1, "completion_tokens": 2}}]
    assert d("x", {"gen_ai.usage.input_tokens": 10}, ev)[3:5] == (10, None)


def test_every_result_type_is_known_and_attributes_are_not_touched():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "5", "span.type": "generic",
             "entity.1.type": "agent.x", "entity.1.name": "a", "nested": {"k": [1, 2]}}
    before = copy.deepcopy(attrs)
    result = d("chat m", attrs, [{"name": "metadata", "time_ns": 1, "attributes": {"prompt_tokens": 1}}])
    assert attrs == before
    assert result[1] in TYPES
    for name in ("", "x", "tool.", "agent", "invoke_agent"):
        assert d(name)[1] in TYPES


# -- on the load path ---------------------------------------------------------

def _kv(k, v):
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def test_load_normalises_each_convention_and_agents_are_inherited(tmp_path):
    import orjson

    T = "0af7651916cd43dd8448eb211c80319c"
    base = 1_705_312_800_000_000_000

    def span(sid, parent, name, attrs, i):
        sp = {"traceId": T, "spanId": sid, "name": name, "kind": 1, "startTimeUnixNano": str(base + i * 1000),
              "endTimeUnixNano": str(base + i * 1000 + 500), "attributes": [_kv(k, v) for k, v in attrs.items()]}
        if parent:
            sp["parentSpanId"] = parent
        return sp

    spans = [
        span("1000000000000001", None, "workflow", {"traceloop.span.kind": "workflow"}, 0),
        span("1000000000000002", "1000000000000001", "invoke_agent planner",
             {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "gen_ai.conversation.id": "c-1"}, 1),
        span("1000000000000003", "1000000000000002", "ChatOpenAI",
             {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.token_count.prompt": 100,
              "llm.token_count.completion": 20}, 2),
        span("1000000000000004", "1000000000000002", "writer_agent.invoke", {}, 3),
        span("1000000000000005", "1000000000000004", "tool.save", {"tool.name": "save"}, 4),
        span("1000000000000006", "1000000000000004", "agent.decision_point", {"decision_type": "done"}, 5),
    ]
    f = tmp_path / "mixed.json"
    f.write_bytes(orjson.dumps({"resourceSpans": [{"resource": {"attributes": [_kv("service.name", "s")]},
                                                  "scopeSpans": [{"spans": spans}]}]}))
    store = Store.memory()
    load_paths(store, [str(f)])
    got = store.con.execute(
        "SELECT name, agent, type, model, input_tokens, output_tokens, session FROM spans ORDER BY span_id").fetchall()
    assert got == [
        ("workflow", None, "workflow", None, None, None, None),
        ("invoke_agent planner", "planner", "agent", None, None, None, "c-1"),
        ("ChatOpenAI", "planner", "llm", "gpt-4o", 100, 20, None),
        ("writer_agent.invoke", "writer_agent", "agent", None, None, None, None),
        ("tool.save", "writer_agent", "tool", None, None, None, None),
        ("agent.decision_point", "writer_agent", "decision", None, None, None, None),
    ]
    # The original attributes stay as exported and queryable.
    assert store.con.execute(
        "SELECT key, str_val FROM attrs JOIN spans USING (sid) WHERE span_id = '1000000000000003' ORDER BY key"
    ).fetchall() == [("llm.model_name", "gpt-4o"), ("llm.token_count.completion", "20"),
                     ("llm.token_count.prompt", "100"), ("openinference.span.kind", "LLM")]
