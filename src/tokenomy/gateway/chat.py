"""The chat path: one request (a live one, streamed or not, or a batch line) from its body to its answer.

resolve (the model asked for must be allowed; a promoted student may answer; a learned router picks among the
models the caller may use) → caches (exact, then semantic: a hit costs nothing and spends no limit) → admit (RPM/TPM
and the budget reservation at the dearest price of the deployments the caller may reach) → dispatch (the chain, its
fallbacks, a router's next choices; a deployment the caller may not use is never called) → settle → ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgspec

from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.layer import Probe
from tokenomy.control.admission import Admission, Ticket
from tokenomy.control.auth import Principal
from tokenomy.control.estimate import explicit_max_output
from tokenomy.errors import ModelNotAllowedError, TokenomyError
from tokenomy.gateway.recorders import Recorder, refusals
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import Answer, StreamAnswer, cost_headers, deployment_headers, replay, served_headers
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import CachedAnswer, RequestTrace
from tokenomy.promptcache.shape import shape_body
from tokenomy.providers.registry import Deployment
from tokenomy.routing.serve import Routed
from tokenomy.wire.stream import fresh, replay_chunks
from tokenomy.wire.validation import ValidChat, validate_chat

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway

CLIENT_GONE = 499  # the status of a request whose client left before its answer (nginx's "client closed request")


async def serve_chat(gw: Gateway, body: dict[str, Any], caller: Caller, rid: str,
                     record: Recorder) -> Answer | StreamAnswer:
    """Answer one chat request under request id ``rid``; its ledger entry goes to ``record``. Raises the request's
    TokenomyError (after recording it, once it got as far as a ledger entry)."""
    from tokenomy.gateway.cascade import answer_cascade
    from tokenomy.gateway.students import serve_student

    chat = validate_chat(body)
    principal = caller.principal
    chat = replace(chat, body=shape_body(chat.body))  # prompt-cache shaping; never changes meaning
    trace = RequestTrace(id=rid, endpoint=caller.endpoint or "chat.completions", requested_model=chat.typed.model,
                         stream=chat.stream, body=chat.body, key_id=principal.key_id, tenant=principal.team_name,
                         tags=principal.tags_json, client_request_id=caller.client_request_id)
    with refusals(record, trace):
        principal.check_model(chat.typed.model)
    student = gw.students.match(chat.body)
    if student is not None:
        trace.distill = await gw.students.before(student, chat.body)
        if trace.distill is not None and trace.distill.mode == "live":
            return await serve_student(gw, chat, trace, student, caller, record)
    with refusals(record, trace):
        routed = await _route(gw, chat, caller)
    stream, include_usage = chat.stream, chat.include_usage
    if routed is not None:
        chat = routed_chat(trace, routed)
    served: Answer | StreamAnswer
    if routed is not None and routed.cascade is not None:
        served = await answer_cascade(gw, routed, trace, caller, record)
    else:
        served = await _serve(gw, chat, trace, caller, record, routed.then if routed is not None else ())
    if isinstance(served, Answer):
        await record.acknowledge(served.entry)
        if stream:  # a cascade answers whole; the stream replays it
            chunks = replay_chunks(served.completion, include_usage=include_usage)
            served = StreamAnswer(replay(chunks), {**served.headers, "cache-control": "no-cache"})
    if routed is not None and routed.cascade is None:
        for name, value in routed.headers().items():  # unless the router's next choice answered (it says so)
            served.headers.setdefault(name, value)
    if trace.distill is not None:
        served.headers["x-tokenomy-distill"] = f"{trace.distill.task} {trace.distill.mode}"
    return served


async def _route(gw: Gateway, chat: ValidChat, caller: Caller) -> Routed | None:
    """The routed request when ``chat`` asks for a learned router (None otherwise). The router chooses among the
    models the caller may use; ModelNotAllowedError (403) when it may use none of them."""
    models = gw.routers.models_of(chat.typed.model)
    if models is None:
        return None
    allowed = _allowed_models(gw, caller.principal)
    if not any(allowed(m) for m in models):
        raise ModelNotAllowedError(f"this key may not use any model of router '{chat.typed.model}' "
                                    f"({', '.join(models)})", param="model")
    catalog = gw.dispatcher.catalog
    routed = await gw.routers.route(chat, caller.options, lambda m: catalog.serves(m) and allowed(m))
    if routed is not None and routed.cascade is not None and not allowed(routed.cascade.frontier.typed.model):
        raise ModelNotAllowedError(f"this key may not use {routed.cascade.frontier.typed.model}, the frontier "
                                    f"model of cascade '{chat.typed.model}'", param="model")
    return routed


def _allowed_models(gw: Gateway, principal: Principal) -> Callable[[str], bool]:
    """Whether the caller may use a model name (by its name, or the tier of its deployments)."""
    catalog = gw.dispatcher.catalog
    return lambda model: principal.may_call(model, catalog.tier_of(model))


def routed_chat(trace: RequestTrace, routed: Routed) -> ValidChat:
    """The routed request, with the route's reason and its cost estimate (settled when it is recorded) on
    ``trace``."""
    trace.route_reason = routed.reason
    if routed.estimated_usd is not None:
        trace.route_estimate = (routed.model, routed.estimated_usd)
    return routed.chat


async def answer(gw: Gateway, chat: ValidChat, trace: RequestTrace, caller: Caller, record: Recorder) -> Answer:
    """Answer ``chat`` whole (streaming or not): one step of a cascade."""
    whole = replace(chat, typed=msgspec.structs.replace(chat.typed, stream=False))
    served = await _serve(gw, whole, trace, caller, record)
    assert isinstance(served, Answer)
    return served


def reachable(gw: Gateway, chat: ValidChat, then: Sequence[str],
              principal: Principal) -> tuple[list[Deployment], frozenset[str] | None]:
    """Every deployment the request may reach (its chain, then a router's next choices' chains) that the caller
    may use, and their names when the caller may not use every deployment (None: no restriction).
    ModelNotAllowedError when the caller may use none of them."""
    catalog = gw.dispatcher.catalog
    chain = [d for model in (chat.typed.model, *then) for d in catalog.chain(model)]
    if principal.unrestricted:
        return chain, None
    allowed = [d for d in chain if principal.may_call(d.config.model, d.config.tier)]
    if not allowed:
        raise ModelNotAllowedError(f"this key may not use any deployment that serves '{chat.typed.model}'",
                                    param="model")
    return allowed, frozenset(d.name for d in allowed)


async def _serve(gw: Gateway, chat: ValidChat, trace: RequestTrace, caller: Caller, record: Recorder,
                 then: Sequence[str] = ()) -> Answer | StreamAnswer:
    """Caches, admission, dispatch, settlement and the ledger for one (resolved) request. ``then``: a router's next
    choices, tried when the requested model's whole chain fails; the budget reservation covers their chains too."""
    from tokenomy.gateway.stream import open_stream

    principal = caller.principal
    namespace = Admission.namespace(principal, gw.settings.cache.exact.namespace)  # tenants never share
    decision = gw.cache.decide(chat.body, caller.options, namespace)
    hit, probe = await _lookup(gw, chat, trace, decision, namespace, record)
    if hit is not None:
        return hit
    with refusals(record, trace):  # not allowed, an unknown model, or refused: no upstream call, no cost
        chain, allow = reachable(gw, chat, then, principal)
        ticket = await gw.control.admit_chat(principal, chat, trace.id, [d.config for d in chain])  # before any call
    if chat.stream:
        return await open_stream(gw, chat, trace, decision, probe, ticket, then, allow, record)
    entry: LedgerEntry | None = None
    try:
        done = await gw.dispatcher.complete(chat, trace, then, allow=allow)
        route = fell_back(trace, chat.typed.model, then, done.model)
        if decision is not None:
            await gw.cache.put(decision, done.completion, deployment=done.deployment.name,
                               tier=done.deployment.config.tier)
            await gw.semantic.remember(probe, decision, done.completion)
        entry = record(trace, 200)
    except TokenomyError as exc:
        entry = record(trace, exc.status, exc)
        raise
    except asyncio.CancelledError:  # the client left: an HTTP call was let finish (bounded), the local model stopped
        trace.client_disconnected = True
        entry = record(trace, CLIENT_GONE)
        raise
    finally:
        await _settle(gw.control, ticket, entry, chat)
    headers = {**deployment_headers(trace.id, done.deployment, trace.cache_status), **cost_headers(entry),
               **(ticket.headers if ticket else {}), **route, **_client_id(trace)}
    return Answer(done.completion, entry, headers)


