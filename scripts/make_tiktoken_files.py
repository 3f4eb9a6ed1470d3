"""Rebuild src/tokenomy/tokens/data/*.tiktoken from the npm package js-tiktoken (MIT), offline.

Usage: (cd /tmp && npm pack js-tiktoken@1.0.21 && tar xzf js-tiktoken-1.0.21.tgz)
       python scripts/make_tiktoken_files.py /tmp/package/dist/ranks src/tokenomy/tokens/data

js-tiktoken ships each encoding as ``module.exports = {"pat_str", "special_tokens", "bpe_ranks"}`` where
``bpe_ranks`` holds lines ``<name> <first-rank> <base64 token> <base64 token> ...`` (ranks count up from the first).
The output is tiktoken's own ``.tiktoken`` format (``<base64 token> <rank>`` per line); the script checks each file's
sha256 against the hash tiktoken itself expects and refuses to write a file that does not match.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

EXPECTED_SHA256 = {  # from tiktoken_ext/openai_public.py
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


def convert(cjs: Path) -> bytes:
    text = cjs.read_text(encoding="utf-8")
    data = json.loads(text[text.index("{"): text.rindex("}") + 1])
    ranks: list[tuple[int, str]] = []
    for line in data["bpe_ranks"].split("\n"):
        if not line:
            continue
        _, offset, *tokens = line.split(" ")
        ranks.extend((int(offset) + i, token) for i, token in enumerate(tokens))
    ranks.sort()
    return "".join(f"{token} {rank}\n" for rank, token in ranks).encode()


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.mkdir(parents=True, exist_ok=True)
    for name, expected in EXPECTED_SHA256.items():
        blob = convert(source / f"{name}.cjs")
        digest = hashlib.sha256(blob).hexdigest()
        if digest != expected:
            raise SystemExit(f"{name}: sha256 {digest} does not match tiktoken's {expected}; not written")
        (target / f"{name}.tiktoken").write_bytes(blob)
        print(f"{name}: {len(blob):,} bytes, sha256 matches tiktoken")


if __name__ == "__main__":
    main()
