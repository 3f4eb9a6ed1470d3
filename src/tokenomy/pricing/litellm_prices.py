"""Read LiteLLM's ``model_prices_and_context_window.json`` into catalogue entries, rejecting rows that fail
validation (that file has known errors) with one line each naming the model and the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenomy.pricing.catalogue import PriceError, parse_model

PER_MTOK = Decimal(1_000_000)
_FIELDS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write_5m",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "input_cost_per_token_batches": "batch_input",
    "output_cost_per_token_batches": "batch_output",
}
_SKIP_MODES = {"embedding", "image_generation", "audio_transcription", "audio_speech", "moderation", "rerank"}


@dataclass
class Imported:
    entries: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped: int = 0


def convert(data: Any, *, effective_from: date) -> Imported:
    """Catalogue entries (``{"model", "provider", "prices": [...]}``) for every chat model in the file."""
    out = Imported()
    if not isinstance(data, dict):
        raise PriceError("a LiteLLM price file must be a JSON object of model -> prices")
    for model, row in data.items():
        if model == "sample_spec" or not isinstance(row, dict):
            continue
        if row.get("mode") in _SKIP_MODES or "input_cost_per_token" not in row:
            out.skipped += 1
            continue
        try:
            entry = _entry(model, row, effective_from)
            parse_model(entry, where="litellm")  # the same validation as the packaged catalogue
        except PriceError as exc:
            out.rejected.append(exc.message)
            continue
        out.entries.append(entry)
    return out


def _entry(model: str, row: dict[str, Any], effective_from: date) -> dict[str, Any]:
    price: dict[str, Any] = {"effective_from": effective_from.isoformat()}
    for src, dst in _FIELDS.items():
        value = row.get(src)
        if value is None:
            continue
        try:
            price[dst] = str((Decimal(str(value)) * PER_MTOK).normalize())
        except InvalidOperation as exc:
            raise PriceError(f"litellm ({model}): field '{src}' is not a number: {value!r}") from exc
    if "output" not in price:
        price["output"] = "0"
    return {"model": model, "provider": str(row.get("litellm_provider") or ""), "aliases": [],
            "verified": False, "source": "imported from a LiteLLM price file", "prices": [price]}
