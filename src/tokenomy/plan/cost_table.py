"""The seed's cost table, row by row, recomputed from the price catalogue, the throughput catalogue and the GPU
prices — each with a verdict: holds / holds only when … / does not hold.

| seed row | how it is checked |
|---|---|
| GPT-4 Turbo ~$30 per 1M tokens | list rates blended at the seed's mix (1,500 in + 500 out) |
| Claude 3.5 Sonnet ~$15 | the same |
| fine-tuned 7B on a self-hosted A100 ~$0.50 | the 8B fp16 A100 row (a 7B model measured), A100 on-demand |
| quantised 13B on spot ~$0.15 | the 13B int4 L4 row at the L4's spot price (+ interruption overhead) |
| Phi-3 on CPU ~$0.02 | the 4B int4 CPU-16 row at the 16-vCPU instance's on-demand price |

An API row holds when the blended rate is within ``TOLERANCE`` of the claim; when only the output (or input) rate
is, it holds only for those tokens. A self-hosted row costs ``hourly price / (tokens per replica-second x 3600)``
per token at full use; it holds when the cost at the utilisation target is within tolerance, holds only at the
utilisation that gives the claimed figure when that is below 100 %, and does not hold when even a fully busy
replica costs more.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tokenomy.plan.claims import SEED_WORKLOAD, Claim
from tokenomy.plan.data import GpuCatalogue, Throughput
from tokenomy.pricing.catalogue import Catalogue

TOLERANCE = 0.35  # "~": the seed rounds; a third either way still reads as the same figure
IN, OUT = SEED_WORKLOAD.input_tokens, SEED_WORKLOAD.output_tokens


def _close(value: float, claimed: float) -> bool:
    return abs(value - claimed) <= claimed * TOLERANCE


def api_row(catalogue: Catalogue, at: datetime, model: str, label: str, claimed: float) -> Claim:
    text = f"{label} ~${claimed:g} per 1M tokens"
    price = catalogue.find(model, at)
    if price is None:
        return Claim(text, False, f"cannot check: no {model} price in the catalogue", {}, "unchecked")
    rate_in, rate_out = float(price.input), float(price.output)
    blended = (IN * rate_in + OUT * rate_out) / (IN + OUT)
    computed: dict[str, float | str] = {"input_usd_per_mtok": rate_in, "output_usd_per_mtok": rate_out,
                                        "blended_usd_per_mtok": round(blended, 4), "mix": f"{IN} in + {OUT} out",
                                        "source": price.source}
    how = (f"({IN} x ${rate_in:g} + {OUT} x ${rate_out:g}) / {IN + OUT} = ${blended:.2f} per 1M blended at the "
           f"seed's own mix")
    if _close(blended, claimed):
        return Claim(text, True, f"holds: {how}", computed, "holds")
    if _close(rate_out, claimed):
        return Claim(text, False, f"holds only for output tokens: ${rate_out:g} is the output rate; {how}",
                     computed, "qualified")
    if _close(rate_in, claimed):
        return Claim(text, False, f"holds only for input tokens: ${rate_in:g} is the input rate; {how}",
                     computed, "qualified")
    return Claim(text, False, f"does not hold: {how}", computed, "does not hold")


def selfhost_row(text: str, row: Throughput | None, usd_per_hour: Decimal, price_note: str, claimed: float,
                 utilisation: float) -> Claim:
    if row is None:
        return Claim(text, False, "cannot check: no matching row in the throughput catalogue", {}, "unchecked")
    tokens_per_s = (IN + OUT) / row.seconds_per_request(IN, OUT)
    full = float(usd_per_hour) / (tokens_per_s * 3600) * 1e6
    at_target = full / utilisation
    busy = full / claimed
    computed: dict[str, float | str] = {
        "row": f"{row.model_size} {row.precision} on {row.gpus}x {row.gpu}", "row_estimate": str(row.estimate),
        "row_source": row.source, "usd_per_hour": float(usd_per_hour), "price": price_note,
        "tokens_per_s_at_seed_mix": round(tokens_per_s, 1), "usd_per_mtok_fully_busy": round(full, 4),
        "usd_per_mtok_at_utilisation_target": round(at_target, 4), "utilisation_target": utilisation,
        "utilisation_for_claimed_figure": round(busy, 4)}
    basis = "an estimate" if row.estimate else "decode measured, prefill estimated"
    how = (f"{row.model_size} {row.precision} on {row.gpu} serves {tokens_per_s:,.0f} tokens/s at {IN} + {OUT} "
           f"({basis}); ${float(usd_per_hour):.3f}/h ({price_note}) -> ${full:.3f} per 1M fully busy, "
           f"${at_target:.3f} at {utilisation:.0%}")
    if _close(at_target, claimed):
        return Claim(text, True, f"holds at the {utilisation:.0%} utilisation target: {how}", computed, "holds")
    if busy <= 1:
        return Claim(text, False, f"holds only when the replica is ~{busy:.0%} busy: {how}", computed, "qualified")
    return Claim(text, False, f"does not hold: {how}; ${claimed:g} would need {busy:,.0f}x that throughput",
                 computed, "does not hold")


def _row(rows: list[Throughput], size: str, precision: str, gpu: str) -> Throughput | None:
    return next((r for r in rows if (r.model_size, r.precision, r.gpu, r.gpus) == (size, precision, gpu, 1)), None)


def cost_table(catalogue: Catalogue, rows: list[Throughput], gpus: GpuCatalogue, at: datetime,
               utilisation: float) -> list[Claim]:
    spot = Decimal(str(1 + gpus.spot_interruption_overhead))
    a100, l4, cpu = (gpus.gpus.get(name) for name in ("A100", "L4", "CPU-16"))
    claims = [api_row(catalogue, at, "gpt-4-turbo", "GPT-4 Turbo", 30.0),
              api_row(catalogue, at, "claude-3-5-sonnet", "Claude 3.5 Sonnet", 15.0)]
    if a100 is not None:
        claims.append(selfhost_row("fine-tuned 7B on a self-hosted A100 ~$0.50 per 1M tokens",
                                   _row(rows, "8B", "fp16", "A100"), a100.on_demand.usd_per_hour,
                                   "A100 on-demand", 0.50, utilisation))
    if l4 is not None:
        claims.append(selfhost_row("quantised 13B on spot instances ~$0.15 per 1M tokens",
                                   _row(rows, "13B", "int4", "L4"), l4.spot.usd_per_hour * spot,
                                   f"L4 spot +{gpus.spot_interruption_overhead:.0%} interruption overhead", 0.15,
                                   utilisation))
    if cpu is not None:
        phi3 = selfhost_row("Phi-3 on CPU ~$0.02 per 1M tokens", _row(rows, "4B", "int4", "CPU-16"),
                            cpu.on_demand.usd_per_hour, "16 vCPU on-demand", 0.02, utilisation)
        tiny = _row(rows, "135M", "int4", "CPU-16")
        if tiny is not None and phi3.status == "does not hold":
            small = selfhost_row("", tiny, cpu.spot.usd_per_hour, "16 vCPU spot", 0.02, utilisation)
            prompt_only = float(cpu.spot.usd_per_hour) / (tiny.prefill_tokens_per_s * 3600) * 1e6
            phi3.computed["smollm2_135m_spot_usd_per_mtok_fully_busy"] = small.computed["usd_per_mtok_fully_busy"]
            phi3.computed["smollm2_135m_spot_prompt_only_usd_per_mtok"] = round(prompt_only, 4)
            phi3 = Claim(phi3.claim, False, f"{phi3.verdict}. The figure fits a ~135M model (the bundled SmolLM2) on "
                         f"spot CPUs: ${small.computed['usd_per_mtok_fully_busy']} per 1M fully busy at the seed's "
                         f"mix, ${prompt_only:.3f} for prompt tokens alone", phi3.computed, phi3.status)
        claims.append(phi3)
    return claims
