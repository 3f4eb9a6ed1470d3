"""The cost of a price lookup on the request path: the catalogue as shipped against a baseline catalogue file (the
old hand-kept prices.json), measured in the same run.

    .venv/bin/python bench/price_lookup.py [--baseline FILE] [--n 200000]

Reports per-call times of ``Catalogue.find`` for a repeated name (memoised), the first lookup of a name (cold:
the match rules of ~2,100 models), an unpriced name, and ``CataloguePricer.model_cost`` (what the ledger calls for
every request), plus ``Catalogue.load`` (first in the process, then again).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenomy.ledger.pricer import CataloguePricer
from tokenomy.pricing.catalogue import Catalogue, read_document
from tokenomy.pricing.cost import TokenUsage

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)
NAMES = ["gpt-4o-2024-08-06", "azure/gpt-4o-2024-08-06", "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0",
         "claude-sonnet-4-5-20250929", "openrouter/meta-llama/llama-3.3-70b-instruct", "gemini-2.5-flash"]


def per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    start = time.perf_counter()
    shipped = Catalogue.load()
    first_load = time.perf_counter() - start
    again = per_call(Catalogue.load, 20)
    print(f"Catalogue.load: first {first_load * 1e3:.0f} ms, then {again * 1e3:.1f} ms ({len(shipped.entries()):,} "
          "models)")
    catalogues = {"shipped": shipped}
    if args.baseline:
        catalogues["baseline"] = Catalogue.from_documents([(read_document(args.baseline), "baseline")])
    usage = TokenUsage(input_tokens=1200, output_tokens=300)
    for label, catalogue in catalogues.items():
        warm = per_call(lambda c=catalogue: c.find("gpt-4o", AT), args.n)
        cold = []
        for name in NAMES:
            fresh = Catalogue.load() if label == "shipped" else catalogue
            fresh._memo.clear()
            start = time.perf_counter()
            fresh.find(name, AT)
            cold.append(time.perf_counter() - start)
        miss = Catalogue.load() if label == "shipped" else catalogue
        miss._memo.clear()
        start = time.perf_counter()
        miss.find("my-private-model-7b", AT)
        cold_miss = time.perf_counter() - start
        pricer = CataloguePricer(catalogue)
        ledger = per_call(lambda p=pricer: p.model_cost("gpt-4o", usage, AT), args.n)
        print(f"{label:9s} find (repeated name) {warm * 1e6:.2f} us | first lookup of a name: mean "
              f"{sum(cold) / len(cold) * 1e3:.3f} ms, max {max(cold) * 1e3:.3f} ms | unpriced name first "
              f"{cold_miss * 1e3:.3f} ms | ledger model_cost {ledger * 1e6:.2f} us")


if __name__ == "__main__":
    main()
