"""Request shaping for provider prompt caches, without changing meaning: the bytes an upstream sees for the same
stable content are the same on every request, so its prefix cache hits.

- **Canonical JSON in tool schemas.** Each tool's ``parameters`` schema has its object keys sorted (recursively);
  tool order stays as sent. Two clients that build the same schema in a different key order now send one prefix.
- **Stable context before variable content, when the request marks it.** In a user message whose content is a list
  of parts, parts carrying ``cache_control`` (the Anthropic marker, which OpenAI-format clients already send through
  gateways) are the stable context: they move, in their order, before the unmarked parts of that message. A client
  that puts "question, then the long document" in one turn and marks the document gets "document, then question",
  so the document joins the cacheable prefix. Unmarked requests are never reordered.
- System and developer messages are left where the client put them: moving one that sits mid-conversation would
  change what the model reads.

The shaped body is also what the exact cache keys on, so such requests share exact-cache entries too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _tool(tool: Any) -> Any:
    if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
        return tool
    function = tool["function"]
    if "parameters" not in function:
        return tool
    return {**tool, "function": {**function, "parameters": _sorted(function["parameters"])}}


def _message(message: Any) -> Any:
    if not isinstance(message, dict) or message.get("role") != "user":
        return message
    parts = message.get("content")
    if not isinstance(parts, list) or len(parts) < 2:
        return message
    stable = [p for p in parts if isinstance(p, dict) and p.get("cache_control")]
    if not stable or len(stable) == len(parts):
        return message
    variable = [p for p in parts if not (isinstance(p, dict) and p.get("cache_control"))]
    return {**message, "content": stable + variable}


def shape_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A shaped copy of a chat request body (the original is not modified)."""
    shaped = dict(body)
    if isinstance(body.get("tools"), list):
        shaped["tools"] = [_tool(t) for t in body["tools"]]
    if isinstance(body.get("messages"), list):
        shaped["messages"] = [_message(m) for m in body["messages"]]
    return shaped
