"""A LoRA student served by llama.cpp: the base GGUF with ``adapter.gguf`` applied (``Llama(lora_path=…)``).

Answers are greedy; the confidence is the probability of the whole answer under the student (the product of its
tokens' probabilities, from llama.cpp's logprobs), which for a classification task is the probability of the label
it chose. A ``Llama`` is not thread-safe: one student object is used from one thread at a time (the gateway gives
each student its own worker thread).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenomy.distill.examples import Example
from tokenomy.distill.student import Prediction
from tokenomy.errors import DistillError

N_CTX = 1024


class LoraStudent:
    kind = "lora"

    def __init__(self, llama: Any, max_tokens: int, threads: int) -> None:
        self._llama = llama
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self.threads = threads

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], *, threads: int = 1) -> LoraStudent:
        lora = meta.get("lora") or {}
        adapter = directory / "adapter.gguf"
        base = Path(str(lora.get("base_gguf") or (meta.get("export") or {}).get("base_gguf") or ""))
        if not adapter.is_file() or not base.is_file():
            raise DistillError(f"{directory}: the LoRA student needs adapter.gguf and its base GGUF ({base}); was the "
                               "export step interrupted? rerun 'tokenomy distill train' with the same --out")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise DistillError("serving a LoRA student needs llama-cpp-python: pip install 'tokenomy[local]'") from exc
        try:
            llama = Llama(model_path=str(base), lora_path=str(adapter), n_ctx=N_CTX, n_threads=threads,
                          logits_all=True, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise DistillError(f"llama.cpp cannot load {base} with {adapter}: {exc}") from exc
        shape = (meta.get("data_manifest") or {}).get("shape")
        max_tokens = int(lora.get("answer_tokens") or 16) + 4 if shape == "classification" else 256
        return cls(llama, max_tokens, threads)

    def predict(self, examples: Sequence[Example]) -> list[Prediction]:
        return [self._one(e) for e in examples]

    def _one(self, example: Example) -> Prediction:
        with self._lock:
            result = self._llama.create_chat_completion(messages=[dict(m) for m in example.messages],
                                                        temperature=0.0, max_tokens=self._max_tokens, logprobs=True,
                                                        top_logprobs=1)
        choice = result["choices"][0]
        text = str(choice["message"].get("content") or "").strip()
        tokens = ((choice.get("logprobs") or {}).get("content")) or []
        total = sum(float(t.get("logprob") or 0.0) for t in tokens)
        return Prediction(text, math.exp(total) if tokens else 0.0)
