"""An on-disk cache of text embeddings for ``route train`` / ``route eval``: each text is embedded once per
embedder, however many times a file is trained on or evaluated.

One ``.npz`` file per embedder in the cache folder (by default ``embedding-cache/`` inside the router directory;
``--embedding-cache DIR`` to share one between routers), holding the SHA-256 of every embedded text and its
vector. Keys cover the exact text embedded (the prompt's window, or a cascade answer's window) and the
embedder's name, so a router with another window or embedder never reads a wrong vector. A damaged cache file is
ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from tokenomy.routing.features import Embed

DEFAULT_FOLDER = "embedding-cache"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """``embed = cache.wrap(embed)``: vectors for texts already in ``folder`` come from disk, the rest from
    ``embed``, and are written back."""

    def __init__(self, folder: Path, embedder: str) -> None:
        self.path = folder / f"{embedder}.npz"
        self.hits = 0
        self.misses = 0

    def _read(self) -> tuple[list[bytes], np.ndarray | None]:
        import numpy as np

        try:
            with np.load(self.path) as data:
                keys = np.asarray(data["keys"], dtype=np.uint8).reshape(-1, 32)
                return [row.tobytes() for row in keys], np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return [], None

    def _write(self, keys: list[bytes], vectors: np.ndarray) -> None:
        import numpy as np

        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.stem}.{os.getpid()}.npz")
        digests = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 32)  # not "S32": it drops trailing NULs
        np.savez(partial, keys=digests, vectors=vectors)
        partial.replace(self.path)

    def wrap(self, embed: Embed) -> Embed:
        def cached(texts: list[str]) -> np.ndarray:
            import numpy as np

            if not texts:
                return embed(texts)
            keys, stored = self._read()
            if stored is None or stored.ndim != 2 or stored.shape[0] != len(keys):
                keys, stored = [], None
            index = {k: i for i, k in enumerate(keys)}
            wanted = [text_key(t) for t in texts]
            missing = {k: t for k, t in zip(wanted, texts, strict=True) if k not in index}
            self.hits += sum(1 for k in wanted if k in index)
            self.misses += len(missing)
            if missing:
                fresh = np.asarray(embed(list(missing.values())), dtype=np.float32)
                if stored is None or stored.shape[1] != fresh.shape[1]:
                    keys, stored = [], fresh[:0]
                keys, stored = keys + list(missing), np.vstack([stored, fresh])
                index = {k: i for i, k in enumerate(keys)}
                self._write(keys, stored)
            assert stored is not None
            result: np.ndarray = stored[[index[k] for k in wanted]]
            return result

        return cached
