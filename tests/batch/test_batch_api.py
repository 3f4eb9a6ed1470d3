"""The Batch API driven by the official openai SDK against a running gateway over the fault upstream: files,
the batch lifecycle, output and error files, cancel, expiry, pagination, and the ledger's one row per line."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.batch.parts import result_rows, wait_for

from servers import run_gateway
from tokenomy.config.settings import BatchConfig, DeploymentConfig, LedgerConfig, LocalConfig, RetryConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def _dep(name: str, base: str, upstream: str) -> DeploymentConfig:
    return DeploymentConfig(name=name, provider="openai_compatible", model=name, upstream_model=upstream,
                            base_url=base)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-home")


@pytest.fixture(scope="module")
def client(fault: tuple[str, FaultUpstream], home: Path) -> Iterator[openai.OpenAI]:
    base, _ = fault
    tag = uuid.uuid4().hex[:6]
    settings = Settings(
        deployments=[_dep("echo", base, "echo"), _dep("bad", base, "error-400"), _dep("slow", base, "sleep-300"),
                     _dep("down", base, "error-503"), _dep("limited", base, f"flaky-0-{tag}")],
        retry=RetryConfig(max_retries=1, base_delay_ms=1, max_delay_ms=2, cooldown_s=0.01),
        local=LocalConfig(enabled=False), ledger=LedgerConfig(reference_model=None), home=str(home),
        batch=BatchConfig(max_concurrency=4, line_retries=1, max_backoff_s=0.2))
    with run_gateway(settings) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def _line(custom_id: str, model: str, text: str, url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": text}]}}


def _upload(client: openai.OpenAI, lines: list[dict[str, Any]], name: str = "in.jsonl") -> Any:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=(name, io.BytesIO(data)), purpose="batch")






def test_lifecycle_output_and_error_files(client: openai.OpenAI, home: Path) -> None:
    lines = [_line(f"ok-{i}", "echo", f"question {i}") for i in range(6)] + [_line("rejected", "bad", "no")]
    source = _upload(client, lines)
    assert source.purpose == "batch" and source.bytes > 0 and source.filename == "in.jsonl"
    created = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                    completion_window="24h", metadata={"job": "nightly"})
    assert created.status == "validating" and created.metadata == {"job": "nightly"}
    done = wait_for(client, created.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (7, 6, 1)
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    assert done.usage is not None and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    output = result_rows(client, done.output_file_id)
    assert [row["custom_id"] for row in output] == [f"ok-{i}" for i in range(6)]
    first = output[0]
    assert first["error"] is None and first["response"]["status_code"] == 200
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "echo: question 0"
    errors = result_rows(client, done.error_file_id)
    assert [row["custom_id"] for row in errors] == ["rejected"]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["code"] == "upstream_rejected"
    # every line is one ledger request row, under the request id the output names
    with sqlite3.connect(home / "ledger.db") as conn:
        rows = dict(conn.execute("SELECT id, status FROM requests WHERE endpoint = 'batch.chat.completions'"))
    for row in output + errors:
        assert rows[row["response"]["request_id"]] == row["response"]["status_code"]


def test_bad_upload_names_the_lines(client: openai.OpenAI) -> None:
    good = _line("a", "echo", "x")
    bad = [good, {"custom_id": "b", "method": "GET", "url": "/v1/chat/completions", "body": {}}, good,
           {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": []}}]
    data = "".join(json.dumps(line) + "\n" for line in bad).encode() + b"{not json\n"
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("bad.jsonl", io.BytesIO(data)), purpose="batch")
    message = info.value.message
    assert "line 2: 'method' must be \"POST\"" in message
    assert "line 3: custom_id 'a' is also on line 1" in message
    assert "line 4: body:" in message and "line 5: not valid JSON" in message
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")


def test_endpoint_mismatch_fails_the_batch_with_line_errors(client: openai.OpenAI) -> None:
    source = _upload(client, [_line("e1", "all-minilm-l6-v2", "x", url="/v1/embeddings") | {
        "body": {"model": "all-minilm-l6-v2", "input": "x"}}, _line("c1", "echo", "y")])
    batch = wait_for(client, client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                                completion_window="24h").id)
    assert batch.status == "failed" and batch.failed_at
    assert batch.errors is not None and batch.errors.data is not None
    (problem,) = batch.errors.data
    assert problem.line == 1 and problem.code == "mismatched_url"


def test_create_rejects_bad_requests(client: openai.OpenAI) -> None:
    source = _upload(client, [_line("a", "echo", "x")])
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                              completion_window="48h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=source.id, endpoint="/v1/moderations", completion_window="24h")


def test_cancel_keeps_finished_lines(client: openai.OpenAI) -> None:
    source = _upload(client, [_line(f"s-{i}", "slow", f"q{i}") for i in range(40)])
    batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 20
    while client.batches.retrieve(batch.id).request_counts.completed < 4:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_for(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    output, errors = result_rows(client, done.output_file_id), result_rows(client, done.error_file_id)
    assert len(output) >= 4 and len(output) + len(errors) == 40
    assert {row["error"]["code"] for row in errors} == {"batch_cancelled"}
    assert {row["custom_id"] for row in output + errors} == {f"s-{i}" for i in range(40)}
    with pytest.raises(openai.ConflictError):
        done_batch = wait_for(client, client.batches.create(input_file_id=_upload(client, [_line("z", "echo", "z")]).id,
                                                         endpoint="/v1/chat/completions",
                                                         completion_window="24h").id)
        client.batches.cancel(done_batch.id)


def test_expiry_marks_the_rest_expired(client: openai.OpenAI) -> None:
    source = _upload(client, [_line(f"x-{i}", "slow", f"q{i}") for i in range(60)])
    batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                  completion_window="1s")  # type: ignore[arg-type]
    done = wait_for(client, batch.id)
    assert done.status == "expired" and done.expired_at
    output, errors = result_rows(client, done.output_file_id), result_rows(client, done.error_file_id)
    assert len(output) + len(errors) == 60 and len(errors) > 0
    assert {row["error"]["code"] for row in errors} == {"batch_expired"}


def test_unavailable_upstream_fails_lines_after_retries(client: openai.OpenAI) -> None:
    source = _upload(client, [_line("d-1", "down", "q")])
    done = wait_for(client, client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                               completion_window="24h").id)
    assert done.status == "completed" and done.output_file_id is None
    (row,) = result_rows(client, done.error_file_id)
    assert row["response"]["status_code"] == 503


def test_list_paginates_and_files_delete(client: openai.OpenAI) -> None:
    ids = []
    for i in range(3):
        source = _upload(client, [_line(f"p{i}", "echo", "x")])
        ids.append(client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                         completion_window="24h").id)
    first = client.batches.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    seen = [b.id for b in client.batches.list(limit=2)]  # auto-pagination walks every page
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert seen[:3] == ids[::-1]  # newest first
    source = _upload(client, [_line("del", "echo", "x")], name="gone.jsonl")
    assert client.files.retrieve(source.id).filename == "gone.jsonl"
    assert source.id in {f.id for f in client.files.list(purpose="batch")}
    deleted = client.files.delete(source.id)
    assert deleted.deleted and deleted.id == source.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(source.id)


def test_embeddings_batch(client: openai.OpenAI) -> None:
    lines = [{"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "all-minilm-l6-v2", "input": [f"sentence {i}", "another one"]}} for i in range(3)]
    done = wait_for(client, client.batches.create(input_file_id=_upload(client, lines).id, endpoint="/v1/embeddings",
                                               completion_window="24h").id)
    assert done.status == "completed"
    output = result_rows(client, done.output_file_id)
    assert [row["custom_id"] for row in output] == ["e0", "e1", "e2"]
    vectors = output[0]["response"]["body"]["data"]
    assert len(vectors) == 2 and len(vectors[0]["embedding"]) == 384
