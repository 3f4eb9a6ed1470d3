"""Batch input files: one ``{"custom_id", "method", "url", "body"}`` object a line, checked line by line.

Checked on upload (a file that fails is refused with the first problems, each naming its line) and again when a
batch starts (``validating``: every line's ``url`` must be the batch's endpoint). Bodies are validated exactly as the
endpoint would validate them, so a line that passed cannot fail later for its shape.

The check streams (``check_lines``): one line is held at a time, custom ids are remembered by a 16-byte digest and
only the first ``MAX_KEPT`` problems are kept, so checking a file takes memory bounded by its longest line, not by
its size (on 939b14d a 52 MB file took +751 MB).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokenomy.batch.objects import ENDPOINTS
from tokenomy.errors import BatchInputError, InvalidRequestError
from tokenomy.wire.validation import validate_chat

MAX_REPORTED = 10
MAX_KEPT = 1000  # problems a check keeps (a batch's ``errors`` lists up to this many)
_WINDOW = re.compile(r"(?P<n>[1-9][0-9]*)(?P<unit>[smh])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class InputLine:
    line_no: int  # 1-based, as an editor shows it
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LineProblem:
    line_no: int
    message: str
    param: str | None = None
    code: str = "invalid_request"

    def to_openai(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line_no}


def completion_window_s(text: str) -> int:
    """Seconds in a completion window: OpenAI's ``24h``, or any shorter ``<N>s|m|h`` (a tokenomy extension)."""
    match = _WINDOW.fullmatch(text)
    seconds = int(match.group("n")) * _UNIT_S[match.group("unit")] if match else 0
    if not 0 < seconds <= 86_400:
        raise InvalidRequestError(f"'completion_window' must be '24h' (or a shorter duration like '30m'), got "
                                  f"{text!r}", param="completion_window")
    return seconds


@dataclass(slots=True)
class FileCheck:
    """What a streamed check found: the requests it counted and the first ``MAX_KEPT`` problems."""

    lines: int = 0
    problems: list[LineProblem] = field(default_factory=list)
    more_problems: int = 0  # problems found beyond the ones kept


def check_lines(raw: Iterable[bytes], *, max_lines: int, endpoint: str | None = None) -> FileCheck:
    """Check a batch input file line by line, keeping no line (memory bounded by the longest one); with
    ``endpoint``, every line's ``url`` must be that endpoint (a batch's)."""
    check = FileCheck()
    for item in checked(raw, max_lines=max_lines):
        if isinstance(item, InputLine) and endpoint is not None and item.url != endpoint:
            item = LineProblem(item.line_no, f"url {item.url!r} does not match the batch's endpoint {endpoint!r}",
                               "url", "mismatched_url")
        if isinstance(item, InputLine):
            check.lines += 1
        elif len(check.problems) < MAX_KEPT:
            check.problems.append(item)
        else:
            check.more_problems += 1
    return check


def parse_lines(raw: Iterable[bytes], *, max_lines: int) -> tuple[list[InputLine], list[LineProblem]]:
    """Every line of a batch input file, and every problem found (a problem's line is left out)."""
    lines: list[InputLine] = []
    problems: list[LineProblem] = []
    for item in checked(raw, max_lines=max_lines):
        (lines if isinstance(item, InputLine) else problems).append(item)  # type: ignore[arg-type]
    return lines, problems


def checked(raw: Iterable[bytes], *, max_lines: int) -> Iterator[InputLine | LineProblem]:
    """Each request line of a file, or the problem that replaces it, in file order."""
    seen: dict[bytes, int] = {}  # custom_id digest -> its line
    count = 0
    for line_no, text in enumerate(raw, start=1):
        if not text.strip():
            continue
        count += 1
        if count > max_lines:
            yield LineProblem(line_no, f"the file has more than {max_lines} requests", code="too_many_lines")
            return
        try:
            line = _parse(line_no, text)
        except InvalidRequestError as exc:
            yield LineProblem(line_no, exc.message, exc.param)
            continue
        digest = hashlib.blake2b(line.custom_id.encode(), digest_size=16).digest()
        if digest in seen:
            yield LineProblem(line_no, f"custom_id {line.custom_id!r} is also on line {seen[digest]}; custom_ids "
                                       "must be unique", "custom_id", "duplicate_custom_id")
            continue
        seen[digest] = line_no
        yield line
    if count == 0:
        yield LineProblem(0, "the file holds no requests", code="empty_file")


def raise_problems(problems: list[LineProblem], origin: str, more_problems: int = 0) -> None:
    if not problems:
        return
    shown = "; ".join(f"line {p.line_no}: {p.message}" if p.line_no else p.message for p in problems[:MAX_REPORTED])
    unshown = len(problems) - MAX_REPORTED + more_problems
    more = f" (and {unshown} more)" if unshown > 0 else ""
    raise BatchInputError(f"{origin} is not a valid batch input file: {shown}{more}",
                          lines=[p.to_openai() for p in problems[:MAX_REPORTED]])


def iter_file(path: Any) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def _parse(line_no: int, text: bytes) -> InputLine:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InvalidRequestError(f"must be a JSON object, not {type(value).__name__}")
    custom_id, method, url, body = (value.get(k) for k in ("custom_id", "method", "url", "body"))
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        raise InvalidRequestError("'custom_id' must be a string of 1-512 characters", param="custom_id")
    if method != "POST":
        raise InvalidRequestError(f"'method' must be \"POST\", got {method!r}", param="method")
    if url not in ENDPOINTS:
        raise InvalidRequestError(f"'url' must be one of {', '.join(ENDPOINTS)}, got {url!r}", param="url")
    if not isinstance(body, dict):
        raise InvalidRequestError("'body' must be a JSON object (the request for the endpoint)", param="body")
    try:
        _check_body(url, body)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"body: {exc.message}", param=f"body.{exc.param}" if exc.param else "body") \
            from exc
    return InputLine(line_no=line_no, custom_id=custom_id, url=url, body=body)


def _check_body(url: str, body: dict[str, Any]) -> None:
    if url == "/v1/chat/completions":
        validate_chat(body)
        if body.get("stream"):
            raise InvalidRequestError("'stream' is not supported in a batch", param="stream")
        return
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequestError("'model' must be a non-empty string", param="model")
    if not isinstance(body.get("input"), str | list) or not body["input"]:
        raise InvalidRequestError("'input' must be a non-empty string or list", param="input")
