"""The serving side: load a router directory once, then decide per request.

```python
router = Router.load(Path("routers/mmlu"))
decision = router.decide("What is the capital of France?", target="share=0.2")
decision.model, decision.expected_scores, decision.reason
```

``decide`` embeds the prompt's window (MiniLM: ~10–30 ms on this shared 2-core box; WordLlama: ~1 ms), predicts every
model's expected score, estimates each call's cost from the prompt's tokens, and picks
``argmax expected − λ·cost − μ·[frontier]`` with the operating point (λ, μ) read from the calibration table for the
target (the router's default target when none is given; targets are cached): λ for quality and budget targets, μ
for share targets (:mod:`tokenomy.routing.sweep`).
``should_escalate`` is the cascade check for a cheap answer already in hand.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import RouterFileError, TargetError
from tokenomy.routing import store
from tokenomy.routing.calibrate import OperatingPoint, Target, parse_target, solve
from tokenomy.routing.cascade import answer_features, share_margin
from tokenomy.routing.features import Embed, Features, featurize
from tokenomy.routing.guard import Guard, cascade_wins
from tokenomy.routing.sweep import choose

if TYPE_CHECKING:
    import numpy as np

    from tokenomy.tokens.counter import TokenCounter


@dataclass(frozen=True, slots=True)
class Decision:
    model: str
    expected_scores: dict[str, float]
    expected_costs_usd: dict[str, float]
    reason: str
    lam: float
    mu: float = 0.0
    frontier: str = ""
    online: int = 0  # a share or budget target held on live traffic: how many recent requests set it (0: calibrated)
    hull: str = ""  # why the hull's choice was served instead of the learned one ("" when the learned one was)
    part: int = -1  # mixed traffic: the prompt's part (tokenomy.routing.parts.NAMES); -1 for a router without parts

    def utility(self, model: str) -> float:
        """What the decision maximised, for ``model``: expected score − λ·cost − μ if it is the frontier."""
        charge = self.mu if model == self.frontier else 0.0
        return self.expected_scores[model] - self.lam * self.expected_costs_usd[model] - charge


class Router:
    def __init__(self, state: store.RouterState, embedder: Any, counter: TokenCounter) -> None:
        self.state = state
        self.models: list[str] = list(state.manifest["models"])
        self.frontier: str = state.manifest["frontier"]
        self.embedder = embedder
        self.batch_embed: Embed | None = None  # set by route eval: batches through the embedding cache
        self._counter = counter
        self._points: dict[str, OperatingPoint] = {}
        self._lock = threading.Lock()
        self.default_target = parse_target(state.manifest["default_target"])
        self.guard = Guard(state.calibration)

    @classmethod
    def load(cls, directory: Path, *, threads: int = 1, embedder: bool = True) -> Router:
        """The router in ``directory``; ``embedder`` False reads and checks its files only (it cannot decide)."""
        from tokenomy.embeddings.choice import load_embedder
        from tokenomy.tokens.counter import TokenCounter

        state = store.load(directory)
        model = load_embedder(state.features.embedder, threads=threads) if embedder else None
        return cls(state, model, TokenCounter())

    # --- batch (evaluation) ------------------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.batch_embed is not None:
            return self.batch_embed(texts)
        vectors: np.ndarray = self.embedder.embed(texts).vectors
        return vectors

    def features(self, prompts: Sequence[str], groups: Sequence[str | None]) -> Features:
        return featurize(self.state.features, prompts, groups, self.embed)

    def expected(self, features: Features) -> np.ndarray:
        """``(rows, models)`` expected scores."""
        return self.state.quality.predict(features)

    def estimated_costs(self, prompts: Sequence[str]) -> np.ndarray:
        """``(rows, models)`` USD per call: the cost model fitted at training (intercept + USD per prompt token)."""
        import numpy as np

        tokens = np.array([self._counter.count_text(p, "gpt-4") for p in prompts], dtype=np.float64)
        coef = np.array([self.state.manifest["cost_model"][m] for m in self.models])  # (models, 2)
        result: np.ndarray = np.maximum(coef[None, :, 0] + tokens[:, None] * coef[None, :, 1], 0.0)
        return result

    def operating_point(self, target: Target | str | None) -> OperatingPoint:
        """(λ, μ) for ``target`` (a :class:`Target`, its ``KIND=VALUE`` text, or None for the default)."""
        parsed = self.default_target if target is None else target if isinstance(target, Target) else \
            parse_target(target)
        key = str(parsed)
        found = self._points.get(key)
        if found is None:
            found = solve(parsed, self.state.calibration, float(self.state.manifest["frontier_score"]))
            with self._lock:
                self._points[key] = found
        return found

    def choose(self, expected: np.ndarray, est_costs: np.ndarray, at: OperatingPoint,
               guarded: bool = True) -> np.ndarray:
        """Model index per row at operating point ``at``: the learned rule where it beats the hull of single models
        out of fold, else the hull's single model (:mod:`tokenomy.routing.guard`). ``guarded`` False: ``at`` as it
        is (a part's candidate, measured against that part's hull: :mod:`tokenomy.routing.parts`)."""
        import numpy as np

        if guarded:
            at, _ = self.guard.apply(at)
        if at.model:
            return np.full(len(expected), self.models.index(at.model))
        return choose(expected, est_costs, at.lam, self.models.index(self.frontier), at.mu)

    # --- one request -------------------------------------------------------------------------------------------

    def decide(self, prompt: str, target: Target | str | None = None, group: str | None = None) -> Decision:
        return self.decide_many([prompt], [target], [group])[0]

    def decide_many(self, prompts: Sequence[str], targets: Sequence[Target | str | None],
                    groups: Sequence[str | None] | None = None) -> list[Decision]:
        """One decision per prompt, each at its own target, with one embedding call for all of them (the online
        micro-batcher gathers concurrent requests into one such call). Each row is chosen on its own, so a
        decision is the same alone or in a batch."""
        features = self.features(list(prompts), list(groups or [None] * len(prompts)))
        expected = self.expected(features)
        costs = self.estimated_costs(list(prompts))
        parts = self.state.parts.part_of(features) if self.state.parts is not None else [-1] * len(prompts)
        return [replace(self._decision(expected[i:i + 1], costs[i:i + 1], target), part=int(parts[i]))
                for i, target in enumerate(targets)]

    def frontier_gain(self, decision: Decision) -> float:
        """What a share target ranks calls by: the frontier's expected score minus the best other model's."""
        return decision.expected_scores[self.frontier] - max(
            v for m, v in decision.expected_scores.items() if m != self.frontier)

    def at_point(self, decision: Decision, at: OperatingPoint, target: Target | str | None,
                 cost_factors: Sequence[float] | None = None, guarded: bool = True) -> Decision:
        """``decision`` taken again at operating point ``at`` (its expected scores and costs, no embedding); with
        ``cost_factors`` (per model, in :attr:`models` order) the choice weighs each model's estimated cost times
        its factor, while the decision still reports the estimates. ``guarded``: as in :meth:`choose`."""
        import numpy as np

        expected = np.array([[decision.expected_scores[m] for m in self.models]])
        costs = np.array([[decision.expected_costs_usd[m] for m in self.models]])
        return replace(self._decision(expected, costs, target, at, cost_factors, guarded), part=decision.part)

    def _decision(self, expected: np.ndarray, costs: np.ndarray, target: Target | str | None,
                  at: OperatingPoint | None = None, cost_factors: Sequence[float] | None = None,
                  guarded: bool = True) -> Decision:
        import numpy as np

        at = at or self.operating_point(target)
        weighed = costs if cost_factors is None else costs * np.asarray(cost_factors)[None, :]
        model = self.models[int(self.choose(expected, weighed, at, guarded)[0])]
        scores = {m: float(expected[0, j]) for j, m in enumerate(self.models)}
        prices = {m: float(costs[0, j]) for j, m in enumerate(self.models)}
        rule = f"frontier call charged {at.mu:.3g}" if at.mu else f"λ={at.lam:.4g}/USD"
        hull = self.hull_note(at) if guarded else ""
        reason = (f"target {target or self.default_target}: {hull or rule}; {model} expected "
                  f"{scores[model]:.3f} at ${prices[model]:.2g} (best expected {max(scores.values()):.3f})")
        return Decision(model, scores, prices, reason, at.lam, at.mu, self.frontier, hull=hull)

    def hull_note(self, at: OperatingPoint) -> str:
        """Why ``at`` serves a single model, in ASCII words (it goes into a header; "" when the learned rule
        serves it)."""
        guarded, row = self.guard.apply(at)
        if not guarded.model:
            return ""
        if row is None or row.get("kind") == "single":
            return f"the hull's choice {guarded.model} (a single model meets the target as well as routing)"
        return (f"the hull's choice {guarded.model} (routing does not beat the hull at this cost: out-of-fold "
                f"uplift {100 * float(row['uplift']):+.1f} +/- {100 * float(row['spread']):.1f} points)")

    def escalation_gain(self, features: Features, answers: list[str]) -> np.ndarray:
        """The cascade's expected gain per row: the frontier's expected score minus the check's predicted score
        of the cheap ``answers``."""
        check = self.state.cascade
        if check is None:
            raise RouterFileError("this router has no cascade check (no training rows had cheap answers)")
        frontier = self.expected(features)[:, self.models.index(check.frontier)]
        predicted = check.predict(features, answer_features(self.state.features, answers, self.embed,
                                                                check.flags))
        result: np.ndarray = frontier - predicted
        return result

    def should_escalate(self, prompt: str, answer: str, margin: float = 0.0, group: str | None = None) -> bool:
        """The cascade check: is the frontier model expected to beat the cheap model's ``answer`` by more than
        ``margin`` (score units)?"""
        return self.gain(prompt, answer, group) > margin

    def gain(self, prompt: str, answer: str, group: str | None = None) -> float:
        """The cascade's expected gain for one prompt and its cheap ``answer``."""
        return float(self.escalation_gain(self.features([prompt], [group]), [answer])[0])

    def cascade_margin(self, target: Target | None, margin: float | None) -> float:
        """The escalation margin: from a ``share=S`` target (the margin that escalated S of the training rows out
        of fold), else ``margin``, else 0. Raises :class:`TargetError` for another kind of target, or a share
        target on a router trained before the gains were kept."""
        if target is None:
            return 0.0 if margin is None else margin
        if target.kind != "share":
            raise TargetError(f"a cascade takes share=S targets (the share of requests escalated), not {target}")
        quantiles = (self.state.manifest.get("cascade") or {}).get("gain_quantiles")
        if not quantiles:
            raise TargetError("this router keeps no cascade gains to read a share target from; retrain it")
        return share_margin(list(quantiles), target.value)

    @property
    def policy(self) -> str:
        """What ``route train`` chose to serve: ``cascade`` when the cascade beat the router and the hull out of fold
        at some escalation share; ``parts`` on a mix where only some rows carry the cheap model's answer and the
        cascade serves their part of the traffic somewhere on the mix's curve (:mod:`tokenomy.routing.parts`); else
        ``route``."""
        return str(self.state.manifest.get("policy", "route"))

    def cascade_serves(self, target: Target | None) -> bool:
        """Whether the trained choice (``policy: auto``) serves ``target`` with the cascade: a share target (or no
        target, read as the router's default when that is a share) at a share where the cascade won out of fold."""
        target = target or self.default_target
        if self.policy != "cascade" or self.state.cascade is None or target.kind != "share":
            return False
        return cascade_wins((self.state.manifest.get("cascade") or {}).get("verdicts", []), target.value)

    def describe(self) -> dict[str, Any]:
        return {"models": self.models, "frontier": self.frontier, "default_target": str(self.default_target),
                "method": self.state.manifest.get("method"),
                "policy": self.policy}
