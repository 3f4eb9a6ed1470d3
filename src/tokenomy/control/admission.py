"""The request path's one door into team control: who may ask (``authenticate``), which cache namespace they read,
and, before each upstream call, the rate limits and the budget reservation (``admit``); after it, the settlement to
the ledger's exact cost (``settle``). Cache hits never reach ``admit``: they cost nothing and spend no limit.

Deployments with their own ``rpm``/``tpm`` (the upstream's quota) are checked by ``admit_deployment``, which the
dispatcher calls before trying each deployment of a chain: one at its limit is skipped to the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenomy.config.settings import ControlConfig, DeploymentConfig
from tokenomy.control.auth import KeyCache, Principal
from tokenomy.control.budgets import BudgetGuard, Reservation, Scope
from tokenomy.control.estimate import Estimate, embeddings_estimate, estimate, explicit_max_output, input_tokens
from tokenomy.control.ratelimit import Limit, RateLimiter, RateLimitStoreError
from tokenomy.control.redis_budgets import BudgetRedisError
from tokenomy.errors import InsufficientQuotaError, RateLimitError, TokenomyError
from tokenomy.ledger.accounting import Pricer, TokenCounter
from tokenomy.ledger.records import LedgerEntry, to_pusd
from tokenomy.outage import OutageLog
from tokenomy.providers.registry import Deployment
from tokenomy.wire.validation import ValidChat

log = logging.getLogger("tokenomy.control")


@dataclass(slots=True)
class Ticket:
    """What ``admit`` took from a request's limits and budgets; ``settle`` gives back the difference."""

    principal: Principal
    estimate: Estimate
    limits: list[Limit] = field(default_factory=list)
    reservation: Reservation | None = None
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False


@dataclass(frozen=True, slots=True)
class LinesTicket:
    """What ``admit_lines`` admitted: the first ``admitted`` lines; the others get ``refusal``."""

    admitted: int
    refusal: TokenomyError | None
    reservation: Reservation | None


def _fit(limit: Limit, guesses: Sequence[Estimate], left: int) -> int:
    """How many of ``guesses`` (in order) fit in what a rate limit has left."""
    if limit.kind == "requests":
        return min(len(guesses), max(0, left))
    count, used = 0, 0
    for guess in guesses:
        used += guess.input_tokens + guess.asked_output_tokens
        if used > left:
            break
        count += 1
    return count


def budget_scopes(principal: Principal) -> list[Scope]:
    scopes: list[Scope] = []
    key, team = principal.key, principal.team
    if key is not None and key.budget_usd is not None:
        scopes.append(Scope(f"key:{key.id}", to_pusd(key.budget_usd) or 0, key.period))
    if team is not None and team.budget_usd is not None:
        scopes.append(Scope(f"team:{team.name}", to_pusd(team.budget_usd) or 0, team.period))
    return scopes


def rate_limits(principal: Principal) -> list[Limit]:
    limits: list[Limit] = []
    for scope, owner in ((f"key:{principal.key_id}", principal.key), (f"team:{principal.team_name}", principal.team)):
        if owner is None:
            continue
        if owner.rpm:
            limits.append(Limit(scope, "requests", owner.rpm))
        if owner.tpm:
            limits.append(Limit(scope, "tokens", owner.tpm))
    return limits


