"""Prometheus metrics (served by ``GET /metrics``), fed from the same ledger entries that go to the store, so the two
agree.

A registry per app (no global state). Every label value comes from configuration: a model name a client sends that
no deployment, tier or router of this gateway bears is counted as ``other`` (else each unknown name would be a new
series, and ``/metrics`` would grow with whatever clients send). Gauges that describe the moment — upstream calls in
flight and requests queued per deployment (the local tier's queue; what an autoscaler scales on), the ledger
writer's backlog — are read at scrape time from their owners, costing nothing per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tokenomy.ledger.records import LedgerEntry

OTHER = "other"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _LiveGauges(Collector):
    def __init__(self, inflight: Mapping[str, int], queued: Callable[[], Mapping[str, int]],
                 ledger_backlog: Callable[[], int]) -> None:
        self._inflight, self._queued, self._backlog = inflight, queued, ledger_backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        inflight = GaugeMetricFamily("tokenomy_upstream_inflight", "Upstream calls now open", labels=["deployment"])
        for name, value in self._inflight.items():
            inflight.add_metric([name], value)
        yield inflight
        queued = GaugeMetricFamily("tokenomy_deployment_queue_depth",
                                   "Requests waiting for or holding a deployment's capacity", labels=["deployment"])
        for name, value in self._queued().items():
            queued.add_metric([name], value)
        yield queued
        yield GaugeMetricFamily("tokenomy_ledger_backlog", "Ledger entries not yet written", value=self._backlog())


class Metrics:
    def __init__(self, models: frozenset[str] = frozenset()) -> None:
        """``models``: the model names that may be label values (deployments' models and upstream names, tiers,
        routers, embedding models)."""
        self._models = models
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tokenomy_requests", "Served requests", ["model", "tier", "status", "cache"],
                                registry=r)
        self.tokens = Counter("tokenomy_tokens", "Tokens by kind", ["model", "kind"], registry=r)
        self.cost = Counter("tokenomy_cost_usd", "Upstream cost in USD", ["model", "tier"], registry=r)
        self.saving = Counter("tokenomy_saving_usd", "Saving against the counterfactual in USD", ["model", "tier"],
                              registry=r)
        self.upstream_errors = Counter("tokenomy_upstream_errors", "Failed upstream calls", ["deployment", "code"],
                                       registry=r)
        self.latency = Histogram("tokenomy_request_seconds", "Request latency", ["model"], buckets=_LATENCY_BUCKETS,
                                 registry=r)
        self.ttft = Histogram("tokenomy_time_to_first_token_seconds", "Time to first token", ["model"],
                              buckets=_LATENCY_BUCKETS, registry=r)

    def watch(self, inflight: Mapping[str, int], queued: Callable[[], Mapping[str, int]],
              ledger_backlog: Callable[[], int]) -> None:
        self.registry.register(_LiveGauges(inflight, queued, ledger_backlog))

    def observe(self, entry: LedgerEntry) -> None:
        req = entry.request
        model = self.model_label(req.served_model, req.requested_model)
        tier = req.tier or "none"
        self.requests.labels(model, tier, str(req.status), req.cache_status).inc()
        t = req.tokens
        for kind, value in (("input", t.input_tokens), ("cached_read", t.cached_read_tokens),
                            ("cache_write", t.cache_write_tokens), ("output", t.output_tokens)):
            if value:
                self.tokens.labels(model, kind).inc(value)
        if req.cost_usd:
            self.cost.labels(model, tier).inc(float(req.cost_usd))
        saving = req.saving_usd
        if saving is not None and saving > 0:
            self.saving.labels(model, tier).inc(float(saving))
        self.latency.labels(model).observe((req.ended_us - req.started_us) / 1e6)
        if req.first_token_us is not None:
            self.ttft.labels(model).observe((req.first_token_us - req.started_us) / 1e6)
        for call in entry.calls:
            if call.outcome == "error":
                self.upstream_errors.labels(call.deployment, call.error_code or "error").inc()

    def model_label(self, *names: str | None) -> str:
        """The first of ``names`` this gateway configures, else ``other``."""
        return next((name for name in names if name and name in self._models), OTHER)
