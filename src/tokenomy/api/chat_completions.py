"""POST /v1/chat/completions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tokenomy.api.responses import json_response, read_body, request_id
from tokenomy.api.state import Gateway
from tokenomy.api.streaming import relay
from tokenomy.providers.registry import Deployment
from tokenomy.wire.validation import parse_json_object, validate_chat


def _headers(rid: str, dep: Deployment) -> dict[str, str]:
    return {"x-request-id": rid, "x-tokenomy-model": dep.config.sent_model, "x-tokenomy-tier": dep.config.tier,
            "x-tokenomy-deployment": dep.name}


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    rid = request.state.request_id = request_id(request)
    raw = await read_body(request, gateway.settings.server.max_body_bytes)
    chat = validate_chat(parse_json_object(raw))
    if chat.stream:
        served = await gateway.dispatcher.stream(chat, rid)
        headers = {**_headers(rid, served.deployment), "cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(relay(served, include_usage=chat.include_usage, request_id=rid),
                                 media_type="text/event-stream", headers=headers)
    done = await gateway.dispatcher.complete(chat, rid)
    return json_response(done.completion, headers=_headers(rid, done.deployment))
