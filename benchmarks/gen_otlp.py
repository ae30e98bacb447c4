#!/usr/bin/env python3
"""Synthetic multi-agent traces for agtrace's benchmarks.

Why this exists: the performance targets are stated against a file of about
750,000 spans (~400 MB) shaped like what a real OpenTelemetry Collector file
exporter writes for a multi-agent system. No such public file exists, so this
script produces one, deterministically for a seed, fast enough that nobody
keeps large files around.

Shape of a trace (~40 spans): a workflow root, a coordinator agent that plans
(reasoning iteration + chat call + decision) and fans out to 2-4 parallel
research agents (`X_agent.invoke`; some frameworks label them with
`gen_ai.agent.name`, others with `agent_name`), each looping over
`reasoning_iteration_N` spans holding a `chat <model>` call and tool calls
(`tool.web_search`, `execute_tool kb_search`), then deciding
(`agent.decision_point`); a sync span joins the fan-out and a synthesis agent
writes the answer. A few tool and LLM calls fail (status code 2 + message +
an `exception` event).

Framing (default `--format otlp`): one ExportTraceServiceRequest per line,
like the Collector's file exporter. Each line is one exporter batch of
200-500 spans taken from about `--traces-per-line` traces in flight at once,
spans in end order (children before parents), grouped by resource and scope
inside the line; so every trace is spread over several lines.

`--format jsonl-flat` writes the same spans as agtrace's flat span dump, one
span per line.

Usage:
    python benchmarks/gen_otlp.py --spans 750000 --out benchmarks/data/otlp_750k.jsonl
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

# 2025-01-15T00:00:00Z: a fixed epoch so that output depends only on the seed.
BASE_NS = 1_736_899_200_000_000_000
MS = 1_000_000

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

STATUS_UNSET: dict[str, Any] = {}
STATUS_OK = {"code": 1}


# --- OTLP AnyValue / KeyValue builders ------------------------------------

def kv_s(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def kv_i(key: str, value: int) -> dict[str, Any]:
    # OTLP/JSON writes int64 as a string (proto3 JSON mapping).
    return {"key": key, "value": {"intValue": str(value)}}


def kv_d(key: str, value: float) -> dict[str, Any]:
    return {"key": key, "value": {"doubleValue": value}}


def kv_b(key: str, value: bool) -> dict[str, Any]:
    return {"key": key, "value": {"boolValue": value}}


def kv_a(key: str, values: list[str]) -> dict[str, Any]:
    return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in values]}}}


# Constant key/values are built once and shared: orjson serialises a shared
# dict as many times as it is referenced, and building fewer dicts is most of
# what makes the generator fast.
OP_CHAT = kv_s("gen_ai.operation.name", "chat")
OP_TOOL = kv_s("gen_ai.operation.name", "execute_tool")
OP_AGENT = kv_s("gen_ai.operation.name", "invoke_agent")
OP_WORKFLOW = kv_s("gen_ai.operation.name", "invoke_workflow")
OP_RETRIEVAL = kv_s("gen_ai.operation.name", "retrieval")
TOOL_KB = kv_s("gen_ai.tool.name", "kb_search")
TOOL_NAME_WEB = kv_s("tool.name", "web_search")
FINISH_STOP = kv_a("gen_ai.response.finish_reasons", ["stop"])
FINISH_TOOL = kv_a("gen_ai.response.finish_reasons", ["tool_calls"])
SYNC_WAIT_ALL = kv_s("sync.strategy", "wait_all")
CACHED_TRUE = kv_b("cached", True)
CACHED_FALSE = kv_b("cached", False)
TRIGGER_DONE = kv_s("triggered_by", "reasoning_complete")
TRIGGER_MAX = kv_s("triggered_by", "max_iterations")
MAX_ITER = kv_i("max_iterations", 3)
ROLES = {r: kv_s("agent.role", r) for r in ("planner", "researcher", "writer")}

# name, provider, response model, weight
MODELS = [
    ("gpt-4o", "openai", "gpt-4o-2024-08-06", 0.62),
    ("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", 0.23),
    ("claude-3-5-sonnet", "anthropic", "claude-3-5-sonnet-20241022", 0.15),
]

# Workflow kinds: (workflow name, service, research agents to draw from,
# decision weights for approve/escalate/reject/escalate_to_human/respond_directly, weight)
DECISION_TYPES = ["approve", "escalate", "reject", "escalate_to_human", "respond_directly"]
WORKFLOWS = [
    ("research_workflow", "research-assistant",
     ["web_research_agent", "kb_research_agent", "news_agent", "academic_agent", "market_data_agent"],
     [0.42, 0.18, 0.10, 0.06, 0.24], 0.40),
    ("support_triage_workflow", "support-desk",
     ["ticket_history_agent", "kb_research_agent", "billing_agent", "policy_agent"],
     [0.30, 0.26, 0.12, 0.17, 0.15], 0.30),
    ("due_diligence_workflow", "due-diligence",
     ["financial_agent", "legal_research_agent", "news_agent", "web_research_agent"],
     [0.35, 0.25, 0.22, 0.10, 0.08], 0.20),
    ("content_review_workflow", "content-review",
     ["policy_agent", "fact_check_agent", "web_research_agent"],
     [0.50, 0.14, 0.20, 0.08, 0.08], 0.10),
]
PROVIDERS = {m[1]: kv_s("gen_ai.provider.name", m[1]) for m in MODELS}
REQUEST_MODELS = {m[0]: kv_s("gen_ai.request.model", m[0]) for m in MODELS}
RESPONSE_MODELS = {m[2]: kv_s("gen_ai.response.model", m[2]) for m in MODELS}

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
WORKER_SERVICE = "research-workers"
HOSTS_PER_SERVICE = 3

# Frameworks disagree on how to name the acting agent: these agents carry
# `gen_ai.agent.name`, all others `agent_name`.
GENAI_NAMED_AGENTS = {"web_research_agent", "news_agent", "billing_agent", "fact_check_agent",
                      "financial_agent", "synthesis_agent"}

SCOPE_AGENTS = ("agent_framework", "0.9.2")
SCOPE_LLM = ("opentelemetry.instrumentation.openai_v2", "2.0b0")
SCOPE_TOOLS = ("agent_framework.tools", "0.9.2")

TOPICS = [
    "lithium battery recycling", "EU AI Act obligations", "semiconductor export controls",
    "remote work productivity", "carbon capture costs", "solid-state battery startups",
    "GLP-1 drug pricing", "open-source LLM licensing", "data residency in Brazil",
    "quantum-safe cryptography", "offshore wind financing", "ransomware insurance claims",
    "pediatric telehealth adoption", "rare earth supply chains", "vector database benchmarks",
    "SOC 2 evidence collection", "password reset loops", "duplicate invoice charges",
    "delayed refund escalations", "enterprise SSO misconfiguration", "warehouse robotics ROI",
    "microplastics in drinking water", "central bank digital currencies", "heat pump subsidies",
]
ASPECTS = [
    "market size 2024", "regulatory timeline", "main competitors", "recent lawsuits",
    "customer complaints", "pricing changes", "expert opinions", "risk factors",
    "technical limitations", "adoption statistics", "policy exceptions", "root cause analysis",
]
REASON_OPENERS = [
    "Sources disagree on methodology",
    "Search results are outdated",
    "Request is ambiguous about the period",
    "Only one primary source found",
    "KB article answers it directly",
    "Same issue was refunded last quarter",
    "Market data and news agree",
    "Draft has an unverified claim",
]
REASON_CLOSERS = [
    "search again.",
    "cite both and flag it.",
    "needs a human reviewer.",
    "enough to answer.",
    "hand over to synthesis.",
    "policy allows auto-resolution.",
]
TRIGGERS = ["user_request", "schedule", "webhook", "upstream_agent", "retry"]
CHANNELS = ["web", "slack", "api", "email"]
KB_COLLECTIONS = [kv_s("kb.collection", c) for c in ("support_articles", "product_docs", "policies", "research_notes")]
ERRORS_TOOL = [
    ("TimeoutError", "web search timed out after 30s"),
    ("httpx.HTTPStatusError", "Server error '503 Service Unavailable' for url 'https://search.internal/v1/query'"),
    ("KBUnavailableError", "knowledge base shard 3 is not reachable"),
]
ERRORS_LLM = [
    ("openai.RateLimitError", "Rate limit reached for gpt-4o in organization org-synthetic on tokens per min"),
    ("openai.APITimeoutError", "Request timed out."),
]


def _pick_cum(cum: list[float], r: float) -> int:
    return bisect.bisect_right(cum, r * cum[-1])


def _cumulative(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class Span:
    """One generated span: its OTLP dict plus where it is exported from."""

    __slots__ = ("order", "resource", "scope", "otlp")

    def __init__(self, order: int, resource: tuple[str, int], scope: tuple[str, str], otlp: dict[str, Any]):
        self.order = order  # pre-order index within the trace (parents before children)
        self.resource = resource
        self.scope = scope
        self.otlp = otlp


class TraceBuilder:
    """Builds one trace at a time; spans come out in end order (post-order)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.model_cum = _cumulative([m[3] for m in MODELS])
        self.workflow_cum = _cumulative([w[4] for w in WORKFLOWS])
        self.decision_cums = [_cumulative(w[3]) for w in WORKFLOWS]
        self.queries = [f"{t} {a}" for t in TOPICS for a in ASPECTS]
        self.reasons = [kv_s("reasoning", f"{o}; {c}") for o in REASON_OPENERS for c in REASON_CLOSERS]

    # -- helpers ---------------------------------------------------------
    def _id64(self) -> str:
        return "%016x" % self.rng.getrandbits(64)

    def _new(self) -> tuple[str, int]:
        self.order += 1
        return self._id64(), self.order

    def _emit(self, order: int, resource: tuple[str, int], scope: tuple[str, str], span_id: str,
              parent: str | None, name: str, kind: int, start: int, end: int,
              attributes: list[dict[str, Any]], status: dict[str, Any] = STATUS_UNSET,
              events: list[dict[str, Any]] | None = None) -> None:
        d: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": span_id,
            "parentSpanId": parent or "",
            "flags": 256,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": attributes,
        }
        if events:
            d["events"] = events
        d["status"] = status
        self.spans.append(Span(order, resource, scope, d))

    def _agent_attr(self, agent: str) -> dict[str, Any]:
        return kv_s("gen_ai.agent.name" if agent in GENAI_NAMED_AGENTS else "agent_name", agent)

    def _error(self, when: int, errors: list[tuple[str, str]]) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        etype, msg = errors[int(self.rng.random() * len(errors))]
        event = {
            "timeUnixNano": str(when),
            "name": "exception",
            "attributes": [
                kv_s("exception.type", etype),
                kv_s("exception.message", msg),
                kv_s("exception.stacktrace",
                     f"Traceback (most recent call last):\n  File \"agents/tools.py\", line 88, in call\n"
                     f"    return await client.request(payload)\n{etype}: {msg}"),
                kv_b("exception.escaped", False),
            ],
        }
        return {"code": 2, "message": f"{etype}: {msg}"}, [event], etype

    # -- span kinds ------------------------------------------------------
    def chat(self, res, parent: str, agent: str, start: int) -> int:
        rng = self.rng
        sid, order = self._new()
        model, provider, resp_model, _ = MODELS[_pick_cum(self.model_cum, rng.random())]
        end = start + int((350 + rng.random() * 3200) * MS)
        tool_call = rng.random() < 0.45
        attrs = [
            OP_CHAT,
            PROVIDERS[provider],
            REQUEST_MODELS[model],
            kv_i("gen_ai.usage.input_tokens", 400 + int(rng.random() * 5200)),
            kv_i("gen_ai.usage.output_tokens", 30 + int(rng.random() * 900)),
        ]
        if tool_call:
            attrs.append(FINISH_TOOL)
        if rng.random() < 0.25:
            attrs.append(RESPONSE_MODELS[resp_model])
        if rng.random() < 0.01:
            status, events, etype = self._error(end, ERRORS_LLM)
            attrs.append(kv_s("error.type", etype))
            self._emit(order, res, SCOPE_LLM, sid, parent, f"chat {model}", KIND_CLIENT, start, end, attrs, status, events)
        else:
            self._emit(order, res, SCOPE_LLM, sid, parent, f"chat {model}", KIND_CLIENT, start, end, attrs)
        return end

    def tool(self, res, parent: str, agent: str, start: int) -> int:
        rng = self.rng
        sid, order = self._new()
        query = self.queries[int(rng.random() * len(self.queries))]
        failed = rng.random() < 0.035
        results = 0 if failed else int(rng.random() * 12)
        if rng.random() < 0.55:
            end = start + int((180 + rng.random() * 1900) * MS)
            name = "tool.web_search"
            attrs = [
                TOOL_NAME_WEB,
                kv_s("query", query),
                kv_i("result_count", results),
                self._agent_attr(agent),
                CACHED_TRUE if rng.random() < 0.2 else CACHED_FALSE,
                kv_d("duration_ms", round((end - start) / MS, 1)),
            ]
            kind = KIND_CLIENT
        else:
            end = start + int((15 + rng.random() * 300) * MS)
            name = "execute_tool kb_search"
            attrs = [
                OP_TOOL,
                TOOL_KB,
                kv_s("gen_ai.tool.call.id", "call_%08x" % rng.getrandbits(32)),
                KB_COLLECTIONS[int(rng.random() * len(KB_COLLECTIONS))],
                kv_s("query", query),
                kv_i("result_count", results),
            ]
            kind = KIND_INTERNAL
        if failed:
            status, events, etype = self._error(end, ERRORS_TOOL)
            attrs.append(kv_s("error.type", etype))
            self._emit(order, res, SCOPE_TOOLS, sid, parent, name, kind, start, end, attrs, status, events)
        else:
            self._emit(order, res, SCOPE_TOOLS, sid, parent, name, kind, start, end, attrs)
        return end

    def reasoning(self, res, parent: str, agent: str, n: int, start: int, tools: int) -> int:
        rng = self.rng
        sid, order = self._new()
        t = start + int((5 + rng.random() * 40) * MS)
        t = self.chat(res, sid, agent, t)
        for _ in range(tools):
            t = self.tool(res, sid, agent, t + int(rng.random() * 8 * MS))
        end = t + int((2 + rng.random() * 30) * MS)
        attrs = [
            kv_s("agent_name", agent),
            kv_i("iteration", n),
            self.reasons[int(rng.random() * len(self.reasons))],
            kv_i("thought_tokens", 50 + int(rng.random() * 600)),
            kv_d("duration_ms", round((end - start) / MS, 1)),
        ]
        self._emit(order, res, SCOPE_AGENTS, sid, parent, f"reasoning_iteration_{n}", KIND_INTERNAL, start, end, attrs)
        return end

    def decision(self, res, parent: str, agent: str, start: int) -> int:
        rng = self.rng
        sid, order = self._new()
        end = start + int((1 + rng.random() * 25) * MS)
        dtype = DECISION_TYPES[_pick_cum(self.decision_cum, rng.random())]
        conf = rng.random()
        conf = round(0.55 + 0.44 * conf if dtype in ("approve", "respond_directly") else 0.25 + 0.6 * conf, 3)
        alts = [x for x in DECISION_TYPES if x != dtype][: 1 + int(rng.random() * 2)]
        attrs = [
            kv_s("decision_type", dtype),
            kv_d("decision_confidence", conf),
            self._agent_attr(agent),
            self.reasons[int(rng.random() * len(self.reasons))],
            kv_a("alternatives_considered", alts),
            TRIGGER_DONE if rng.random() < 0.8 else TRIGGER_MAX,
        ]
        if dtype in ("escalate", "escalate_to_human"):
            attrs.append(kv_s("delegated_to", "human_review_queue" if dtype == "escalate_to_human" else "senior_agent"))
        self._emit(order, res, SCOPE_AGENTS, sid, parent, "agent.decision_point", KIND_INTERNAL, start, end, attrs)
        return end

    def agent(self, res, parent: str, agent: str, role: str, task: str, start: int,
              iterations: int, fanout: Callable[[str, int], int] | None = None) -> int:
        rng = self.rng
        sid, order = self._new()
        t = start + int(rng.random() * 15 * MS)
        for n in range(1, iterations + 1):
            tools = 1 + (rng.random() < 0.45) if role == "researcher" else int(rng.random() < 0.5)
            t = self.reasoning(res, sid, agent, n, t, tools)
        if fanout is not None:
            t = fanout(sid, t)
        t = self.decision(res, sid, agent, t)
        end = t + int(rng.random() * 10 * MS)
        attrs = [
            self._agent_attr(agent),
            OP_AGENT,
            ROLES[role],
            kv_s("task", task),
            MAX_ITER,
        ]
        self._emit(order, res, SCOPE_AGENTS, sid, parent, f"{agent}.invoke", KIND_INTERNAL, start, end, attrs)
        return end

    def build(self, start: int) -> list[Span]:
        """One whole trace starting at `start` ns, spans in end order."""
        rng = self.rng
        self.trace_id = "%032x" % rng.getrandbits(128)
        self.spans: list[Span] = []
        self.order = 0
        wf = _pick_cum(self.workflow_cum, rng.random())
        wf_name, service, pool, _, _ = WORKFLOWS[wf]
        self.decision_cum = self.decision_cums[wf]
        host = int(rng.random() * HOSTS_PER_SERVICE)
        res_main = (service, host)
        res_worker = (WORKER_SERVICE, int(rng.random() * HOSTS_PER_SERVICE))
        query = self.queries[int(rng.random() * len(self.queries))]

        root_id, root_order = self._new()
        n_agents = 2 + int(rng.random() * 3)
        agents = rng.sample(pool, min(n_agents, len(pool)))

        def fanout(coord_id: str, t0: int) -> int:
            ends = [
                self.agent(res_worker, coord_id, a, "researcher", query, t0 + int(rng.random() * 20 * MS),
                           1 + (rng.random() < 0.75) + (rng.random() < 0.25))
                for a in agents
            ]
            t = max(ends)
            sid, order = self._new()
            end = t + int((1 + rng.random() * 12) * MS)
            self._emit(order, res_main, SCOPE_AGENTS, sid, coord_id, "agent.sync", KIND_INTERNAL, t, end, [
                SYNC_WAIT_ALL,
                kv_i("sync.agent_count", len(agents)),
                kv_a("sync.waited_for", agents),
                kv_s("agent_name", "coordinator_agent"),
                kv_d("duration_ms", round((end - t) / MS, 1)),
            ])
            return end

        t = start + int((2 + rng.random() * 10) * MS)
        t = self.agent(res_main, root_id, "coordinator_agent", "planner", query, t, 1, fanout)
        t = self.agent(res_main, root_id, "synthesis_agent", "writer", query, t + int(rng.random() * 5 * MS),
                       1 + (rng.random() < 0.5) + (rng.random() < 0.3))
        end = t + int((1 + rng.random() * 20) * MS)
        attrs = [
            kv_s("workflow.name", wf_name),
            OP_WORKFLOW,
            kv_s("session.id", "sess-%012x" % rng.getrandbits(48)),
            kv_s("user.id", "user-%05d" % int(rng.random() * 40000)),
            kv_s("input.value", query),
            kv_s("request.channel", CHANNELS[int(rng.random() * len(CHANNELS))]),
            kv_s("triggered_by", TRIGGERS[int(rng.random() * len(TRIGGERS))]),
        ]
        errored = any(s.otlp["status"].get("code") == 2 for s in self.spans)
        self._emit(root_order, res_main, SCOPE_AGENTS, root_id, None, f"{wf_name}.run", KIND_SERVER, start, end,
                   attrs, STATUS_OK if not errored else STATUS_UNSET)
        return self.spans


