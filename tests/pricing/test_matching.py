"""The snapshot's match rules: the clause semantics, and agreement with genai-prices' own lookup on every model id it
ships and on the model names of bench/data/model_names.tsv (SDK literals, docs, LiteLLM's tests, prefixed forms)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenomy.pricing import PriceError
from tokenomy.pricing.catalogue import SNAPSHOT, read_document
from tokenomy.pricing.matching import Matcher, candidates, compile_rule

NAMES = Path(__file__).parents[2] / "bench" / "data" / "model_names.tsv"


@pytest.mark.parametrize(("clause", "name", "expected"), [
    ({"equals": "GPT-4o"}, "gpt-4o", True), ({"equals": "gpt-4o"}, "gpt-4o-mini", False),
    ({"starts_with": "claude-3"}, "claude-3-5-sonnet", True), ({"ends_with": "-v1:0"}, "meta.llama3-v1:0", True),
    ({"contains": "sonnet"}, "claude-3-5-sonnet-latest", True), ({"regex": "^o[134]"}, "o3-mini", True),
    ({"regex": "^o[134]"}, "gpt-o3", False),
    ({"or": [{"equals": "a"}, {"equals": "b"}]}, "b", True),
    ({"and": [{"contains": "huggingface"}, {"contains": "groq"}]}, "huggingface-groq", True),
    ({"and": [{"contains": "huggingface"}, {"contains": "groq"}]}, "groq", False),
])
def test_clauses_follow_genai_prices_semantics(clause: dict[str, object], name: str, expected: bool) -> None:
    assert compile_rule(clause, "t")(name) is expected


@pytest.mark.parametrize("clause", [{"equals": 1}, {"near": "x"}, {"or": []}, {"a": "x", "b": "y"}, "x"])
def test_a_malformed_clause_is_a_price_error(clause: object) -> None:
    with pytest.raises(PriceError, match="t: "):
        compile_rule(clause, "t")


def test_candidates_try_prefixes_then_the_shapes_of_openrouter_finetune_and_bedrock_ids() -> None:
    assert list(candidates("bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0")) == [
        (None, "bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        (None, "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("openrouter", "bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("aws", "us.anthropic.claude-3-7-sonnet-20250219-v1:0")]
    assert list(candidates("ft:gpt-4o-mini-2024-07-18:acme::x1")) == [
        (None, "ft:gpt-4o-mini-2024-07-18:acme::x1"), ("openai", "ft:gpt-4o-mini-2024-07-18:acme::x1")]
    assert list(candidates("openrouter/openai/gpt-4o", guess=False)) == [
        (None, "openrouter/openai/gpt-4o"), ("openrouter", "openai/gpt-4o"), (None, "openai/gpt-4o"),
        ("openai", "gpt-4o"), (None, "gpt-4o")]


def _pairs(genai_providers: list[object]) -> list[tuple[str | None, str]]:
    """Every (hint, name) worth asking: each shipped model id (bare and under its provider's id), and every
    candidate of every name in the measurement list."""
    pairs: list[tuple[str | None, str]] = []
    for provider in genai_providers:
        for model in provider.models:  # type: ignore[attr-defined]
            pairs += [(None, model.id), (provider.id, model.id)]  # type: ignore[attr-defined]
    for line in NAMES.read_text(encoding="utf-8").splitlines()[1:]:
        pairs += list(candidates(line.split("\t")[1]))
    return pairs


def test_the_matcher_agrees_with_genai_prices_on_every_name() -> None:
    """The packaged snapshot was generated from genai-prices 0.2.5 (test_snapshot.py checks that); its match rules,
    evaluated here, find the same (provider, model) as the library's own ``find_provider_model``."""
    genai_data = pytest.importorskip("genai_prices.data")
    from genai_prices.data_snapshot import DataSnapshot

    library = DataSnapshot(providers=genai_data.providers, from_auto_update=False)
    owner = {id(m): p.id for p in genai_data.providers for m in p.models}  # a fallback model keeps its own provider
    document = read_document(SNAPSHOT)
    ours = Matcher.from_document(document["providers"], document["models"], "snapshot")
    shipped = {entry["model"] for entry in document["models"]}
    pairs = _pairs(genai_data.providers)
    assert len(pairs) > 4_500
    compared = 0
    for hint, name in pairs:
        try:
            _, model = library.find_provider_model(name, None, hint, None)
            theirs: str | None = f"{owner[id(model)]}/{model.id}"
        except LookupError:
            theirs = None
        if theirs is not None and theirs not in shipped:
            continue  # a model the snapshot skips (not priced per token): nothing to agree on
        assert ours.find(name, hint) == theirs, (hint, name)
        compared += 1
    assert compared > 4_000
