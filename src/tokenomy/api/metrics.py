"""GET /metrics: the gateway's Prometheus registry (``ledger.metrics``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import gateway_of


async def metrics_endpoint(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    gateway = gateway_of(request)
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
