"""From a trained peft adapter to files llama.cpp serves, with llama.cpp's own converters.

The converters (``convert_lora_to_gguf.py``, ``convert_hf_to_gguf.py`` and the ``gguf-py`` + ``conversion``
packages they import) ship in the llama-cpp-python sdist, not in its wheel, and PyPI's ``gguf`` is too old for them.
``make distill-tools`` fetches the sdist with pip at install time and unpacks just those into
``~/.cache/tokenomy/llama-convert-<version>`` (or ``TOKENOMY_LLAMA_CONVERT``); nothing is fetched at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import DistillError

if TYPE_CHECKING:
    from tokenomy.distill.base_model import LoadedBase

LLAMA_VERSION = "0.3.36"
CONVERT_TIMEOUT_S = 900


def convert_tools() -> Path:
    root = Path(os.environ.get("TOKENOMY_LLAMA_CONVERT") or
                Path.home() / ".cache" / "tokenomy" / f"llama-convert-{LLAMA_VERSION}")
    if not (root / "convert_lora_to_gguf.py").is_file() or not (root / "gguf-py").is_dir():
        raise DistillError(f"llama.cpp's GGUF converters are not in {root}: run 'make distill-tools' (fetches the "
                           f"llama-cpp-python {LLAMA_VERSION} sdist with pip and unpacks them) or set "
                           "TOKENOMY_LLAMA_CONVERT")
    return root


def _run(script: str, args: list[str]) -> None:
    tools = convert_tools()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tools / "gguf-py"), str(tools)]),
           "NO_LOCAL_GGUF": ""}
    try:
        done = subprocess.run([sys.executable, str(tools / script), *args], env=env, capture_output=True, text=True,
                              timeout=CONVERT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DistillError(f"{script} did not finish: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DistillError(f"{script} failed ({done.returncode}): {' | '.join(tail)}")


def export_adapter(model: Any, base: LoadedBase, out: Path) -> dict[str, Any]:
    """Save the adapter (peft format) and convert it to ``adapter.gguf``; convert the base too when it is not a
    GGUF file already (q8_0: re-quantising a fine-tune to 4 bits destroys it, see docs/distill.md)."""
    adapter_dir = out / "adapter"
    model.save_pretrained(str(adapter_dir))
    adapter_gguf = out / "adapter.gguf"
    _run("convert_lora_to_gguf.py", ["--base", str(base.hf_dir), "--outtype", "f16", "--outfile",
                                     str(adapter_gguf), str(adapter_dir)])
    result: dict[str, Any] = {"adapter": str(adapter_dir), "adapter_gguf": str(adapter_gguf),
                              "adapter_gguf_bytes": adapter_gguf.stat().st_size}
    if base.gguf_path is None:
        base_gguf = base.hf_dir / "base-q8_0.gguf"
        if not base_gguf.is_file():
            _run("convert_hf_to_gguf.py", ["--outtype", "q8_0", "--outfile", str(base_gguf), str(base.hf_dir)])
        base.gguf_path = base_gguf
        result["base_gguf"] = str(base_gguf)
    return result
