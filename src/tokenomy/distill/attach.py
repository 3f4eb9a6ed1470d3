"""``distill promote DIR --to DEPLOYMENT``: a promoted LoRA student becomes an adapter on a deployment's shared base,
routable by its name (``distill/<task>``) like any model, instead of a model loaded for it alone.

- ``provider: local`` (the in-process tier): the student's ``adapter.gguf`` is loaded on the tier's one model; the
  student must have been trained on that same base GGUF (checked).
- an upstream server (vLLM, llama.cpp, SGLang): the server loads the adapter itself — the returned ``upstream`` line
  says how (vLLM ``--lora-modules distill/<task>=<dir>/adapter``, the peft copy; llama.cpp ``--lora
  <dir>/adapter.gguf``); the base cannot be checked from here.

The attachment is written to ``adapters.json`` beside the registry (config/attachments.py) and takes effect when the
gateway starts. The student's shadow/live decisions still use its own predictions in the gateway (all LoRA students of
one base on one loaded model, distill/lora_base.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenomy.config.adapters import AdapterConfig
from tokenomy.config.attachments import attach, attachments_path
from tokenomy.config.settings import DeploymentConfig, Settings, data_home
from tokenomy.distill.student import read_student
from tokenomy.errors import DistillError


def adapter_for(student_dir: Path, deployment: str, settings: Settings,
                env: Mapping[str, str]) -> tuple[DeploymentConfig, AdapterConfig, str | None]:
    """The deployment, the adapter the student becomes on it, and how its upstream loads it (None: in-process).
    Checked before anything is evaluated or written."""
    from tokenomy.providers.registry import resolve_deployments

    meta = read_student(student_dir)
    if meta["kind"] != "lora":
        raise DistillError(f"{student_dir} is a {meta['kind']} student: only a LoRA student becomes an adapter on a "
                           "shared base (a head student runs in the gateway itself; promote it without --to)")
    adapter_file = (student_dir / "adapter.gguf").resolve()
    base = Path(str((meta.get("lora") or {}).get("base_gguf") or ""))
    if not adapter_file.is_file():
        raise DistillError(f"{student_dir}: no adapter.gguf; rerun 'tokenomy distill train' with the same --out")
    bases = [c for c in resolve_deployments(settings, env) if c.adapter_of is None and c.kind == "chat"]
    target = next((c for c in bases if c.name == deployment), None)
    if target is None:
        raise DistillError(f"no chat deployment named {deployment!r}; configured: {', '.join(c.name for c in bases)}")
    name = f"distill/{meta['task']}"
    if target.provider == "local":
        from tokenomy.providers.local_llama import bundled_model_path

        served = Path(target.model_path).expanduser() if target.model_path else bundled_model_path()
        if not base.is_file() or served.resolve() != base.resolve():
            raise DistillError(f"the student was trained on {base}; deployment {deployment!r} serves {served}")
        return target, AdapterConfig(name=name, path=str(adapter_file)), None
    if target.provider == "vllm":
        peft = (student_dir / "adapter").resolve()
        how = f"vllm serve {target.sent_model} --enable-lora --lora-modules {name}={peft}"
    elif target.provider == "llamacpp":
        how = (f"llama-server --lora {adapter_file} --lora-init-without-apply (then set this adapter's lora_id), or a "
               f"llama_cpp.server model entry {{model_alias: {name}, lora_path: {adapter_file}}}")
    else:
        how = f"load {adapter_file} (or the peft copy in {student_dir / 'adapter'}) on the server as {name!r}"
    return target, AdapterConfig(name=name), how


def attach_student(student_dir: Path, deployment: str, settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    target, adapter, how = adapter_for(student_dir, deployment, settings, env)
    path = attachments_path(settings.distill.registry, data_home(settings, env))
    attach(path, target.name, adapter, by=f"distill promote {student_dir.resolve()}")
    return {"deployment": target.name, "adapter": adapter.name, "attachments": str(path), "upstream": how}
