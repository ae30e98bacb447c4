#!/usr/bin/env python3
"""Deterministic generator for agtrace's bundled sample traces.

The files in this directory are read by the README examples and by many
tests, so their ids, timings and counts must never drift. They are therefore
produced by this script rather than written by hand: fixed seeds (one per
workflow, so editing one workflow leaves the others' ids alone), integer
nanosecond arithmetic and no dependency on the clock, the environment or hash
order. Running it again rewrites every file byte for byte (the .gz member has
mtime 0 and no file name).

Usage:  python sample_traces/make_samples.py [OUTPUT_DIR]
        (default OUTPUT_DIR: the directory holding this script)

Standard library only. Each writer imitates a real producer:
  * OTLP/JSON lines as the OpenTelemetry Collector file exporter writes them
    (compact, Go-style: integral doubles without ".0", <>& escaped);
  * a pretty-printed OTLP/JSON ExportTraceServiceRequest;
  * the OpenTelemetry Python SDK's ConsoleSpanExporter (ReadableSpan.to_json);
  * agtrace's own flat JSONL span dump.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

DAY = 1705276800 * 10**9  # 2024-01-15T00:00:00Z in ns
MS = 1_000_000
US = 1_000

OPENAI_SCOPE = ("opentelemetry.instrumentation.openai_v2", "2.0b0")
RESPONSE_MODEL = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
KIND_NUMBER = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_NUMBER = {"unset": 0, "ok": 1, "error": 2}


def clock(h: int, m: int, s: float = 0.0) -> int:
    """Wall-clock time on 2024-01-15 (UTC) in ns; s is given to the microsecond."""
    return DAY + (h * 3600 + m * 60) * 10**9 + round(s * 1_000_000) * US


def ms(x: float) -> int:
    """Milliseconds (to the microsecond) as ns."""
    return round(x * 1000) * US


def iso(ns: int, digits: int = 9) -> str:
    secs, frac = divmod(ns, 10**9)
    base = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}"[: len(base) + 1 + digits] + "Z"


# --------------------------------------------------------------------------
# model


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start: int
    end: int | None
    service: str
    scope: tuple[str, str]
    attrs: dict = field(default_factory=dict)
    status: str = "unset"
    message: str = ""
    events: list = field(default_factory=list)  # (name, time_ns, attrs)
    links: list = field(default_factory=list)  # (trace_id, span_id, attrs)
    duration_only: bool = False  # flat dump: write duration_ms instead of end


class Ids:
    """Random but reproducible ids; never zero, never repeated."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seen: set[str] = set()

    def _hex(self, bits: int) -> str:
        while True:
            value = self.rng.getrandbits(bits)
            text = f"{value:0{bits // 4}x}"
            if value and text not in self.seen:
                self.seen.add(text)
                return text

    def trace(self) -> str:
        return self._hex(128)

    def span(self) -> str:
        return self._hex(64)


class Trace:
    def __init__(self, ids: Ids, service: str, scope: tuple[str, str]):
        self.ids = ids
        self.trace_id = ids.trace()
        self.service = service
        self.scope = scope
        self.spans: list[Span] = []

    def span(self, name, start, end=None, parent=None, kind="internal", attrs=None, scope=None, **kw) -> Span:
        sp = Span(
            trace_id=self.trace_id,
            span_id=self.ids.span(),
            parent_id=parent.span_id if parent is not None else None,
            name=name,
            kind=kind,
            start=start,
            end=end,
            service=self.service,
            scope=scope or self.scope,
            attrs=dict(attrs or {}),
            **kw,
        )
        self.spans.append(sp)
        return sp


def lay_out(start: int, end: int, weights: list[int], lead=ms(2.5), gap=ms(1.2), tail=ms(3.5)):
    """Consecutive child slots inside [start, end], sized in proportion to weights."""
    avail = end - start - lead - tail - gap * (len(weights) - 1)
    total = sum(weights)
    slots, t = [], start + lead
    for w in weights:
        d = avail * w // total // US * US
        slots.append((t, t + d))
        t += d + gap
    return slots


