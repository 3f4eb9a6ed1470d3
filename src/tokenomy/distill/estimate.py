"""``distill estimate``: what the big version costs — QLoRA of an N-billion-parameter base on a rented GPU — and
what it saves at the task's logged volume. Every input is printed with the result.

Training time: tokens = examples × tokens per example × epochs; GPU-seconds = tokens × FLOPs per token ÷ (peak
bf16 dense FLOP/s × MFU). FLOPs per token = 6 × parameters (forward + backward; LoRA skips the frozen weights'
gradients but QLoRA dequantises them on every pass, so 6N is kept as the round figure). MFU (the share of peak a
QLoRA run reaches: small batches, 4-bit dequantisation, adapters) = 0.30, an assumption; published QLoRA runs are
in the 20–40 % range. Peaks: the vendors' bf16 dense (no sparsity) datasheet figures. Hourly prices: the planner's
``plan/gpus.json`` (on-demand; each with its source).

Serving: the fine-tuned model on the planner's cheapest 8B-class row (``plan/throughput.json``), one replica at
least (it runs all month), more when the logged volume needs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokenomy.errors import DistillError

MFU = 0.30
PEAK_BF16_TFLOPS = {"H100": 989.0, "A100": 312.0, "L4": 121.0}  # dense, SXM for H100/A100 (datasheets)
PARAMS_B = {"0.135b": 0.135, "1b": 1.0, "3b": 3.2, "7b": 7.0, "8b": 8.0, "13b": 13.0, "70b": 70.0}
MEMORY_GB_NEEDED = {"0.135b": 2, "1b": 4, "3b": 8, "7b": 14, "8b": 16, "13b": 24, "70b": 48}  # QLoRA, rough
SEED_CLAIM = "fine-tuned Llama 3 8B via QLoRA on one A100 for ~$50"
SEED_USD = Decimal(50)
HOURS_PER_MONTH = 730


@dataclass(frozen=True, slots=True)
class GpuRun:
    gpu: str
    tokens_per_s: float
    hours: float
    usd: Decimal
    usd_per_hour: Decimal
    fits: bool


def _params(base: str) -> float:
    key = base.lower().removesuffix("-instruct")
    if key in PARAMS_B:
        return PARAMS_B[key]
    try:
        return float(key.removesuffix("b"))
    except ValueError as exc:
        raise DistillError(f"--base {base!r}: expected a size such as 1b, 8b, 70b") from exc


def training_runs(base: str, tokens: float) -> list[GpuRun]:
    from tokenomy.plan.data import load_gpus

    params = _params(base) * 1e9
    gpus = load_gpus(None).gpus
    runs = []
    for name, peak in PEAK_BF16_TFLOPS.items():
        tokens_per_s = peak * 1e12 * MFU / (6 * params)
        hours = tokens / tokens_per_s / 3600
        price = gpus[name].on_demand.usd_per_hour
        need = MEMORY_GB_NEEDED.get(base.lower(), math.ceil(params / 1e9 * 0.7 + 8))
        runs.append(GpuRun(name, tokens_per_s, hours, price * Decimal(str(hours)), price,
                           gpus[name].memory_gb >= need))
    return runs


def serving(manifest: dict[str, Any] | None, input_tokens: int, output_tokens: int) -> dict[str, Any] | None:
    """Monthly cost of serving an 8B-class student at the logged volume vs the teacher's logged cost."""
    if not manifest:
        return None
    from tokenomy.plan.data import load_gpus, load_throughput

    gpus = load_gpus(None)
    rows = [r for r in load_throughput(None, gpus) if r.model_size in ("7B", "8B") and r.gpus == 1]
    per_day = float(manifest.get("requests_per_day") or 0)
    teacher_month = Decimal(str(manifest.get("teacher_usd_per_1k") or 0)) * Decimal(str(per_day)) * 30 / 1000

    def monthly(r: Any) -> Decimal:
        busy = per_day * r.seconds_per_request(input_tokens, output_tokens) / 86_400  # replicas busy on average
        price: Decimal = gpus.gpus[r.gpu].on_demand.usd_per_hour
        replicas: int = max(1, math.ceil(busy))
        return Decimal(price) * HOURS_PER_MONTH * replicas

    best = min(rows, key=monthly)
    student_month = monthly(best)
    return {"requests_per_day": per_day, "teacher_usd_per_month": float(teacher_month),
            "student_usd_per_month": float(student_month),
            "student_on": f"{best.model_size} {best.precision} on {best.gpu} ({best.example_model})",
            "saving_usd_per_month": float(teacher_month - student_month),
            "note": "one replica runs all month; below its cost the saving is negative: keep such a task on a "
                    "small CPU student (distill train --student head|lora) or a shared replica"}


def estimate(base: str, examples: int, *, tokens_per_example: int = 500, epochs: int = 3,
             manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    if examples <= 0 or tokens_per_example <= 0 or epochs <= 0:
        raise DistillError("--examples, --tokens-per-example and --epochs must be > 0")
    tokens = float(examples) * tokens_per_example * epochs
    runs = training_runs(base, tokens)
    a100 = next(r for r in runs if r.gpu == "A100")
    seed_tokens = float(SEED_USD / a100.usd_per_hour) * 3600 * a100.tokens_per_s
    seed_examples = int(seed_tokens / tokens_per_example / epochs)
    verdict = (f"${a100.usd:.2f} on one A100 for {examples:,} examples x {tokens_per_example} tokens x {epochs} "
               f"epochs; $50 buys {float(SEED_USD / a100.usd_per_hour):.1f} A100-hours = about {seed_examples:,} such "
               "examples")
    holds = a100.usd <= SEED_USD
    return {
        "base": base, "params_billion": _params(base), "examples": examples, "tokens_per_example": tokens_per_example,
        "epochs": epochs, "training_tokens": int(tokens), "assumptions": {
            "flops_per_token": "6 x parameters", "mfu": MFU, "peak_bf16_dense_tflops": PEAK_BF16_TFLOPS,
            "prices": "plan/gpus.json on-demand"},
        "runs": [{"gpu": r.gpu, "tokens_per_s": round(r.tokens_per_s), "gpu_hours": round(r.hours, 2),
                  "usd": float(round(r.usd, 2)), "usd_per_hour": float(r.usd_per_hour), "fits_in_memory": r.fits}
                 for r in runs],
        "seed_claim": {"claim": SEED_CLAIM, "holds_at_these_examples": holds,
                       "verdict": ("holds (at most $50): " if holds else "does not hold (over $50): ") + verdict,
                       "examples_for_50_usd": seed_examples},
        "serving": serving(manifest, tokens_per_example, 16),
    }
