"""POST /v1/chat/completions."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.auth import principal_of
from tokenomy.api.responses import json_response, read_body, request_id
from tokenomy.api.state import Gateway
from tokenomy.api.streaming import SSEResponse, relay
from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.layer import Probe
from tokenomy.cache.shape import shape_body
from tokenomy.cache.stream_shape import StreamAssembler, fresh, replay_chunks
from tokenomy.control.admission import Admission, Ticket
from tokenomy.control.auth import ANONYMOUS, Principal
from tokenomy.control.estimate import explicit_max_output
from tokenomy.distill.serve import ServedStudent
from tokenomy.errors import TokenomyError
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import CachedAnswer, RequestTrace
from tokenomy.providers.registry import Deployment
from tokenomy.providers.sse import DONE, encode_data
from tokenomy.routing.serve import Routed
from tokenomy.wire.completion import answer_text
from tokenomy.wire.validation import ValidChat, parse_json_object, validate_chat


class Recorder(Protocol):
    def __call__(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry: ...


def _headers(rid: str, model: str, tier: str, deployment: str, cache: str) -> dict[str, str]:
    return {"x-request-id": rid, "x-tokenomy-model": model, "x-tokenomy-tier": tier,
            "x-tokenomy-deployment": deployment, "x-tokenomy-cache": cache}


def _served_headers(rid: str, dep: Deployment, cache: str) -> dict[str, str]:
    return _headers(rid, dep.config.sent_model, dep.config.tier, dep.name, cache)


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else format(value.normalize(), "f")


def _cost_headers(entry: LedgerEntry) -> dict[str, str]:
    return {"x-tokenomy-cost-usd": _money(entry.request.cost_usd),
            "x-tokenomy-saving-usd": _money(entry.request.saving_usd)}


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    rid = request.state.request_id = request_id(request)
    principal = principal_of(request)
    raw = await read_body(request, gateway.settings.server.max_body_bytes)
    chat = validate_chat(parse_json_object(raw))
    principal.check_model(chat.typed.model)
    chat = replace(chat, body=shape_body(chat.body))  # prompt-cache shaping; never changes meaning
    trace = RequestTrace(id=rid, endpoint="chat.completions", requested_model=chat.typed.model, stream=chat.stream,
                         body=chat.body, key_id=principal.key_id, tenant=principal.team_name,
                         tags=principal.tags_json)
    student = gateway.students.match(chat.body) if gateway.students is not None else None
    if student is not None and gateway.students is not None:
        trace.distill = await gateway.students.before(student, chat.body)
        if trace.distill is not None and trace.distill.mode == "live":
            return _serve_student(gateway, chat, trace, student)
    routed = await gateway.routers.route(chat, request.headers, gateway.dispatcher.catalog.serves) \
        if gateway.routers is not None else None
    stream, include_usage = chat.stream, chat.include_usage
    if routed is not None:
        chat = routed_chat(trace, routed)
    if routed is not None and routed.cascade is not None:
        served: Response | Answer = await answer_cascade(gateway, routed, trace, request.headers,
                                                         record=gateway.record, principal=principal)
    else:
        served = await _serve(gateway, chat, trace, request.headers, gateway.record, principal,
                              routed.then if routed is not None else ())
    if isinstance(served, Answer):
        await gateway.acknowledge(served.entry)
    if isinstance(served, Answer) and stream:  # a cascade answers whole; the stream replays it
        chunks = replay_chunks(served.completion, include_usage=include_usage)
        response: Response = SSEResponse(_replay(chunks), {**served.headers, "cache-control": "no-cache"})
    else:
        response = json_response(served.completion, headers=served.headers) if isinstance(served, Answer) \
            else served
    if routed is not None and routed.cascade is None:
        for name, value in routed.headers().items():  # unless the router's next choice answered (it says so)
            response.headers.setdefault(name, value)
    if trace.distill is not None:
        response.headers["x-tokenomy-distill"] = f"{trace.distill.task} {trace.distill.mode}"
    return response


def routed_chat(trace: RequestTrace, routed: Routed) -> ValidChat:
    """The routed request, with the route's reason and its cost estimate (settled when it is recorded) on
    ``trace``."""
    trace.route_reason = routed.reason
    if routed.estimated_usd is not None:
        trace.route_estimate = (routed.model, routed.estimated_usd)
    return routed.chat


@dataclass(slots=True)
class Answer:
    """A whole (non-streamed) answer: the completion, its ledger entry and the x-tokenomy-* headers."""

    completion: dict[str, Any]
    entry: LedgerEntry
    headers: dict[str, str]


async def answer(gateway: Gateway, chat: ValidChat, trace: RequestTrace, asked: Mapping[str, str], *,
                 record: Recorder, principal: Principal = ANONYMOUS, then: Sequence[str] = ()) -> Answer:
    """Answer a non-streamed request: exact cache, semantic cache, admission (rate limits, budget), then the
    upstream chain (then the chains of ``then``, a router's next choices); the ledger entry is made by ``record``
    (``gateway.record`` queues it; a batch line keeps it to commit with the line's result). Raises the request's
    TokenomyError after recording it."""
    served = await _serve(gateway, replace(chat, typed=msgspec.structs.replace(chat.typed, stream=False)), trace,
                          asked, record, principal, then)
    assert isinstance(served, Answer)
    return served


async def _serve(gateway: Gateway, chat: ValidChat, trace: RequestTrace, asked: Mapping[str, str],
                 record: Recorder, principal: Principal = ANONYMOUS, then: Sequence[str] = ()) -> Response | Answer:
    """A Response for a stream; an Answer (the caller renders it) otherwise. ``then``: a router's next choices,
    tried when the requested model's whole chain fails; the budget reservation covers their chains too."""
    rid = trace.id
    cache = gateway.cache
    namespace = Admission.namespace(principal, gateway.settings.cache.exact.namespace)  # tenants never share
    decision = cache.decide(chat.body, asked, namespace) if cache else None
    hit, probe = await _lookup(gateway, chat, trace, decision, namespace, record)
    if hit is not None:
        return hit
    control = gateway.control
    ticket: Ticket | None = None
    try:
        if control is not None:  # rate limits and the budget reservation, before any upstream call
            catalog = gateway.dispatcher.catalog
            chain = [d for model in (chat.typed.model, *then) for d in catalog.chain(model)]
            ticket = await control.admit(principal, chat, rid, chain)
    except TokenomyError as exc:
        record(trace, exc.status, exc)  # refused (429) or unknown model (404): no upstream call, no cost
        raise
    if chat.stream:
        return await _stream(gateway, chat, trace, decision, probe, ticket, then)
    entry: LedgerEntry | None = None
    try:
        done = await gateway.dispatcher.complete(chat, trace, then)
        route = _fell_back(trace, chat.typed.model, then, done.model)
        if cache is not None and decision is not None:
            await cache.put(decision, done.completion, deployment=done.deployment.name,
                            tier=done.deployment.config.tier)
            if gateway.semantic is not None:
                await gateway.semantic.remember(probe, decision, done.completion)
        entry = record(trace, 200)
    except TokenomyError as exc:
        entry = record(trace, exc.status, exc)
        raise
    finally:
        if control is not None:
            await control.settle(ticket, entry)
            if entry is not None:
                await control.settle_deployments(entry, explicit_max_output(chat.body) or 0)
    headers = {**_served_headers(rid, done.deployment, trace.cache_status), **_cost_headers(entry),
               **(ticket.headers if ticket else {}), **route}
    return Answer(done.completion, entry, headers)


def _fell_back(trace: RequestTrace, asked: str, then: Sequence[str], model: str) -> dict[str, str]:
    """When a router's next choice answered (``model``, not the ``asked`` one): the route reason says so, in the
    ledger and the headers, and ``x-tokenomy-route`` names it. No headers otherwise."""
    if model == asked:
        return {}
    failed = ", ".join((asked, *then[:then.index(model)]))
    trace.route_reason = f"{trace.route_reason}; {failed} failed, served by {model} (router's next choice)"
    return {"x-tokenomy-route": model, "x-tokenomy-route-reason": trace.route_reason}


async def answer_cascade(gateway: Gateway, routed: Routed, trace: RequestTrace, asked: Mapping[str, str], *,
                         record: Recorder, principal: Principal = ANONYMOUS) -> Answer:
    """A cascade: the cheap model answers (its own caches, admission and fallbacks); the router's check reads that
    answer and, when the frontier is expected to gain more than the margin, the frontier model answers too. Each
    step is admitted and settled on its own cost; ``record`` gets one ledger entry with every call of both. When
    the cheap step fails the frontier answers; when the escalation fails the cheap answer is served."""
    cascade = routed.cascade
    assert cascade is not None
    held = gateway.accountant.entry  # a step's own entry settles its reservation; only the request's is recorded
    cheap_step = trace.step(routed.chat.body)
    cheap: Answer | None = None
    try:
        cheap = await answer(gateway, routed.chat, cheap_step, asked, record=held, principal=principal)
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
        frontier = await answer(gateway, cascade.frontier, frontier_step, asked, record=held, principal=principal)
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
    headers = {**step.headers, **_cost_headers(entry), "x-tokenomy-route": model,
               "x-tokenomy-route-reason": trace.route_reason, "x-tokenomy-cascade": verdict}
    return Answer(step.completion, entry, headers)


def _serve_student(gateway: Gateway, chat: ValidChat, trace: RequestTrace, student: ServedStudent) -> Response:
    """A live distilled student answers: one call on its deployment (priced at its CPU time) in the ledger."""
    assert gateway.students is not None and trace.distill is not None
    mark = trace.distill
    counter = gateway.accountant.counter
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    if counter is not None:
        usage = {"prompt_tokens": counter.count_messages(chat.body.get("messages") or [], chat.typed.model),
                 "completion_tokens": counter.count_completion(mark.answer or "", None, chat.typed.model)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    completion = gateway.students.completion(student, mark, chat.body, usage)
    trace.begin_call(student.deployment).complete(completion)
    entry = gateway.record(trace, 200)
    dep = student.deployment
    headers = {**_headers(trace.id, dep.model, dep.tier, dep.name, trace.cache_status),
               "x-tokenomy-distill": f"{mark.task} live", "x-tokenomy-distill-confidence": f"{mark.confidence:.4f}"}
    if not chat.stream:
        return json_response(completion, headers={**headers, **_cost_headers(entry)})
    chunks = replay_chunks(completion, include_usage=chat.include_usage)
    return SSEResponse(_replay(chunks), {**headers, "cache-control": "no-cache"})


async def _lookup(gateway: Gateway, chat: ValidChat, trace: RequestTrace, decision: CacheDecision | None,
                  namespace: str, record: Recorder) -> tuple[Response | Answer | None, Probe | None]:
    """A cached (exact or semantic) answer, when there is one; else the semantic probe to remember the answer by."""
    cache = gateway.cache
    if cache is None or decision is None:
        return None, None
    cached = await cache.get(decision)
    if cached is not None:
        return _serve_hit(chat, trace, cached, record), None
    trace.cache_status = "miss"
    if gateway.semantic is None:
        return None, None
    probe = await gateway.semantic.probe(chat.body, decision, namespace)
    if probe is not None and probe.answer is not None and probe.match is not None:
        gateway.semantic.served(trace.id, probe.match)
        return _serve_hit(chat, trace, probe.answer, record, semantic_score=probe.match.score), probe
    return None, probe


def _serve_hit(chat: ValidChat, trace: RequestTrace, cached: dict[str, Any], record: Recorder, *,
               semantic_score: float | None = None) -> Response | Answer:
    completion = fresh(cached["completion"])
    status = trace.cache_status = "hit" if semantic_score is None else "semantic-hit"
    trace.cached = CachedAnswer(model=str(completion.get("model") or ""), deployment=str(cached.get("deployment")),
                                tier=str(cached.get("tier")), usage=completion.get("usage") or {})
    entry = record(trace, 200)
    headers = _headers(trace.id, trace.cached.model, trace.cached.tier, trace.cached.deployment, status)
    if semantic_score is not None:
        headers["x-tokenomy-semantic-score"] = f"{semantic_score:.4f}"
    if not chat.stream:
        return Answer(completion, entry, {**headers, **_cost_headers(entry)})
    chunks = replay_chunks(completion, include_usage=chat.include_usage)
    return SSEResponse(_replay(chunks), {**headers, "cache-control": "no-cache"})


async def _replay(chunks: list[dict[str, Any]]) -> AsyncGenerator[bytes, None]:
    for chunk in chunks:
        yield encode_data(chunk)
    yield DONE


async def _stream(gateway: Gateway, chat: ValidChat, trace: RequestTrace, decision: CacheDecision | None,
                  probe: Probe | None, ticket: Ticket | None, then: Sequence[str]) -> Response:
    try:
        served = await gateway.dispatcher.stream(chat, trace, then)  # falls back only before the first chunk
    except BaseException as exc:
        entry = gateway.record(trace, exc.status, exc) if isinstance(exc, TokenomyError) else None
        if gateway.control is not None:
            await gateway.control.settle(ticket, entry)
        raise
    route = _fell_back(trace, chat.typed.model, then, served.model)
    ended: list[LedgerEntry] = []

    def done(disconnected: bool) -> None:
        trace.client_disconnected = disconnected
        error = served.call.error
        ended.append(gateway.record(trace, 200 if error is None else error.status, error))

    store = None
    cache = gateway.cache
    if cache is not None and decision is not None:
        dep = served.deployment

        async def store(assembled: StreamAssembler) -> None:
            completion = assembled.completion()
            await cache.put(decision, completion, deployment=dep.name, tier=dep.config.tier)
            if gateway.semantic is not None:
                await gateway.semantic.remember(probe, decision, completion)

    async def acknowledged() -> None:
        await gateway.acknowledge(ended[0])

    body = relay(served, include_usage=chat.include_usage, drain_s=gateway.settings.ledger.drain_on_disconnect_s,
                 on_done=done, on_complete=store, before_done=acknowledged if gateway.durable_ack else None)
    headers = {**_served_headers(trace.id, served.deployment, trace.cache_status), "cache-control": "no-cache",
               "x-accel-buffering": "no", **(ticket.headers if ticket else {}), **route}
    control = gateway.control
    if control is None:
        return SSEResponse(body, headers)
    return SSEResponse(_settled(body, control, ticket, ended, explicit_max_output(chat.body) or 0), headers)


async def _settled(body: AsyncGenerator[bytes, None], control: Admission, ticket: Ticket | None,
                   ended: list[LedgerEntry], asked_output: int) -> AsyncGenerator[bytes, None]:
    """The stream's bytes; when it is over (done, broken or abandoned) its reservation settles on what it cost."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        await body.aclose()  # runs the relay's accounting (``done``) if it has not run yet
        entry = ended[0] if ended else None
        await control.settle(ticket, entry)
        if entry is not None:
            await control.settle_deployments(entry, asked_output)
