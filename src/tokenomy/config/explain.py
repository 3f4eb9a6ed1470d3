"""A msgspec validation error as one line a user can act on: the key (with the names of mapping entries filled
in), the message, the value given and, for a choice among fixed values, the values it may take."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import msgspec


def describe(exc: msgspec.ValidationError, tree: dict[str, Any], root: type) -> str:
    """``key 'a.b': message (got VALUE)[; one of: x, y]`` for a failed ``msgspec.convert(tree, root)``."""
    text = str(exc)
    if " - at `$" not in text:
        return text
    message, _, path = text.partition(" - at `$")
    key = named(tree, path.rstrip("`").lstrip("."), message)
    line = f"key '{key}': {message} (got {lookup(tree, key)!r})"
    choices = literal_choices(root, key)
    return f"{line}; one of: {', '.join(map(str, choices))}" if choices else line


def named(tree: dict[str, Any], key: str, message: str) -> str:
    """``key`` with each ``[...]`` (msgspec's mark for some entry of a mapping, e.g. ``routing.routers``) replaced
    by the entry's name: the only entry that has the rest of the key, else the only one holding the value the
    message quotes; left as it is when that does not decide."""
    head, mark, rest = key.partition("[...]")
    node = lookup(tree, head) if mark else None
    if not isinstance(node, dict):
        return key
    entries = [named(tree, f"{head}.{name}{rest}", message) for name in node]
    present = [k for k in entries if lookup(tree, k) is not None]
    quoted = [k for k in present if repr(lookup(tree, k)) in message]
    for found in (present, quoted):
        if len(found) == 1:
            return found[0]
    return key


def lookup(tree: Any, key: str) -> Any:
    node = tree
    for part in _parts(key):
        try:
            node = node[int(part)] if part.isdigit() and isinstance(node, list) else node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def literal_choices(root: type, key: str) -> tuple[Any, ...]:
    """The values a ``Literal`` field at ``key`` (a dotted path through ``root``'s Structs, lists and dicts) may
    take; empty when the field is no choice among fixed values."""
    kind: Any = root
    for part in _parts(key):
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            kind = typing.get_type_hints(kind).get(part)
        elif get_origin(kind) in (list, tuple):
            kind = get_args(kind)[0]
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
        else:
            return ()
        if kind is None:
            return ()
    kind = _unwrap(kind)
    return get_args(kind) if get_origin(kind) is Literal else ()


def _unwrap(kind: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, ...]`` → ``X``."""
    if get_origin(kind) is typing.Annotated:
        kind = get_args(kind)[0]
    if get_origin(kind) in (Union, types.UnionType):
        kept = [a for a in get_args(kind) if a is not type(None)]
        if len(kept) == 1:
            return _unwrap(kept[0])
    return kind


def _parts(key: str) -> list[str]:
    return [p for p in key.replace("[", ".").replace("]", "").split(".") if p]
