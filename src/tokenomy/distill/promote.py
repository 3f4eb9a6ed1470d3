"""``distill promote``: put a student in the registry (:mod:`tokenomy.distill.registry`) in shadow mode, with the
confidence threshold it will answer at once live.

The threshold comes from the student's own eval split: the lowest confidence at which the requests it would answer
agree with the teacher at least ``min_agreement`` (the most coverage at that agreement). A student that reaches
``min_agreement`` at no threshold is refused. Its CPU price (for its ledger rows) is the measured latency turned
into a per-token rate: the per-vCPU hourly price × its threads, over (mean tokens per request ÷ median latency).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.distill.costs import cpu_rate
from tokenomy.distill.evaluate import evaluate, pick_threshold
from tokenomy.distill.examples import EVAL, TRAIN, load_split, read_manifest
from tokenomy.distill.registry import Promotion, upsert
from tokenomy.distill.student import load_student, read_student
from tokenomy.errors import DistillError


def promote(student_dir: Path, registry: Path, *, min_agreement: float, data: Path | None = None,
            shadow_sample: float = 0.25, spot_check: float = 0.05, min_checks: int = 50,
            threshold: float | None = None, serve_on: str | None = None) -> dict[str, Any]:
    for name, value in (("--min-agreement", min_agreement), ("--shadow-sample", shadow_sample),
                        ("--spot-check", spot_check)):
        if not 0 < value <= 1:
            raise DistillError(f"{name} must be in (0, 1], got {value:g}")
    if min_checks < 1:
        raise DistillError(f"--min-checks must be >= 1, got {min_checks}")
    meta = read_student(student_dir)
    data = data or Path(str(meta.get("data") or ""))
    manifest = read_manifest(data)
    if manifest.get("where") != (meta.get("data_manifest") or {}).get("where"):
        raise DistillError(f"{data} is not the task this student was trained on ({meta.get('task')})")
    threads = int(meta.get("threads") or 1)
    student = load_student(student_dir, threads=threads)
    examples = load_split(data, EVAL)
    result = evaluate(student, examples, manifest, train_answers=[e.answer for e in load_split(data, TRAIN)])
    point = pick_threshold(result["coverage"], min_agreement)
    if threshold is None:
        if point is None:
            best = max((r for r in result["coverage"] if r["agreement"] is not None), key=lambda r: r["agreement"])
            raise DistillError(f"the student reaches agreement {min_agreement:g} at no confidence threshold on its "
                               f"eval split (best {best['agreement']:.3f} above {best['threshold']:.2f}, answering "
                               f"{best['coverage']:.0%}); train on more traffic or lower --min-agreement")
        threshold = float(point["threshold"])
    from tokenomy.tokens.counter import TokenCounter

    counter = TokenCounter()
    teacher = next(iter(manifest.get("teacher_models") or {"gpt-4o": 0}))
    tokens = sum(counter.count_messages([dict(m) for m in e.messages], teacher) + counter.count_text(e.answer,
                 teacher) for e in examples) / len(examples)
    rate = cpu_rate()
    tokens_per_s = Decimal(str(round(tokens / max(result["latency_ms_p50"] / 1000, 1e-6), 3)))
    promotion = Promotion(task=str(meta["task"]), path=str(student_dir.resolve()), where=str(manifest["where"]),
                          kind=str(meta["kind"]), rule=str(result["rule"]), min_agreement=min_agreement,
                          threshold=threshold, shadow_sample=shadow_sample, spot_check=spot_check,
                          min_checks=min_checks, gpu_hour_usd=str(rate.usd_per_vcpu_hour * threads),
                          tokens_per_s=str(tokens_per_s), serve_on=serve_on)
    promotion.move("shadow", eval_agreement=result["agreement"], threshold=threshold,
                   eval_coverage=point["coverage"] if point else None, reason="promoted")
    upsert(registry, promotion)
    chosen = next(r for r in result["coverage"] if r["threshold"] == threshold) if point else None
    per_day = float(manifest.get("requests_per_day") or 0)
    saving = None
    if chosen is not None:
        saving = (result["teacher_usd_per_1k"] - chosen["cascade_usd_per_1k"]) * per_day * 30 / 1000
    return {"task": promotion.task, "deployment": promotion.deployment, "where": promotion.where,
            "state": promotion.state, "registry": str(registry), "promoted_at": promotion.promoted_at,
            "min_agreement": min_agreement,
            "threshold": threshold, "eval": {k: result[k] for k in ("agreement", "n", "rule", "student_usd_per_1k",
                                                                    "teacher_usd_per_1k", "cost_ratio")},
            "at_threshold": chosen, "requests_per_day": per_day, "monthly_saving_usd_live": saving,
            "shadow_sample": shadow_sample, "min_checks": min_checks, "spot_check": spot_check}
