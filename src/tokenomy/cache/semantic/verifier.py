"""The decision rule: a logistic verifier scores the nearest entry, and a threshold per ``max_error`` says when the
score is high enough to serve.

The verifier's weights and the threshold table ship in ``calibration.json``, fitted by
``bench/semantic_calibrate.py`` on held-out human-labelled pairs (STS Benchmark train for the weights, STS-B dev
for the thresholds; see docs/cache.md). A threshold for ``max_error = e`` is the lowest score at which the
calibration set's served hits were wrong at most ``e`` of the time with 95 % confidence (Wilson upper
bound). Asking for a ``max_error`` between two table rows uses the stricter row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import orjson

from tokenomy.cache.semantic.features import FEATURE_NAMES
from tokenomy.errors import ConfigError

NEVER = 1.01  # a threshold no probability reaches


@dataclass(frozen=True)
class Verifier:
    weights: tuple[float, ...]  # intercept first, then one per feature
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, features: Sequence[float]) -> float:
        z = self.weights[0]
        for w, x, m, s in zip(self.weights[1:], features, self.mean, self.scale, strict=True):
            z += w * (x - m) / s
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class Calibration:
    verifier: Verifier
    thresholds: tuple[tuple[float, float], ...]  # (max_error, threshold), ascending max_error
    source: str

    def threshold(self, max_error: float) -> float:
        if not 0 < max_error < 1:
            raise ConfigError(f"max_error must be between 0 and 1, got {max_error}")
        usable = [t for e, t in self.thresholds if e <= max_error + 1e-12]
        return usable[-1] if usable else NEVER

    def to_json(self) -> bytes:
        return orjson.dumps({"features": list(FEATURE_NAMES), "weights": self.verifier.weights,
                             "mean": self.verifier.mean, "scale": self.verifier.scale,
                             "thresholds": [[e, t] for e, t in self.thresholds], "source": self.source},
                            option=orjson.OPT_INDENT_2)


def load_calibration(path: Path | None = None) -> Calibration:
    """The shipped calibration, or one written by ``bench/semantic_calibrate.py --out PATH``."""
    try:
        raw = path.read_bytes() if path else resources.files(__package__).joinpath("calibration.json").read_bytes()
        doc = orjson.loads(raw)
        if list(doc["features"]) != list(FEATURE_NAMES):
            raise ConfigError(f"semantic calibration {path}: its features {doc['features']} are not this version's")
        verifier = Verifier(tuple(map(float, doc["weights"])), tuple(map(float, doc["mean"])),
                            tuple(map(float, doc["scale"])))
        thresholds = tuple(sorted((float(e), float(t)) for e, t in doc["thresholds"]))
        return Calibration(verifier, thresholds, str(doc.get("source", "")))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"semantic calibration {path or 'calibration.json'} is unreadable: {exc}") from exc
