"""Prices and exact costs: pure, no I/O beyond reading price files. Money is Decimal USD end to end.

- ``price``: a dated price row (``Price``, ``Rates``, ``LongContextTier``) and the validation of price documents.
- ``catalogue``: ``Catalogue.load(override)``, lookups by name (``find``, ``price_for``) at a point in time.
- ``cost``: ``normalise_usage(provider_kind, usage)`` → ``TokenUsage``; ``cost_usd`` / ``cost_breakdown``.
"""

from tokenomy.pricing.catalogue import OVERRIDE_FILENAME, Catalogue, UnknownPriceError
from tokenomy.pricing.cost import CostBreakdown, TokenUsage, UsageError, cost_breakdown, cost_usd, normalise_usage
from tokenomy.pricing.price import LongContextTier, Price, PriceError, Rates

__all__ = [
    "OVERRIDE_FILENAME", "Catalogue", "CostBreakdown", "LongContextTier", "Price", "PriceError", "Rates",
    "TokenUsage", "UnknownPriceError", "UsageError", "cost_breakdown", "cost_usd", "normalise_usage",
]
