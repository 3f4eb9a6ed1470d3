"""What the teacher's answers cost and what the student's cost, per request, by stated rules.

Teacher: each logged request priced from the price catalogue at its own time with its own usage (usage counted
offline from the prompt and the reply when the log has none), as the audit prices it.

Student: it runs on a CPU, so its cost is the CPU time it takes: measured seconds per request × the hourly price of
the cores it runs on. The price is the planner's ``CPU-16`` row (``plan/gpus.json``: a 16 vCPU instance, an
estimate marked as such) divided by its 16 vCPUs, times the threads the student uses. A student that shares a
gateway box costs no more than this; one that needs a box of its own costs a whole instance, which is why the figure
is reported per 1,000 requests of CPU time and not per month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tokenomy.audit.records import LogRecord
from tokenomy.pricing.catalogue import Catalogue
from tokenomy.pricing.cost import TokenUsage, cost_usd
from tokenomy.tokens.counter import TokenCounter

CPU_ROW = "CPU-16"
CPU_ROW_VCPUS = 16


@dataclass(frozen=True, slots=True)
class CpuRate:
    usd_per_vcpu_hour: Decimal
    source: str


def record_usage(rec: LogRecord, counter: TokenCounter) -> TokenUsage:
    if rec.usage is not None:
        return rec.usage
    messages = [m for m in (rec.body or {}).get("messages") or () if isinstance(m, dict)]
    prompt = counter.count_messages(messages, rec.model)
    return TokenUsage(input_tokens=prompt, output_tokens=counter.count_text(rec.output_text or "", rec.model))


def record_cost(rec: LogRecord, catalogue: Catalogue, counter: TokenCounter) -> Decimal | None:
    """The logged cost, else the catalogue price of the record's usage; None when the model has no price."""
    if rec.cost_usd is not None:
        return rec.cost_usd
    at = datetime.fromtimestamp(rec.timestamp, UTC) if rec.timestamp is not None else datetime.now(UTC)
    price = catalogue.find(rec.model, at)
    return None if price is None else cost_usd(price, record_usage(rec, counter), batch=rec.batch)


def cpu_rate() -> CpuRate:
    from tokenomy.plan.data import load_gpus

    row = load_gpus(None).gpus[CPU_ROW].on_demand
    return CpuRate(row.usd_per_hour / CPU_ROW_VCPUS,
                   f"plan/gpus.json {CPU_ROW} on-demand ${row.usd_per_hour}/h ÷ {CPU_ROW_VCPUS} vCPU"
                   f"{' (an estimate)' if row.estimate else ''}")


def student_usd_per_1k(seconds_per_request: float, threads: int, rate: CpuRate) -> Decimal:
    """CPU cost of 1,000 requests: seconds × threads × the per-vCPU hourly price."""
    vcpu_hours = Decimal(str(seconds_per_request)) * 1000 * threads / 3600
    return vcpu_hours * rate.usd_per_vcpu_hour
