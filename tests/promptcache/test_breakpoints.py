"""cache_control breakpoints on long stable prefixes of Anthropic requests."""

from __future__ import annotations

from typing import Any

from tokenomy.promptcache.breakpoints import BreakpointPlanner, minimum_cacheable
from tokenomy.tokens.counter import TokenCounter

LONG = "The contract says many things. " * 400  # ~2,400 tokens
EPHEMERAL = {"type": "ephemeral"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _request(model: str = "claude-sonnet-4-5", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "system": LONG,
            "messages": [{"role": "user", "content": "What caps liability?"}], **extra}


def test_long_system_prompt_gets_a_breakpoint_and_input_is_untouched() -> None:
    planner = BreakpointPlanner(TokenCounter())
    request = _request()
    shaped = planner.apply(request)
    assert shaped["system"] == [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]
    assert request["system"] == LONG  # not modified in place
    assert shaped["messages"] == request["messages"]


def test_short_prefixes_and_small_models_get_none() -> None:
    planner = BreakpointPlanner(TokenCounter())
    short = {**_request(), "system": "Be brief."}
    assert planner.apply(short) == short
    assert minimum_cacheable("claude-haiku-4-5") == 4096 and minimum_cacheable("claude-sonnet-4-5") == 1024
    assert planner.apply(_request("claude-haiku-4-5")) == _request("claude-haiku-4-5")  # ~2.4k < 4,096


def test_tools_system_and_history_each_get_one() -> None:
    planner = BreakpointPlanner(TokenCounter())
    tools = [{"name": f"tool_{i}", "description": LONG[:2000], "input_schema": {"type": "object"}}
             for i in range(3)]
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "answer"},
                {"role": "user", "content": "follow-up"}]
    shaped = planner.apply(_request(tools=tools, messages=messages))
    assert "cache_control" not in shaped["tools"][0] and shaped["tools"][-1]["cache_control"] == EPHEMERAL
    assert shaped["system"][-1]["cache_control"] == EPHEMERAL
    assert shaped["messages"][1]["content"] == [{"type": "text", "text": "answer", "cache_control": EPHEMERAL}]
    assert shaped["messages"][2] == messages[2]  # the variable last turn is never marked


def test_client_breakpoints_are_respected() -> None:
    planner = BreakpointPlanner(TokenCounter())
    mine = _request(system=[{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral", "ttl": "1h"}}])
    assert planner.apply(mine) is mine


def test_one_hour_ttl_when_reuse_is_slower_than_five_minutes() -> None:
    clock = Clock()
    planner = BreakpointPlanner(TokenCounter(), clock=clock)
    assert planner.apply(_request())["system"][-1]["cache_control"] == EPHEMERAL
    clock.now = 60.0  # reused within 5 minutes: the 5-minute cache is enough
    assert planner.apply(_request())["system"][-1]["cache_control"] == EPHEMERAL
    clock.now = 60.0 + 1200  # 20 minutes later: a 5-minute entry would have expired
    assert planner.apply(_request())["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