def resource_dict(key: tuple[str, int]) -> dict[str, Any]:
    service, host = key
    return {"attributes": [
        kv_s("service.name", service),
        kv_s("service.namespace", "agents"),
        kv_s("service.version", "1.%d.0" % (4 + host % 2)),
        kv_s("deployment.environment", "production"),
        kv_s("host.name", f"{service}-{host}"),
        kv_s("telemetry.sdk.name", "opentelemetry"),
        kv_s("telemetry.sdk.language", "python"),
        kv_s("telemetry.sdk.version", "1.27.0"),
        kv_i("process.pid", 1000 + 97 * host),
    ]}


def span_stream(spans: int, seed: int, in_flight: int) -> Iterator[Span]:
    """Exactly `spans` spans, from `in_flight` concurrent traces, in export order.

    Each step takes 1-8 spans of one random in-flight trace; a finished trace
    is replaced by a new one. The last trace is cut to fit the count, keeping
    a prefix in pre-order so that no span loses its parent.
    """
    rng = random.Random(seed)
    builder = TraceBuilder(rng)
    remaining = spans
    started = 0
    slots: list[list[Any]] = []  # [spans, position]

    def start_trace() -> list[Span] | None:
        nonlocal remaining, started
        if remaining <= 0:
            return None
        t0 = BASE_NS + started * 1_150 * MS + int(rng.random() * 900 * MS)
        started += 1
        trace = builder.build(t0)
        if len(trace) > remaining:
            trace = [s for s in trace if s.order <= remaining]
        remaining -= len(trace)
        return trace

    for _ in range(in_flight):
        tr = start_trace()
        if tr is None:
            break
        slots.append([tr, 0])
    while slots:
        k = int(rng.random() * len(slots))
        slot = slots[k]
        tr, pos = slot
        take = 1 + int(rng.random() * 8)
        yield from tr[pos:pos + take]
        pos += take
        if pos >= len(tr):
            new = start_trace()
            if new is None:
                slots[k] = slots[-1]
                slots.pop()
            else:
                slot[0], slot[1] = new, 0
        else:
            slot[1] = pos


