"""Assemble the batch side of a gateway from Settings (store in the ledger's database, contents under files/)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tokenomy.batch.executor import LineExecutor
from tokenomy.batch.files import FileBlobs
from tokenomy.batch.passthrough import PassThrough
from tokenomy.batch.runner import BatchRunner
from tokenomy.batch.service import BatchService
from tokenomy.batch.store import SQLBatchStore
from tokenomy.config.settings import Settings, data_home
from tokenomy.dispatch.catalog import Catalog
from tokenomy.ledger.accounting import Accountant
from tokenomy.ledger.database import Database


def build_batches(settings: Settings, env: Mapping[str, str], executor: LineExecutor, catalog: Catalog,
                  accountant: Accountant, opener: Callable[[], Database]) -> BatchService:
    """The batch service over the (already migrated) ledger database: own workers through ``executor``,
    pass-through batches to the providers of ``catalog``'s deployments."""
    store = SQLBatchStore(opener())
    blobs = FileBlobs(data_home(settings, env) / "files")
    remote = PassThrough(store, catalog, accountant, env)
    runner = BatchRunner(store, blobs, executor, settings.batch, remote=remote)
    return BatchService(store=store, blobs=blobs, runner=runner, config=settings.batch)
