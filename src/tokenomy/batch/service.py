"""The batch side of a running gateway: its store, file contents and runner, and the two actions the API takes
(create and cancel). No HTTP here; ``api/batches.py`` renders what this returns."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from tokenomy.batch.files import Blobs
from tokenomy.batch.objects import ENDPOINTS, VIA, BatchRecord, BatchStatus, new_id
from tokenomy.batch.runner import BatchRunner
from tokenomy.batch.store import BatchStore
from tokenomy.batch.validate import completion_window_s
from tokenomy.config.settings import BatchConfig
from tokenomy.errors import BatchStateError, InvalidRequestError, NotFoundError

CONCURRENCY_KEY = "tokenomy_concurrency"
VIA_KEY = "tokenomy_via"


@dataclass(slots=True)
class BatchService:
    store: BatchStore
    blobs: Blobs
    runner: BatchRunner
    config: BatchConfig

    async def create(self, body: dict[str, Any], *, key_id: str | None = None) -> BatchRecord:
        """Validate a create request, store the batch (``validating``) and start it."""
        file_id, endpoint = body.get("input_file_id"), body.get("endpoint")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequestError("'input_file_id' must be the id of an uploaded file", param="input_file_id")
        if endpoint not in ENDPOINTS:
            raise InvalidRequestError(f"'endpoint' must be one of {', '.join(ENDPOINTS)} (got {endpoint!r})",
                                      param="endpoint")
        window = body.get("completion_window")
        if not isinstance(window, str):
            raise InvalidRequestError("'completion_window' must be '24h'", param="completion_window")
        window_s = completion_window_s(window)
        metadata = _metadata(body.get("metadata"))
        source = await asyncio.to_thread(self.store.get_file, file_id)
        if source is None or (key_id is not None and source.key_id != key_id):
            raise NotFoundError(f"no such file: {file_id!r}", param="input_file_id")
        if source.purpose != "batch":
            raise InvalidRequestError(f"file {file_id} has purpose {source.purpose!r}; a batch needs a file "
                                      "uploaded with purpose 'batch'", param="input_file_id")
        now = int(time.time())
        record = BatchRecord(id=new_id("batch"), endpoint=endpoint, input_file_id=file_id, completion_window=window,
                             via=self._via(body, metadata), status=BatchStatus.VALIDATING, created_at=now,
                             expires_at=now + window_s, max_concurrency=self._concurrency(metadata),
                             metadata=metadata, key_id=key_id)
        await asyncio.to_thread(self.store.add_batch, record)
        self.runner.launch(record.id)
        return record

    async def cancel(self, batch_id: str, *, viewer: str | None = None) -> BatchRecord:
        found = await self.get(batch_id, viewer=viewer)
        if found.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
            return found
        changed = await asyncio.to_thread(self.store.update_batch, batch_id,
                                          (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS),
                                          status=BatchStatus.CANCELLING, cancelling_at=int(time.time()))
        if not changed:
            raise BatchStateError(f"batch {batch_id} is {found.status} and can no longer be cancelled",
                                  param="batch_id")
        self.runner.cancel(batch_id)
        return await self.get(batch_id)

    async def get(self, batch_id: str, *, viewer: str | None = None) -> BatchRecord:
        """The batch; NotFoundError when it does not exist or belongs to another key than ``viewer``."""
        found = await asyncio.to_thread(self.store.get_batch, batch_id)
        if found is None or (viewer is not None and found.key_id != viewer):
            raise NotFoundError(f"no such batch: {batch_id!r}", param="batch_id")
        return found

    async def render(self, record: BatchRecord) -> dict[str, Any]:
        counts = await asyncio.to_thread(self.store.counts, record.id)
        usage = await asyncio.to_thread(self.store.usage, record.id)
        return record.to_openai(counts, usage)

    def _via(self, body: dict[str, Any], metadata: dict[str, str] | None) -> str:
        via = body.get("via") or (metadata or {}).get(VIA_KEY) or self.config.via
        if via not in VIA:
            raise InvalidRequestError(f"'via' must be 'gateway' or 'provider' (got {via!r})", param="via")
        return str(via)

    def _concurrency(self, metadata: dict[str, str] | None) -> int:
        text = (metadata or {}).get(CONCURRENCY_KEY)
        if text is None:
            return self.config.max_concurrency
        cap = self.config.max_concurrency_cap
        if not text.isdigit() or not 1 <= int(text) <= cap:
            raise InvalidRequestError(f"metadata.{CONCURRENCY_KEY} must be an integer in [1, {cap}] (got {text!r})",
                                      param=f"metadata.{CONCURRENCY_KEY}")
        return int(text)


def _metadata(value: Any) -> dict[str, str] | None:
    """OpenAI's metadata rules: at most 16 string pairs, keys ≤ 64 characters, values ≤ 512."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16:
        raise InvalidRequestError("'metadata' must be an object of at most 16 string pairs", param="metadata")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 64 or len(item) > 512:
            raise InvalidRequestError(f"metadata {key!r}: keys are strings of at most 64 characters and values of "
                                      "at most 512", param="metadata")
    return dict(value)
