"""POST /v1/chat/completions: parse the body, hand it to the gateway core, render its answer (JSON, or SSE)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.disconnect import unless_gone
from tokenomy.api.responses import caller_of, gateway_of, json_response, read_body
from tokenomy.api.streaming import OPENAI, SSEResponse
from tokenomy.gateway.results import Answer
from tokenomy.wire.validation import parse_json_object


async def chat_completions(request: Request) -> Response:
    gateway = gateway_of(request)
    body = parse_json_object(await read_body(request, gateway.settings.server.max_body_bytes))
    served = await unless_gone(request, gateway.chat(body, caller_of(request)))
    if isinstance(served, Answer):
        return json_response(served.completion, headers=served.headers)
    return SSEResponse(served.chunks, OPENAI, served.headers)
