"""The prompt of a chat request, read one way everywhere: what a learned router scores, what the semantic cache
looks up, and what the audit estimates both from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def prompt_text(body: Mapping[str, Any] | None) -> str | None:
    """The text of the request's last user turn (its text parts joined by newlines), else of its last message;
    None when there is no text."""
    messages = [m for m in (body or {}).get("messages") or () if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    chosen = (users or messages or [{}])[-1]
    text = _text(chosen.get("content"))
    return text if text and text.strip() else None


def sole_prompt(body: Mapping[str, Any] | None) -> str | None:
    """``prompt_text`` when the last message is that user turn and holds text only (no image or audio part): the
    requests whose answer depends on nothing but the prompt's wording and an otherwise identical context (the
    semantic cache's eligibility). None otherwise."""
    messages = (body or {}).get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, list) and not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return None
    return prompt_text(body)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return None
