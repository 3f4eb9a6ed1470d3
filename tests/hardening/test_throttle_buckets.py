"""The login throttle's buckets: they refill, one address does not lock out another, and addresses are bounded."""

from __future__ import annotations

from tokenomy.api.throttle import MAX_CLIENTS, PER_CLIENT, LoginThrottle


def test_buckets_refill_and_addresses_are_bounded() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(PER_CLIENT):
        assert throttle.wait_s("a") == 0
        throttle.failed("a")
    assert throttle.wait_s("a") > 0 and throttle.wait_s("b") == 0  # one address's guesses do not lock out another
    now[0] += 13
    assert throttle.wait_s("a") == 0
    for i in range(20_000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
        now[0] += 1
    assert len(throttle._clients) <= MAX_CLIENTS
