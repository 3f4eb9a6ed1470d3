"""The one HTTP client of the commands that drive a running gateway (``keys``, ``batch``, ``spend``, ``distill
promote``): the same ``--url`` (the base URL or its ``/v1``; ``TOKENOMY_URL``) and ``--api-key``
(``TOKENOMY_API_KEY``, else ``TOKENOMY_MASTER_KEY``) on each, JSON calls, a multipart upload that streams the file,
and one-line errors that name the flag to set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import click
import orjson

from tokenomy.errors import GatewayClientError

DEFAULT_URL = "http://127.0.0.1:4000"
F = TypeVar("F", bound=Callable[..., Any])


def url_option(default_note: str) -> Callable[[F], F]:
    return click.option("--url", help=f"A running gateway: its base URL or its /v1 URL (default: TOKENOMY_URL; "
                                      f"{default_note}).")


def api_key_option(what: str) -> Callable[[F], F]:
    return click.option("--api-key", help=f"{what} (default: TOKENOMY_API_KEY, else TOKENOMY_MASTER_KEY; prefer "
                                          "the variable: a flag shows in the process list).")


def given_url(url: str | None) -> str | None:
    """``--url``, else TOKENOMY_URL; None when neither is set (a command that also works on the local data dir)."""
    return url or os.environ.get("TOKENOMY_URL") or None


def base_url(url: str | None) -> str:
    """The gateway's base URL (``--url`` / TOKENOMY_URL / the default), whether given with ``/v1`` or without."""
    return (given_url(url) or DEFAULT_URL).rstrip("/").removesuffix("/v1")


class GatewayClient:
    """Calls on the gateway at ``url`` (base or ``/v1``); paths are absolute (``/v1/files``, ``/admin/keys``)."""

    def __init__(self, url: str | None, api_key: str | None = None) -> None:
        self.url = base_url(url)
        self.key = api_key or os.environ.get("TOKENOMY_API_KEY") or os.environ.get("TOKENOMY_MASTER_KEY")
        self._headers = {"authorization": f"Bearer {self.key}"} if self.key else {}

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
            return await self._request("POST", "/v1/files", data=form)

    async def _request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                       params: Mapping[str, str] | None = None, data: Any = None, raw: bool = False) -> Any:
        target = self.url + path
        try:
            async with aiohttp.ClientSession(headers=self._headers) as session, session.request(
                    method, target, json=json, params=params, data=data,
                    timeout=aiohttp.ClientTimeout(total=600)) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise GatewayClientError(f"{method} {target}: HTTP {resp.status}: {_message(body)}"
                                             f"{self._hint(resp.status, path)}")
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
            raise GatewayClientError(f"{method} {target}: the answer is not JSON; is {self.url} a tokenomy "
                                     "gateway? (--url or TOKENOMY_URL)") from exc

    def _hint(self, status: int, path: str) -> str:
        """What to set when the gateway refused the credentials."""
        admin = path.startswith("/admin")
        if status == 401 and not self.key:
            return (f"; pass --api-key or set TOKENOMY_API_KEY "
                    f"({'the master key' if admin else 'a virtual key or the master key'})")
        if status in (401, 403) and admin:
            return "; this needs the gateway's master key (--api-key or TOKENOMY_API_KEY)"
        if status == 401:
            return "; the key was refused: check --api-key / TOKENOMY_API_KEY"
        return ""


def _message(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error") or {}
        return str(error.get("message") or body[:200].decode(errors="replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")
