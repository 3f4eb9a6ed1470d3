"""Reading a JSON-lines file whose every line must be an object: one place for opening it, skipping blank lines and
naming the file and line of a bad one. Readers that must skip bad lines instead (``tokenomy audit``) do their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tokenomy.errors import TokenomyError


def json_objects(path: Path, error: type[TokenomyError], what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, object)`` per non-blank line, ``where`` being ``path:line``. Raises ``error`` with a one-line
    message when the file cannot be read (``cannot read WHAT PATH``) or a line is not a JSON object."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise error(f"{where}: not valid JSON ({exc})") from exc
            if not isinstance(value, dict):
                raise error(f"{where}: expected a JSON object")
            yield where, value
