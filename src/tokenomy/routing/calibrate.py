"""Operator targets and the operating point that meets them, set on held-out training predictions.

A target is one of (CLI form ``KIND=VALUE``):

- ``share=S`` — at most a share S in [0, 1] of calls go to the frontier model (the best single model on the
  training rows);
- ``quality=Q`` — mean score at least Q × the frontier model's mean score, at the least cost (Q in (0, 1.5]);
- ``budget=B`` — mean cost at most B USD per 1,000 requests, at the best quality.

The trainer records a calibration table: for a grid of operating points (λ for quality and budget targets, the
frontier-call price μ for share targets; :mod:`tokenomy.routing.sweep`), the out-of-fold realised share of
frontier calls, mean score and mean cost on the training rows (each row predicted by a model that never saw it).
:func:`solve` reads a target's operating point off that table; :func:`realised` measures what it gives on other
rows (eval's "target vs realised").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenomy.errors import TargetError
from tokenomy.routing.sweep import choose, lambda_scale

if TYPE_CHECKING:
    import numpy as np

KINDS = ("share", "quality", "budget")
DEFAULT_TARGET = "quality=0.95"
TABLE_POINTS = 161



@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """``lam``: USD⁻¹ charged on every call's cost; ``mu``: score units charged on a call to the frontier;
    ``model``: a single model served on every call instead (the hull's choice, :mod:`tokenomy.routing.guard`)."""

    lam: float
    mu: float = 0.0
    model: str = ""

    def matches(self, row: dict[str, Any]) -> bool:
        if self.model:
            return bool(row.get("kind") == "single" and row["model"] == self.model)
        return bool(row.get("kind") != "single" and row["lambda"] == self.lam and row.get("mu", 0.0) == self.mu)


def parse_target(text: str) -> Target:
    kind, sep, raw = text.partition("=")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise TargetError(f"routing target {text!r}: expected share=S, quality=Q or budget=B (USD per 1k requests)")
    try:
        value = float(raw)
    except ValueError as exc:
        raise TargetError(f"routing target {text!r}: {raw!r} is not a number") from exc
    limits = {"share": (0.0, 1.0), "quality": (0.0, 1.5), "budget": (0.0, float("inf"))}[kind]
    if not limits[0] <= value <= limits[1]:
        raise TargetError(f"routing target {text!r}: {kind} must be in [{limits[0]:g}, {limits[1]:g}]")
    return Target(kind, value)


def lambda_grid(expected: np.ndarray, est_costs: np.ndarray, two_models: bool) -> np.ndarray:
    """λ values from "cheapest everywhere" down to 0 (and below 0 with two models), dense where decisions change."""
    import numpy as np

    high = lambda_scale(expected, est_costs)
    diffs = np.abs(expected[:, :, None] - expected[:, None, :]) / np.maximum(
        np.abs(est_costs[:, :, None] - est_costs[:, None, :]), 1e-30)
    breaks = diffs[np.isfinite(diffs) & (diffs > 0)]
    positive = np.quantile(breaks, np.linspace(0, 1, TABLE_POINTS)) if breaks.size else np.array([1.0])
    grid = np.concatenate([[high], positive, [0.0]])
    if two_models:
        grid = np.concatenate([grid, -positive])
    result: np.ndarray = np.unique(grid)[::-1]
    return result


def penalty_grid(expected: np.ndarray, frontier: int) -> np.ndarray:
    """μ values from "no frontier call" down to "every call to the frontier", dense where decisions change."""
    import numpy as np

    others = np.delete(expected, frontier, axis=1)
    gains = expected[:, frontier] - np.nanmax(others, axis=1)
    high = float(np.nanmax(np.abs(gains))) + 1.0
    inner = np.quantile(gains[np.isfinite(gains)], np.linspace(0, 1, TABLE_POINTS)) if np.isfinite(gains).any() \
        else np.array([0.0])
    result: np.ndarray = np.unique(np.concatenate([[high], inner, [-high]]))[::-1]
    return result


def table(models: Sequence[str], frontier: str, expected: np.ndarray, est_costs: np.ndarray, scores: np.ndarray,
          costs: np.ndarray) -> list[dict[str, Any]]:
    """The calibration table: the λ rows (``kind: lambda``), then the μ rows (``kind: mu``), each from the
    cheapest operating point to the most expensive."""
    rows = []
    for lam in lambda_grid(expected, est_costs, len(models) == 2):
        rows.append({"kind": "lambda", "lambda": float(lam), "mu": 0.0,
                     **realised(models, frontier, choose(expected, est_costs, lam), scores, costs)})
    index = models.index(frontier)
    for mu in penalty_grid(expected, index):
        rows.append({"kind": "mu", "lambda": 0.0, "mu": float(mu),
                     **realised(models, frontier, choose(expected, est_costs, 0.0, index, mu), scores, costs)})
    return rows


def realised(models: Sequence[str], frontier: str, chosen: np.ndarray, scores: np.ndarray,
             costs: np.ndarray) -> dict[str, float]:
    """Share of frontier calls, mean score and USD per 1k requests of an assignment (rows with a score)."""
    import numpy as np

    rows = np.arange(len(chosen))
    got, paid = scores[rows, chosen], costs[rows, chosen]
    ok = ~np.isnan(got)
    return {"share": float((chosen == models.index(frontier)).mean()),
            "score": float(got[ok].mean()) if ok.any() else float("nan"),
            "usd_per_1k": float(paid[ok].mean() * 1000) if ok.any() else float("nan")}


def solve(target: Target, calibration: list[dict[str, Any]], frontier_score: float) -> OperatingPoint:
    """The operating point of the calibration row that meets ``target``: a μ row for a share target, a λ row
    otherwise (rows of each kind run from cheapest to most expensive), among the rows that beat the hull of single
    models out of fold, or a single model on the hull of single models (``single`` rows) where that does at least as
    well (:mod:`tokenomy.routing.guard`)."""
    kind = "mu" if target.kind == "share" else "lambda"
    learned = [row for row in calibration if row.get("kind", "lambda") == kind and row.get("beats_hull", True)]
    singles = [row for row in calibration if row.get("kind") == "single" and row.get("hull", True)]
    rows = _by_cost(learned, singles) if singles else learned or calibration
    if target.kind == "quality":
        goal = target.value * frontier_score
        found = next((row for row in rows if row["score"] >= goal), None)
        return _point(found or max(rows, key=lambda r: r["score"]))
    key = "share" if target.kind == "share" else "usd_per_1k"
    meeting = [row for row in rows if row[key] <= target.value + 1e-12]
    return _point(max(meeting, key=lambda r: (r["score"], -r["usd_per_1k"])) if meeting else rows[0])


def _by_cost(learned: list[dict[str, Any]], singles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Learned rows and single models, cheapest first; at equal cost the better, then a single model."""
    return sorted([*learned, *singles], key=lambda r: (r["usd_per_1k"], -r["score"], r.get("kind") != "single"))


def _point(row: dict[str, Any]) -> OperatingPoint:
    if row.get("kind") == "single":
        return OperatingPoint(0.0, 0.0, model=str(row["model"]))
    return OperatingPoint(float(row["lambda"]), float(row.get("mu", 0.0)))
