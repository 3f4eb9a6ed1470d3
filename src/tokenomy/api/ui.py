"""The dashboard: ``GET /ui`` (a login form until the master key is given, then the page), ``POST /ui/login``,
``POST /ui/logout``, ``GET /ui/api/summary`` (the page's numbers, as JSON) and ``GET /ui/static/{name}`` (its script,
style and the vendored Chart.js; nothing comes from a CDN).

Every number is a ledger query: the totals are ``spend_report`` itself (what ``tokenomy spend --json`` prints), the
daily and recent views come from ``ledger.breakdowns``. The session is a signed cookie (HMAC-SHA256 of its expiry
under the master key): any replica can check it, nothing is stored, and changing the master key ends every session.
It is ``HttpOnly``, ``SameSite=Strict`` and scoped to ``/ui``; pages carry a strict Content-Security-Policy. Wrong
guesses at ``/ui/login`` are throttled per address and in total (``api.throttle``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokenomy.api.admin import budget_status, window_of
from tokenomy.api.responses import json_response, read_body
from tokenomy.api.throttle import LoginThrottle
from tokenomy.control.auth import Principal
from tokenomy.errors import AuthenticationError, RateLimitError, RouteNotFoundError
from tokenomy.gateway.core import Gateway
from tokenomy.ledger.breakdowns import daily, recent
from tokenomy.ledger.queries import spend_report
from tokenomy.pricing.cost import TokenUsage

STATIC = Path(__file__).parent / "ui"
_FILES = {"app.js": "text/javascript", "style.css": "text/css", "chart.umd.min.js": "text/javascript"}
COOKIE = "tokenomy_ui"
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_PAGE_HEADERS = {"content-security-policy": _CSP, "x-content-type-options": "nosniff", "x-frame-options": "DENY",
                 "referrer-policy": "no-referrer", "cache-control": "no-store"}


def _master(gateway: Gateway) -> bytes | None:
    key = gateway.settings.control.master_key
    return key.encode() if key else None


def session_token(master: bytes, expires_s: int) -> str:
    mac = hmac.new(master, f"tokenomy-ui:{expires_s}".encode(), hashlib.sha256).hexdigest()
    return f"{expires_s}.{mac}"


def _valid_session(gateway: Gateway, request: Request) -> bool:
    master = _master(gateway)
    token = request.cookies.get(COOKIE, "")
    expires, _, _ = token.partition(".")
    if master is None or not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(token, session_token(master, int(expires)))


def _authorised(gateway: Gateway, request: Request) -> bool:
    control = gateway.control
    return _valid_session(gateway, request) or (control is not None and control.keys.is_master(
        _bearer(request)))


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _page(name: str, status: int = 200, message: str = "") -> Response:
    html = (STATIC / name).read_text(encoding="utf-8").replace("{{message}}", escape(message))
    return Response(html, status_code=status, media_type="text/html", headers=_PAGE_HEADERS)


async def ui_page(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    if _master(gateway) is None:
        return _page("login.html", 403, "The dashboard needs a master key: start the gateway with "
                     "TOKENOMY_MASTER_KEY set.")
    if not _valid_session(gateway, request):
        return _page("login.html")
    return _page("dashboard.html")


async def ui_login(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    master = _master(gateway)
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else ""
    wait_s = throttle.wait_s(client)
    if wait_s > 0:
        raise RateLimitError("too many wrong master keys; try again later", retry_after_s=wait_s)
    raw = await read_body(request, 16 * 1024)
    given = (parse_qs(raw.decode("utf-8", "replace")).get("master_key") or [""])[0]
    if master is None or not hmac.compare_digest(given.encode(), master):
        throttle.failed(client)
        return _page("login.html", 401, "That is not the master key.")
    expires = int(time.time() + gateway.settings.control.ui_session_s)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(COOKIE, session_token(master, expires), max_age=int(gateway.settings.control.ui_session_s),
                        path="/ui", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


async def ui_logout(request: Request) -> Response:
    response = RedirectResponse("/ui", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


async def ui_static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _FILES:
        raise RouteNotFoundError(f"unknown URL: {request.url.path}")
    return Response((STATIC / name).read_bytes(), media_type=_FILES[name],
                    headers={"cache-control": "max-age=3600", "x-content-type-options": "nosniff"})


async def ui_summary(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    if not _authorised(gateway, request):
        raise AuthenticationError("log in at /ui with the master key")
    window, _ = window_of(request)
    path = gateway.ledger_source
    pricer = gateway.accountant.pricer

    def cached_saving(model: str, tokens: int) -> Decimal | None:
        at = _utcnow()
        full = pricer.model_cost(model, TokenUsage(input_tokens=tokens), at)
        cached = pricer.model_cost(model, TokenUsage(cached_read_tokens=tokens), at)
        return None if full is None or cached is None else full - cached

    def gather() -> dict[str, Any]:
        return {"report": spend_report(path, window),
                "by_tier": spend_report(path, window, "tier")["groups"],
                "by_key": spend_report(path, window, "key")["groups"],
                "by_team": spend_report(path, window, "team")["groups"],
                "daily": daily(path, window, cached_saving), "recent": recent(path, 50)}

    summary = await asyncio.to_thread(gather)
    summary["keys"], summary["teams"] = await _budgets(gateway)
    return json_response(summary, headers={"cache-control": "no-store"})


async def _budgets(gateway: Gateway) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    control = gateway.control
    if control is None:
        return [], []
    keys = []
    for record in sorted(control.keys.keys, key=lambda k: k.created_us):
        principal = Principal("key", record, control.keys.teams.get(record.team) if record.team else None)
        keys.append({**record.public(), "budgets": [b for b in await budget_status(control, principal)
                                                    if b["scope"].startswith("key:")]})
    teams = []
    for team in control.keys.teams.values():
        status = await budget_status(control, Principal("key", None, team))
        teams.append({**team.public(), "budgets": [b for b in status if b["scope"].startswith("team:")]})
    return keys, teams


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)
