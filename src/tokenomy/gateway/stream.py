"""A streamed answer: open the upstream stream (falling back only before its first chunk), pass its chunks on, and
account for it however it ends.

Usage is always requested upstream; it is passed on only if the client asked (``stream_options.include_usage``).
A stream that breaks after its first chunk raises ``StreamBrokenError`` to the door (which ends its response with
its API's error event) once the break is accounted.

A door whose client went away closes the chunks. The rest of an HTTP upstream's stream is then drained (up to
``ledger.drain_on_disconnect_s``) without passing it on, so the ledger gets the upstream's own usage figures for what
it generated and billed; the in-process local tier is stopped at once instead (nothing is billed, and its compute is
better spent on the next request), its tokens counted from what was generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.layer import Probe
from tokenomy.control.admission import Ticket
from tokenomy.control.estimate import explicit_max_output
from tokenomy.dispatch.dispatcher import ServedStream
from tokenomy.errors import StreamBrokenError, TokenomyError, UpstreamError
from tokenomy.gateway.recorders import Recorder
from tokenomy.gateway.results import CLIENT_GONE, Chunks, StreamAnswer, deployment_headers, fell_back
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.pricing.cost import TokenUsage
from tokenomy.wire.stream import StreamAssembler
from tokenomy.wire.validation import ValidChat

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway

log = logging.getLogger("tokenomy.gateway")


async def open_stream(gw: Gateway, chat: ValidChat, trace: RequestTrace, decision: CacheDecision | None,
                      probe: Probe | None, ticket: Ticket | None, then: Sequence[str], allow: frozenset[str] | None,
                      record: Recorder) -> StreamAnswer:
    control = gw.control
    try:
        served = await gw.dispatcher.stream(chat, trace, then, allow=allow)  # falls back only before the first chunk
    except BaseException as exc:
        entry = record(trace, exc.status, exc) if isinstance(exc, TokenomyError) else None
        if isinstance(exc, asyncio.CancelledError):  # the client left before the first chunk
            trace.client_disconnected = True
            entry = record(trace, CLIENT_GONE)
        await control.settle(ticket, entry)
        raise
    route = fell_back(trace, chat.typed.model, then, served.model)
    ended: list[LedgerEntry] = []

    def done(disconnected: bool) -> LedgerEntry:
        trace.client_disconnected = disconnected
        error = served.call.error
        ended.append(record(trace, 200 if error is None else error.status, error))
        return ended[-1]

    store = None
    if decision is not None:
        dep = served.deployment

        async def store(assembled: StreamAssembler) -> None:
            completion = assembled.completion()
            await gw.cache.put(decision, completion, deployment=dep.name, tier=dep.config.tier)
            await gw.semantic.remember(probe, decision, completion)

    async def acknowledged() -> None:
        await record.acknowledge(ended[0])

    asked_output = explicit_max_output(chat.body) or 0

    async def settle(entry: LedgerEntry | None) -> None:  # the reservation settles on what the stream cost
        await control.settle(ticket, entry)
        if entry is not None:
            await control.settle_deployments(entry, asked_output)

    chunks = relay(served, include_usage=chat.include_usage, drain_s=gw.settings.ledger.drain_on_disconnect_s,
                   on_done=done, on_complete=store, before_done=acknowledged if record.durable else None,
                   on_closed=settle)
    headers = {**deployment_headers(trace.id, served.deployment, trace.cache_status), "cache-control": "no-cache",
               "x-accel-buffering": "no", **(ticket.headers if ticket else {}), **route}
    if trace.client_request_id:
        headers["x-client-request-id"] = trace.client_request_id
    return StreamAnswer(chunks, headers)


async def relay(served: ServedStream, *, include_usage: bool, drain_s: float,
                on_done: Callable[[bool], LedgerEntry],
                on_complete: Callable[[StreamAssembler], Awaitable[None]] | None = None,
                before_done: Callable[[], Awaitable[None]] | None = None,
                on_closed: Callable[[LedgerEntry | None], Awaitable[None]] | None = None) -> Chunks:
    """The client's chunks. ``on_done(client_disconnected)`` is called once, when the upstream side is over, and
    returns the ledger entry; ``on_complete`` gets the whole answer of a stream that ended well (the exact cache
    stores it); with ``before_done``, a stream that ended well is accounted before its last chunk is released (the
    ledger's durable acknowledgement); ``on_closed`` runs last, however the stream ended (done, broken or abandoned),
    with the entry (the reservation settles there: in this generator, not one more around it, whose layer would cost
    every chunk of every stream). A client that asked for usage from an upstream that sent none (some servers
    ignore ``stream_options``) gets a last usage chunk with the ledger's own (counted) figures."""
    call = served.call
    assembler = StreamAssembler() if on_complete is not None else None
    accounted = False
    entry: LedgerEntry | None = None
    broken: UpstreamError | None = None
    try:
        # the upstream's chunks as the client sees them (each one traced, and assembled when the answer is cached);
        # inline rather than one more generator: a layer costs every chunk of every stream
        first = _shown(served.first, assembler, include_usage)
        if first is not None:
            yield first
        async for chunk in served.rest:
            call.chunk(chunk)
            out = _shown(chunk, assembler, include_usage)
            if out is not None:
                yield out
        call.end_stream("ok")
        if on_complete is not None and assembler is not None:
            await on_complete(assembler)
        counted = include_usage and call.usage is None
        if before_done is not None or counted:
            accounted = True
            entry = on_done(False)
            if before_done is not None:
                await before_done()
            if counted:
                yield _usage_chunk(served.first, entry.request.tokens)
    except UpstreamError as exc:
        call.end_stream("error", exc)
        log.warning("stream from %s broke: %s", served.deployment.name, exc.message)
        broken = exc
    finally:
        disconnected = await _closed(served, drain_s)
        if not accounted:
            entry = on_done(disconnected)
        if on_closed is not None:
            await on_closed(entry)
    if broken is not None:
        raise StreamBrokenError(broken)


def _shown(chunk: dict[str, Any], assembler: StreamAssembler | None, include_usage: bool) -> dict[str, Any] | None:
    """A chunk as the client sees it (None: nothing to send), fed to the assembler of an answer to be cached."""
    if assembler is not None:
        assembler.feed(chunk)
    return chunk if include_usage else _without_usage(chunk)


async def _closed(served: ServedStream, drain_s: float) -> bool:
    """Close the upstream side, draining a stream the client left first (for its usage); True when it was left."""
    disconnected = served.call.outcome == "open"
    if disconnected:
        local = served.deployment.config.provider == "local"
        await _drain(served, 0.0 if local else drain_s)
    await served.rest.aclose()
    return disconnected


async def _drain(served: ServedStream, drain_s: float) -> None:
    """Read (and drop) the rest of the upstream stream for its usage, for at most ``drain_s`` seconds."""
    call = served.call

    async def consume() -> None:
        async for chunk in served.rest:
            call.chunk(chunk)

    if drain_s > 0:
        try:
            await asyncio.wait_for(consume(), timeout=drain_s)
        except (TimeoutError, UpstreamError) as exc:
            log.info("drain of %s after client disconnect stopped: %s", served.deployment.name, exc)
    with contextlib.suppress(Exception):
        await served.rest.aclose()
    call.end_stream("disconnected")


def _usage_chunk(first: dict[str, Any], tokens: TokenUsage) -> dict[str, Any]:
    usage = {"prompt_tokens": tokens.prompt_tokens, "completion_tokens": tokens.output_tokens,
             "total_tokens": tokens.prompt_tokens + tokens.output_tokens}
    return {"id": first.get("id"), "object": "chat.completion.chunk", "created": first.get("created"),
            "model": first.get("model"), "choices": [], "usage": usage}


def _without_usage(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The chunk as a client that did not ask for usage sees it: no usage field, no usage-only chunk."""
    if "usage" not in chunk:
        return chunk
    if not chunk.get("choices"):
        return None
    return {k: v for k, v in chunk.items() if k != "usage"}
