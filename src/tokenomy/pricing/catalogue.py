"""The price catalogue: every model's dated price rows, looked up by name at a point in time. Pure: reads JSON.

``Catalogue.load(override)`` reads the packaged ``prices.json``, then ``override`` when that file exists (by
convention ``<data dir>/prices.json``, ``OVERRIDE_FILENAME``, written by ``tokenomy prices import``; the caller
passes the path because pricing reads no environment). Documents merge model by model: an entry whose name or an
alias names a known model adds its dated rows to that model's, winning on the same ``effective_from``; any other
entry is a new model. A call is priced at the row in force on its UTC date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.pricing.price import LongContextTier, ModelEntry, Price, PriceError, Rates, parse_document

__all__ = ["OVERRIDE_FILENAME", "PACKAGED", "Catalogue", "LongContextTier", "ModelEntry", "Price", "PriceError",
           "Rates", "UnknownPriceError", "read_document"]

PACKAGED = Path(__file__).with_name("prices.json")
OVERRIDE_FILENAME = "prices.json"
_SNAPSHOT = re.compile(r"^(?P<family>.+?)(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{3})$")


class UnknownPriceError(PriceError):
    """No catalogue row prices this model at this time."""

    code = "price_not_found"


class Catalogue:
    """Model entries indexed by lower-cased name and alias."""

    def __init__(self, entries: Iterable[ModelEntry] = ()) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._index: dict[str, str] = {}
        for entry in entries:
            self._add(entry)

    @classmethod
    def load(cls, override: Path | None = None) -> Catalogue:
        """The packaged catalogue, merged with ``override`` when that file exists."""
        documents = [(read_document(PACKAGED), str(PACKAGED))]
        if override is not None and override.is_file():
            documents.append((read_document(override), str(override)))
        return cls.from_documents(documents)

    @classmethod
    def from_documents(cls, documents: Iterable[tuple[Any, str]]) -> Catalogue:
        """Documents as ``(parsed JSON, origin)``, later ones merged over earlier ones."""
        catalogue = cls()
        for document, origin in documents:
            for entry in parse_document(document, origin):
                catalogue.merge(entry)
        return catalogue

    def merge(self, entry: ModelEntry) -> None:
        """Add ``entry``, or fold it into the model that its name or an alias names, or whose dated snapshot its
        name is (when that model accepts snapshots): the entry's rows win on the same ``effective_from``."""
        key = next((self._index[n.lower()] for n in (entry.name, *entry.aliases) if n.lower() in self._index), None)
        dated = _SNAPSHOT.match(entry.name) if key is None else None
        family = self._index.get(dated["family"].lower()) if dated else None
        if family is not None and self._entries[family].dated_snapshots:
            key = family
        if key is None:
            self._add(entry)
            return
        old = self._entries[key]
        provider = entry.provider or old.provider
        rows = {row.effective_from: row for row in old.rows}
        rows.update({row.effective_from: replace(row, model=old.name, provider=provider) for row in entry.rows})
        aliases = tuple(dict.fromkeys(a for a in (*old.aliases, entry.name, *entry.aliases) if a != old.name))
        self._add(ModelEntry(old.name, provider, aliases, old.dated_snapshots or entry.dated_snapshots,
                             tuple(rows[d] for d in sorted(rows))), replacing=key)

    def _add(self, entry: ModelEntry, replacing: str | None = None) -> None:
        for name in (entry.name, *entry.aliases):
            taken = self._index.get(name.lower())
            if taken is not None and taken != replacing:
                raise PriceError(f"model '{entry.name}': name '{name}' is already used by model "
                                 f"'{self._entries[taken].name}'", model=entry.name, field="aliases")
        key = entry.name.lower()
        self._entries[key] = entry
        for name in (entry.name, *entry.aliases):
            self._index[name.lower()] = key

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def resolve(self, model: str) -> ModelEntry | None:
        """The entry for ``model``: its name or an alias (any case), after stripping ``provider/`` prefixes, or
        the family of a dated snapshot when that family's data accepts snapshots."""
        for candidate in _candidates(model):
            key = self._index.get(candidate.lower())
            if key is not None:
                return self._entries[key]
            dated = _SNAPSHOT.match(candidate)
            family = self._index.get(dated["family"].lower()) if dated else None
            if family is not None and self._entries[family].dated_snapshots:
                return self._entries[family]
        return None

    def find(self, model: str, at: datetime) -> Price | None:
        """The row of ``model`` in force at ``at`` (a naive datetime is taken as UTC); None when there is none."""
        entry = self.resolve(model)
        when = _utc_date(at)
        in_force = [row for row in entry.rows if row.effective_from <= when] if entry else []
        return in_force[-1] if in_force else None

    def price_for(self, model: str, at: datetime) -> Price:
        """Like ``find``, but an unknown model or a time before its first row is an ``UnknownPriceError``."""
        price = self.find(model, at)
        if price is not None:
            return price
        entry = self.resolve(model)
        if entry is None:
            raise UnknownPriceError(f"no price for model '{model}'; `tokenomy prices` lists the known models",
                                    model=model)
        raise UnknownPriceError(f"no price for model '{model}' on {_utc_date(at)}: its first price is from "
                                f"{entry.rows[0].effective_from}", model=model, field="effective_from")

    def in_force(self, at: datetime) -> list[Price]:
        """Every model's row in force at ``at``, by provider then model."""
        found = (self.find(entry.name, at) for entry in self._entries.values())
        return sorted((p for p in found if p is not None), key=lambda p: (p.provider, p.model))


def _candidates(model: str) -> list[str]:
    out = [model.strip()]
    while "/" in out[-1]:
        out.append(out[-1].split("/", 1)[1])
    return out


def _utc_date(at: datetime) -> date:
    return at.date() if at.tzinfo is None else at.astimezone(UTC).date()


def read_document(path: Path) -> Any:
    """A price file as JSON, numbers read as Decimal (never float)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as exc:
        raise PriceError(f"cannot read prices from {path}: {exc}") from exc


