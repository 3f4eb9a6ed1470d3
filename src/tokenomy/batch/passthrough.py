"""Pass-through batches: the whole batch goes to the provider's own batch API (OpenAI Batch, Anthropic Message
Batches) at its batch discount; tokenomy keeps the job's state, polls, and when the provider is done records each
line's result and ledger rows (priced at the batch rates, the saving measured against the standard rate) in one
transaction, exactly as its own workers would.

A pass-through batch needs one model (the batch's ``model``) served here by an ``openai`` or ``anthropic``
deployment; the first such deployment in the model's chain takes it. Routing and caching do not apply: the provider
runs the requests as sent. The key that submitted the batch is held to its rules as on any request
(``LineAdmission``, the gateway's): when the batch is sent, each line's model must be allowed, the key's rate limits
take what is left of their window, and the lines' worst cases (at the batch rates) are reserved against its budget;
the lines that do not fit fail at once with OpenAI's error code, and are never sent. The reservation, kept in the
batch's state, settles to the lines' real cost when the results are recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from tokenomy.batch.executor import LineAdmission, LineOutcome, RemoteStep
from tokenomy.batch.objects import BatchRecord, BatchStatus, LineUsage, line_request_id
from tokenomy.batch.runner import PAGE, line_result
from tokenomy.batch.store import BatchStore, LineResult, PendingLine
from tokenomy.dispatch.catalog import Catalog
from tokenomy.errors import TokenomyError, UpstreamError
from tokenomy.ledger.accounting import Accountant
from tokenomy.ledger.trace import RequestTrace
from tokenomy.providers.batch_api import BATCH_PROVIDERS, BatchAPI, RemoteRequest, RemoteResult, batch_api_for
from tokenomy.providers.registry import Deployment

log = logging.getLogger("tokenomy.batch")


class PassThrough:
    def __init__(self, store: BatchStore, catalog: Catalog, accountant: Accountant, env: Mapping[str, str],
                 admission: LineAdmission) -> None:
        self._store, self._catalog, self._accountant, self._env = store, catalog, accountant, env
        self._admission = admission
        self._apis: dict[str, BatchAPI] = {}

    async def aclose(self) -> None:
        for api in self._apis.values():
            await api.aclose()

    async def advance(self, batch: BatchRecord) -> RemoteStep:
        if batch.remote is None:
            if batch.status is BatchStatus.CANCELLING:
                return RemoteStep.CANCELLED  # never reached the provider
            return await self._submit(batch)
        dep = self._by_name(str(batch.remote.get("deployment")))
        api = self._api(dep)
        state = dict(batch.remote)
        if batch.status is BatchStatus.CANCELLING and not state.get("cancel_sent"):
            await api.cancel(state)
            state["cancel_sent"] = True
        status = await api.poll(state)
        kept = {**status.state, "cancel_sent": state.get("cancel_sent"), "admission": state.get("admission")}
        await asyncio.to_thread(self._store.update_batch, batch.id, remote=kept)
        if not status.done:
            return RemoteStep.WAIT
        if status.failed is not None:
            await self._fail(batch, "provider_batch_failed", status.failed)
            await self._settle(batch, kept, 0)
            return RemoteStep.FAILED
        results = await api.results(status.state)
        cost = await self._record(batch, dep, results)
        await self._settle(batch, kept, cost)
        if batch.status is BatchStatus.CANCELLING:
            return RemoteStep.CANCELLED
        return RemoteStep.EXPIRED if status.state.get("status") == "expired" else RemoteStep.COMPLETED

    async def _submit(self, batch: BatchRecord) -> RemoteStep:
        dep, problem = self._deployment(batch)
        if dep is None:
            await self._fail(batch, "no_batch_provider", problem)
            return RemoteStep.FAILED
        lines = await asyncio.to_thread(_all_pending, self._store, batch.id)
        admitted = await self._admission.admit(batch, lines, dep.config)
        if admitted.refused:  # failed at once, with their ledger rows; never sent
            await asyncio.to_thread(self._store.complete_lines, batch.id,
                                    [line_result(batch.id, line, outcome) for line, outcome in admitted.refused])
        held = {"admission": admitted.held}
        if not admitted.send:
            await self._settle(batch, held, 0)
            return RemoteStep.COMPLETED
        requests = [RemoteRequest(line.line_no, batch.endpoint,
                                  {**orjson.loads(line.body), "model": dep.config.sent_model})
                    for line in admitted.send]
        try:
            state = await self._api(dep).submit(requests, tag=batch.id)
        except UpstreamError as exc:
            await self._settle(batch, held, 0)
            if not exc.retryable:
                await self._fail(batch, "provider_rejected", exc.message)
                return RemoteStep.FAILED
            raise
        except TokenomyError as exc:
            await self._settle(batch, held, 0)
            await self._fail(batch, "provider_rejected", exc.message)
            return RemoteStep.FAILED
        await asyncio.to_thread(self._store.update_batch, batch.id,
                                remote={**state, "deployment": dep.name, **held})
        log.info("batch %s submitted to %s as %s", batch.id, dep.name, state.get("id"))
        return RemoteStep.SUBMITTED

    def _deployment(self, batch: BatchRecord) -> tuple[Deployment | None, str]:
        if batch.model is None:
            return None, "a provider batch needs every line to ask for the same model"
        try:
            chain = self._catalog.chain(batch.model)
        except TokenomyError as exc:
            return None, exc.message
        found = next((d for d in chain if d.config.provider in BATCH_PROVIDERS), None)
        if found is None:
            return None, (f"no deployment of '{batch.model}' has a provider batch API (provider "
                          f"{' or '.join(BATCH_PROVIDERS)}); run it with via=gateway")
        return found, ""

    def _by_name(self, name: str) -> Deployment:
        for dep in self._catalog.deployments:
            if dep.name == name:
                return dep
        raise TokenomyError(f"deployment '{name}' that holds this provider batch is no longer configured")

    def _api(self, dep: Deployment) -> BatchAPI:
        if dep.name not in self._apis:
            self._apis[dep.name] = batch_api_for(dep.config, self._env)
        return self._apis[dep.name]

    async def _fail(self, batch: BatchRecord, code: str, message: str) -> None:
        await asyncio.to_thread(self._store.update_batch, batch.id, (batch.status,), status=BatchStatus.FAILED,
                                failed_at=int(time.time()),
                                errors=[{"code": code, "message": message, "param": None, "line": None}])

    async def _record(self, batch: BatchRecord, dep: Deployment, results: list[RemoteResult]) -> int:
        """Record the provider's results as the batch's lines (with their ledger rows); returns what they cost
        (pico-USD)."""
        lines = {line.line_no: line for line in await asyncio.to_thread(_all_pending, self._store, batch.id)}
        done: list[LineResult] = []
        for result in results:
            line = lines.get(result.line_no)
            if line is None or result.status_code is None or result.body is None:
                continue  # never ran (expired / cancelled at the provider): closed by the runner
            done.append(self._line(batch, dep, line, result))
        await asyncio.to_thread(self._store.complete_lines, batch.id, done)
        return sum(int((r.ledger or {}).get("request", {}).get("cost_pusd") or 0) for r in done)

    async def _settle(self, batch: BatchRecord, state: dict[str, Any], cost_pusd: int) -> None:
        """Settle the batch's budget reservation once: it is marked settled in the batch's state first, so a
        rerun after a crash never charges it twice (at worst a reservation lapses unsettled; the ledger has the
        cost)."""
        held = state.get("admission")
        if not held or held.get("settled"):
            return
        state["admission"] = {**held, "settled": True}
        if batch.remote is not None:  # sent: the state is the batch's
            await asyncio.to_thread(self._store.update_batch, batch.id, remote=state)
        await self._admission.settle(batch, held, cost_pusd)

    def _line(self, batch: BatchRecord, dep: Deployment, line: PendingLine, result: RemoteResult) -> LineResult:
        rid = line_request_id(batch.id, line.line_no)
        body = orjson.loads(line.body)
        held = (batch.remote or {}).get("admission") or {}
        trace = RequestTrace(id=rid, endpoint="batch.chat.completions", requested_model=str(body.get("model")),
                             stream=False, body=body, key_id=batch.key_id, tenant=held.get("tenant"),
                             tags=held.get("tags"))
        call = trace.begin_call(dep.config)
        call.id, call.batch = f"{rid}-1", True
        ok = result.status_code is not None and 200 <= result.status_code < 300
        assert result.body is not None
        if ok:
            call.complete(result.body)
        else:
            call.fail(UpstreamError(str((result.body.get("error") or {}).get("message", "failed")),
                                    deployment=dep.name, upstream_status=result.status_code))
        entry = self._accountant.entry(trace, result.status_code or 500)
        outcome = LineOutcome(status_code=result.status_code or 500, body=result.body, request_id=rid,
                              usage=LineUsage.from_openai(result.body.get("usage")), ledger=entry.as_json())
        return line_result(batch.id, line, outcome)


def _all_pending(store: BatchStore, batch_id: str) -> list[PendingLine]:
    found: list[PendingLine] = []
    after = 0
    while page := store.pending_lines(batch_id, after, PAGE * 8):
        found.extend(page)
        after = page[-1].line_no
    return found

