"""Load the LoRA student's base model: the bundled SmolLM2 GGUF (dequantised by transformers), another GGUF file,
or a Hugging Face directory; in 4 bits (QLoRA) on a CUDA GPU with bitsandbytes.

llama.cpp's ``convert_lora_to_gguf.py`` needs the base as a Hugging Face directory, so a GGUF base is saved once as
one (fp32 safetensors, ~540 MB for SmolLM2-135M) under ``~/.cache/tokenomy/distill/`` (``TOKENOMY_DISTILL_CACHE``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.errors import DistillError


@dataclass
class LoadedBase:
    model: Any
    tokenizer: Any
    hf_dir: Path  # a Hugging Face directory of the base (for the converter)
    gguf_path: Path | None  # the base as llama.cpp serves it (None: to be converted at export)
    quantised: bool

    def describe(self) -> str:
        return str(self.gguf_path or self.hf_dir)


def cache_dir() -> Path:
    return Path(os.environ.get("TOKENOMY_DISTILL_CACHE") or Path.home() / ".cache" / "tokenomy" / "distill")


def _resolve(base: str | None) -> tuple[Path | None, Path | None]:
    """(gguf file, hf dir): exactly one is set."""
    if base is None:
        from tokenomy.providers.local_llama import bundled_model_path

        return bundled_model_path(), None
    path = Path(base).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path, None
    if path.is_dir() and (path / "config.json").is_file():
        return None, path
    raise DistillError(f"--base {base}: expected a .gguf file or a Hugging Face model directory (with config.json)")


def _hf_copy(gguf: Path) -> Path:
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / f"base-{gguf.stem}-{digest}"


def load_base(base: str | None, *, quantise_4bit: bool) -> LoadedBase:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # our own bar is on screen
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    gguf, hf_dir = _resolve(base)
    try:
        if gguf is not None:
            hf_dir = _hf_copy(gguf)
            if not (hf_dir / "config.json").is_file():
                model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
                tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model.hf_quantizer = None  # type: ignore[assignment]  # the GGUF "quantizer" refuses save_pretrained; weights are fp32 now
                if hasattr(model.config, "quantization_config"):
                    del model.config.quantization_config
                tmp = hf_dir.with_name(hf_dir.name + ".tmp")
                model.save_pretrained(str(tmp))
                tokenizer.save_pretrained(str(tmp))
                tmp.replace(hf_dir)
        assert hf_dir is not None
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
        if quantise_4bit:
            model = _load_4bit(hf_dir)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype="float32")
    except (OSError, ValueError) as exc:
        raise DistillError(f"cannot load the base model {base or gguf}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedBase(model, tokenizer, hf_dir, gguf, quantise_4bit)


def _load_4bit(hf_dir: Path) -> Any:
    """QLoRA: NF4 weights, bf16 compute, on the GPU. Needs bitsandbytes (not installed on CPU machines)."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise DistillError("QLoRA on a GPU needs bitsandbytes: pip install bitsandbytes") from exc
    options: dict[str, Any] = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                               "bnb_4bit_compute_dtype": torch.bfloat16}
    config = BitsAndBytesConfig(**options)  # type: ignore[no-untyped-call]
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), quantization_config=config, device_map="auto")
    return prepare_model_for_kbit_training(model)  # type: ignore[no-untyped-call]
