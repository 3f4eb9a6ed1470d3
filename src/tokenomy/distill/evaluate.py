"""``distill eval``: how often the student gives the teacher's answer on the held-out split, and at what cost.

Agreement rules, named in the output:
- ``exact``: the student's answer equals the teacher's (both stripped) — the rule for classification;
- ``normalised``: equal after case folding, collapsing whitespace and dropping punctuation — the default for free
  text;
- ``final-answer``: equal after ``normalised`` on the text after the last ``####`` (GSM8K style), else the whole.

The confidence-coverage curve: for each threshold, the share of requests the student would answer (confidence ≥
threshold) and its agreement on those; in a cascade the rest go to the teacher, so the cascade's agreement is
``share × agreement + (1 − share)`` and its cost ``student + (1 − share) × teacher`` (the student runs on every
request). Latency is measured one request at a time (how the gateway calls it), and the student's cost follows
from it (:mod:`tokenomy.distill.costs`).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from tokenomy.distill.agreement import RULES, agrees, default_rule
from tokenomy.distill.costs import cpu_rate, student_usd_per_1k
from tokenomy.distill.examples import Example
from tokenomy.distill.student import Prediction, Student
from tokenomy.errors import DistillError

THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)
LATENCY_SAMPLE = 40


def coverage_curve(predictions: Sequence[Prediction], agreed: Sequence[bool], student_usd: Decimal,
                   teacher_usd: Decimal) -> list[dict[str, Any]]:
    rows = []
    n = len(predictions)
    for threshold in THRESHOLDS:
        answered = [a for p, a in zip(predictions, agreed, strict=True) if p.confidence >= threshold]
        share = len(answered) / n if n else 0.0
        agreement = sum(answered) / len(answered) if answered else None
        cascade = share * (agreement or 0.0) + (1 - share)
        rows.append({"threshold": threshold, "coverage": round(share, 4),
                     "agreement": None if agreement is None else round(agreement, 4),
                     "cascade_agreement": round(cascade, 4),
                     "cascade_usd_per_1k": float(student_usd + Decimal(str(1 - share)) * teacher_usd)})
    return rows


def pick_threshold(curve: Sequence[dict[str, Any]], min_agreement: float) -> dict[str, Any] | None:
    """The lowest threshold whose answered share agrees at least ``min_agreement`` (most coverage)."""
    fit = [r for r in curve if r["agreement"] is not None and r["agreement"] >= min_agreement]
    return max(fit, key=lambda r: (r["coverage"], -r["threshold"])) if fit else None


def _latencies(student: Student, examples: Sequence[Example]) -> list[float]:
    out = []
    for example in examples[:LATENCY_SAMPLE]:
        start = time.perf_counter()
        student.predict([example])
        out.append(time.perf_counter() - start)
    return out


def evaluate(student: Student, examples: Sequence[Example], manifest: dict[str, Any], *, rule: str | None = None,
             train_answers: Sequence[str] = (), tick: Callable[[int], None] | None = None) -> dict[str, Any]:
    if not examples:
        raise DistillError("the eval split is empty")
    rule = rule or default_rule(str(manifest.get("shape")))
    if rule not in RULES:
        raise DistillError(f"--rule {rule!r}: expected one of {', '.join(RULES)}")
    predictions: list[Prediction] = []
    for start in range(0, len(examples), 64):
        batch = examples[start:start + 64]
        predictions.extend(student.predict(batch))
        if tick is not None:
            tick(len(batch))
    agreed = [agrees(rule, p.answer, e.answer) for p, e in zip(predictions, examples, strict=True)]
    latencies = _latencies(student, examples)
    rate = cpu_rate()
    per_request_s = statistics.median(latencies)
    student_usd = student_usd_per_1k(per_request_s, student.threads, rate)
    teacher_usd = Decimal(str(manifest.get("teacher_usd_per_1k") or 0))
    majority = Counter(train_answers).most_common(1)[0][0] if train_answers else None
    result: dict[str, Any] = {
        "task": manifest.get("task"), "student": student.kind, "rule": rule, "n": len(examples),
        "agreement": round(sum(agreed) / len(agreed), 4),
        "majority_answer": majority,
        "majority_agreement": None if majority is None else round(
            sum(agrees(rule, majority, e.answer) for e in examples) / len(examples), 4),
        "coverage": coverage_curve(predictions, agreed, student_usd, teacher_usd),
        "latency_ms_p50": round(per_request_s * 1000, 2),
        "latency_ms_p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))] * 1000, 2),
        "student_threads": student.threads,
        "student_usd_per_1k": float(student_usd), "teacher_usd_per_1k": float(teacher_usd),
        "cost_ratio": float(student_usd / teacher_usd) if teacher_usd else None,
        "student_cost_rule": f"median single-request latency x {student.threads} thread(s) x {rate.source}",
        "teacher_models": manifest.get("teacher_models"),
    }
    return result