def token(rng: random.Random, n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def openai_chat(tr: Trace, rng, parent, start, end, model, tokens_in, tokens_out, finish="stop",
                lean=False) -> Span:
    """An LLM call as the opentelemetry-instrumentation-openai-v2 library records it.

    lean drops the request/server details (keeps the pretty-printed file small).
    """
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": RESPONSE_MODEL[model],
        "gen_ai.response.id": "chatcmpl-" + token(rng, 29),
        "gen_ai.response.finish_reasons": [finish],
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    if lean:
        for key in ("gen_ai.request.temperature", "gen_ai.response.id", "server.address", "server.port"):
            del attrs[key]
    return tr.span(f"chat {model}", start, end, parent, kind="client", scope=OPENAI_SCOPE, attrs=attrs)


def llm_chat(tr: Trace, parent, start, end, agent, model, tokens_in, tokens_out, purpose, kind="internal") -> Span:
    """A hand-instrumented LLM call (`llm.chat`), the style of in-house wrappers."""
    return tr.span(
        "llm.chat", start, end, parent, kind=kind,
        attrs={
            "agent_name": agent,
            "llm.purpose": purpose,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
        },
    )


def exception_event(time_ns, exc_type, message, frames):
    stack = "Traceback (most recent call last):\n" + "".join(
        f'  File "{f}", line {line}, in {func}\n' for f, line, func in frames
    ) + f"{exc_type}: {message}\n"
    return ("exception", time_ns, {
        "exception.type": exc_type,
        "exception.message": message,
        "exception.stacktrace": stack,
        "exception.escaped": "False",
    })


# --------------------------------------------------------------------------
# workflow 1: customer inquiry (OTLP/JSON lines, and more in a .gz)

SUPPORT_SERVICE = "support-workflow"
SUPPORT_SCOPE = ("support_workflow.agents", "1.4.0")
SUPPORT_RESOURCE = {
    "service.name": SUPPORT_SERVICE,
    "service.version": "1.4.0",
    "deployment.environment": "production",
    "host.name": "support-wf-7d9c6b5f4-x2kqp",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.22.0",
}

# (start, category, tier, channel, subject, web_query, web_results, kb_results,
#  decision, confidence, reason_code, reasoning, alternatives, resolution_minutes, ticket)
INQUIRIES = [
    (clock(10, 2, 11.482913), "billing", "gold", "chat",
     "Charged twice for the January invoice", "duplicate card charge pending authorization hold", 6, 4,
     "respond_directly", 0.91, "kb_article_match",
     "Knowledge base article KB-1042 explains duplicate pre-authorisation holds and matches the customer's description exactly.",
     [("escalate_to_human", 0.09, "No sign of an actual double capture in the payment data.")], 3.4, None),
    (clock(10, 9, 40.117305), "shipping", "standard", "email",
     "Order #58213 tracking has not updated in 5 days", "carrier tracking not updating 5 days", 8, 3,
     "respond_directly", 0.88, "tracking_data_available",
     "The carrier API shows the parcel cleared customs yesterday, so a status update with the new ETA answers the question.",
     [("escalate_to_human", 0.12, "Only needed if the parcel were reported lost.")], 4.1, None),
    (clock(10, 17, 3.904471), "technical", "gold", "web_form",
     "Mobile app crashes when uploading a receipt photo", "android app crash upload receipt photo 5.2.0", 3, 0,
     "escalate_to_human", 0.64, "no_known_fix",
     "No knowledge base article covers this crash and the web results point to an unreleased app build, so a human agent should investigate.",
     [("respond_directly", 0.36, "A generic reinstall suggestion is unlikely to help.")], 96.0,
     ("tier2-mobile", "high", "SUP-48213")),
    (clock(10, 24, 52.660018), "account", "standard", "chat",
     "How to change the email address on my account", "change account email address", 5, 6,
     "respond_directly", 0.96, "kb_article_match",
     "Article KB-0310 gives the exact self-service steps for changing the login email.",
     [("escalate_to_human", 0.04, "Only if the customer cannot access the old mailbox.")], 1.8, None),
    (clock(10, 31, 27.301556), "billing", "platinum", "email",
     "Refund for the annual plan bought 40 days ago", "annual subscription refund after 30 days", 4, 1,
     "escalate_to_human", 0.72, "refund_outside_policy",
     "The refund request falls outside the 30-day policy window, and only a human agent may approve an exception.",
     [("respond_directly", 0.28, "Could decline citing the policy, but the platinum tier qualifies for goodwill review.")],
     142.0, ("tier2-billing", "high", "SUP-48227")),
    (clock(10, 31, 30.845210), "shipping", "standard", "web_form",
     "Change the delivery address of a shipped order", "change delivery address after shipment", 7, 2,
     "respond_directly", 0.83, "policy_answer",
     "The shipping policy allows a redirect through the carrier portal once an order has shipped, so the customer can be told how.",
     [("escalate_to_human", 0.17, "Manual redirect is only needed for international parcels.")], 5.2, None),
    (clock(10, 40, 14.072684), "technical", "standard", "chat",
     "Two-factor codes do not arrive by SMS", "2fa sms code not received", 9, 5,
     "respond_directly", 0.81, "kb_article_match",
     "KB-0877 lists carrier filtering as the usual cause and offers the authenticator app as a fix.",
     [("escalate_to_human", 0.19, "Would help if SMS delivery were failing for many customers at once.")], 2.7, None),
    (clock(10, 48, 59.530927), "billing", "gold", "email",
     "Double charge - will contact my lawyer if not fixed today", "duplicate charge dispute legal", 5, 3,
     "escalate_to_human", 0.86, "legal_threat",
     "The message mentions legal action, which always requires a human agent however clear the billing issue is.",
     [("respond_directly", 0.14, "KB-1042 would explain the charge, but policy forbids automated replies to legal threats.")],
     58.0, ("legal-review", "urgent", "SUP-48240")),
    (clock(10, 57, 8.218840), "account", "standard", "web_form",
     "Delete my account and all my data", "account deletion gdpr request", 6, 4,
     "respond_directly", 0.85, "self_service_available",
     "Account deletion is available in the privacy settings and the customer has no open orders blocking it.",
     [("escalate_to_human", 0.15, "Needed only when a deletion is blocked by an open order or dispute.")], 3.0, None),
    (clock(11, 6, 45.774102), "product", "trial", "chat",
     "Does the Pro plan include API access?", "pro plan api access limits", 4, 7,
     "respond_directly", 0.97, "kb_article_match",
     "The pricing article states that the Pro plan includes API access with 10,000 requests per day.",
     [("escalate_to_human", 0.03, "Sales would only be needed for a custom quota.")], 1.2, None),
    (clock(11, 15, 22.903318), "shipping", "gold", "email",
     "Package arrived damaged", "damaged package replacement", 5, 3,
     "respond_directly", 0.84, "replacement_flow_available",
     "Damaged-item replacements under 200 USD are automatic, so the agent can send the replacement link with the prepaid label.",
     [("escalate_to_human", 0.16, "Only for items over the 200 USD automatic replacement limit.")], 4.6, None),
    (clock(11, 24, 37.415569), "technical", "standard", "chat",
     "Exported CSV files show garbled characters", "csv export garbled characters excel utf-8", 10, 4,
     "respond_directly", 0.87, "kb_article_match",
     "KB-0554 explains that Excel needs the UTF-8 with BOM export option, which matches the garbled accents described.",
     [("escalate_to_human", 0.13, "Would apply if the export itself were corrupt.")], 2.2, None),
]

MORE_INQUIRIES = [
    (clock(11, 41, 5.228104), "billing", "standard", "chat",
     "Promo code SPRING24 was not applied", "promo code not applied at checkout", 5, 3,
     "respond_directly", 0.9, "kb_article_match",
     "KB-1120 explains that promo codes apply from the next billing cycle, which matches the invoice dates.",
     [("escalate_to_human", 0.1, "Only if the code had expired before purchase.")], 2.9, None),
    (clock(11, 47, 51.640377), "technical", "platinum", "email",
     "Our whole team lost access after the SSO change", "sso saml login failure after certificate rotation", 2, 1,
     "escalate_to_human", 0.58, "possible_outage",
     "Several customers report the same SSO failure within the hour, which suggests an incident that needs an engineer rather than an article.",
     [("respond_directly", 0.42, "KB-0721 covers certificate rotation but not a team-wide lockout.")],
     37.0, ("tier2-identity", "urgent", "SUP-48301")),
    (clock(11, 53, 19.087215), "shipping", "standard", "web_form",
     "Can I pick up my order in store?", "click and collect store pickup", 6, 5,
     "respond_directly", 0.93, "policy_answer",
     "Store pickup is offered for all orders under 30 kg and the customer's nearest store supports it.",
     [("escalate_to_human", 0.07, "Not needed for a standard pickup request.")], 1.6, None),
    (clock(11, 58, 33.512790), "account", "gold", "chat",
     "Add a second user to my subscription", "add seat to subscription", 4, 6,
     "respond_directly", 0.95, "self_service_available",
     "Seats can be added from the billing page and the gold plan has two unused seats.",
     [("escalate_to_human", 0.05, "Only if the plan had no free seats.")], 1.9, None),
]

FAILING_TICKET_SUBJECT = "Refund for the annual plan bought 40 days ago"


def customer_inquiry(ids: Ids, rng: random.Random, number: int, spec) -> Trace:
    (start, category, tier, channel, subject, web_query, web_n, kb_n, decision, confidence,
     reason_code, reasoning, alternatives, resolution, ticket) = spec
    escalated = decision == "escalate_to_human"
    tr = Trace(ids, SUPPORT_SERVICE, SUPPORT_SCOPE)
    root = tr.span("customer_inquiry_workflow", start, kind="server", attrs={
        "workflow.name": "customer_inquiry",
        "inquiry.id": f"INQ-20240115-{number:04d}",
        "inquiry.category": category,
        "inquiry.subject": subject,
        "inquiry.channel": channel,
        "customer.tier": tier,
    })
    root.status = "ok"
    t = start + ms(rng.uniform(1.5, 4.0))
    ra = tr.span("research_agent.invoke", t, parent=root, attrs={
        "agent_name": "research_agent",
        "agent_version": "2.3.1",
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "research_agent",
    })
    t += ms(rng.uniform(0.8, 2.0))
    d = ms(rng.uniform(620, 1480))
    tr.span("tool.web_search", t, t + d, ra, kind="client", attrs={
        "tool.name": "web_search", "search.provider": "bing", "search.query": web_query, "result_count": web_n})
    t += d + ms(rng.uniform(0.5, 1.5))
    d = ms(rng.uniform(140, 390))
    tr.span("tool.kb_search", t, t + d, ra, kind="client", attrs={
        "tool.name": "kb_search", "kb.index": "support-articles-v3", "search.query": web_query,
        "result_count": kb_n, "top_score": round(rng.uniform(0.81, 0.95) if kb_n >= 3 else rng.uniform(0.31, 0.52), 3)})
    t += d + ms(rng.uniform(0.5, 1.5))
    d = ms(rng.uniform(1250, 3400))
    openai_chat(tr, rng, ra, t, t + d, "gpt-4o", rng.randint(1400, 2600), rng.randint(180, 420))
    t += d + ms(rng.uniform(0.4, 1.2))
    d = ms(rng.uniform(4, 16))
    dec = tr.span("agent.decision_point", t, t + d, ra, attrs={
        "agent_name": "research_agent",
        "decision_type": decision,
        "decision_confidence": confidence,
        "reason_code": reason_code,
        "reasoning": reasoning,
        "alternatives_considered": [
            {"decision": alt, "confidence": c, "reason": why} for alt, c, why in alternatives],
    })
    t += d
    if not escalated:
        t += ms(rng.uniform(0.6, 1.6))
        d = ms(rng.uniform(900, 1900))
        llm_chat(tr, ra, t, t + d, "research_agent", "gpt-4o-mini", rng.randint(900, 1500), rng.randint(150, 320),
                 "draft_reply")
        t += d + ms(rng.uniform(0.5, 1.5))
        d = ms(rng.uniform(90, 260))
        tr.span("tool.send_reply", t, t + d, ra, kind="client", attrs={
            "tool.name": "send_reply", "reply.channel": channel})
        t += d
    ra.end = t + ms(rng.uniform(0.5, 2.0))
    t = ra.end
    if escalated:
        queue, priority, ticket_id = ticket
        t += ms(rng.uniform(0.8, 2.5))
        ea = tr.span("escalation_agent.invoke", t, parent=root, attrs={
            "agent_name": "escalation_agent",
            "agent_version": "1.2.0",
            "triggered_by": dec.span_id,
            "context_from_parent": {
                "category": category, "customer_tier": tier, "reason_code": reason_code,
                "summary": subject, "kb_results": kb_n},
        })
        t += ms(rng.uniform(0.8, 2.0))
        d = ms(rng.uniform(1100, 2100))
        llm_chat(tr, ea, t, t + d, "escalation_agent", "gpt-4o-mini", rng.randint(1100, 1800), rng.randint(200, 380),
                 "summarise_case")
        t += d + ms(rng.uniform(0.5, 1.5))
        link = [(tr.trace_id, dec.span_id, {"link.kind": "caused_by"})]
        ticket_attrs = {
            "tool.name": "create_ticket", "triggered_by": dec.span_id,
            "ticket.queue": queue, "ticket.priority": priority}
        if subject == FAILING_TICKET_SUBJECT:
            d = ms(rng.uniform(230, 300))
            message = ("Server error '503 Service Unavailable' for url "
                       "'https://tickets.internal.example.com/api/v2/tickets'")
            tr.span("tool.create_ticket", t, t + d, ea, kind="client",
                    attrs={**ticket_attrs, "retry.attempt": 1, "http.response.status_code": 503},
                    status="error", message="ticketing API returned 503 Service Unavailable",
                    events=[exception_event(t + d - ms(0.2), "httpx.HTTPStatusError", message, [
                        ("/srv/support_workflow/tools/tickets.py", 88, "create_ticket"),
                        ("/usr/local/lib/python3.11/site-packages/httpx/_models.py", 761, "raise_for_status")])],
                    links=list(link))
            t += d + ms(500)  # backoff before the retry
            ticket_attrs["retry.attempt"] = 2
        d = ms(rng.uniform(280, 640))
        tr.span("tool.create_ticket", t, t + d, ea, kind="client",
                attrs={**ticket_attrs, "http.response.status_code": 201, "ticket.id": ticket_id},
                links=list(link))
        t += d
        ea.end = t + ms(rng.uniform(0.5, 2.0))
        t = ea.end
    root.end = t + ms(rng.uniform(1.0, 3.0))
    root.attrs.update({
        "business_outcome": "escalated" if escalated else "answered",
        "escalation_required": escalated,
        "resolution_time_minutes": resolution,
    })
    return tr


# --------------------------------------------------------------------------
# workflow 2: complaint handling (Python SDK ConsoleSpanExporter)

COMPLAINT_SERVICE = "complaint-handling"
COMPLAINT_SCOPE = ("complaint_handling", "2.4.0")
COMPLAINT_RESOURCE = {
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.22.0",
    "service.name": COMPLAINT_SERVICE,
    "service.version": "2.4.0",
    "deployment.environment": "production",
}


def _js(value) -> str:
    """JSON text for an attribute: the Python SDK only takes primitives and arrays."""
    return json.dumps(value, separators=(", ", ": "))


class Cursor:
    """Sequential time inside a span, in whole microseconds (the SDK prints µs)."""

    def __init__(self, rng: random.Random, t: int):
        self.rng, self.t = rng, t

    def gap(self, lo=0.4, hi=1.8) -> int:
        self.t += round(self.rng.uniform(lo, hi) * 1000) * US
        return self.t

    def take(self, lo_ms, hi_ms) -> tuple[int, int]:
        start = self.gap()
        self.t = start + round(self.rng.uniform(lo_ms, hi_ms) * 1000) * US
        return start, self.t


def decision(tr, parent, cur, agent, dtype, conf, reason_code, reasoning, **extra) -> Span:
    s, e = cur.take(3, 14)
    attrs = {"agent_name": agent, "decision_type": dtype, "decision_confidence": conf,
             "reason_code": reason_code, "reasoning": reasoning}
    attrs.update(extra)
    return tr.span("agent.decision_point", s, e, parent, attrs=attrs)


def complaint(ids: Ids, rng: random.Random, number: int, start: int, variant: str) -> Trace:
    tr = Trace(ids, COMPLAINT_SERVICE, COMPLAINT_SCOPE)
    subjects = {
        "firmware": ("Router stopped working after the firmware update", "technical", "gold", "phone"),
        "portal_error": ("Billing portal shows an error page when downloading invoices", "technical", "platinum", "email"),
        "rude_agent": ("Support agent was rude and hung up on me", "service_quality", "standard", "phone"),
        "sync": ("App loses notes that were written offline", "technical", "standard", "chat"),
    }
    subject, category, tier, channel = subjects[variant]
    root = tr.span("complaint_handling_workflow", start, kind="server", attrs={
        "workflow.name": "complaint_handling",
        "complaint.id": f"CMP-{24000 + number * 17}",
        "complaint.subject": subject,
        "complaint.channel": channel,
        "customer.tier": tier,
    })
    cur = Cursor(rng, start)
    triage = tr.span("triage_agent.invoke", cur.gap(1, 3), parent=root,
                     attrs={"agent_name": "triage_agent", "agent_version": "3.0.2"})
    s, e = cur.take(700, 1300)
    llm_chat(tr, triage, s, e, "triage_agent", "gpt-4o-mini", rng.randint(600, 900), rng.randint(40, 90),
             "classify_complaint", kind="client")
    conf = {"firmware": 0.93, "portal_error": 0.81, "rude_agent": 0.88, "sync": 0.9}[variant]
    decision(tr, triage, cur, "triage_agent", "classify", conf,
             "technical_symptoms" if category == "technical" else "conduct_complaint",
             f"The complaint describes {'a product malfunction' if category == 'technical' else 'staff behaviour'}, "
             f"so it is classified as {category}.",
             classification=category)
    outcome, escalate, minutes = "resolved", False, 0.0

    if variant == "rude_agent":
        esc = decision(tr, triage, cur, "triage_agent", "escalate", 0.95, "conduct_complaint_policy",
                       "Complaints about staff conduct always go to a human supervisor.",
                       delegated_to="human_supervisor", escalation_required=True,
                       alternatives_considered=_js([
                           {"decision": "respond_directly", "confidence": 0.05,
                            "reason": "An automated apology would breach the conduct-complaint policy."}]))
        s, e = cur.take(300, 600)
        tr.span("tool.create_ticket", s, e, triage, kind="client", attrs={
            "tool.name": "create_ticket", "triggered_by": esc.span_id, "ticket.queue": "supervisors",
            "ticket.priority": "high", "ticket.id": "SUP-48236"})
        outcome, escalate, minutes = "escalated_to_supervisor", True, 31.0
    else:
        dlg = decision(tr, triage, cur, "triage_agent", "delegate", round(conf - 0.03, 2), "category_routing",
                       "Technical complaints are handled by the technical agent.",
                       delegated_to="technical_agent",
                       alternatives_considered=_js([
                           {"decision": "respond_directly", "confidence": 0.1,
                            "reason": "The triage agent has no diagnostic tools."},
                           {"decision": "escalate", "confidence": 0.07,
                            "reason": "Nothing suggests the customer needs a human yet."}]))
        tech = tr.span("technical_agent.invoke", cur.gap(), parent=triage, attrs={
            "agent_name": "technical_agent", "agent_version": "2.1.0", "triggered_by": dlg.span_id,
            "context_from_parent": _js({"classification": category, "customer_tier": tier,
                                        "summary": subject, "channel": channel})})
        kb_hits = {"firmware": 2, "portal_error": 0, "sync": 4}[variant]
        s, e = cur.take(180, 420)
        tr.span("tool.kb_search", s, e, tech, kind="client", attrs={
            "tool.name": "kb_search", "kb.index": "troubleshooting-v2", "search.query": subject.lower(),
            "result_count": kb_hits})
        if variant == "firmware":
            s, e = cur.take(800, 1500)
            tr.span("tool.device_diagnostics", s, e, tech, kind="client", attrs={
                "tool.name": "device_diagnostics", "device.model": "AX3000", "device.firmware": "4.2.0",
                "result_count": 12})
        s, e = cur.take(1500, 2800)
        llm_chat(tr, tech, s, e, "technical_agent", "gpt-4o", rng.randint(1800, 2600), rng.randint(200, 400),
                 "diagnose", kind="client")
        if variant == "sync":
            decision(tr, tech, cur, "technical_agent", "recommend", 0.86, "known_fix_available",
                     "Version 5.3 of the app fixes the offline sync bug described in KB-0932.",
                     recommendation="Update the app to 5.3 and reopen the notebook while online.",
                     reasoning_steps=_js([
                         {"step": 1, "description": "Search the troubleshooting index",
                          "result": "4 articles, KB-0932 matches offline sync loss", "evidence": "kb_search"},
                         {"step": 2, "description": "Compare the customer's app version",
                          "result": "Customer runs 5.2.1, fix shipped in 5.3.0", "evidence": "KB-0932"}]),
                     alternatives_considered=_js([
                         {"decision": "delegate", "confidence": 0.14,
                          "reason": "Engineering is not needed for a bug that is already fixed."}]))
            outcome, minutes = "resolved_with_fix", 6.5
        else:
            dlg2 = decision(tr, tech, cur, "technical_agent", "delegate",
                            0.84 if variant == "firmware" else 0.79, "suspected_product_defect",
                            "The symptoms point to a defect that needs engineering's incident data.",
                            delegated_to="engineering_agent",
                            alternatives_considered=_js([
                                {"decision": "recommend", "confidence": 0.16,
                                 "reason": "No known workaround in the knowledge base."}]))
            eng = tr.span("engineering_agent.invoke", cur.gap(), parent=tech, attrs={
                "agent_name": "engineering_agent", "agent_version": "1.5.3", "triggered_by": dlg2.span_id,
                "context_from_parent": _js({"classification": category, "kb_results": kb_hits,
                                            "suspected_component": "firmware" if variant == "firmware"
                                            else "billing-portal"})})
            if variant == "firmware":
                s, e = cur.take(400, 900)
                tr.span("tool.query_incidents", s, e, eng, kind="client", attrs={
                    "tool.name": "query_incidents", "incident.component": "router-firmware", "result_count": 1})
                s, e = cur.take(300, 700)
                tr.span("tool.firmware_changelog", s, e, eng, kind="client", attrs={
                    "tool.name": "firmware_changelog", "device.model": "AX3000", "result_count": 3})
                s, e = cur.take(2000, 3200)
                llm_chat(tr, eng, s, e, "engineering_agent", "gpt-4o", rng.randint(2400, 3400),
                         rng.randint(300, 500), "root_cause", kind="client")
                decision(tr, eng, cur, "engineering_agent", "recommend", 0.89, "known_incident",
                         "Incident INC-2291 matches the symptoms and hotfix 4.2.1 resolves it.",
                         recommendation="Install firmware 4.2.1 through the recovery page.",
                         reasoning_steps=_js([
                             {"step": 1, "description": "Look up open incidents for the router firmware",
                              "result": "INC-2291: AX3000 boot loop after 4.2.0", "evidence": "query_incidents"},
                             {"step": 2, "description": "Check the firmware changelog",
                              "result": "4.2.1 fixes the boot loop", "evidence": "firmware_changelog"},
                             {"step": 3, "description": "Confirm the device model and version",
                              "result": "AX3000 on 4.2.0", "evidence": "device_diagnostics"}]),
                         alternatives_considered=_js([
                             {"decision": "escalate", "confidence": 0.11,
                              "reason": "A fix exists, so the on-call engineer is not needed."}]))
                eng.end = cur.gap()
                outcome, minutes = "resolved_with_workaround", 12.0
            else:
                s = cur.gap()
                e = s + ms(5000) + ms(rng.uniform(2, 6))
                cur.t = e
                message = "Incident API did not answer within 5000 ms"
                tr.span("tool.query_incidents", s, e, eng, kind="client", attrs={
                    "tool.name": "query_incidents", "incident.component": "billing-portal",
                    "http.request.timeout_ms": 5000},
                    status="error", message=message,
                    events=[exception_event(e - ms(0.3), "TimeoutError", message, [
                        ("/srv/complaints/agents/engineering.py", 142, "investigate"),
                        ("/srv/complaints/tools/incidents.py", 57, "query_incidents")])])
                eng.end = cur.gap()
                eng.status, eng.message = "error", "incident lookup failed: TimeoutError"
                eng.events.append(exception_event(eng.end - ms(0.2), "TimeoutError", message, [
                    ("/srv/complaints/agents/technical.py", 96, "delegate"),
                    ("/srv/complaints/agents/engineering.py", 142, "investigate")]))
                esc = decision(tr, tech, cur, "technical_agent", "escalate", 0.77, "delegate_failed",
                               "Engineering could not check for incidents and a platinum customer is blocked, "
                               "so the on-call engineer is paged.",
                               delegated_to="oncall_engineer", escalation_required=True,
                               alternatives_considered=_js([
                                   {"decision": "recommend", "confidence": 0.23,
                                    "reason": "Clearing the browser cache rarely fixes server errors."}]))
                s, e = cur.take(250, 500)
                tr.span("tool.page_oncall", s, e, tech, kind="client", attrs={
                    "tool.name": "page_oncall", "triggered_by": esc.span_id, "pager.service": "billing-portal",
                    "pager.urgency": "high"})
                outcome, escalate, minutes = "escalated_to_oncall", True, 44.0
        tech.end = cur.gap()
    triage.end = cur.gap()
    root.end = cur.gap(1, 3)
    root.attrs.update({"business_outcome": outcome, "escalation_required": escalate,
                       "resolution_time_minutes": minutes})
    return tr


# --------------------------------------------------------------------------
# workflow 3: market research fan-out (agtrace flat JSONL)

MARKET_SERVICE = "market-research"
MARKET_SCOPE = ("market_research", "3.2.0")
MARKET_RESOURCE = {"service.name": MARKET_SERVICE, "service.version": "3.2.0",
                   "deployment.environment": "staging"}

RESEARCH_AGENTS = {
    "competitor_analysis_agent": [
        ("tool.web_search", 36, {"tool.name": "web_search", "search.provider": "bing"}),
        ("tool.kb_search", 20, {"tool.name": "kb_search", "kb.index": "market-reports"}),
        ("llm.chat", 44, None),
    ],
    "market_trends_agent": [
        ("tool.market_data_api", 30, {"tool.name": "market_data_api", "data.provider": "statista"}),
        ("tool.web_search", 25, {"tool.name": "web_search", "search.provider": "bing"}),
        ("llm.chat", 45, None),
    ],
    "customer_sentiment_agent": [
        ("tool.review_search", 30, {"tool.name": "review_search", "review.sources": ["trustpilot", "amazon"]}),
        ("tool.social_listening", 44, {"tool.name": "social_listening", "social.platforms": ["reddit", "x"]}),
        ("llm.chat", 26, None),
    ],
}


def market_research(ids: Ids, rng: random.Random, start: int, topic: str, agent_ms: dict,
                    root_ms: float, synth_ms: tuple[float, float], duration_only=False) -> Trace:
    """agent_ms: agent -> (start offset ms, duration ms); synth_ms: (start, end) offsets."""
    tr = Trace(ids, MARKET_SERVICE, MARKET_SCOPE)
    root = tr.span("market_research_workflow", start, start + ms(root_ms), kind="server", attrs={
        "workflow.name": "market_research", "research.topic": topic,
        "research.id": f"MR-{rng.randint(1000, 9999)}"})
    root.status = "ok"
    agents = {}
    for agent, (off, dur) in agent_ms.items():
        a = tr.span(f"{agent}.invoke", start + ms(off), start + ms(off + dur), root, attrs={
            "agent_name": agent, "agent_version": "1.9.0", "task": f"{agent.replace('_agent', '').replace('_', ' ')}"
                                                                   f" for {topic}"})
        agents[agent] = a
        slots = lay_out(a.start, a.end, [w for _, w, _ in RESEARCH_AGENTS[agent]])
        for (name, _, attrs), (s, e) in zip(RESEARCH_AGENTS[agent], slots):
            if name == "llm.chat":
                llm_chat(tr, a, s, e, agent, "gpt-4o", rng.randint(2200, 4200), rng.randint(350, 700),
                         "summarise_findings", kind="client")
                continue
            sp = tr.span(name, s, e, a, kind="client", attrs={**attrs, "result_count": rng.randint(6, 40)})
            if name == "tool.social_listening":
                sp.events.append(("rate_limit_backoff", s + (e - s) // 3,
                                  {"retry_after_ms": 800, "http.response.status_code": 429}))
    last = max(agents.values(), key=lambda a: a.end)
    first_start = min(a.start for a in agents.values())
    tr.span("sync.wait_for_research", first_start - ms(0.25), last.end, root, attrs={
        "sync_point": True, "waits_for": [f"{a}" for a in agent_ms]})
    synth = tr.span("synthesis_agent.invoke", start + ms(synth_ms[0]), start + ms(synth_ms[1]), root, attrs={
        "agent_name": "synthesis_agent", "agent_version": "1.9.0", "context_from_parent": {
            "topic": topic, "inputs": list(agent_ms)}},
        links=[(tr.trace_id, a.span_id, {"link.kind": "fan_in"}) for a in agents.values()])
    s, e = lay_out(synth.start, synth.end, [94, 6], lead=ms(2.0), gap=ms(0.8), tail=ms(2.0))
    openai_chat(tr, rng, synth, s[0], s[1], "gpt-4o", rng.randint(5200, 7400), rng.randint(600, 900))
    best = {"competitor_analysis_agent": "partner_with_distributor",
            "market_trends_agent": "enter_premium_segment",
            "customer_sentiment_agent": "lead_with_service_network"}[last.attrs["agent_name"]]
    tr.span("agent.decision_point", e[0], e[1], synth, attrs={
        "agent_name": "synthesis_agent", "decision_type": "recommend", "decision_confidence": 0.82,
        "reason_code": "evidence_weighted", "reasoning": f"All three research branches support '{best}' as the entry strategy.",
        "reasoning_steps": [
            {"step": 1, "description": "Rank competitors by share", "result": "Top three hold 48% of the segment",
             "evidence": agents["competitor_analysis_agent"].span_id},
            {"step": 2, "description": "Project segment growth", "result": "11% CAGR to 2027",
             "evidence": agents["market_trends_agent"].span_id},
            {"step": 3, "description": "Score customer pain points", "result": "After-sales service is the top complaint",
             "evidence": agents["customer_sentiment_agent"].span_id}],
        "alternatives_considered": [
            {"decision": "price_leadership", "confidence": 0.11, "reason": "Margins in the segment are already thin."},
            {"decision": "wait_one_year", "confidence": 0.07, "reason": "Growth favours early entrants."}],
        "recommendation": best})
    for sp in tr.spans:
        sp.duration_only = duration_only
    return tr


# --------------------------------------------------------------------------
# workflow 4: approvals (one pretty-printed OTLP/JSON request)

APPROVAL_SERVICE = "approvals"
APPROVAL_SCOPE = ("approvals.agent", "0.7.0")
APPROVAL_RESOURCE = {
    "service.name": APPROVAL_SERVICE,
    "service.version": "0.7.0",
    "deployment.environment": "production",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.22.0",
}

# request id, type, amount, department, start, decision_type, confidence, decision seconds,
# iterations, encoding, reason_code, reasoning, steps, alternatives, outcome, minutes
APPROVALS = [
    ("PR-2024-0117", "purchase_order", 48250.0, "research", clock(10, 20, 4.318226), "approve", 0.91, 7.2, 2,
     "json_string", "within_budget_and_policy",
     "The GPU workstation purchase is within the research budget, the vendor is pre-approved and the policy limit for "
     "department heads covers the amount.",
     [("Check the purchasing policy", "Department heads may approve up to 50,000 USD", "policy FIN-204 section 3.2"),
      ("Check the remaining budget", "61,400 USD left in the Q1 research budget", "budget_check"),
      ("Assess the vendor", "Vendor is on the pre-approved list with low risk", "vendor_risk_lookup")],
     [("escalate_to_cfo", 0.07, "Amount is below the CFO threshold of 50,000 USD."),
      ("reject", 0.02, "No policy or budget reason to decline.")],
     "approved", 14.0),
    ("CR-2024-0042", "contract_renewal", 12900.0, "marketing", clock(10, 50, 37.902184), "approve", 0.87, 5.6, 3,
     "kvlist_array", "renewal_terms_unchanged",
     "The analytics contract renews on the same terms, usage justifies the spend and legal approved the template.",
     [("Compare the renewal terms", "Price and terms identical to 2023", "contract diff"),
      ("Check usage", "82% of seats active in the last 90 days", "usage_report"),
      ("Check legal review", "Standard template, pre-approved by legal", "legal template LT-7"),
      ("Check the remaining budget", "Marketing tooling budget covers the renewal", "budget_check")],
     [("renegotiate", 0.1, "Usage is high enough that a discount is unlikely."),
      ("reject", 0.03, "The team relies on the tool for weekly reporting.")],
     "approved", 9.0),
    ("TE-2024-0305", "travel_exception", 6480.0, "sales", clock(11, 30, 12.660913), "approve", 0.78, 8.4, 2,
     "events", "business_justification",
     "The business-class exception is justified by the overnight flight and the signed customer meeting the next morning.",
     [("Check the travel policy", "Business class needs an exception under 8 hours", "policy TRV-12"),
      ("Check the business case", "Meeting with a 1.2M USD renewal customer on arrival", "crm opportunity OPP-5521"),
      ("Compare fares", "Premium economy saves 1,900 USD but arrives after the meeting", "fare_search")],
     [("approve_premium_economy", 0.18, "Cheaper, but the arrival time misses the meeting."),
      ("reject", 0.04, "The trip itself is clearly justified.")],
     "approved", 22.0),
    ("PR-2024-0121", "software_license", 2300.0, "engineering", clock(11, 5, 48.224519), "reject", 0.93, 2.3, 1,
     "json_string", "duplicate_request",
     "An identical license request for the same team was approved last week, so this one is a duplicate.",
     [("Search recent requests", "PR-2024-0108 covers the same licenses", "request history"),
      ("Confirm with the requester's team", "Same cost centre and seat count", "cost centre 4410")],
     [("approve", 0.05, "Would double-buy the same seats.")],
     "rejected", 3.0),
    ("PR-2024-0126", "purchase_order", 31800.0, "operations", clock(12, 21, 9.381047), "approve", 0.84, 6.1, 1,
     "kvlist_array", "within_budget_and_policy",
     "The warehouse scanner replacement is budgeted and the quote matches the framework agreement prices.",
     [("Check the purchasing policy", "Within the operations director's 40,000 USD limit", "policy FIN-204 section 3.2"),
      ("Compare with the framework agreement", "Unit prices match agreement FA-2023-09", "vendor_risk_lookup")],
     [("request_second_quote", 0.12, "The framework agreement already fixes the prices.")],
     "approved", 11.0),
]


def approval(ids: Ids, rng: random.Random, spec) -> Trace:
    (req_id, req_type, amount, dept, start, dtype, conf, decision_s, iterations, encoding, reason_code,
     reasoning, steps, alternatives, outcome, minutes) = spec
    tr = Trace(ids, APPROVAL_SERVICE, APPROVAL_SCOPE)
    root = tr.span("approval_workflow", start, kind="server", attrs={
        "workflow.name": "approval", "request.id": req_id, "request.type": req_type,
        "request.amount_usd": amount, "requester.department": dept})
    root.status = "ok"
    t = start + ms(rng.uniform(1, 3))
    agent = tr.span("approval_agent.invoke", t, parent=root, attrs={
        "agent_name": "approval_agent", "agent_version": "0.7.0", "gen_ai.agent.name": "approval_agent"})

    def tool(name, lo, hi, **attrs):
        nonlocal t
        t += ms(rng.uniform(0.5, 1.5))
        d = ms(rng.uniform(lo, hi))
        sp = tr.span(f"tool.{name}", t, t + d, agent, kind="client", attrs={"tool.name": name, **attrs})
        t += d
        return sp

    tool("fetch_policy", 120, 300, result_count=rng.randint(2, 5))
    tool("budget_check", 200, 450, result_count=1, **{"budget.cost_centre": f"CC-{rng.randint(4000, 4999)}"})
    thoughts = [
        "Policy limits and budget are known; next confirm the vendor and the business case.",
        "Vendor and business case look sound; check whether anything needs a higher approver.",
        "No open questions remain that change the outcome.",
    ]
    for i in range(1, iterations + 1):
        t += ms(rng.uniform(0.5, 1.5))
        it = tr.span(f"reasoning_iteration_{i}", t, parent=agent, attrs={
            "agent_name": "approval_agent", "iteration": i, "reasoning": thoughts[min(i - 1, 2)],
            "open_questions": max(iterations - i, 0)})
        t += ms(rng.uniform(0.5, 1.0))
        d = ms(rng.uniform(1400, 2600))
        openai_chat(tr, rng, it, t, t + d, "gpt-4o", rng.randint(1800, 3200), rng.randint(220, 480), lean=True)
        t += d + ms(rng.uniform(0.3, 1.0))
        it.end = t
        if i == 1:
            tool("vendor_risk_lookup", 300, 700, result_count=1, **{"vendor.risk_score": round(rng.uniform(0.05, 0.2), 2)})
    t += ms(rng.uniform(0.5, 1.5))
    dec = tr.span("approval_decision", t, t + ms(decision_s * 1000), agent, attrs={
        "agent_name": "approval_agent", "decision_type": dtype, "decision_confidence": conf,
        "reason_code": reason_code, "reasoning": reasoning, "approval.amount_usd": amount,
        "escalation_required": False})
    step_dicts = [{"step": i, "description": d, "result": r, "evidence": ev}
                  for i, (d, r, ev) in enumerate(steps, start=1)]
    alt_dicts = [{"decision": a, "confidence": c, "reason": why} for a, c, why in alternatives]
    if encoding == "json_string":
        dec.attrs["reasoning_steps"] = json.dumps(step_dicts)
        dec.attrs["alternatives_considered"] = json.dumps(alt_dicts)
    elif encoding == "kvlist_array":
        dec.attrs["reasoning_steps"] = step_dicts
        dec.attrs["alternatives_considered"] = alt_dicts
    else:
        span_ns = dec.end - dec.start
        for i, sd in enumerate(step_dicts):
            dec.events.append(("reasoning_step", dec.start + span_ns * (i + 1) // (len(steps) + 3) // US * US, sd))
        for ad in alt_dicts:
            dec.events.append(("alternative_considered", dec.end - ms(rng.uniform(20, 60)), ad))
        dec.events.sort(key=lambda ev: ev[1])
    dec.attrs["reasoning_encoding"] = encoding
    openai_chat(tr, rng, dec, dec.start + ms(1.2), dec.end - ms(2.4), "gpt-4o",
                rng.randint(3500, 5200), rng.randint(700, 1100), lean=True)
    t = dec.end
    notify = tool("notify_requester", 90, 200, **{"notification.channel": "email"})
    notify.attrs["triggered_by"] = dec.span_id
    agent.end = t + ms(rng.uniform(0.5, 1.5))
    root.end = agent.end + ms(rng.uniform(1, 3))
    root.attrs.update({"business_outcome": outcome, "escalation_required": False,
                       "resolution_time_minutes": minutes})
    return tr


# --------------------------------------------------------------------------
# writers


def any_value(v, go_floats: bool) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        # Go's encoder (the Collector) writes 48250.0 as 48250
        return {"doubleValue": int(v) if go_floats and v.is_integer() else v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [any_value(x, go_floats) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": key_values(v, go_floats)}}
    raise TypeError(f"unsupported attribute value {v!r}")


def key_values(attrs: dict, go_floats: bool) -> list:
    return [{"key": k, "value": any_value(v, go_floats)} for k, v in attrs.items()]


def otlp_span(s: Span, go_floats: bool) -> dict:
    out = {
        "traceId": s.trace_id,
        "spanId": s.span_id,
        "parentSpanId": s.parent_id or "",
        "name": s.name,
        "kind": KIND_NUMBER[s.kind],
        "startTimeUnixNano": str(s.start),
        "endTimeUnixNano": str(s.end),
        "attributes": key_values(s.attrs, go_floats),
    }
    if s.events:
        out["events"] = [
            {"timeUnixNano": str(t), "name": n, **({"attributes": key_values(a, go_floats)} if a else {})}
            for n, t, a in s.events]
    if s.links:
        out["links"] = [
            {"traceId": tid, "spanId": sid, **({"attributes": key_values(a, go_floats)} if a else {})}
            for tid, sid, a in s.links]
    status = {}
    if s.message:
        status["message"] = s.message
    if s.status != "unset":
        status["code"] = STATUS_NUMBER[s.status]
    out["status"] = status
    return out


def otlp_request(spans: list[Span], resources: dict, go_floats: bool) -> dict:
    """Group spans by resource then scope, keeping first-seen order."""
    by_service: dict[str, dict[tuple, list]] = {}
    for s in spans:
        by_service.setdefault(s.service, {}).setdefault(s.scope, []).append(s)
    return {"resourceSpans": [
        {"resource": {"attributes": key_values(resources[svc], go_floats)},
         "scopeSpans": [
             {"scope": {"name": name, "version": version},
              "spans": [otlp_span(s, go_floats) for s in group]}
             for (name, version), group in scopes.items()]}
        for svc, scopes in by_service.items()]}


def go_json(obj) -> str:
    """Compact JSON as the Collector (Go) writes it: raw UTF-8, <>& escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def collector_lines(traces: list[Trace], resources: dict, window_ns=2 * 10**9) -> str:
    """The Collector file exporter: one ExportTraceServiceRequest per export batch.

    The app's BatchSpanProcessor (OTEL_BSP_SCHEDULE_DELAY=2000) exports what
    ended during each 2 s window, so one trace is spread over several lines and
    concurrent traces share a line.
    """
    spans = sorted((s for tr in traces for s in tr.spans), key=lambda s: (s.end, s.span_id))
    batches: dict[int, list[Span]] = {}
    for s in spans:
        batches.setdefault(s.end // window_ns, []).append(s)
    return "".join(go_json(otlp_request(b, resources, go_floats=True)) + "\n" for _, b in sorted(batches.items()))


def iso_us(ns: int) -> str:
    return iso(ns, 6)


def depth_of(spans: list[Span]) -> dict[str, int]:
    parents = {s.span_id: s.parent_id for s in spans}
    depth = {}
    for sid in parents:
        d, p = 0, parents[sid]
        while p is not None:
            d, p = d + 1, parents.get(p)
        depth[sid] = d
    return depth


def console_attrs(attrs: dict) -> dict:
    prim = (str, bool, int, float)
    for k, v in attrs.items():
        ok = isinstance(v, prim) or (
            isinstance(v, list) and all(isinstance(x, prim) for x in v) and len({type(x) for x in v}) <= 1)
        if not ok:
            raise TypeError(f"the Python SDK would drop attribute {k}={v!r}")
    return dict(attrs)


def console_context(trace_id: str, span_id: str) -> dict:
    return {"trace_id": "0x" + trace_id, "span_id": "0x" + span_id, "trace_state": "[]"}


def console_output(traces: list[Trace], resource: dict) -> str:
    """ConsoleSpanExporter: ReadableSpan.to_json() of each span as it ends."""
    spans = [s for tr in traces for s in tr.spans]
    depth = depth_of(spans)
    out = []
    for s in sorted(spans, key=lambda s: (s.end, -depth[s.span_id], s.span_id)):
        status = {"status_code": s.status.upper()}
        if s.message:
            status["description"] = s.message
        obj = {
            "name": s.name,
            "context": console_context(s.trace_id, s.span_id),
            "kind": "SpanKind." + s.kind.upper(),
            "parent_id": "0x" + s.parent_id if s.parent_id else None,
            "start_time": iso_us(s.start),
            "end_time": iso_us(s.end),
            "status": status,
            "attributes": console_attrs(s.attrs),
            "events": [{"name": n, "timestamp": iso_us(t), "attributes": console_attrs(a)} for n, t, a in s.events],
            "links": [{"context": console_context(tid, sid), "attributes": console_attrs(a)}
                      for tid, sid, a in s.links],
            "resource": {"attributes": dict(resource), "schema_url": ""},
        }
        out.append(json.dumps(obj, indent=4) + "\n")
    return "".join(out)


def flat_number(ns: int):
    value = ns / MS
    return int(value) if value.is_integer() else value


def flat_lines(traces: list[Trace], resource: dict) -> str:
    """agtrace's flat JSONL dump: one span per line, sorted by trace then start."""
    lines = []
    for tr in traces:
        for s in sorted(tr.spans, key=lambda s: (s.start, s.span_id)):
            obj = {"trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_id,
                   "name": s.name, "kind": s.kind, "start": iso(s.start)}
            if s.duration_only:
                obj["duration_ms"] = flat_number(s.end - s.start)
            else:
                obj["end"] = iso(s.end)
            obj.update({
                "status": s.status, "status_message": s.message or None, "service": s.service,
                "resource": resource, "attributes": s.attrs,
                "events": [{"name": n, "time": iso(t), "attributes": a} for n, t, a in s.events],
                "links": [{"trace_id": tid, "span_id": sid, "attributes": a} for tid, sid, a in s.links],
            })
            lines.append(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
    return "".join(lines)


# --------------------------------------------------------------------------
# assembly


def build():
    """Return {file name: bytes} plus the facts the README reports."""
    files: dict[str, bytes] = {}
    facts: list[dict] = []
    notes: list[tuple[str, str, str]] = []  # (what, trace id, span id)

    def count(name, fmt, workflow, traces, purpose):
        facts.append({"file": name, "format": fmt, "workflow": workflow, "traces": len(traces),
                      "spans": sum(len(t.spans) for t in traces), "purpose": purpose})

    # 1. customer inquiry
    ids, rng = Ids(20240115_01), random.Random(1_001)
    inquiries = [customer_inquiry(ids, rng, i, spec) for i, spec in enumerate(INQUIRIES, start=1)]
    files["customer_inquiry.otlp.jsonl"] = collector_lines(inquiries, {SUPPORT_SERVICE: SUPPORT_RESOURCE}).encode()
    count("customer_inquiry.otlp.jsonl", "OTLP/JSON lines (Collector file exporter)", "customer-inquiry",
          inquiries, "stats, decisions, escalation links, the failing ticket call")
    more = [customer_inquiry(ids, rng, i, spec) for i, spec in enumerate(MORE_INQUIRIES, start=len(INQUIRIES) + 1)]
    text = collector_lines(more, {SUPPORT_SERVICE: SUPPORT_RESOURCE}).encode()
    files["customer_inquiry_more.otlp.jsonl.gz"] = gzip.compress(text, compresslevel=9, mtime=0)
    count("customer_inquiry_more.otlp.jsonl.gz", "gzip of OTLP/JSON lines", "customer-inquiry",
          more, "gzip input; more traces for the same stats")
    for i, tr in enumerate(inquiries + more, start=1):
        for s in tr.spans:
            if s.name == "agent.decision_point" and s.attrs["decision_type"] == "escalate_to_human":
                where = "" if i <= len(inquiries) else " (in the .gz)"
                notes.append((f"inquiry {i}{where}: escalate_to_human decision, confidence "
                              f"{s.attrs['decision_confidence']}", tr.trace_id, s.span_id))
            if s.status == "error":
                notes.append((f"inquiry {i}: the failing `tool.create_ticket` (503, exception event); "
                              f"its `triggered_by` is `{s.attrs['triggered_by']}`", tr.trace_id, s.span_id))

    # 2. complaint handling
    ids, rng = Ids(20240115_02), random.Random(2_002)
    complaints = [
        complaint(ids, rng, 1, clock(10, 5, 17.204118), "firmware"),
        complaint(ids, rng, 2, clock(10, 35, 2.551906), "portal_error"),
        complaint(ids, rng, 3, clock(10, 35, 8.093377), "rude_agent"),
        complaint(ids, rng, 4, clock(11, 40, 44.718630), "sync"),
    ]
    files["complaint_handling.console.txt"] = console_output(complaints, COMPLAINT_RESOURCE).encode()
    count("complaint_handling.console.txt", "Python SDK ConsoleSpanExporter", "complaint-handling",
          complaints, "delegation chains, has_ancestor, an error under triage")
    for i, tr in enumerate(complaints, start=1):
        for s in tr.spans:
            if s.status == "error":
                notes.append((f"complaint {i}: error `{s.name}` below `triage_agent.invoke`", tr.trace_id, s.span_id))

    # 3. market research
    ids, rng = Ids(20240115_03), random.Random(3_003)
    research = [
        market_research(ids, rng, clock(10, 15, 0.25), "European e-bike market entry (€1.5k–3k segment)", {
            "competitor_analysis_agent": (10.0, 3000.0),
            "market_trends_agent": (10.15, 2100.0),
            "customer_sentiment_agent": (10.3, 5400.0)}, 5800.0, (5418.0, 5792.0)),
        market_research(ids, rng, clock(10, 45, 31.804227), "Smart thermostat retrofit market in the UK", {
            "competitor_analysis_agent": (8.2, 4611.4),
            "market_trends_agent": (8.31, 1932.55),
            "customer_sentiment_agent": (8.44, 3105.7)}, 5073.9, (4624.8, 5066.35)),
        market_research(ids, rng, clock(11, 20, 6.118452), "Plant-based protein snacks in Germany", {
            "competitor_analysis_agent": (11.4, 2402.9),
            "market_trends_agent": (11.52, 3811.75),
            "customer_sentiment_agent": (11.61, 2920.15)}, 4460.1, (3830.6, 4451.3), duration_only=True),
    ]
    files["market_research.jsonl"] = flat_lines(research, MARKET_RESOURCE).encode()
    count("market_research.jsonl", "agtrace flat JSONL", "market-research", research,
          "fan-out / critical path (sentiment agent is the bottleneck of trace 1)")
    for i, tr in enumerate(research, start=1):
        for s in tr.spans:
            if s.parent_id is None or (i == 1 and s.name in ("customer_sentiment_agent.invoke",
                                                              "sync.wait_for_research")):
                notes.append((f"market-research trace {i}: `{s.name}`", tr.trace_id, s.span_id))

    # 4. approvals
    ids, rng = Ids(20240115_04), random.Random(4_004)
    approvals = [approval(ids, rng, spec) for spec in APPROVALS]
    pretty = json.dumps(otlp_request(
        [s for tr in approvals for s in sorted(tr.spans, key=lambda s: (s.end, s.span_id))],
        {APPROVAL_SERVICE: APPROVAL_RESOURCE}, go_floats=False), indent=2, ensure_ascii=False) + "\n"
    files["approval.otlp.json"] = pretty.encode()
    count("approval.otlp.json", "OTLP/JSON, one pretty-printed request", "approval", approvals,
          "approval_decision > 5 s query; reasoning as JSON string / kvlist array / events")
    for spec, tr in zip(APPROVALS, approvals):
        dec = next(s for s in tr.spans if s.name == "approval_decision")
        notes.append((f"approval {spec[0]}: `approval_decision` {spec[5]}, {spec[7]} s, "
                      f"reasoning as {spec[9]}", tr.trace_id, dec.span_id))

    files["README.md"] = readme(facts, notes).encode()
    return files


def readme(facts: list[dict], notes: list[tuple[str, str, str]]) -> str:
    total_spans = sum(f["spans"] for f in facts)
    total_traces = sum(f["traces"] for f in facts)
    rows = "\n".join(
        f"| `{f['file']}` | {f['format']} | {f['workflow']} | {f['traces']} | {f['spans']} | {f['purpose']} |"
        for f in facts)
    ids = "\n".join(f"| {what} | `{trace_id}` | `{span_id}` |" for what, trace_id, span_id in notes)
    return f"""# Sample traces

Small, realistic traces of four hand-instrumented multi-agent workflows, all
on 2024-01-15 between 10:02 and 12:22 UTC. They feed the README examples and
the tests. Do not edit them by hand: they are written by `make_samples.py`
(fixed seeds, byte-identical on every run; `python make_samples.py [OUTDIR]`).

| file | format | workflow | traces | spans | what it is for |
|---|---|---|---|---|---|
{rows}
| total | | | {total_traces} | {total_spans} | |

Notes
- `customer_inquiry.otlp.jsonl`: one ExportTraceServiceRequest per line, as
  the Collector file exporter writes a 2 s batching exporter's output: each
  trace spread over several lines, inquiries 5 and 6 share lines. Two scopes
  (hand-instrumented agents, `opentelemetry.instrumentation.openai_v2` for
  `chat gpt-4o` calls). `alternatives_considered` and `context_from_parent`
  are arrayValue/kvlistValue. Integral doubles are written Go-style (`96`).
  Escalated inquiries (3, 5, 8) run `escalation_agent.invoke` and
  `tool.create_ticket`, both with `triggered_by` = the decision's span id; each
  ticket call also has a span link (`link.kind = caused_by`) to the decision.
  In inquiry 5 the first `tool.create_ticket` fails (503, `exception` event)
  and a retry succeeds: the only error span in the customer-inquiry files.
- `complaint_handling.console.txt`: concatenated pretty-printed span objects,
  children before parents, complaints 2 and 3 interleaved. Structured values
  (`context_from_parent`, `reasoning_steps`, `alternatives_considered`) are JSON
  strings because the SDK only accepts primitives and arrays. Complaint 2 has
  two error spans (`tool.query_incidents` and `engineering_agent.invoke`)
  below `triage_agent.invoke`.
- `market_research.jsonl`: trace 1 is the fan-out of the critical-path spec:
  root 5.8 s; competitor 3.0 s, trends 2.1 s, sentiment 5.4 s start together;
  `sync.wait_for_research` (`sync_point = true`) ends exactly with the
  sentiment agent; `synthesis_agent.invoke` follows. Trace 2's slowest branch
  is the competitor agent, trace 3's the trends agent; trace 3 gives
  `duration_ms` instead of `end`. `synthesis_agent.invoke` links to the three
  research agents (`link.kind = fan_in`); reasoning values are nested JSON.
- `approval.otlp.json`: the query
  `name = "approval_decision" and duration_ms > 5000 and timestamp > "2024-01-15T10:00:00Z" and timestamp < "2024-01-15T12:00:00Z"`
  matches exactly three spans (PR-2024-0117, CR-2024-0042, TE-2024-0305), one
  per reasoning encoding (attribute `reasoning_encoding` says which):
  `json_string` (stringValue JSON), `kvlist_array` (arrayValue of
  kvlistValue), `events` (span events `reasoning_step` with
  step/description/result/evidence and `alternative_considered`). PR-2024-0121
  is a 2.3 s `reject`; PR-2024-0126 starts at 12:21, outside the window.

## Notable ids

| what | trace id | span id |
|---|---|---|
{ids}
"""


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    files = build()
    for name, data in files.items():
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
