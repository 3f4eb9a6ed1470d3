"""Rebuild src/tokenomy/tokens/data/*.tiktoken from the npm package js-tiktoken (MIT), with no network but npm's.

    python scripts/make_tiktoken_files.py                      # npm pack js-tiktoken@1.0.21 into a temp dir
    python scripts/make_tiktoken_files.py --ranks DIR          # or: an unpacked package's dist/ranks folder

js-tiktoken ships each encoding as ``dist/ranks/<name>.cjs``: ``module.exports = {"pat_str", "special_tokens",
"bpe_ranks"}``, where ``bpe_ranks`` holds lines ``<label> <first-rank> <base64 token> <base64 token> ...`` (ranks
count up from the first; js-tiktoken's own loader reads them the same way). The output is tiktoken's ``.tiktoken``
format, ``<base64 token> <rank>`` per line in rank order. A file is written only if its sha256 equals the one
tiktoken itself expects (``expected_hash`` in tiktoken_ext/openai_public.py), i.e. it is byte-identical to OpenAI's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

JS_TIKTOKEN = "js-tiktoken@1.0.21"
TARGET = Path(__file__).resolve().parent.parent / "src" / "tokenomy" / "tokens" / "data"
EXPECTED_SHA256 = {  # tiktoken_ext/openai_public.py (tiktoken 0.7 … 0.14): cl100k_base(), o200k_base()
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


def to_tiktoken(cjs: Path) -> bytes:
    """One js-tiktoken rank module as the bytes of tiktoken's .tiktoken file."""
    text = cjs.read_text(encoding="utf-8")
    bpe_ranks: str = json.loads(text[text.index("{"): text.rindex("}") + 1])["bpe_ranks"]
    ranked: list[tuple[int, str]] = []
    for line in filter(None, bpe_ranks.split("\n")):
        _label, first, *tokens = line.split(" ")
        ranked.extend((int(first) + i, token) for i, token in enumerate(tokens))
    ranked.sort()
    if [rank for rank, _ in ranked] != list(range(len(ranked))):
        raise SystemExit(f"{cjs.name}: ranks are not 0..{len(ranked) - 1} without gaps")
    return "".join(f"{token} {rank}\n" for rank, token in ranked).encode("ascii")


def npm_ranks(workdir: Path, spec: str) -> Path:
    """``npm pack`` the package into ``workdir`` and unpack it; the folder holding the rank modules."""
    tarball = subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    with tarfile.open(workdir / tarball) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package" / "dist" / "ranks"


def write(ranks: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, expected in EXPECTED_SHA256.items():
        blob = to_tiktoken(ranks / f"{name}.cjs")
        digest = hashlib.sha256(blob).hexdigest()
        if digest != expected:
            raise SystemExit(f"{name}: sha256 {digest} is not tiktoken's {expected}; nothing written for it")
        (target / f"{name}.tiktoken").write_bytes(blob)
        print(f"{name}.tiktoken: {len(blob):,} bytes, sha256 {digest} = tiktoken's expected hash")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ranks", type=Path, help="an unpacked js-tiktoken's dist/ranks (default: npm pack it)")
    parser.add_argument("--package", default=JS_TIKTOKEN, help=f"npm package spec to pack (default {JS_TIKTOKEN})")
    parser.add_argument("--target", type=Path, default=TARGET, help=f"output folder (default {TARGET})")
    args = parser.parse_args()
    if args.ranks is not None:
        write(args.ranks, args.target)
        return
    with tempfile.TemporaryDirectory(prefix="js-tiktoken-") as workdir:
        write(npm_ranks(Path(workdir), args.package), args.target)


if __name__ == "__main__":
    main()
