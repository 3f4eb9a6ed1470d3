"""Any server that speaks OpenAI's chat-completions protocol: OpenAI itself, vLLM, SGLang, llama.cpp's server,
Ollama, OpenRouter, Together, Groq, DeepSeek, Fireworks, Mistral.

Transport is aiohttp (measured faster than httpx per call on this box: see docs/benchmarks.md). One pooled session
per provider, opened on first use inside the running loop, closed by ``aclose``.
"""

from __future__ import annotations

import aiohttp
import orjson

from tokenomy.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from tokenomy.providers.base import ChatCall, Chunk, ChunkStream, Completion
from tokenomy.providers.http_status import error_for_status
from tokenomy.providers.http_stream import response_lines
from tokenomy.providers.pool import SessionPool
from tokenomy.providers.sse import read_events


class OpenAICompatibleProvider:
    """POSTs the body to ``{base_url}/chat/completions``; streams SSE chunks back as dicts."""

    def __init__(
        self,
        *,
        deployment: str,
        base_url: str,
        api_key: str | None,
        headers: dict[str, str] | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.deployment = deployment
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"content-type": "application/json", **(headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._pool = SessionPool(max_connections)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def chat(self, call: ChatCall) -> Completion | ChunkStream:
        if call.stream:
            return await self._open_stream(call)
        timeout = aiohttp.ClientTimeout(total=call.timeout_s)
        try:
            async with self._pool.session().post(self._url, data=orjson.dumps(call.body), headers=self._headers,
                                           timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise error_for_status(resp.status, raw, resp.headers, self.deployment)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"no answer within {call.timeout_s:g}s", deployment=self.deployment) from exc
        except aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc
        return self._decode_completion(raw)

    def _decode_completion(self, raw: bytes) -> Completion:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"upstream sent invalid JSON: {raw[:120]!r}",
                                        deployment=self.deployment) from exc
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamProtocolError("upstream answer has no 'choices' list", deployment=self.deployment)
        return data

    async def _open_stream(self, call: ChatCall) -> ChunkStream:
        # sock_read bounds every read: the wait for the headers and each gap between chunks (the idle timeout).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.timeout_s,
                                        sock_read=min(call.timeout_s, call.stream_idle_timeout_s))
        try:
            resp = await self._pool.session().post(self._url, data=orjson.dumps(call.body), headers=self._headers,
                                             timeout=timeout)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"no answer within {call.timeout_s:g}s", deployment=self.deployment) from exc
        except aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except aiohttp.ClientError:
                raw = b""
            finally:
                resp.release()
            raise error_for_status(resp.status, raw, resp.headers, self.deployment)
        return self._chunks(resp, call)

    async def _chunks(self, resp: aiohttp.ClientResponse, call: ChatCall) -> ChunkStream:
        try:
            async for event in read_events(response_lines(resp, self.deployment)):
                if event.data.strip() == "[DONE]":
                    return
                chunk = self._decode_chunk(event.data)
                yield chunk
        finally:
            resp.release()

    def _decode_chunk(self, data: str) -> Chunk:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"upstream sent an invalid stream event: {data[:120]!r}",
                                        deployment=self.deployment) from exc
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError("upstream stream event is not an object", deployment=self.deployment)
        if isinstance(chunk.get("error"), dict):
            err = chunk["error"]
            raise UpstreamError(f"upstream stream error: {err.get('message', err)}", deployment=self.deployment)
        return chunk

    def _connection_error(self, exc: aiohttp.ClientError) -> UpstreamError:
        return UpstreamConnectionError(f"{type(exc).__name__}: {exc}", deployment=self.deployment)
