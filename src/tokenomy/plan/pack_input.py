"""The workloads file of ``tokenomy plan pack``: several served models (and LoRA adapters of a base) with their
traffic. YAML or JSON:

```yaml
gpu: H100                      # the accelerator to pack onto (default H100)
workloads:
  - name: chat                 # unique; the deployment name in manifests
    model: meta-llama/Llama-3.1-8B-Instruct   # the base model (what vLLM loads)
    model_size: 8B             # a row of throughput.json / serving.json
    precision: fp16
    queries_per_day: 100000
    input_tokens: 1500
    output_tokens: 500
    curve: diurnal             # diurnal | office-hours | flat | 24 hourly numbers (default diurnal)
    shift_hours: 0             # the curve moved later by this many hours (another time zone)
    peak_factor: 2.1           # optional: reshape the curve so its peak is this x the mean
  - name: support-triage
    model: meta-llama/Llama-3.1-8B-Instruct
    adapter: support-triage    # a LoRA adapter on that base: packed, it shares the base's engine
    lora_rank: 16              # default from serving.json
    queries_per_day: 20000
    input_tokens: 400
    output_tokens: 8
```

An adapter row may leave out ``model_size`` and ``precision`` when another row of the same ``model`` gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokenomy.errors import PlanDataError
from tokenomy.plan.workload import CURVES, TrafficCurve, Workload

_KNOWN = {"name", "model", "model_size", "precision", "queries_per_day", "input_tokens", "output_tokens", "curve",
          "shift_hours", "peak_factor", "adapter", "lora_rank"}


@dataclass(frozen=True, slots=True)
class PackWorkload:
    name: str
    model: str
    model_size: str
    precision: str
    workload: Workload
    curve: TrafficCurve
    adapter: str | None = None
    lora_rank: int | None = None

    @property
    def served_name(self) -> str:
        """What clients ask for: the adapter's name, or the base model's."""
        return self.adapter or self.model

    def requests_per_s(self, hour: float) -> float:
        return self.curve.requests_per_s(self.workload, hour)


@dataclass(frozen=True, slots=True)
class PackFile:
    gpu: str
    workloads: list[PackWorkload]


def read_pack_file(path: Path, gpu: str | None = None) -> PackFile:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanDataError(f"cannot read workloads file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PlanDataError(f"workloads file {path} is not valid YAML/JSON: {exc}".replace("\n", " ")) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("workloads"), list) or not doc["workloads"]:
        raise PlanDataError(f"{path}: expected an object with a non-empty 'workloads' list")
    raws = doc["workloads"]
    shapes = _base_shapes(raws, path)
    rows = [_row(raw, i, path, shapes) for i, raw in enumerate(raws)]
    for what, values in (("name", [r.name for r in rows]), ("(model, adapter)", [f"({r.model}, {r.adapter})"
                                                                                  for r in rows])):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise PlanDataError(f"{path}: duplicate workload {what}: {', '.join(dupes)}")
    return PackFile(gpu or str(doc.get("gpu") or "H100"), rows)


def _base_shapes(raws: list[Any], path: Path) -> dict[str, tuple[str, str]]:
    """model -> (model_size, precision), from the rows that give them (they must agree)."""
    shapes: dict[str, tuple[str, str]] = {}
    for i, raw in enumerate(raws):
        if not isinstance(raw, dict):
            raise PlanDataError(f"{path}: workloads[{i}] must be an object")
        if "model_size" in raw and "precision" in raw and "model" in raw:
            shape = (str(raw["model_size"]), str(raw["precision"]))
            if shapes.setdefault(str(raw["model"]), shape) != shape:
                raise PlanDataError(f"{path}: workloads[{i}]: model {raw['model']!r} is given two sizes/precisions")
    return shapes


def _row(raw: dict[str, Any], i: int, path: Path, shapes: dict[str, tuple[str, str]]) -> PackWorkload:
    where = f"{path}: workloads[{i}]"
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise PlanDataError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN))})")
    for key in ("name", "model"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise PlanDataError(f"{where}: field '{key}' must be a non-empty string")
    if raw["model"] not in shapes:
        raise PlanDataError(f"{where}: no row gives model_size and precision for model {raw['model']!r}")
    size, precision = shapes[raw["model"]]
    if (str(raw.get("model_size", size)), str(raw.get("precision", precision))) != (size, precision):
        raise PlanDataError(f"{where}: model {raw['model']!r} is given two sizes/precisions")
    workload = Workload(*(_whole(raw, k, where) for k in ("queries_per_day", "input_tokens", "output_tokens")))
    adapter = raw.get("adapter")
    if adapter is not None and (not isinstance(adapter, str) or not adapter):
        raise PlanDataError(f"{where}: field 'adapter' must be a non-empty string")
    rank = raw.get("lora_rank")
    if rank is not None and (adapter is None or isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise PlanDataError(f"{where}: 'lora_rank' needs 'adapter' and must be a whole number >= 1")
    return PackWorkload(raw["name"], raw["model"], size, precision, workload, _curve(raw, where), adapter, rank)


def _whole(raw: dict[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanDataError(f"{where}: field '{key}' must be a whole number, got {value!r}")
    return value


def _curve(raw: dict[str, Any], where: str) -> TrafficCurve:
    spec = raw.get("curve", "diurnal")
    if isinstance(spec, str):
        if spec not in CURVES:
            raise PlanDataError(f"{where}: curve {spec!r} is not one of {', '.join(sorted(CURVES))} or 24 numbers")
        name, weights = spec, list(CURVES[spec])
    elif isinstance(spec, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec):
        name, weights = "custom", [float(v) for v in spec]
    else:
        raise PlanDataError(f"{where}: curve must be a name or a list of 24 numbers")
    shift = raw.get("shift_hours", 0)
    if isinstance(shift, bool) or not isinstance(shift, int):
        raise PlanDataError(f"{where}: shift_hours must be a whole number of hours")
    if shift % 24:
        weights = weights[-(shift % 24):] + weights[: -(shift % 24)]
        name = f"{name} +{shift % 24}h"
    curve = TrafficCurve.of(name, weights)
    factor = raw.get("peak_factor")
    if factor is not None:
        if isinstance(factor, bool) or not isinstance(factor, int | float):
            raise PlanDataError(f"{where}: peak_factor must be a number")
        curve = curve.with_peak_factor(float(factor))
    return curve
