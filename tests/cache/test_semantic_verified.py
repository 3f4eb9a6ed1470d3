"""The verified semantic-cache policy (issue 22): nothing is served without this traffic's own evidence; a region
whose verified lookups turn out wrong stops serving; verifications are real upstream calls, marked in the ledger and
counted by ``spend``; the evidence is kept across restarts; ``cache eval`` plays the protocol."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from servers import need, redis_up, run_fault_upstream, run_gateway
from tokenomy.cache.exact import ExactCache
from tokenomy.cache.key import CacheDecision
from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evaluate import Evaluation, Pair
from tokenomy.cache.semantic.evidence import (
    KINDS,
    NEVER,
    Evidence,
    Label,
    kind_of,
    labels_to_pass,
    wrong_share_lower,
)
from tokenomy.cache.semantic.layer import SemanticLayer, answers_agree
from tokenomy.cache.semantic.online import wrong_share_upper
from tokenomy.cache.semantic.persisted import SQLiteEntries
from tokenomy.cache.semantic.verifier import load_calibration
from tokenomy.cache.stores import MemoryStore
from tokenomy.cli.main import cli
from tokenomy.config.settings import (
    CacheConfig,
    DeploymentConfig,
    LedgerConfig,
    LocalConfig,
    PriceOverride,
    SemanticCacheConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream

GPTCACHE = Path(__file__).parent / "data" / "gptcache_pairs_120.jsonl"  # MIT, see data/README.md


@pytest.fixture(scope="module")
def embed() -> Callable[[Sequence[str]], Any]:
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder.load()
    return lambda texts: embedder.embed(list(texts)).vectors


def test_no_evidence_serves_nothing() -> None:
    evidence = Evidence(0.1)
    assert evidence.threshold == NEVER and not evidence.servable(1.0)
    for _ in range(10):  # too few labels to bound anything
        evidence.observe(Label(0.995, wrong=False))
    assert not evidence.servable(1.0)


def test_clean_evidence_serves_its_region_only() -> None:
    evidence = Evidence(0.1, cuts=(0.9, 0.5))
    for _ in range(200):
        evidence.observe(Label(0.95, wrong=False))
    for i in range(100):
        evidence.observe(Label(0.6, wrong=i % 3 == 0))  # a third wrong down there
    assert evidence.threshold == 0.9 and evidence.servable(0.95) and not evidence.servable(0.8)
    n, wrong, upper = evidence.bound(0)
    assert (n, wrong) == (200, 0) and upper <= 0.1
    assert evidence.bound(1)[2] > 0.1  # pooling the bad band would break the bound: not served


def test_nested_regions_are_tested_in_sequence_without_splitting_alpha() -> None:
    """The regions are nested, so they are tested narrowest first, each at the full alpha, and the sequence stops at
    the first that fails: 80 clean labels spread over the cuts certify the widest region at 0.05 (a split over the
    13 cuts, z = 2.67, needed 136); a narrow region that fails stops the wider ones however clean they are."""
    assert labels_to_pass(0.05, 1.96) == 73 and labels_to_pass(0.1, 1.96) == 35
    spread = Evidence(0.05)
    for i in range(80):
        spread.observe(Label(0.4 + 0.2 * i / 80, wrong=False))
    assert spread.servable(0.45) and spread.threshold == 0.4
    blocked = Evidence(0.05, cuts=(0.9, 0.5))
    for i in range(80):
        blocked.observe(Label(0.95, wrong=i % 20 == 0))  # 4 of 80 wrong up top: not clearly worse, yet it fails
    for _ in range(2000):
        blocked.observe(Label(0.6, wrong=False))
    assert blocked.bound(1)[2] <= 0.05  # pooled, the wide region would pass on its own
    assert not blocked.servable(0.95) and not blocked.servable(0.6)


def test_with_an_inexact_check_a_region_enters_the_sequence_only_once_it_could_pass() -> None:
    """With ``checker_sensitivity`` 0.9 a clean region needs 82 labels at 0.05, not 73: a narrow region holding 75
    must not enter the sequence, fail there and block a wide region that passes."""
    assert labels_to_pass(0.05 * 0.9, 1.96) == 82
    evidence = Evidence(0.05, cuts=(0.9, 0.5), checker_sensitivity=0.9)
    for _ in range(75):
        evidence.observe(Label(0.95, wrong=False, exact=False))
    for _ in range(500):
        evidence.observe(Label(0.6, wrong=False, exact=False))
    assert evidence.bound(0)[2] > 0.05 and evidence.servable(0.6)


def test_a_region_found_wrong_stops_serving_and_needs_new_evidence() -> None:
    evidence = Evidence(0.05, cuts=(0.9,))
    for _ in range(300):
        evidence.observe(Label(0.95, wrong=False))
    assert evidence.servable(0.95)
    for _ in range(6):  # the traffic changed: explored lookups in the served region come back wrong
        evidence.observe(Label(0.95, wrong=True))
    assert not evidence.servable(0.95) and evidence.resets == 1
    n, wrong, _ = evidence.bound(0)
    assert n < 300 and wrong >= 1  # the old clean labels were dropped, not left to dilute the new wrong ones


def test_an_inexact_check_widens_the_bound() -> None:
    exact, checked = Evidence(0.05, cuts=(0.9,)), Evidence(0.05, cuts=(0.9,), checker_sensitivity=0.5)
    for _ in range(80):  # 73 clean labels pass at 0.05
        exact.observe(Label(0.95, wrong=False))
        checked.observe(Label(0.95, wrong=False, exact=False))
    assert checked.bound(0)[2] == pytest.approx(min(1.0, 2 * exact.bound(0)[2]))
    assert exact.servable(0.95) and not checked.servable(0.95)


def test_kinds_never_vouch_for_each_other() -> None:
    evidence = Evidence(0.1, cuts=(0.5,))
    for _ in range(100):
        evidence.observe(Label(0.9, wrong=False, kind=0))
    assert evidence.servable(0.9, 0) and not evidence.servable(0.9, 1) and not evidence.servable(0.9, 2)
    plain = [0.0] * 18
    numbers = list(plain)
    numbers[7] = 1.0  # numbers_differ
    assert kind_of(plain) == 0 and kind_of(numbers) == 1


def _shifting_stream(seed: int, *, before: int = 60, after: int = 300, wrong_after: float = 0.5,
                     max_error: float = 0.1) -> tuple[int, int, int, int]:
    """The protocol on a synthetic stream whose traffic changes after ``before`` lookups: every lookup scores 0.95
    (one region); before the change every would-be hit is right, after it each is wrong with ``wrong_after``.
    Returns (correct, wrong) hits served over the whole stream and after the change."""
    import numpy as np

    from tokenomy.cache.semantic.verifier import Calibration

    class Fixed(Calibration):
        def score(self, features: Sequence[float]) -> float:
            return 0.95

    base = load_calibration()
    cache = SemanticCache(Fixed(base.verifier, base.thresholds, "fixed"), max_error=max_error, seed=seed,
                          evidence=Evidence(max_error, cuts=(0.9,)), explore=0.1, dimensions=4)
    outcome = np.random.default_rng(seed)
    vector = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    served = [[0, 0], [0, 0]]  # (correct, wrong) before and after the change
    for i in range(before + after):
        cache.insert("ctx", "how do I reset my password", vector, answer_key="k")  # a dropped entry comes back
        match = cache.lookup("ctx", "how can I reset my password", vector)
        assert match is not None
        right = i < before or outcome.random() >= wrong_after
        if match.served:
            served[i >= before][not right] += 1
        elif match.verify:
            cache.verified(match, right)
    return served[0][0] + served[1][0], served[0][1] + served[1][1], served[1][0], served[1][1]


def test_the_bound_holds_through_a_change_of_the_traffic() -> None:
    """A region certified on 60 lookups, then half its would-be hits turn wrong. Wrong hits are served only until
    the first wrong label of the served region (the verify share keeps that to shift_budget * max_error * (hits
    served + 20), in expectation), then the region is on probation (everything verified) and the alarm ends it. Over 30
    seeded streams the wrong share stays under max_error; verifying a fixed 10 % of servable lookups (the policy
    before) served 16 % wrong here, ~7.6 wrong hits per change."""
    totals, before, after_wrong = [0, 0], 0, 0
    for seed in range(30):
        correct, wrong, after_correct, after = _shifting_stream(seed)
        totals[0] += correct
        totals[1] += wrong
        before += correct - after_correct
        after_wrong += after
    share = totals[1] / (totals[0] + totals[1])
    assert totals[0] > 30 * 15 and share <= 0.1, (totals, share)
    assert after_wrong / 30 <= 1.5 * 0.5 * 0.1 * (before / 30 + 20), (after_wrong, before)
    *_, after_wrong = _shifting_stream(0, after=2000)
    assert after_wrong <= 20  # a long changed stream: the region stops serving instead of paying on and on


def test_a_wrong_label_in_the_served_region_puts_it_on_probation() -> None:
    evidence = Evidence(0.1, cuts=(0.9,), probation=8)
    for _ in range(100):
        evidence.observe(Label(0.95, wrong=False))
    assert evidence.servable(0.95)
    evidence.observe(Label(0.95, wrong=True))  # one wrong label: not an alarm, but every lookup is verified now
    assert not evidence.servable(0.95) and evidence.resets == 0
    for i in range(8):
        assert not evidence.servable(0.95), i
        evidence.observe(Label(0.95, wrong=False))
    assert evidence.servable(0.95)
    evidence.observe(Label(0.5, wrong=True))  # below every cut: no region of it, no probation
    assert evidence.servable(0.95)


def test_the_verify_share_starts_high_and_decays_with_the_hits_served() -> None:
    evidence = Evidence(0.05, shift_budget=0.5)
    # a fresh region: half a wrong hit expected before a change is seen
    assert evidence.verify_share(0, 0.1) == pytest.approx(1 / 1.5)
    for _ in range(100):
        evidence.served(0)
    assert evidence.verify_share(0, 0.1) == pytest.approx(1 / (1 + 0.5 * 0.05 * 120))
    assert evidence.verify_share(1, 0.1) == pytest.approx(1 / 1.5)  # per kind
    assert Evidence(0.1).verify_share(0, 0.1) == 0.5 and Evidence(0.02).verify_share(0, 0.1) == pytest.approx(1 / 1.2)
    for _ in range(10_000):
        evidence.served(0)
    assert evidence.verify_share(0, 0.1) == 0.1  # the configured share is the floor
    assert Evidence(0.05, shift_budget=0).verify_share(0, 0.1) == 0.1


def test_wilson_lower_bound() -> None:
    assert wrong_share_lower(0, 100) == 0.0 and wrong_share_lower(5, 0) == 0.0
    assert 0 < wrong_share_lower(10, 100) < 0.1 < wrong_share_upper(10, 100)


def test_the_answer_check_sees_numbers_and_negation() -> None:
    assert answers_agree("Paris is the capital.", "The capital is Paris.", 0.97, 0.95)
    assert not answers_agree("It takes 3 days.", "It takes 4 days.", 0.99, 0.95)
    assert not answers_agree("Yes, it is allowed.", "No, it is not allowed.", 0.96, 0.95)
    assert not answers_agree("Paris.", "Lyon.", 0.5, 0.95)


def test_the_cache_verifies_until_the_evidence_allows(embed: Callable[[Sequence[str]], Any]) -> None:
    evidence = Evidence(0.1, cuts=(0.3,), shift_budget=0)  # verify_share (explore) alone: 0, never explored
    cache = SemanticCache(load_calibration(), max_error=0.1, evidence=evidence, explore=0.0, seed=1)
    question, paraphrase = "What is the capital of France?", "what's the capital city of France?"
    cache.insert("ctx", question, embed([question])[0], answer_key="k")
    vector = embed([paraphrase])[0]
    match = cache.lookup("ctx", paraphrase, vector)
    assert match is not None and not match.served and match.verify and not match.servable
    for _ in range(40):
        cache.verified(match, True)
    match = cache.lookup("ctx", paraphrase, vector)
    assert match is not None and match.served and not match.verify
    explorer = SemanticCache(load_calibration(), max_error=0.1, evidence=Evidence(0.1, cuts=(0.3,)), explore=1.0)
    explorer.insert("ctx", question, embed([question])[0], answer_key="k")
    for _ in range(40):
        for kind in range(len(KINDS)):
            explorer.observe(Label(0.99, wrong=False, kind=kind))
    explored = explorer.lookup("ctx", paraphrase, vector)
    assert explored is not None and explored.servable and explored.verify and not explored.served
    explorer.verified(explored, False)  # verified wrong where it would have been served: the entry is dropped
    assert len(explorer) == 0


async def test_the_layer_labels_verified_lookups_and_serves_once_certified(
        embed: Callable[[Sequence[str]], Any], tmp_path: Path) -> None:
    from tokenomy.embeddings.batched import DirectEmbedder
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    embedder = DirectEmbedder(MiniLMEmbedder.load())

    async def load() -> Any:
        return embedder

    exact = ExactCache(MemoryStore(1 << 20), ttl_s=60, mode="deterministic")
    cache = SemanticCache(load_calibration(), max_error=0.1, evidence=Evidence(0.1, cuts=(0.3,), shift_budget=0),
                          explore=0.0)
    entries = SQLiteEntries(tmp_path / "cache.db", cache, max_entries=100)
    layer = SemanticLayer(cache, exact, load, agreement_cosine=0.95, entries=entries)
    await layer.start()

    def body(text: str, system: str = "be brief") -> dict[str, Any]:
        return {"model": "m", "temperature": 0, "messages": [{"role": "system", "content": system},
                                                             {"role": "user", "content": text}]}

    def completion(text: str) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}], "usage": {}}

    async def ask(text: str, system: str, key: str, answer: str) -> Any:
        decision = CacheDecision(key, True, True)
        probe = await layer.probe(body(text, system), decision, "ns")
        if probe is not None and probe.answer is None:  # went upstream: the fresh answer is stored and compared
            await exact.put(decision, completion(answer), deployment="d", tier="t")
            await layer.remember(probe, decision, completion(answer))
        return probe

    verified = 0
    for i in range(60):  # in new contexts, a question then its paraphrase: verified (upstream) until certified
        await ask("What is the capital of France?", f"context {i}", f"q{i}", "Paris.")
        p = await ask("what's the capital city of France?", f"context {i}", f"p{i}", "paris.")
        assert p is not None and p.match is not None
        kind = p.match.kind
        if p.answer is not None:
            assert p.match.served and not p.match.verify
            break
        assert p.match.verify
        verified += 1
    assert 20 <= verified < 60  # served only after (at least min_labels) agreeing verifications
    assert cache.evidence is not None and cache.evidence.observed == verified
    await layer.aclose()

    again = SemanticCache(load_calibration(), max_error=0.1, evidence=Evidence(0.1, cuts=(0.3,)))
    reloaded = SQLiteEntries(tmp_path / "cache.db", again, max_entries=100)
    await reloaded.start()  # the evidence outlives the process, as the entries do
    assert again.evidence is not None and again.evidence.observed == verified
    assert again.evidence.servable(0.99, kind)
    await reloaded.aclose()


def test_eval_reveals_labels_only_for_verified_lookups(embed: Callable[[Sequence[str]], Any]) -> None:
    rows = [json.loads(line) for line in GPTCACHE.read_text().splitlines()]
    pairs = [Pair(r["a"], r["b"], True) for r in rows] * 3  # duplicates common: each question asked three times
    report = Evaluation(embed, load_calibration()).run(pairs, max_error=0.1, sweep=(0.1,), verified=(0.1,),
                                                       embed_timing_samples=0)
    row = report["verified"][0]
    assert row["labels"] == round(row["verification_share"] * len(pairs))  # a label only where it went upstream
    hits = row["correct_hits"] + row["wrong_hits"]
    assert row["net_saving"] == round(hits / len(pairs), 4) and 0 < hits < len(pairs)
    assert row["wrong_share_95"][0] <= row["wrong_share"] <= row["wrong_share_95"][1]
    assert report["verified"][0]["halves"][0]["lookups"] == len(pairs) // 2
    negatives = [Pair(r["a"], rows[(i + 7) % len(rows)]["b"], False) for i, r in enumerate(rows)] * 3
    never = Evaluation(embed, load_calibration()).run(negatives, max_error=0.1, sweep=(0.1,), verified=(0.1,),
                                                      embed_timing_samples=0)["verified"][0]
    assert never["correct_hits"] == never["wrong_hits"] == 0  # every verified lookup was wrong: nothing served


def test_cli_cache_eval_reports_the_verified_policy() -> None:
    result = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(GPTCACHE), "--json", "--max-error", "0.05"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["max_error"] for r in report["verified"]] == [0.02, 0.05, 0.1]
    text = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(GPTCACHE)])
    assert "verified policy" in text.output and max(len(line) for line in text.output.splitlines()) <= 80
    bad = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(GPTCACHE), "--explore", "2"])
    assert bad.exit_code != 0 and "--explore" in bad.output


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, FaultUpstream, Path]]:
    home = tmp_path_factory.mktemp("verified-home")
    price = PriceOverride(input_usd_per_mtok=Decimal("2.5"), output_usd_per_mtok=Decimal("10"))
    with run_fault_upstream() as (base, upstream):
        settings = Settings(
            local=LocalConfig(enabled=False), env_providers=False, home=str(home),
            ledger=LedgerConfig(database_url=str(home / "ledger.db")),
            cache=CacheConfig(semantic=SemanticCacheConfig(enabled=True, max_error=0.1)),  # policy: verified
            deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo", base_url=base,
                                          price=price)])
        with run_gateway(settings) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), upstream, home


def _ask(client: openai.OpenAI, text: str) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "user", "content": text}])  # type: ignore[call-overload]


def test_a_verification_is_a_marked_upstream_call_in_the_ledger(
        gateway: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, home = gateway
    before = upstream.calls["echo"]
    first = _ask(client, "What is the capital of France?")
    second = _ask(client, "what's the capital city of France?")
    assert first.headers["x-tokenomy-cache"] == "miss"
    assert second.headers["x-tokenomy-cache"] == "semantic-verify"  # no evidence yet: not served, verified
    assert second.parse().choices[0].message.content == "echo: what's the capital city of France?"
    assert upstream.calls["echo"] == before + 2 and float(second.headers["x-tokenomy-cost-usd"]) > 0
    time.sleep(0.5)  # the ledger writer and the label writer flush in the background
    env = {**os.environ, "TOKENOMY_DATABASE_URL": str(home / "ledger.db")}
    report = json.loads(subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--json"], env=env,
                                       capture_output=True, text=True, check=True, timeout=60).stdout)
    assert report["cache"]["semantic_verifications"] == 1 and report["cache"]["hits"] == 0
    with sqlite3.connect(home / "ledger.db") as db:
        rows = db.execute("SELECT cache_status, cost_pusd FROM requests ORDER BY started_us").fetchall()
    assert rows[-1][0] == "semantic-verify" and rows[-1][1] > 0
    with sqlite3.connect(home / "cache.db") as db:  # the answers' texts differ: the check's label, kept on disk
        labels = db.execute("SELECT wrong, exact FROM semantic_labels").fetchall()
    assert len(labels) == 1 and labels[0][1] == 0


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    import asyncio

    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > seconds:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_evidence_is_shared_across_replicas_through_redis() -> None:
    """A label made on replica A changes what replica B serves: clean labels certify B's region, wrong ones end it;
    a replica that joins later replays the same evidence."""
    import uuid

    from tokenomy.cache.semantic.shared import SharedEntries

    need(redis_up(), "no Redis server on 127.0.0.1:6379")
    url = os.environ.get("TOKENOMY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    key = f"tokenomy-test:{uuid.uuid4().hex}:semantic"

    def replica() -> tuple[SemanticCache, SharedEntries]:
        cache = SemanticCache(load_calibration(), max_error=0.1, evidence=Evidence(0.1, cuts=(0.9,)))
        return cache, SharedEntries(url, key, cache, max_entries=100, block_ms=100)

    (a, log_a), (b, log_b) = replica(), replica()
    await log_a.start()
    await log_b.start()
    late: SharedEntries | None = None
    try:
        assert a.evidence is not None and b.evidence is not None
        for _ in range(40):  # verified on A only: A observes it, then shares it
            label = Label(0.95, wrong=False)
            a.observe(label)
            await log_a.publish_label(label)
        assert a.evidence.servable(0.95)
        assert await _until(lambda: b.evidence is not None and b.evidence.servable(0.95)), "B never certified"
        assert await _until(lambda: b.evidence is not None and b.evidence.observed == 40), "B missed labels"
        assert a.evidence.observed == 40  # A skipped its own labels on replay
        for _ in range(8):  # the traffic changed, seen on A: B stops serving too
            label = Label(0.95, wrong=True)
            a.observe(label)
            await log_a.publish_label(label)
        assert not a.evidence.servable(0.95)
        assert await _until(lambda: b.evidence is not None and not b.evidence.servable(0.95)), "B kept serving"
        c, late = replica()
        await late.start()  # a replica started now replays the stream: the same evidence, the same decision
        assert c.evidence is not None and c.evidence.observed == b.evidence.observed == a.evidence.observed
        assert c.evidence.bound(0) == a.evidence.bound(0) and not c.evidence.servable(0.95)
    finally:
        from redis.asyncio import Redis

        redis = Redis.from_url(url)
        await redis.delete(key, f"{key}:labels")
        await redis.aclose()
        for log in (log_a, log_b, late):
            if log is not None:
                await log.aclose()
