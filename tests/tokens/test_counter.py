from __future__ import annotations

import subprocess
import sys

import pytest

from tokenomy.tokens.counter import TokenCounter, encoding_for

# The OpenAI cookbook's "How to count tokens with tiktoken" example conversation; it reports 129 prompt tokens
# for gpt-4-0613 / gpt-3.5-turbo-0613 (cl100k_base) with this recipe.
COOKBOOK = [
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


def test_known_counts() -> None:
    counter = TokenCounter()
    assert counter.count_text("hello world", "gpt-4o") == 2
    assert counter.count_text("hello world", "gpt-4") == 2
    assert counter.count_text("tiktoken is great!", "gpt-3.5-turbo") == 6
    assert counter.count_messages(COOKBOOK, "gpt-4-0613") == 129


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o-mini", "o200k_base"), ("openai/gpt-4.1", "o200k_base"), ("o3", "o200k_base"), ("gpt-5-nano", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("claude-sonnet-4-5", "cl100k_base"), ("llama-3.1-8b-instant", "cl100k_base"),
])
def test_encoding_choice(model: str, encoding: str) -> None:
    assert encoding_for(model) == encoding


def test_completion_includes_tool_calls() -> None:
    counter = TokenCounter()
    calls = [{"function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert counter.count_completion("", calls, "gpt-4o") == counter.count_text('get_weather{"city": "Paris"}',
                                                                               "gpt-4o")
    assert counter.count_completion("", None, "gpt-4o") == 0


def test_counts_with_network_unreachable_and_lazily(tmp_path: object) -> None:
    probe = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('network blocked in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import tokenomy.tokens.counter as c\n"
        "assert 'tiktoken' not in sys.modules, 'tiktoken imported at module import'\n"
        "print(c.TokenCounter().count_text('hello world', 'gpt-4o'))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TIKTOKEN_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
