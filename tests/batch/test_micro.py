"""The online micro-batcher: what gathers, when a batch starts, and what callers get back."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tokenomy.microbatch import MicroBatcher


async def test_concurrent_items_share_batches_and_keep_their_order() -> None:
    seen: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=4, max_wait_ms=1000)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert [len(b) for b in seen] == [4, 4, 2]  # full batches start at once; the rest after the wait
    assert sorted(i for b in seen for i in b) == list(range(10))
    assert batcher.stats.batches == 3 and batcher.stats.largest == 4


async def test_items_that_arrive_during_a_run_form_the_next_batch() -> None:
    seen: list[list[str]] = []
    gate = asyncio.Event()

    async def run(items: list[str]) -> list[str]:
        seen.append(items)
        if len(seen) == 1:
            await gate.wait()
        return [s.upper() for s in items]

    batcher: MicroBatcher[str, str] = MicroBatcher(run, max_batch=8, max_wait_ms=0)
    first = asyncio.create_task(batcher.submit("a"))
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.submit(s)) for s in "bcd"]
    await asyncio.sleep(0.01)
    assert seen == [["a"]]  # one batch at a time: b, c, d wait for the model
    gate.set()
    assert await first == "A" and [await t for t in later] == ["B", "C", "D"]
    assert seen == [["a"], ["b", "c", "d"]]


async def test_a_lone_item_waits_at_most_max_wait() -> None:
    async def run(items: list[int]) -> list[int]:
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=64, max_wait_ms=30)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await batcher.submit(7) == 7
    assert 0.02 <= loop.time() - start < 1.0


async def test_a_failed_batch_fails_its_callers_only() -> None:
    async def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky batch")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=2, max_wait_ms=0)
    results = await asyncio.gather(batcher.submit_many([13, 1]), batcher.submit_many([2, 3]),
                                   return_exceptions=True)
    assert isinstance(results[0], ValueError) and results[1] == [2, 3]
    assert await batcher.submit(5) == 5


async def test_wrong_result_count_is_an_error_not_a_hang() -> None:
    async def run(items: list[int]) -> list[int]:
        return items[:-1]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=4, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="returned"):
        await asyncio.wait_for(batcher.submit_many([1, 2]), 5)


async def test_batched_embedder_gives_each_caller_its_own_vectors() -> None:
    from tokenomy.embeddings.batched import BatchedEmbedder
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    model = MiniLMEmbedder.load()
    batched = BatchedEmbedder(model, max_batch=16, max_wait_ms=20)
    texts = [["the cat sat on the mat"], ["a dog barked", "the cat sat on the mat"], ["stock prices fell sharply"]]
    results = await asyncio.gather(*(batched.embed(t) for t in texts))
    assert batched.batcher.stats.batches == 1  # three callers, one model call
    for group, result in zip(texts, results, strict=True):
        alone = model.embed(group)
        assert np.allclose(result.vectors, alone.vectors, atol=1e-5)
        assert result.token_counts == alone.token_counts and result.prompt_tokens == alone.prompt_tokens
