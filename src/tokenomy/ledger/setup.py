"""Assemble the ledger parts a gateway needs from Settings: the writer (store + spill file) and the accountant."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tokenomy.config.settings import Settings, data_home, database_url
from tokenomy.db.engine import DatabaseOpener
from tokenomy.ledger.accounting import Accountant, TokenCounter
from tokenomy.ledger.late_store import LateStore
from tokenomy.ledger.migrate import open_store
from tokenomy.ledger.pricer import CataloguePricer
from tokenomy.ledger.spill import SpillFile
from tokenomy.ledger.store import LedgerStore, LedgerStoreError
from tokenomy.ledger.writer import LedgerWriter

log = logging.getLogger("tokenomy.ledger")


def open_writer(settings: Settings, env: Mapping[str, str], opener: DatabaseOpener | None = None) -> LedgerWriter:
    """Migrate and open the store (a bad SQLite path stops startup with one clear error). A PostgreSQL ledger that
    does not answer does not stop it: the gateway starts degraded, its writer spilling until the database returns
    (``late_store``; ``/readyz`` says 503 meanwhile)."""
    url = database_url(settings, env)
    database = opener() if opener is not None and opener.postgres else None
    spill = SpillFile(data_home(settings, env) / "ledger-spill.jsonl")
    store: LedgerStore
    try:
        store = open_store(url, database)
    except LedgerStoreError as exc:
        if database is None:
            raise
        log.error("starting degraded: %s; ledger entries go to %s until the database answers", exc.message,
                  spill.path)
        store = LateStore(url, database)
    return LedgerWriter(store, spill, max_queue=settings.ledger.max_queue, batch_size=settings.ledger.batch_size,
                        store_down=isinstance(store, LateStore))


def build_accountant(settings: Settings, env: Mapping[str, str]) -> Accountant:
    pricer = CataloguePricer.load(data_home(settings, env) / "prices.json")
    return Accountant(pricer, _counter(), settings.ledger.reference_model)


def _counter() -> TokenCounter | None:
    try:
        from tokenomy.tokens.counter import TokenCounter as OfflineCounter
    except ImportError:
        return None
    counter: TokenCounter = OfflineCounter()
    return counter
