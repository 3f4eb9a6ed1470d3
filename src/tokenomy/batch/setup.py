"""Assemble the batch side of a gateway from Settings (store in the ledger's database, contents under files/)."""

from __future__ import annotations

from collections.abc import Mapping

from tokenomy.batch.executor import LineAdmission, LineExecutor
from tokenomy.batch.files import Blobs, FileBlobs
from tokenomy.batch.passthrough import PassThrough
from tokenomy.batch.runner import BatchRunner
from tokenomy.batch.service import BatchService
from tokenomy.batch.store import SQLBatchStore
from tokenomy.config.settings import Settings, data_home
from tokenomy.db.engine import DatabaseOpener
from tokenomy.dispatch.catalog import Catalog
from tokenomy.ledger.accounting import Accountant


def build_batches(settings: Settings, env: Mapping[str, str], executor: LineExecutor, admission: LineAdmission,
                  catalog: Catalog, accountant: Accountant, opener: DatabaseOpener) -> BatchService:
    """The batch service over the (already migrated) ledger database: own workers through ``executor``,
    pass-through batches to the providers of ``catalog``'s deployments (their lines admitted by ``admission``). On
    SQLite one process runs its batches (contents under files/); on PostgreSQL contents live in the database and
    every replica's job worker runs lines (``jobs``)."""
    database = opener()
    store = SQLBatchStore(database)
    remote = PassThrough(store, catalog, accountant, env, admission)
    blobs: Blobs
    runner: BatchRunner
    if opener.postgres:
        from tokenomy.batch.db_files import DatabaseBlobs
        from tokenomy.batch.jobs import JobBatchRunner

        blobs = DatabaseBlobs(database)
        runner = JobBatchRunner(store, blobs, executor, settings.batch, database_url=opener.url, database=database,
                                remote=remote)
    else:
        blobs = FileBlobs(data_home(settings, env) / "files")
        runner = BatchRunner(store, blobs, executor, settings.batch, remote=remote)
    return BatchService(store=store, blobs=blobs, runner=runner, config=settings.batch)
