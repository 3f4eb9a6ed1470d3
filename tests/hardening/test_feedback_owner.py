"""/v1/feedback checks whose answer it is (issue 20): on 939b14d any key could report any request id's semantic hit
wrong, and so drop another key's cache entries and move the shared threshold."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from tests.hardening.parts import JSON, MASTER, echo_settings, request

from servers import run_gateway
from tokenomy.cache.semantic.verifier import Calibration, load_calibration
from tokenomy.config.settings import CacheConfig, ControlConfig, SemanticCacheConfig
from tokenomy.testing.fault_upstream import FaultUpstream


def _key(url: str) -> str:
    status, _, body = request(url.removesuffix("/v1") + "/admin/keys", "POST",
                              json.dumps({"name": "k-" + uuid.uuid4().hex[:6]}).encode(),
                              {**JSON, "authorization": f"Bearer {MASTER}"})
    assert status == 201, body
    return str(json.loads(body)["key"])


def _ask(url: str, key: str, text: str) -> dict[str, str]:
    body = json.dumps({"model": "echo", "temperature": 0, "messages": [
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]}).encode()
    status, headers, _ = request(url + "/chat/completions", "POST", body, {**JSON, "authorization": f"Bearer {key}"})
    assert status == 200
    return headers


def _report(url: str, key: str, rid: str) -> int:
    body = json.dumps({"request_id": rid, "correct": False}).encode()
    return request(url + "/feedback", "POST", body, {**JSON, "authorization": f"Bearer {key}"})[0]


def test_only_the_key_served_may_report_on_a_semantic_hit(fault: tuple[str, FaultUpstream],
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    base, _ = fault
    home: Path = tmp_path_factory.mktemp("feedback-home")
    calibration = home / "calibration.json"  # the shipped verifier, serving from score 0.8
    calibration.write_bytes(Calibration(load_calibration().verifier, ((0.001, 0.8),), "test").to_json())
    semantic = SemanticCacheConfig(enabled=True, calibration=str(calibration), policy="calibrated")
    settings = echo_settings(base, home=str(home), control=ControlConfig(master_key=MASTER),
                             cache=CacheConfig(semantic=semantic))
    with run_gateway(settings) as url:
        owner, other = _key(url), _key(url)
        _ask(url, owner, "Why is the sky blue?")
        hit = _ask(url, owner, "Why is the sky blue in colour?")
        assert hit["x-tokenomy-cache"] == "semantic-hit"
        rid = hit["x-request-id"]
        assert _report(url, other, rid) == 404  # another key's answer is as if unknown
        assert _report(url, owner, rid) == 200
        again = _ask(url, owner, "Why is the sky blue in colour?")
        assert again["x-tokenomy-cache"] == "miss"  # the entry its own key reported wrong is gone
