"""Learned routers in the gateway: the virtual models ``tokenomy/auto`` and ``tokenomy/<name>``.

Each configured router (``routing.routers``, plus ``routing.auto_router`` / ``TOKENOMY_ROUTER`` as ``auto``) is
loaded once, in a worker thread, when the app starts. A chat request for ``tokenomy/<name>`` is routed before
anything else happens to it: the last user turn is scored by the router (``Router.decide_many``, in a worker thread;
concurrent decisions of one router share one embedding call, ``routing.batching``), the best model that has a
deployment here is chosen, and the request continues as if the client had asked for that model, configured
fallbacks included; when that whole chain fails, the router's other served models follow in the order of its
objective (``Routed.then``; ``fallback: none`` turns it off). The choice and its reason go into the ledger
(``route_reason``) and the ``x-tokenomy-route`` / ``x-tokenomy-route-reason`` response headers. A client may move
the operating point of one request with ``x-tokenomy-route-target: share=S | quality=Q | budget=B``. Each router
remembers its latest decisions (``routing.decision_cache``), so a repeated prompt is routed without an embedding,
and holds share and budget targets on the traffic it serves (``routing.hold_window``,
:mod:`tokenomy.routing.online`).

A router with ``policy: cascade`` routes to its cheapest model and hands the caller a :class:`Cascade`: the
frontier step, taken when the router's check expects the frontier to beat the cheap answer by more than the margin
(``api.chat_completions.answer_cascade`` runs both steps).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tokenomy.config.settings import RouterConfig, RoutingConfig
from tokenomy.errors import ConfigError, ModelNotFoundError, RouteTargetError, TargetError
from tokenomy.microbatch import MicroBatcher
from tokenomy.routing.calibrate import OperatingPoint, Target, parse_target
from tokenomy.routing.online import TrafficHold
from tokenomy.wire.prompt import prompt_text
from tokenomy.wire.validation import ValidChat

if TYPE_CHECKING:
    from tokenomy.routing.router import Decision, Router

PREFIX = "tokenomy/"
TARGET_HEADER = "x-tokenomy-route-target"
AUTO = "auto"

Served = Callable[[str], bool]  # does a model name have a deployment here?


@dataclass(frozen=True, slots=True)
class Cascade:
    """A cascaded request's second step: the request as the frontier model's, and when to take it."""

    router: ServedRouter
    frontier: ValidChat
    text: str  # the prompt text the check reads
    margin: float
    share: float | None = None  # the escalation share target the margin came from, if any

    async def escalate(self, answer: str) -> tuple[bool, float, float]:
        """Whether the cheap ``answer`` is escalated, the check's expected gain (in a worker thread) and the margin
        it was held to: a share target's margin is held on the latest requests' gains, as a router's share targets
        are (:mod:`tokenomy.routing.online`)."""
        gain = await asyncio.to_thread(self.router.router.gain, self.text, answer)
        margin, hold = self.margin, self.router.hold
        if hold is not None:
            hold.observe(gain, [], [])
            if self.share is not None and (held := hold.mu(self.share)) is not None:
                margin = held
        return gain > margin, gain, margin


@dataclass(frozen=True, slots=True)
class Routed:
    """A routed request: the request as the chosen model's, and what to tell the ledger and the client; ``then``
    are the router's next choices, best first, should the chosen model's whole chain fail; a cascade's first
    step carries its second in ``cascade``."""

    chat: ValidChat
    model: str
    reason: str
    cascade: Cascade | None = None
    then: tuple[str, ...] = ()
    estimated_usd: float | None = None  # the chosen model's estimated cost, settled against the ledger's

    def headers(self) -> dict[str, str]:
        return {"x-tokenomy-route": self.model, "x-tokenomy-route-reason": self.reason}


@dataclass(slots=True)
class ServedRouter:
    name: str
    router: Router
    target: Target | None  # None: the router's own default
    batcher: MicroBatcher[tuple[str, Target | None], Decision] | None = None
    cascade: bool = False  # policy cascade: the cheapest model first, the frontier when the check says so
    margin: float | None = None  # the cascade's configured escalation margin
    auto: bool = False  # policy auto on a router whose training chose the cascade (at the shares where it won)
    remembered: DecisionCache | None = None  # decisions of prompts seen before (a decision is a pure function)
    hold: TrafficHold | None = None  # recent decisions: share and budget targets held on live traffic
    fallback: bool = True  # fallback: next — the chosen model's chain failing, the next choices answer

    async def decide(self, text: str, target: Target | None, hold: bool = True) -> Decision:
        """The router's decision: remembered for a prompt and target seen before, else computed (micro-batched
        with concurrent ones when a batcher is set); ``hold`` False: at the calibrated point."""
        key = (hashlib.blake2b(text.encode(), digest_size=16).digest(), str(target))  # bounded keys, long prompts
        decision = self.remembered.get(key) if self.remembered is not None else None
        if decision is None:
            if self.batcher is None:
                decision = await asyncio.to_thread(self.router.decide, text, target)
            else:
                decision = await self.batcher.submit((text, target))
            if self.remembered is not None:
                self.remembered.put(key, decision)
        return self.held(decision, target) if hold else decision

    def held(self, decision: Decision, target: Target | str | None) -> Decision:
        """A share or budget target's decision at the operating point that meets it on recent traffic, once enough
        of it has been seen (:mod:`tokenomy.routing.online`); quality targets as calibrated."""
        hold = self.hold
        if hold is None:
            return decision
        models = self.router.models
        hold.observe(self.router.frontier_gain(decision), [decision.expected_scores[m] for m in models],
                     [decision.expected_costs_usd[m] for m in models])
        wanted = parse_target(target) if isinstance(target, str) else target or self.router.default_target
        factors = None
        if wanted.kind == "share" and (mu := hold.mu(wanted.value)) is not None:
            at = OperatingPoint(0.0, mu)
        elif wanted.kind == "budget" and (lam := hold.lam(wanted.value)) is not None:
            at, factors = OperatingPoint(lam, 0.0), hold.cost_factors(len(models))  # λ was solved on real costs
        else:
            return decision
        return replace(self.router.at_point(decision, at, wanted, factors), online=len(hold))

    async def decide_batch(self, items: list[tuple[str, Target | None]]) -> list[Decision]:
        return await asyncio.to_thread(self.router.decide_many, [t for t, _ in items], [g for _, g in items])


class DecisionCache:
    """The latest ``size`` decisions by (hash of the prompt text, target), least recently used out first. A
    router's decision depends on nothing else, so a repeated prompt (a retry, an exact-cache hit, a popular
    question) skips the embedding."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[bytes, str], Decision] = OrderedDict()

    def get(self, key: tuple[bytes, str]) -> Decision | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple[bytes, str], decision: Decision) -> None:
        self._items[key] = decision
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


