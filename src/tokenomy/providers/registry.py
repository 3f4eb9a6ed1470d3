"""Build the deployments a gateway serves, and a Provider for each, from Settings and the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokenomy.config.settings import DeploymentConfig, LocalConfig, Settings
from tokenomy.config.vendors import VENDORS, env_deployments
from tokenomy.errors import ConfigError
from tokenomy.providers.base import Provider

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
    """The deployment list: the file's, else the env-key vendors; plus the local tier unless it is turned off."""
    configs = list(settings.deployments or ())
    if settings.deployments is None and settings.env_providers:
        configs.extend(env_deployments(dict(env)))
    if settings.local.enabled and not any(c.provider == "local" for c in configs):
        local = settings.local
        configs.insert(0, DeploymentConfig(name=f"local/{local.model}", provider="local", model=local.model,
                                           tier="small", model_path=local.model_path, n_ctx=local.n_ctx,
                                           n_threads=local.n_threads, timeout_s=300.0,
                                           max_output_tokens=local.max_tokens))
    return configs


def build_provider(config: DeploymentConfig, env: Mapping[str, str], *, local: LocalConfig | None = None,
                   prompt_caching: bool = True) -> Provider:
    """One provider for one deployment; a missing key or package is a ConfigError naming the deployment.
    ``local``: the queue and output limits of in-process models."""
    if config.provider == "local":
        from tokenomy.providers.local_llama import LocalLlamaProvider, bundled_model_path

        limits = local or LocalConfig()
        path = Path(config.model_path).expanduser() if config.model_path else bundled_model_path()
        return LocalLlamaProvider(deployment=config.name, model_path=path, n_ctx=config.n_ctx,
                                  n_threads=config.n_threads, max_queue=limits.max_queue,
                                  max_queue_per_key=limits.max_queue_per_key,
                                  max_tokens=min(limits.max_tokens, config.max_output_tokens or limits.max_tokens))
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
    """The chat deployments (``kind: chat``)."""
    return [Deployment(config=c, provider=build_provider(c, env, local=settings.local,
                                                         prompt_caching=settings.cache.prompt_breakpoints))
            for c in resolve_deployments(settings, env) if c.kind == "chat"]


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
