"""The price catalogue: dated per-token prices (Decimal USD per million tokens) for the models tokenomy knows.

The packaged ``prices.json`` is read first, then the user's override file (``prices.json`` in the data dir, written
by ``tokenomy prices import``), whose rows replace packaged ones of the same model. Every row is validated on load
(prices ≥ 0; cached read ≤ input ≤ cache write; batch ≤ standard) and an invalid one is an error naming the model
and the field. A request is priced at the row in force when it ran.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tokenomy.errors import ConfigError

PACKAGED = Path(__file__).parent / "prices.json"
_DATED = re.compile(r"^(?P<family>.+?)(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8})$")
_PRICE_FIELDS = ("input", "cached_input", "cache_write_5m", "cache_write_1h", "output", "batch_input", "batch_output")


class PriceError(ConfigError):
    """A price row is malformed or inconsistent; the message names the model and the field."""

    code = "price_error"


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-million-token prices. Optional rates fall back to ``input`` (cache rates) when a model has none."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Price:
    model: str
    provider: str
    effective_from: date
    standard: Rates
    batch_input: Decimal | None = None
    batch_output: Decimal | None = None
    long_context: Rates | None = None
    long_context_threshold: int | None = None
    verified: bool = False
    source: str = ""

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The long-context rates when the prompt is over the threshold, else the standard ones."""
        if self.long_context is not None and self.long_context_threshold is not None \
                and prompt_tokens > self.long_context_threshold:
            return self.long_context
        return self.standard


@dataclass
class Catalogue:
    rows: dict[str, list[Price]] = field(default_factory=dict)  # canonical model -> rows, oldest first
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, override: Path | None = None) -> Catalogue:
        catalogue = cls()
        catalogue.merge(_read(PACKAGED), origin=str(PACKAGED))
        if override is not None and override.exists():
            catalogue.merge(_read(override), origin=str(override))
        return catalogue

    def merge(self, data: dict[str, Any], *, origin: str) -> None:
        models = data.get("models")
        if not isinstance(models, list):
            raise PriceError(f"{origin}: expected a 'models' list")
        for i, entry in enumerate(models):
            prices = parse_model(entry, where=f"{origin}: models[{i}]")
            name = prices[0].model
            self.rows[name] = prices
            self.aliases[name.lower()] = name
            for alias in entry.get("aliases") or ():
                self.aliases[str(alias).lower()] = name

    def canonical(self, model: str) -> str | None:
        """The catalogue name for ``model``: exact, alias, without a ``provider/`` prefix, or its dated family."""
        for candidate in _candidates(model):
            found = self.aliases.get(candidate.lower())
            if found is not None:
                return found
        return None

    def find(self, model: str, at: datetime, provider: str | None = None) -> Price | None:
        """The price of ``model`` in force at ``at``; None when unknown or not yet in force."""
        name = self.canonical(model)
        if name is None:
            return None
        when = at.astimezone(UTC).date()
        in_force = [p for p in self.rows[name] if p.effective_from <= when]
        return in_force[-1] if in_force else None

    def models(self) -> list[Price]:
        """The newest row of every model."""
        return [rows[-1] for rows in self.rows.values()]


def _candidates(model: str) -> list[str]:
    out = [model]
    if "/" in model:
        out.append(model.split("/", 1)[1])
    for name in list(out):
        dated = _DATED.match(name)
        if dated:
            out.append(dated["family"])
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceError(f"cannot read prices from {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PriceError(f"{path}: expected a JSON object")
    return data


def _decimal(value: Any, where: str, key: str) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PriceError(f"{where}: field '{key}' is not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise PriceError(f"{where}: field '{key}' must be a finite number >= 0, got {value!r}")
    return number


def _rates(raw: dict[str, Any], where: str) -> Rates:
    values = {k: _decimal(raw.get(k), where, k) for k in ("input", "output", "cached_input", "cache_write_5m",
                                                           "cache_write_1h")}
    for required in ("input", "output"):
        if values[required] is None:
            raise PriceError(f"{where}: field '{required}' is missing")
    rates = Rates(**values)  # type: ignore[arg-type]
    _check_order(rates, where)
    return rates


def _check_order(rates: Rates, where: str) -> None:
    if rates.cached_input is not None and rates.cached_input > rates.input:
        raise PriceError(f"{where}: field 'cached_input' ({rates.cached_input}) exceeds 'input' ({rates.input})")
    for key in ("cache_write_5m", "cache_write_1h"):
        value = getattr(rates, key)
        if value is not None and value < rates.input:
            raise PriceError(f"{where}: field '{key}' ({value}) is below 'input' ({rates.input})")


def parse_model(entry: Any, *, where: str) -> list[Price]:
    """Validate one catalogue entry into its dated Price rows (oldest first)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str) or not entry["model"]:
        raise PriceError(f"{where}: needs a 'model' name")
    model = entry["model"]
    where = f"{where} ({model})"
    rows = entry.get("prices")
    if not isinstance(rows, list) or not rows:
        raise PriceError(f"{where}: needs a non-empty 'prices' list")
    prices = [_price(model, entry, row, f"{where} prices[{j}]") for j, row in enumerate(rows)]
    prices.sort(key=lambda p: p.effective_from)
    return prices


def _price(model: str, entry: dict[str, Any], row: Any, where: str) -> Price:
    if not isinstance(row, dict):
        raise PriceError(f"{where}: expected an object")
    unknown = set(row) - {*_PRICE_FIELDS, "effective_from", "long_context"}
    if unknown:
        raise PriceError(f"{where}: unknown field '{sorted(unknown)[0]}'")
    try:
        effective = date.fromisoformat(str(row.get("effective_from")))
    except ValueError as exc:
        raise PriceError(f"{where}: field 'effective_from' must be a date, got {row.get('effective_from')!r}") from exc
    standard = _rates(row, where)
    batch_in, batch_out = _decimal(row.get("batch_input"), where, "batch_input"), \
        _decimal(row.get("batch_output"), where, "batch_output")
    if batch_in is not None and batch_in > standard.input:
        raise PriceError(f"{where}: field 'batch_input' ({batch_in}) exceeds 'input' ({standard.input})")
    if batch_out is not None and batch_out > standard.output:
        raise PriceError(f"{where}: field 'batch_output' ({batch_out}) exceeds 'output' ({standard.output})")
    long_raw = row.get("long_context")
    long_rates = threshold = None
    if isinstance(long_raw, dict):
        long_rates = _rates(long_raw, f"{where} long_context")
        threshold = int(long_raw.get("threshold_tokens") or 0) or None
        if threshold is None:
            raise PriceError(f"{where} long_context: field 'threshold_tokens' is missing")
    return Price(model=model, provider=str(entry.get("provider") or ""), effective_from=effective, standard=standard,
                 batch_input=batch_in, batch_output=batch_out, long_context=long_rates,
                 long_context_threshold=threshold, verified=bool(entry.get("verified")),
                 source=str(entry.get("source") or ""))


def price_fields(rates: Rates) -> dict[str, str | None]:
    return {f.name: None if getattr(rates, f.name) is None else str(getattr(rates, f.name)) for f in fields(rates)}
