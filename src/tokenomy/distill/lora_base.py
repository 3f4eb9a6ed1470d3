"""One loaded base model shared by every LoRA student on it: the gateway serves several students from one
in-process llama.cpp model, switching adapters per request (:class:`tokenomy.providers.llama_adapters.LoraSet`),
instead of loading the base once per student.

``LoraBases`` (one per ``StudentSet``) hands out one ``LoraBase`` per base GGUF; a ``LoraBase`` serialises its
callers (a llama.cpp model runs one sequence at a time) and applies the caller's adapter before each generation.
The switch cost is measured in ``bench/adapter_switch.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tokenomy.errors import ConfigError, DistillError

N_CTX = 1024


class LoraBase:
    def __init__(self, base: Path, threads: int) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise DistillError("serving a LoRA student needs llama-cpp-python: pip install 'tokenomy[local]'") from exc
        try:
            self.llama = Llama(model_path=str(base), n_ctx=N_CTX, n_threads=threads, logits_all=True, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise DistillError(f"llama.cpp cannot load {base}: {exc}") from exc
        self.path = base
        self._lock = threading.Lock()
        self._files: dict[str, tuple[Path, float]] = {}
        self._adapters: Any = None

    def add(self, name: str, adapter: Path) -> None:
        """Load ``adapter`` on this base under ``name`` (all adapters are loaded once, up front)."""
        from tokenomy.providers.llama_adapters import LoraSet

        with self._lock:
            self._files[name] = (adapter, 1.0)
            try:
                self._adapters = LoraSet(self.llama, self._files, deployment=f"students on {self.path.name}")
            except ConfigError as exc:
                del self._files[name]
                raise DistillError(f"llama.cpp cannot load {adapter} on {self.path}: {exc.message}") from exc

    @property
    def switches(self) -> int:
        return self._adapters.switches if self._adapters is not None else 0

    def chat(self, adapter: str, **kwargs: Any) -> Any:
        with self._lock:
            self._adapters.apply(adapter)
            return self.llama.create_chat_completion(**kwargs)


class LoraBases:
    """The bases loaded for one set of students, by GGUF path."""

    def __init__(self) -> None:
        self._bases: dict[Path, LoraBase] = {}
        self._lock = threading.Lock()

    def get(self, base: Path, threads: int) -> LoraBase:
        with self._lock:
            key = base.resolve()
            if key not in self._bases:
                self._bases[key] = LoraBase(key, threads)
            return self._bases[key]

    def __len__(self) -> int:
        return len(self._bases)
