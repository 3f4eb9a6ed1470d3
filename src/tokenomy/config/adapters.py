"""LoRA adapters a deployment's upstream serves on its base model (``deployments[].adapters``).

```yaml
deployments:
  - name: vllm-8b                      # the shared base: one upstream, one connection pool, one queue
    provider: vllm
    model: meta-llama/Llama-3.1-8B-Instruct
    base_url: http://pack-0:8000/v1
    adapters:
      - name: support-triage           # a model name clients may ask for, like any other
      - name: distill/topic
        upstream_model: topic          # what the upstream calls it (vLLM --lora-modules NAME=..., a
                                       # llama_cpp.server model_alias); default: name
  - name: local/smollm2
    provider: local                    # in-process: the adapters load on the one loaded base
    model: smollm2-135m-instruct
    adapters:
      - {name: alpha, path: ./alpha.gguf, scale: 1.0}
  - name: llama-server
    provider: llamacpp                 # llama.cpp's own server started with --lora A --lora B
    model: smollm2                     #   --lora-init-without-apply: the adapter is chosen per request
    base_url: http://127.0.0.1:8080/v1
    adapters:
      - {name: alpha, lora_id: 0}      # sent as "lora": [{"id": 0, "scale": 1.0}]
```

Each adapter becomes a deployment of its own (named ``<base>/<adapter>``, its ``model`` the adapter's name) that
shares the base's provider (docs/serving.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from tokenomy.errors import ConfigError


class AdapterConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One LoRA adapter on a deployment's base model."""

    name: str  # the model name clients ask for
    upstream_model: str | None = None  # the name the upstream serves it under (default: ``name``)
    path: str | None = None  # GGUF adapter file: required for provider ``local`` (loaded in-process)
    scale: float = 1.0
    lora_id: int | None = None  # llama.cpp server: the adapter's index in its --lora list, sent per request

    @property
    def sent_model(self) -> str:
        return self.upstream_model or self.name


def check_adapters(provider: str, model: str, adapters: Sequence[AdapterConfig], where: str, origin: str,
                   adapter_of: str | None) -> None:
    """Adapter names unique and distinct from the base model; a file for each in-process adapter; a ``lora_id``
    only where an upstream reads one. ``where``: the deployment's key (``deployments[0]``, ``local``);
    ``adapter_of`` is tokenomy's own mark on an adapter's deployment, not for a config file."""
    if adapter_of is not None:
        raise ConfigError(f"{origin}: key '{where}.adapter_of': set by tokenomy; list the base's adapters instead")
    names: set[str] = set()
    for k, adapter in enumerate(adapters):
        key = f"{origin}: key '{where}.adapters[{k}]"
        if not adapter.name or adapter.name == model or adapter.name in names:
            raise ConfigError(f"{key}.name': adapter names must be non-empty, unique and differ from the base "
                              f"model (got {adapter.name!r})")
        names.add(adapter.name)
        if provider == "local" and not adapter.path:
            raise ConfigError(f"{key}.path': an in-process (provider local) adapter needs its GGUF file")
        if provider != "local" and adapter.path:
            raise ConfigError(f"{key}.path': only provider local loads adapter files; an upstream server loads its "
                              "own (vLLM --lora-modules, llama.cpp --lora)")
        if adapter.lora_id is not None and (provider != "llamacpp" or adapter.lora_id < 0):
            raise ConfigError(f"{key}.lora_id': a llama.cpp server's adapter index (>= 0; provider llamacpp only)")
        if not 0 < adapter.scale <= 4:
            raise ConfigError(f"{key}.scale': must be in (0, 4] (got {adapter.scale})")
