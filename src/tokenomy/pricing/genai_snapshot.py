"""The installed genai-prices package as a catalogue snapshot document (``tokenomy prices update``, and the packaged
``genai_prices.json``). Reads ``genai_prices.data.providers``; imports genai-prices only when called.

Per model (catalogue key ``provider/model``): the match rule as JSON clauses (``matching``), and dated rows:

- genai-prices' conditional prices are dated by their ``start_date``; the first one has none in the source and
  applies to every earlier call, so its row is dated ``EPOCH`` (1970-01-01). A time-of-day price (DeepSeek's
  peak/off-peak) cannot be a dated row: the price of the longer part of the UTC day is used, and the row says so.
- ``input_mtok`` → ``input``, ``output_mtok`` → ``output`` (0 when the source has none: embeddings),
  ``cache_read_mtok`` → ``cached_input``, ``cache_write_mtok`` → ``cache_write_5m``, ``cache_write_1h_mtok`` →
  ``cache_write_1h``; the ``{"processing": "batch"}`` price variant → ``batch_input``/``batch_output`` from its own
  start date (a new row on that date); a tiered price → a long-context tier at the first tier's threshold.
- a model with no per-token input price (priced per second, image, request) is skipped; an optional figure that
  breaks the catalogue's rules (a cache write below input, batch above standard) is dropped and the row says so.

Every row is ``verified: false`` with a ``source`` naming genai-prices' version and the provider's pricing page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from tokenomy.pricing.price import PriceError, parse_model, plain

EPOCH = date(1970, 1, 1)
SOURCE_PACKAGE = "genai-prices"
_RATES = {"input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cached_input",
          "cache_write_mtok": "cache_write_5m", "cache_write_1h_mtok": "cache_write_1h"}
_BATCH = {"input_mtok": "batch_input", "output_mtok": "batch_output"}
_OPTIONAL = ("batch_input", "batch_output", "cache_write_1h", "cache_write_5m", "cached_input", "long_context")


@dataclass
class SnapshotBuild:
    document: dict[str, Any]
    version: str
    skipped: list[str] = field(default_factory=list)  # one line each: model and why
    repaired: list[str] = field(default_factory=list)


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(SOURCE_PACKAGE)
    except PackageNotFoundError:
        return None


def build_snapshot(generated: date) -> SnapshotBuild:
    """The installed genai-prices as one catalogue document (``providers`` + ``models``)."""
    from genai_prices.data import providers

    ver = installed_version() or "unknown"
    build = SnapshotBuild({}, ver)
    out_providers, out_models = [], []
    for provider in providers:
        out_providers.append({"id": provider.id, "name": provider.name,
                              "model_match": clause_json(provider.model_match),
                              "provider_match": clause_json(provider.provider_match),
                              "fallback": list(provider.fallback_model_providers or [])})
        url = (provider.pricing_urls or [""])[0]
        for model in provider.models:
            entry = _model_entry(provider.id, model, f"{SOURCE_PACKAGE} {ver} (MIT) from {url}".strip(), build)
            if entry is not None:
                out_models.append(entry)
    source = {"package": SOURCE_PACKAGE, "version": ver, "license": "MIT",
              "url": "https://github.com/pydantic/genai-prices", "generated": generated.isoformat()}
    build.document = {"_source": source, "providers": out_providers, "models": out_models}
    return build


def clause_json(clause: Any) -> Any:
    """A genai-prices match clause (``ClauseEquals``, ``ClauseOr``, …) as ``{"equals": ...}``-style JSON."""
    if clause is None:
        return None
    for attr, key in (("or_", "or"), ("and_", "and")):
        if hasattr(clause, attr):
            return {key: [clause_json(c) for c in getattr(clause, attr)]}
    for key in ("equals", "starts_with", "ends_with", "contains", "regex"):
        if hasattr(clause, key):
            return {key: getattr(clause, key)}
    raise PriceError(f"genai-prices: unknown match clause {clause!r}")


def _model_entry(provider: str, model: Any, source: str, build: SnapshotBuild) -> dict[str, Any] | None:
    key = f"{provider}/{model.id}"
    standard, note = _standard_prices(model)
    if not standard or not all(_flat(p.get("input_mtok")) is not None for _, p in standard):
        build.skipped.append(f"{key}: no per-token input price")
        return None
    batches = _batch_prices(model)
    dates = sorted({d for d, _ in standard} | {d for d, _ in batches})
    rows = [_row(d, _active(standard, d), _active(batches, d), f"{source}{note}") for d in dates]
    entry = {"model": key, "provider": provider, "match": clause_json(model.match), "prices": rows}
    return _validated(entry, build)


def _standard_prices(model: Any) -> tuple[list[tuple[date, dict[str, Any]]], str]:
    conditionals = model.prices if isinstance(model.prices, list) else None
    if conditionals is None:
        return [(EPOCH, _prices(model.prices))], ""
    rows: list[tuple[date, dict[str, Any]]] = []
    note = ""
    for conditional in conditionals:
        constraint = conditional.constraint
        if constraint is not None and hasattr(constraint, "start_time"):  # time of day
            if rows and _hours(constraint.start_time, constraint.end_time) >= 12:
                rows[-1] = (rows[-1][0], _prices(conditional.prices))
            note = (f"; time-of-day prices not modelled: the price of the longer part of the UTC day is used "
                    f"({constraint.start_time:%H:%M}-{constraint.end_time:%H:%M} UTC in the source)")
            continue
        start = getattr(constraint, "start_date", None) if constraint is not None else None
        if start is None and rows:  # always in force, and later entries win: it replaces what came before
            rows = []
        rows.append((start if rows and start is not None else EPOCH, _prices(conditional.prices)))
    return rows, note


def _batch_prices(model: Any) -> list[tuple[date, dict[str, Any]]]:
    out = []
    for variant in model.price_variants or ():
        if dict(variant.when) == {"processing": "batch"}:
            start = getattr(variant.constraint, "start_date", None) if variant.constraint is not None else None
            out.append((start or EPOCH, _prices(variant.prices)))
    return sorted(out, key=lambda item: item[0])


def _active(rows: list[tuple[date, dict[str, Any]]], when: date) -> dict[str, Any] | None:
    found = [prices for start, prices in rows if start <= when]
    return found[-1] if found else None


def _prices(model_price: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(model_price).items() if v is not None and not k.startswith("_")}


def _row(when: date, standard: dict[str, Any] | None, batch: dict[str, Any] | None, source: str) -> dict[str, Any]:
    assert standard is not None  # the first standard row is dated EPOCH, so one is always in force
    row: dict[str, Any] = {"effective_from": when.isoformat()}
    tier: dict[str, Any] = {}
    for theirs, ours in _RATES.items():
        value = standard.get(theirs)
        if value is not None:
            row[ours] = plain(_flat(value) or Decimal(0))
            tier[ours] = plain(_tier_price(value) or _flat(value) or Decimal(0))
    row.setdefault("output", "0")
    thresholds = [_threshold(v) for v in standard.values() if _threshold(v) is not None]
    for theirs, ours in _BATCH.items():
        if batch is not None and batch.get(theirs) is not None:
            row[ours] = plain(_flat(batch[theirs]) or Decimal(0))
            tier[ours] = plain(_tier_price(batch[theirs]) or _flat(batch[theirs]) or Decimal(0))
    if thresholds:
        tier["output"] = tier.get("output", "0")
        row["long_context"] = {"threshold_tokens": min(t for t in thresholds if t is not None), **tier}
        if any(len(v.tiers) > 1 for v in standard.values() if hasattr(v, "tiers")):
            source += "; tiers above the first not modelled"
    row.update(source=source, verified=False)
    return row


def _flat(value: Any) -> Decimal | None:
    if value is None:
        return None
    return _tidy(Decimal(value.base) if hasattr(value, "base") else Decimal(value))


def _tier_price(value: Any) -> Decimal | None:
    tiers = getattr(value, "tiers", None)
    return _tidy(Decimal(tiers[0].price)) if tiers else None


def _tidy(price: Decimal) -> Decimal:
    """A price as published: a few of genai-prices' figures carry a float's artefact (``0.18000000000000002``,
    ``1.0399999999999998`` per 1M tokens); rounded to 12 decimal places they are the figures meant. No real price
    per million tokens has more decimals than that."""
    exponent = price.as_tuple().exponent
    return price.quantize(Decimal("1e-12")).normalize() if isinstance(exponent, int) and exponent < -12 else price


def _threshold(value: Any) -> int | None:
    tiers = getattr(value, "tiers", None)
    return int(tiers[0].start) if tiers else None


def _hours(start: time, end: time) -> float:
    day = date(2000, 1, 1)
    span = (datetime.combine(day, end) - datetime.combine(day, start)).total_seconds() / 3600
    return span if span > 0 else span + 24


def _validated(entry: dict[str, Any], build: SnapshotBuild) -> dict[str, Any] | None:
    """``entry`` once the catalogue accepts it, dropping optional figures that break its rules (noted per row)."""
    for _ in range(len(_OPTIONAL) * 2 + 2):
        try:
            parse_model(entry, SOURCE_PACKAGE)
            return entry
        except PriceError as exc:
            dropped = _drop(entry, exc)
            if dropped is None:
                build.skipped.append(f"{entry['model']}: {exc.message}")
                return None
            build.repaired.append(f"{entry['model']}: dropped '{dropped}' ({exc.message})")
    build.skipped.append(f"{entry['model']}: could not be repaired")
    return None


def _drop(entry: dict[str, Any], exc: PriceError) -> str | None:
    """Drop the optional figure ``exc`` names from every row and tier (the whole tier when its input or output is
    wrong); None when the error is not about an optional figure."""
    name = exc.field or ""
    figure = name.removeprefix("long_context.")
    if figure not in _OPTIONAL and not name.startswith("long_context."):
        return None
    whole_tier = name.startswith("long_context.") and figure not in _OPTIONAL
    target = "long_context" if whole_tier else figure
    for row in entry["prices"]:
        places = [row] if whole_tier else [row, row.get("long_context") or {}]
        for place in places:
            place.pop(target, None)
        row["source"] += f"; {target} dropped (breaks the catalogue's order of rates)"
    return target


def snapshot_lines(document: dict[str, Any]) -> Iterable[str]:
    """The document as JSON with one provider or model per line, so that a price change is a one-line diff."""
    import json

    yield "{"
    yield f' "_source": {json.dumps(document["_source"])},'
    for key in ("providers", "models"):
        items = document[key]
        yield f' "{key}": ['
        for i, item in enumerate(items):
            yield "  " + json.dumps(item, ensure_ascii=False) + ("," if i < len(items) - 1 else "")
        yield " ]" + ("," if key == "providers" else "")
    yield "}"
