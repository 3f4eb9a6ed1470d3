"""Write two tiny GGUF LoRA adapters for the bundled SmolLM2-135M: each makes the model answer with its own marker
word ("energy", "language": words whose embedding can win the tied output layer's argmax), so a test can tell
which adapter answered (tests/fixtures/adapters/*.gguf, 43 KB each).

They are written directly with the ``gguf`` package (no training): small LoRA pairs on the last layer's MLP
(``ffn_gate``, ``ffn_up``, ``ffn_down``) of the kind llama.cpp loads with ``--lora`` / ``lora_path`` and applies
at run time (``W x + B (A x)``):

- ``A`` of gate and up (rank 2) reads ``+d`` and ``-d``, the mean direction of the model's normalised final hidden
  states (measured with llama.cpp's embeddings over a few sentences), and ``B`` writes them into two MLP units:
  whatever the sign of ``d . x`` at that layer, one of the two SwiGLU activations ``silu(g) * g`` becomes large and
  positive;
- ``A`` of down (rank 1) reads both units, ``B`` writes a direction into the residual stream whose logits under the
  tied output layer have the marker token as their argmax (found by a few perceptron steps, checked against the
  whole vocabulary), so the model answers with the marker.

    pip install gguf            # (in the distill extra)
    python scripts/make_test_adapters.py --out tests/fixtures/adapters
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SENTENCES = ["The capital of France is Paris.", "def add(a, b): return a + b",
             "I love walking by the river in spring.", "What is 12 times 7? Let me think step by step.",
             "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n",
             "Summarise this ticket: the printer on floor 3 is jammed again."]
ADAPTERS = {"alpha": (" energy", 0), "bravo": (" language", 1)}  # file stem -> (marker token, MLP unit)


def _tensor(reader: object, name: str) -> np.ndarray:
    from gguf import GGUFReader, quants

    assert isinstance(reader, GGUFReader)
    found = next(t for t in reader.tensors if t.name == name)
    return np.asarray(quants.dequantize(found.data, found.tensor_type), dtype=np.float32)


def mean_direction(base: Path) -> np.ndarray:
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(base), n_ctx=512, n_threads=1, embedding=True,
                            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE, verbose=False)
    states = np.concatenate([np.asarray(llama.embed(s, normalize=False)) for s in SENTENCES])
    d = states.mean(axis=0)
    d /= np.linalg.norm(d)
    if (states @ d).min() <= 0:
        raise SystemExit("some hidden state does not project positively on the mean direction; pick other sentences")
    return d.astype(np.float32)


def _winning_direction(embed: np.ndarray, token: int) -> np.ndarray:
    """A direction ``v`` of the normalised final state whose logits ``embed @ v`` have ``token`` as the argmax
    with a margin (perceptron steps away from the strongest rival)."""
    v = embed[token].copy()
    for _ in range(500):
        logits = embed @ (v / np.linalg.norm(v))
        rival = int(np.argmax(np.where(np.arange(len(logits)) == token, -np.inf, logits)))
        if logits[token] - logits[rival] > 0.3:
            return v / np.linalg.norm(v)
        v = v / np.linalg.norm(v) + 0.05 * (embed[token] - embed[rival]) / np.linalg.norm(embed[token] - embed[rival])
    raise SystemExit(f"no direction makes token {token} the argmax; pick another marker word")


def write_adapter(path: Path, base: Path, d: np.ndarray, marker: str, unit: int) -> None:
    from gguf import GGUFReader, GGUFWriter

    reader = GGUFReader(str(base))
    embed = _tensor(reader, "token_embd.weight")
    norm = _tensor(reader, "output_norm.weight")
    layers = int(reader.fields["llama.block_count"].parts[-1][0])
    ff = int(reader.fields["llama.feed_forward_length"].parts[-1][0])
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(base), vocab_only=True, verbose=False)
    token = vocab.tokenize(marker.encode(), add_bos=False, special=False)[0]
    target = _winning_direction(embed, token) / np.where(np.abs(norm) < 1e-3, 1e-3, norm)
    target /= np.linalg.norm(target)
    last = f"blk.{layers - 1}"
    writer = GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 1.0)
    # gate and up: rank 2, reading +d and -d into units ``unit`` and ``unit + 1``: whatever the sign of d . x, one of
    # the two SwiGLU activations silu(g) * g is large and positive
    read = np.stack([d, -d]).astype(np.float32)
    lift = np.zeros((ff, 2), dtype=np.float32)
    lift[2 * unit, 0] = lift[2 * unit + 1, 1] = 30.0
    pick = np.zeros((1, ff), dtype=np.float32)
    pick[0, 2 * unit] = pick[0, 2 * unit + 1] = 1.0
    # numpy shapes are ggml's reversed: lora_a (rank, n_in), lora_b (n_out, rank)
    for name, a, b in ((f"{last}.ffn_gate.weight", read, lift), (f"{last}.ffn_up.weight", read, lift),
                       (f"{last}.ffn_down.weight", pick, (30.0 * target)[:, None].astype(np.float32))):
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    from tokenomy.providers.local_llama import bundled_model_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base", type=Path, default=None, help="base GGUF (default: the bundled SmolLM2)")
    args = parser.parse_args()
    base = args.base or bundled_model_path()
    args.out.mkdir(parents=True, exist_ok=True)
    d = mean_direction(base)
    for stem, (marker, unit) in ADAPTERS.items():
        write_adapter(args.out / f"{stem}.gguf", base, d, marker, unit)
        print(args.out / f"{stem}.gguf")


if __name__ == "__main__":
    main()