def otlp_lines(stream: Iterator[Span], seed: int) -> Iterator[bytes]:
    """Cut the stream into exporter batches of 200-500 spans; one request per line."""
    rng = random.Random(seed ^ 0x5EED)
    resources: dict[tuple[str, int], dict[str, Any]] = {}
    scopes: dict[tuple[str, str], dict[str, Any]] = {}

    def flush(batch: list[Span]) -> bytes:
        grouped: dict[tuple[str, int], dict[tuple[str, str], list[dict[str, Any]]]] = {}
        for s in batch:
            grouped.setdefault(s.resource, {}).setdefault(s.scope, []).append(s.otlp)
        rs = []
        for rkey, by_scope in grouped.items():
            res = resources.get(rkey) or resources.setdefault(rkey, resource_dict(rkey))
            ss = []
            for skey, spans in by_scope.items():
                scope = scopes.get(skey) or scopes.setdefault(skey, {"name": skey[0], "version": skey[1]})
                ss.append({"scope": scope, "spans": spans})
            rs.append({"resource": res, "scopeSpans": ss, "schemaUrl": SCHEMA_URL})
        return orjson.dumps({"resourceSpans": rs}) + b"\n"

    batch: list[Span] = []
    target = 200 + int(rng.random() * 301)
    for s in stream:
        batch.append(s)
        if len(batch) >= target:
            yield flush(batch)
            batch = []
            target = 200 + int(rng.random() * 301)
    if batch:
        yield flush(batch)


