"""GET /metrics: the gateway's Prometheus registry (``ledger.metrics``).

Who may read it: anyone who can reach the gateway when no master key is set (loopback mode, where the door guard
already refuses foreign hosts and origins); with a master key, only a caller presenting the master key or the
scrape-only ``control.metrics_key`` (``Authorization: Bearer …``, what Prometheus's ``authorization`` setting sends).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import gateway_of
from tokenomy.control.auth import credential
from tokenomy.errors import AuthenticationError


async def metrics_endpoint(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    gateway = gateway_of(request)
    control = gateway.settings.control
    if control.master_key:
        given = (credential(request.headers) or "").encode()
        if not any(hmac.compare_digest(given, key.encode()) for key in (control.master_key, control.metrics_key)
                   if key):
            raise AuthenticationError("/metrics needs the master key or the metrics key (control.metrics_key) "
                                      "as a bearer token")
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
