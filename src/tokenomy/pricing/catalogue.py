"""The price catalogue: every model's dated price rows, looked up by name at a point in time. Pure: reads JSON.

``Catalogue.load(override)`` reads three layers, each merged over the one before:

1. the genai-prices snapshot (``genai_prices.json``, generated from the genai-prices package: ~2,100 models of ~45
   providers, with their match rules), or the newer one ``tokenomy prices update`` wrote beside ``override``
   (``SNAPSHOT_FILENAME``);
2. our own ``prices.json``: what the snapshot lacks (the local tier) and rows checked on a provider's own page;
3. ``override`` when that file exists (by convention ``<data dir>/prices.json``, ``OVERRIDE_FILENAME``, written by
   ``tokenomy prices import``; the caller passes the path because pricing reads no environment).

Documents merge model by model: an entry whose name or an alias names a known model (or that the snapshot's match
rules resolve) adds its dated rows to that model's, winning on the same ``effective_from``; any other entry is a new
model. A call is priced at the row in force on its UTC date. Names resolve in ``resolve`` (below) and are memoised,
so the lookup on every request's path is one dictionary hit after the first.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.pricing.matching import Matcher
from tokenomy.pricing.price import LongContextTier, ModelEntry, Price, PriceError, Rates, parse_document

__all__ = ["OVERRIDE_FILENAME", "PACKAGED", "SNAPSHOT", "SNAPSHOT_FILENAME", "Catalogue", "LongContextTier",
           "ModelEntry", "Price", "PriceError", "Rates", "UnknownPriceError", "read_document"]

PACKAGED = Path(__file__).with_name("prices.json")
SNAPSHOT = Path(__file__).with_name("genai_prices.json")
OVERRIDE_FILENAME = "prices.json"
SNAPSHOT_FILENAME = "genai-prices.json"
MEMO_SIZE = 10_000
_SNAPSHOT = re.compile(r"^(?P<family>.+?)(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{3})$")


class UnknownPriceError(PriceError):
    """No catalogue row prices this model at this time."""

    code = "price_not_found"


class Catalogue:
    """Model entries indexed by lower-cased name and alias, and the snapshot's match rules."""

    def __init__(self, entries: Iterable[ModelEntry] = (), matcher: Matcher | None = None) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._index: dict[str, str] = {}
        self._matcher = matcher
        self._memo: dict[str, str | None] = {}
        self.sources: list[str] = []  # what was loaded, e.g. "genai-prices 0.2.5 (packaged snapshot)"
        for entry in entries:
            self._add(entry)

    @classmethod
    def load(cls, override: Path | None = None) -> Catalogue:
        """The snapshot (the newer of the packaged one and ``<override's folder>/SNAPSHOT_FILENAME``), our
        ``prices.json``, then ``override`` when that file exists. The snapshot is parsed once per process."""
        snapshot = newest_snapshot(override.with_name(SNAPSHOT_FILENAME) if override is not None else None)
        entries, matcher, label = _snapshot_parts(snapshot)
        catalogue = cls(entries, matcher)
        catalogue.sources.append(label)
        catalogue.merge_document(_read_cached(PACKAGED), str(PACKAGED))
        if override is not None and override.is_file():
            catalogue.merge_document(read_document(override), str(override))
        return catalogue

    @classmethod
    def from_documents(cls, documents: Iterable[tuple[Any, str]]) -> Catalogue:
        """Documents as ``(parsed JSON, origin)``, later ones merged over earlier ones; a document with a
        ``providers`` list is a snapshot, whose match rules resolve names."""
        catalogue = cls()
        for document, origin in documents:
            catalogue.merge_document(document, origin)
        return catalogue

    def merge_document(self, document: Any, origin: str) -> None:
        snapshot = isinstance(document, dict) and "providers" in document
        if snapshot:
            self._matcher = Matcher.from_document(document["providers"], document.get("models"), origin)
            self.sources.append(snapshot_label(document, origin))
        for entry in parse_document(document, origin):
            self.merge(entry, by_rules=not snapshot)

    def merge(self, entry: ModelEntry, *, by_rules: bool = True) -> None:
        """Add ``entry``, or fold it into the model that its name or an alias names, or whose dated snapshot its
        name is (when that model accepts snapshots), or (``by_rules``) that the snapshot's match rules resolve its
        name to within the provider it names (no shape guesses, no reseller fallback: an ``azure/…`` price stays
        Azure's): the entry's rows win on the same ``effective_from``."""
        key = next((self._index[n.lower()] for n in (entry.name, *entry.aliases) if n.lower() in self._index), None)
        dated = _SNAPSHOT.match(entry.name) if key is None else None
        family = self._index.get(dated["family"].lower()) if dated else None
        if family is not None and self._entries[family].dated_snapshots:
            key = family
        if key is None and by_rules and self._matcher is not None:
            found = self._matcher.owner(entry.name)
            key = found.lower() if found is not None and found.lower() in self._entries else None
        self._memo.clear()
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
        """The entry for ``model``, memoised: its exact name or alias (any case); else what the snapshot's match
        rules find (``matching.candidates``: provider prefixes as hints, OpenRouter, fine-tune and Bedrock ids);
        else, after stripping ``provider/`` prefixes, a name or alias, or the family of a dated snapshot when that
        family accepts snapshots."""
        key = self._memo.get(model, _MISSING)
        if key is _MISSING:
            key = self._lookup(model)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[model] = key
        return None if key is None else self._entries[str(key)]

    def _lookup(self, model: str) -> str | None:
        name = model.strip().lower()
        if name in self._index:
            return self._index[name]
        found = self._matcher.resolve(model) if self._matcher is not None else None
        if found is not None and found.lower() in self._entries:
            return found.lower()
        for candidate in _candidates(model):
            key = self._index.get(candidate.lower())
            if key is not None:
                return key
            dated = _SNAPSHOT.match(candidate)
            family = self._index.get(dated["family"].lower()) if dated else None
            if family is not None and self._entries[family].dated_snapshots:
                return family
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


