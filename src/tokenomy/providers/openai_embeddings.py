"""An upstream ``/embeddings`` endpoint in OpenAI's protocol (OpenAI, vLLM, llama.cpp's server, TEI, Ollama …),
for deployments with ``kind: embeddings``. It takes a list of inputs in one call, which is what lets the gateway
coalesce concurrent requests into one upstream call."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tokenomy.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamTimeoutError
from tokenomy.providers.http_status import error_for_status
from tokenomy.providers.pool import SessionPool


class OpenAIEmbeddingsProvider:
    def __init__(self, *, deployment: str, base_url: str, api_key: str | None,
                 headers: dict[str, str] | None = None, max_connections: int | None = None) -> None:
        self.deployment = deployment
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = {"content-type": "application/json", **(headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._pool = SessionPool(max_connections)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def embed(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """POST the body; returns the ``list`` object with one ``embedding`` per input, in input order."""
        try:
            async with self._pool.session().post(self._url, data=orjson.dumps(body), headers=self._headers,
                                           timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise error_for_status(resp.status, raw, resp.headers, self.deployment)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"no answer within {timeout_s:g}s", deployment=self.deployment) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"{type(exc).__name__}: {exc}", deployment=self.deployment) from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError("upstream sent invalid JSON", deployment=self.deployment) from exc
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and "embedding" in i for i in items):
            raise UpstreamProtocolError("upstream embeddings answer has no 'data' list of embeddings",
                                        deployment=self.deployment)
        data["data"] = sorted(items, key=lambda item: int(item.get("index", 0)))
        return data  # type: ignore[no-any-return]
