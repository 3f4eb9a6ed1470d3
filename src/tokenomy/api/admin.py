"""The admin API (master key only): ``/admin/keys`` (list, create, show, update, revoke), ``/admin/teams`` and
``/admin/spend``; and what a virtual key may see of itself: ``GET /v1/key`` and ``GET /v1/spend`` (its own requests
only). Every change is written to the key store and this replica's key cache is reloaded at once; the other
replicas pick it up within ``control.key_refresh_s``."""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import json_response, principal_of, read_body, request_id
from tokenomy.control.admission import Admission, budget_scopes
from tokenomy.control.auth import Principal
from tokenomy.control.keys import VISIBLE, KeyRecord, parse_expiry
from tokenomy.errors import AuthenticationError, InvalidRequestError, TokenomyError
from tokenomy.gateway.core import Gateway
from tokenomy.ledger.breakdowns import as_usd
from tokenomy.ledger.queries import GROUPS, Window, spend_report
from tokenomy.ledger.window import window_from
from tokenomy.wire.validation import parse_json_object, typed_view

Positive = Annotated[int, msgspec.Meta(gt=0, le=1_000_000_000)]
Period = Annotated[str, msgspec.Meta(pattern="^(total|daily|monthly)$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=VISIBLE)]
_UNSET: Any = msgspec.UNSET


class KeyFields(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = _UNSET
    team: Name | msgspec.UnsetType | None = _UNSET
    budget_usd: Decimal | msgspec.UnsetType | None = _UNSET
    period: Period | msgspec.UnsetType = _UNSET
    rpm: Positive | msgspec.UnsetType | None = _UNSET
    tpm: Positive | msgspec.UnsetType | None = _UNSET
    models: list[Name] | msgspec.UnsetType | None = _UNSET
    expires: str | msgspec.UnsetType | None = _UNSET
    tags: dict[str, str] | msgspec.UnsetType | None = _UNSET

    def changes(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not msgspec.UNSET}
        if "expires" in out:
            value = out.pop("expires")
            out["expires_us"] = parse_expiry(value) if value is not None else None
        if "tags" in out and out["tags"] is None:
            out["tags"] = {}
        return out


class TeamFields(msgspec.Struct, forbid_unknown_fields=True):
    budget_usd: Decimal | msgspec.UnsetType | None = _UNSET
    period: Period | msgspec.UnsetType = _UNSET
    rpm: Positive | msgspec.UnsetType | None = _UNSET
    tpm: Positive | msgspec.UnsetType | None = _UNSET


def _control(request: Request, *, admin: bool = True) -> tuple[Gateway, Admission]:
    gateway: Gateway = request.app.state.gateway
    control = gateway.control
    assert control is not None
    if admin:
        control.keys.require_master(request.headers)
    return gateway, control


async def _body(request: Request, gateway: Gateway, shape: type[Any]) -> Any:
    raw = await read_body(request, gateway.settings.server.max_body_bytes)
    body = parse_json_object(raw)
    for name in ("rpm", "tpm"):  # JSON Schema counts 60.0 as an integer; so do we
        value = body.get(name)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            body[name] = int(value)
    return typed_view(body, shape)


def _headers(request: Request) -> dict[str, str]:
    return {"x-request-id": request_id(request)}


async def budget_status(control: Admission, principal: Principal) -> list[dict[str, Any]]:
    """Each budget of a key (its own, its team's): amount, period, spent and reserved now."""
    now = time.time_ns() // 1000
    scopes = budget_scopes(principal)
    figures = await control.budgets.store.read([s.counter(now) for s in scopes])
    return [{"scope": s.name, "period": s.period, "period_id": s.counter(now)[1], "budget_usd": as_usd(s.budget_pusd),
             "spent_usd": as_usd(spent), "reserved_usd": as_usd(reserved),
             "remaining_usd": as_usd(max(0, s.budget_pusd - spent - reserved))}
            for s, (spent, reserved) in zip(scopes, figures, strict=True)]


async def _shown(control: Admission, record: KeyRecord) -> dict[str, Any]:
    principal = Principal("key", record, control.keys.teams.get(record.team) if record.team else None)
    return {**record.public(), "budgets": await budget_status(control, principal)}


async def list_keys(request: Request) -> Response:
    _, control = _control(request)
    records = await asyncio.to_thread(control.keys.store.list_keys)
    data = [await _shown(control, r) for r in records]
    return json_response({"object": "list", "data": data}, headers=_headers(request))


async def create_key(request: Request) -> Response:
    gateway, control = _control(request)
    fields = (await _body(request, gateway, KeyFields)).changes()
    name = fields.pop("name", None)
    if name is None:
        raise InvalidRequestError("a new key needs a name", param="name")
    record, key = await asyncio.to_thread(lambda: control.keys.store.create(name, **fields))
    await control.keys.reload()
    return json_response({"key": key, **await _shown(control, record)}, status=201, headers=_headers(request))


async def get_key(request: Request) -> Response:
    _, control = _control(request)
    record = await asyncio.to_thread(control.keys.store.find, request.path_params["key_id"])
    return json_response(await _shown(control, record), headers=_headers(request))


async def update_key(request: Request) -> Response:
    gateway, control = _control(request)
    changes = (await _body(request, gateway, KeyFields)).changes()
    record = await asyncio.to_thread(control.keys.store.update, request.path_params["key_id"], changes)
    await control.keys.reload()
    return json_response(await _shown(control, record), headers=_headers(request))


async def revoke_key(request: Request) -> Response:
    _, control = _control(request)
    record = await asyncio.to_thread(control.keys.store.revoke, request.path_params["key_id"])
    await control.keys.reload()
    return json_response(await _shown(control, record), headers=_headers(request))


async def list_teams(request: Request) -> Response:
    _, control = _control(request)
    teams = await asyncio.to_thread(control.keys.store.teams)
    return json_response({"object": "list", "data": [t.public() for t in teams]}, headers=_headers(request))


async def put_team(request: Request) -> Response:
    gateway, control = _control(request)
    fields = {f: getattr(body, f) for body in [await _body(request, gateway, TeamFields)]
              for f in TeamFields.__struct_fields__ if getattr(body, f) is not msgspec.UNSET}
    name = request.path_params["name"]
    if not re.search(VISIBLE, name) or len(name) > 200:
        raise InvalidRequestError("a team name is 1 to 200 characters", param="name")
    team = await asyncio.to_thread(lambda: control.keys.store.set_team(name, **fields))
    await control.keys.reload()
    return json_response(team.public(), headers=_headers(request))


def window_of(request: Request) -> tuple[Window, str | None]:
    by = request.query_params.get("by")
    if by is not None and by not in GROUPS:
        raise InvalidRequestError(f"by must be one of {', '.join(sorted(GROUPS))}", param="by")
    return window_from(request.query_params.get("since", "30d"), time.time()), by


async def admin_spend(request: Request) -> Response:
    gateway, _ = _control(request)
    window, by = window_of(request)
    report = await asyncio.to_thread(spend_report, gateway.ledger_source, window, by)
    return json_response(report, headers=_headers(request))


async def own_key(request: Request) -> Response:
    """GET /v1/key: the calling key, its budgets and what is left of them."""
    _, control = _control(request, admin=False)
    principal = principal_of(request)
    if principal.kind == "master":
        return json_response({"id": "master", "name": "master key", "display": "master", "status": "active",
                              "budgets": []}, headers=_headers(request))
    if principal.key is None:
        raise AuthenticationError("GET /v1/key describes a virtual key; this request used none")
    return json_response(await _shown(control, principal.key), headers=_headers(request))


async def own_spend(request: Request) -> Response:
    """GET /v1/spend: the spend report over the calling key's own requests (the master key sees everything)."""
    gateway, _ = _control(request, admin=False)
    principal = principal_of(request)
    if principal.kind == "anonymous":
        raise AuthenticationError("GET /v1/spend needs a virtual key (or the master key)")
    window, by = window_of(request)
    if principal.key is not None and by == "key":
        by = None
    try:
        report = await asyncio.to_thread(spend_report, gateway.ledger_source, window, by, key_id=principal.key_id)
    except TokenomyError as exc:
        if exc.code != "ledger_store_error":
            raise
        raise InvalidRequestError("no spend recorded yet") from exc
    return json_response(report, headers=_headers(request))
