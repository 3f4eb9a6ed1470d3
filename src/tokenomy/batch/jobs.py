"""Batches across replicas, on procrastinate (a job queue in the ledger's PostgreSQL database).

Two tasks. ``tokenomy.batch.step`` walks a batch's state machine one step at a time (validate, finalize, close a
cancelled or expired batch, poll a provider batch); ``tokenomy.batch.lines`` runs one chunk of a batch's pending
lines. Validation stores the lines and queues one chunk job per ``chunk_lines`` *before* the batch becomes
``in_progress``, so an ``in_progress`` batch always has its chunks queued. A batch's chunks are spread over lanes
(procrastinate ``lock``: one job of a lane runs at a time, on any replica), which bounds its lines in flight by
``max_concurrency`` however many replicas there are.

Delivery is at least once: a job whose replica dies (no heartbeat for ``stalled_after_s``) is handed back to the
queue by whichever replica's sweeper sees it first, and runs again elsewhere. That is safe because running a line
is idempotent where it matters: a line's result and ledger rows commit in one transaction, only while the line is
still pending (``BatchStore.complete_lines``); a chunk that runs again runs only what is still pending. So every
line is once in the output and once in the ledger; the upstream may have answered a line in flight at the crash
twice (no protocol prevents that).

Each replica's sweeper also queues a step for every unfinished batch every ``sweep_s`` (a ``queueing_lock`` keeps
one waiting step per batch), which finishes whatever a dead replica left between two steps. Cancel and expiry stop
new lines at once (chunks watch the batch's status); the batch is closed once no chunk of it is running, so a line
in flight when the cancel came still lands in the output and the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from tokenomy.batch.executor import LineExecutor, RemoteBatches, RemoteStep
from tokenomy.batch.files import Blobs
from tokenomy.batch.objects import BatchRecord, BatchStatus, LineState
from tokenomy.batch.runner import BatchRunner, Job
from tokenomy.batch.store import BatchStore
from tokenomy.config.settings import BatchConfig
from tokenomy.db.engine import Database

log = logging.getLogger("tokenomy.batch.jobs")

STEP = "tokenomy.batch.step"
LINES = "tokenomy.batch.lines"
WATCH_S = 1.0  # how often a running chunk re-reads its batch's status (cancel, expiry)
VALIDATING_WAIT_S = 30.0  # a chunk that starts before its batch is in_progress waits this long for it


def lanes(batch: BatchRecord, config: BatchConfig) -> tuple[int, int]:
    """(lanes, lines in flight per lane) for a batch: together never more than its ``max_concurrency``."""
    per_lane = max(1, min(batch.max_concurrency, config.jobs.lane_concurrency))
    count = max(1, batch.max_concurrency // per_lane)
    return count, per_lane


class JobBatchRunner(BatchRunner):
    """``BatchRunner``'s interface (start, launch, cancel, stop, wait_idle) with the work done by procrastinate
    workers in every replica."""

    def __init__(self, store: BatchStore, blobs: Blobs, executor: LineExecutor, config: BatchConfig, *,
                 database_url: str, database: Database, remote: RemoteBatches | None = None) -> None:
        import procrastinate

        super().__init__(store, blobs, executor, config, remote=remote)
        self._database = database
        conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=conninfo, min_size=1, max_size=max(4, config.jobs.worker_jobs + 2),
            kwargs={"connect_timeout": 3}))
        self.app.task(name=STEP, pass_context=False)(self._step_job)
        self.app.task(name=LINES, pass_context=False)(self._lines_job)
        self._background: list[asyncio.Task[Any]] = []
        self._deferring: set[asyncio.Task[None]] = set()
        self.name = f"{socket.gethostname()}-{id(self):x}"

    # --- the BatchRunner interface ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.app.open_async()
        jobs = self._config.jobs
        worker = self.app.run_worker_async(
            concurrency=jobs.worker_jobs, name=self.name, install_signal_handlers=False,
            update_heartbeat_interval=jobs.heartbeat_s, stalled_worker_timeout=jobs.stalled_after_s,
            delete_jobs="successful", fetch_job_polling_interval=2.0, shutdown_graceful_timeout=5.0)
        self._background = [asyncio.create_task(worker, name="batch-worker"),
                            asyncio.create_task(self._sweep_forever(), name="batch-sweeper")]

    def launch(self, batch_id: str) -> None:
        task = asyncio.create_task(self.defer_step(batch_id))
        self._deferring.add(task)
        task.add_done_callback(self._deferring.discard)

    def cancel(self, batch_id: str) -> None:
        """The store already says ``cancelling``: running chunks see it within ``WATCH_S``; a step closes it."""
        self.launch(batch_id)

    async def stop(self) -> None:
        """Stop this replica's worker: its running jobs are abandoned (still pending: they run again, here after a
        restart or on another replica once they are seen as stalled)."""
        await asyncio.gather(*self._deferring, return_exceptions=True)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        await self.app.close_async()
        close = getattr(self._remote, "aclose", None)
        if close is not None:
            await close()

    async def wait_idle(self) -> None:
        """Wait until every batch is finished (tests)."""
        while await asyncio.to_thread(self._store.active_batches):
            await asyncio.sleep(0.2)

    # --- queueing ----------------------------------------------------------------------------------------------------

    async def defer_step(self, batch_id: str, *, in_s: float | None = None) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        options: dict[str, Any] = {"queueing_lock": f"step:{batch_id}"}
        if in_s:
            options["schedule_in"] = {"seconds": in_s}
        with contextlib.suppress(AlreadyEnqueued):
            await self.app.configure_task(STEP, **options).defer_async(batch_id=batch_id)

    async def _defer_chunks(self, batch: BatchRecord, line_numbers: list[int]) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        count, per_lane = lanes(batch, self._config)
        size = self._config.jobs.chunk_lines
        for index, at in enumerate(range(0, len(line_numbers), size)):
            chunk = line_numbers[at:at + size]
            with contextlib.suppress(AlreadyEnqueued):
                await self.app.configure_task(
                    LINES, lock=f"batch:{batch.id}:{index % count}", queueing_lock=f"lines:{batch.id}:{chunk[0]}"
                ).defer_async(batch_id=batch.id, first=chunk[0], last=chunk[-1], concurrency=per_lane,
                              lane=index % count)

    # --- the two tasks ---------------------------------------------------------------------------------------------

    async def _step_job(self, batch_id: str) -> None:
        """Take the batch as far as it goes now; a batch whose chunks are still running is left to them."""
        while True:
            batch = await asyncio.to_thread(self._store.get_batch, batch_id)
            if batch is None or batch.status.terminal:
                return
            if not await self._advance(batch):
                return

    async def _advance(self, batch: BatchRecord) -> bool:
        """One step; True when the next one can follow at once."""
        status = batch.status
        if status is BatchStatus.VALIDATING:
            await self._validate(batch)
            return True
        if batch.via == "provider" and status in (BatchStatus.IN_PROGRESS, BatchStatus.CANCELLING):
            return await self._provider_step(batch)
        if status is BatchStatus.FINALIZING:
            await self._finish(batch, BatchStatus.COMPLETED, None)
            return False
        expired = status is BatchStatus.IN_PROGRESS and self._clock() >= batch.expires_at
        if status is BatchStatus.CANCELLING or expired:
            if await self._chunks_running(batch.id):
                return False  # closed once their lines in flight are in; the sweeper comes back
            if status is BatchStatus.CANCELLING:
                await self._finish(batch, BatchStatus.CANCELLED, LineState.CANCELLED)
            else:
                await self._finish(batch, BatchStatus.EXPIRED, LineState.EXPIRED)
            return False
        if status is BatchStatus.IN_PROGRESS:
            return await self._finalize_if_done(batch)
        return False

    async def _provider_step(self, batch: BatchRecord) -> bool:
        if self._remote is None:
            raise RuntimeError("a provider batch needs the pass-through runner")
        step = await self._remote.advance(batch)
        if step is RemoteStep.WAIT:
            await self.defer_step(batch.id, in_s=self._config.poll_interval_s)
            return False
        final = {RemoteStep.COMPLETED: (BatchStatus.COMPLETED, LineState.EXPIRED),
                 RemoteStep.EXPIRED: (BatchStatus.EXPIRED, LineState.EXPIRED),
                 RemoteStep.CANCELLED: (BatchStatus.CANCELLED, LineState.CANCELLED)}.get(step)
        if final is not None:
            await self._finish(batch, *final)
        return False

    async def _validate(self, batch: BatchRecord) -> None:
        """Store the lines, queue their chunks, then ``in_progress`` (run again after a crash: nothing twice)."""
        staged = await self.stage_lines(batch)
        if staged is None:
            return
        if batch.via != "provider":
            await self._defer_chunks(batch, staged.line_nos)
        await self.start_lines(batch, staged)

    async def _lines_job(self, batch_id: str, first: int, last: int, concurrency: int, lane: int = 0) -> None:
        batch = await asyncio.to_thread(self._store.get_batch, batch_id)
        waited = 0.0
        while batch is not None and batch.status is BatchStatus.VALIDATING:  # queued just before in_progress
            if waited > VALIDATING_WAIT_S:  # its validation died: it runs again (stalled), and so will this
                await self.app.configure_task(LINES, lock=f"batch:{batch_id}:{lane}").defer_async(
                    batch_id=batch_id, first=first, last=last, concurrency=concurrency, lane=lane)
                return
            await asyncio.sleep(0.1)
            waited += 0.1
            batch = await asyncio.to_thread(self._store.get_batch, batch_id)
        if batch is None or batch.status is not BatchStatus.IN_PROGRESS:
            return
        job = Job(batch, self._clock, self._config.max_backoff_s)
        watcher = asyncio.create_task(self._watch(job))
        try:
            await self.run_pending(job, concurrency, first, last)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if job.stopping() or await self._finalize_if_done(batch):
            await self.defer_step(batch_id)

    async def _watch(self, job: Job) -> None:
        while not job.cancelled.is_set():
            await asyncio.sleep(WATCH_S)
            batch = await asyncio.to_thread(self._store.get_batch, job.batch.id)
            if batch is None or batch.status is not BatchStatus.IN_PROGRESS:
                job.cancelled.set()

    async def _chunks_running(self, batch_id: str) -> bool:
        def count() -> int:
            with self._database.read() as tx:
                row = tx.execute("SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'doing' AND lock LIKE ?",
                                 (f"batch:{batch_id}:%",)).fetchone()
            return int(row[0])

        return await asyncio.to_thread(count) > 0

    # --- every replica's sweeper -----------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.jobs.sweep_s)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down for a while: keep sweeping
                log.warning("batch sweep failed: %s", " ".join(str(exc).split()))

    async def sweep(self) -> None:
        """Hand the jobs of dead replicas back to the queue, and queue the next step of every unfinished batch."""
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=self._config.jobs.stalled_after_s):
            log.warning("job %s (%s) was running on a replica that stopped; queueing it again", job.id,
                        job.task_name)
            await manager.retry_job(job)
        for batch in await asyncio.to_thread(self._store.active_batches):
            await self.defer_step(batch.id)