_MISSING = object()


def _candidates(model: str) -> list[str]:
    out = [model.strip()]
    while "/" in out[-1]:
        out.append(out[-1].split("/", 1)[1])
    return out


def _utc_date(at: datetime) -> date:
    return at.date() if at.tzinfo is None else at.astimezone(UTC).date()


def _snapshot_parts(path: Path) -> tuple[tuple[ModelEntry, ...], Matcher, str]:
    stat = path.stat()
    return _parse_snapshot(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parse_snapshot(path: str, mtime_ns: int, size: int) -> tuple[tuple[ModelEntry, ...], Matcher, str]:
    """A snapshot's entries (immutable), match rules and label, parsed once per file version."""
    parsed = Catalogue.from_documents([(_read_cached(Path(path)), path)])
    assert parsed._matcher is not None  # a snapshot document always has its providers
    return tuple(parsed.entries()), parsed._matcher, parsed.sources[0]


def base_documents(written_snapshot: Path | None = None) -> list[tuple[Any, str]]:
    """The layers under an override file: the newest snapshot, then our ``prices.json``, as ``(document, origin)``."""
    snapshot = newest_snapshot(written_snapshot)
    return [(_read_cached(snapshot), str(snapshot)), (_read_cached(PACKAGED), str(PACKAGED))]


def newest_snapshot(written: Path | None) -> Path:
    """``written`` (by ``tokenomy prices update``) when it exists and its source version is newer than the packaged
    snapshot's, else the packaged one."""
    if written is None or not written.is_file():
        return SNAPSHOT
    mine, theirs = (source_version(_read_cached(p)) for p in (SNAPSHOT, written))
    return written if theirs > mine else SNAPSHOT


def snapshot_label(document: Any, origin: str) -> str:
    source = document.get("_source") if isinstance(document, dict) else None
    source = source if isinstance(source, dict) else {}
    where = "packaged" if Path(origin) == SNAPSHOT else origin
    return f"{source.get('package', 'snapshot')} {source.get('version', '?')} ({where})"


def source_version(document: Any) -> tuple[int, ...]:
    """A snapshot's source version as a comparable tuple (``0.2.5`` → ``(0, 2, 5)``)."""
    source = document.get("_source") if isinstance(document, dict) else None
    text = str(source.get("version", "0")) if isinstance(source, dict) else "0"
    return version_tuple(text)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.+-]", text))


def read_snapshot(path: Path) -> Any:
    """A snapshot file (the packaged one, or one ``prices update`` wrote), read once per process."""
    return _read_cached(path)


@functools.lru_cache(maxsize=8)
def _read_file(path: str, mtime_ns: int, size: int) -> Any:
    return read_document(Path(path))


def _read_cached(path: Path) -> Any:
    """A packaged or written file read once per process (and again when it changes); callers never mutate it."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise PriceError(f"cannot read prices from {path}: {exc.strerror or exc}") from exc
    return _read_file(str(path), stat.st_mtime_ns, stat.st_size)


def read_document(path: Path) -> Any:
    """A price file as JSON, numbers read as Decimal (never float)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as exc:
        raise PriceError(f"cannot read prices from {path}: {exc}") from exc


