"""Build the deployments a gateway serves, and a Provider for each, from Settings and the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tokenomy.config.settings import DeploymentConfig, LocalConfig, Settings, data_home
from tokenomy.config.vendors import VENDORS, env_deployments
from tokenomy.errors import ConfigError
from tokenomy.providers.base import Provider
from tokenomy.providers.shared_base import SharedBaseView, SharedUpstream

if TYPE_CHECKING:
    from tokenomy.providers.openai_embeddings import OpenAIEmbeddingsProvider


@dataclass(frozen=True, slots=True)
class Deployment:
    """A configured deployment and the provider that calls it."""

    config: DeploymentConfig
    provider: Provider

    @property
    def name(self) -> str:
        return self.config.name


def resolve_deployments(settings: Settings, env: Mapping[str, str]) -> list[DeploymentConfig]:
    """The deployment list: the file's, else the env-key vendors; plus the local tier unless it is turned off; each
    base's adapters follow it as deployments of their own."""
    configs = list(settings.deployments or ())
    if settings.deployments is None and settings.env_providers:
        configs.extend(env_deployments(dict(env)))
    if settings.local.enabled and not any(c.provider == "local" for c in configs):
        local = settings.local
        configs.insert(0, DeploymentConfig(name=f"local/{local.model}", provider="local", model=local.model,
                                           tier="small", model_path=local.model_path, n_ctx=local.n_ctx,
                                           n_threads=local.n_threads, timeout_s=300.0,
                                           max_output_tokens=local.max_tokens, adapters=list(local.adapters)))
    configs = _with_attached(configs, settings, env)
    return [expanded for c in configs for expanded in (c, *adapter_deployments(c))]


def _with_attached(configs: list[DeploymentConfig], settings: Settings,
                   env: Mapping[str, str]) -> list[DeploymentConfig]:
    """Adapters attached by ``distill promote --to`` (config/attachments.py) join their deployment's list."""
    from tokenomy.config.attachments import attached_adapters, attachments_path

    attached = attached_adapters(attachments_path(settings.distill.registry, data_home(settings, env)))
    out = []
    for c in configs:
        extra = [a for a in attached.get(c.name, ()) if all(a.name != b.name for b in c.adapters)]
        out.append(msgspec.structs.replace(c, adapters=[*c.adapters, *extra]) if extra else c)
    return out


def adapter_deployments(base: DeploymentConfig) -> list[DeploymentConfig]:
    """One deployment per adapter of ``base``: named ``<base>/<adapter>``, asked for by the adapter's name, sent to
    the base's upstream under the adapter's upstream name."""
    return [msgspec.structs.replace(base, name=f"{base.name}/{a.name}", model=a.name, upstream_model=a.sent_model,
                                    adapters=[], adapter_of=base.name) for a in base.adapters]


def build_provider(config: DeploymentConfig, env: Mapping[str, str], *, local: LocalConfig | None = None,
                   prompt_caching: bool = True) -> Provider:
    """One provider for one deployment; a missing key or package is a ConfigError naming the deployment.
    ``local``: the queue and output limits of in-process models."""
    if config.provider == "local":
        from tokenomy.providers.local_llama import LocalLlamaProvider, bundled_model_path

        limits = local or LocalConfig()
        path = Path(config.model_path).expanduser() if config.model_path else bundled_model_path()
        adapters = {a.sent_model: (Path(a.path).expanduser(), a.scale) for a in config.adapters if a.path}
        return LocalLlamaProvider(deployment=config.name, model_path=path, n_ctx=config.n_ctx,
                                  n_threads=config.n_threads, max_queue=limits.max_queue,
                                  max_queue_per_key=limits.max_queue_per_key,
                                  max_tokens=min(limits.max_tokens, config.max_output_tokens or limits.max_tokens),
                                  adapters=adapters)
    base_url, api_key = _endpoint(config, env)
    if config.provider == "anthropic":
        from tokenomy.promptcache.breakpoints import BreakpointPlanner
        from tokenomy.providers.anthropic import AnthropicProvider
        from tokenomy.tokens.counter import TokenCounter

        planner = BreakpointPlanner(TokenCounter()) if prompt_caching else None
        return AnthropicProvider(deployment=config.name, base_url=base_url, api_key=api_key,
                                 headers=dict(config.headers), max_connections=config.max_concurrency,
                                 breakpoints=planner)
    from tokenomy.providers.openai_compatible import OpenAICompatibleProvider

    return OpenAICompatibleProvider(deployment=config.name, base_url=base_url, api_key=api_key,
                                    headers=dict(config.headers), max_connections=config.max_concurrency)


def build_deployments(settings: Settings, env: Mapping[str, str]) -> list[Deployment]:
    """The chat deployments (``kind: chat``); a base with adapters and its adapters' deployments share one provider
    (:mod:`tokenomy.providers.shared_base`)."""
    configs = [c for c in resolve_deployments(settings, env) if c.kind == "chat"]
    shared: dict[str, SharedUpstream] = {}
    found = []
    for c in configs:
        if c.adapter_of is not None:
            base = next(b for b in configs if b.name == c.adapter_of)
            adapter = next(a for a in base.adapters if a.name == c.model)
            extra = {"lora": [{"id": adapter.lora_id, "scale": adapter.scale}]} if adapter.lora_id is not None else None
            found.append(Deployment(c, SharedBaseView(shared[base.name], c.model, owner=False, extra_body=extra)))
            continue
        provider = build_provider(c, env, local=settings.local,
                                  prompt_caching=settings.cache.prompt_breakpoints)
        if c.adapters:
            shared[c.name] = SharedUpstream(provider)
            per_request = any(a.lora_id is not None for a in c.adapters)
            provider = SharedBaseView(shared[c.name], c.model, owner=True,
                                      extra_body={"lora": []} if per_request else None)
        found.append(Deployment(c, provider))
    return found


@dataclass(frozen=True, slots=True)
class EmbeddingDeployment:
    """A deployment with ``kind: embeddings``: an upstream /embeddings endpoint."""

    config: DeploymentConfig
    provider: OpenAIEmbeddingsProvider

    @property
    def name(self) -> str:
        return self.config.name


def build_embedding_deployments(settings: Settings, env: Mapping[str, str]) -> list[EmbeddingDeployment]:
    from tokenomy.providers.openai_embeddings import OpenAIEmbeddingsProvider

    found = []
    for config in resolve_deployments(settings, env):
        if config.kind != "embeddings":
            continue
        base_url, api_key = _endpoint(config, env)
        found.append(EmbeddingDeployment(config, OpenAIEmbeddingsProvider(
            deployment=config.name, base_url=base_url, api_key=api_key, headers=dict(config.headers),
            max_connections=config.max_concurrency)))
    return found


def _endpoint(config: DeploymentConfig, env: Mapping[str, str]) -> tuple[str, str | None]:
    vendor = VENDORS[config.provider]
    base_url = config.base_url or vendor.base_url
    if not base_url:
        raise ConfigError(f"deployment '{config.name}': provider '{config.provider}' needs a base_url")
    key_env = config.api_key_env or vendor.key_env
    api_key = env.get(key_env) if key_env else None
    if config.api_key_env and not api_key:
        raise ConfigError(f"deployment '{config.name}': environment variable {config.api_key_env} is not set")
    return base_url, api_key
