"""A resolved request (its model chosen: asked for, routed, or a cascade's step) through caches → admit → dispatch
→ settle → ledger. The caller may use every deployment this reaches, or it is refused before any upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
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
from tokenomy.gateway.results import (
    CLIENT_GONE,
    Answer,
    StreamAnswer,
    client_id_headers,
    cost_headers,
    deployment_headers,
    fell_back,
    replay,
    served_headers,
)
from tokenomy.gateway.stream import open_stream
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import CachedAnswer, RequestTrace
from tokenomy.providers.registry import Deployment
from tokenomy.wire.stream import fresh, replay_chunks
from tokenomy.wire.validation import ValidChat

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway


async def answer(gw: Gateway, chat: ValidChat, trace: RequestTrace, caller: Caller, record: Recorder) -> Answer:
    """Answer ``chat`` whole (streaming or not): one step of a cascade."""
    whole = replace(chat, typed=msgspec.structs.replace(chat.typed, stream=False))
    served = await serve_resolved(gw, whole, trace, caller, record)
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


async def serve_resolved(gw: Gateway, chat: ValidChat, trace: RequestTrace, caller: Caller, record: Recorder,
                         then: Sequence[str] = ()) -> Answer | StreamAnswer:
    """Caches, admission, dispatch, settlement and the ledger for one (resolved) request. ``then``: a router's next
    choices, tried when the requested model's whole chain fails; the budget reservation covers their chains too."""
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
               **(ticket.headers if ticket else {}), **route, **client_id_headers(trace)}
    return Answer(done.completion, entry, headers)


async def _settle(control: Admission, ticket: Ticket | None, entry: LedgerEntry | None, chat: ValidChat) -> None:
    await control.settle(ticket, entry)
    if entry is not None:
        await control.settle_deployments(entry, explicit_max_output(chat.body) or 0)


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
    if probe is not None and probe.match is not None and probe.match.verify:
        trace.cache_status = "semantic-verify"  # upstream, and compared with the cached answer: spend, marked
    return None, probe


def _serve_hit(chat: ValidChat, trace: RequestTrace, cached: dict[str, Any], record: Recorder, *,
               semantic_score: float | None = None) -> Answer | StreamAnswer:
    completion = fresh(cached["completion"])
    status = trace.cache_status = "hit" if semantic_score is None else "semantic-hit"
    trace.cached = CachedAnswer(model=str(completion.get("model") or ""), deployment=str(cached.get("deployment")),
                                tier=str(cached.get("tier")), usage=completion.get("usage") or {})
    entry = record(trace, 200)
    headers = {**served_headers(trace.id, trace.cached.model, trace.cached.tier, trace.cached.deployment, status),
               **client_id_headers(trace)}
    if semantic_score is not None:
        headers["x-tokenomy-semantic-score"] = f"{semantic_score:.4f}"
    if not chat.stream:
        return Answer(completion, entry, {**headers, **cost_headers(entry)})
    chunks = replay_chunks(completion, include_usage=chat.include_usage)
    return StreamAnswer(replay(chunks), {**headers, "cache-control": "no-cache"})
