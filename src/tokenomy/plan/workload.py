"""What the plan is for: a daily volume, a request shape, and the day's traffic curve.

The audit summary (``--from-audit FILE.json``) is one JSON object; the planner needs only::

    {"queries_per_day": 100000, "input_tokens": 1500, "output_tokens": 500,
     "hourly_share": [24 numbers, optional: the day's traffic by UTC hour, any scale]}

``input_tokens``/``output_tokens`` are means per query. Other fields are ignored, so a fuller ``tokenomy audit
--json`` report that carries these keys at top level can be passed as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.errors import PlanDataError
from tokenomy.plan.data import read_json

DAYS_PER_MONTH = 30  # the seed's convention ($90,000/month = 30 days)

# The default day: a business-facing app, traffic by UTC hour (relative), peak early afternoon, night trough at
# ~2 % of the peak. Stated assumption, not a measurement; an audit's own ``hourly_share`` replaces it.
DIURNAL = (0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.20, 0.45, 0.80, 1.00, 1.00, 0.95,
           0.90, 0.95, 1.00, 0.95, 0.85, 0.70, 0.50, 0.35, 0.25, 0.15, 0.10, 0.07)
# Office hours only (08:00-18:00 UTC), no traffic at night: the case scale-to-zero is made for.
OFFICE_HOURS = tuple(1.0 if 8 <= h < 18 else 0.0 for h in range(24))
CURVES = {"diurnal": DIURNAL, "office-hours": OFFICE_HOURS, "flat": (1.0,) * 24}


@dataclass(frozen=True, slots=True)
class Workload:
    queries_per_day: int
    input_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        for name in ("queries_per_day", "input_tokens", "output_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PlanDataError(f"{name} must be a whole number >= 0, got {value!r}")
        if self.queries_per_day == 0 or self.input_tokens + self.output_tokens == 0:
            raise PlanDataError("nothing to plan: queries_per_day and input_tokens + output_tokens must be > 0")

    @property
    def queries_per_month(self) -> int:
        return self.queries_per_day * DAYS_PER_MONTH

    @property
    def tokens_per_month(self) -> int:
        return self.queries_per_month * (self.input_tokens + self.output_tokens)

    @property
    def mean_requests_per_s(self) -> float:
        return self.queries_per_day / 86400


@dataclass(frozen=True, slots=True)
class TrafficCurve:
    """Relative traffic for each of the 24 UTC hours, normalised to mean 1 (so ``peak_factor`` = max)."""

    name: str
    hourly: tuple[float, ...]

    @classmethod
    def of(cls, name: str, weights: tuple[float, ...] | list[float]) -> TrafficCurve:
        if len(weights) != 24 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise PlanDataError(f"traffic curve '{name}' needs 24 hourly values >= 0, not all zero")
        mean = sum(weights) / 24
        return cls(name, tuple(float(w) / mean for w in weights))

    @property
    def peak_factor(self) -> float:
        return max(self.hourly)

    def with_peak_factor(self, factor: float) -> TrafficCurve:
        """The same shape, stretched or flattened around its mean until its peak is ``factor`` x the mean."""
        own = self.peak_factor
        lowest = min(self.hourly)
        highest_allowed = 1 + (own - 1) / (1 - lowest) if lowest < 1 else 1.0
        if not 1 <= factor <= highest_allowed + 1e-9:
            raise PlanDataError(f"--peak-factor {factor}: the '{self.name}' curve allows 1 to "
                                f"{highest_allowed:.2f} (a higher peak needs negative traffic at night)")
        scale = (factor - 1) / (own - 1) if own > 1 else 0.0
        return TrafficCurve(f"{self.name}, peak x{factor:g}", tuple(1 + (w - 1) * scale for w in self.hourly))

    def requests_per_s(self, workload: Workload, hour: float) -> float:
        """Arrival rate at fractional ``hour`` (piecewise-linear between hour midpoints)."""
        position = (hour - 0.5) % 24
        low = int(position)
        frac = position - low
        weight = self.hourly[low] * (1 - frac) + self.hourly[(low + 1) % 24] * frac
        return workload.mean_requests_per_s * weight


def read_audit(path: Path) -> tuple[Workload, TrafficCurve | None]:
    """The workload (and curve, when the file has ``hourly_share``) of an audit summary file."""
    doc = read_json(path, "audit summary")
    if not isinstance(doc, dict):
        raise PlanDataError(f"{path}: expected one JSON object with queries_per_day, input_tokens, output_tokens")
    values: dict[str, int] = {}
    for key in ("queries_per_day", "input_tokens", "output_tokens"):
        values[key] = _whole(doc, key, path)
    curve = None
    if "hourly_share" in doc:
        share = doc["hourly_share"]
        if not isinstance(share, list) or not all(isinstance(v, int | Decimal) for v in share):
            raise PlanDataError(f"{path}: field 'hourly_share' must be a list of 24 numbers")
        curve = TrafficCurve.of(f"from {path.name}", [float(v) for v in share])
    return Workload(**values), curve


def _whole(doc: dict[str, Any], key: str, path: Path) -> int:
    if key not in doc:
        raise PlanDataError(f"{path}: missing field '{key}' (needs queries_per_day, input_tokens, output_tokens)")
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value < 0:
        raise PlanDataError(f"{path}: field '{key}' must be a number >= 0, got {value!r}")
    return round(value)
