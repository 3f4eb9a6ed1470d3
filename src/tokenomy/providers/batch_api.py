"""Providers' own batch APIs (OpenAI Batch, Anthropic Message Batches) behind one seam, for pass-through batches.

Each request goes out under the remote id ``l<line number>`` (providers limit custom ids; ours may be anything),
and each result comes back in OpenAI's shapes: a chat completion (or embeddings list) with the provider's usage, or
an error body; ``status_code`` None means the provider never ran it (expired, cancelled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenomy.config.settings import DeploymentConfig
from tokenomy.config.vendors import VENDORS
from tokenomy.errors import ConfigError

BATCH_PROVIDERS = ("openai", "anthropic")


@dataclass(frozen=True, slots=True)
class RemoteRequest:
    line_no: int
    endpoint: str
    body: dict[str, Any]  # the endpoint's request, ``model`` already the upstream's name


@dataclass(frozen=True, slots=True)
class RemoteResult:
    line_no: int
    status_code: int | None
    body: dict[str, Any] | None
    usage: dict[str, Any] = field(default_factory=dict)  # as the provider reported it (its own shape)


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    done: bool
    state: dict[str, Any]  # what to keep (the remote ids), updated
    failed: str | None = None  # the provider failed the whole batch: why


class BatchAPI(Protocol):
    async def submit(self, requests: list[RemoteRequest], tag: str) -> dict[str, Any]:
        """Send the requests as one provider batch; returns the state to keep (remote ids). ``tag`` (our batch id)
        lets an implementation find a batch it already submitted before a crash."""

    async def poll(self, state: dict[str, Any]) -> RemoteStatus: ...

    async def cancel(self, state: dict[str, Any]) -> None: ...

    async def results(self, state: dict[str, Any]) -> list[RemoteResult]: ...

    async def aclose(self) -> None: ...


def remote_id(line_no: int) -> str:
    return f"l{line_no}"


def line_of(remote: object) -> int | None:
    text = str(remote)
    return int(text[1:]) if text.startswith("l") and text[1:].isdigit() else None


def batch_api_for(config: DeploymentConfig, env: Mapping[str, str]) -> BatchAPI:
    """The batch API of a deployment's provider; ConfigError when it has none or its key is missing."""
    if config.provider not in BATCH_PROVIDERS:
        raise ConfigError(f"deployment '{config.name}' ({config.provider}) has no provider batch API; pass-through "
                          f"batches need a {' or '.join(BATCH_PROVIDERS)} deployment")
    vendor = VENDORS[config.provider]
    base_url = (config.base_url or vendor.base_url or "").rstrip("/")
    key_env = config.api_key_env or vendor.key_env
    api_key = env.get(key_env) if key_env else None
    if config.provider == "anthropic":
        from tokenomy.providers.anthropic_batch import AnthropicBatchAPI

        return AnthropicBatchAPI(base_url=base_url, api_key=api_key, headers=dict(config.headers),
                                 deployment=config.name)
    from tokenomy.providers.openai_batch import OpenAIBatchAPI

    return OpenAIBatchAPI(base_url=base_url, api_key=api_key, headers=dict(config.headers), deployment=config.name)
