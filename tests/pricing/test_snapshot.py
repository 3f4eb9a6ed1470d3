"""The genai-prices snapshot: the packaged file is what the pinned genai-prices converts to, the conversion keeps
dates, batch rows, cache and long-context rates, and `tokenomy prices update` writes a newer one that load prefers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokenomy.cli.prices_cmd import prices_group
from tokenomy.pricing import Catalogue, PriceError
from tokenomy.pricing.catalogue import SNAPSHOT, SNAPSHOT_FILENAME, read_document

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _without_date(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "_source": {k: v for k, v in document["_source"].items() if k != "generated"}}


def test_the_packaged_snapshot_is_what_the_pinned_genai_prices_converts_to() -> None:
    pytest.importorskip("genai_prices")
    from tokenomy.pricing.genai_snapshot import build_snapshot, installed_version, snapshot_lines

    assert installed_version() == "0.2.5"  # the dev pin; regenerate with `make prices-snapshot` when it moves
    build = build_snapshot(date(2026, 1, 1))
    rebuilt = json.loads("\n".join(snapshot_lines(build.document)), parse_float=Decimal)
    assert _without_date(rebuilt) == _without_date(read_document(SNAPSHOT))
    assert len(build.document["models"]) == 2_139 and len(build.skipped) == 205
    assert all(line.endswith("no per-token input price") for line in build.skipped)


def _entry(catalogue: Catalogue, name: str) -> Any:
    entry = catalogue.resolve(name)
    assert entry is not None, name
    return entry


def test_conversion_keeps_dates_batch_cache_and_long_context() -> None:
    snapshot = Catalogue.from_documents([(read_document(SNAPSHOT), "snapshot")])
    gpt4o = _entry(snapshot, "gpt-4o").rows
    # the first price has no start date in genai-prices: it is dated 1970-01-01; the batch variant's own start
    # date is a second row; before it, batch is the standard rate (no discount known)
    assert [(r.effective_from.isoformat(), r.input, r.batch_input, r.batch_output) for r in gpt4o] == [
        ("1970-01-01", Decimal("2.5"), Decimal("2.5"), Decimal(10)),
        ("2026-10-14", Decimal("2.5"), Decimal("1.25"), Decimal(5))]
    sonnet = snapshot.price_for("claude-sonnet-4-5", NOW)
    assert (sonnet.cached_input, sonnet.cache_write_5m, sonnet.cache_write_1h) == (
        Decimal("0.3"), Decimal("3.75"), Decimal(6))
    tier = sonnet.long_context
    assert tier is not None and tier.threshold_tokens == 200_000
    assert (tier.input, tier.output, tier.batch_input, tier.batch_output) == (
        Decimal(6), Decimal("22.5"), Decimal(3), Decimal("11.25"))
    deepseek = snapshot.price_for("deepseek-chat", NOW)
    assert "time-of-day prices not modelled" in deepseek.source and deepseek.input == Decimal("0.27")
    embedding = snapshot.price_for("azure/text-embedding-3-small", NOW)
    assert (embedding.input, embedding.output) == (Decimal("0.02"), Decimal(0))
    assert all(not row.verified and row.source.startswith("genai-prices 0.2.5 (MIT) from ")
               for entry in snapshot.entries() for row in entry.rows)
    assert snapshot.find("groq/whisper-large-v3", NOW) is None  # priced per audio hour: skipped, so unpriced


def test_update_writes_a_newer_snapshot_that_load_prefers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("genai_prices")
    home = {"TOKENOMY_HOME": str(tmp_path)}
    runner = CliRunner()
    same = runner.invoke(prices_group, ["update"], env=home)
    assert same.exit_code == 0 and "genai-prices 0.2.5 is installed; the catalogue already uses 0.2.5" in same.stdout
    assert not (tmp_path / SNAPSHOT_FILENAME).exists()
    # a newer installed version (simulated: the same data under a higher version number) is written and preferred
    monkeypatch.setattr("tokenomy.pricing.genai_snapshot.installed_version", lambda: "0.3.0")
    newer = runner.invoke(prices_group, ["update"], env=home)
    assert newer.exit_code == 0, newer.output
    assert "genai-prices 0.2.5 -> 0.3.0: 2,139 models (0 new, 0 gone, 0 with changed rows;" in newer.stdout
    written = tmp_path / SNAPSHOT_FILENAME
    assert read_document(written)["_source"]["version"] == "0.3.0"
    catalogue = Catalogue.load(tmp_path / "prices.json")
    assert catalogue.sources == [f"genai-prices 0.3.0 ({written})"]
    # an older written snapshot is ignored: the packaged one is newer
    document = read_document(written)
    document["_source"]["version"] = "0.1.0"
    written.write_text(json.dumps(document, default=str))
    assert Catalogue.load(tmp_path / "prices.json").sources == ["genai-prices 0.2.5 (packaged)"]
    monkeypatch.setattr("tokenomy.pricing.genai_snapshot.installed_version", lambda: None)
    missing = runner.invoke(prices_group, ["update"], env=home)
    assert isinstance(missing.exception, PriceError) and "genai-prices is not installed" in str(missing.exception)
