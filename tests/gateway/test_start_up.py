"""What the gateway does at start so that its first requests do not pay for it: the token encodings its deployments
count with are loaded (0.3-0.4 s each, once: the event loop stood still that long under the first traffic), and the
heap start-up built is frozen out of the cyclic collector's full passes (api.heap)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from tokenomy.api.app import create_app
from tokenomy.config.settings import DeploymentConfig, LocalConfig, Settings
from tokenomy.tokens.counter import TokenCounter


def _settings(tmp_path: Path) -> Settings:
    return Settings(deployments=[DeploymentConfig(name="mini", provider="openai_compatible", model="gpt-4o-mini",
                                                  base_url="http://127.0.0.1:9/v1")],
                    local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path / "home"))


def test_start_up_loads_the_encodings_and_freezes_its_heap(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), env={})

    async def started() -> tuple[set[str], int]:
        async with app.router.lifespan_context(app):
            counter = app.state.gateway.accountant.counter
            assert isinstance(counter, TokenCounter)
            return set(counter._encodings), gc.get_freeze_count()

    loaded, frozen = asyncio.run(started())
    assert loaded == {"o200k_base"}  # gpt-4o-mini's, and no other
    assert frozen > 10_000
    assert gc.get_freeze_count() == 0  # thawed at shutdown
