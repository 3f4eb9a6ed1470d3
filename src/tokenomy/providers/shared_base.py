"""One upstream serving a base model and its LoRA adapters, seen as one deployment per served model.

``build_deployments`` gives the base deployment and each adapter's deployment a *view* on the same provider (one
connection pool, or one model loaded in this process). A view counts its own requests in flight; the base's view
reports the whole upstream's (its adapters' included) as its queue depth — the per-base figure
(``tokenomy_deployment_queue_depth{deployment="<base>"}``) KEDA scales the shared server on — and only the base's
view starts and closes the provider.

For llama.cpp's own server (``--lora A --lora B --lora-init-without-apply``), an adapter with a ``lora_id`` is
chosen per request: its view adds ``"lora": [{"id": k, "scale": s}]`` to the body, and the base's view
``"lora": []`` (no adapter applied).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tokenomy.providers.base import ChatCall, ChunkStream, Completion, Provider


class SharedUpstream:
    """The provider of one base and the requests in flight on it, by served model."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.inflight: Counter[str] = Counter()

    @property
    def queue_depth(self) -> int:
        own = getattr(self.provider, "queue_depth", None)
        return own if isinstance(own, int) else sum(self.inflight.values())


class SharedBaseView:
    """The Provider seam for one model (the base, or one adapter) of a shared upstream."""

    def __init__(self, upstream: SharedUpstream, model: str, *, owner: bool,
                 extra_body: dict[str, Any] | None = None) -> None:
        self.upstream = upstream
        self.model = model
        self._owner = owner
        self._extra = extra_body or {}

    @property
    def queue_depth(self) -> int:
        return self.upstream.queue_depth if self._owner else self.upstream.inflight[self.model]

    async def start(self) -> None:
        start = getattr(self.upstream.provider, "start", None)
        if self._owner and start is not None:
            await start()

    async def aclose(self) -> None:
        close = getattr(self.upstream.provider, "aclose", None)
        if self._owner and close is not None:
            await close()

    async def chat(self, call: ChatCall) -> Completion | ChunkStream:
        if self._extra:
            call = ChatCall(body={**call.body, **self._extra}, request_id=call.request_id, timeout_s=call.timeout_s,
                            stream_idle_timeout_s=call.stream_idle_timeout_s)
        counts = self.upstream.inflight
        counts[self.model] += 1
        try:
            result = await self.upstream.provider.chat(call)
        except BaseException:
            counts[self.model] -= 1
            raise
        if isinstance(result, dict):
            counts[self.model] -= 1
            return result
        return self._counted(result)

    async def _counted(self, stream: ChunkStream) -> ChunkStream:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.upstream.inflight[self.model] -= 1
            await stream.aclose()
