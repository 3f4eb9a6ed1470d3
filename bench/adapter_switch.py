"""What switching LoRA adapters on one loaded llama.cpp model costs, against keeping one model per adapter.

The bundled SmolLM2-135M with the two test adapters (tests/fixtures/adapters). Each request: a shared ~200-token
system prompt, a short question, 4 generated tokens, greedy. In one run, in this order:

- ``same``: one adapter, every request (the shared prefix is reused from the KV cache);
- ``alternating``: alpha, bravo, alpha, … on one model (``LoraSet.apply`` each time: graph rebuild + the KV cache
  dropped, so the prefix is evaluated again);
- ``two_models``: one ``Llama`` per adapter (the old way: base loaded twice), alternating between them;
- ``apply_only``: the switch alone (``llama_set_adapters_lora`` + reset), no generation;
- resident memory after loading the shared model (base + 2 adapters) and after loading two models.

Times are medians of wall and of this process's CPU seconds; the box is shared, so read the ratios.

    python bench/adapter_switch.py --requests 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from tokenomy.providers.llama_adapters import LoraSet
from tokenomy.providers.local_llama import bundled_model_path

ADAPTERS = Path(__file__).parents[1] / "tests" / "fixtures" / "adapters"
SYSTEM = ("You are a support assistant for a printer company. Answer briefly and politely. " * 12).strip()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ask(llama: Any, question: str) -> None:
    llama.create_chat_completion(messages=[{"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": question}], temperature=0, max_tokens=4)


def _load(threads: int, lora: Path | None = None) -> Any:
    from llama_cpp import Llama

    kwargs = {"lora_path": str(lora)} if lora else {}
    return Llama(model_path=str(bundled_model_path()), n_ctx=1024, n_threads=threads, verbose=False, **kwargs)


def run(requests: int, threads: int) -> dict[str, Any]:
    """The scenarios run interleaved (one request of each in turn), each on its own models, so that the load of a
    shared box falls on all of them alike."""
    files = {"alpha": (ADAPTERS / "alpha.gguf", 1.0), "bravo": (ADAPTERS / "bravo.gguf", 1.0)}
    before = _rss_mb()
    shared = _load(threads)
    switching = LoraSet(shared, files, deployment="bench")
    rss_shared = _rss_mb() - before
    before = _rss_mb()
    models = {name: _load(threads, path) for name, (path, _) in files.items()}
    rss_two = _rss_mb() - before
    steady = _load(threads)
    same_adapter = LoraSet(steady, files, deployment="bench")

    def same(i: int) -> None:
        same_adapter.apply("alpha")
        _ask(steady, f"Question {i}: is my printer under warranty?")

    def alternating(i: int) -> None:
        switching.apply("alpha" if i % 2 else "bravo")
        _ask(shared, f"Question {i}: is my printer under warranty?")

    def two_models(i: int) -> None:
        _ask(models["alpha" if i % 2 else "bravo"], f"Question {i}: is my printer under warranty?")

    scenarios = {"same": same, "alternating": alternating, "two_models": two_models}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in scenarios}
    for i in range(-2, requests):  # two warm-up rounds
        for name, fn in scenarios.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn(i)
            if i >= 0:
                times[name].append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
    apply_ms = []
    for i in range(requests):
        cpu = time.process_time()
        switching.apply("alpha" if i % 2 else "bravo")
        apply_ms.append((time.process_time() - cpu) * 1000)
    result: dict[str, Any] = {"requests": requests, "threads": threads, "load_average": os.getloadavg()[0]}
    for name, pairs in times.items():
        result[name] = {"wall_ms_p50": round(statistics.median(w for w, _ in pairs), 1),
                        "cpu_ms_p50": round(statistics.median(c for _, c in pairs), 1)}
    result["apply_only_cpu_ms_p50"] = round(statistics.median(apply_ms), 3)
    result["rss_mb"] = {"one_base_with_2_adapters": round(rss_shared, 1), "two_models": round(rss_two, 1)}
    same_ms = result["same"]["cpu_ms_p50"]
    result["ratio_to_same_cpu"] = {k: round(result[k]["cpu_ms_p50"] / same_ms, 2) for k in ("alternating",
                                                                                          "two_models")}
    result["switch_cost_cpu_ms"] = round(result["alternating"]["cpu_ms_p50"] - same_ms, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.requests, args.threads)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
