"""POST /v1/embeddings: parse the body, hand it to the gateway core, render its answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import caller_of, gateway_of, json_response, read_body
from tokenomy.wire.validation import parse_json_object


async def embeddings(request: Request) -> Response:
    gateway = gateway_of(request)
    body = parse_json_object(await read_body(request, gateway.settings.server.max_body_bytes))
    served = await gateway.embeddings(body, caller_of(request))
    return json_response(served.body, headers=served.headers)