_SECOND_CACHE: dict[int, str] = {}


def iso_ns(ns: int) -> str:
    """ISO-8601 UTC with 9 fraction digits (datetime keeps only microseconds)."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = _SECOND_CACHE.get(sec)
    if base is None:
        if len(_SECOND_CACHE) > 100_000:
            _SECOND_CACHE.clear()
        base = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND_CACHE[sec] = base
    return f"{base}.{frac:09d}Z"


def plain_value(v: dict[str, Any]) -> Any:
    """OTLP AnyValue -> plain JSON value (the generator only makes these kinds)."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [plain_value(x) for x in v["arrayValue"]["values"]]
    return None


def flat_lines(stream: Iterator[Span]) -> Iterator[bytes]:
    """agtrace's flat span dump: one span object per line."""
    status_names = {0: "unset", 1: "ok", 2: "error"}
    for s in stream:
        o = s.otlp
        st = o["status"]
        d: dict[str, Any] = {
            "trace_id": o["traceId"],
            "span_id": o["spanId"],
            "parent_span_id": o["parentSpanId"] or None,
            "name": o["name"],
            "kind": KIND_NAMES[o["kind"]],
            "start": iso_ns(int(o["startTimeUnixNano"])),
            "end": iso_ns(int(o["endTimeUnixNano"])),
            "status": status_names[st.get("code", 0)],
            "service": s.resource[0],
            "attributes": {kv["key"]: plain_value(kv["value"]) for kv in o["attributes"]},
        }
        if "message" in st:
            d["status_message"] = st["message"]
        if "events" in o:
            d["events"] = [
                {"name": e["name"], "time": iso_ns(int(e["timeUnixNano"])),
                 "attributes": {kv["key"]: plain_value(kv["value"]) for kv in e["attributes"]}}
                for e in o["events"]
            ]
        yield orjson.dumps(d) + b"\n"


