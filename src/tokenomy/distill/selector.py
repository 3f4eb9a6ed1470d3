"""Which traffic a distillation task is: a request's group keys by kind (the system prompt's hash, its route, its
tags), and the selector a promoted student matches requests with (``system=HASH``, ``route=NAME``, ``tag=TAG``). Read
by ``distill tasks`` / ``collect`` on logged records and by the gateway on live requests, so it knows neither."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokenomy.distill.examples import message_text, system_hash
from tokenomy.errors import DistillError

KINDS = ("system", "route", "tag")


class Asked(Protocol):
    """A request as a selector reads it: a logged record, or a live request."""

    @property
    def model(self) -> str: ...

    @property
    def body(self) -> Mapping[str, Any] | None: ...

    @property
    def metadata(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """A live chat request as an ``Asked``."""

    model: str
    body: Mapping[str, Any] | None
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Selector:
    kind: str  # system | route | tag
    value: str

    @classmethod
    def parse(cls, text: str) -> Selector:
        kind, sep, value = text.partition("=")
        if not sep or kind not in KINDS or not value:
            raise DistillError(f"--where {text!r}: expected system=HASH, route=NAME or tag=TAG")
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"

    def matches(self, rec: Asked) -> bool:
        return self.value in keys_of(rec, self.kind)


def _metadata(rec: Asked) -> dict[str, Any]:
    body_meta = (rec.body or {}).get("metadata")
    merged = dict(body_meta) if isinstance(body_meta, dict) else {}
    merged.update(rec.metadata or {})
    return merged


def system_text(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    return "\n".join(message_text(m.get("content")) for m in messages or ()
                     if isinstance(m, dict) and m.get("role") in ("system", "developer"))


def keys_of(rec: Asked, kind: str) -> list[str]:
    """The group keys of one record for one kind (a record may carry several tags)."""
    if kind == "system":
        text = system_text(rec.body)
        return [system_hash(text)] if text else []
    meta = _metadata(rec)
    if kind == "route":
        route = meta.get("route") or (rec.body or {}).get("model") or rec.model
        return [str(route)]
    raw = meta.get("tags")
    tags: list[Any] = raw if isinstance(raw, list) else [meta.get("tag")]
    return [str(t) for t in tags if isinstance(t, str | int) and str(t)]
