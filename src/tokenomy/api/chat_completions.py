"""POST /v1/chat/completions."""

from __future__ import annotations

from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import json_response, read_body, request_id
from tokenomy.api.state import Gateway
from tokenomy.api.streaming import SSEResponse, relay
from tokenomy.errors import TokenomyError
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.providers.registry import Deployment
from tokenomy.wire.validation import ValidChat, parse_json_object, validate_chat


def _headers(rid: str, dep: Deployment) -> dict[str, str]:
    return {"x-request-id": rid, "x-tokenomy-model": dep.config.sent_model, "x-tokenomy-tier": dep.config.tier,
            "x-tokenomy-deployment": dep.name}


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
    trace = RequestTrace(id=rid, endpoint="chat.completions", requested_model=chat.typed.model, stream=chat.stream,
                         body=chat.body)
    try:
        if chat.stream:
            return await _stream(gateway, chat, trace)
        done = await gateway.dispatcher.complete(chat, trace)
    except TokenomyError as exc:
        gateway.record(trace, exc.status, exc)
        raise
    entry = gateway.record(trace, 200)
    return json_response(done.completion, headers={**_headers(rid, done.deployment), **_cost_headers(entry)})


async def _stream(gateway: Gateway, chat: ValidChat, trace: RequestTrace) -> Response:
    served = await gateway.dispatcher.stream(chat, trace)

    def done(disconnected: bool) -> None:
        trace.client_disconnected = disconnected
        error = served.call.error
        gateway.record(trace, 200 if error is None else error.status, error)

    body = relay(served, include_usage=chat.include_usage, drain_s=gateway.settings.ledger.drain_on_disconnect_s,
                 on_done=done)
    headers = {**_headers(trace.id, served.deployment), "cache-control": "no-cache", "x-accel-buffering": "no"}
    return SSEResponse(body, headers)
