"""/v1/batches: create, retrieve, list (cursor pagination), cancel — OpenAI's shapes, so the official SDK's batch
calls work unchanged. Two tokenomy extensions on create: ``via`` (``gateway`` or ``provider``; also
``metadata.tokenomy_via``) and ``metadata.tokenomy_concurrency``; and ``completion_window`` may be shorter than 24h."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.files import _limit, _service, owner, page
from tokenomy.api.responses import json_response, read_body, request_id
from tokenomy.wire.validation import parse_json_object


async def create_batch(request: Request) -> Response:
    service = _service(request)
    body = parse_json_object(await read_body(request, 64 * 1024))
    record = await service.create(body, key_id=owner(request))
    return json_response(await service.render(record), headers={"x-request-id": request_id(request)})


async def retrieve_batch(request: Request) -> Response:
    service = _service(request)
    record = await service.get(request.path_params["batch_id"], viewer=owner(request))
    return json_response(await service.render(record))


async def cancel_batch(request: Request) -> Response:
    service = _service(request)
    record = await service.cancel(request.path_params["batch_id"], viewer=owner(request))
    return json_response(await service.render(record))


async def list_batches(request: Request) -> Response:
    service = _service(request)
    limit = _limit(request.query_params.get("limit"), default=20, most=100)
    found = await asyncio.to_thread(service.store.list_batches, request.query_params.get("after"), limit + 1,
                                    owner(request))
    rendered = [await service.render(record) for record in found]
    return json_response(page(rendered, limit))
