"""Price-source coverage: how many of the model names real logs carry each price source resolves.

    .venv/bin/python bench/price_coverage.py [--names bench/data/model_names.tsv] [--litellm FILE]
        [--baseline FILE] [--markdown]

Names: bench/data/model_names.tsv (group, name, where the name comes from). Columns, each where its input is
available:

- ``baseline``: a catalogue file looked up by tokenomy's resolver (``--baseline``, e.g. the hand-kept prices.json
  of an older commit: ``git show 939b14d:src/tokenomy/pricing/prices.json > /tmp/old.json``);
- ``litellm-map``: LiteLLM's model_prices_and_context_window.json (``--litellm``, from the litellm wheel) converted
  by ``tokenomy prices import`` and looked up by tokenomy's resolver (prefix stripping, dated snapshots);
- ``litellm``: LiteLLM's own ``get_model_info`` (only when litellm is importable: run this script in a venv that
  has it, with ``LITELLM_LOCAL_MODEL_COST_MAP=True``);
- ``genai-prices``: the library's own lookup with no provider hint (genai_prices, when installed);
- ``tokenomy``: the catalogue as shipped (``Catalogue.load()``: the genai-prices snapshot, our rows, the candidates
  of ``pricing/matching.py``).

A name counts when the source gives it a per-token input and output price. Then, for names both ``tokenomy`` and
``litellm`` (or ``litellm-map``) price, how often their standard input and output prices agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenomy.pricing.catalogue import Catalogue, read_document
from tokenomy.pricing.litellm_prices import convert

Lookup = Callable[[str], tuple[Decimal, Decimal] | None]
NOW = datetime.now(UTC)


def catalogue_lookup(catalogue: Catalogue) -> Lookup:
    def find(name: str) -> tuple[Decimal, Decimal] | None:
        price = catalogue.find(name, NOW)
        return None if price is None else (price.input, price.output)

    return find


def litellm_map_lookup(path: Path) -> Lookup:
    imported = convert(read_document(path), effective_from=datetime(2000, 1, 1).date(), origin=path.name)
    catalogue = Catalogue()
    for entry in imported.entries:
        try:
            catalogue.merge(entry)
        except ValueError:
            continue
    return catalogue_lookup(catalogue)


def litellm_own_lookup() -> Lookup | None:
    try:
        import litellm  # type: ignore[import-not-found]
    except ImportError:
        return None

    def find(name: str) -> tuple[Decimal, Decimal] | None:
        try:
            info = litellm.get_model_info(name)
        except Exception:  # litellm raises bare Exceptions for unmapped models
            return None
        cost_in, cost_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
        if cost_in is None or cost_out is None:
            return None
        return Decimal(str(cost_in)) * 1_000_000, Decimal(str(cost_out)) * 1_000_000

    return find


def genai_lookup() -> Lookup | None:
    try:
        from genai_prices import data_snapshot
    except ImportError:
        return None
    snapshot = data_snapshot.get_snapshot()

    def find(name: str) -> tuple[Decimal, Decimal] | None:
        try:
            _, model = snapshot.find_provider_model(name, None, None, None)
        except LookupError:
            return None
        prices = model.get_prices(NOW)
        values = [getattr(prices, key, None) for key in ("input_mtok", "output_mtok")]
        if values[0] is None:
            return None
        return tuple(Decimal(getattr(v, "base", v) or 0) for v in values)  # type: ignore[return-value]

    return find


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=Path, default=Path(__file__).with_name("data") / "model_names.tsv")
    parser.add_argument("--litellm", type=Path, help="LiteLLM's model_prices_and_context_window.json")
    parser.add_argument("--baseline", type=Path, help="an older catalogue file (the hand-kept prices.json)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [line.split("\t") for line in args.names.read_text(encoding="utf-8").splitlines()[1:] if line]
    sources: dict[str, Lookup] = {}
    if args.baseline:
        sources["baseline"] = catalogue_lookup(Catalogue.from_documents([(read_document(args.baseline), "baseline")]))
    if args.litellm:
        sources["litellm-map"] = litellm_map_lookup(args.litellm)
    for name, make in (("litellm", litellm_own_lookup), ("genai-prices", genai_lookup)):
        found = make()
        if found is not None:
            sources[name] = found
    sources["tokenomy"] = catalogue_lookup(Catalogue.load())
    hits: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    prices: dict[str, dict[str, tuple[Decimal, Decimal]]] = defaultdict(dict)
    missed: list[str] = []
    for group, name, _ in rows:
        hits[group]["names"] += 1
        for source, lookup in sources.items():
            found = lookup(name)
            if found is not None:
                hits[group][source] += 1
                prices[source][name] = found
        if name not in prices["tokenomy"]:
            missed.append(name)
    _print(hits, list(sources), len(rows), args.markdown)
    for other in ("litellm", "litellm-map"):
        both = set(prices["tokenomy"]) & set(prices.get(other, {}))
        if both:
            same = sum(1 for n in both if prices["tokenomy"][n] == prices[other][n])
            print(f"\nprices agree (standard input and output) with {other} on {same} of the {len(both)} names both "
                  f"price ({same / len(both):.0%})")
    print(f"\ntokenomy leaves unpriced: {', '.join(missed)}")
    print(json.dumps({"names": len(rows), "resolved": {s: sum(h.get(s, 0) for h in hits.values()) for s in sources}}))


def _print(hits: dict[str, dict[str, int]], sources: list[str], total: int, markdown: bool) -> None:
    header = ["group", "names", *sources]
    lines = [[group, str(h["names"]), *(str(h.get(s, 0)) for s in sources)] for group, h in hits.items()]
    totals = {s: sum(h.get(s, 0) for h in hits.values()) for s in sources}
    lines.append(["all", str(total), *(f"{totals[s]} ({totals[s] / total:.0%})" for s in sources)])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
