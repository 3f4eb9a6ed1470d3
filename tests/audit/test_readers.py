"""Format detection for every reader, and bad lines counted, located and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.audit.logs import chat, line, write_jsonl, write_ledger

from tokenomy.audit.readers import detect_format, read_log
from tokenomy.audit.records import BadLines
from tokenomy.errors import AuditError
from tokenomy.pricing.cost import TokenUsage


def test_openai_jsonl_detected_and_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "log.jsonl", [
        line(chat("hi", stream=True), ts="2026-03-02T10:00:00Z", prompt=120, completion=7, cached=20),
        {**chat("bare body", model="gpt-4.1"), "timestamp": 1772445600},  # the body itself, epoch seconds
        {"body": chat("ms", metadata={"batch": "true"}), "timestamp": 1772445600000},
    ])
    assert detect_format(path) == "openai-jsonl"
    bad = BadLines()
    records = list(read_log(path, "openai-jsonl", bad))
    assert bad.count == 0
    first, second, third = records
    assert first.model == "gpt-4o" and first.stream and first.timestamp == 1772445600.0
    assert first.usage == TokenUsage(input_tokens=100, cached_read_tokens=20, output_tokens=7)
    assert second.model == "gpt-4.1" and second.usage is None and second.timestamp == 1772445600.0
    assert third.timestamp == 1772445600.0 and third.latency_tolerant and not third.stream


def test_batch_input_and_output_files_detected(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": chat("q", system=False)}])
    out = write_jsonl(tmp_path / "out.jsonl", [
        {"custom_id": "a", "response": {"status_code": 200, "body": {
            "model": "gpt-4o-mini", "created": 1772445600,
            "usage": {"prompt_tokens": 50, "completion_tokens": 5}}}, "error": None},
        {"custom_id": "b", "response": None, "error": {"code": "expired"}}])
    assert detect_format(inp) == "batch-input"
    assert detect_format(out) == "batch-output"
    bad = BadLines()
    (req,) = read_log(inp, "batch-input", bad)
    assert req.batch and req.usage is None and req.body is not None
    (resp,) = read_log(out, "batch-output", bad)
    assert resp.batch and resp.model == "gpt-4o-mini" and resp.usage == TokenUsage(input_tokens=50, output_tokens=5)
    assert bad.count == 1 and bad.first[0][1] == 2


def test_ledger_detected_and_read_with_recorded_costs(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.db", [("gpt-4o", 1772445600_000000, 100, 0, 10, 350_000_000)])
    assert detect_format(path) == "ledger"
    (rec,) = read_log(path, "ledger", BadLines())
    assert rec.model == "gpt-4o" and rec.timestamp == 1772445600.0
    assert rec.cost_usd is not None and float(rec.cost_usd) == pytest.approx(0.00035)
    assert rec.usage == TokenUsage(input_tokens=100, output_tokens=10)


def test_bad_lines_are_counted_located_and_skipped(tmp_path: Path) -> None:
    good = line(chat("ok"), ts="2026-03-02T10:00:00Z")
    path = write_jsonl(tmp_path / "log.jsonl", [
        good, '{"request": {"model": "gpt-4o", "messa', good, "[1, 2]", {"request": {"messages": []}},
        line(chat("x"), ts="yesterday"), {**good, "response": {"usage": {"prompt_tokens": -3}}}, good, ""])
    bad = BadLines()
    records = list(read_log(path, "openai-jsonl", bad))
    assert len(records) == 3
    assert bad.count == 5
    assert [(n, r) for _, n, r in bad.first] == [
        (2, "invalid JSON"), (4, "not a JSON object"), (5, "no model"), (6, "bad timestamp 'yesterday'"),
        (7, "openai usage: 'prompt_tokens' must be an integer >= 0, got -3")]


def test_unreadable_or_empty_log_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not json\n")
    with pytest.raises(AuditError, match="no JSON object"):
        detect_format(empty)
    with pytest.raises(AuditError, match="cannot read"):
        detect_format(tmp_path / "missing.jsonl")


def test_litellm_spend_logs_detected_and_read_with_their_spend(tmp_path: Path) -> None:
    from decimal import Decimal

    rows = [
        {"request_id": "a", "call_type": "acompletion", "model": "gpt-4o", "spend": 0.00125, "prompt_tokens": 300,
         "completion_tokens": 50, "startTime": "2026-03-02T10:00:00Z",
         "messages": '[{"role": "user", "content": "hi"}]', "metadata": {}},
        {"request_id": "b", "call_type": "aembedding", "model": "text-embedding-3-small", "spend": 0.00001,
         "prompt_tokens": 5, "completion_tokens": 0, "startTime": "2026-03-02T10:00:01Z"},
        {"request_id": "c", "call_type": "completion", "model": "gpt-4o-mini", "spend": "0.0002", "prompt_tokens": 900,
         "completion_tokens": 10, "startTime": 1772445602, "messages": None, "metadata": {"batch": "true"}},
        {"request_id": "d", "call_type": "completion", "model": "gpt-4o", "spend": "lots", "prompt_tokens": 1,
         "completion_tokens": 1, "startTime": "2026-03-02T10:00:03Z"},
    ]
    path = write_jsonl(tmp_path / "spend.jsonl", rows)
    assert detect_format(path) == "litellm-spend"
    bad = BadLines()
    first, second = list(read_log(path, "litellm-spend", bad))
    assert bad.count == 2 and [n for _, n, _ in bad.first] == [2, 4]
    assert first.cost_usd == Decimal("0.00125") and first.usage == TokenUsage(input_tokens=300, output_tokens=50)
    assert first.body is not None and first.body["messages"] == [{"role": "user", "content": "hi"}]
    assert first.timestamp == 1772445600.0
    assert second.body is None and second.latency_tolerant and second.cost_usd == Decimal("0.0002")
