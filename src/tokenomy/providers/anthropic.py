"""Anthropic's Messages API (``POST /v1/messages``) behind the OpenAI-shaped provider seam.

The translation both ways lives in ``anthropic_translate``; a request that came in through our own Messages door
is sent as the client wrote it (``ChatCall.anthropic``: its ``cache_control``, thinking blocks and signatures,
``top_k`` intact), only its model named for this deployment. This module is the transport, shaped like
``openai_compatible``: one pooled aiohttp session opened on first use inside the running loop, closed by ``aclose``,
and every failure converted to an UpstreamError here. A request the translation cannot express raises
CapabilityError before anything is sent.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tokenomy.errors import UpstreamConnectionError, UpstreamError, UpstreamProtocolError, UpstreamTimeoutError
from tokenomy.promptcache.breakpoints import BreakpointPlanner
from tokenomy.providers.anthropic_translate import StreamTranslator, from_messages_response, to_messages_request
from tokenomy.providers.base import ChatCall, ChunkStream, Completion
from tokenomy.providers.http_status import error_for_status
from tokenomy.providers.http_stream import response_lines
from tokenomy.providers.pool import SessionPool
from tokenomy.providers.sse import read_events

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider:
    """POSTs the translated body to ``{base_url}/v1/messages``; answers in OpenAI's chat-completions shape."""

    def __init__(
        self,
        *,
        deployment: str,
        base_url: str = "https://api.anthropic.com",
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        max_connections: int | None = None,
        breakpoints: BreakpointPlanner | None = None,
    ) -> None:
        self.deployment = deployment
        self._breakpoints = breakpoints
        base = base_url.rstrip("/")
        self._url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        self._headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION,
                         **(headers or {})}
        if api_key:
            self._headers["x-api-key"] = api_key
        self._pool = SessionPool(max_connections)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def chat(self, call: ChatCall) -> Completion | ChunkStream:
        model = str(call.body["model"])
        request, headers = self._request(call, model)
        if self._breakpoints is not None:
            request = self._breakpoints.apply(request)
        payload = orjson.dumps(request)
        if call.stream:
            return await self._open_stream(call, payload, headers, model)
        timeout = aiohttp.ClientTimeout(total=call.timeout_s)
        try:
            async with self._pool.session().post(self._url, data=payload, headers=headers,
                                                 timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise error_for_status(resp.status, raw, resp.headers, self.deployment)
        except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError since 3.11
            raise UpstreamTimeoutError(f"no answer within {call.timeout_s:g}s", deployment=self.deployment) from exc
        except aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc
        return from_messages_response(self._decode_message(raw), model)

    def _request(self, call: ChatCall, model: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The Messages body and headers: the client's own Messages request when it came through the Messages door
        (only the model and ``stream`` set here, its ``anthropic-beta`` passed on), else the translated chat body."""
        if call.anthropic is None:
            return to_messages_request(call.body), self._headers
        request = {k: v for k, v in call.anthropic["request"].items() if k != "stream"}
        request["model"] = model
        if call.stream:
            request["stream"] = True
        beta = call.anthropic.get("beta")
        if not beta:
            return request, self._headers
        own = self._headers.get("anthropic-beta")
        return request, {**self._headers, "anthropic-beta": f"{own},{beta}" if own else str(beta)}

    def _decode_message(self, raw: bytes) -> dict[str, Any]:
        data = self._decode(raw)
        if data.get("type") != "message" or not isinstance(data.get("content"), list):
            raise UpstreamProtocolError("upstream answer is not a Messages API 'message' with a 'content' list",
                                        deployment=self.deployment)
        return data

    def _decode(self, raw: bytes | str) -> dict[str, Any]:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"upstream sent invalid JSON: {raw[:120]!r}",
                                        deployment=self.deployment) from exc
        if not isinstance(data, dict):
            raise UpstreamProtocolError("upstream JSON is not an object", deployment=self.deployment)
        return data

    async def _open_stream(self, call: ChatCall, payload: bytes, headers: dict[str, str],
                           model: str) -> ChunkStream:
        # sock_read bounds every read: the wait for the headers and each gap between events (the idle timeout).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.timeout_s,
                                        sock_read=min(call.timeout_s, call.stream_idle_timeout_s))
        try:
            resp = await self._pool.session().post(self._url, data=payload, headers=headers, timeout=timeout)
        except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError since 3.11
            raise UpstreamTimeoutError(f"no answer within {call.timeout_s:g}s", deployment=self.deployment) from exc
        except aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except aiohttp.ClientError:
                raw = b""  # the status alone still says what failed
            finally:
                resp.release()
            raise error_for_status(resp.status, raw, resp.headers, self.deployment)
        return self._chunks(resp, call, model)

    async def _chunks(self, resp: aiohttp.ClientResponse, call: ChatCall, model: str) -> ChunkStream:
        translator = StreamTranslator(model, deployment=self.deployment)
        try:
            async for event in read_events(response_lines(resp, self.deployment)):
                data = self._decode(event.data)
                for chunk in translator.feed(event.event or str(data.get("type", "")), data):
                    yield chunk
                if translator.finished:
                    return
        finally:
            resp.release()
        raise UpstreamProtocolError("upstream stream ended before message_stop", deployment=self.deployment)

    def _connection_error(self, exc: aiohttp.ClientError) -> UpstreamError:
        return UpstreamConnectionError(f"{type(exc).__name__}: {exc}", deployment=self.deployment)
