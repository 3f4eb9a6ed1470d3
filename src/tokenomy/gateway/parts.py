"""The gateway's optional parts, each as the one narrow seam the request path calls, and the do-nothing part that
stands in when the feature is switched off: the path never asks whether a feature is on.

| part | real one | switched off |
|---|---|---|
| response cache | ``cache.exact.ExactCache`` | :class:`NoResponseCache` (decides nothing is cacheable) |
| semantic cache | ``cache.semantic.layer.SemanticLayer`` | :class:`NoSemanticCache` (never probes) |
| learned routers | ``routing.serve.RouterSet`` | :class:`NoRouters` (no model is a router) |
| distilled students | ``distill.serve.StudentSet`` | :class:`NoStudents` (no request matches a student) |
| body storage | ``distill.bodies.BodyStore`` | :class:`NoBodyStore` (stores nothing) |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.cache import Match
from tokenomy.cache.semantic.layer import Probe
from tokenomy.distill.serve import ServedStudent
from tokenomy.ledger.trace import DistillMark, RequestTrace
from tokenomy.providers.registry import Deployment
from tokenomy.routing.serve import Routed
from tokenomy.wire.validation import ValidChat


class ResponseCache(Protocol):
    def decide(self, body: Mapping[str, Any], headers: Mapping[str, str], namespace: str) -> CacheDecision | None:
        """None when the cache must stay out of this request."""

    async def get(self, decision: CacheDecision) -> dict[str, Any] | None: ...

    async def put(self, decision: CacheDecision, completion: dict[str, Any], *, deployment: str,
                  tier: str) -> None: ...

    async def aclose(self) -> None: ...


class SemanticCache(Protocol):
    async def probe(self, body: Mapping[str, Any], decision: CacheDecision, namespace: str) -> Probe | None: ...

    def served(self, request_id: str, match: Match, owner: str | None = None) -> None: ...

    async def remember(self, probe: Probe | None, decision: CacheDecision,
                       completion: Mapping[str, Any]) -> None: ...

    def report(self, request_id: str, correct: bool, viewer: str | None = None) -> bool: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class Routers(Protocol):
    def names(self) -> list[str]: ...

    def models_of(self, name: str) -> list[str] | None:
        """The models a router (by its virtual model name) chooses among; None when ``name`` is no router."""

    async def route(self, chat: ValidChat, headers: Mapping[str, str],
                    served: Callable[[str], bool]) -> Routed | None: ...

    def settle(self, router: str, model: str, estimated_usd: float, real_usd: float) -> None: ...


class Students(Protocol):
    def match(self, body: Mapping[str, Any]) -> ServedStudent | None: ...

    async def before(self, served: ServedStudent, body: Mapping[str, Any]) -> DistillMark | None: ...

    def completion(self, served: ServedStudent, mark: DistillMark, body: Mapping[str, Any],
                   usage: dict[str, int]) -> dict[str, Any]: ...

    def observe(self, trace: RequestTrace) -> None: ...

    def deployments(self) -> list[Deployment]: ...

    def served(self) -> list[dict[str, Any]]:
        """The students served now (task, kind, state, promoted_at): ``/healthz`` shows them."""

    def close(self) -> None: ...


class BodyStorage(Protocol):
    def record(self, trace: RequestTrace, status: int) -> bool: ...

    def close(self) -> None: ...


class NoResponseCache:
    def decide(self, body: Mapping[str, Any], headers: Mapping[str, str], namespace: str) -> CacheDecision | None:
        return None

    async def get(self, decision: CacheDecision) -> dict[str, Any] | None:
        return None

    async def put(self, decision: CacheDecision, completion: dict[str, Any], *, deployment: str,
                  tier: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NoSemanticCache:
    async def probe(self, body: Mapping[str, Any], decision: CacheDecision, namespace: str) -> Probe | None:
        return None

    def served(self, request_id: str, match: Match, owner: str | None = None) -> None:
        return None

    async def remember(self, probe: Probe | None, decision: CacheDecision,
                       completion: Mapping[str, Any]) -> None:
        return None

    def report(self, request_id: str, correct: bool, viewer: str | None = None) -> bool:
        return False

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NoRouters:
    def names(self) -> list[str]:
        return []

    def models_of(self, name: str) -> list[str] | None:
        return None

    async def route(self, chat: ValidChat, headers: Mapping[str, str],
                    served: Callable[[str], bool]) -> Routed | None:
        return None

    def settle(self, router: str, model: str, estimated_usd: float, real_usd: float) -> None:
        return None


class NoStudents:
    def match(self, body: Mapping[str, Any]) -> ServedStudent | None:
        return None

    async def before(self, served: ServedStudent, body: Mapping[str, Any]) -> DistillMark | None:
        return None

    def completion(self, served: ServedStudent, mark: DistillMark, body: Mapping[str, Any],
                   usage: dict[str, int]) -> dict[str, Any]:
        raise AssertionError("no student is served here")

    def observe(self, trace: RequestTrace) -> None:
        return None

    def deployments(self) -> list[Deployment]:
        return []

    def served(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        return None


class NoBodyStore:
    def record(self, trace: RequestTrace, status: int) -> bool:
        return False

    def close(self) -> None:
        return None
