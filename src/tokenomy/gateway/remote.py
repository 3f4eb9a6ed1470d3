"""A batch handed to a provider's batch API is admitted like any other work (``batch.passthrough`` asks this when it
sends the batch): the key that submitted it must still be valid; each line's model must be allowed, and so must the
deployment that runs it; the key's rate limits take what their window has left; the lines' worst cases, at the batch
rates, are reserved against its budget as one reservation held for the batch's window. A refused line fails at once
with OpenAI's error code and its own ledger row (no call, no cost); the reservation settles to the lines' real cost
when the provider's results are recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from tokenomy.batch.executor import AdmittedLines, LineOutcome
from tokenomy.batch.objects import BatchRecord, line_request_id
from tokenomy.batch.store import PendingLine
from tokenomy.config.settings import DeploymentConfig
from tokenomy.control.auth import Principal
from tokenomy.control.budgets import Reservation
from tokenomy.control.estimate import estimate
from tokenomy.errors import ModelNotAllowedError, TokenomyError
from tokenomy.ledger.trace import RequestTrace

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway

ENDPOINT = "batch.chat.completions"


class RemoteLines:
    """The gateway's ``LineAdmission``."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def admit(self, batch: BatchRecord, lines: Sequence[PendingLine],
                    deployment: DeploymentConfig) -> AdmittedLines:
        control = self._gateway.control
        try:
            principal = await control.keys.principal_for(batch.key_id)
        except TokenomyError as exc:  # the key was revoked, expired or deleted since the batch was submitted
            return AdmittedLines([], [(line, self._refused(batch, line, exc, None)) for line in lines])
        allowed: list[tuple[PendingLine, dict[str, Any]]] = []
        refused: list[tuple[PendingLine, LineOutcome]] = []
        for line in lines:
            body = orjson.loads(line.body)
            try:
                principal.check_model(str(body.get("model")))
                if not principal.may_call(deployment.model, deployment.tier):
                    raise ModelNotAllowedError(f"this key may not use deployment '{deployment.name}' "
                                                f"({deployment.model})", param="model")
            except TokenomyError as exc:
                refused.append((line, self._refused(batch, line, exc, principal)))
                continue
            allowed.append((line, body))
        pricer, counter = self._gateway.accountant.pricer, self._gateway.accountant.counter
        default = self._gateway.settings.control.default_max_output_tokens
        guesses = [estimate(body, [deployment], pricer, counter, default, batch=True) for _, body in allowed]
        window_s = max(60.0, batch.expires_at - batch.created_at) + 3600.0
        ticket = await control.admit_lines(principal, batch.id, guesses, window_s)
        send = [line for line, _ in allowed[:ticket.admitted]]
        if ticket.refusal is not None:
            refused += [(line, self._refused(batch, line, ticket.refusal, principal))
                        for line, _ in allowed[ticket.admitted:]]
        return AdmittedLines(send, refused, _held(principal, ticket.reservation))

    async def settle(self, batch: BatchRecord, held: Mapping[str, Any], cost_pusd: int) -> None:
        reservation = held.get("reservation")
        if reservation:
            counters = [(str(scope), str(period)) for scope, period in reservation["counters"]]
            await self._gateway.control.settle_lines(
                Reservation(str(reservation["id"]), int(reservation["amount_pusd"]), counters), cost_pusd)

    def _refused(self, batch: BatchRecord, line: PendingLine, exc: TokenomyError,
                 principal: Principal | None) -> LineOutcome:
        """A line refused before it was sent: its error, and its ledger row (no call, no cost)."""
        rid = line_request_id(batch.id, line.line_no)
        body = orjson.loads(line.body)
        trace = RequestTrace(id=rid, endpoint=ENDPOINT, requested_model=str(body.get("model")), stream=False,
                             body=body, key_id=batch.key_id, tenant=principal.team_name if principal else None,
                             tags=principal.tags_json if principal else None)
        entry = self._gateway.account(trace, exc.status, exc)
        return LineOutcome(status_code=exc.status, body=exc.to_body(), request_id=rid, ledger=entry.as_json())


def _held(principal: Principal, reservation: Reservation | None) -> dict[str, Any]:
    """What the batch's state keeps until its results arrive: the key's team and tags (for the lines' ledger rows)
    and the reservation to settle."""
    kept: dict[str, Any] = {"tenant": principal.team_name, "tags": principal.tags_json}
    if reservation is not None:
        kept["reservation"] = {"id": reservation.id, "amount_pusd": reservation.amount_pusd,
                               "counters": [list(c) for c in reservation.counters]}
    return kept
