"""Prices for the ledger: a deployment's own override, else the packaged catalogue at the call's time.

A deployment's ``price:`` wins (flat per-token figures, or GPU-hour ÷ measured throughput for self-hosted tiers);
the in-process local tier costs nothing unless given a price; everything else is looked up in the catalogue by the
model name sent upstream. An unknown price is ``None`` (reported as unpriced), never a silent zero.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.config.settings import DeploymentConfig, PriceOverride
from tokenomy.pricing.catalogue import Catalogue
from tokenomy.pricing.cost import TokenUsage, cost_usd, normalise_usage
from tokenomy.pricing.price import Price

MTOK = Decimal(1_000_000)
_SECONDS_PER_HOUR = Decimal(3600)


def override_cost(price: PriceOverride, tokens: TokenUsage) -> Decimal | None:
    if price.gpu_hour_usd is not None and price.tokens_per_s:
        per_token = price.gpu_hour_usd / _SECONDS_PER_HOUR / price.tokens_per_s
        return per_token * (tokens.prompt_tokens + tokens.output_tokens)
    if price.input_usd_per_mtok is None or price.output_usd_per_mtok is None:
        return None
    cached = price.cached_input_usd_per_mtok if price.cached_input_usd_per_mtok is not None \
        else price.input_usd_per_mtok
    uncached = tokens.input_tokens + tokens.cache_write_tokens
    return (uncached * price.input_usd_per_mtok + tokens.cached_read_tokens * cached
            + tokens.output_tokens * price.output_usd_per_mtok) / MTOK


class CataloguePricer:
    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        # Prices are chosen by UTC date, so (model, date) → price is exact; the lookup is on every request's path.
        self._found: dict[tuple[str, date], Price | None] = {}

    @classmethod
    def load(cls, override: Path | None = None) -> CataloguePricer:
        return cls(Catalogue.load(override))

    def deployment_cost(self, deployment: DeploymentConfig, tokens: TokenUsage, at: datetime, *,
                        batch: bool = False) -> Decimal | None:
        """``batch``: the call ran in the provider's batch API, at its batch rates (an override has none)."""
        if deployment.price is not None:
            return override_cost(deployment.price, tokens)
        if deployment.provider == "local":
            return Decimal(0)
        return self.model_cost(deployment.sent_model, tokens, at, batch=batch)

    def model_cost(self, model: str, tokens: TokenUsage, at: datetime, *, batch: bool = False) -> Decimal | None:
        key = (model, (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).date())
        if key not in self._found:
            if len(self._found) > 10_000:
                self._found.clear()
            self._found[key] = self._catalogue.find(model, at)
        price = self._found[key]
        return None if price is None else cost_usd(price, tokens, batch=batch)

    def tokens(self, provider_kind: str, usage: dict[str, Any]) -> TokenUsage:
        return normalise_usage(provider_kind, usage)
