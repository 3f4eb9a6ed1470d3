"""Routing test helpers: the shipped fixtures and a deterministic stand-in embedder (hashed word counts, unit
length) for the learning tests that do not exercise MiniLM itself."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
GSM8K = DATA / "gsm8k_small.jsonl"
NIM = DATA / "nim_small.jsonl"
ROUTELLM_PRICES = DATA / "routellm.models.json"


def hashed_embed(texts: list[str], dims: int = 64) -> Any:
    out = np.zeros((len(texts), dims), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, int(hashlib.md5(word.encode()).hexdigest()[:6], 16) % dims] += 1.0
        out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
    return out


@pytest.fixture(scope="session")
def counter() -> Any:
    from tokenomy.tokens.counter import TokenCounter

    return TokenCounter()


@pytest.fixture(scope="session")
def router_dir(tmp_path_factory: pytest.TempPathFactory, counter: Any) -> Path:
    """A router trained with MiniLM on the GSM8K fixture (default target share=0.5), without the cheap model's
    responses: no cascade check to fit (seconds saved). The no-harm guard is off: on 160 rows the learned rule
    does not beat the hull of single models by more than the fold-to-fold noise, so the guard would serve single
    models everywhere, and these tests exercise the learned rule's mechanics (targets, holds, fallbacks);
    tests/routing/test_no_harm.py tests the guard."""
    from tokenomy.embeddings.minilm import MiniLMEmbedder
    from tokenomy.routing.outcomes import read_prices
    from tokenomy.routing.train import train

    embedder = MiniLMEmbedder.load()
    out = tmp_path_factory.mktemp("gsm8k-router")
    data = out.parent / "gsm8k_no_responses.jsonl"
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    for row in rows:
        for outcome in row["outcomes"].values():
            outcome.pop("response", None)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    train([data], out, embed=lambda texts: embedder.embed(texts).vectors, counter=counter,
          prices=read_prices(ROUTELLM_PRICES), target="share=0.5", no_harm=False)
    return out
