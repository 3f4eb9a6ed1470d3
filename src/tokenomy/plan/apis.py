"""API tiers priced from the catalogue: frontier, mid-tier, and their batch rates (where a batch API exists).

The planner reads the same catalogue as every other command (``Catalogue.load``: the genai-prices snapshot, our
rows, the user's override file), which also prices older models the seed quotes, such as GPT-4 Turbo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tokenomy.plan.workload import Workload
from tokenomy.pricing.catalogue import Catalogue
from tokenomy.pricing.price import Price

FRONTIER = ("gpt-4-turbo", "gpt-5", "gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-pro")
MID_TIER = ("gpt-4.1-mini", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "deepseek-chat",
            "llama-3.3-70b-versatile")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ApiOption:
    tier: str  # "frontier" | "mid" | "frontier batch" | "mid batch"
    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    usd_per_month: Decimal
    usd_per_mtok: Decimal  # blended over the workload's input:output mix
    source: str


def planner_catalogue(override: Path | None = None) -> Catalogue:
    """The catalogue every command reads, with the user's override file."""
    return Catalogue.load(override)


def monthly_usd(workload: Workload, input_rate: Decimal, output_rate: Decimal) -> Decimal:
    """USD per month at per-million-token rates: queries/month x (in x rate_in + out x rate_out) / 1M."""
    per_query = (workload.input_tokens * input_rate + workload.output_tokens * output_rate) / MILLION
    return workload.queries_per_month * per_query


def per_mtok(workload: Workload, usd_per_month: Decimal) -> Decimal:
    return usd_per_month / (Decimal(workload.tokens_per_month) / MILLION)


def _option(tier: str, price: Price, workload: Workload, batch: bool) -> ApiOption:
    rate_in, rate_out = (price.batch_input, price.batch_output) if batch else (price.input, price.output)
    usd = monthly_usd(workload, rate_in, rate_out)
    return ApiOption(tier, price.model, rate_in, rate_out, usd, per_mtok(workload, usd), price.source)


def api_options(catalogue: Catalogue, workload: Workload, at: datetime) -> list[ApiOption]:
    """Every listed model the catalogue prices at ``at``; batch rows only where batch is cheaper than standard."""
    out: list[ApiOption] = []
    for tier, models in (("frontier", FRONTIER), ("mid", MID_TIER)):
        prices = [p for p in (catalogue.find(m, at) for m in models) if p is not None]
        out += [_option(tier, p, workload, batch=False) for p in prices]
        out += [_option(f"{tier} batch", p, workload, batch=True) for p in prices
                if p.batch_input < p.input or p.batch_output < p.output]
    return out
