"""The HTTP plumbing the provider batch APIs share: one lazily opened aiohttp session, JSON in and out, every
failure converted into the UpstreamError tree here."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tokenomy.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamTimeoutError
from tokenomy.providers.http_status import error_for_status
from tokenomy.providers.pool import SessionPool


class BatchHTTP:
    def __init__(self, headers: dict[str, str], deployment: str, timeout_s: float = 300.0) -> None:
        self.deployment = deployment
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._pool = SessionPool(None, headers)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def raw(self, method: str, url: str, *, json: Any = None, data: Any = None) -> bytes:
        try:
            async with self._pool.session().request(method, url, data=orjson.dumps(json) if json is not None else data,
                                              headers={"content-type": "application/json"} if json is not None
                                              else None, timeout=self._timeout) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise error_for_status(resp.status, body, resp.headers, self.deployment)
                return body
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"{method} {url}: no answer in time", deployment=self.deployment) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"{method} {url}: {type(exc).__name__}: {exc}",
                                          deployment=self.deployment) from exc

    async def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        body = await self.raw(method, url, **kwargs)
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"{method} {url}: the answer is not JSON", deployment=self.deployment) from exc
        if not isinstance(value, dict):
            raise UpstreamProtocolError(f"{method} {url}: the answer is not an object", deployment=self.deployment)
        return value


def jsonl(body: bytes) -> list[dict[str, Any]]:
    rows = []
    for line in body.splitlines():
        if line.strip():
            value = orjson.loads(line)
            if isinstance(value, dict):
                rows.append(value)
    return rows
