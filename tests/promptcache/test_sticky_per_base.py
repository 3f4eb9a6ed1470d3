"""Sticky prefix routing judges a replica by its base's load: calls on another adapter of the same upstream count."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tokenomy.config.adapters import AdapterConfig
from tokenomy.config.settings import DeploymentConfig, RetryConfig
from tokenomy.dispatch.catalog import Catalog
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.promptcache.prefix import prefix_hash, rendezvous_order
from tokenomy.providers.registry import Deployment, adapter_deployments


def _replicas() -> list[Deployment]:
    configs = []
    for i in range(3):
        base = DeploymentConfig(name=f"vllm-{i}", provider="vllm", model="base", base_url=f"http://r{i}/v1",
                                adapters=[AdapterConfig(name="alpha"), AdapterConfig(name="bravo")])
        configs += [base, *adapter_deployments(base)]
    return [Deployment(c, provider=None) for c in configs]  # type: ignore[arg-type]  # never called here


def test_base_load_counts_every_model_on_the_upstream() -> None:
    catalog = Catalog(_replicas())
    inflight = {"vllm-0": 1, "vllm-0/alpha": 2, "vllm-0/bravo": 3, "vllm-1/alpha": 4}
    assert catalog.base_load("vllm-0/alpha", inflight) == 6
    assert catalog.base_load("vllm-1", inflight) == 4
    assert [d.name for d in catalog.chain("alpha")] == ["vllm-0/alpha", "vllm-1/alpha", "vllm-2/alpha"]


def test_a_replica_busy_on_another_adapter_is_passed_over() -> None:
    dispatcher = Dispatcher(Catalog(_replicas()), RetryConfig())
    body: dict[str, Any] = {"model": "alpha", "messages": [{"role": "system", "content": "s"},
                                                          {"role": "user", "content": "q"}]}
    chat = SimpleNamespace(body=body)
    order = rendezvous_order(prefix_hash(body), [f"vllm-{i}/alpha" for i in range(3)])
    preferred, runner_up = order[0], order[1]
    chain = dispatcher.catalog.chain("alpha")
    assert dispatcher._sticky(chain, chat)[0].name == preferred  # type: ignore[arg-type]
    # the preferred replica's upstream is busy with bravo traffic only: its alpha deployment has nothing in flight
    dispatcher.inflight[preferred.replace("/alpha", "/bravo")] = 5
    assert dispatcher.inflight[preferred] == 0
    assert dispatcher._sticky(chain, chat)[0].name == runner_up  # type: ignore[arg-type]
