"""The semantic cache's parts: the bound arithmetic, the online threshold, the calibration file, the cache itself
(with the real MiniLM embedder and usearch index), and the ``cache eval`` protocol."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tokenomy.cache.exact import ExactCache
from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evaluate import Evaluation, Pair, cross_negatives, read_pairs
from tokenomy.cache.semantic.features import FEATURE_NAMES, normalise, pair_features
from tokenomy.cache.semantic.fit import fit_verifier, pick_threshold
from tokenomy.cache.semantic.layer import SemanticLayer, context_key
from tokenomy.cache.semantic.online import OnlineThreshold, wrong_share_upper
from tokenomy.cache.semantic.verifier import NEVER, Calibration, load_calibration
from tokenomy.cache.stores import MemoryStore
from tokenomy.cli.main import cli
from tokenomy.errors import ConfigError, InvalidRequestError
from tokenomy.wire.prompt import sole_prompt

GPTCACHE = Path(__file__).parent / "data" / "gptcache_pairs_120.jsonl"  # MIT, see data/README.md


@pytest.fixture(scope="module")
def embed() -> Callable[[Sequence[str]], Any]:
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder.load()
    return lambda texts: embedder.embed(list(texts)).vectors


def permissive(threshold: float) -> Calibration:
    """The shipped verifier with a threshold table that serves from ``threshold`` at every max_error."""
    shipped = load_calibration()
    return Calibration(shipped.verifier, ((0.001, threshold),), "test")


def test_wilson_bound_needs_evidence() -> None:
    assert wrong_share_upper(0, 0) == 1.0
    assert wrong_share_upper(0, 30) > 0.05  # 30 clean lookups do not prove 5 %
    assert wrong_share_upper(0, 140) < 0.02 < wrong_share_upper(0, 120)
    assert wrong_share_upper(10, 100) > 0.1


def test_online_threshold_moves_only_with_evidence() -> None:
    online = OnlineThreshold(0.05, 0.99, min_evidence=30, refresh_every=1)
    for i in range(20):
        online.observe(0.6 + i / 100, True)
    assert online.threshold == 0.99  # too little evidence: the prior stands
    for i in range(200):
        online.observe(0.5 + (i % 50) / 100, True)
    assert online.threshold == pytest.approx(0.5)
    for _ in range(100):  # the low band turns out wrong: the cut must rise above it
        online.observe(0.5, False)
    assert online.threshold > 0.5
    wrong_above = sum(1 for s, c in zip(online._scores, online._correct, strict=True)
                      if s >= online.threshold and not c)
    assert wrong_above == 0


def test_online_threshold_forgets_beyond_its_window() -> None:
    online = OnlineThreshold(0.1, 0.99, min_evidence=30, refresh_every=1, window=100)
    for _ in range(100):
        online.observe(0.5, False)
    assert online.threshold == 0.99
    for _ in range(100):  # the wrong labels age out; clean ones take their place
        online.observe(0.5, True)
    assert online.observations == 100 and online.threshold == 0.5


def test_calibration_table_uses_the_stricter_row(tmp_path: Path) -> None:
    shipped = load_calibration()
    assert len(shipped.verifier.trees) >= 50 and "BoolQ" in shipped.source
    table = Calibration(shipped.verifier, ((0.02, 0.9), (0.1, 0.6)), "t")
    assert table.threshold(0.01) == NEVER
    assert table.threshold(0.05) == 0.9
    assert table.threshold(0.1) == 0.6
    with pytest.raises(ConfigError, match="between 0 and 1"):
        table.threshold(1.5)
    path = tmp_path / "cal.json"
    path.write_bytes(table.to_json())
    loaded = load_calibration(path)
    assert loaded.thresholds == table.thresholds
    probe = pair_features("how do i reset my password", "how can i reset my password", 0.93, 0.4)
    assert loaded.verifier.probability(probe) == pytest.approx(shipped.verifier.probability(probe))
    doc = json.loads(path.read_text())
    doc["model"]["kind"] = "logistic"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="model kind"):
        load_calibration(path)
    path.write_text('{"features": ["cosine"]}')
    with pytest.raises(ConfigError, match="features"):
        load_calibration(path)
    path.write_text("not json")
    with pytest.raises(ConfigError, match="unreadable"):
        load_calibration(path)


def test_features_catch_what_embeddings_blur() -> None:
    names = dict(zip(FEATURE_NAMES, range(len(FEATURE_NAMES)), strict=True))

    def feature(name: str, query: str, entry: str) -> float:
        return pair_features(query, entry, 0.95, 0.5)[names[name]]

    same = ("how many legs does a spider have", "how many legs do spiders have")
    assert feature("numbers_differ", *same) == 0
    assert feature("numbers_differ", "what is 12 times 7", "what is 12 times 8") == 1
    assert feature("negation_differs", "is it safe to eat raw eggs", "is it not safe to eat raw eggs") == 1
    assert feature("negation_differs", *same) == 0 and feature("opposed", *same) == 0
    assert feature("opposed", "how do i enable dark mode", "how do i disable dark mode") == 1  # prefix
    assert feature("opposed", "when is the best time to buy flights", "when is the worst time to buy flights") == 1
    assert feature("opposed", "how do i turn off wifi", "how do i turn on wifi") == 1  # particles
    assert feature("opposed", "do the pills increase blood pressure", "do the pills decrease blood pressure") == 1
    assert feature("direction_swapped", "convert pdf to word", "convert word to pdf") == 1
    assert feature("direction_swapped", "is a the same as b", "is b the same as a") == 0  # no direction word
    assert feature("question_word_differs", "why is the sky blue", "how is the sky blue") == 1
    assert feature("unmatched_query", *same) == 0  # "spiders" and "spider" share a stem
    assert pair_features("what is 12 times 7", "what is 12 times 8", 0.97, 0.5)[names["gap"]] == pytest.approx(0.47)
    assert normalise("  What   IS\nthis? ") == "what is this?"


def test_direction_swap_is_never_served() -> None:
    shipped = load_calibration()
    swapped = pair_features("how do i migrate from postgres to mysql?", "how do i migrate from mysql to postgres?",
                            0.99, 0.3)
    assert shipped.score(swapped) == 0.0 < shipped.verifier.probability(swapped)


def test_fit_export_and_threshold_pick() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from tokenomy.cache.semantic.fit import export

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = x[:, 0] + 0.3 * rng.normal(size=400) > 0
    verifier = fit_verifier(x, y, names=("cosine", "query_words"), trees=60)
    assert verifier.probability([2.0, 0.0]) > 0.9 > 0.1 > verifier.probability([-2.0, 0.0])
    model = HistGradientBoostingClassifier(max_iter=40, max_depth=3, random_state=0).fit(x, y)
    exported = export(model)  # the shipped form reproduces scikit-learn's probabilities exactly
    assert [exported.probability(row) for row in x[:50]] == pytest.approx(model.predict_proba(x[:50])[:, 1])
    rising = fit_verifier(x, y, names=("cosine", "query_words"), trees=60)  # cosine is monotone increasing
    grid = [rising.probability([c, 0.3]) for c in np.linspace(-3, 3, 25)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(grid))
    scores = np.linspace(0, 1, 400)
    correct = scores > 0.3
    cut = pick_threshold(scores, correct, 0.05)
    served = scores >= cut
    assert 0.2 < cut < 0.5 and (~correct[served]).sum() > 0  # it may take a few wrong, but stays within the bound
    assert wrong_share_upper(int((~correct[served]).sum()), int(served.sum())) <= 0.05
    assert pick_threshold(scores, correct, 0.05, z=0.0) <= cut  # less confidence, a lower cut
    assert pick_threshold(scores, np.zeros(400, bool), 0.05) == NEVER


def test_cache_serves_paraphrases_within_their_context_only(embed: Callable[[Sequence[str]], Any]) -> None:
    cache = SemanticCache(permissive(0.8), max_error=0.02)
    questions = ["What is the capital of France?", "How do I reverse a list in Python?"]
    for text, vector in zip(questions, embed(questions), strict=True):
        cache.insert("ctx", text, vector, answer_key=text)
    paraphrase = "what's the capital city of France?"
    vector = embed([paraphrase])[0]
    match = cache.lookup("ctx", paraphrase, vector)
    assert match is not None and match.served and match.entry.answer_key == questions[0]
    assert cache.lookup("other-context", paraphrase, vector) is None
    different = "How do I sort a list in Python?"
    match = cache.lookup("ctx", different, embed([different])[0])
    assert match is not None and not match.served
    # re-inserting the same normalised text refreshes the entry instead of adding one
    cache.insert("ctx", "  what is the capital of FRANCE? ", vector, answer_key="newer")
    assert len(cache) == 2
    match = cache.lookup("ctx", paraphrase, vector)
    assert match is not None and match.entry.answer_key == "newer"
    cache.feedback(match, correct=False)  # a served hit reported wrong is dropped
    assert len(cache) == 1
    assert cache.lookup("ctx", paraphrase, vector).entry.answer_key == questions[1]  # type: ignore[union-attr]


def test_cache_evicts_oldest_beyond_max_entries(embed: Callable[[Sequence[str]], Any]) -> None:
    cache = SemanticCache(permissive(0.8), max_error=0.02, max_entries=2)
    texts = ["first question here", "second question here", "third question here"]
    for text, vector in zip(texts, embed(texts), strict=True):
        cache.insert("ctx", text, vector, answer_key=text)
    assert len(cache) == 2
    match = cache.lookup("ctx", texts[0], embed([texts[0]])[0])
    assert match is not None and match.entry.answer_key != texts[0]


def test_read_pairs_rejects_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"a": "x", "b": "y", "same": true}\n\n{"a": "x", "b": "", "same": true}\n')
    with pytest.raises(InvalidRequestError, match=r"pairs.jsonl:3: 'a' and 'b'"):
        read_pairs(path)
    path.write_text('{"a": "x", "b": "y", "same": "yes"}\n')
    with pytest.raises(InvalidRequestError, match=r":1: 'same' must be"):
        read_pairs(path)
    path.write_text("[1]\n")
    with pytest.raises(InvalidRequestError, match=r":1: expected a JSON object"):
        read_pairs(path)
    with pytest.raises(InvalidRequestError, match="cannot read"):
        read_pairs(tmp_path / "missing.jsonl")


def test_cross_negatives_never_insert_their_own_answer() -> None:
    pairs = [Pair(f"a{i}", f"b{i}", True) for i in range(6)]
    mixed = cross_negatives(pairs)
    assert [p.same for p in mixed] == [True, False] * 3
    assert {p.a for p in mixed} == {"a0", "a1", "a2"}
    assert [p.b for p in mixed if not p.same] == ["b3", "b4", "b5"]


def test_eval_protocol_matches_a_brute_force_count(embed: Callable[[Sequence[str]], Any]) -> None:
    pairs = read_pairs(GPTCACHE)[:120]
    report = Evaluation(embed, permissive(0.0)).run(pairs, max_error=0.05, sweep=(0.05,))
    entries = list(dict.fromkeys(normalise(p.a) for p in pairs))
    sims = np.asarray(embed([p.b for p in pairs])) @ np.asarray(embed(entries)).T
    nearest = [entries[i] for i in sims.argmax(axis=1)]
    expected = sum(n == normalise(p.a) for n, p in zip(nearest, pairs, strict=True))
    assert report["correct_hits"] == expected  # threshold 0 serves every lookup: hits = nearest-entry matches
    assert report["correct_hits"] + report["wrong_hits"] == len(pairs) and report["misses"] == 0
    assert report["correct_hit_rate"] == round(expected / len(pairs), 4)
    assert report["baseline"]["correct_hits"] + report["baseline"]["wrong_hits"] + \
        report["baseline"]["misses"] == len(pairs)
    assert report["lookup_ms"]["p99"] >= report["lookup_ms"]["p50"] > 0


def test_cli_cache_eval_json_and_errors(tmp_path: Path) -> None:
    sample = tmp_path / "pairs.jsonl"
    sample.write_text("".join(GPTCACHE.read_text().splitlines(keepends=True)[:60]))
    result = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(sample), "--json", "--max-error", "0.05",
                                      "--online", "--cross-negatives"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["max_error"] == 0.05 and len(report["sweep"]) >= 5 and len(report["online"]) >= 5
    for row in report["sweep"]:
        assert row["correct_hits"] + row["wrong_hits"] + row["misses"] == report["pairs"] == 60
    bad = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(sample), "--max-error", "2"])
    assert bad.exit_code == 2 and "between 0 and 1" in bad.output


async def test_layer_learns_from_near_miss_agreement(embed: Callable[[Sequence[str]], Any]) -> None:
    from tokenomy.embeddings.batched import DirectEmbedder
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    embedder = DirectEmbedder(MiniLMEmbedder.load())

    async def load() -> Any:
        return embedder

    exact = ExactCache(MemoryStore(1 << 20), ttl_s=60, mode="deterministic")
    cache = SemanticCache(permissive(NEVER), max_error=0.02, online=True)  # never serves: every match is a near miss
    layer = SemanticLayer(cache, exact, load, agreement_cosine=0.95)

    def body(text: str) -> dict[str, Any]:
        return {"model": "m", "temperature": 0, "messages": [{"role": "system", "content": "be brief"},
                                                             {"role": "user", "content": text}]}

    def completion(text: str) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}], "usage": {}}

    first = body("What is the capital of France?")
    decision = CacheDecision("k1", True, True)
    probe = await layer.probe(first, decision, "ns")
    assert probe is not None and probe.match is None
    await exact.put(decision, completion("Paris."), deployment="d", tier="t")
    await layer.remember(probe, decision, completion("Paris."))
    second = body("what's the capital city of France?")
    decision2 = CacheDecision("k2", True, True)
    probe2 = await layer.probe(second, decision2, "ns")
    assert probe2 is not None and probe2.match is not None and not probe2.match.served and probe2.answer is None
    await layer.remember(probe2, decision2, completion("paris."))  # the fresh answer agrees
    assert cache._online is not None and cache._online.observations == 1
    assert cache._online._correct == [True]
    assert context_key(first, "ns") == context_key(second, "ns") != context_key(body("x") | {"model": "n"}, "ns")
    assert sole_prompt({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}) is None
    assert await layer.probe(first, CacheDecision("k", False, True), "ns") is None  # no-cache: not read


def test_bulk_insert_skips_known_texts_and_respects_the_cap(embed: Callable[[Sequence[str]], Any]) -> None:
    cache = SemanticCache(permissive(0.8), max_error=0.02, max_entries=3)
    texts = ["What is the capital of France?", "what is the capital of  france?", "How do I reverse a list?",
             "Explain photosynthesis.", "Why is the sky blue?"]
    added = cache.insert_many("ctx", texts, np.asarray(embed(texts)), [f"k{i}" for i in range(5)])
    assert added == 3 and len(cache) == 3  # the duplicate is skipped, the cap stops the rest
    assert cache.insert_many("ctx", texts[:1], np.asarray(embed(texts[:1])), ["again"]) == 0
    match = cache.lookup("ctx", "what's the capital city of France?", embed(["what's the capital city of France?"])[0])
    assert match is not None and match.served and match.entry.answer_key == "k0"


def test_small_contexts_grow_into_usearch_and_empty_ones_are_dropped() -> None:
    from tokenomy.cache.semantic.index import SMALL_LIMIT, SmallIndex, USearchIndex

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((SMALL_LIMIT + 20, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cache = SemanticCache(permissive(0.8), max_error=0.02)
    for i, vector in enumerate(vectors[:SMALL_LIMIT]):
        cache.insert("big", f"entry {i}", vector, answer_key=str(i))
    assert isinstance(cache._indexes["big"], SmallIndex)
    probe = vectors[7] + 0.01 * rng.standard_normal(384).astype(np.float32)
    probe /= np.linalg.norm(probe)
    before = cache.lookup("big", "entry 7", probe)
    cache.insert_many("big", [f"entry {i}" for i in range(SMALL_LIMIT, SMALL_LIMIT + 20)], vectors[SMALL_LIMIT:],
                      [str(i) for i in range(SMALL_LIMIT, SMALL_LIMIT + 20)])
    assert isinstance(cache._indexes["big"], USearchIndex) and len(cache._indexes["big"]) == SMALL_LIMIT + 20
    after = cache.lookup("big", "entry 7", probe)
    assert before is not None and after is not None and before.entry == after.entry
    assert after.cosine == pytest.approx(before.cosine, abs=0.02)  # int8 vectors in usearch
    one = cache.insert("tiny", "only entry", vectors[0], answer_key="x")
    cache.remove(one.id)
    assert "tiny" not in cache._indexes and cache.lookup("tiny", "only entry", vectors[0]) is None
