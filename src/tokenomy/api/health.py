"""GET /healthz: liveness plus what the gateway serves."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenomy import __version__
from tokenomy.api.responses import json_response, request_id
from tokenomy.api.state import Gateway


async def healthz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    deployments = [{"name": d.name, "model": d.config.model, "tier": d.config.tier, "provider": d.config.provider}
                   for d in gateway.dispatcher.catalog.deployments]
    return json_response({"status": "ok", "version": __version__, "deployments": deployments},
                         headers={"x-request-id": request_id(request)})
