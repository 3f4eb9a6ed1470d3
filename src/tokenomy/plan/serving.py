"""What a model needs in GPU memory, from ``serving.json``: weights by precision, KV cache per token, LoRA
adapters, and the serving engine's own share and overhead.

- weights = parameters x bytes per parameter (``bytes_per_param`` by precision);
- KV cache per token = 2 (K and V) x layers x KV heads x head dim x ``kv_bytes_per_value``;
- a LoRA adapter of rank r on every attention and MLP projection = r x layers x (the in + out widths of q, k, v,
  o, gate, up, down) parameters, stored in 16 bit;
- one engine process takes ``process_overhead_gb`` besides, and may use ``gpu_memory_utilization`` of the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.errors import PlanDataError
from tokenomy.plan.data import read_json

PACKAGED_SERVING = Path(__file__).with_name("serving.json")
GB = 1e9


@dataclass(frozen=True, slots=True)
class ModelShape:
    model_size: str
    example_model: str
    params_b: float
    layers: int
    hidden: int
    intermediate: int
    kv_heads: int
    head_dim: int
    source: str

    @property
    def lora_params_per_rank(self) -> int:
        """LoRA parameters per unit of rank on q, k, v, o, gate, up and down of every layer."""
        kv = self.kv_heads * self.head_dim
        widths = ((self.hidden + self.hidden) * 2 + (self.hidden + kv) * 2
                  + (self.hidden + self.intermediate) * 3)
        return self.layers * widths


@dataclass(frozen=True, slots=True)
class Figure:
    value: float
    source: str
    estimate: bool


@dataclass(frozen=True, slots=True)
class ServingCatalogue:
    models: dict[str, ModelShape]
    bytes_per_param: dict[str, Figure]
    engine: dict[str, Figure]

    def shape(self, model_size: str) -> ModelShape:
        if model_size not in self.models:
            raise PlanDataError(f"no model shape for size {model_size!r} in the serving file (known: "
                                f"{', '.join(sorted(self.models))})")
        return self.models[model_size]

    def weights_gb(self, model_size: str, precision: str) -> float:
        if precision not in self.bytes_per_param:
            raise PlanDataError(f"no bytes-per-parameter figure for precision {precision!r} in the serving file")
        return self.shape(model_size).params_b * 1e9 * self.bytes_per_param[precision].value / GB

    def kv_gb_per_token(self, model_size: str) -> float:
        s = self.shape(model_size)
        return 2 * s.layers * s.kv_heads * s.head_dim * self.engine["kv_bytes_per_value"].value / GB

    def adapter_gb(self, model_size: str, rank: int) -> float:
        return self.shape(model_size).lora_params_per_rank * rank * 2 / GB

    def figure(self, name: str) -> float:
        return self.engine[name].value


_ENGINE_KEYS = ("gpu_memory_utilization", "process_overhead_gb", "kv_bytes_per_value", "lora_efficiency",
                "colocation_efficiency", "default_lora_rank")
_SHAPE_INTS = ("layers", "hidden", "intermediate", "kv_heads", "head_dim")


def _number(raw: Any, key: str, where: str) -> float:
    if not isinstance(raw, dict) or key not in raw:
        raise PlanDataError(f"{where}: missing field '{key}'")
    try:
        value = float(str(raw[key]))
    except ValueError as exc:
        raise PlanDataError(f"{where}: field '{key}' is not a number: {raw[key]!r}") from exc
    if not value > 0:
        raise PlanDataError(f"{where}: field '{key}' must be > 0, got {raw[key]!r}")
    return value


def _figure(raw: Any, where: str) -> Figure:
    return Figure(_number(raw, "value", where), str(raw.get("source", "")), bool(raw.get("estimate", False)))


def load_serving(path: Path | None = None) -> ServingCatalogue:
    path = path or PACKAGED_SERVING
    doc = read_json(path, "serving file")
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise PlanDataError(f"{path}: expected an object with 'models', 'bytes_per_param' and 'engine'")
    models: dict[str, ModelShape] = {}
    for i, raw in enumerate(doc["models"]):
        where = f"{path}: models[{i}]"
        size = str(raw.get("model_size") or "") if isinstance(raw, dict) else ""
        if not size:
            raise PlanDataError(f"{where}: missing field 'model_size'")
        ints = {k: int(_number(raw, k, where)) for k in _SHAPE_INTS}
        models[size] = ModelShape(size, str(raw.get("example_model", "")), _number(raw, "params_b", where),
                                  source=str(raw.get("source", "")), **ints)
    precisions = doc.get("bytes_per_param")
    engine = doc.get("engine")
    if not isinstance(precisions, dict) or not isinstance(engine, dict):
        raise PlanDataError(f"{path}: 'bytes_per_param' and 'engine' must be objects")
    missing = [k for k in _ENGINE_KEYS if k not in engine]
    if missing:
        raise PlanDataError(f"{path}: engine is missing {', '.join(missing)}")
    return ServingCatalogue(models, {k: _figure(v, f"{path}: bytes_per_param.{k}") for k, v in precisions.items()},
                            {k: _figure(engine[k], f"{path}: engine.{k}") for k in _ENGINE_KEYS})
