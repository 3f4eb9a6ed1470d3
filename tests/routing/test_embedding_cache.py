"""The on-disk embedding cache of route train/eval: each text embedded once per embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokenomy.routing.embedding_cache import EmbeddingCache


class _Counting:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_cache_embeds_each_text_once_and_survives_a_restart(tmp_path: Path) -> None:
    embed = _Counting()
    first = EmbeddingCache(tmp_path, "demo").wrap(embed)
    vectors = first(["a", "bb", "a"])
    assert embed.seen == ["a", "bb"] and vectors[:, 0].tolist() == [1.0, 2.0, 1.0]
    again = EmbeddingCache(tmp_path, "demo")  # a new process: read back from disk
    assert again.wrap(embed)(["bb", "ccc", "a"])[:, 0].tolist() == [2.0, 3.0, 1.0]
    assert embed.seen == ["a", "bb", "ccc"] and (again.hits, again.misses) == (2, 1)
    other = _Counting()
    EmbeddingCache(tmp_path, "other-embedder").wrap(other)(["a"])  # another embedder never reads these vectors
    assert other.seen == ["a"]


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "demo.npz").write_bytes(b"not a zip file")
    embed = _Counting()
    assert EmbeddingCache(tmp_path, "demo").wrap(embed)(["xyz"])[0, 0] == 3.0
    assert embed.seen == ["xyz"]
    assert EmbeddingCache(tmp_path, "demo").wrap(embed)(["xyz"])[0, 0] == 3.0 and embed.seen == ["xyz"]


def test_digests_ending_in_zero_bytes_are_kept(tmp_path: Path) -> None:
    from tokenomy.routing.embedding_cache import text_key

    texts = [f"t{i}" for i in range(2000)]
    assert any(text_key(t).endswith(b"\x00") for t in texts)  # about 1 in 256 digests
    embed = _Counting()
    EmbeddingCache(tmp_path, "demo").wrap(embed)(texts)
    EmbeddingCache(tmp_path, "demo").wrap(embed)(texts)
    assert len(embed.seen) == len(texts)
