"""Routing with a trained router (``--router DIR``): which model it sends a prompt to, and that model's price.

The router decides on the last user message at the target (``quality=Q`` from ``--target-quality``, else the
router's default). A decision for the router's frontier model means "stay". The chosen model is priced from the
catalogue when listed there; otherwise at the request's own rates scaled by the router's estimated cost ratio
(chosen / frontier), since a router trained on outcome data may name models the catalogue does not price.
Decisions are memoised by prompt text (repeats cost one decision). ``quality()`` is the router's own measured
quality at that target: the out-of-fold row of its calibration table (mean score, share of frontier calls), next to
the frontier's mean score, from training.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.pricing.catalogue import Catalogue
from tokenomy.pricing.price import RATE_FIELDS, Price

if TYPE_CHECKING:
    from tokenomy.routing.router import Router

MEMO_SIZE = 100_000


class RouterTargets:
    def __init__(self, router: Router, target: str | None, label: str) -> None:
        self._router = router
        self._target = target
        self.label = label
        self.decisions = 0
        self.mix: Counter[str] = Counter()  # requests per chosen model: the complexity mix by tier
        self._memo: dict[str, tuple[str, float] | None] = {}

    def quality(self) -> dict[str, Any]:
        """The calibration row (out of fold, on the router's training data) at the audit's target."""
        at = self._router.operating_point(self._target)
        row = next((r for r in self._router.state.calibration if at.matches(r)), None)
        frontier = float(self._router.state.manifest["frontier_score"])
        if row is None:
            return {"measured": False, "frontier_score": frontier}
        return {"measured": True, "score": round(float(row["score"]), 4), "frontier_score": round(frontier, 4),
                "frontier_share": round(float(row["share"]), 4),
                "note": "out of fold on the router's training data, at the audit's target"}

    @classmethod
    def load(cls, directory: Path, target_quality: float | None) -> RouterTargets:
        from tokenomy.routing.router import Router

        target = None if target_quality is None else f"quality={target_quality:g}"
        return cls(Router.load(directory), target, f"router {directory.name} (target {target or 'default'})")

    def choose(self, prompt: str) -> tuple[str, float] | None:
        """(chosen model, its estimated cost / the frontier's), or None when the router keeps the frontier."""
        if prompt in self._memo:
            found = self._memo[prompt]
            self.mix[found[0] if found else self._router.frontier] += 1
            return found
        decision = self._router.decide(prompt, target=self._target)
        self.decisions += 1
        frontier = self._router.frontier
        found = None
        if decision.model != frontier:
            costs = decision.expected_costs_usd
            ratio = costs[decision.model] / costs[frontier] if costs.get(frontier) else 1.0
            found = (decision.model, ratio)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[prompt] = found
        self.mix[found[0] if found else frontier] += 1
        return found

    def price(self, catalogue: Catalogue, own: Price, prompt: str, at: datetime) -> Price | None:
        choice = self.choose(prompt)
        if choice is None:
            return None
        model, ratio = choice
        listed = catalogue.find(model, at)
        if listed is not None:
            return listed
        scale = Decimal(str(ratio))
        rates = {f: getattr(own, f) * scale for f in RATE_FIELDS}
        return replace(own, **rates, model=f"{model} (estimated)", long_context=None)
