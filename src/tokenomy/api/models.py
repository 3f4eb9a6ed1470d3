"""GET /v1/models and /v1/models/{id}."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import json_response, request_id
from tokenomy.dispatch.catalog import ModelEntry
from tokenomy.errors import ModelNotFoundError
from tokenomy.gateway.core import Gateway


def _entry(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "object": "model", "created": 0, "owned_by": entry.owned_by, "tier": entry.tier}


def _all(gateway: Gateway) -> list[dict[str, Any]]:
    entries = [_entry(e) for e in gateway.dispatcher.catalog.models()]
    # learned routers: virtual models that pick a served model per request
    entries.extend({"id": name, "object": "model", "created": 0, "owned_by": "tokenomy", "tier": "router"}
                   for name in gateway.routers.names())
    entries.extend({"id": name, "object": "model", "created": 0, "owned_by": "tokenomy", "tier": "embedding"}
                   for name in gateway.upstream_embeddings.models())
    if gateway.settings.embeddings.enabled:
        entries.append({"id": gateway.settings.embeddings.model, "object": "model", "created": 0,
                        "owned_by": "tokenomy", "tier": "embedding"})
    return entries


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return json_response({"object": "list", "data": _all(gateway)}, headers={"x-request-id": request_id(request)})


async def get_model(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    wanted = request.path_params["model_id"]
    entries = _all(gateway)
    for entry in entries:
        if entry["id"] == wanted:
            return json_response(entry, headers={"x-request-id": request_id(request)})
    served = ", ".join(e["id"] for e in entries)
    raise ModelNotFoundError(f"model '{wanted}' is not served here; served: {served} (GET /v1/models lists them)",
                             param="model")
