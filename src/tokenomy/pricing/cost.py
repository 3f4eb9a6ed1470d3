"""Exact cost of a call: tokens × the rates in force, in Decimal USD."""

from __future__ import annotations

from decimal import Decimal

from tokenomy.pricing.catalogue import Price
from tokenomy.pricing.usage import TokenUsage

MTOK = Decimal(1_000_000)


def cost_usd(price: Price, usage: TokenUsage, *, batch: bool = False) -> Decimal:
    """The cost of ``usage`` at ``price``. Cache rates fall back to the input rate where a model has none; the
    long-context tier applies when the whole prompt (cached included) is over its threshold; ``batch`` uses the
    batch rates (cache rates unchanged)."""
    rates = price.rates_for(usage.prompt_total)
    input_rate, output_rate = rates.input, rates.output
    if batch:
        input_rate = price.batch_input if price.batch_input is not None else input_rate
        output_rate = price.batch_output if price.batch_output is not None else output_rate
    cached = rates.cached_input if rates.cached_input is not None else rates.input
    write_5m = rates.cache_write_5m if rates.cache_write_5m is not None else rates.input
    write_1h = rates.cache_write_1h if rates.cache_write_1h is not None else rates.input
    total = (usage.input * input_rate + usage.cached_read * cached + usage.cache_write_5m * write_5m
             + usage.cache_write_1h * write_1h + usage.output * output_rate)
    return total / MTOK
