"""``tokenomy audit --html``: the page's content and escaping, and a real headless Chromium laying out its charts."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.servers import need

from tokenomy.audit.html import render_html, waterfall_steps
from tokenomy.cli.main import cli

CHARTS = ("waterfall", "hours", "models", "complexity")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The demo audit as JSON and as the page the same run wrote with --html."""
    out = tmp_path_factory.mktemp("html")
    page = out / "audit.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKENOMY_HOME", str(out / "home"))
        result = CliRunner().invoke(cli, ["audit", "--demo", "--json", "--html", str(page)])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc, page


def test_page_has_the_four_charts_and_the_headline_figures(demo: tuple[dict[str, Any], Path]) -> None:
    doc, page = demo
    html = page.read_text(encoding="utf-8")
    assert html == render_html(doc)
    for chart in CHARTS:
        assert len(re.findall(rf"<svg data-chart='{chart}'", html)) == 1
    assert "3,650" in html and f"${doc['spend']['monthly_usd']:,.2f}" in html
    assert f"${doc['savings']['monthly_usd']['combined']:,.2f}" in html
    assert f"${doc['spend']['by_model']['gpt-4.1']['cost_usd']:,.2f}" in html
    assert html.count("<li>") == len(doc["assumptions"]) + 2  # + the semantic estimate and the routing quality
    assert "routing heuristic" in html
    # the same numbers as the terminal and --json: the first line, the semantic range, the rates, the unpriced share
    est, (low, high) = doc["semantic_cache"]["estimated_share"], doc["savings"]["range_monthly_usd"]["semantic_cache"]
    assert f"estimated true share {est['value']:.1%} ({est['low']:.1%} to {est['high']:.1%})" in html
    assert f"(${low:,.2f} to ${high:,.2f})" in html
    rate = doc["rate"]
    assert f"mean {rate['requests_per_minute_mean']:,.1f}, peak {rate['requests_per_minute_peak']:,}" in html
    assert "0.0% of requests, 0.0% of tokens" in html and "unpriced: 0 requests" in html


def test_page_makes_no_external_requests(demo: tuple[dict[str, Any], Path]) -> None:
    html = demo[1].read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=", html)


def test_waterfall_steps_sum_to_the_combined_saving(demo: tuple[dict[str, Any], Path]) -> None:
    doc = demo[0]
    steps, remaining = waterfall_steps(doc)
    assert [name for name, _ in steps] == doc["savings"]["order"]
    assert all(v >= 0 for _, v in steps)
    assert sum(v for _, v in steps) == pytest.approx(doc["savings"]["monthly_usd"]["combined"])
    assert remaining == pytest.approx(doc["spend"]["monthly_usd"] - doc["savings"]["monthly_usd"]["combined"])


def test_text_from_the_logs_is_escaped(demo: tuple[dict[str, Any], Path]) -> None:
    doc = copy.deepcopy(demo[0])
    evil = "<script>alert(1)</script>"
    doc["spend"]["by_model"][evil] = {"requests": 1, "cost_usd": 1.0, "input_tokens": 1, "output_tokens": 1}
    doc["routing"]["small_model"] = evil
    html = render_html(doc)
    assert evil not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert html.count("<script>") == 1  # only the page's own chart check


def _dump_dom(page: Path) -> str:
    chromium = shutil.which("chromium")
    need(chromium is not None, "chromium (Debian package) for the HTML report test")
    assert chromium is not None
    return subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=60, check=True).stdout


def test_chromium_lays_out_every_chart(demo: tuple[dict[str, Any], Path]) -> None:
    dom = _dump_dom(demo[1])
    for chart in CHARTS:
        assert f'data-chart="{chart}"' in dom
    assert dom.count("<rect ") > 24  # the 24 hourly bars alone
    # set by the page's script only when every svg[data-chart] has a non-zero bounding box in the browser
    assert re.search(r'<body[^>]*\bdata-charts-ok="4"', dom), dom[:500]


def test_chromium_check_fails_when_a_chart_has_no_size(demo: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    hidden = tmp_path / "hidden.html"
    hidden.write_text(render_html(demo[0]).replace("</style>", "svg[data-chart=hours]{display:none}</style>"),
                      encoding="utf-8")
    dom = _dump_dom(hidden)
    assert 'data-chart="hours"' in dom and "data-charts-ok" not in dom
