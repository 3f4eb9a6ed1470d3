"""A cascade: the cheap model answers (its own caches, admission and fallbacks); the router's check reads that
answer and, when the frontier is expected to gain more than the margin, the frontier model answers too. Each step is
admitted and settled on its own cost; the request gets one ledger entry with every call of both. When the cheap
step fails the frontier answers; when the escalation fails the cheap answer is served."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenomy.errors import TokenomyError
from tokenomy.gateway.recorders import Recorder, StepRecorder
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import Answer, cost_headers
from tokenomy.gateway.serve import answer
from tokenomy.ledger.trace import RequestTrace
from tokenomy.routing.serve import Routed
from tokenomy.wire.completion import answer_text

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway


async def answer_cascade(gw: Gateway, routed: Routed, trace: RequestTrace, caller: Caller,
                         record: Recorder) -> Answer:
    cascade = routed.cascade
    assert cascade is not None
    held = StepRecorder(gw)  # a step's own entry settles its reservation; only the request's is recorded
    cheap_step = trace.step(routed.chat.body)
    cheap: Answer | None = None
    try:
        cheap = await answer(gw, routed.chat, cheap_step, caller, held)
    except TokenomyError as exc:
        trace.absorb(cheap_step)
        verdict, note = "cheap-failed", f"{routed.model} failed ({exc.code}); escalated"
    else:
        trace.absorb(cheap_step)
        escalate, gain, margin = await cascade.escalate(answer_text(cheap.completion) or "")
        verdict = "escalated" if escalate else "kept"
        note = f"gain {gain:.3f} {'>' if escalate else '<='} {margin:.3g}: {verdict}"
        if not escalate:
            return _cascaded(cheap, routed.model, trace, record, routed, note, verdict)
    frontier_step = trace.step(cascade.frontier.body)
    try:
        frontier = await answer(gw, cascade.frontier, frontier_step, caller, held)
    except TokenomyError as exc:
        trace.absorb(frontier_step)
        if cheap is None:
            trace.route_reason = f"{routed.reason}; {note}; the escalation failed too"
            record(trace, exc.status, exc)
            raise
        return _cascaded(cheap, routed.model, trace, record, routed,
                         f"{note}; the escalation failed ({exc.code}): cheap answer served", "escalation-failed")
    trace.absorb(frontier_step)
    return _cascaded(frontier, cascade.frontier.typed.model, trace, record, routed, note, verdict)


def _cascaded(step: Answer, model: str, trace: RequestTrace, record: Recorder, routed: Routed, note: str,
              verdict: str) -> Answer:
    """The request's one ledger entry, and the answer of the step that served it (``model``)."""
    trace.route_reason = f"{routed.reason}; {note}"
    entry = record(trace, 200)
    headers = {**step.headers, **cost_headers(entry), "x-tokenomy-route": model,
               "x-tokenomy-route-reason": trace.route_reason, "x-tokenomy-cascade": verdict}
    return Answer(step.completion, entry, headers)
