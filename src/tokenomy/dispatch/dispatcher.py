"""Send a validated request along its chain: retries with jitter on one deployment, then the next deployment.

Per deployment: up to ``max_retries`` retries on retryable failures (429 honouring ``retry-after`` up to
``max_retry_after_s``, 5xx, timeouts, resets), with full-jitter exponential backoff. A deployment that exhausts its
retries, or refuses our credentials, cools down for ``cooldown_s`` and the next deployment is tried; cooling
deployments are skipped while any other remains. A request the upstream judged invalid is returned at once. When
every attempt fails the client gets one error that lists them all.

A routed request may name more models (``then``: a learned router's next choices, best first): their chains follow
the requested model's, without trying a deployment twice, and the answer says whose chain served it (``model``).

A stream is "primed": its first chunk is awaited here, so a stream that fails before its first byte is retried like
any call; after that the stream belongs to the client and a break ends it with an error event (see api/streaming).

A whole (non-streamed) call whose request is cancelled (its client left) is not cut off on an HTTP upstream: it is
let finish, for up to ``drain_s``, so the ledger records what the upstream did and billed (as a stream is drained);
the in-process model is stopped at once instead.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenomy.config.settings import RetryConfig, RoutingConfig
from tokenomy.dispatch.catalog import Catalog
from tokenomy.dispatch.cooldown import Cooldowns
from tokenomy.errors import (
    AllUpstreamsFailedError,
    Attempt,
    TokenomyError,
    UpstreamAuthError,
    UpstreamBusyError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimitError,
)
from tokenomy.ledger.trace import CallTrace, RequestTrace
from tokenomy.promptcache.prefix import SELF_HOSTED, prefix_hash, rendezvous_order
from tokenomy.providers.base import ChatCall, Chunk, ChunkStream, Completion
from tokenomy.providers.registry import Deployment
from tokenomy.wire.chat import ANTHROPIC_REQUEST
from tokenomy.wire.validation import ValidChat


class DeploymentGate(Protocol):
    """Asked before each deployment of a chain is tried: None to go ahead, else the seconds until it may take the
    request (the deployment's own rate limit is spent: the next one in the chain is tried instead)."""

    async def admit_deployment(self, dep: Deployment, chat: ValidChat) -> float | None: ...


@dataclass(slots=True)
class Served:
    """A whole completion and the deployment that produced it."""

    deployment: Deployment
    completion: Completion
    model: str  # the model whose chain served it: the requested one, or one of ``then``
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(slots=True)
class ServedStream:
    """An open stream: its first chunk (already received) and the rest."""

    deployment: Deployment
    first: Chunk
    rest: ChunkStream
    call: CallTrace
    model: str  # as for ``Served``
    attempts: list[Attempt] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        catalog: Catalog,
        retry: RetryConfig,
        routing: RoutingConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        drain_s: float = 30.0,
    ) -> None:
        self.catalog = catalog
        self._retry = retry
        self._routing = routing or RoutingConfig()
        self._cooldowns = Cooldowns(retry.cooldown_s)
        self._sleep = sleep
        self._jitter = jitter
        self._drain_s = drain_s
        self.inflight: Counter[str] = Counter()  # upstream calls now open, per deployment (a /metrics gauge)
        self.gate: DeploymentGate | None = None  # deployments' own rate limits (team control)

    async def complete(self, chat: ValidChat, trace: RequestTrace, then: Sequence[str] = (), *,
                       allow: frozenset[str] | None = None) -> Served:
        """``allow``: the only deployments (by name) the caller may use; None: any."""
        attempts: list[Attempt] = []
        for model, dep in self._ordered(chat, then, allow):
            if await self._at_limit(dep, chat, attempts):
                continue
            body = _with_cache_key({**_upstream_body(chat), "model": dep.config.sent_model}, dep)
            call = ChatCall(body=body, request_id=trace.id, timeout_s=dep.config.timeout_s,
                            stream_idle_timeout_s=self._retry.stream_idle_timeout_s, anthropic=_anthropic(chat),
                            key_id=trace.key_id)
            result = await self._on_deployment(dep, call, attempts, trace, self._complete_once)
            if result is not None:
                return Served(deployment=dep, completion=result, model=model, attempts=attempts)
        raise AllUpstreamsFailedError(chat.typed.model, attempts)

    async def stream(self, chat: ValidChat, trace: RequestTrace, then: Sequence[str] = (), *,
                     allow: frozenset[str] | None = None) -> ServedStream:
        """Falls through (to the next deployment or model) only until the first chunk has come."""
        attempts: list[Attempt] = []
        for model, dep in self._ordered(chat, then, allow):
            if await self._at_limit(dep, chat, attempts):
                continue
            # Always ask for usage, whatever the client asked: the ledger needs it (the API strips it back out).
            body = _with_cache_key({**_upstream_body(chat), "model": dep.config.sent_model, "stream": True,
                                    "stream_options": {**(chat.body.get("stream_options") or {}),
                                                       "include_usage": True}}, dep)
            call = ChatCall(body=body, request_id=trace.id, timeout_s=dep.config.timeout_s,
                            stream_idle_timeout_s=self._retry.stream_idle_timeout_s, anthropic=_anthropic(chat),
                            key_id=trace.key_id)
            result = await self._on_deployment(dep, call, attempts, trace, _open_once)
            if result is not None:
                first, rest, call_trace = result
                return ServedStream(deployment=dep, first=first, rest=rest, call=call_trace, model=model,
                                    attempts=attempts)
        raise AllUpstreamsFailedError(chat.typed.model, attempts)

    async def _at_limit(self, dep: Deployment, chat: ValidChat, attempts: list[Attempt]) -> bool:
        wait_s = await self.gate.admit_deployment(dep, chat) if self.gate is not None else None
        if wait_s is None:
            return False
        attempts.append(Attempt(dep.name, UpstreamRateLimitError(
            "skipped: the deployment is at its own rate limit", deployment=dep.name, retry_after_s=wait_s)))
        return True

    def _ordered(self, chat: ValidChat, then: Sequence[str] = (),
                 allow: frozenset[str] | None = None) -> list[tuple[str, Deployment]]:
        """(model, deployment) to try in order: the requested model's chain, then each of ``then``'s, without
        repeating a deployment nor reaching one outside ``allow``; cooling deployments are left out while any other
        remains."""
        seen: set[str] = set()
        chain: list[tuple[str, Deployment]] = []
        for model in (chat.typed.model, *then):
            for dep in self._sticky(self.catalog.chain(model), chat):
                if dep.name not in seen and (allow is None or dep.name in allow):
                    seen.add(dep.name)
                    chain.append((model, dep))
        healthy = [(m, d) for m, d in chain if not self._cooldowns.is_cooling(d.name)]
        return healthy or chain

    def _sticky(self, chain: list[Deployment], chat: ValidChat) -> list[Deployment]:
        """Self-hosted replicas of one model at the head of the chain: the request's prefix picks its replica
        (so the replica's prefix cache hits), unless that replica is busier than ``sticky_busy_factor`` times the
        group's average, in which case the next replica in the prefix's order takes it. A replica's load is its
        base's: every adapter served by the same upstream counts."""
        head = [d for d in chain if d.config.model == chain[0].config.model and d.config.provider in SELF_HOSTED]
        if len(head) < 2 or not self._routing.sticky_prefix:
            return chain
        by_name = {d.name: d for d in head}
        order = [by_name[n] for n in rendezvous_order(prefix_hash(chat.body), list(by_name))]
        load = {d.name: self.catalog.base_load(d.name, self.inflight) for d in head}  # per base: adapters share it
        mean = sum(load.values()) / len(head)
        limit = max(1.0, mean * self._routing.sticky_busy_factor)
        idle = [d for d in order if load[d.name] <= limit]
        order = idle + [d for d in order if d not in idle]
        return order + [d for d in chain if d.name not in by_name]

    async def _on_deployment(self, dep: Deployment, call: ChatCall, attempts: list[Attempt], trace: RequestTrace,
                             once: Callable[[Deployment, ChatCall, CallTrace], Awaitable[Any]]) -> Any:
        retries = dep.config.max_retries if dep.config.max_retries is not None else self._retry.max_retries
        for attempt_no in range(retries + 1):
            call_trace = self._begin(trace, dep)
            try:
                result = await once(dep, call, call_trace)
            except UpstreamError as exc:
                exc.deployment = exc.deployment or dep.name
                call_trace.fail(exc)
                attempts.append(Attempt(dep.name, exc))
                if not exc.retryable:
                    raise
                if isinstance(exc, UpstreamBusyError):  # its own queue is full: the next deployment, now, and
                    return None  # no cool-down (busy is not broken)
                delay = self._delay(exc, attempt_no)
                if isinstance(exc, UpstreamAuthError) or delay is None or attempt_no == retries:
                    break
                await self._sleep(delay)
            except TokenomyError as exc:  # the request cannot be served here (e.g. a capability): not retried
                call_trace.fail(exc)
                raise
            except asyncio.CancelledError:  # the client left (its door cancelled the request)
                call_trace.end_stream("disconnected")
                raise
            except BaseException as exc:
                call_trace.fail(TokenomyError(f"{type(exc).__name__}: {exc}"))
                raise
            else:
                self._cooldowns.mark_ok(dep.name)
                return result
        self._cooldowns.mark_failed(dep.name)
        return None

    def _begin(self, trace: RequestTrace, dep: Deployment) -> CallTrace:
        call_trace = trace.begin_call(dep.config)
        self.inflight[dep.name] += 1

        def ended() -> None:
            self.inflight[dep.name] -= 1

        call_trace.on_end = ended
        return call_trace

    def _delay(self, exc: UpstreamError, attempt_no: int) -> float | None:
        """Seconds to wait before retrying the same deployment, or None to move on to the next one."""
        if exc.retry_after_s is not None:
            if exc.retry_after_s > self._retry.max_retry_after_s:
                return None
            return exc.retry_after_s
        cap = min(float(self._retry.max_delay_ms), self._retry.base_delay_ms * 2.0 ** attempt_no) / 1000
        floor = cap / 2 if isinstance(exc, UpstreamRateLimitError) else 0.0
        return floor + (cap - floor) * self._jitter()

    async def _complete_once(self, dep: Deployment, call: ChatCall, trace: CallTrace) -> Completion:
        pending = asyncio.ensure_future(dep.provider.chat(call))
        try:
            result = await asyncio.shield(pending)
        except asyncio.CancelledError:  # the client left: an HTTP call finishes (bounded), the local model stops
            if dep.config.provider != "local":
                try:
                    done = await asyncio.wait_for(pending, self._drain_s)
                    if isinstance(done, dict):
                        trace.complete(done)
                except UpstreamError as exc:
                    trace.fail(exc)
                except TimeoutError:
                    pass
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
            raise
        return _checked(dep, result, trace)


