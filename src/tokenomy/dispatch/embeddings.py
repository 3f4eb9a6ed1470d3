"""/v1/embeddings to upstream deployments (``kind: embeddings``): the model's deployments in config order, the next
one when a call fails; and, for a deployment with ``batching: {max_batch, max_wait_ms}``, concurrent requests
coalesced into one upstream call.

Coalescing gathers the texts of concurrent requests that ask for the same deployment with the same
``encoding_format`` / ``dimensions``, sends them as one ``input`` list and hands each request its own embeddings
back. The batchers are few and bounded (``MAX_BATCHERS``, idle ones dropped first): a request whose options would
need a batcher of its own (a ``user`` value, an unknown ``encoding_format``, a full table) goes upstream alone, so no
value a client chooses becomes a structure the gateway keeps.

The upstream reports one ``prompt_tokens`` for the whole call; each request is given a share in proportion to its
texts' offline token counts (largest remainder, so the shares add up to the upstream's figure exactly). Each
request's ledger row carries its share; a coalesced call therefore appears as one call row per request it served.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tokenomy.config.settings import DeploymentConfig
from tokenomy.errors import AllUpstreamsFailedError, Attempt, ModelNotFoundError, UpstreamError
from tokenomy.ledger.trace import RequestTrace
from tokenomy.microbatch import MicroBatcher
from tokenomy.providers.registry import EmbeddingDeployment

TokenCount = Callable[[str], int]
MAX_BATCHERS = 64
_FORMATS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class _Item:
    text: str
    weight: int


class EmbeddingsDispatcher:
    def __init__(self, deployments: Sequence[EmbeddingDeployment], count_tokens: TokenCount) -> None:
        self._by_model: dict[str, list[EmbeddingDeployment]] = {}
        for dep in deployments:
            self._by_model.setdefault(dep.config.model, []).append(dep)
        self._count = count_tokens
        self._batchers: OrderedDict[tuple[str, str, int], MicroBatcher[_Item, tuple[Any, int]]] = OrderedDict()

    def models(self) -> list[str]:
        return list(self._by_model)

    def serves(self, model: str) -> bool:
        return model in self._by_model

    def chain(self, model: str) -> list[DeploymentConfig]:
        """The deployments of ``model``, in the order they are tried."""
        return [dep.config for dep in self._by_model.get(model, ())]

    async def aclose(self) -> None:
        for deps in self._by_model.values():
            for dep in deps:
                await dep.provider.aclose()

    async def embed(self, body: dict[str, Any], trace: RequestTrace,
                    allow: frozenset[str] | None = None) -> dict[str, Any]:
        """``allow``: the only deployments the caller may use (None: any)."""
        model = str(body.get("model"))
        chain = [d for d in self._by_model.get(model, ()) if allow is None or d.name in allow]
        if not chain:
            raise ModelNotFoundError(f"embedding model '{model}' is not served here", param="model")
        attempts: list[Attempt] = []
        for dep in chain:
            call = trace.begin_call(dep.config)
            try:
                data, tokens = await self._once(dep, body)
            except UpstreamError as exc:
                exc.deployment = exc.deployment or dep.name
                call.fail(exc)
                attempts.append(Attempt(dep.name, exc))
                if not exc.retryable:
                    raise
                continue
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            call.complete({"usage": usage})
            return {"object": "list", "data": data, "model": model, "usage": usage}
        raise AllUpstreamsFailedError(model, attempts)

    async def _once(self, dep: EmbeddingDeployment, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        sent = {**body, "model": dep.config.sent_model}
        listed = isinstance(texts, list) and all(isinstance(t, str) for t in texts)
        batcher = self._batcher(dep, sent) if listed else None
        if batcher is None or not isinstance(texts, list):
            answer = await dep.provider.embed(sent, dep.config.timeout_s)
            usage = answer.get("usage") or {}
            return _indexed([item["embedding"] for item in answer["data"]]), int(usage.get("prompt_tokens") or 0)
        rows = await batcher.submit_many([_Item(t, max(1, self._count(t))) for t in texts])
        return _indexed([vector for vector, _ in rows]), sum(tokens for _, tokens in rows)

    def _batcher(self, dep: EmbeddingDeployment, sent: dict[str, Any]
                 ) -> MicroBatcher[_Item, tuple[Any, int]] | None:
        """The batcher for the request's deployment and options; None when it goes alone (no batching, a ``user``,
        unusual options, or ``MAX_BATCHERS`` busy batchers)."""
        batching, fmt, dims = dep.config.batching, sent.get("encoding_format", "float"), sent.get("dimensions", 0)
        if batching is None or "user" in sent or fmt not in _FORMATS or type(dims) is not int:
            return None
        key = (dep.name, str(fmt), dims)
        batcher = self._batchers.get(key)
        if batcher is not None:
            self._batchers.move_to_end(key)
            return batcher
        if len(self._batchers) >= MAX_BATCHERS:
            idle = next((k for k, b in self._batchers.items() if b.idle), None)
            if idle is None:
                return None
            del self._batchers[idle]
        options: dict[str, Any] = {k: sent[k] for k in ("encoding_format", "dimensions") if k in sent}
        batcher = self._batchers[key] = MicroBatcher(
            lambda items: self._coalesced(dep, options, items), max_batch=batching.max_batch,
            max_wait_ms=batching.max_wait_ms, max_inflight=batching.max_inflight)
        return batcher

    async def _coalesced(self, dep: EmbeddingDeployment, options: dict[str, Any],
                         items: list[_Item]) -> list[tuple[Any, int]]:
        answer = await dep.provider.embed({"model": dep.config.sent_model, "input": [i.text for i in items],
                                           **options}, dep.config.timeout_s)
        vectors = [item["embedding"] for item in answer["data"]]
        if len(vectors) != len(items):
            raise UpstreamError(f"upstream returned {len(vectors)} embeddings for {len(items)} inputs",
                                deployment=dep.name)
        total = int((answer.get("usage") or {}).get("prompt_tokens") or 0)
        return list(zip(vectors, shares(total, [i.weight for i in items]), strict=True))


def shares(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder): the parts add up to ``total``."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    raw = [total * w / whole for w in weights]
    parts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _indexed(vectors: list[Any]) -> list[dict[str, Any]]:
    return [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
