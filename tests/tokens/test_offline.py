"""The counter works with no network and no tiktoken cache, loads lazily, refuses damaged files, and tokenises
exactly as unmodified tiktoken does with OpenAI's files."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS

import tokenomy
from tokenomy.errors import TokenomyError
from tokenomy.tokens.counter import CL100K, DATA_DIR, O200K, TokenCounter

URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
SAMPLE = ("The quick brown fox — 素早い茶色の狐 — jumps over 13 lazy dogs!\n\n"
          "def f(x):\n    return x ** 2  # Привет, мир. 🦊🦊 <|endoftext|> don't WON'T")


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError("network refused by this test")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every way tiktoken could fetch raises; its cache is an empty folder, returned to check it stays empty."""
    import requests

    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    monkeypatch.setattr(requests, "get", _refuse)
    monkeypatch.setattr(tiktoken.load, "read_file", _refuse)
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


def test_counts_with_network_refused_and_writes_no_cache(no_network: Path) -> None:
    with pytest.raises(OSError, match="network refused"):
        tiktoken.load.load_tiktoken_bpe(URL.format("p50k_base"))  # the refusal is real: tiktoken cannot fetch
    counter = TokenCounter()
    assert counter.count_text("hello world", "gpt-4o") == 2
    assert counter.count_text("tiktoken is great!", "gpt-4") == 6
    assert list(no_network.iterdir()) == []


def test_import_is_lazy_and_a_fresh_process_counts_offline(tmp_path: Path) -> None:
    probe = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('network refused by this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import tokenomy.tokens.counter as c\n"
        "assert 'tiktoken' not in sys.modules, 'tiktoken imported by importing the counter'\n"
        "counter = c.TokenCounter()\n"
        "assert 'tiktoken' not in sys.modules, 'tiktoken imported by making a counter'\n"
        "print(counter.count_text('hello world', 'gpt-4o'), counter.count_text('tiktoken is great!', 'gpt-4'))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TIKTOKEN_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(tokenomy.__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "6"]
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", [O200K, CL100K])
def test_tokenises_as_unmodified_tiktoken_does(name: str, no_network: Path) -> None:
    # tiktoken's own way offline: OpenAI's file saved under the SHA-1 of its URL in TIKTOKEN_CACHE_DIR.
    url = URL.format(name)
    shutil.copy(DATA_DIR / f"{name}.tiktoken", no_network / hashlib.sha1(url.encode()).hexdigest())
    reference = tiktoken.Encoding(**ENCODING_CONSTRUCTORS[name]())
    ours = TokenCounter().encoding(name)
    assert ours.encode_ordinary(SAMPLE) == reference.encode_ordinary(SAMPLE)
    assert (ours.n_vocab, ours.special_tokens_set) == (reference.n_vocab, reference.special_tokens_set)
    assert ours._pat_str == reference._pat_str


def test_damaged_file_is_refused(tmp_path: Path) -> None:
    shutil.copytree(DATA_DIR, tmp_path, dirs_exist_ok=True)
    path = tmp_path / f"{O200K}.tiktoken"
    blob = bytearray(path.read_bytes())
    blob[100] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(TokenomyError, match="tiktoken expects 446a9538") as caught:
        TokenCounter(tmp_path).count_text("hello", "gpt-4o")
    assert caught.value.code == "encoding_file_damaged"
    assert TokenCounter(tmp_path).count_text("hello world", "gpt-4") == 2  # the other file is intact


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenomyError, match="cannot be read") as caught:
        TokenCounter(tmp_path).count_text("hello", "gpt-4")
    assert caught.value.code == "encoding_file_missing"


def test_each_encoding_is_built_once_under_concurrent_first_use() -> None:
    counter = TokenCounter()
    start = threading.Barrier(8)
    seen: list[object] = []

    def first_use() -> None:
        start.wait()
        seen.append(counter.encoding(O200K))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and len({id(e) for e in seen}) == 1
    assert counter.encoding(O200K) is seen[0]


def test_unknown_encoding_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="no shipped encoding 'p50k_base'"):
        TokenCounter().encoding("p50k_base")
