"""Token counts against published values: OpenAI cookbook "How to count tokens with tiktoken"
(github.com/openai/openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb), whose prompt counts it shows
matching the API's ``usage.prompt_tokens``."""

from __future__ import annotations

from typing import Any

import pytest
import tiktoken.model

from tokenomy.tokens.counter import CL100K, O200K, TokenCounter, encoding_for

COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
                                  "into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
                                                          "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
                                                               "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]
COOKBOOK_TOOLS = [{"type": "function", "function": {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "required": ["location"], "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "description": "The unit of temperature to return",
                 "enum": ["celsius", "fahrenheit"]},
    }},
}}]
COOKBOOK_TOOL_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


@pytest.mark.parametrize(("encoding", "text", "ids"), [
    (O200K, "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    (CL100K, "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    (O200K, "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
    (CL100K, "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    (O200K, "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
    (CL100K, "お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
    (O200K, "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
])
def test_cookbook_token_ids(counter: TokenCounter, encoding: str, text: str, ids: list[int]) -> None:
    assert counter.encoding(encoding).encode(text) == ids


@pytest.mark.parametrize(("text", "model", "tokens"), [
    ("hello world", "gpt-4o", 2), ("hello world", "gpt-4", 2),
    ("tiktoken is great!", "gpt-3.5-turbo", 6), ("tiktoken is great!", "gpt-4o-mini", 6),
    ("", "gpt-4o", 0),
])
def test_known_text_counts(counter: TokenCounter, text: str, model: str, tokens: int) -> None:
    assert counter.count_text(text, model) == tokens


def test_special_token_text_is_counted_as_text(counter: TokenCounter) -> None:
    # A client can send "<|endoftext|>": it is ordinary text to count (tiktoken's encode() would raise on it).
    assert counter.count_text("<|endoftext|>", "gpt-4") == 7
    assert counter.count_text("<|endoftext|>", "gpt-4o") == 7


@pytest.mark.parametrize(("model", "tokens"), [
    ("gpt-3.5-turbo", 129), ("gpt-4-0613", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124),
])
def test_cookbook_prompt_counts(counter: TokenCounter, model: str, tokens: int) -> None:
    assert counter.count_messages(COOKBOOK_MESSAGES, model) == tokens


@pytest.mark.parametrize(("model", "tokens"), [
    ("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101),
])
def test_cookbook_prompt_counts_with_tools(counter: TokenCounter, model: str, tokens: int) -> None:
    assert counter.count_messages(COOKBOOK_TOOL_MESSAGES, model, COOKBOOK_TOOLS) == tokens


def test_name_costs_its_tokens_plus_one(counter: TokenCounter) -> None:
    plain = counter.count_messages([{"role": "user", "content": "hi"}], "gpt-4o")
    named = counter.count_messages([{"role": "user", "content": "hi", "name": "example_user"}], "gpt-4o")
    assert plain == 3 + 1 + 1 + 3  # message, "user", "hi", reply priming
    assert named - plain == counter.count_text("example_user", "gpt-4o") + 1


def test_multipart_content_counts_its_text_parts(counter: TokenCounter) -> None:
    parts = [{"type": "text", "text": "Describe "}, {"type": "image_url", "image_url": {"url": "data:,"}},
             {"type": "text", "text": "this picture."}]
    assert counter.count_messages([{"role": "user", "content": parts}], "gpt-4o") == counter.count_messages(
        [{"role": "user", "content": "Describe this picture."}], "gpt-4o")


def test_tool_call_turns(counter: TokenCounter) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    messages = [{"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"}]
    n = counter.count_text
    expected = (3 + n("assistant", "gpt-4o") + n('get_weather{"city":"Paris"}', "gpt-4o")
                + 3 + n("tool", "gpt-4o") + n("call_1", "gpt-4o") + n("18C, sunny", "gpt-4o") + 3)
    assert counter.count_messages(messages, "gpt-4o") == expected


def test_malformed_shapes_are_skipped_not_raised_on(counter: TokenCounter) -> None:
    messages: list[Any] = ["not a message", {"role": "user", "content": 42, "extra": {"x": 1}},
                           {"role": "user", "content": [None, {"type": "text", "text": "hi"}]}]
    tools: list[Any] = ["nope", {"type": "function", "function": {"name": "ping"}}]
    # 3 + "user" | 3 + "user" + "hi" | tools: 7 + "ping:" + 12 | priming 3
    assert counter.count_messages(messages, "gpt-4o", tools) == 4 + 5 + (7 + 2 + 12) + 3


def test_non_function_tools_count_as_their_json(counter: TokenCounter) -> None:
    tool = {"type": "custom", "name": "grep", "description": "Search files."}
    base = counter.count_messages(COOKBOOK_TOOL_MESSAGES, "gpt-4o")
    as_json = counter.count_text('{"type":"custom","name":"grep","description":"Search files."}', "gpt-4o")
    assert counter.count_messages(COOKBOOK_TOOL_MESSAGES, "gpt-4o", [tool]) == base + as_json + 12


def test_completion_counts_text_and_rejoined_streamed_tool_calls(counter: TokenCounter) -> None:
    deltas = [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
              {"index": 0, "function": {"arguments": '{"city": '}}, {"index": 0, "function": {"arguments": '"Paris"}'}}]
    whole = counter.count_text('get_weather{"city": "Paris"}', "gpt-4o")
    assert whole == 8  # get _weather {" city ": " Paris "}
    assert counter.count_completion("", deltas, "gpt-4o") == whole
    assert counter.count_completion("Sure.", None, "gpt-4o") == counter.count_text("Sure.", "gpt-4o") == 2
    assert counter.count_completion("", None, "gpt-4o") == 0


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o-mini", O200K), ("openai/gpt-4.1", O200K), ("o3", O200K), ("o4-mini-2025-04-16", O200K),
    ("gpt-5-nano", O200K), ("gpt-4.5-preview", O200K), ("openai/gpt-oss-120b", O200K),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", O200K), ("gpt-7-turbo", O200K), ("GPT-4O", O200K),
    ("gpt-4", CL100K), ("gpt-4-turbo", CL100K), ("gpt-35-turbo", CL100K), ("azure/gpt-3.5-turbo-0125", CL100K),
    ("ft:gpt-4-0613:acme::abc123", CL100K), ("text-embedding-3-small", CL100K),
    ("claude-sonnet-4-5", CL100K), ("llama-3.1-8b-instant", CL100K), ("mistral-large-latest", CL100K),
    ("ollama/qwen2.5:7b", CL100K), ("olmo-2-13b", CL100K),
])
def test_encoding_choice(model: str, encoding: str) -> None:
    assert encoding_for(model) == encoding


def test_encoding_choice_agrees_with_tiktokens_own_tables() -> None:
    shipped = {CL100K: CL100K, O200K: O200K, "o200k_harmony": O200K}  # harmony: o200k_base's ranks
    exact = {m: e for m, e in tiktoken.model.MODEL_TO_ENCODING.items() if e in shipped}
    prefixes = {p.removesuffix("-") + "-2025-01-01": e
                for p, e in tiktoken.model.MODEL_PREFIX_TO_ENCODING.items() if e in shipped}
    assert len(exact) >= 8 and len(prefixes) >= 8  # tiktoken 0.7 lists 10 and 8
    disagreements = {m: encoding_for(m) for m, e in {**exact, **prefixes}.items() if encoding_for(m) != shipped[e]}
    assert disagreements == {}
