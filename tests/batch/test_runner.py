"""The batch runner on a real SQLite store with a scripted line executor: a store that fails to commit loses no
line, and a runner started over a half-done batch finishes only what was left."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tokenomy.batch.executor import LineOutcome
from tokenomy.batch.files import FileBlobs
from tokenomy.batch.objects import BatchRecord, BatchStatus, LineState, LineUsage
from tokenomy.batch.runner import BatchRunner
from tokenomy.batch.store import BatchStoreError, LineResult, PendingLine, SQLiteBatchStore
from tokenomy.config.settings import BatchConfig
from tokenomy.ledger.migrate import upgrade


class Lines:
    """Answers every line at once; counts how often each ran."""

    def __init__(self) -> None:
        self.runs: Counter[int] = Counter()

    async def execute(self, batch: BatchRecord, line: PendingLine) -> LineOutcome:
        self.runs[line.line_no] += 1
        await asyncio.sleep(0)
        return LineOutcome(status_code=200, body={"n": line.line_no}, request_id=f"r{line.line_no}")


class FlakyStore(SQLiteBatchStore):
    """The real store, whose first ``failures`` commits of finished lines fail."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def complete_lines(self, batch_id: str, results: Any) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise BatchStoreError("disk on fire")
        return super().complete_lines(batch_id, results)


def _batch(store: SQLiteBatchStore, blobs: FileBlobs, n: int) -> str:
    lines = [orjson.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/embeddings",
                           "body": {"model": "m", "input": f"t{i}"}}) for i in range(n)]
    blobs.write("file-in", lines)
    now = int(time.time())
    store.add_batch(BatchRecord(id="batch_1", endpoint="/v1/embeddings", input_file_id="file-in",
                                completion_window="24h", via="gateway", status=BatchStatus.VALIDATING, created_at=now,
                                expires_at=now + 3600, max_concurrency=4))
    return "batch_1"


async def _run_to_end(runner: BatchRunner) -> None:
    await runner.start()
    await asyncio.wait_for(runner.wait_idle(), 60)


async def test_failed_commits_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    upgrade(str(db))
    store, blobs, lines = FlakyStore(db, failures=3), FileBlobs(tmp_path / "files"), Lines()
    batch_id = _batch(store, blobs, 50)
    await _run_to_end(BatchRunner(store, blobs, lines, BatchConfig(), sleep=lambda s: asyncio.sleep(0)))
    record = store.get_batch(batch_id)
    assert record is not None and record.status is BatchStatus.COMPLETED
    assert store.counts(batch_id).completed == 50
    assert set(lines.runs.values()) == {1}  # kept in memory and committed later: nothing ran twice
    out = [orjson.loads(x) for x in blobs.open(str(record.output_file_id)).read().splitlines()]
    assert [row["custom_id"] for row in out] == [f"c{i}" for i in range(50)]


async def test_a_restarted_runner_runs_only_what_is_left(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    upgrade(str(db))
    store, blobs = SQLiteBatchStore(db), FileBlobs(tmp_path / "files")
    batch_id = _batch(store, blobs, 20)
    store.update_batch(batch_id, status=BatchStatus.IN_PROGRESS)
    store.add_lines(batch_id, [(i + 1, f"c{i}", orjson.dumps({"model": "m", "input": f"t{i}"})) for i in range(20)])
    finished = [LineResult(n, LineState.DONE, {"custom_id": f"c{n - 1}"}, LineUsage())  # a previous run did 1..12
                for n in range(1, 13)]
    assert store.complete_lines(batch_id, finished) == 12
    assert store.complete_lines(batch_id, finished) == 0  # a second commit of the same lines writes nothing
    lines = Lines()
    await _run_to_end(BatchRunner(store, blobs, lines, BatchConfig()))
    assert sorted(lines.runs) == list(range(13, 21))
    assert store.counts(batch_id).completed == 20