def _upstream_body(chat: ValidChat) -> dict[str, Any]:
    """The chat body an upstream sees: without the Anthropic request it may carry (that goes in ``ChatCall``)."""
    if ANTHROPIC_REQUEST not in chat.body:
        return chat.body
    return {k: v for k, v in chat.body.items() if k != ANTHROPIC_REQUEST}


def _anthropic(chat: ValidChat) -> dict[str, Any] | None:
    found = chat.body.get(ANTHROPIC_REQUEST)
    return found if isinstance(found, dict) else None


def _with_cache_key(body: dict[str, Any], dep: Deployment) -> dict[str, Any]:
    """OpenAI routes requests with the same ``prompt_cache_key`` to the same prompt cache: key it by the prefix
    (unless the client chose a key)."""
    if dep.config.provider == "openai" and "prompt_cache_key" not in body:
        body["prompt_cache_key"] = "tk-" + prefix_hash(body)[:32]
    return body


def _checked(dep: Deployment, result: Completion | ChunkStream, trace: CallTrace) -> Completion:
    if not isinstance(result, dict):
        raise UpstreamProtocolError("provider returned a stream for a non-stream call", deployment=dep.name)
    trace.complete(result)
    return result


async def _open_once(dep: Deployment, call: ChatCall, trace: CallTrace) -> tuple[Chunk, ChunkStream, CallTrace]:
    stream = await dep.provider.chat(call)
    if isinstance(stream, dict):
        raise UpstreamProtocolError("provider returned a completion for a stream call", deployment=dep.name)
    try:
        first = await anext(stream)
    except StopAsyncIteration as exc:
        raise UpstreamProtocolError("upstream closed the stream before sending anything",
                                    deployment=dep.name) from exc
    except BaseException:
        await stream.aclose()
        raise
    trace.chunk(first)
    return first, stream, trace
