"""A trained student on disk, and the one seam every caller uses: ``Student.predict(examples)``.

```
student.json    format, kind (head | lora), task, the data manifest it was trained from, its training report
head.npz        (head) feature arrays, weights, kNN bank
adapter.gguf    (lora) the LoRA adapter for llama.cpp, on the base GGUF named in student.json
adapter/        (lora) the same adapter in peft's format (to merge, or to keep training)
checkpoint/     training state: embeddings cache (head), optimiser state and step (lora)
```
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tokenomy.distill.examples import Example
from tokenomy.errors import DistillError

if TYPE_CHECKING:
    from tokenomy.distill.features import Embed
    from tokenomy.distill.head import HeadModel
    from tokenomy.distill.lora_base import LoraBases

FORMAT = "tokenomy-student/1"
STUDENT, HEAD_WEIGHTS = "student.json", "head.npz"


@dataclass(frozen=True, slots=True)
class Prediction:
    answer: str
    confidence: float  # calibrated probability that the teacher would answer the same


class Student(Protocol):
    kind: str
    threads: int

    def predict(self, examples: Sequence[Example]) -> list[Prediction]:
        """One prediction per example, in order (blocking; CPU-bound)."""
        ...


def write_student(directory: Path, meta: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STUDENT + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, **meta}, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(directory / STUDENT)


def read_student(directory: Path) -> dict[str, Any]:
    path = directory / STUDENT
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DistillError(f"{directory}: no {STUDENT}; train a student with 'tokenomy distill train'") from exc
    except (OSError, ValueError) as exc:
        raise DistillError(f"cannot read {path}: {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("kind") not in ("head", "lora"):
        raise DistillError(f"{path}: not a tokenomy student (format {meta.get('format')!r})")
    return meta


def save_head(directory: Path, model: HeadModel) -> None:
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"spec_{k}": v for k, v in model.spec.arrays.items()}
    np.savez_compressed(directory / HEAD_WEIGHTS, coef=model.coef, intercept=model.intercept, bank=model.bank,
                        bank_labels=model.bank_labels, **arrays)


def load_head(directory: Path, meta: dict[str, Any]) -> HeadModel:
    import numpy as np

    from tokenomy.distill.features import FeatureSpec
    from tokenomy.distill.head import HeadModel

    config = meta["head"]
    try:
        with np.load(directory / HEAD_WEIGHTS) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise DistillError(f"{directory / HEAD_WEIGHTS}: cannot read the head's weights ({exc})") from exc
    spec = FeatureSpec(parts=int(config["parts"]), views=tuple(config["views"]),
                       arrays={k.removeprefix("spec_"): v for k, v in arrays.items() if k.startswith("spec_")})
    return HeadModel(classes=list(config["classes"]), mode=str(config["mode"]), spec=spec, coef=arrays["coef"],
                     intercept=arrays["intercept"], knn_weight=float(config["knn_weight"]),
                     bank=np.asarray(arrays["bank"], dtype=np.float32),
                     bank_labels=arrays["bank_labels"], temperature=float(config["temperature"]))


class HeadStudent:
    kind = "head"

    def __init__(self, model: HeadModel, embed: Embed, threads: int = 1) -> None:
        self.model = model
        self._embed = embed
        self.threads = threads

    def predict(self, examples: Sequence[Example]) -> list[Prediction]:
        if not examples:
            return []
        probs = self.model.probabilities(examples, self._embed)
        best = probs.argmax(axis=1)
        return [Prediction(self.model.classes[int(i)], float(probs[row, i])) for row, i in enumerate(best)]


def load_student(directory: Path, *, threads: int = 1, bases: LoraBases | None = None) -> Student:
    """The student in ``directory``, ready to predict (loads its models: seconds). ``bases``: LoRA students loaded
    through the same ``LoraBases`` share one loaded base model."""
    meta = read_student(directory)
    if meta["kind"] == "head":
        from tokenomy.embeddings.minilm import MiniLMEmbedder

        embedder = MiniLMEmbedder.load(threads=threads)
        return HeadStudent(load_head(directory, meta), lambda texts: embedder.embed(texts).vectors, threads)
    from tokenomy.distill.lora_student import LoraStudent

    return LoraStudent.load(directory, meta, threads=threads, bases=bases)
