"""A key's model list holds on the model actually called, not only on the name asked for: a configured fallback to a
model the key may not use is never called."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from tests.control.parts import MASTER, admin, priced

from servers import run_gateway
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LocalConfig, RetryConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def test_a_fallback_to_a_model_the_key_may_not_use_is_never_called(tmp_path: Path,
                                                                    fault: tuple[str, FaultUpstream]) -> None:
    base, upstream = fault
    settings = Settings(deployments=[priced("cheap", base, "error-500", tier="small"),
                                     priced("dear", base, "sleep-0-dear", tier="frontier")],
                        fallbacks={"cheap": ["dear"]}, retry=RetryConfig(max_retries=0),
                        local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path),
                        control=ControlConfig(master_key=MASTER), cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
    with run_gateway(settings) as url:
        _, narrow = admin(url, "POST", "/admin/keys", {"name": "narrow", "models": ["cheap"]})
        _, broad = admin(url, "POST", "/admin/keys", {"name": "broad", "models": ["cheap", "dear"]})
        ask = [{"role": "user", "content": "fall back?"}]
        before = upstream.calls["sleep-0-dear"]
        with pytest.raises(openai.APIStatusError) as failed:  # cheap failed; dear is not this key's to call
            openai.OpenAI(base_url=url, api_key=narrow["key"], max_retries=0).chat.completions.create(
                model="cheap", messages=ask)
        assert failed.value.status_code == 502
        assert upstream.calls["sleep-0-dear"] == before
        raw = openai.OpenAI(base_url=url, api_key=broad["key"], max_retries=0).chat.completions.with_raw_response \
            .create(model="cheap", messages=ask)
        assert raw.headers["x-tokenomy-deployment"] == "dear"  # the same request, for a key that may: served by dear
        assert upstream.calls["sleep-0-dear"] == before + 1
