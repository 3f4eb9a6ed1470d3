"""From a request's trace to ledger rows: exact costs, counterfactuals, offline counting when usage is missing."""

from __future__ import annotations

from decimal import Decimal

from tokenomy.config.settings import DeploymentConfig
from tokenomy.errors import UpstreamUnavailableError
from tokenomy.ledger.accounting import Accountant
from tokenomy.ledger.pricer import CataloguePricer
from tokenomy.ledger.trace import RequestTrace
from tokenomy.tokens.counter import TokenCounter

MINI = DeploymentConfig(name="oa-mini", provider="openai", model="gpt-4o-mini", tier="medium")
BODY = {"model": "medium", "messages": [{"role": "user", "content": "Say hello to the world."}]}


def _accountant() -> Accountant:
    return Accountant(CataloguePricer.load(), TokenCounter(), reference_model="gpt-4o")


def test_retry_then_success_prices_each_call_and_the_saving() -> None:
    trace = RequestTrace(id="req_1", endpoint="chat.completions", requested_model="medium", stream=False, body=BODY)
    trace.begin_call(MINI).fail(UpstreamUnavailableError("busy", upstream_status=503))
    trace.begin_call(MINI).complete({"choices": [{"message": {"content": "Hello, world!"}}], "usage": {
        "prompt_tokens": 1000, "completion_tokens": 200, "prompt_tokens_details": {"cached_tokens": 400}}})
    entry = _accountant().entry(trace, 200)
    failed, ok = entry.calls
    assert (failed.outcome, failed.cost_usd, failed.upstream_status, failed.error_code) == (
        "error", Decimal(0), 503, "upstream_unavailable")
    # gpt-4o-mini: 600 × 0.15 + 400 × 0.075 + 200 × 0.60 = 90 + 30 + 120 = 240 µ$
    assert ok.cost_usd == Decimal("0.00024")
    req = entry.request
    assert (req.attempts, req.cost_usd, req.served_model, req.tier) == (2, Decimal("0.00024"), "gpt-4o-mini", "medium")
    # asked for a tier: the counterfactual is the reference model, gpt-4o:
    # 600 × 2.50 + 400 × 1.25 + 200 × 10 = 1500 + 500 + 2000 = 4000 µ$
    assert req.counterfactual_usd == Decimal("0.004")
    assert req.saving_usd == Decimal("0.00376")


def test_cut_stream_without_usage_is_counted_offline() -> None:
    trace = RequestTrace(id="req_2", endpoint="chat.completions", requested_model="gpt-4o-mini", stream=True,
                         body=BODY)
    call = trace.begin_call(MINI)
    for piece in ("Hello", ", wor"):
        call.chunk({"choices": [{"index": 0, "delta": {"content": piece}}]})
    call.end_stream("disconnected")
    trace.client_disconnected = True
    entry = _accountant().entry(trace, 200)
    row = entry.calls[0]
    counter = TokenCounter()
    assert row.usage_source == "counted" and entry.request.usage_source == "counted"
    assert row.tokens.input_tokens == counter.count_messages(BODY["messages"], "gpt-4o-mini")  # type: ignore[arg-type]
    assert row.tokens.output_tokens == counter.count_text("Hello, wor", "gpt-4o-mini")
    assert entry.request.client_disconnected
    # asked for gpt-4o-mini by name and got it: nothing saved
    assert entry.request.saving_usd == Decimal(0)


def test_unknown_price_is_unknown_not_zero() -> None:
    dep = DeploymentConfig(name="x", provider="openai_compatible", model="mystery", base_url="http://x")
    trace = RequestTrace(id="req_3", endpoint="chat.completions", requested_model="mystery", stream=False, body=BODY)
    trace.begin_call(dep).complete({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 5}})
    entry = Accountant(CataloguePricer.load(), None, reference_model=None).entry(trace, 200)
    assert entry.request.cost_usd is None and entry.request.saving_usd is None


def test_gpu_hour_override_prices_self_hosted_tokens() -> None:
    from tokenomy.config.settings import PriceOverride
    from tokenomy.ledger.pricer import override_cost
    from tokenomy.pricing.cost import TokenUsage

    price = PriceOverride(gpu_hour_usd=Decimal("2.70"), tokens_per_s=Decimal("1500"))
    # $2.70 per hour / 3600 s / 1500 tok/s = $0.0000005 per token; 1,000 + 200 tokens → $0.0006
    assert override_cost(price, TokenUsage(input_tokens=1000, output_tokens=200)) == Decimal("0.0006")


def test_malformed_usage_is_counted_offline_not_a_failure() -> None:
    trace = RequestTrace(id="req_4", endpoint="chat.completions", requested_model="gpt-4o-mini", stream=False,
                         body=BODY)
    trace.begin_call(MINI).complete({"choices": [{"message": {"content": "Hello"}}],
                                     "usage": {"prompt_tokens": "lots", "completion_tokens": 1}})
    entry = _accountant().entry(trace, 200)
    assert entry.calls[0].usage_source == "counted"
    assert entry.calls[0].tokens.output_tokens == TokenCounter().count_text("Hello", "gpt-4o-mini")
