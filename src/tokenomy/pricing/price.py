"""A price row and its validation: Decimal USD per million tokens, dated, for one model. Pure.

A catalogue document is ``{"models": [entry, ...]}`` (a snapshot adds ``providers`` and ``_source``); an entry is
``{"model", "provider", "aliases", "dated_snapshots", "prices": [row, ...]}`` (a snapshot's adds ``match``, read by
``matching``); a row is ``{"effective_from": "YYYY-MM-DD", "input", "output",
"cached_input", "cache_write_5m", "cache_write_1h", "batch_input", "batch_output", "long_context", "source",
"verified"}`` with prices as decimal strings, and ``long_context`` the same rates plus ``threshold_tokens``.

Omitted rates default to what a provider without them charges: cache reads and writes at ``input``, 1-hour writes
at the 5-minute rate, batch at the standard rates. Validation rejects, naming the origin, the model and the field:
unknown fields, prices that are not finite numbers ≥ 0 (floats included: money is never binary floating point),
``cached_input > input``, a cache write below ``input`` (or the 1-hour below the 5-minute), batch above standard,
a long-context tier cheaper than the standard rates, and two rows with one ``effective_from``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenomy.errors import ConfigError

RATE_FIELDS = ("input", "output", "cached_input", "cache_write_5m", "cache_write_1h", "batch_input", "batch_output")
_ROW_KEYS = frozenset({*RATE_FIELDS, "effective_from", "long_context", "source", "verified"})
_TIER_KEYS = frozenset({*RATE_FIELDS, "threshold_tokens"})
_MODEL_KEYS = frozenset({"model", "provider", "aliases", "dated_snapshots", "prices", "match"})
_ORDER = (("cached_input", "exceeds", "input"), ("cache_write_5m", "is below", "input"),
          ("cache_write_1h", "is below", "cache_write_5m"), ("batch_input", "exceeds", "input"),
          ("batch_output", "exceeds", "output"))


class PriceError(ConfigError):
    """A price document or row is invalid, or no price is known; ``model`` and ``field`` say where."""

    code = "price_error"

    def __init__(self, message: str, *, model: str | None = None, field: str | None = None) -> None:
        super().__init__(message, param=field)
        self.model = model
        self.field = field


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens. ``cached_input`` is a cache read; writes are Anthropic's 5-minute and 1-hour TTLs."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    batch_input: Decimal
    batch_output: Decimal


@dataclass(frozen=True, slots=True)
class LongContextTier(Rates):
    """The rates for every token of a call whose prompt (cached and written tokens included) exceeds the threshold."""

    threshold_tokens: int


@dataclass(frozen=True, slots=True)
class Price(Rates):
    """One dated row: the rates of ``model`` from ``effective_from`` until the model's next row."""

    model: str
    provider: str
    effective_from: date
    long_context: LongContextTier | None = None
    source: str = ""
    verified: bool = False

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The long-context tier when the prompt is over its threshold, else the standard rates."""
        tier = self.long_context
        return tier if tier is not None and prompt_tokens > tier.threshold_tokens else self


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    provider: str
    aliases: tuple[str, ...]
    dated_snapshots: bool  # `<name>-2024-08-06`, `<name>-20250929`, `<name>@20250929`, `<name>-001` fall back here
    rows: tuple[Price, ...]  # oldest first, one per effective_from


def parse_document(document: Any, origin: str) -> list[ModelEntry]:
    """Every entry of a document, validated; within one document a name or alias may name only one model."""
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, list):
        raise PriceError(f"{origin}: expected a JSON object with a 'models' list")
    unknown = sorted(k for k in document if k not in ("models", "providers") and not str(k).startswith("_"))
    if unknown:
        raise PriceError(f"{origin}: unknown top-level field '{unknown[0]}'", field=str(unknown[0]))
    entries = [parse_model(raw, origin) for raw in models]
    owner: dict[str, str] = {}
    for entry in entries:
        for name in (entry.name, *entry.aliases):
            other = owner.setdefault(name.lower(), entry.name)
            if other != entry.name:
                raise PriceError(f"{origin}: model '{entry.name}': name '{name}' is already used by model '{other}'",
                                 model=entry.name, field="model" if name == entry.name else "aliases")
    return entries


def parse_model(raw: Any, origin: str) -> ModelEntry:
    """One catalogue entry, validated; every error names the origin, the model and the field."""
    name = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise PriceError(f"{origin}: every entry needs a 'model' name, got {str(raw)[:80]}", field="model")
    where = f"{origin}: model '{name}'"
    _no_unknown_keys(raw, _MODEL_KEYS, where, name, "")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise PriceError(f"{where}: field 'aliases' must be a list of names", model=name, field="aliases")
    rows = raw.get("prices")
    if not isinstance(rows, list) or not rows:
        raise PriceError(f"{where}: field 'prices' must be a non-empty list", model=name, field="prices")
    provider = str(raw.get("provider") or "")
    snapshots = _flag(raw, "dated_snapshots", where, name)
    prices = sorted((_row(name, provider, row, where) for row in rows), key=lambda p: p.effective_from)
    for before, after in itertools.pairwise(prices):
        if before.effective_from == after.effective_from:
            raise PriceError(f"{where}: two rows share effective_from {after.effective_from}", model=name,
                             field="effective_from")
    return ModelEntry(name, provider, tuple(aliases), snapshots, tuple(prices))


def _row(name: str, provider: str, row: Any, where: str) -> Price:
    if not isinstance(row, dict):
        raise PriceError(f"{where}: each price row must be an object", model=name, field="prices")
    _no_unknown_keys(row, _ROW_KEYS, where, name, "")
    try:
        effective = date.fromisoformat(str(row.get("effective_from")))
    except ValueError as exc:
        raise PriceError(f"{where}: field 'effective_from' must be a YYYY-MM-DD date, got "
                         f"{row.get('effective_from')!r}", model=name, field="effective_from") from exc
    where = f"{where} from {effective}"
    rates = _rates(row, name, where, "")
    tier: LongContextTier | None = None
    if row.get("long_context") is not None:
        tier = _tier(row["long_context"], rates, name, where)
    return Price(**vars_of(rates), model=name, provider=provider, effective_from=effective, long_context=tier,
                 source=str(row.get("source") or ""), verified=_flag(row, "verified", where, name))


def _tier(raw: Any, standard: Rates, name: str, where: str) -> LongContextTier:
    if not isinstance(raw, dict):
        raise PriceError(f"{where}: field 'long_context' must be an object", model=name, field="long_context")
    _no_unknown_keys(raw, _TIER_KEYS, where, name, "long_context.")
    threshold = raw.get("threshold_tokens")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        raise PriceError(f"{where}: field 'long_context.threshold_tokens' must be a positive integer, got "
                         f"{threshold!r}", model=name, field="long_context.threshold_tokens")
    rates = _rates(raw, name, where, "long_context.")
    for key in ("input", "output"):
        if getattr(rates, key) < getattr(standard, key):
            raise PriceError(f"{where}: field 'long_context.{key}' ({getattr(rates, key)}) is below '{key}' "
                             f"({getattr(standard, key)})", model=name, field=f"long_context.{key}")
    return LongContextTier(**vars_of(rates), threshold_tokens=threshold)


def _rates(raw: dict[str, Any], name: str, where: str, prefix: str) -> Rates:
    given = {key: _money(raw[key], name, where, prefix + key) for key in RATE_FIELDS if raw.get(key) is not None}
    for key in ("input", "output"):
        if key not in given:
            raise PriceError(f"{where}: field '{prefix}{key}' is missing", model=name, field=prefix + key)
    given.setdefault("cached_input", given["input"])
    given.setdefault("cache_write_5m", given["input"])
    given.setdefault("cache_write_1h", given["cache_write_5m"])
    given.setdefault("batch_input", given["input"])
    given.setdefault("batch_output", given["output"])
    for field, verb, other in _ORDER:
        if (given[field] > given[other]) if verb == "exceeds" else (given[field] < given[other]):
            raise PriceError(f"{where}: field '{prefix}{field}' ({given[field]}) {verb} '{prefix}{other}' "
                             f"({given[other]})", model=name, field=prefix + field)
    return Rates(**given)


def _money(value: Any, name: str, where: str, field: str) -> Decimal:
    if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
        raise PriceError(f"{where}: field '{field}' must be a decimal string or integer, got {value!r}",
                         model=name, field=field)
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise PriceError(f"{where}: field '{field}' is not a number: {value!r}", model=name, field=field) from exc
    if not number.is_finite() or number < 0:
        raise PriceError(f"{where}: field '{field}' must be a finite number >= 0, got {value!r}", model=name,
                         field=field)
    return number


def _flag(raw: Mapping[str, Any], key: str, where: str, name: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise PriceError(f"{where}: field '{key}' must be true or false, got {value!r}", model=name, field=key)
    return value


def _no_unknown_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str, name: str, prefix: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise PriceError(f"{where}: unknown field '{prefix}{unknown[0]}'", model=name, field=prefix + unknown[0])


def vars_of(rates: Rates) -> dict[str, Decimal]:
    """The seven rates of a Rates (or Price, or tier) as a dict, in RATE_FIELDS order."""
    return {key: getattr(rates, key) for key in RATE_FIELDS}


def plain(number: Decimal) -> str:
    """A Decimal as a plain decimal string: no exponent, no float."""
    return format(number, "f")


def row_document(price: Price) -> dict[str, Any]:
    """One row in the document format, every rate explicit (the inverse of parsing, defaults resolved)."""
    out: dict[str, Any] = {"effective_from": price.effective_from.isoformat()}
    out.update({key: plain(value) for key, value in vars_of(price).items()})
    if price.long_context is not None:
        tier = price.long_context
        out["long_context"] = {"threshold_tokens": tier.threshold_tokens,
                               **{key: plain(value) for key, value in vars_of(tier).items()}}
    out.update(source=price.source, verified=price.verified)
    return out


def entry_document(entry: ModelEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"model": entry.name, "provider": entry.provider}
    if entry.aliases:
        out["aliases"] = list(entry.aliases)
    if entry.dated_snapshots:
        out["dated_snapshots"] = True
    out["prices"] = [row_document(row) for row in entry.rows]
    return out
