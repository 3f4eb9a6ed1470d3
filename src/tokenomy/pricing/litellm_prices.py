"""LiteLLM's ``model_prices_and_context_window.json`` as catalogue entries. Pure: takes the parsed JSON.

Per-token USD figures become per-million rates: ``input_cost_per_token`` → ``input``, ``output_cost_per_token`` →
``output``, ``cache_read_input_token_cost`` → ``cached_input``, ``cache_creation_input_token_cost`` →
``cache_write_5m``, ``cache_creation_input_token_cost_above_1hr`` → ``cache_write_1h``,
``input/output_cost_per_token_batches`` → ``batch_input/output``, and the ``*_above_<N>k_tokens`` figures → a
long-context tier over N×1000 prompt tokens (the lowest N when there are several). Rows of other modes (embedding,
image, audio, moderation, rerank, …) and rows with no per-token input and output price are skipped. Every other row
goes through the catalogue's own validation, and one that fails is rejected with one line naming the model and the
field (the file has known errors, such as cache reads priced above input).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenomy.pricing.price import ModelEntry, PriceError, parse_model, plain

PER_MTOK = Decimal(1_000_000)
_RATES = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write_5m",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "input_cost_per_token_batches": "batch_input",
    "output_cost_per_token_batches": "batch_output",
}
_TIER = re.compile(r"^(?P<base>input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
                   r"cache_creation_input_token_cost)_above_(?P<k>\d+)k_tokens$")
_CHAT_MODES = {None, "chat", "completion", "responses"}
_PROVIDERS = {"together_ai": "together", "fireworks_ai": "fireworks", "gemini": "google"}  # LiteLLM -> our kinds


@dataclass
class LiteLLMImport:
    entries: list[ModelEntry] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one line each, naming the model and the field
    skipped: int = 0


def convert(data: Any, *, effective_from: date, origin: str,
            providers: Iterable[str] | None = None) -> LiteLLMImport:
    """Validated entries, one dated row each, for the chat models in ``data`` (of ``providers`` when given,
    by ``litellm_provider``)."""
    if not isinstance(data, Mapping):
        raise PriceError(f"{origin}: a LiteLLM price file is a JSON object of model name -> prices")
    wanted = {p.lower() for p in providers} if providers is not None else None
    out = LiteLLMImport()
    for name, row in data.items():
        if name == "sample_spec" or not isinstance(row, Mapping) or row.get("mode") not in _CHAT_MODES:
            out.skipped += 1
            continue
        provider = str(row.get("litellm_provider") or "")
        if wanted is not None and provider.lower() not in wanted:
            out.skipped += 1
            continue
        if "input_cost_per_token" not in row and "output_cost_per_token" not in row:
            out.skipped += 1  # priced per second, per image, per query: not by token
            continue
        try:
            out.entries.append(parse_model(_entry(str(name), provider, row, effective_from, origin), origin))
        except PriceError as exc:
            litellm_field = _litellm_name(exc.field)
            out.rejected.append(exc.message + (f" (LiteLLM field '{litellm_field}')" if litellm_field else ""))
    return out


def _entry(name: str, provider: str, row: Mapping[str, Any], effective_from: date, origin: str) -> dict[str, Any]:
    prefix, _, rest = name.partition("/")
    if rest and prefix in _PROVIDERS:
        name = f"{_PROVIDERS[prefix]}/{rest}"
    price: dict[str, Any] = {"effective_from": effective_from.isoformat()}
    price.update({ours: _per_mtok(name, key, row[key], origin) for key, ours in _RATES.items()
                  if row.get(key) is not None})
    tiers: dict[int, dict[str, Any]] = {}
    for key, value in row.items():
        match = _TIER.match(key)
        if match and value is not None:
            tiers.setdefault(int(match["k"]) * 1000, {})[_RATES[match["base"]]] = _per_mtok(name, key, value, origin)
    if tiers:
        threshold = min(tiers)
        price["long_context"] = {"threshold_tokens": threshold, **tiers[threshold]}
    price.update(source=f"imported from LiteLLM's price file {origin} on {effective_from}", verified=False)
    return {"model": name, "provider": _PROVIDERS.get(provider, provider), "prices": [price]}


def _per_mtok(name: str, key: str, value: Any, origin: str) -> str:
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else Decimal("NaN")
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise PriceError(f"{origin}: model '{name}': field '{key}' is not a number: {value!r}", model=name,
                         field=key)
    return plain((number * PER_MTOK).normalize())


def _litellm_name(ours: str | None) -> str | None:
    """The LiteLLM key a catalogue field came from (None when the field is LiteLLM's own or unknown)."""
    if ours is None or ours in _RATES:
        return None
    tier = ours.startswith("long_context.")
    base = ours.removeprefix("long_context.")
    key = next((k for k, v in _RATES.items() if v == base), None)
    return f"{key}_above_<N>k_tokens" if tier and key else key
