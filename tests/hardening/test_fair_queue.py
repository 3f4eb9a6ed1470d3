"""The local tier's fair queue: keys take turns, each key's requests in order, bounds refused at once with a wait."""

from __future__ import annotations

import asyncio

import pytest

from tokenomy.errors import UpstreamBusyError
from tokenomy.providers.fair_queue import FairQueue


async def _run(queue: FairQueue, key: str | None, name: str, order: list[str], gate: asyncio.Event) -> None:
    async with queue.turn(key):
        order.append(name)
        await gate.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_keys_take_turns() -> None:
    async def main() -> list[str]:
        queue, order = FairQueue("local", max_waiting=10, max_per_key=5), []
        gates = {n: asyncio.Event() for n in ("a1", "a2", "a3", "b1", "b2", "c1")}
        tasks = []
        for name in ("a1", "a2", "a3", "b1", "b2", "c1"):
            tasks.append(asyncio.create_task(_run(queue, name[0], name, order, gates[name])))
            await _settle()
        for name in ("a1", "b1", "c1", "a2", "b2", "a3"):
            gates[name].set()
            await _settle()
        await asyncio.gather(*tasks)
        return order

    # a1 held the worker when b and c arrived: they go before a's next request
    assert asyncio.run(main()) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_bounds_refuse_at_once_with_a_wait() -> None:
    async def main() -> None:
        queue = FairQueue("local", max_waiting=3, max_per_key=2)
        gate = asyncio.Event()
        tasks = [asyncio.create_task(_run(queue, "a", f"a{i}", [], gate)) for i in range(3)]
        await _settle()
        assert queue.depth == 3
        with pytest.raises(UpstreamBusyError, match="for this key") as busy:
            async with queue.turn("a"):
                pass
        assert busy.value.retry_after_s is not None and busy.value.retry_after_s >= 1
        tasks.append(asyncio.create_task(_run(queue, "b", "b1", [], gate)))
        await _settle()
        with pytest.raises(UpstreamBusyError, match=r"full \(3 waiting\)"):
            async with queue.turn("c"):
                pass
        gate.set()
        await asyncio.gather(*tasks)
        assert queue.depth == 0

    asyncio.run(main())


def test_a_cancelled_waiter_leaves_no_trace() -> None:
    async def main() -> None:
        queue, order = FairQueue("local", max_waiting=10, max_per_key=5), []
        gate = asyncio.Event()
        first = asyncio.create_task(_run(queue, "a", "a1", order, gate))
        await _settle()
        gone = asyncio.create_task(_run(queue, "b", "b1", order, gate))
        await _settle()
        gone.cancel()
        await _settle()
        assert queue.depth == 1
        gate.set()
        await first
        async with queue.turn("c"):
            order.append("c1")
        assert order == ["a1", "c1"] and queue.depth == 0

    asyncio.run(main())
