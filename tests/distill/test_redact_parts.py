from __future__ import annotations

from collections import Counter

from tokenomy.distill.parts import fit_schema, parts_for, split_parts
from tokenomy.distill.redact import redact, redact_messages


def test_redacts_each_kind_and_counts_it() -> None:
    found: Counter[str] = Counter()
    text = ("Write to jane.doe+billing@example.co.uk or call +44 20 7946 0958 / (555) 123-4567; card "
            "4111 1111 1111 1111; key sk-proj-abcdefghijklmnopqrstuv123, AKIAIOSFODNN7EXAMPLE, "
            "Authorization: Bearer abcdefghijklmnop12345")
    out = redact(text, found)
    assert out == ("Write to [EMAIL] or call [PHONE] / [PHONE]; card [CARD]; key [API_KEY], [API_KEY], "
                   "Authorization: Bearer [API_KEY]")
    assert found == {"email": 1, "phone": 2, "card": 1, "api_key": 3}


def test_leaves_ordinary_numbers_alone() -> None:
    text = "Janet sells 16 - 3 - 4 = 9 eggs at $2 in 2008; total 1,234,567; order 1234567890123 (not a card)"
    assert redact(text) == text


def test_redacts_messages_strings_and_text_parts() -> None:
    messages = [{"role": "system", "content": "mail ops@acme.io"},
                {"role": "user", "content": [{"type": "text", "text": "card 5555 5555 5555 4444"},
                                             {"type": "image_url", "image_url": {"url": "x"}}]}]
    out = redact_messages(messages)
    assert out[0]["content"] == "mail [EMAIL]"
    assert out[1]["content"][0]["text"] == "card [CARD]"
    assert out[1]["content"][1] == messages[1]["content"][1]
    assert messages[0]["content"] == "mail ops@acme.io"  # the original is untouched


def test_split_parts_recognises_key_lines_json_and_tags() -> None:
    assert split_parts("Premise: A man sleeps.\nHypothesis: Nobody sleeps.") == ["A man sleeps.", "Nobody sleeps."]
    assert split_parts('{"question": "Is it?", "answer": "Yes", "n": 3}') == ["Is it?", "Yes"]
    assert split_parts("<a>first</a> and <b>second\nline</b>") == ["first", "second\nline"]
    assert split_parts("Classify this review: great phone") == ["Classify this review: great phone"]
    assert split_parts("Message: hi\nand more\nReply: hello") == ["hi\nand more", "hello"]


def test_schema_needs_most_prompts_structured() -> None:
    pairs = [f"Message: m{i}\nReply: r{i}" for i in range(9)]
    assert fit_schema(pairs) == 2
    assert fit_schema([*pairs[:5], "plain", "plain two", "three", "four"]) == 1
    assert parts_for("just text", 2) == ["just text", "just text"]