def generate(out: Path, spans: int, seed: int = 1, traces_per_line: int = 24, fmt: str = "otlp") -> tuple[int, int]:
    """Write the file; returns (bytes written, lines written)."""
    if spans < 0:
        raise ValueError("--spans must be >= 0")
    if traces_per_line < 1:
        raise ValueError("--traces-per-line must be >= 1")
    stream = span_stream(spans, seed, traces_per_line)
    lines = otlp_lines(stream, seed) if fmt == "otlp" else flat_lines(stream)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = count = 0
    with open(out, "wb", buffering=1 << 20) as f:
        buf: list[bytes] = []
        pending = 0
        for line in lines:
            buf.append(line)
            pending += len(line)
            count += 1
            if pending >= 1 << 22:
                f.write(b"".join(buf))
                size += pending
                buf, pending = [], 0
        f.write(b"".join(buf))
        size += pending
    return size, count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spans", type=int, required=True, help="exact number of spans to write")
    p.add_argument("--out", type=Path, required=True, help="output file (use benchmarks/data/, git-ignored)")
    p.add_argument("--seed", type=int, default=1, help="random seed; same seed, same bytes (default 1)")
    p.add_argument("--traces-per-line", type=int, default=24,
                   help="traces in flight at once, i.e. about how many traces share one line (default 24)")
    p.add_argument("--format", choices=["otlp", "jsonl-flat"], default="otlp",
                   help="otlp: Collector file-exporter OTLP/JSON (default); jsonl-flat: agtrace flat span dump")
    args = p.parse_args(argv)
    if args.spans < 0 or args.traces_per_line < 1:
        p.error("--spans must be >= 0 and --traces-per-line >= 1")
    t0 = time.perf_counter()
    size, lines = generate(args.out, args.spans, args.seed, args.traces_per_line, args.format)
    dt = time.perf_counter() - t0
    print(f"wrote {args.out}: {args.spans} spans, {lines} lines, {size / 1e6:.1f} MB "
          f"in {dt:.1f}s ({size / 1e6 / dt if dt else 0:.0f} MB/s, {args.spans / dt if dt else 0:,.0f} spans/s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
