"""Redaction of personal data and secrets in text, applied to request and response bodies before the gateway
stores any of them for distillation.

Replaced, in this order (each by a placeholder naming what was there):
- API keys and tokens: OpenAI (``sk-…``, ``sk-proj-…``), Anthropic (``sk-ant-…``), AWS access key ids
  (``AKIA…``), GitHub (``ghp_…``, ``github_pat_…``), Slack (``xox?-…``), Google (``AIza…``), and any
  ``Bearer <token>``;
- e-mail addresses;
- card numbers: 13–19 digits, optionally grouped by spaces or dashes, that pass the Luhn check;
- phone numbers: ``+`` and 8–15 digits, or 9–15 digits in at least three groups separated by spaces, dots, dashes or
  a bracketed area code (so prices, years and sums are left alone).
Redaction is conservative about what it leaves: a long grouped number that is not a card is taken for a phone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

_KEYS = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})|(?<=Bearer )[A-Za-z0-9._~+/=-]{16,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d ().-]{7,20}\d|\(?\d{2,4}\)?(?:[ .-]\(?\d{2,5}\)?){2,4})(?![\w])")
PLACEHOLDERS = {"api_key": "[API_KEY]", "email": "[EMAIL]", "card": "[CARD]", "phone": "[PHONE]"}


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def redact(text: str, found: Counter[str] | None = None) -> str:
    """``text`` with keys, e-mail addresses, card and phone numbers replaced; counts what it replaced."""
    tally = found if found is not None else Counter()

    def sub(kind: str, accept: Callable[[str], bool] | None = None) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            if accept is not None and not accept(match.group(0)):
                return match.group(0)
            tally[kind] += 1
            return PLACEHOLDERS[kind]
        return replace

    text = _KEYS.sub(sub("api_key"), text)
    text = _EMAIL.sub(sub("email"), text)
    text = _CARD.sub(sub("card", lambda s: _luhn(_digits(s))), text)
    return _PHONE.sub(sub("phone", lambda s: 9 <= len(_digits(s)) <= 15 or (s.startswith("+")
                                                                             and 8 <= len(_digits(s)) <= 15)), text)


def redact_messages(messages: Any, found: Counter[str] | None = None) -> Any:
    """A copy of chat ``messages`` with every text (string content and text parts) redacted."""
    if not isinstance(messages, list):
        return messages
    out = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        content = message.get("content")
        if isinstance(content, str):
            message = {**message, "content": redact(content, found)}
        elif isinstance(content, list):
            message = {**message, "content": [
                {**part, "text": redact(part["text"], found)} if isinstance(part, dict)
                and isinstance(part.get("text"), str) else part for part in content]}
        out.append(message)
    return out
