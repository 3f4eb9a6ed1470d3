"""A price override is whole or refused (issue 20): a deployment given only an input price was silently unpriced, so
it reserved no budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenomy.config.settings import load_settings
from tokenomy.errors import ConfigError

_DEPLOYMENT = ("deployments:\n  - {name: d, provider: openai_compatible, model: m, base_url: 'http://127.0.0.1:9/v1',"
               " price: %s}\n")


def _load(tmp_path: Path, price: str) -> object:
    path = tmp_path / "tokenomy.yaml"
    path.write_text(_DEPLOYMENT % price)
    return load_settings(str(path), env={})


@pytest.mark.parametrize("price", [
    "{input_usd_per_mtok: 1}",
    "{output_usd_per_mtok: 2}",
    "{cached_input_usd_per_mtok: 0.5}",
    "{gpu_hour_usd: 2.5}",
    "{tokens_per_s: 1500}",
    "{input_usd_per_mtok: 1, output_usd_per_mtok: 2, gpu_hour_usd: 2.5}",
    "{gpu_hour_usd: 2.5, tokens_per_s: 1500, cached_input_usd_per_mtok: 1}",
    "{input_usd_per_mtok: -1, output_usd_per_mtok: 2}",
    "{gpu_hour_usd: 2.5, tokens_per_s: 0}",
    "{}",
])
def test_half_given_price_is_refused(tmp_path: Path, price: str) -> None:
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.price"):
        _load(tmp_path, price)


@pytest.mark.parametrize("price", [
    "{input_usd_per_mtok: 1, output_usd_per_mtok: 2}",
    "{input_usd_per_mtok: 1, output_usd_per_mtok: 2, cached_input_usd_per_mtok: 0.5}",
    "{input_usd_per_mtok: 0, output_usd_per_mtok: 0}",
    "{gpu_hour_usd: 2.5, tokens_per_s: 1500}",
])
def test_whole_price_is_taken(tmp_path: Path, price: str) -> None:
    _load(tmp_path, price)
