"""The seed's headline claims, recomputed from the price catalogue and the throughput catalogue.

1. "100,000 queries/day on GPT-4 Turbo ($0.01/1K input, $0.03/1K output) at ~1,500 input + 500 output tokens
   per query is about $90,000/month": holds when the catalogue's GPT-4 Turbo rates give within 5 % of it.
2. "~200 req/s for Llama 3 8B on one H100": the 8B fp16 H100 row's request rate at the seed's request shape, and
   the largest request (same 3:1 input:output mix) at which one replica still reaches 200 req/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tokenomy.plan.apis import monthly_usd
from tokenomy.plan.data import GpuCatalogue, Throughput
from tokenomy.plan.workload import Workload
from tokenomy.pricing.catalogue import Catalogue

SEED_WORKLOAD = Workload(queries_per_day=100_000, input_tokens=1_500, output_tokens=500)
SEED_MONTHLY_USD = Decimal(90_000)
SEED_RPS = 200.0
TOLERANCE = Decimal("0.05")


@dataclass(frozen=True, slots=True)
class Claim:
    claim: str
    holds: bool
    verdict: str
    computed: dict[str, float | str]
    status: str = ""  # "holds" | "qualified" (holds only when …) | "does not hold" | "unchecked"

    @property
    def kind(self) -> str:
        return self.status or ("holds" if self.holds else "qualified")


def gpt4_turbo_claim(catalogue: Catalogue, at: datetime) -> Claim:
    text = "100,000 queries/day on GPT-4 Turbo at 1,500 in + 500 out tokens ≈ $90,000/month"
    price = catalogue.find("gpt-4-turbo", at)
    if price is None:
        return Claim(text, False, "cannot check: no gpt-4-turbo price in the catalogue", {})
    usd = monthly_usd(SEED_WORKLOAD, price.input, price.output)
    holds = abs(usd - SEED_MONTHLY_USD) <= SEED_MONTHLY_USD * TOLERANCE
    verdict = (f"holds: 100000 x 30 x (1500 x ${price.input}/1M + 500 x ${price.output}/1M) = ${usd:,.0f}/month"
               if holds else f"does not hold: the catalogue's rates give ${usd:,.0f}/month")
    return Claim(text, holds, verdict, {"usd_per_month": float(usd), "input_usd_per_mtok": float(price.input),
                                        "output_usd_per_mtok": float(price.output)})


def llama8b_h100_claim(rows: list[Throughput]) -> Claim:
    text = "~200 req/s for Llama 3 8B on one H100"
    row = next((r for r in rows if r.model_size in ("7B", "8B") and r.gpu == "H100" and r.precision == "fp16"
                and r.gpus == 1), None)
    if row is None:
        return Claim(text, False, "cannot check: no 8B fp16 single-H100 row in the throughput catalogue", {})
    seed = SEED_WORKLOAD
    at_seed = row.requests_per_s(seed.input_tokens, seed.output_tokens)
    share_in = seed.input_tokens / (seed.input_tokens + seed.output_tokens)
    seconds_per_token = share_in / row.prefill_tokens_per_s + (1 - share_in) / row.decode_tokens_per_s
    max_tokens = 1 / (SEED_RPS * seconds_per_token)
    max_output_only = row.decode_tokens_per_s / SEED_RPS
    computed: dict[str, float | str] = {
        "req_per_s_at_1500_in_500_out": round(at_seed, 2), "max_request_tokens_at_200_rps": round(max_tokens),
        "max_output_tokens_at_200_rps_no_prompt": round(max_output_only),
        "decode_tokens_per_s": row.decode_tokens_per_s, "prefill_tokens_per_s": row.prefill_tokens_per_s}
    if at_seed >= SEED_RPS:
        return Claim(text, True, f"holds: {at_seed:.0f} req/s even at 1,500 + 500 tokens", computed)
    verdict = (f"holds only for short requests: ≤ {max_tokens:.0f} tokens per request (3:1 in:out; or "
               f"{max_output_only:.0f} output tokens with no prompt); at 1,500 + 500 tokens one H100 serves "
               f"{at_seed:.1f} req/s")
    return Claim(text, False, verdict, computed)


def check_claims(catalogue: Catalogue, rows: list[Throughput], gpus: GpuCatalogue, at: datetime,
                 utilisation: float) -> list[Claim]:
    """The two headline claims, then the seed's cost table row by row (:mod:`tokenomy.plan.cost_table`)."""
    from tokenomy.plan.cost_table import cost_table

    return [gpt4_turbo_claim(catalogue, at), llama8b_h100_claim(rows),
            *cost_table(catalogue, rows, gpus, at, utilisation)]
