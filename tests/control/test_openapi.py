"""``/openapi.json`` describes the API, and schemathesis (examples, coverage, fuzzing and stateful phases, every
check) run against the running gateway finds no 5xx and no response that breaks the schema."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.control.parts import MASTER, priced

from servers import need, run_gateway
from tokenomy.config.settings import (
    CacheConfig,
    ControlConfig,
    EmbeddingsConfig,
    ExactCacheConfig,
    LocalConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream

# CPython 3.11's ast module can trip over its own recursion counter when hypothesis describes a strategy's lambda
# ("AST constructor recursion depth mismatch", a tool error, not an API failure) when schemathesis runs several
# workers; one worker and a higher limit avoid it.
_RUN = "import sys; sys.setrecursionlimit(20000); from schemathesis.cli import schemathesis; schemathesis()"


@pytest.fixture(scope="module")
def gateway(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base, _ = fault
    settings = Settings(deployments=[priced("echo", base, "echo"), priced("small-echo", base, "echo", tier="small")],
                        local=LocalConfig(enabled=False), env_providers=False,
                        home=str(tmp_path_factory.mktemp("openapi")), embeddings=EmbeddingsConfig(enabled=False),
                        control=ControlConfig(master_key=MASTER),
                        cache=CacheConfig(exact=ExactCacheConfig(store="memory")))
    with run_gateway(settings) as url:
        yield url.removesuffix("/v1")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gateway: str, tmp_path: Path) -> None:
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        need(False, "schemathesis (the dev extra) for the API schema test")
    examples = os.environ.get("TOKENOMY_SCHEMATHESIS_EXAMPLES", "25")
    config = tmp_path / "schemathesis.toml"
    # a schema cannot say "the file is valid JSON lines", "a date not in the past (an expiry) or not in the future
    # (a report's start)" or "a name no other key in use has" (issue 23): such a request is a 400
    accepting_400 = ("POST /admin/keys", "PATCH /admin/keys/{key_id}", "GET /admin/spend", "GET /v1/spend")
    config.write_text('[[operations]]\ninclude-name = "POST /v1/files"\n'
                      'checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 413]\n'
                      + "".join(f'[[operations]]\ninclude-name = "{name}"\n'
                                'checks.positive_data_acceptance.expected-statuses = [200, 201, 400, 401, 404]\n'
                                for name in accepting_400))
    result = subprocess.run(
        [sys.executable, "-c", _RUN, "--config-file", str(config), "run", f"{gateway}/openapi.json", "-H",
         f"Authorization: Bearer {MASTER}",
         "--checks", "all", "--max-examples", examples, "--workers", "1", "--seed", "1",
         "--report", "junit", "--report-dir", str(tmp_path)], capture_output=True, text=True, timeout=600,
        check=False)
    summary = result.stdout[result.stdout.rfind("SUMMARY"):]
    print(summary)  # the summary goes into the test log (docs/control.md quotes one)
    junit = ET.parse(next(tmp_path.glob("*.xml"))).getroot()
    failures = [f.get("message", "")[:300] for f in junit.iter("failure")]
    cases = sum(int(s.get("tests", 0)) for s in junit.iter("testsuite"))
    assert cases >= 15, summary  # every operation was tested
    assert failures == [], summary
    assert "Server error" not in result.stdout and "violates schema" not in result.stdout
    assert result.returncode == 0, summary


def test_openapi_lists_the_served_models_and_every_route(gateway: str) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{gateway}/openapi.json", timeout=10) as resp:
        doc = json.loads(resp.read())
    assert doc["openapi"] == "3.1.0"
    model = doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"]
    assert set(model["enum"]) >= {"echo", "small-echo", "small", "medium"}
    assert {"/v1/chat/completions", "/v1/models", "/admin/keys", "/admin/keys/{key_id}/revoke", "/v1/spend",
            "/v1/key", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses", "/v1/responses/{response_id}",
            "/v1/responses/{response_id}/input_items"} <= set(doc["paths"])
    assert doc["components"]["schemas"]["MessagesRequest"]["properties"]["model"]["enum"] == model["enum"]
