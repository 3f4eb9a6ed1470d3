"""A LoRA student served by llama.cpp: the base GGUF with ``adapter.gguf`` applied — on a base loaded for this
student alone, or on one shared by every student of that base (:mod:`tokenomy.distill.lora_base`).

Answers are greedy; the confidence is the probability of the whole answer under the student (the product of its
tokens' probabilities, from llama.cpp's logprobs), which for a classification task is the probability of the label
it chose. A ``Llama`` is not thread-safe: one student object is used from one thread at a time (the gateway gives
each student its own worker thread).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenomy.distill.examples import Example
from tokenomy.distill.lora_base import LoraBase, LoraBases
from tokenomy.distill.student import Prediction
from tokenomy.errors import DistillError


class LoraStudent:
    kind = "lora"

    def __init__(self, base: LoraBase, adapter: str, max_tokens: int, threads: int) -> None:
        self.base = base
        self.adapter = adapter
        self._max_tokens = max_tokens
        self.threads = threads

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], *, threads: int = 1,
             bases: LoraBases | None = None) -> LoraStudent:
        """``bases``: share the base model with the other students loaded through it (else one of its own)."""
        lora = meta.get("lora") or {}
        adapter = directory / "adapter.gguf"
        base = Path(str(lora.get("base_gguf") or (meta.get("export") or {}).get("base_gguf") or ""))
        if not adapter.is_file() or not base.is_file():
            raise DistillError(f"{directory}: the LoRA student needs adapter.gguf and its base GGUF ({base}); was the "
                               "export step interrupted? rerun 'tokenomy distill train' with the same --out")
        shared = (bases if bases is not None else LoraBases()).get(base, threads)
        name = str(directory.resolve())
        shared.add(name, adapter)
        shape = (meta.get("data_manifest") or {}).get("shape")
        max_tokens = int(lora.get("answer_tokens") or 16) + 4 if shape == "classification" else 256
        return cls(shared, name, max_tokens, threads)

    def predict(self, examples: Sequence[Example]) -> list[Prediction]:
        return [self._one(e) for e in examples]

    def _one(self, example: Example) -> Prediction:
        result = self.base.chat(self.adapter, messages=[dict(m) for m in example.messages], temperature=0.0,
                                max_tokens=self._max_tokens, logprobs=True, top_logprobs=1)
        choice = result["choices"][0]
        text = str(choice["message"].get("content") or "").strip()
        tokens = ((choice.get("logprobs") or {}).get("content")) or []
        total = sum(float(t.get("logprob") or 0.0) for t in tokens)
        return Prediction(text, math.exp(total) if tokens else 0.0)
