"""Budget periods: ``total`` (never resets), ``daily`` and ``monthly`` (UTC calendar days and months).

A counter is named by its period's id (``total``, ``2026-11-24``, ``2026-11``), so a new period starts a new counter
at zero: the reset happens exactly once, on every replica, with no job to run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Period = Literal["total", "daily", "monthly"]
PERIODS: tuple[Period, ...] = ("total", "daily", "monthly")


def _utc(epoch_us: int) -> datetime:
    return datetime.fromtimestamp(epoch_us / 1_000_000, tz=UTC)


def period_id(period: str, at_us: int) -> str:
    if period == "daily":
        return _utc(at_us).strftime("%Y-%m-%d")
    if period == "monthly":
        return _utc(at_us).strftime("%Y-%m")
    return "total"


def period_start_us(period: str, at_us: int) -> int:
    """When the period holding ``at_us`` began (0 for ``total``)."""
    moment = _utc(at_us)
    if period == "daily":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elif period == "monthly":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        return 0
    return int(start.timestamp()) * 1_000_000


def period_ttl_s(period: str) -> int | None:
    """How long a shared counter must outlive its period's start (None: forever)."""
    return {"daily": 3 * 86_400, "monthly": 63 * 86_400}.get(period)
