"""POST /v1/chat/completions."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import json_response, read_body, request_id
from tokenomy.api.state import Gateway
from tokenomy.api.streaming import SSEResponse, relay
from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.layer import Probe
from tokenomy.cache.shape import shape_body
from tokenomy.cache.stream_shape import StreamAssembler, fresh, replay_chunks
from tokenomy.distill.serve import ServedStudent
from tokenomy.errors import TokenomyError
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import CachedAnswer, RequestTrace
from tokenomy.providers.registry import Deployment
from tokenomy.providers.sse import DONE, encode_data
from tokenomy.wire.validation import ValidChat, parse_json_object, validate_chat


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
    raw = await read_body(request, gateway.settings.server.max_body_bytes)
    chat = validate_chat(parse_json_object(raw))
    chat = replace(chat, body=shape_body(chat.body))  # prompt-cache shaping; never changes meaning
    trace = RequestTrace(id=rid, endpoint="chat.completions", requested_model=chat.typed.model, stream=chat.stream,
                         body=chat.body)
    student = gateway.students.match(chat.body) if gateway.students is not None else None
    if student is not None and gateway.students is not None:
        trace.distill = await gateway.students.before(student, chat.body)
        if trace.distill is not None and trace.distill.mode == "live":
            return _serve_student(gateway, chat, trace, student)
    response = await _route_and_serve(gateway, chat, trace, request.headers)
    if trace.distill is not None:
        response.headers["x-tokenomy-distill"] = f"{trace.distill.task} {trace.distill.mode}"
    return response


async def _route_and_serve(gateway: Gateway, chat: ValidChat, trace: RequestTrace, asked: Headers) -> Response:
    routed = await gateway.routers.route(chat, asked, gateway.dispatcher.catalog.serves) \
        if gateway.routers is not None else None
    if routed is None:
        return await _serve(gateway, chat, trace, asked)
    trace.route_reason = routed.reason
    response = await _serve(gateway, routed.chat, trace, asked)
    response.headers.update(routed.headers())
    return response


async def _serve(gateway: Gateway, chat: ValidChat, trace: RequestTrace, asked: Headers) -> Response:
    rid = trace.id
    cache = gateway.cache
    decision = cache.decide(chat.body, asked, gateway.settings.cache.exact.namespace) if cache else None
    probe: Probe | None = None
    if cache is not None and decision is not None:
        cached = await cache.get(decision)
        if cached is not None:
            return _serve_hit(gateway, chat, trace, cached)
        trace.cache_status = "miss"
        if gateway.semantic is not None:
            probe = await gateway.semantic.probe(chat.body, decision, gateway.settings.cache.exact.namespace)
            if probe is not None and probe.answer is not None and probe.match is not None:
                gateway.semantic.served(trace.id, probe.match)
                return _serve_hit(gateway, chat, trace, probe.answer, semantic_score=probe.match.score)
    try:
        if chat.stream:
            return await _stream(gateway, chat, trace, decision, probe)
        done = await gateway.dispatcher.complete(chat, trace)
    except TokenomyError as exc:
        gateway.record(trace, exc.status, exc)
        raise
    if cache is not None and decision is not None:
        await cache.put(decision, done.completion, deployment=done.deployment.name,
                        tier=done.deployment.config.tier)
        if gateway.semantic is not None:
            await gateway.semantic.remember(probe, decision, done.completion)
    entry = gateway.record(trace, 200)
    headers = {**_served_headers(rid, done.deployment, trace.cache_status), **_cost_headers(entry)}
    return json_response(done.completion, headers=headers)


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


def _serve_hit(gateway: Gateway, chat: ValidChat, trace: RequestTrace, cached: dict[str, Any], *,
               semantic_score: float | None = None) -> Response:
    completion = fresh(cached["completion"])
    status = trace.cache_status = "hit" if semantic_score is None else "semantic-hit"
    trace.cached = CachedAnswer(model=str(completion.get("model") or ""), deployment=str(cached.get("deployment")),
                                tier=str(cached.get("tier")), usage=completion.get("usage") or {})
    entry = gateway.record(trace, 200)
    headers = _headers(trace.id, trace.cached.model, trace.cached.tier, trace.cached.deployment, status)
    if semantic_score is not None:
        headers["x-tokenomy-semantic-score"] = f"{semantic_score:.4f}"
    if not chat.stream:
        return json_response(completion, headers={**headers, **_cost_headers(entry)})
    chunks = replay_chunks(completion, include_usage=chat.include_usage)
    return SSEResponse(_replay(chunks), {**headers, "cache-control": "no-cache"})


async def _replay(chunks: list[dict[str, Any]]) -> AsyncGenerator[bytes, None]:
    for chunk in chunks:
        yield encode_data(chunk)
    yield DONE


async def _stream(gateway: Gateway, chat: ValidChat, trace: RequestTrace, decision: CacheDecision | None,
                  probe: Probe | None) -> Response:
    served = await gateway.dispatcher.stream(chat, trace)

    def done(disconnected: bool) -> None:
        trace.client_disconnected = disconnected
        error = served.call.error
        gateway.record(trace, 200 if error is None else error.status, error)

    store = None
    cache = gateway.cache
    if cache is not None and decision is not None:
        dep = served.deployment

        async def store(assembled: StreamAssembler) -> None:
            completion = assembled.completion()
            await cache.put(decision, completion, deployment=dep.name, tier=dep.config.tier)
            if gateway.semantic is not None:
                await gateway.semantic.remember(probe, decision, completion)

    body = relay(served, include_usage=chat.include_usage, drain_s=gateway.settings.ledger.drain_on_disconnect_s,
                 on_done=done, on_complete=store)
    headers = {**_served_headers(trace.id, served.deployment, trace.cache_status), "cache-control": "no-cache",
               "x-accel-buffering": "no"}
    return SSEResponse(body, headers)
