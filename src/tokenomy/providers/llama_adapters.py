"""LoRA adapters on one loaded llama.cpp model: each GGUF adapter is loaded once (``llama_adapter_lora_init``) and
the one a request needs is set on the context before it runs (``llama_set_adapters_lora``; none = the base alone).

The KV cache computed under one adapter is wrong under another (a LoRA on the attention projections changes K and
V), so a switch would otherwise throw away the prefix cache and evaluate the next prompt from its first token. Each
adapter (and the base) keeps a snapshot of its own sequence instead — its KV cells and tokens
(``llama_state_seq_get_data`` when switching away, ``llama_state_seq_set_data`` when switching back; not
``Llama.save_state``, which also copies every row of logits, tens of MB): a request sees the prefix cache its adapter
left, for a copy of the used KV cells (``snapshot_bytes``: 23 KB a token for SmolLM2-135M). Measured in
``bench/adapter_switch.py``. Not thread-safe: used from the model's one worker thread.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
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
        self._states: dict[str | None, _Snapshot] = {}  # adapter (None: the base) -> its sequence when left

    @property
    def snapshot_bytes(self) -> int:
        return sum(state.size for state in self._states.values())

    @property
    def names(self) -> list[str]:
        return list(self._handles)

    def apply(self, name: str | None) -> bool:
        """Set ``name``'s adapter on the context (None, or a name not loaded here: the base alone), with the context
        that adapter left (or an empty one). True when that changed the adapter."""
        name = name if name in self._handles else None
        if name == self.current:
            return False
        if self._llama.n_tokens:
            self._states[self.current] = self._snapshot()
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
        state = self._states.pop(name, None)
        self._llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        self._llama.reset()
        if state is not None:
            self._restore(state)
        self.current = name
        self.switches += 1
        return True

    def _snapshot(self) -> _Snapshot:
        ctx, n = self._llama._ctx.ctx, self._llama.n_tokens
        size = self._lib.llama_state_seq_get_size(ctx, 0)
        data = (ctypes.c_uint8 * size)()
        written = self._lib.llama_state_seq_get_data(ctx, data, size, 0)
        return _Snapshot(data, int(written), self._llama.input_ids[:n].copy())

    def _restore(self, state: _Snapshot) -> None:
        if not self._lib.llama_state_seq_set_data(self._llama._ctx.ctx, state.data, state.size, 0):
            return  # could not restore: the next prompt is evaluated from its first token
        n = len(state.tokens)
        self._llama.input_ids[:n] = state.tokens
        self._llama.n_tokens = n


@dataclass(frozen=True, slots=True)
class _Snapshot:
    data: Any  # ctypes uint8 array
    size: int
    tokens: Any  # numpy int array: the tokens whose KV cells ``data`` holds
