"""The serving side: load a router directory once, then decide per request.

```python
router = Router.load(Path("routers/mmlu"))
decision = router.decide("What is the capital of France?", target="share=0.2")
decision.model, decision.expected_scores, decision.reason
```

``decide`` embeds the prompt's window with MiniLM (one call, ~1–3 ms on 2 cores), predicts every model's expected
score, estimates each call's cost from the prompt's tokens, and picks ``argmax expected − λ·cost`` with λ read from
the calibration table for the target (the router's default target when none is given; targets are cached).
``should_escalate`` is the cascade check for a cheap answer already in hand.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import RouterFileError
from tokenomy.routing import store
from tokenomy.routing.calibrate import Target, parse_target, solve
from tokenomy.routing.cascade import answer_features
from tokenomy.routing.features import Features, featurize
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


class Router:
    def __init__(self, state: store.RouterState, embedder: Any, counter: TokenCounter) -> None:
        self.state = state
        self.models: list[str] = list(state.manifest["models"])
        self.frontier: str = state.manifest["frontier"]
        self._embedder = embedder
        self._counter = counter
        self._lambdas: dict[str, float] = {}
        self._lock = threading.Lock()
        self.default_target = parse_target(state.manifest["default_target"])

    @classmethod
    def load(cls, directory: Path, *, threads: int = 1) -> Router:
        from tokenomy.embeddings.choice import load_embedder
        from tokenomy.tokens.counter import TokenCounter

        state = store.load(directory)
        return cls(state, load_embedder(state.features.embedder, threads=threads), TokenCounter())

    # --- batch (evaluation) ------------------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = self._embedder.embed(texts).vectors
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

    def lam(self, target: Target | str | None) -> float:
        """λ for ``target`` (a :class:`Target`, its ``KIND=VALUE`` text, or None for the default)."""
        parsed = self.default_target if target is None else target if isinstance(target, Target) else \
            parse_target(target)
        key = str(parsed)
        found = self._lambdas.get(key)
        if found is None:
            found = solve(parsed, self.state.calibration, float(self.state.manifest["frontier_score"]))
            with self._lock:
                self._lambdas[key] = found
        return found

    # --- one request -------------------------------------------------------------------------------------------

    def decide(self, prompt: str, target: Target | str | None = None, group: str | None = None) -> Decision:
        lam = self.lam(target)
        expected = self.expected(self.features([prompt], [group]))
        costs = self.estimated_costs([prompt])
        index = int(choose(expected, costs, lam)[0])
        model = self.models[index]
        scores = {m: float(expected[0, j]) for j, m in enumerate(self.models)}
        prices = {m: float(costs[0, j]) for j, m in enumerate(self.models)}
        reason = (f"target {target or self.default_target}: λ={lam:.4g}/USD; {model} expected "
                  f"{scores[model]:.3f} at ${prices[model]:.2g} (best expected {max(scores.values()):.3f})")
        return Decision(model, scores, prices, reason, lam)

    def should_escalate(self, prompt: str, answer: str, threshold: float = 0.5, group: str | None = None) -> bool:
        """The cascade check: is the cheap model's ``answer`` predicted to score below ``threshold``?"""
        if self.state.cascade is None:
            raise RouterFileError("this router has no cascade check (no training rows had cheap answers)")
        prompt_features = self.features([prompt], [group])
        answer_x = answer_features(self.state.features, [answer], self.embed)
        return bool(self.state.cascade.predict(prompt_features, answer_x)[0] < threshold)

    def describe(self) -> dict[str, Any]:
        return {"models": self.models, "frontier": self.frontier, "default_target": str(self.default_target),
                "method": self.state.manifest.get("method")}
