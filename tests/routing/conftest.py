"""Routing test helpers: the shipped fixtures and a deterministic stand-in embedder (hashed word counts, unit
length) for the learning tests that do not exercise MiniLM itself."""

from __future__ import annotations

import hashlib
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
