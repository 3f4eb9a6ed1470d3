"""What each (row, model) call cost, in USD.

A row's own ``cost_usd`` wins. Otherwise the cost is ``prompt_tokens × input price + output_tokens × output price``:
prompt tokens counted with the project's offline tiktoken counter (``tokenomy.tokens.counter``), output tokens
counted from the outcome's ``response`` when the row has one, else :data:`ASSUMED_OUTPUT_TOKENS` — a fixed,
documented assumption (docs/routing.md), recorded in every training and evaluation report.

Prices come from, in order: an explicit price file (``--prices``), the data file's sibling ``NAME.models.json``,
the project's price catalogue (``tokenomy prices``). A model with neither costs nor a price is an error that says
how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tokenomy.errors import OutcomeDataError
from tokenomy.routing.outcomes import ModelPrice, OutcomeRow

if TYPE_CHECKING:
    import numpy as np

    from tokenomy.tokens.counter import TokenCounter

ASSUMED_OUTPUT_TOKENS = 256
"""Output tokens assumed for a call whose outcome has neither ``cost_usd`` nor ``response``."""


def resolve_prices(models: Sequence[str], rows: Sequence[OutcomeRow],
                   given: Mapping[str, ModelPrice]) -> dict[str, ModelPrice]:
    """A price for every model that some row lacks a ``cost_usd`` for; raises naming the first model without one."""
    needed = [m for m in models if any(m in r.outcomes and r.outcomes[m].cost_usd is None for r in rows)]
    prices = {m: given[m] for m in models if m in given}
    missing = [m for m in needed if m not in prices]
    if missing:
        prices.update(_catalogue_prices(missing))
    still = [m for m in needed if m not in prices]
    if still:
        raise OutcomeDataError(
            f"no cost for model {still[0]!r}: the rows have no cost_usd, no sibling .models.json prices it and the "
            "price catalogue does not know it; pass --prices FILE (model -> input_usd_per_mtok, output_usd_per_mtok)")
    return prices


def _catalogue_prices(models: Sequence[str]) -> dict[str, ModelPrice]:
    from tokenomy.pricing.catalogue import Catalogue

    catalogue = Catalogue.load()
    now = datetime.now(UTC)
    found: dict[str, ModelPrice] = {}
    for model in models:
        price = catalogue.find(model, now)
        if price is not None:
            found[model] = ModelPrice(float(price.input), float(price.output))
    return found


def prompt_tokens(prompts: Sequence[str], counter: TokenCounter, model: str = "gpt-4") -> list[int]:
    """Prompt tokens per prompt, counted once (cl100k_base by default: the estimate for non-OpenAI models)."""
    return [counter.count_text(p, model) for p in prompts]


def cost_matrix(rows: Sequence[OutcomeRow], models: Sequence[str], prices: Mapping[str, ModelPrice],
                counter: TokenCounter) -> np.ndarray:
    """``(len(rows), len(models))`` USD per call; NaN where a row has no outcome for a model."""
    import numpy as np

    tokens = prompt_tokens([r.prompt for r in rows], counter)
    costs = np.full((len(rows), len(models)), np.nan)
    for i, row in enumerate(rows):
        for j, model in enumerate(models):
            outcome = row.outcomes.get(model)
            if outcome is None:
                continue
            if outcome.cost_usd is not None:
                costs[i, j] = outcome.cost_usd
                continue
            price = prices[model]
            out = counter.count_text(outcome.response, model) if outcome.response else ASSUMED_OUTPUT_TOKENS
            costs[i, j] = (tokens[i] * price.input_usd_per_mtok + out * price.output_usd_per_mtok) / 1e6
    return costs


def score_matrix(rows: Sequence[OutcomeRow], models: Sequence[str]) -> np.ndarray:
    """``(len(rows), len(models))`` scores; NaN where a row has no outcome for a model."""
    import numpy as np

    scores = np.full((len(rows), len(models)), np.nan)
    for i, row in enumerate(rows):
        for j, model in enumerate(models):
            outcome = row.outcomes.get(model)
            if outcome is not None:
                scores[i, j] = outcome.score
    return scores
