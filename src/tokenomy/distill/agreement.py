"""Whether a student's answer agrees with the teacher's, by the task's rule: what the gateway compares on shadow and
spot-check traffic, and what ``distill eval`` scores."""

from __future__ import annotations

import re

RULES = ("exact", "normalised", "final-answer")
_PUNCT = re.compile(r"[^\w\s]", re.U)


def _normalise(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def agrees(rule: str, student: str, teacher: str) -> bool:
    if rule == "exact":
        return student.strip() == teacher.strip()
    if rule == "final-answer":
        student, teacher = student.rsplit("####", 1)[-1], teacher.rsplit("####", 1)[-1]
    return _normalise(student) == _normalise(teacher)


def default_rule(shape: str) -> str:
    return "exact" if shape == "classification" else "normalised"
