"""The dashboard in headless Chromium (Playwright driving Debian's /usr/bin/chromium): log in with the master key,
and the totals it shows after real traffic equal ``tokenomy spend --json``. The page is screenshotted (set
TOKENOMY_DASHBOARD_SCREENSHOT=PATH to keep it; docs/img/dashboard.png was made so)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from tests.control.parts import MASTER, admin, priced

from servers import need, run_gateway
from tokenomy.cli.main import cli
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def traffic(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base, _ = fault
    home = tmp_path_factory.mktemp("dash")
    settings = Settings(
        deployments=[priced("small-echo", base, "echo", tier="small", input_usd="0.1", output_usd="0.4"),
                     priced("medium-echo", base, "echo", tier="medium", input_usd="1", output_usd="4"),
                     priced("frontier-echo", base, "echo", tier="frontier", input_usd="5", output_usd="15"),
                     priced("broken", base, "error-500", max_retries=0)],
        local=LocalConfig(enabled=False), env_providers=False, home=str(home),
        control=ControlConfig(master_key=MASTER), cache=CacheConfig(exact=ExactCacheConfig(store="memory")))
    with run_gateway(settings) as url:
        admin(url, "PUT", "/admin/teams/research", {"budget_usd": "0.002", "period": "monthly"})
        keys = [admin(url, "POST", "/admin/keys", body)[1]["key"] for body in (
            {"name": "search-backend", "team": "research", "budget_usd": "0.001", "period": "daily"},
            {"name": "batch-jobs", "team": "research", "tags": {"cost_centre": "cc-7"}},
            {"name": "support-bot", "budget_usd": "0.0005", "rpm": 600})]
        for i in range(30):
            client = openai.OpenAI(base_url=url, api_key=keys[i % 3], max_retries=0)
            model = ("small", "small", "medium", "frontier", "small")[i % 5]
            question = f"question {i % 12} " + "about tokens " * (i % 4)
            with contextlib.suppress(openai.APIStatusError):  # a budget may run out: that is traffic too
                client.chat.completions.create(model=model, temperature=0, max_tokens=64,
                                               messages=[{"role": "user", "content": question}])
        with pytest.raises(openai.APIStatusError):
            openai.OpenAI(base_url=url, api_key=keys[0], max_retries=0).chat.completions.create(
                model="broken", messages=[{"role": "user", "content": "fail"}])
        time.sleep(0.3)  # the ledger writer flushes every 50 ms
        yield url, home


def _spend_json(home: Path) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKENOMY_HOME", str(home))
        result = CliRunner().invoke(cli, ["spend", "--json", "--since", "30d"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_dashboard_needs_the_master_key(traffic: tuple[str, Path]) -> None:
    root = traffic[0].removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/ui", timeout=10) as resp:
        page = resp.read().decode()
        assert 'name="master_key"' in page and "total-cost" not in page
        assert "default-src 'none'" in resp.headers["content-security-policy"]
    status, _ = admin(traffic[0], "GET", "/ui/api/summary", key="")
    assert status == 401
    data = urllib.parse.urlencode({"master_key": "wrong"}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request(f"{root}/ui/login", data=data), timeout=10)
        raise AssertionError("a wrong master key logged in")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401


def test_totals_shown_equal_tokenomy_spend_json(traffic: tuple[str, Path], tmp_path: Path) -> None:
    need(shutil.which(CHROMIUM) is not None, "Debian chromium for the dashboard test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright (pip) to drive chromium")
        raise
    url, home = traffic
    root = url.removesuffix("/v1")
    report = _spend_json(home)
    assert report["requests"] >= 31 and report["cache"]["hits"] > 0 and report["errors"] >= 1
    shot = Path(os.environ.get("TOKENOMY_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        external: list[str] = []
        page.on("request", lambda r: external.append(r.url) if not r.url.startswith(root) else None)
        page.goto(f"{root}/ui")
        page.fill("#master_key", MASTER)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready]", timeout=20_000)
        shown = {name: page.get_attribute(f"#{name}", "data-value") for name in
                 ("total-requests", "total-cost", "total-saving", "total-counterfactual", "cache-hit-rate",
                  "total-errors")}
        texts = {name: page.inner_text(f"#{name}") for name in ("total-cost", "total-saving")}
        keys_rows = page.locator("#keys tbody tr").count()
        recent_rows = page.locator("#recent tbody tr").count()
        charts = page.evaluate("[...document.querySelectorAll('canvas')].map(c => c.width * c.height)")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shown == {"total-requests": str(report["requests"]), "total-cost": report["cost_usd"],
                     "total-saving": report["saving_usd"], "total-counterfactual": report["counterfactual_usd"],
                     "cache-hit-rate": str(report["cache"]["hit_rate"]), "total-errors": str(report["errors"])}
    assert texts == {"total-cost": "$" + report["cost_usd"], "total-saving": "$" + report["saving_usd"]}
    assert keys_rows == 3 and recent_rows == min(50, report["requests"])
    assert len(charts) == 3 and all(area > 0 for area in charts)
    assert external == []  # nothing from a CDN
    assert shot.stat().st_size > 20_000


def test_summary_api_is_the_spend_report(traffic: tuple[str, Path]) -> None:
    url, home = traffic
    status, summary = admin(url, "GET", "/ui/api/summary?since=30d")
    assert status == 200
    assert summary["report"]["cost_usd"] == _spend_json(home)["cost_usd"]
    days = summary["daily"]
    assert sum(d["requests"] for d in days) == summary["report"]["requests"]
    assert {b["scope"].split(":")[0] for k in summary["keys"] for b in k["budgets"]} == {"key"}
    assert [t["name"] for t in summary["teams"]] == ["research"] and summary["teams"][0]["budgets"]
