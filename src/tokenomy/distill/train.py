"""``distill train``: a data directory in, a student directory out.

``auto`` picks the student by the task's shape and the time budget, and says why: classification-shaped answers get
the ``head`` (seconds to train, milliseconds to answer); free text needs a generative student, ``lora``. Both write
checkpoints under ``<out>/checkpoint`` and resume from them when the same command is run again after a kill; both
respect ``--max-minutes`` (the LoRA loop stops at the budget, saves, and exports what it has; the head's stages take
seconds to minutes, and its embedding cache is what a rerun reuses).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tokenomy.distill.examples import EVAL, TRAIN, Example, load_split, read_manifest
from tokenomy.errors import DistillError

STUDENTS = ("auto", "head", "plain", "lora")
CHECKPOINT = "checkpoint"


class Tracker(Protocol):
    """Progress for long work: one bar per stage, with a total, advanced as work is done."""

    def stage(self, description: str, total: int | None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def note(self, text: str) -> None: ...


class QuietTracker:
    def stage(self, description: str, total: int | None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Choice:
    student: str
    reason: str


def choose(student: str, manifest: dict[str, Any], train: Sequence[Example], max_minutes: float | None) -> Choice:
    shape = manifest.get("shape")
    labels = len(manifest.get("labels") or [])
    if student != "auto":
        if student in ("head", "plain") and shape != "classification":
            raise DistillError(f"--student {student}: the task's answers are {shape}, not classification-shaped; "
                               "use --student lora")
        return Choice(student, "asked for")
    if shape == "classification":
        return Choice("head", f"classification-shaped answers ({labels} labels): a head on sentence embeddings "
                              "trains in seconds and answers in milliseconds")
    from tokenomy.distill.lora import estimate_epoch_minutes

    epoch = estimate_epoch_minutes(train)
    budget = f"; one epoch is about {epoch:.0f} min on this CPU" if epoch else ""
    if max_minutes is not None and epoch and epoch > max_minutes:
        budget += f", more than --max-minutes {max_minutes:g}: it will stop early and export what it learned"
    return Choice("lora", f"free-text answers: needs a generative student (LoRA on the base model){budget}")


def train_student(data: Path, out: Path, *, student: str = "auto", base: str | None = None,
                  max_minutes: float | None = None, tracker: Tracker | None = None,
                  threads: int = 2) -> dict[str, Any]:
    """Train and write the student; returns its ``student.json`` contents."""
    tracker = tracker or QuietTracker()
    if student not in STUDENTS:
        raise DistillError(f"--student {student!r}: expected one of {', '.join(STUDENTS)}")
    if max_minutes is not None and max_minutes <= 0:
        raise DistillError(f"--max-minutes must be > 0, got {max_minutes:g}")
    out = out.resolve()
    manifest = read_manifest(data)
    train = load_split(data, TRAIN)
    load_split(data, EVAL)  # refuse a directory without its held-out split before spending minutes
    choice = choose(student, manifest, train, max_minutes)
    tracker.note(f"student: {choice.student} ({choice.reason})")
    started = time.monotonic()
    meta: dict[str, Any] = {"kind": "lora" if choice.student == "lora" else "head", "task": manifest.get("task"),
                            "why": choice.reason, "data": str(data.resolve()), "data_manifest": manifest,
                            "train_examples": len(train), "trained_at": int(time.time()), "threads": threads}
    if choice.student == "lora":
        from tokenomy.distill.lora import train_lora

        deadline = started + max_minutes * 60 if max_minutes else None
        meta.update(train_lora(train, out, base=base, deadline=deadline, tracker=tracker, threads=threads))
    else:
        meta.update(_train_head(train, out, choice.student, tracker))
    meta["train_minutes"] = round((time.monotonic() - started) / 60, 3)
    from tokenomy.distill.student import write_student

    write_student(out, meta)
    return meta


def _train_head(train: Sequence[Example], out: Path, mode: str, tracker: Tracker) -> dict[str, Any]:
    from tokenomy.distill.embedding import CachedEmbedder
    from tokenomy.distill.head import train_head
    from tokenomy.distill.student import save_head

    embed = CachedEmbedder.minilm(out / CHECKPOINT / "embeddings.npz", tick=tracker.advance)
    if embed.loaded:
        tracker.note(f"resuming: {embed.loaded:,} embeddings from the last run's checkpoint")

    def step(text: str) -> None:
        if text.startswith("embedding"):
            tracker.stage(text, embed.missing(_texts(train, mode)))
        else:
            tracker.stage(text, None)

    model = train_head(train, embed, mode="plain" if mode == "plain" else "head", step=step)
    save_head(out, model)
    config = {"classes": model.classes, "mode": model.mode, "knn_weight": model.knn_weight,
              "temperature": model.temperature, **model.spec.config()}
    return {"head": config, "report": model.report, "cv_agreement": model.report["chosen"]["cv_agreement"]}


def _texts(train: Sequence[Example], mode: str) -> list[str]:
    """Every text the head will embed: the prompts and, for a structured task, each of their inputs."""
    from tokenomy.distill.parts import fit_schema, parts_for

    if mode == "plain":
        return [f"{e.system}\n{e.user}" for e in train]
    users = [e.user for e in train]
    parts = fit_schema(users)
    return users + ([p for u in users for p in parts_for(u, parts)] if parts > 1 else [])
