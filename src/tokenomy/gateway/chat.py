"""The chat path: one request (a live one, streamed or not, or a batch line) from its body to its answer.

Here, resolve: the model asked for must be allowed; a promoted student may answer; a learned router picks among the
models the caller may use. Then ``serve.serve_resolved``: caches (exact, then semantic: a hit costs nothing and
spends no limit) → admit (RPM/TPM and the budget reservation at the dearest price of the deployments the caller may
reach) → dispatch (the chain, its fallbacks, a router's next choices; a deployment the caller may not use is never
called) → settle → ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tokenomy.control.auth import Principal
from tokenomy.errors import ModelNotAllowedError
from tokenomy.gateway.cascade import answer_cascade
from tokenomy.gateway.recorders import Recorder, refusals
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import Answer, StreamAnswer, replay
from tokenomy.gateway.serve import serve_resolved
from tokenomy.gateway.students import serve_student
from tokenomy.ledger.trace import RequestTrace
from tokenomy.promptcache.shape import shape_body
from tokenomy.routing.serve import Routed
from tokenomy.wire.chat import ANTHROPIC_REQUEST
from tokenomy.wire.stream import replay_chunks
from tokenomy.wire.validation import ValidChat, validate_chat

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway


async def serve_chat(gw: Gateway, body: dict[str, Any], caller: Caller, rid: str,
                     record: Recorder) -> Answer | StreamAnswer:
    """Answer one chat request under request id ``rid``; its ledger entry goes to ``record``. Raises the request's
    TokenomyError (after recording it, once it got as far as a ledger entry)."""
    body.pop(ANTHROPIC_REQUEST, None)  # only the Messages door's caller carries one, never a client's body
    if caller.anthropic is not None:
        body[ANTHROPIC_REQUEST] = dict(caller.anthropic)  # in the body: the exact cache keys on it too
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
        served = await serve_resolved(gw, chat, trace, caller, record, routed.then if routed is not None else ())
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


