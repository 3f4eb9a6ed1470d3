"""Self-hosting the small tier: at what volume does one always-on GPU replica of an 8B model cost less than sending
the routable traffic to the small API model?

From the audit document alone (mean request size, requests a day, the routable share, the small model) and the
planner's GPU prices and throughput rows (``tokenomy.plan``): for each single-GPU 8B row, the monthly cost of one
on-demand replica (730 h), its capacity at the mean request size (at ``utilisation``), and the break-even volume
= monthly GPU cost / the API cost of one small-tier request. The cheapest row is the recommendation. Quality is
assumed equal (an 8B open model standing in for the small API model): say so wherever this is shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tokenomy.pricing.catalogue import Catalogue

HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 30


def small_tier_break_even(doc: dict[str, Any], catalogue: Catalogue, *, utilisation: float = 0.7,
                          at: datetime | None = None) -> dict[str, Any] | None:
    """None when the audit has no small model priced in the catalogue."""
    from tokenomy.plan.data import load_gpus, load_throughput

    small = (doc.get("routing") or {}).get("small_model")
    price = catalogue.find(small, at or datetime.now(UTC)) if isinstance(small, str) else None
    if price is None:
        return None
    tokens_in, tokens_out = int(doc["input_tokens"]), int(doc["output_tokens"])
    per_request = (price.input * tokens_in + price.output * tokens_out) / Decimal(1_000_000)
    if per_request <= 0:
        return None
    gpus = load_gpus()
    routable_per_day = float(doc["queries_per_day"]) * float((doc.get("routing") or {}).get("share") or 0.0)
    options: list[dict[str, Any]] = []
    for row in load_throughput(gpus=gpus):
        if row.model_size != "8B" or row.gpus != 1:
            continue
        monthly = gpus.gpus[row.gpu].on_demand.usd_per_hour * HOURS_PER_MONTH
        capacity = row.requests_per_s(tokens_in, tokens_out) * utilisation * 86_400
        options.append({"gpu": row.gpu, "precision": row.precision, "monthly_usd": float(round(monthly, 2)),
                        "capacity_requests_per_day": round(capacity),
                        "break_even_requests_per_day": round(float(monthly / per_request) / DAYS_PER_MONTH),
                        "estimate": row.estimate or gpus.gpus[row.gpu].on_demand.estimate})
    if not options:
        return None
    best = min(options, key=lambda o: o["monthly_usd"])
    api_monthly = float(per_request) * routable_per_day * DAYS_PER_MONTH
    return {"small_model": small, "api_usd_per_request": float(round(per_request, 8)),
            "routable_requests_per_day": round(routable_per_day), "api_monthly_usd": round(api_monthly, 2),
            "best": best, "options": options,
            "worth_it": routable_per_day >= best["break_even_requests_per_day"]
            and routable_per_day <= best["capacity_requests_per_day"],
            "note": "one always-on on-demand replica of an 8B open model instead of the small API model, at the "
                    "mean request size; quality assumed equal"}
