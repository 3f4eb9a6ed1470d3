"""The decision rule: a boosted-trees verifier scores the nearest entry, and a threshold per ``max_error`` says when
the score is high enough to serve.

The verifier (gradient-boosted depth-3 trees over :data:`FEATURE_NAMES`, monotone in the features whose direction
is known: more similarity never lowers the score, an opposite or a changed number never raises it) and the threshold
table ship in ``calibration.json``, written by ``bench/semantic_calibrate.py`` (data and method: docs/cache.md). A
threshold for ``max_error = e`` is the lowest score at which the calibration lookups' served hits were wrong at most
``e`` of the time at the table's confidence (Wilson upper bound). Asking for a ``max_error`` between two table rows
uses the stricter row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tokenomy.cache.semantic.features import FEATURE_NAMES
from tokenomy.errors import ConfigError

NEVER = 1.01  # a threshold no probability reaches
# The same content words in another order around a direction word ("from A to B" / "from B to A") is a different
# request whatever the model says: too rare in the training data for the trees to learn, too costly to serve.
_VETO = FEATURE_NAMES.index("direction_swapped")


@dataclass(frozen=True)
class Tree:
    """One regression tree as parallel node arrays; a leaf has ``feature = -1`` and its ``value``."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left, "right": self.right,
                "value": self.value}


class Verifier:
    """``probability(features)``: sigmoid of ``base`` plus each tree's leaf value (a sample goes left when
    ``x[feature] <= threshold``)."""

    def __init__(self, base: float, trees: Sequence[Tree]) -> None:
        self.base, self.trees = base, tuple(trees)
        self._flat: Any = None

    def _arrays(self) -> Any:
        """All trees in one set of numpy arrays (leaves loop to themselves), so scoring is a few vector steps."""
        import numpy as np

        feature: list[int] = []
        left: list[int] = []
        right: list[int] = []
        roots: list[int] = []
        threshold: list[float] = []
        value: list[float] = []
        depth = 0
        for tree in self.trees:
            offset = len(feature)
            roots.append(offset)
            for i, f in enumerate(tree.feature):
                leaf = f < 0
                feature.append(0 if leaf else f)
                threshold.append(math.inf if leaf else tree.threshold[i])
                left.append(offset + (i if leaf else tree.left[i]))
                right.append(offset + (i if leaf else tree.right[i]))
                value.append(tree.value[i] if leaf else 0.0)
            depth = max(depth, _depth(tree))
        return (np.asarray(feature, dtype=np.intp), np.asarray(threshold), np.asarray(left, dtype=np.intp),
                np.asarray(right, dtype=np.intp), np.asarray(value), np.asarray(roots, dtype=np.intp), depth)

    def probability(self, features: Sequence[float]) -> float:
        import numpy as np

        if self._flat is None:
            self._flat = self._arrays()
        feature, threshold, left, right, value, node, depth = self._flat
        x = np.asarray(features, dtype=np.float64)
        for _ in range(depth):
            node = np.where(x[feature[node]] <= threshold[node], left[node], right[node])
        z = self.base + float(value[node].sum())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def _depth(tree: Tree) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, d = stack.pop()
        if tree.feature[node] < 0:
            deepest = max(deepest, d)
        else:
            stack += [(tree.left[node], d + 1), (tree.right[node], d + 1)]
    return deepest


@dataclass(frozen=True)
class Calibration:
    verifier: Verifier
    thresholds: tuple[tuple[float, float], ...]  # (max_error, threshold), ascending max_error
    source: str

    def score(self, features: Sequence[float]) -> float:
        """The probability that serving the entry is right: the verifier's, or 0 under the direction veto."""
        return 0.0 if features[_VETO] else self.verifier.probability(features)

    def threshold(self, max_error: float) -> float:
        if not 0 < max_error < 1:
            raise ConfigError(f"max_error must be between 0 and 1, got {max_error}")
        usable = [t for e, t in self.thresholds if e <= max_error + 1e-12]
        return usable[-1] if usable else NEVER

    def to_json(self) -> bytes:
        return orjson.dumps({"features": list(FEATURE_NAMES), "source": self.source,
                             "thresholds": [[e, t] for e, t in self.thresholds],
                             "model": {"kind": "boosted_trees", "base": self.verifier.base,
                                       "trees": [t.to_dict() for t in self.verifier.trees]}})


def load_calibration(path: Path | None = None) -> Calibration:
    """The shipped calibration, or one written by ``bench/semantic_calibrate.py --out PATH``."""
    try:
        raw = path.read_bytes() if path else resources.files(__package__).joinpath("calibration.json").read_bytes()
        doc = orjson.loads(raw)
        if list(doc["features"]) != list(FEATURE_NAMES):
            raise ConfigError(f"semantic calibration {path}: its features {doc['features']} are not this version's")
        model = doc["model"]
        if model.get("kind") != "boosted_trees":
            raise ConfigError(f"semantic calibration {path}: unknown model kind {model.get('kind')!r}")
        trees = [Tree(tuple(map(int, t["feature"])), tuple(map(float, t["threshold"])), tuple(map(int, t["left"])),
                      tuple(map(int, t["right"])), tuple(map(float, t["value"]))) for t in model["trees"]]
        thresholds = tuple(sorted((float(e), float(t)) for e, t in doc["thresholds"]))
        return Calibration(Verifier(float(model["base"]), trees), thresholds, str(doc.get("source", "")))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"semantic calibration {path or 'calibration.json'} is unreadable: {exc}") from exc
