"""Who asks, and how: what a door hands the core beside the request body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokenomy.control.auth import ANONYMOUS, Principal

_NONE: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Caller:
    """``principal``: the authenticated caller. ``client_request_id``: the client's own id for the request, recorded
    in the ledger and echoed back, never a key. ``options``: the request's options the path reads, by lower-case
    name (``cache-control``, ``x-tokenomy-cache``, ``x-tokenomy-route-target``); a door passes its request headers.
    ``endpoint``: what the ledger calls the door (``chat.completions``, ``embeddings``, ``batch.chat.completions``,
    ``messages``, ``responses``). ``anthropic``: the Anthropic Messages request a chat body was translated from (the
    Messages door's, ``{"request": ..., "beta": ...}``): an Anthropic deployment is sent that instead of the
    translation. Only a door sets it; a chat body that carries it on its own has it removed."""

    principal: Principal = ANONYMOUS
    client_request_id: str | None = None
    options: Mapping[str, str] = field(default_factory=lambda: _NONE)
    endpoint: str | None = None
    anthropic: Mapping[str, Any] | None = None
