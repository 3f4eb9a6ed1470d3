"""Assemble the ledger parts a gateway needs from Settings: the writer (store + spill file) and the accountant."""

from __future__ import annotations

from collections.abc import Mapping

from tokenomy.config.settings import Settings, data_home, database_url
from tokenomy.db.engine import DatabaseOpener
from tokenomy.ledger.accounting import Accountant, TokenCounter
from tokenomy.ledger.migrate import open_store
from tokenomy.ledger.pricer import CataloguePricer
from tokenomy.ledger.spill import SpillFile
from tokenomy.ledger.writer import LedgerWriter


def open_writer(settings: Settings, env: Mapping[str, str], opener: DatabaseOpener | None = None) -> LedgerWriter:
    """Migrate and open the store (a bad ledger URL or path stops startup with one clear error)."""
    url = database_url(settings, env)
    store = open_store(url, opener() if opener is not None and opener.postgres else None)
    spill = SpillFile(data_home(settings, env) / "ledger-spill.jsonl")
    return LedgerWriter(store, spill, max_queue=settings.ledger.max_queue, batch_size=settings.ledger.batch_size)


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
