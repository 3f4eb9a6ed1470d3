"""The router directory: everything a router needs to decide, with no access to its training data.

```
manifest.json     format, models, frontier, prices, cost model, feature config, learner settings, blend,
                  default target, cascade settings
weights.npz       ridge arrays, kNN bank (float16 embeddings and their scores), group means, word-count IDF and
                  weights (when the blend uses them), cascade ridge, part detector (mixed traffic)
calibration.json  out-of-fold operating-point table, λ and μ rows (see tokenomy.routing.calibrate)
report.json       the training report (not needed to decide)
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import RouterFileError
from tokenomy.routing import quality as q
from tokenomy.routing.cascade import FIRST_FLAGS, CascadeCheck
from tokenomy.routing.features import FeatureConfig
from tokenomy.routing.parts import PartPolicy
from tokenomy.routing.words import WordsModel

if TYPE_CHECKING:
    import numpy as np

FORMAT = "tokenomy-router/2"  # /1: no word-count learner, λ-only calibration; retrain it
MANIFEST, WEIGHTS, CALIBRATION, REPORT = "manifest.json", "weights.npz", "calibration.json", "report.json"



@dataclass
class RouterState:
    manifest: dict[str, Any]
    features: FeatureConfig
    quality: q.QualityModel
    calibration: list[dict[str, Any]]
    cascade: CascadeCheck | None
    parts: PartPolicy | None = None  # mixed traffic: the cascade on one part, the router elsewhere


def save(directory: Path, state: RouterState, report: dict[str, Any]) -> None:
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    model = state.quality
    arrays: dict[str, np.ndarray] = {
        "ridge_mean": model.ridge.mean, "ridge_scale": model.ridge.scale, "ridge_weights": model.ridge.weights,
        "ridge_bias": model.ridge.bias, "bank": model.bank.astype(np.float16), "bank_y": model.bank_y,
        "group_means": model.group_means, "overall": model.overall, "blend": model.blend}
    if model.words is not None:
        arrays.update({"words_idf": model.words.idf, "words_weights": model.words.weights,
                       "words_bias": model.words.bias})
    if state.cascade is not None:
        ridge = state.cascade.ridge
        arrays.update({"cascade_mean": ridge.mean, "cascade_scale": ridge.scale, "cascade_weights": ridge.weights,
                       "cascade_bias": ridge.bias})
    if state.parts is not None:
        arrays.update(state.parts.arrays())
    np.savez_compressed(directory / WEIGHTS, **arrays)  # type: ignore[arg-type]
    manifest = {**state.manifest, "format": FORMAT, "features": state.features.to_json(),
                "hyper": vars(model.hyper), "groups": model.groups}
    _write_json(directory / MANIFEST, manifest)
    _write_json(directory / CALIBRATION, state.calibration)
    _write_json(directory / REPORT, report)


def load(directory: Path) -> RouterState:
    import numpy as np

    manifest = _read_json(directory / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        hint = "; retrain it with this version (tokenomy route train)" if isinstance(found, str) and \
            found.startswith("tokenomy-router/") else ""
        raise RouterFileError(f"{directory / MANIFEST}: not a {FORMAT} router (format {found!r}){hint}")
    try:
        arrays = dict(np.load(directory / WEIGHTS))
    except (OSError, ValueError) as exc:
        raise RouterFileError(f"cannot read {directory / WEIGHTS}: {exc}") from exc
    try:
        hyper = q.Hyper(**manifest["hyper"])
        ridge = q.RidgeModel(arrays["ridge_mean"], arrays["ridge_scale"], arrays["ridge_weights"],
                             arrays["ridge_bias"])
        words = WordsModel(arrays["words_idf"], arrays["words_weights"], arrays["words_bias"]) \
            if "words_idf" in arrays else None
        model = q.QualityModel(ridge, arrays["bank"].astype(np.float32), arrays["bank_y"], arrays["group_means"],
                               arrays["overall"], int(manifest["groups"]), hyper, arrays["blend"], words)
        cascade = None
        if manifest.get("cascade"):
            info = manifest["cascade"]
            cascade = CascadeCheck(info["cheap"], info["frontier"],
                                   q.RidgeModel(arrays["cascade_mean"], arrays["cascade_scale"],
                                                arrays["cascade_weights"], arrays["cascade_bias"]),
                                   q.Hyper(**info["hyper"]), int(manifest["groups"]),
                                   tuple(info.get("answer_flags", FIRST_FLAGS)))
        parts = PartPolicy.from_json(manifest["parts"], arrays) if manifest.get("parts") else None
        features = FeatureConfig.from_json(manifest["features"])
    except (KeyError, TypeError) as exc:
        raise RouterFileError(f"{directory}: damaged router ({exc!r} missing or malformed)") from exc
    calibration = _read_json(directory / CALIBRATION)
    if not isinstance(calibration, list) or not calibration:
        raise RouterFileError(f"{directory / CALIBRATION}: expected a non-empty list")
    return RouterState(manifest, features, model, calibration, cascade, parts)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RouterFileError(f"{path} is missing: is {path.parent} a router directory (tokenomy route train)?") \
            from exc
    except (OSError, ValueError) as exc:
        raise RouterFileError(f"cannot read {path}: {exc}") from exc
