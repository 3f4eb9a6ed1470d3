"""The planner's two data files: GPU hourly prices and serving throughput, each figure with its source.

``load_gpus(path)`` / ``load_throughput(path)`` read the packaged file when ``path`` is None. Every error is a
``PlanDataError`` naming the file, the entry and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tokenomy.errors import PlanDataError

PACKAGED_GPUS = Path(__file__).with_name("gpus.json")
PACKAGED_THROUGHPUT = Path(__file__).with_name("throughput.json")



@dataclass(frozen=True, slots=True)
class HourlyPrice:
    usd_per_hour: Decimal
    source: str
    estimate: bool


@dataclass(frozen=True, slots=True)
class Gpu:
    name: str
    memory_gb: int
    on_demand: HourlyPrice
    spot: HourlyPrice


@dataclass(frozen=True, slots=True)
class GpuCatalogue:
    gpus: dict[str, Gpu]
    spot_interruption_overhead: float
    overhead_source: str


@dataclass(frozen=True, slots=True)
class Throughput:
    """One replica of ``model_size`` at ``precision`` on ``gpus`` x ``gpu``, at a saturating concurrency."""

    model_size: str
    example_model: str
    precision: str
    gpu: str
    gpus: int
    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    concurrency: int
    source: str
    estimate: bool

    def seconds_per_request(self, input_tokens: int, output_tokens: int) -> float:
        """Replica-seconds one request occupies: prefill plus decode (additive; conservative)."""
        return input_tokens / self.prefill_tokens_per_s + output_tokens / self.decode_tokens_per_s

    def requests_per_s(self, input_tokens: int, output_tokens: int) -> float:
        return 1.0 / self.seconds_per_request(input_tokens, output_tokens)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise PlanDataError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise PlanDataError(f"{what} {path} is not valid JSON: {exc}") from exc


def _field(raw: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(raw, dict) or key not in raw:
        raise PlanDataError(f"{where}: missing field '{key}'")
    value = raw[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise PlanDataError(f"{where}: field '{key}' has the wrong type ({type(value).__name__}: {value!r})")
    return value


def _positive(raw: Any, key: str, where: str) -> Decimal:
    value = _field(raw, key, where, (str, int, Decimal))
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PlanDataError(f"{where}: field '{key}' is not a number: {value!r}") from exc
    if not number.is_finite() or number <= 0:
        raise PlanDataError(f"{where}: field '{key}' must be a number > 0, got {value!r}")
    return number


def _price(raw: Any, where: str) -> HourlyPrice:
    return HourlyPrice(_positive(raw, "usd_per_hour", where), str(_field(raw, "source", where, str)),
                       bool(raw.get("estimate", False)))


def load_gpus(path: Path | None = None) -> GpuCatalogue:
    path = path or PACKAGED_GPUS
    doc = read_json(path, "GPU price file")
    gpus: dict[str, Gpu] = {}
    for i, raw in enumerate(_field(doc, "gpus", str(path), list)):
        where = f"{path}: gpus[{i}]"
        name = str(_field(raw, "gpu", where, str))
        where = f"{path}: gpu '{name}'"
        gpus[name] = Gpu(name, int(_positive(raw, "memory_gb", where)),
                         _price(_field(raw, "on_demand", where, dict), f"{where}.on_demand"),
                         _price(_field(raw, "spot", where, dict), f"{where}.spot"))
    overhead = _field(doc, "spot_interruption_overhead", str(path), dict)
    value = _field(overhead, "value", f"{path}: spot_interruption_overhead", (int, Decimal))
    if not 0 <= value < 1:
        raise PlanDataError(f"{path}: spot_interruption_overhead.value must be in [0, 1), got {value}")
    return GpuCatalogue(gpus, float(value), str(overhead.get("source", "")))


def load_throughput(path: Path | None = None, gpus: GpuCatalogue | None = None) -> list[Throughput]:
    """The rows; when ``gpus`` is given, every row's GPU must be priced there."""
    path = path or PACKAGED_THROUGHPUT
    doc = read_json(path, "throughput file")
    rows = []
    for i, raw in enumerate(_field(doc, "rows", str(path), list)):
        where = f"{path}: rows[{i}]"
        row = Throughput(
            model_size=str(_field(raw, "model_size", where, str)),
            example_model=str(raw.get("example_model", "")),
            precision=str(_field(raw, "precision", where, str)),
            gpu=str(_field(raw, "gpu", where, str)),
            gpus=int(_positive(raw, "gpus", where)),
            decode_tokens_per_s=float(_positive(raw, "decode_tokens_per_s", where)),
            prefill_tokens_per_s=float(_positive(raw, "prefill_tokens_per_s", where)),
            concurrency=int(_positive(raw, "concurrency", where)),
            source=str(_field(raw, "source", where, str)),
            estimate=bool(raw.get("estimate", False)),
        )
        if gpus is not None and row.gpu not in gpus.gpus:
            raise PlanDataError(f"{where}: gpu '{row.gpu}' has no price in the GPU price file "
                                f"(known: {', '.join(sorted(gpus.gpus))})")
        rows.append(row)
    if not rows:
        raise PlanDataError(f"{path}: 'rows' is empty")
    return rows