async def _settle(control: Admission, ticket: Ticket | None, entry: LedgerEntry | None, chat: ValidChat) -> None:
    await control.settle(ticket, entry)
    if entry is not None:
        await control.settle_deployments(entry, explicit_max_output(chat.body) or 0)


def fell_back(trace: RequestTrace, asked: str, then: Sequence[str], model: str) -> dict[str, str]:
    """When a router's next choice answered (``model``, not the ``asked`` one): the route reason says so, in the
    ledger and the headers, and ``x-tokenomy-route`` names it. No headers otherwise."""
    if model == asked:
        return {}
    failed = ", ".join((asked, *then[:then.index(model)]))
    trace.route_reason = f"{trace.route_reason}; {failed} failed, served by {model} (router's next choice)"
    return {"x-tokenomy-route": model, "x-tokenomy-route-reason": trace.route_reason}


def _client_id(trace: RequestTrace) -> dict[str, str]:
    """The client's own request id, echoed back (the ledger records it beside the server's)."""
    return {"x-client-request-id": trace.client_request_id} if trace.client_request_id else {}


async def _lookup(gw: Gateway, chat: ValidChat, trace: RequestTrace, decision: CacheDecision | None,
                  namespace: str, record: Recorder) -> tuple[Answer | StreamAnswer | None, Probe | None]:
    """A cached (exact or semantic) answer, when there is one; else the semantic probe to remember the answer by."""
    if decision is None:
        return None, None
    cached = await gw.cache.get(decision)
    if cached is not None:
        return _serve_hit(chat, trace, cached, record), None
    trace.cache_status = "miss"
    probe = await gw.semantic.probe(chat.body, decision, namespace)
    if probe is not None and probe.answer is not None and probe.match is not None:
        gw.semantic.served(trace.id, probe.match, trace.key_id)
        return _serve_hit(chat, trace, probe.answer, record, semantic_score=probe.match.score), probe
    return None, probe


def _serve_hit(chat: ValidChat, trace: RequestTrace, cached: dict[str, Any], record: Recorder, *,
               semantic_score: float | None = None) -> Answer | StreamAnswer:
    completion = fresh(cached["completion"])
    status = trace.cache_status = "hit" if semantic_score is None else "semantic-hit"
    trace.cached = CachedAnswer(model=str(completion.get("model") or ""), deployment=str(cached.get("deployment")),
                                tier=str(cached.get("tier")), usage=completion.get("usage") or {})
    entry = record(trace, 200)
    headers = {**served_headers(trace.id, trace.cached.model, trace.cached.tier, trace.cached.deployment, status),
               **_client_id(trace)}
    if semantic_score is not None:
        headers["x-tokenomy-semantic-score"] = f"{semantic_score:.4f}"
    if not chat.stream:
        return Answer(completion, entry, {**headers, **cost_headers(entry)})
    chunks = replay_chunks(completion, include_usage=chat.include_usage)
    return StreamAnswer(replay(chunks), {**headers, "cache-control": "no-cache"})
