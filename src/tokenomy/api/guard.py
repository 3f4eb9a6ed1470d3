"""The door guard of a gateway without a master key (loopback mode): it trusts no web page.

A gateway with no master key serves anyone who can reach it, spending the provider keys of the environment it runs
in. Only this machine should reach it, but a web page open in the user's browser can: it can POST a "simple"
request (``Content-Type: text/plain``, no preflight) to ``http://127.0.0.1:4000`` (CSRF), or resolve its own name to
127.0.0.1 and then read the answers (DNS rebinding: the request carries ``Host: attacker.example``). So, without a
master key, every request must name a loopback host (``localhost``, 127.0.0.0/8, ``[::1]``) or one listed in
``server.allowed_hosts``; a request with an ``Origin`` must come from such a host too (or a ``control.cors_origins``
origin); and a request body sent to a JSON endpoint must say ``Content-Type: application/json`` (or ``+json``).
With a master key none of this applies: a page cannot send the key (docs/security.md).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenomy.api.responses import error_response, request_id
from tokenomy.config.settings import Settings
from tokenomy.errors import ForeignOriginError, TokenomyError, UnsupportedMediaTypeError

ANY = "*"
_FORM_PATHS = ("/v1/files", "/ui/login", "/ui/logout")  # multipart upload and the login form: not JSON
_BODY_METHODS = ("POST", "PUT", "PATCH")
_READ = frozenset((b"host", b"origin", b"content-type", b"content-length", b"transfer-encoding"))


@functools.lru_cache(maxsize=256)  # parsed once per Host value, not per request
def loopback_name(host: str) -> bool:
    """``localhost`` (or a name under it), an address in 127.0.0.0/8, or ``::1``."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LoopbackGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._hosts = frozenset(h.lower() for h in settings.server.allowed_hosts)
        self._origins = frozenset(o.lower().rstrip("/") for o in settings.control.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self.check(_guarded(scope), scope["method"], str(scope.get("path", "")))
            except TokenomyError as exc:
                await error_response(exc, request_id(Request(scope)))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, headers: Mapping[str, str], method: str, path: str) -> None:
        """Raise the refusal of a request with these headers (names lower-case; the first of each kept)."""
        if ANY in self._hosts:
            return
        host = _hostname(headers.get("host", ""))
        if not self._allowed(host):
            raise ForeignOriginError(f"Host {host[:100]!r} is not served: a gateway without a master key answers "
                                     "only loopback names (add names to server.allowed_hosts, or set a master key)")
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in self._origins and not self._allowed(
                _hostname(urlsplit(origin).netloc)):
            raise ForeignOriginError(f"requests from Origin {origin[:100]!r} are not served: a gateway without a "
                                     "master key takes no request from a web page elsewhere (control.cors_origins)")
        if method in _BODY_METHODS and _has_body(headers) and not path.startswith(_FORM_PATHS):
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json" and not kind.endswith("+json"):
                raise UnsupportedMediaTypeError(f"a JSON body must be sent with Content-Type: application/json "
                                                f"(got {kind[:60] or 'none'!r})")

    def _allowed(self, host: str) -> bool:
        return bool(host) and (loopback_name(host) or host in self._hosts)


def _hostname(netloc: str) -> str:
    """The host of a ``Host`` header or an origin's netloc, lower-case, without the port."""
    netloc = netloc.strip().lower().rpartition("@")[2]
    if netloc.startswith("["):
        return netloc.partition("]")[0] + "]"
    return netloc.partition(":")[0]


def _guarded(scope: Scope) -> dict[str, str]:
    """The headers the guard reads, in one pass over the raw list (the first of each name, as Starlette's ``get``
    returns it)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in _READ:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def _has_body(headers: Mapping[str, str]) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() not in ("", "0"))
