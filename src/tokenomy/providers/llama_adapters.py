"""LoRA adapters on one loaded llama.cpp model: each GGUF adapter is loaded once (``llama_adapter_lora_init``) and
the one a request needs is set on the context before it runs (``llama_set_adapters_lora``; none = the base alone).

A switch costs two things, measured in ``bench/adapter_switch.py``: llama.cpp rebuilds its compute graph for the new
adapter set, and the KV cache computed under the previous adapter is dropped (``Llama.reset``), so the next prompt
is evaluated from its first token instead of reusing a shared prefix. Requests for the same adapter in a row pay
neither. Not thread-safe: used from the model's one worker thread.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from tokenomy.errors import ConfigError, UpstreamError


class LoraSet:
    def __init__(self, llama: Any, adapters: dict[str, tuple[Path, float]], *, deployment: str) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llama = llama
        self._deployment = deployment
        self._handles: dict[str, tuple[Any, float]] = {}
        for name, (path, scale) in adapters.items():
            if not path.is_file():
                raise ConfigError(f"deployment '{deployment}': adapter file not found: {path}")
            handle = llama_cpp.llama_adapter_lora_init(llama._model.model, str(path).encode("utf-8"))
            if not handle:
                raise ConfigError(f"deployment '{deployment}': llama.cpp cannot load adapter {path} on this base "
                                  "(another architecture or size?)")
            self._handles[name] = (handle, scale)
        self.current: str | None = None
        self.switches = 0

    @property
    def names(self) -> list[str]:
        return list(self._handles)

    def apply(self, name: str | None) -> bool:
        """Set ``name``'s adapter on the context (None, or a name not loaded here: the base alone). True when that
        changed the context: its KV cache is dropped, as it was computed under other weights."""
        name = name if name in self._handles else None
        if name == self.current:
            return False
        ctx = self._llama._ctx.ctx
        if name is None:
            code = self._lib.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            handle, scale = self._handles[name]
            adapters = (self._lib.llama_adapter_lora_p_ctypes * 1)(handle)
            scales = (ctypes.c_float * 1)(scale)
            code = self._lib.llama_set_adapters_lora(ctx, adapters, 1, scales)
        if code != 0:
            raise UpstreamError(f"llama.cpp could not set adapter {name!r} (code {code})", deployment=self._deployment)
        self._llama.reset()
        self.current = name
        self.switches += 1
        return True
