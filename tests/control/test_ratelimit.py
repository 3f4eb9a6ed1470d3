"""Rate limits on a running gateway: per key (requests and tokens), shared by two gateways through Redis, OpenAI's
``x-ratelimit-*`` headers, 429 with ``retry-after``; a deployment at its own limit is skipped to the next one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import openai
import pytest
from tests.control.parts import MASTER, REDIS_URL, admin, priced

from servers import run_gateway
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream
from tokenomy.tokens.counter import TokenCounter


def _settings(base: str, home: str, *, redis_prefix: str | None = None) -> Settings:
    return Settings(
        deployments=[priced("echo", base, "echo"),
                     priced("primary", base, "echo", model="limited", rpm=2),
                     priced("backup", base, "echo", model="spare"),
                     priced("only", base, "echo", rpm=1)],
        fallbacks={"limited": ["spare"]}, local=LocalConfig(enabled=False), env_providers=False, home=home,
        control=ControlConfig(master_key=MASTER, **({"redis_prefix": redis_prefix} if redis_prefix else {})),
        redis_url=REDIS_URL if redis_prefix else None, cache=CacheConfig(exact=ExactCacheConfig(mode="off")))


@pytest.fixture(scope="module")
def gateway(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_gateway(_settings(fault[0], str(tmp_path_factory.mktemp("rl")))) as url:
        yield url


def _ask(url: str, key: str, model: str = "echo", **kw: Any) -> Any:
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello there"}], **kw)


def _key(url: str, **fields: Any) -> str:
    status, body = admin(url, "POST", "/admin/keys", {"name": "rl-" + uuid.uuid4().hex[:6], **fields})
    assert status == 201, body
    return str(body["key"])


def test_requests_per_minute_refuse_with_retry_after_and_headers(gateway: str) -> None:
    key = _key(gateway, rpm=3)
    remaining = [int(_ask(gateway, key).headers["x-ratelimit-remaining-requests"]) for _ in range(3)]
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as info:
        _ask(gateway, key)
    response = info.value.response
    assert info.value.body["code"] == "requests_rate_limited"  # type: ignore[index]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_per_minute_count_prompt_and_max_tokens_at_admission(gateway: str) -> None:
    key = _key(gateway, tpm=100)
    prompt = TokenCounter().count_messages([{"role": "user", "content": "hello there"}], "echo")
    assert prompt == 9
    first = _ask(gateway, key, max_tokens=40)  # 9 + 40 of the 100
    assert first.headers["x-ratelimit-limit-tokens"] == "100"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 100 - 49
    _ask(gateway, key, max_tokens=40)
    with pytest.raises(openai.RateLimitError, match="tokens per minute"):
        _ask(gateway, key, max_tokens=40)
    with pytest.raises(openai.RateLimitError, match="more than its limit"):
        _ask(gateway, _key(gateway, tpm=20), max_tokens=40)


def test_a_deployment_at_its_own_limit_is_skipped_to_the_next_in_its_chain(gateway: str) -> None:
    served = [_ask(gateway, MASTER, "limited").headers["x-tokenomy-deployment"] for _ in range(4)]
    assert served[:2] == ["primary", "primary"] and served[2:] == ["backup", "backup"]


def test_a_chain_entirely_at_its_limits_answers_429_with_retry_after(gateway: str) -> None:
    _ask(gateway, MASTER, "only")
    with pytest.raises(openai.RateLimitError) as info:
        _ask(gateway, MASTER, "only")
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert "own rate limit" in info.value.message


def test_limits_are_shared_by_replicas_through_redis(fault: tuple[str, FaultUpstream], tmp_path: Any,
                                                     redis_prefix: str) -> None:
    home = str(tmp_path / "home")
    with ExitStack() as stack:
        urls = [stack.enter_context(run_gateway(_settings(fault[0], home, redis_prefix=redis_prefix)))
                for _ in range(2)]
        key = _key(urls[0], rpm=4)
        deadline = time.monotonic() + 10
        while admin(urls[1], "GET", "/v1/key", key=key)[0] != 200:  # the other replica re-reads keys every 2 s
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for url in (urls[0], urls[1], urls[0], urls[1]):
            _ask(url, key)
        for url in urls:
            with pytest.raises(openai.RateLimitError):
                _ask(url, key)


def test_a_team_limit_is_shared_by_its_keys(gateway: str) -> None:
    team = "team-" + uuid.uuid4().hex[:6]
    assert admin(gateway, "PUT", f"/admin/teams/{team}", {"rpm": 2})[0] == 200
    first, second = _key(gateway, team=team), _key(gateway, team=team)
    _ask(gateway, first)
    _ask(gateway, first)
    with pytest.raises(openai.RateLimitError, match=f"team '{team}' is over its limit of 2 requests"):
        _ask(gateway, second)


async def test_a_minute_boundary_does_not_let_a_small_limit_through_again() -> None:
    """The sliding-window counter rounds the weighted count down; just past a minute boundary, ``rpm: 1`` would
    admit a second request half a second after the first. The limiter checks the unrounded count first."""
    from unittest import mock

    import limits.aio.storage.memory as memory

    from tokenomy.control.ratelimit import Limit, RateLimiter
    from tokenomy.errors import RateLimitError

    limiter = RateLimiter(None, "t")
    one = [Limit("key:boundary", "requests", 1)]
    start = (int(time.time()) // 60 + 1) * 60 - 0.5  # half a second before a minute boundary
    with mock.patch.object(memory.time, "time", return_value=start):
        await limiter.admit(one, 0)
    with mock.patch.object(memory.time, "time", return_value=start + 1.0), pytest.raises(RateLimitError) as refused:
        await limiter.admit(one, 0)
    assert 55 <= refused.value.retry_after_s <= 60  # until the first request has slid out of the minute
    with mock.patch.object(memory.time, "time", return_value=start + 60.5):
        await limiter.admit(one, 0)  # a minute later it is admitted again


async def test_what_is_left_past_a_minute_boundary_is_the_unrounded_count() -> None:
    """A provider batch's lines are admitted on what the window has left (``remaining``); just past a minute
    boundary the library's own figure, from the count rounded down, said one more request fit ``rpm: 1``."""
    from unittest import mock

    import limits.aio.storage.memory as memory

    from tokenomy.control.ratelimit import Limit, RateLimiter

    limiter = RateLimiter(None, "t")
    one = Limit("key:left", "requests", 1)
    start = (int(time.time()) // 60 + 1) * 60 - 0.5  # half a second before a minute boundary
    with mock.patch.object(memory.time, "time", return_value=start):
        assert (await limiter.remaining(one))[0] == 1
        await limiter.admit([one], 0)
        assert (await limiter.remaining(one))[0] == 0
    with mock.patch.object(memory.time, "time", return_value=start + 1.0):
        left, reset_s = await limiter.remaining(one)
        assert left == 0  # the library says 1 here
        assert 59 <= reset_s <= 60  # the first request slides out of the minute
    with mock.patch.object(memory.time, "time", return_value=start + 60.5):
        assert (await limiter.remaining(one))[0] == 1
