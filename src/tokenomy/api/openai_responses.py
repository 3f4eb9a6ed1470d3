"""OpenAI's Responses API: ``POST /v1/responses`` (whole, or its semantic SSE events), ``GET`` and ``DELETE
/v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``. Parse, hand to the gateway core (which translates the
request onto the one chat path and keeps the conversation state), render. Errors in OpenAI's format."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import caller_of, gateway_of, json_response, read_body
from tokenomy.api.streaming import SSEResponse, encode_event
from tokenomy.errors import InvalidRequestError, StreamBrokenError
from tokenomy.gateway.results import ResponsesAnswer
from tokenomy.wire.validation import parse_json_object

MAX_PAGE = 100


async def create_response(request: Request) -> Response:
    gateway = gateway_of(request)
    body = parse_json_object(await read_body(request, gateway.settings.server.max_body_bytes))
    served = await gateway.responses(body, caller_of(request))
    if isinstance(served, ResponsesAnswer):
        return json_response(served.body, headers=served.headers)
    return SSEResponse(served.events, _ResponseRender(), served.headers)


async def retrieve_response(request: Request) -> Response:
    found = await gateway_of(request).stored_response(request.path_params["response_id"], caller_of(request))
    return json_response(found)


async def delete_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    await gateway_of(request).delete_response(response_id, caller_of(request))
    return json_response({"id": response_id, "object": "response", "deleted": True})


async def list_input_items(request: Request) -> Response:
    """A page of a stored response's input items: ``order`` (``desc``, the default, or ``asc``), ``after`` (an item
    id), ``limit`` (1 to 100, default 20), as OpenAI's list endpoints page."""
    items = await gateway_of(request).stored_input_items(request.path_params["response_id"], caller_of(request))
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError(f"'order' must be 'asc' or 'desc', not {order!r}", param="order")
    limit = _limit(query.get("limit", "20"))
    ordered = items if order == "asc" else list(reversed(items))
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise InvalidRequestError(f"no input item {after!r} in this response", param="after")
        ordered = ordered[ids.index(after) + 1:]
    page = ordered[:limit]
    return json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                          "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit})


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidRequestError(f"'limit' must be an integer from 1 to {MAX_PAGE}, not {text!r}", param="limit")
    return int(text)


class _ResponseRender:
    """The core's Responses events, each one named event; the core ends a broken stream with its own
    ``response.failed`` event, so no StreamBrokenError reaches here."""

    def frame(self, item: dict[str, Any]) -> bytes:
        return encode_event(item["type"], item)

    def end(self) -> bytes:
        return b""

    def broken(self, exc: StreamBrokenError) -> bytes:
        raise exc
