"""What a running gateway holds: built once in the app's lifespan, reached through ``request.app.state.gateway``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tokenomy.config.settings import Settings
from tokenomy.dispatch.dispatcher import Dispatcher


@dataclass(slots=True)
class Gateway:
    settings: Settings
    dispatcher: Dispatcher
    embedder: Any = None  # MiniLMEmbedder, loaded on first /v1/embeddings call
    embedder_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
