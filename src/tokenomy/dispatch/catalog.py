"""Which deployments can answer a requested model name, in the order to try them.

A client asks for a model name (``gpt-4o-mini``) or a tier (``small``, ``medium``, ``frontier``). Its chain is the
deployments serving that name (config order), then each configured fallback in turn (a model name or a tier),
without repeats. There are no implicit cross-tier fallbacks: moving a request to a dearer tier costs money, so it
happens only where the config says so.

A LoRA adapter served by a shared base is a deployment of its own (its model name is the adapter's); its *base* is
the deployment whose upstream serves it, and load is judged per base (:meth:`Catalog.base_load`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tokenomy.config.settings import TIERS
from tokenomy.errors import ConfigError, ModelNotFoundError
from tokenomy.providers.registry import Deployment


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One name a client may ask for, as /v1/models lists it."""

    id: str
    tier: str
    owned_by: str


def fallback_problems(models: Iterable[str], fallbacks: Mapping[str, list[str]]) -> list[ConfigError]:
    """Each fallback entry naming something that is neither one of ``models`` nor a tier."""
    known = {*models, *TIERS}
    return [ConfigError(f"key 'fallbacks.{source}': {name!r} is neither a configured model nor a tier; known: "
                        f"{', '.join(sorted(known))}")
            for source, targets in fallbacks.items() for name in (source, *targets) if name not in known]


class Catalog:
    def __init__(self, deployments: Iterable[Deployment], fallbacks: dict[str, list[str]] | None = None) -> None:
        self.deployments = list(deployments)
        self._base = {d.name: d.config.adapter_of or d.name for d in self.deployments}
        self._by_model: dict[str, list[Deployment]] = {}
        for dep in self.deployments:
            self._by_model.setdefault(dep.config.model, []).append(dep)
        self._by_tier: dict[str, list[Deployment]] = {
            tier: [d for d in self.deployments if d.config.tier == tier] for tier in TIERS}
        self._fallbacks = dict(fallbacks or {})
        for problem in fallback_problems(self._by_model, self._fallbacks):
            raise problem

    def _known(self, name: str) -> bool:
        return name in self._by_model or name in self._by_tier

    def _direct(self, name: str) -> list[Deployment]:
        return self._by_model.get(name) or self._by_tier.get(name, [])

    def tier_of(self, name: str) -> str | None:
        """The tier of a model name's deployments (a tier name is its own tier); None when nothing serves it."""
        direct = self._direct(name)
        return direct[0].config.tier if direct else None

    def base_load(self, name: str, inflight: Mapping[str, int]) -> int:
        """Calls in flight on the upstream that serves deployment ``name``: its base's and every adapter's on it."""
        base = self._base.get(name, name)
        return sum(n for dep, n in inflight.items() if self._base.get(dep, dep) == base)

    def serves(self, name: str) -> bool:
        """Does a model name or tier have at least one deployment here?"""
        return bool(self._direct(name))

    def chain(self, model: str) -> list[Deployment]:
        """Deployments to try for ``model``, in order; ModelNotFoundError when nothing serves it."""
        first = self._direct(model)
        if not first and not self._known(model):
            raise ModelNotFoundError(
                f"model '{model}' is not served here; available: {', '.join(e.id for e in self.models())}",
                param="model")
        seen: set[str] = set()
        ordered: list[Deployment] = []
        for dep in (*first, *(d for name in self._fallbacks.get(model, ()) for d in self._direct(name))):
            if dep.name not in seen:
                seen.add(dep.name)
                ordered.append(dep)
        if not ordered:
            raise ModelNotFoundError(f"tier '{model}' has no deployments configured", param="model")
        return ordered

    def models(self) -> list[ModelEntry]:
        entries = [ModelEntry(id=name, tier=deps[0].config.tier, owned_by=deps[0].config.provider)
                   for name, deps in self._by_model.items()]
        entries.extend(ModelEntry(id=tier, tier=tier, owned_by="tokenomy") for tier, deps in self._by_tier.items()
                       if deps and tier not in self._by_model)
        return entries
