"""The rules of Settings that a single key's type cannot say (``load_settings`` runs them after converting); each
error names the key and the bad value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenomy.config.adapters import check_adapters
from tokenomy.errors import ConfigError

if TYPE_CHECKING:
    from tokenomy.config.settings import DeploymentConfig, PriceOverride, Settings

_NEEDS_BASE_URL = ("openai_compatible", "vllm", "sglang", "llamacpp")


def check_settings(settings: Settings, origin: str) -> None:
    """Every rule a single key's type cannot say; ``origin`` (the file) starts each message."""
    if not 0 < settings.server.port < 65536:
        raise ConfigError(f"{origin}: key 'server.port': must be in 1..65535 (got {settings.server.port})")
    names: set[str] = set()
    for i, dep in enumerate(settings.deployments or ()):
        if dep.name in names:
            raise ConfigError(f"{origin}: key 'deployments[{i}].name': duplicate deployment name {dep.name!r}")
        names.add(dep.name)
        _check_deployment(dep, f"{origin}: key 'deployments[{i}]")
        check_adapters(dep.provider, dep.model, dep.adapters, f"deployments[{i}]", origin, dep.adapter_of)
    check_adapters("local", settings.local.model, settings.local.adapters, "local", origin, None)
    if not 1 <= settings.batch.max_concurrency <= settings.batch.max_concurrency_cap:
        raise ConfigError(f"{origin}: key 'batch.max_concurrency': must be in 1..{settings.batch.max_concurrency_cap} "
                          f"(got {settings.batch.max_concurrency})")
    deployments = enumerate(settings.deployments or ())
    for key, batching in [("embeddings.batching", settings.embeddings.batching),
                          ("routing.batching", settings.routing.batching),
                          *((f"deployments[{i}].batching", d.batching) for i, d in deployments)]:
        if batching is not None and (batching.max_batch < 1 or batching.max_inflight < 1
                                     or not 0 <= batching.max_wait_ms <= 1000):
            raise ConfigError(f"{origin}: key '{key}': max_batch and max_inflight must be >= 1 and "
                              f"max_wait_ms in [0, 1000] (got {batching.max_batch}, {batching.max_inflight}, "
                              f"{batching.max_wait_ms})")
    if settings.retry.max_retries < 0:
        raise ConfigError(f"{origin}: key 'retry.max_retries': must be >= 0 (got {settings.retry.max_retries})")


def _check_deployment(dep: DeploymentConfig, where: str) -> None:
    """``where``: the message's start, up to the deployment's key (``file: key 'deployments[2]``)."""
    if dep.timeout_s <= 0:
        raise ConfigError(f"{where}.timeout_s': must be > 0 (got {dep.timeout_s})")
    if dep.kind == "embeddings" and dep.provider in ("local", "anthropic"):
        raise ConfigError(f"{where}.kind': provider {dep.provider!r} serves no embeddings")
    if dep.batching is not None and dep.kind != "embeddings":
        raise ConfigError(f"{where}.batching': only embeddings deployments take a batch (chat backends batch "
                          "internally)")
    if dep.provider in _NEEDS_BASE_URL and not dep.base_url:
        raise ConfigError(f"{where}.base_url': provider {dep.provider!r} needs a base_url")
    if dep.price is not None:
        _check_price(dep.price, f"{where}.price'")


def _check_price(price: PriceOverride, where: str) -> None:
    """A price is whole or refused: a half-given one would leave the deployment unpriced (no budget reserved)."""
    per_token = (price.input_usd_per_mtok, price.output_usd_per_mtok)
    per_gpu = (price.gpu_hour_usd, price.tokens_per_s)
    given = [v for v in (*per_token, *per_gpu, price.cached_input_usd_per_mtok) if v is not None]
    if any(v < 0 for v in given) or price.tokens_per_s == 0:
        raise ConfigError(f"{where}: prices must be >= 0 and tokens_per_s > 0")
    token_given = [v is not None for v in (*per_token, price.cached_input_usd_per_mtok)]
    gpu_given = [v is not None for v in per_gpu]
    if not ((all(token_given[:2]) and not any(gpu_given)) or (all(gpu_given) and not any(token_given))):
        raise ConfigError(f"{where}: give both input_usd_per_mtok and output_usd_per_mtok (cached_input_usd_per_mtok "
                          "optional), or both gpu_hour_usd and tokens_per_s; a half-given price would leave the "
                          "deployment unpriced")