def router_configs(config: RoutingConfig) -> dict[str, RouterConfig]:
    """The configured routers by name; ``auto_router`` fills in ``auto`` unless ``routers`` names it."""
    found = dict(config.routers)
    if config.auto_router and AUTO not in found:
        found[AUTO] = RouterConfig(path=config.auto_router)
    return found


class RouterSet:
    """The gateway's routers, by virtual model name."""

    def __init__(self, routers: Mapping[str, ServedRouter]) -> None:
        self._routers = dict(routers)

    @classmethod
    def load(cls, config: RoutingConfig, served: Served) -> RouterSet:
        """Load every configured router (blocking: call it in a worker thread). Raises :class:`ConfigError`
        naming the key when a router cannot be loaded, its target is invalid, or none of its models is served."""
        loaded: dict[str, ServedRouter] = {}
        for name, entry in router_configs(config).items():
            router, target = load_router(config, name, served)
            auto = entry.policy == "auto" and router.policy in ("cascade", "parts") and \
                router.state.cascade is not None and \
                all(served(m) for m in (router.state.cascade.cheap, router.state.cascade.frontier))
            served_router = ServedRouter(name, router, target, cascade=entry.policy == "cascade",
                                         margin=entry.margin, fallback=entry.fallback == "next", auto=auto)
            if config.decision_cache > 0:
                served_router.remembered = DecisionCache(config.decision_cache)
            if config.hold_window > 0:
                served_router.hold = TrafficHold(config.hold_window, two_models=len(router.models) == 2)
            if config.batching is not None:
                served_router.batcher = MicroBatcher(served_router.decide_batch, max_batch=config.batching.max_batch,
                                                     max_wait_ms=config.batching.max_wait_ms,
                                                     max_inflight=config.batching.max_inflight)
            loaded[PREFIX + name] = served_router
        return cls(loaded)

    @staticmethod
    def check(config: RoutingConfig, served: Served) -> list[ConfigError]:
        """What :meth:`load` would refuse, router by router, reading each router's files but not its embedder
        (``tokenomy config check``)."""
        problems = []
        for name in router_configs(config):
            try:
                load_router(config, name, served, embedder=False)
            except ConfigError as exc:
                problems.append(exc)
        return problems

    def names(self) -> list[str]:
        return list(self._routers)

    def handles(self, model: str) -> bool:
        return model in self._routers

    def models_of(self, name: str) -> list[str] | None:
        """The models the router ``name`` (its virtual model name) chooses among; None when it is no router."""
        entry = self._routers.get(name)
        return None if entry is None else list(entry.router.models)

    async def route(self, chat: ValidChat, headers: Mapping[str, str], served: Served) -> Routed | None:
        """None when ``chat`` does not ask for a router; else the routed request. Raises
        :class:`RouteTargetError` (400) for a bad target header, :class:`ModelNotFoundError` (404) when no model
        of the router is served."""
        entry = self._routers.get(chat.typed.model)
        if entry is None:
            return None
        target, source = entry.target, "config" if entry.target else "router default"
        if (text := headers.get(TARGET_HEADER)) is not None:
            target, source = _header_target(text), "header"
        if entry.cascade:
            return _cascade(entry, chat, target, source)
        if entry.auto and entry.router.policy == "parts":
            return await _by_part(entry, chat, target, source, served)
        if entry.auto and entry.router.cascade_serves(target):
            return _cascade(entry, chat, target or entry.router.default_target, source, auto=True)
        decision = await entry.decide(prompt_text(chat.body) or "", target)
        return _routed(entry, chat, decision, target, source, served, _rule(decision))

    def settle(self, router: str, model: str, estimated_usd: float, real_usd: float) -> None:
        """A routed request's real cost: the router's budget hold corrects its cost estimates with it."""
        entry = self._routers.get(router)
        if entry is not None and entry.hold is not None and model in entry.router.models:
            entry.hold.settle(entry.router.models.index(model), estimated_usd, real_usd)


