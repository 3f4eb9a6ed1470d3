"""POST /v1/feedback: a user's verdict on a served semantic-cache answer.

Body: ``{"request_id": "<x-request-id of the response>", "correct": true|false}``. A wrong verdict drops the entry
and, with ``cache.semantic.online``, moves the threshold; a right one is evidence for it. 404 when the request was
not a semantic hit or is no longer remembered (the latest 10,000 are), and when it was another key's: a virtual key
reports only on its own answers (the master key on any).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import json_response, principal_of, read_body
from tokenomy.errors import InvalidRequestError, RouteNotFoundError
from tokenomy.gateway.core import Gateway
from tokenomy.wire.validation import parse_json_object


async def feedback(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    body = parse_json_object(await read_body(request, 64 * 1024))
    rid, correct = body.get("request_id"), body.get("correct")
    if not isinstance(rid, str) or not rid:
        raise InvalidRequestError("'request_id' must be the x-request-id of a response", param="request_id")
    if not isinstance(correct, bool):
        raise InvalidRequestError("'correct' must be true or false", param="correct")
    if not gateway.semantic.report(rid, correct, principal_of(request).key_id):
        raise RouteNotFoundError(f"no semantic-cache answer with request id '{rid}' is remembered here",
                                 param="request_id", code="feedback_not_found")
    return json_response({"object": "feedback", "request_id": rid, "applied": True})
