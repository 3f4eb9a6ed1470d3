"""Runs batches to the end, durably: every step reads its state from the store, so a restarted gateway picks each
unfinished batch up where it stood.

One task per active batch walks the state machine. ``in_progress`` runs the pending lines, at most
``max_concurrency`` at once, through the ``LineExecutor``; finished lines are committed in small groups (result,
usage and ledger rows in one transaction). A line in flight when the process dies was never committed, so it is
still pending and runs again after the restart: nothing lost, nothing recorded twice. A 429 pauses the whole batch
(back-off, or the upstream's ``retry-after``) and never fails a line; a transient failure is retried
``line_retries`` times. Cancel and expiry stop new lines, let those in flight finish, and close the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tokenomy.batch.executor import LineExecutor, LineOutcome, RemoteBatches, RemoteStep
from tokenomy.batch.files import Blobs
from tokenomy.batch.objects import BatchRecord, BatchStatus, FileRecord, LineState, derived_id, output_file_id
from tokenomy.batch.store import BatchStore, LineResult, PendingLine
from tokenomy.batch.validate import MAX_KEPT, InputLine, check_lines, checked
from tokenomy.config.settings import BatchConfig

log = logging.getLogger("tokenomy.batch")

PAGE = 256
ERROR_STATES = (LineState.FAILED, LineState.EXPIRED, LineState.CANCELLED)
_CLOSED = {
    LineState.EXPIRED: ("batch_expired", "This request could not be executed before the completion window expired."),
    LineState.CANCELLED: ("batch_cancelled", "This request was not executed: the batch was cancelled."),
}


STAGE_ROWS = 1000  # lines stored per transaction while a batch is validated


@dataclass(slots=True)
class StagedLines:
    """A validated batch's stored lines: their numbers, and the models they ask for."""

    line_nos: list[int]
    models: set[str]


class Job:
    """One running batch's live state: cancel signal, the shared rate-limit pause, the clock."""

    def __init__(self, batch: BatchRecord, clock: Callable[[], float], max_backoff_s: float) -> None:
        self.batch = batch
        self.cancelled = asyncio.Event()
        self._clock = clock
        self._pause_until = 0.0
        self._backoff_s = 0.0
        self._max_backoff_s = max_backoff_s

    def expired(self) -> bool:
        return self._clock() >= self.batch.expires_at

    def stopping(self) -> bool:
        return self.cancelled.is_set() or self.expired()

    def rate_limited(self, retry_after_s: float | None) -> None:
        """A 429: pause every line of the batch. The back-off doubles once per pause, not once per line that
        saw the same 429 wave."""
        if self.pause_left() == 0:
            self._backoff_s = min(self._max_backoff_s, max(1.0, self._backoff_s * 2))
        delay = retry_after_s if retry_after_s is not None else self._backoff_s
        self._pause_until = max(self._pause_until, self._clock() + min(delay, self._max_backoff_s))

    def succeeded(self) -> None:
        self._backoff_s = 0.0

    def pause_left(self) -> float:
        return max(0.0, self._pause_until - self._clock())


class _Committer:
    """Commits finished lines as soon as they finish; lines that finish while a commit runs go in the next one
    (group commit). The window in which a finished line is not yet durable is one commit long, which bounds what
    a crash makes run twice. A failed commit keeps the lines and retries."""

    def __init__(self, store: BatchStore, batch_id: str) -> None:
        self._store, self._batch_id = store, batch_id
        self._pending: list[LineResult] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._loop())

    def add(self, result: LineResult) -> None:
        self._pending.append(result)
        self._wake.set()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        await self._task

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            group, self._pending = self._pending, []
            if group:
                try:
                    await asyncio.to_thread(self._store.complete_lines, self._batch_id, group)
                except Exception as exc:  # the store is down: keep every result, try again
                    log.warning("batch %s: cannot commit %d lines (%s); retrying", self._batch_id, len(group), exc)
                    self._pending = group + self._pending
                    self._wake.set()
                    await asyncio.sleep(1.0)
                    continue
            if self._closing and not self._pending:
                return


