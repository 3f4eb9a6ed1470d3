"""Reading an OpenAI chat completion the gateway produced or received."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def answer_text(completion: Mapping[str, Any]) -> str | None:
    """The text of a completion's one choice; None when it has several choices, no text, or only whitespace (e.g.
    only tool calls)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) and content.strip() else None