def load_router(config: RoutingConfig, name: str, served: Served, *,
                embedder: bool = True) -> tuple[Router, Target | None]:
    """The router configured as ``name`` and its configured target, checked against what is served here; raises
    :class:`ConfigError` naming the key. ``embedder`` False reads the router's files only."""
    from tokenomy.routing.router import Router

    entry = router_configs(config)[name]
    key = f"routing.routers.{name}" if name in config.routers else "routing.auto_router"
    try:
        router = Router.load(Path(entry.path).expanduser(), threads=1, embedder=embedder)
        target = parse_target(entry.target) if entry.target else None
    except ConfigError as exc:
        raise ConfigError(f"key '{key}': {exc.message}") from exc
    if not any(served(m) for m in router.models):
        raise ConfigError(f"key '{key}': none of the router's models ({', '.join(router.models)}) has a "
                          "deployment here; name deployments or models after them")
    if entry.policy == "cascade":
        _check_cascade(key, router, target, entry.margin, served)
    return router, target


def _check_cascade(key: str, router: Router, target: Target | None, margin: float | None, served: Served) -> None:
    """A cascade needs the router's check, both of its models served, and a usable configured target."""
    check = router.state.cascade
    if check is None:
        raise ConfigError(f"key '{key}': policy cascade needs a router with a cascade check; train it on rows "
                          "that carry the cheapest model's responses")
    missing = [m for m in (check.cheap, check.frontier) if not served(m)]
    if missing:
        raise ConfigError(f"key '{key}': a cascade serves both {check.cheap} and {check.frontier}; "
                          f"{', '.join(missing)} has no deployment here")
    try:
        router.cascade_margin(target, margin)
    except TargetError as exc:
        raise ConfigError(f"key '{key}': {exc.message}") from exc


def _routed(entry: ServedRouter, chat: ValidChat, decision: Decision, target: Target | None, source: str,
            served: Served, rule: str) -> Routed:
    """The request as the served model's that best meets ``decision``, and its reason."""
    model, note = pick_served(decision, served)
    reason = (f"{entry.name}: target {target or entry.router.default_target} ({source}); {model} expected "
              f"{decision.expected_scores[model]:.3f} at ${decision.expected_costs_usd[model]:.3g} "
              f"({rule}){note}")
    then = tuple(m for m in ranked_served(decision, served) if m != model) if entry.fallback else ()
    return Routed(chat=_as(chat, model), model=model, reason=reason, then=then,
                  estimated_usd=decision.expected_costs_usd[model])


