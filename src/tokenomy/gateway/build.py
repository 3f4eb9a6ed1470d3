"""Build the gateway core from Settings when a server starts, and close it when it stops.

Order matters: the ledger is migrated (and its spill file replayed) before team control rebuilds budget counters
from it; the core is complete before the batch runner, whose lines go through it, starts.

A PostgreSQL ledger that does not answer at start does not stop the gateway (a degraded start): the ledger writer
spills until the database answers, then migrates and replays; only the master key works until the keys are read;
budget counters are rebuilt, and the batch runner started, once the database answers (``/readyz`` says 503 until the
ledger has caught up).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace

from tokenomy.batch.setup import build_batches
from tokenomy.cache.setup import build_exact_cache, build_semantic_layer
from tokenomy.config.settings import Settings, database_url
from tokenomy.control.setup import build_admission
from tokenomy.conversations.store import ResponseStore
from tokenomy.db.engine import DatabaseOpener
from tokenomy.dispatch.catalog import Catalog
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.dispatch.embeddings import EmbeddingsDispatcher, TokenCount
from tokenomy.distill.bodies import build_body_store
from tokenomy.distill.serve import StudentSet
from tokenomy.embeddings.batched import LazyEmbedder
from tokenomy.gateway.core import Gateway
from tokenomy.gateway.lines import GatewayLines
from tokenomy.gateway.parts import (
    BodyStorage,
    NoBodyStore,
    NoResponseCache,
    NoRouters,
    NoSemanticCache,
    NoStudents,
    ResponseCache,
    Routers,
    SemanticCache,
    Students,
)
from tokenomy.gateway.remote import RemoteLines
from tokenomy.ledger.accounting import TokenCounter
from tokenomy.ledger.metrics import Metrics
from tokenomy.ledger.setup import build_accountant, open_writer
from tokenomy.providers.registry import Deployment, build_deployments, build_embedding_deployments
from tokenomy.routing.serve import RouterSet, router_configs

log = logging.getLogger("tokenomy")


@asynccontextmanager
async def running_gateway(settings: Settings, env: Mapping[str, str]) -> AsyncIterator[Gateway]:
    """The gateway for ``settings`` (``env`` supplies provider keys and store URLs), open while the block runs."""
    student_set = await asyncio.to_thread(StudentSet.load, settings, env)
    students: Students = student_set if student_set is not None else NoStudents()
    deployments = build_deployments(settings, env) + students.deployments()
    catalog = Catalog(deployments, settings.fallbacks)
    await asyncio.gather(*(start() for d in deployments if (start := getattr(d.provider, "start", None))))
    dispatcher = Dispatcher(catalog, settings.retry, settings.routing, drain_s=settings.ledger.drain_on_disconnect_s)
    opener = DatabaseOpener(database_url(settings, env))
    writer = await asyncio.to_thread(open_writer, settings, env, opener)
    await writer.start()
    accountant = build_accountant(settings, env)
    if accountant.counter is not None:
        await asyncio.to_thread(_warm_counts, accountant.counter, deployments)
    control = await build_admission(settings, opener, accountant.pricer, accountant.counter, deployments)
    dispatcher.gate = control
    exact = build_exact_cache(settings, env)
    embedder = LazyEmbedder(settings.embeddings.batching)
    layer = build_semantic_layer(settings, exact, embedder, env)
    if layer is not None:
        await layer.start()
    cache: ResponseCache = exact if exact is not None else NoResponseCache()
    semantic: SemanticCache = layer if layer is not None else NoSemanticCache()
    routers: Routers = NoRouters()
    if router_configs(settings.routing):
        routers = await asyncio.to_thread(RouterSet.load, settings.routing, catalog.serves)
    store = build_body_store(settings, env)
    bodies: BodyStorage = store if store is not None else NoBodyStore()
    embedding_deployments = build_embedding_deployments(settings, env)
    upstream_embeddings = EmbeddingsDispatcher(embedding_deployments,
                                               _token_count() if embedding_deployments else len)
    metrics = Metrics(_label_models(settings, deployments, routers, upstream_embeddings))
    metrics.watch(dispatcher.inflight, lambda: _queue_depths(deployments, dispatcher.inflight),
                  lambda: writer.queued)
    gateway = Gateway(settings=settings, dispatcher=dispatcher, accountant=accountant, ledger=writer, metrics=metrics,
                      control=control, cache=cache, semantic=semantic, routers=routers, students=students,
                      bodies=bodies, embedder=embedder, upstream_embeddings=upstream_embeddings,
                      ledger_source=opener.report_source(), conversations=ResponseStore(opener()),
                      durable_ack=_durable_ack(settings.ledger.ack, opener.postgres))
    runner: asyncio.Task[None] | None = None
    if settings.batch.enabled:  # the lines run through the core built so far (they never touch its batches)
        service = await asyncio.to_thread(build_batches, settings, env, GatewayLines(gateway), RemoteLines(gateway),
                                          catalog, accountant, opener)
        gateway = replace(gateway, batch_service=service)
        degraded = opener.postgres and writer.store_down
        runner = asyncio.create_task(_start_runner(service.runner.start, retry=degraded))
        if not degraded:
            await runner
    log.info("serving %d deployments: %s", len(deployments), ", ".join(d.name for d in deployments))
    try:
        yield gateway
    finally:
        await _close(gateway, deployments, runner)
        await asyncio.to_thread(opener.close)


async def _start_runner(start: Callable[[], Awaitable[None]], *, retry: bool) -> None:
    """Start the batch runner; on PostgreSQL, a database that does not answer yet is tried again every 5 s."""
    while True:
        try:
            await start()
            return
        except Exception as exc:  # the job engine's and the driver's own errors: the database is not there yet
            if not retry:
                raise
            log.error("batch runner not started (%s); trying again in 5 s", " ".join(str(exc).split()))
            await asyncio.sleep(5.0)


async def _close(gateway: Gateway, deployments: list[Deployment], runner: asyncio.Task[None] | None) -> None:
    """Stop everything that was opened: batch work first (its lines stay pending), then the ledger writer."""
    if runner is not None and not runner.done():  # still waiting for its database
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    elif gateway.batch_service is not None and runner is not None and not runner.cancelled() \
            and runner.exception() is None:
        await gateway.batch_service.runner.stop()
    await gateway.ledger.stop()
    for part in (gateway.upstream_embeddings, gateway.control, gateway.semantic, gateway.cache):
        await part.aclose()
    gateway.students.close()
    gateway.bodies.close()
    for dep in deployments:
        close = getattr(dep.provider, "aclose", None)
        if close is not None:
            await close()


def _durable_ack(ack: str, postgres: bool) -> bool:
    """``ledger.ack``: auto is durable on PostgreSQL (replicas), queued on the embedded SQLite file."""
    return ack == "durable" or (ack == "auto" and postgres)


def _warm_counts(counter: TokenCounter, deployments: list[Deployment]) -> None:
    """Load the token encodings the deployments' models count with now, not on the first request that needs one
    (0.3-0.4 s each: the event loop stood still that long once, under whatever traffic had just arrived)."""
    for model in sorted({m for d in deployments for m in (d.config.model, d.config.sent_model) if m}):
        counter.count_text("warm", model)


def _token_count() -> TokenCount:
    """Offline token counts (cl100k) that apportion a coalesced embeddings call's usage among its requests."""
    from tokenomy.tokens.counter import TokenCounter

    counter = TokenCounter()
    return lambda text: counter.count_text(text, "text-embedding-3-small")


def _label_models(settings: Settings, deployments: list[Deployment], routers: Routers,
                  embeddings: EmbeddingsDispatcher) -> frozenset[str]:
    """The model names metrics may carry as labels: only configured ones (docs/security.md)."""
    names = {n for d in deployments for n in (d.config.model, d.config.sent_model, d.config.tier)}
    return frozenset(names | set(routers.names()) | set(embeddings.models()) | {settings.embeddings.model})


def _queue_depths(deployments: list[Deployment], inflight: Mapping[str, int]) -> dict[str, int]:
    """What each deployment holds now (the autoscalers' metric): a provider's own queue where it keeps one (the
    local tier, a shared base), else the calls in flight to its upstream (a vLLM or llama.cpp server queues them)."""
    found = {}
    for d in deployments:
        own = getattr(d.provider, "queue_depth", None)
        found[d.name] = int(own) if own is not None else int(inflight.get(d.name, 0))
    return found
