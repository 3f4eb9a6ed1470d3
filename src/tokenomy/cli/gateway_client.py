"""A small HTTP client for commands that drive a running gateway (``tokenomy batch …``): JSON calls, a
multipart upload that streams the file, and one-line errors for everything that can go wrong on the way."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tokenomy.errors import GatewayClientError

DEFAULT_URL = "http://127.0.0.1:4000/v1"


def gateway_url(given: str | None) -> str:
    return (given or os.environ.get("TOKENOMY_URL") or DEFAULT_URL).rstrip("/")


class GatewayClient:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url
        key = api_key or os.environ.get("TOKENOMY_API_KEY") or os.environ.get("TOKENOMY_MASTER_KEY")
        self._headers = {"authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
             params: Mapping[str, str] | None = None) -> Any:
        return asyncio.run(self._request(method, path, json=json, params=params))

    def upload(self, path: Path, purpose: str) -> Any:
        return asyncio.run(self._upload(path, purpose))

    def download(self, path: str) -> bytes:
        return bytes(asyncio.run(self._request("GET", path, raw=True)))

    async def _upload(self, path: Path, purpose: str) -> Any:
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise GatewayClientError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with handle:
            form = aiohttp.FormData()
            form.add_field("purpose", purpose)
            form.add_field("file", handle, filename=path.name, content_type="application/jsonl")
            return await self._request("POST", "/files", data=form)

    async def _request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                       params: Mapping[str, str] | None = None, data: Any = None, raw: bool = False) -> Any:
        target = self.url + path
        try:
            async with aiohttp.ClientSession(headers=self._headers) as session, session.request(
                    method, target, json=json, params=params, data=data,
                    timeout=aiohttp.ClientTimeout(total=600)) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise GatewayClientError(f"{method} {target}: HTTP {resp.status}: {_message(body)}")
        except aiohttp.ClientConnectorError as exc:
            raise GatewayClientError(f"cannot reach the gateway at {self.url} ({exc.os_error or exc}); is "
                                     "`tokenomy serve` running? (--url or TOKENOMY_URL)") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayClientError(f"{method} {target} failed: {exc or type(exc).__name__}") from exc
        if raw:
            return body
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise GatewayClientError(f"{method} {target}: the answer is not JSON") from exc


def _message(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error") or {}
        return str(error.get("message") or body[:200].decode(errors="replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")