async def _by_part(entry: ServedRouter, chat: ValidChat, target: Target | None, source: str,
                   served: Served) -> Routed:
    """``policy: auto`` on a router whose training chose per-part serving (:mod:`tokenomy.routing.parts`): the
    prompt's part, then that part's candidate at the vertex of the mix's curve that meets the target: the cascade,
    the router at the candidate's point, or a single model. The points are the calibrated ones (not held on live
    traffic; a cascade candidate's escalation share is, as a cascade's share target is: ``routing.hold_window``)."""
    from tokenomy.routing.cascade import share_margin
    from tokenomy.routing.parts import NAMES

    router, parts = entry.router, entry.router.state.parts
    assert parts is not None
    wanted = target or router.default_target
    decision = await entry.decide(prompt_text(chat.body) or "", target, hold=False)
    pick = parts.pick(parts.solve(wanted, float(router.state.manifest["frontier_score"])), decision.part)
    note = f"auto: part {NAMES[decision.part]} ({decision.part + 1} of {len(NAMES)}), {pick.describe()}"
    if pick.kind == "cascade":
        quantiles = list((router.state.manifest.get("cascade") or {}).get("gain_quantiles") or [0.0])
        return _cascade(entry, chat, wanted, source, margin=share_margin(quantiles, pick.share), note=note,
                        share=pick.share)
    decision = router.at_point(decision, pick.point(), wanted, guarded=False)
    return _routed(entry, chat, decision, wanted, source, served, note)


def _cascade(entry: ServedRouter, chat: ValidChat, target: Target | None, source: str, auto: bool = False,
             margin: float | None = None, note: str = "", share: float | None = None) -> Routed:
    """The cascade's first step. ``margin`` and ``share``: a part's calibrated margin and the escalation share it
    holds on live traffic (``note`` says why); else the target's or the configured margin."""
    check = entry.router.state.cascade
    assert check is not None
    if margin is None:
        share = target.value if target is not None else None
        try:
            margin = entry.router.cascade_margin(target, entry.margin)
        except TargetError as exc:
            raise RouteTargetError(f"header {TARGET_HEADER}: {exc.message}", param=TARGET_HEADER) from exc
    rule = f"target {target} ({source})" if target is not None else \
        f"margin {margin:g} ({'config' if entry.margin is not None else 'default'})"
    if auto:
        rule += "; auto: the cascade beat the router and the hull out of fold at this share"
    if note:
        rule += f"; {note}"
    reason = f"{entry.name}: cascade, {check.cheap} first, escalate to {check.frontier} when gain > {margin:.3g} " \
             f"({rule})"
    whole = replace(chat, body={k: v for k, v in chat.body.items() if k not in ("stream", "stream_options")},
                    typed=msgspec.structs.replace(chat.typed, stream=False))  # the check reads whole answers
    return Routed(chat=_as(whole, check.cheap), model=check.cheap, reason=reason,
                  cascade=Cascade(entry, _as(whole, check.frontier), prompt_text(chat.body) or "", margin,
                                  share))


def _as(chat: ValidChat, model: str) -> ValidChat:
    """``chat`` asked of ``model``."""
    return replace(chat, body={**chat.body, "model": model}, typed=msgspec.structs.replace(chat.typed, model=model))


def pick_served(decision: Decision, served: Served) -> tuple[str, str]:
    """The router's choice when it is served, else the served model with the best expected score − λ·cost − μ on
    a frontier call (the router's own objective; ties to the cheaper). Returns the model and a note for the reason."""
    if served(decision.model):
        return decision.model, ""
    ranked = ranked_served(decision, served)
    if not ranked:
        raise ModelNotFoundError(f"none of the router's models ({', '.join(decision.expected_scores)}) has a "
                                 "deployment here", param="model")
    return ranked[0], f"; router chose {decision.model}, which has no deployment here"


def ranked_served(decision: Decision, served: Served) -> list[str]:
    """The router's served models, best first by its own objective for this decision (``Decision.utility``),
    ties to the cheaper."""
    utility = {m: decision.utility(m) for m in decision.expected_scores if served(m)}
    return sorted(utility, key=lambda m: (-utility[m], decision.expected_costs_usd[m]))


def _rule(decision: Decision) -> str:
    rule = f"frontier call charged {decision.mu:.3g}" if decision.mu else f"lambda {decision.lam:.4g}/USD"
    if decision.hull:  # the learned rule does not beat the hull of single models here (tokenomy.routing.guard)
        rule = f"{rule}: {decision.hull}" if decision.mu or decision.lam else decision.hull
    return f"{rule}, held on the latest {decision.online} requests" if decision.online else rule


def _header_target(text: str) -> Target:
    try:
        return parse_target(text.strip())
    except TargetError as exc:
        raise RouteTargetError(f"header {TARGET_HEADER}: {exc.message}", param=TARGET_HEADER) from exc
