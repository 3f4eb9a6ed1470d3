"""One reading of a request's prompt: the router, the semantic cache and the audit all use ``wire.prompt``."""

from __future__ import annotations

from tokenomy.wire.prompt import prompt_text, sole_prompt


def test_the_prompt_is_the_last_user_turn() -> None:
    body = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                         {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"},
                                                      {"type": "text", "text": "b"}]}]}
    assert prompt_text(body) == "a\nb"
    assert sole_prompt(body) is None  # an image part: the answer may depend on more than the words
    assert prompt_text({"messages": [{"role": "system", "content": "only"}]}) == "only"
    assert prompt_text({"messages": []}) is None and prompt_text(None) is None
    assert prompt_text({"messages": [{"role": "user", "content": "   "}]}) is None


def test_the_semantic_cache_reads_a_last_user_turn_of_text_only() -> None:
    asked = {"messages": [{"role": "user", "content": [{"type": "text", "text": "capital of France?"}]}]}
    assert sole_prompt(asked) == "capital of France?" == prompt_text(asked)
    answered = {"messages": [*asked["messages"], {"role": "assistant", "content": "Paris"}]}
    assert sole_prompt(answered) is None and prompt_text(answered) == "capital of France?"