class Admission:
    def __init__(self, config: ControlConfig, keys: KeyCache, budgets: BudgetGuard, limiter: RateLimiter,
                 pricer: Pricer, counter: TokenCounter | None, deployments: Sequence[Deployment]) -> None:
        self.config = config
        self.keys = keys
        self.budgets = budgets
        self.limiter = limiter
        self._pricer = pricer
        self._counter = counter
        self._deployment_limits: dict[str, list[Limit]] = {}
        self.outage = OutageLog("spend controls (redis)", log)
        self._background: set[asyncio.Task[None]] = set()
        for d in deployments:
            scope = f"deployment:{d.config.adapter_of or d.name}"  # a base's adapters share its upstream's quota
            found = [Limit(scope, "requests", d.config.rpm)] if d.config.rpm else []
            found += [Limit(scope, "tokens", d.config.tpm)] if d.config.tpm else []
            if found:
                self._deployment_limits[d.name] = found

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return await self.keys.authenticate(headers)

    @staticmethod
    def namespace(principal: Principal, base: str) -> str:
        """The exact/semantic cache namespace: a team shares its answers, a key without a team keeps its own."""
        if principal.team_name:
            return f"{base}:team:{principal.team_name}"
        if principal.key_id:
            return f"{base}:key:{principal.key_id}"
        return base

    async def admit(self, principal: Principal, rid: str, guess: Callable[[], Estimate]) -> Ticket | None:
        """Take the request's share of the caller's rate limits and reserve its worst case against the caller's
        budgets (``guess`` is only computed when there is a limit or a budget). Raises RateLimitError or
        InsufficientQuotaError (429) before any upstream call; None when nothing applies to this caller."""
        scopes = budget_scopes(principal)
        limits = rate_limits(principal)
        if not scopes and not limits:
            return None
        ticket = Ticket(principal, guess(), limits)
        try:
            if limits:
                ticket.headers = await self.limiter.admit(
                    limits, ticket.estimate.input_tokens + ticket.estimate.asked_output_tokens)
            if scopes:
                ticket.reservation = await self.budgets.reserve(rid, scopes, ticket.estimate.worst_case_pusd)
        except (RateLimitStoreError, BudgetRedisError) as exc:
            if self.config.on_redis_down == "closed":
                self.outage.failed(exc.message, "refusing requests under a budget or a rate limit (fail closed)")
                raise
            self.outage.failed(exc.message, "serving without budget and rate-limit checks (fail open)")
            ticket.limits, ticket.reservation = [], None
            return ticket
        self.outage.recovered()
        return ticket

    async def admit_chat(self, principal: Principal, chat: ValidChat, rid: str,
                         chain: Sequence[DeploymentConfig]) -> Ticket | None:
        """A chat request, its worst case priced at the dearest deployment of ``chain`` it may reach."""
        return await self.admit(principal, rid, lambda: estimate(
            chat.body, chain, self._pricer, self._counter, self.config.default_max_output_tokens))

    async def admit_embeddings(self, principal: Principal, body: Mapping[str, Any], rid: str,
                               chain: Sequence[DeploymentConfig]) -> Ticket | None:
        """An embeddings request: its input tokens (counted offline) at the dearest deployment of ``chain``."""
        return await self.admit(principal, rid, lambda: embeddings_estimate(body, chain, self._pricer,
                                                                            self._counter))

    async def admit_lines(self, principal: Principal, rid: str, guesses: Sequence[Estimate],
                          ttl_s: float) -> LinesTicket:
        """A provider batch's lines, in order, at submission: as many as the caller's rate limits have left in their
        window and its budgets can cover now (one reservation for them all, held up to ``ttl_s``: the provider's
        window). Nothing waits: the lines that do not fit are refused with the reason."""
        count = len(guesses)
        refusal: TokenomyError | None = None
        limits, scopes = rate_limits(principal), budget_scopes(principal)
        reservation = None
        try:
            for limit in limits:
                left, reset_s = await self.limiter.remaining(limit)
                fit = _fit(limit, guesses[:count], left)
                if fit < count:
                    count = fit
                    refusal = RateLimitError(f"{limit.scope} has {left} {limit.kind} left of its {limit.per_minute} "
                                             "per minute for this batch's lines", retry_after_s=reset_s,
                                             code=f"{limit.kind}_rate_limited")
            if scopes and count:
                fitted, reservation = await self.budgets.reserve_prefix(
                    rid, scopes, [g.worst_case_pusd for g in guesses[:count]], ttl_s)
                if fitted < count:
                    count = fitted
                    owners = " and ".join(scope.name for scope in scopes)
                    refusal = InsufficientQuotaError(f"the budget of {owners} cannot cover this line's worst case "
                                                     f"after the batch's first {fitted} lines")
            for limit in limits:
                used = count if limit.kind == "requests" else sum(g.input_tokens + g.asked_output_tokens
                                                                  for g in guesses[:count])
                await self.limiter.charge(limit, used)
        except (RateLimitStoreError, BudgetRedisError) as exc:
            if self.config.on_redis_down == "closed":
                self.outage.failed(exc.message, "refusing requests under a budget or a rate limit (fail closed)")
                raise
            self.outage.failed(exc.message, "serving without budget and rate-limit checks (fail open)")
        return LinesTicket(count, refusal, reservation)

    async def settle_lines(self, reservation: Reservation, cost_pusd: int) -> None:
        """A provider batch's results are in: its reservation settles to what its lines cost."""
        try:
            await self.budgets.settle(reservation, cost_pusd)
        except BudgetRedisError as exc:
            self.outage.failed(exc.message, "a batch settlement was not counted (the ledger has the cost)")

    async def settle(self, ticket: Ticket | None, entry: LedgerEntry | None) -> None:
        """Settle to the ledger entry's exact cost (none: the request never produced one; release it all)."""
        if ticket is None or ticket.settled:
            return
        ticket.settled = True
        if ticket.reservation is not None:
            cost = entry.request.cost_usd if entry is not None else None
            try:
                await self.budgets.settle(ticket.reservation, to_pusd(cost) or 0)
            except BudgetRedisError as exc:  # the answer is served; its reservation lapses after its TTL
                self.outage.failed(exc.message, "a settlement was not counted (the ledger has the cost)")
        if entry is None:
            return
        extra = entry.request.tokens.output_tokens - ticket.estimate.asked_output_tokens
        for limit in ticket.limits:
            if limit.kind == "tokens" and extra > 0:
                await self._quietly(self.limiter.charge(limit, extra))

    async def admit_deployment(self, dep: Deployment, chat: ValidChat) -> float | None:
        """None when ``dep`` may take this request now, else the seconds until its own limit frees up."""
        limits = self._deployment_limits.get(dep.name)
        if not limits:
            return None
        tokens = input_tokens(chat.body, dep.config.sent_model, self._counter) + (explicit_max_output(chat.body) or 0)
        try:
            await self.limiter.admit(limits, tokens)
        except RateLimitError as exc:
            return exc.retry_after_s or 1.0
        except RateLimitStoreError as exc:
            if self.config.on_redis_down == "closed":
                self.outage.failed(exc.message, "refusing requests under a budget or a rate limit (fail closed)")
                raise
            self.outage.failed(exc.message, "serving without deployment rate limits (fail open)")
        return None

    async def settle_deployments(self, entry: LedgerEntry, asked_output: int) -> None:
        for call in entry.calls:
            extra = call.tokens.output_tokens - asked_output
            for limit in self._deployment_limits.get(call.deployment, ()):
                if limit.kind == "tokens" and extra > 0:
                    await self._quietly(self.limiter.charge(limit, extra))

    async def _quietly(self, work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except RateLimitStoreError as exc:
            self.outage.failed(exc.message, "output tokens after a call were not charged")
        except TokenomyError as exc:
            log.warning("rate-limit charge after the call failed: %s", exc.message)

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Work that waits for a store (a degraded start's budget rebuild); cancelled by ``aclose``."""
        self._background.add(asyncio.get_running_loop().create_task(work))

    async def aclose(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.keys.stop()
        await self.budgets.store.aclose()
        await self.limiter.aclose()