class BatchRunner:
    def __init__(self, store: BatchStore, blobs: Blobs, executor: LineExecutor, config: BatchConfig, *,
                 remote: RemoteBatches | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._store, self._blobs, self._executor, self._config = store, blobs, executor, config
        self._remote = remote
        self._clock, self._sleep = clock, sleep
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._jobs: dict[str, Job] = {}
        self._cancels: set[str] = set()  # cancel asked while the batch runs (the store already says cancelling)

    async def start(self) -> None:
        """Resume every batch that was not finished when the gateway last stopped."""
        for batch in await asyncio.to_thread(self._store.active_batches):
            self.launch(batch.id)

    def launch(self, batch_id: str) -> None:
        if batch_id not in self._tasks:
            task = asyncio.create_task(self._drive(batch_id), name=f"batch {batch_id}")
            self._tasks[batch_id] = task
            task.add_done_callback(lambda _t: self._tasks.pop(batch_id, None))

    def cancel(self, batch_id: str) -> None:
        """Tell a running batch that its status became ``cancelling`` (the store already says so)."""
        self._cancels.add(batch_id)
        job = self._jobs.get(batch_id)
        if job is not None:
            job.cancelled.set()
        self.launch(batch_id)

    async def stop(self) -> None:
        """Stop every batch task; lines in flight are abandoned (still pending: they run again after a restart)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close = getattr(self._remote, "aclose", None)
        if close is not None:
            await close()

    async def wait_idle(self) -> None:
        """Wait until no batch is running (tests, and ``serve`` on the way out)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    # --- the state machine ----------------------------------------------------------------------------------------

    async def _drive(self, batch_id: str) -> None:
        while True:
            try:
                batch = await asyncio.to_thread(self._store.get_batch, batch_id)
                if batch is None or batch.status.terminal:
                    return
                await self._step(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch %s: step failed; retrying in 5 s", batch_id)
                await self._sleep(5.0)

    async def _step(self, batch: BatchRecord) -> None:
        status = batch.status
        if status is BatchStatus.VALIDATING:
            await self._validate(batch)
        elif status in (BatchStatus.IN_PROGRESS, BatchStatus.CANCELLING) and batch.via == "provider":
            await self._pass_through(batch)
        elif status is BatchStatus.IN_PROGRESS:
            await self._execute(batch)
        elif status is BatchStatus.CANCELLING:
            await self._finish(batch, BatchStatus.CANCELLED, LineState.CANCELLED)
        elif status is BatchStatus.FINALIZING:
            await self._finish(batch, BatchStatus.COMPLETED, None)

    async def _pass_through(self, batch: BatchRecord) -> None:
        if self._remote is None:
            raise RuntimeError("a provider batch needs the pass-through runner")
        step = await self._remote.advance(batch)
        if step is RemoteStep.WAIT:
            await self._sleep(self._config.poll_interval_s)
        elif step is RemoteStep.COMPLETED:
            await self._finish(batch, BatchStatus.COMPLETED, LineState.EXPIRED)
        elif step is RemoteStep.EXPIRED:
            await self._finish(batch, BatchStatus.EXPIRED, LineState.EXPIRED)
        elif step is RemoteStep.CANCELLED:
            await self._finish(batch, BatchStatus.CANCELLED, LineState.CANCELLED)

    def _now(self) -> int:
        return int(self._clock())

    async def _validate(self, batch: BatchRecord) -> None:
        staged = await self.stage_lines(batch)
        if staged is not None:
            await self.start_lines(batch, staged)

    async def stage_lines(self, batch: BatchRecord) -> StagedLines | None:
        """Check the input file against the batch and store its lines (None: the batch failed validation and says
        why). Run again after a crash, it stores nothing twice. Both passes stream the file: memory is bounded by
        its longest line and ``STAGE_ROWS`` stored rows, not by its size."""
        check = await asyncio.to_thread(lambda: check_lines(self._blobs.lines(batch.input_file_id),
                                                            max_lines=self._config.max_lines, endpoint=batch.endpoint))
        if check.problems:
            await asyncio.to_thread(self._store.update_batch, batch.id, (BatchStatus.VALIDATING,),
                                    status=BatchStatus.FAILED, failed_at=self._now(),
                                    errors=[p.to_openai() for p in check.problems[:MAX_KEPT]])
            return None
        return await asyncio.to_thread(self._store_lines, batch)

    def _store_lines(self, batch: BatchRecord) -> StagedLines:
        staged = StagedLines([], set())
        rows: list[tuple[int, str, bytes]] = []
        for line in checked(self._blobs.lines(batch.input_file_id), max_lines=self._config.max_lines):
            assert isinstance(line, InputLine)  # the file was checked whole before
            staged.line_nos.append(line.line_no)
            staged.models.add(str(line.body.get("model")))
            rows.append((line.line_no, line.custom_id, orjson.dumps(line.body)))
            if len(rows) >= STAGE_ROWS:
                self._store.add_lines(batch.id, rows)
                rows = []
        if rows:
            self._store.add_lines(batch.id, rows)
        return staged

    async def start_lines(self, batch: BatchRecord, staged: StagedLines) -> None:
        """``validating → in_progress``, naming the batch's model when every line asks for the same one."""
        models = set(staged.models)
        await asyncio.to_thread(self._store.update_batch, batch.id, (BatchStatus.VALIDATING,),
                                status=BatchStatus.IN_PROGRESS, in_progress_at=self._now(),
                                model=models.pop() if len(models) == 1 else None)

    async def _execute(self, batch: BatchRecord) -> None:
        job = self._jobs[batch.id] = Job(batch, self._clock, self._config.max_backoff_s)
        if batch.id in self._cancels:  # cancelled between reading the batch and getting here
            job.cancelled.set()
        try:
            await self.run_pending(job, batch.max_concurrency)
        finally:
            self._jobs.pop(batch.id, None)
        if job.cancelled.is_set():
            return  # the store says cancelling: the next step closes it
        if job.expired():
            await self._finish(batch, BatchStatus.EXPIRED, LineState.EXPIRED)
            return
        await self._finalize_if_done(batch)

    async def _finalize_if_done(self, batch: BatchRecord) -> bool:
        """``in_progress → finalizing`` once no line is pending (a compare-and-set: one caller wins)."""
        counts = await asyncio.to_thread(self._store.counts, batch.id)
        if counts.pending:
            return False
        await asyncio.to_thread(self._store.update_batch, batch.id, (BatchStatus.IN_PROGRESS,),
                                status=BatchStatus.FINALIZING, finalizing_at=self._now())
        return True

    async def run_pending(self, job: Job, concurrency: int, first: int = 1, last: int | None = None) -> None:
        """Run the pending lines numbered ``first..last`` (all: ``last`` None), ``concurrency`` at once, until they
        are done or the job stops; finished lines are committed as they finish."""
        batch = job.batch
        slots = asyncio.Semaphore(concurrency)
        committer = _Committer(self._store, batch.id)
        running: set[asyncio.Task[None]] = set()
        try:
            after = first - 1
            while not job.stopping():
                page = await asyncio.to_thread(self._store.pending_lines, batch.id, after, PAGE)
                page = [line for line in page if last is None or line.line_no <= last]
                if not page:
                    break
                for line in page:
                    await slots.acquire()
                    if job.stopping():
                        slots.release()
                        break
                    after = line.line_no
                    task = asyncio.create_task(self._run_line(job, line, slots, committer))
                    running.add(task)
                    task.add_done_callback(running.discard)
            await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await committer.close()

    async def _run_line(self, job: Job, line: PendingLine, slots: asyncio.Semaphore, committer: _Committer) -> None:
        try:
            tries = 0
            while True:
                while (wait := job.pause_left()) > 0 and not job.stopping():
                    await self._sleep(min(wait, 1.0))
                if job.stopping():
                    return  # left pending: closed as cancelled / expired
                outcome = await self._executor.execute(job.batch, line)
                if outcome.rate_limited:
                    job.rate_limited(outcome.retry_after_s)
                    continue
                if outcome.transient and tries < self._config.line_retries:
                    tries += 1
                    await self._sleep(min(self._config.max_backoff_s, 2.0 ** tries))
                    continue
                job.succeeded()
                committer.add(line_result(job.batch.id, line, outcome))
                return
        finally:
            slots.release()

    async def _finish(self, batch: BatchRecord, final: BatchStatus, close_as: LineState | None) -> None:
        """Close the lines that will not run, write the output and error files, and end the batch."""
        if close_as is not None:
            code, message = _CLOSED[close_as]
            await asyncio.to_thread(self._store.close_pending, batch.id, close_as,
                                    lambda n, cid: closed_line(batch.id, n, cid, code, message))
        files = await asyncio.to_thread(self._write_files, batch)
        stamp = {BatchStatus.COMPLETED: "completed_at", BatchStatus.EXPIRED: "expired_at",
                 BatchStatus.CANCELLED: "cancelled_at"}[final]
        await asyncio.to_thread(self._store.update_batch, batch.id, (batch.status, BatchStatus.IN_PROGRESS),
                                status=final, **files, **{stamp: self._now()})
        self._cancels.discard(batch.id)
        log.info("batch %s %s", batch.id, final)

    def _write_files(self, batch: BatchRecord) -> dict[str, Any]:
        found: dict[str, Any] = {"output_file_id": None, "error_file_id": None}
        for field, kind, states in (("output_file_id", "output", (LineState.DONE,)),
                                    ("error_file_id", "errors", ERROR_STATES)):
            file_id = output_file_id(batch.id, kind)
            lines = 0

            def counted(source: Any) -> Any:
                nonlocal lines
                for item in source:
                    lines += 1
                    yield item

            size = self._blobs.write(file_id, counted(self._store.results(batch.id, states)))
            if lines == 0:
                self._blobs.delete(file_id)
                continue
            self._store.add_file(FileRecord(id=file_id, purpose="batch_output", filename=f"{batch.id}_{kind}.jsonl",
                                            bytes=size, lines=lines, created_at=self._now(), key_id=batch.key_id))
            found[field] = file_id
        return found


def line_result(batch_id: str, line: PendingLine, outcome: LineOutcome) -> LineResult:
    ok = 200 <= outcome.status_code < 300
    result = {"id": derived_id("batch_req", batch_id, line.line_no), "custom_id": line.custom_id,
              "response": {"status_code": outcome.status_code, "request_id": outcome.request_id,
                           "body": outcome.body},
              "error": None}
    return LineResult(line_no=line.line_no, state=LineState.DONE if ok else LineState.FAILED, result=result,
                      usage=outcome.usage, ledger=outcome.ledger)


def closed_line(batch_id: str, line_no: int, custom_id: str, code: str, message: str) -> dict[str, Any]:
    return {"id": derived_id("batch_req", batch_id, line_no), "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}
