"""CPU serving throughput of the bundled SmolLM2-135M (Q4_1) under llama.cpp: the measured data point behind the
planner's CPU rows and its check of the seed's "Phi-3 on CPU ~$0.02 per 1M tokens" (docs/plan.md).

One stream at a time (llama-cpp-python's Llama serves one sequence), greedy, ``--threads`` threads:

- prefill: tokens/s over prompts of ``--prompt-tokens`` tokens (a fresh context each, no prefix reuse);
- decode: tokens/s over ``--output-tokens`` generated tokens after a short prompt;
- both also per CPU-second of this process (``time.process_time``): on a shared box the wall rate falls with
  the load while the CPU rate does not (with ``--threads 1``: no spin-waiting between threads), so the CPU rate x
  vCPUs is the figure to scale from;
- the seed's request shape (1,500 in + 500 out, or ``--mix``) priced per vCPU-hour (the planner's CPU-16 row / 16).

    python bench/cpu_tokens.py --threads 2 --runs 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from tokenomy.plan.data import load_gpus
from tokenomy.providers.local_llama import bundled_model_path

TEXT = ("the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches in the park "
        "and everyone agrees that the weather is fine for a long walk by the river")


def _prompt_tokens(llama: Any, n: int) -> list[int]:
    words = TEXT.split(" ")
    text = " ".join(words[i % len(words)] for i in range(n * 2))
    return list(llama.tokenize(text.encode(), add_bos=True))[:n]


def measure(threads: int, runs: int, prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    from llama_cpp import Llama

    llama = Llama(model_path=str(bundled_model_path()), n_ctx=4096, n_threads=threads, n_batch=512, verbose=False)
    prompt = _prompt_tokens(llama, prompt_tokens)
    prefill, decode, prefill_cpu, decode_cpu = [], [], [], []
    for _ in range(runs):
        llama.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        llama.eval(prompt)
        prefill.append(len(prompt) / (time.perf_counter() - wall))
        prefill_cpu.append(len(prompt) / (time.process_time() - cpu))
        llama.reset()
        llama.eval(prompt[:16])
        wall, cpu = time.perf_counter(), time.process_time()
        made = 0
        for token in llama.generate(prompt[:16], temp=0.0, reset=False):
            made += 1
            if made >= output_tokens or token == llama.token_eos():
                break
        decode.append(made / (time.perf_counter() - wall))
        decode_cpu.append(made / (time.process_time() - cpu))
    return {"threads": threads, "runs": runs, "prompt_tokens": len(prompt), "output_tokens": output_tokens,
            "load_average": os.getloadavg()[0],
            "prefill_tokens_per_s": round(statistics.median(prefill), 1),
            "decode_tokens_per_s": round(statistics.median(decode), 1),
            "prefill_tokens_per_cpu_s": round(statistics.median(prefill_cpu), 1),
            "decode_tokens_per_cpu_s": round(statistics.median(decode_cpu), 1),
            "prefill_runs": [round(x, 1) for x in prefill], "decode_runs": [round(x, 1) for x in decode]}


def price(result: dict[str, Any], mix: tuple[int, int]) -> dict[str, Any]:
    """USD per 1M tokens at full use, per vCPU-hour: from the CPU-second rates (one vCPU busy one second)."""
    inp, out = mix
    cpu_seconds = inp / result["prefill_tokens_per_cpu_s"] + out / result["decode_tokens_per_cpu_s"]
    tokens_per_cpu_s = (inp + out) / cpu_seconds
    cpu = load_gpus().gpus["CPU-16"]
    per_vcpu = float(cpu.on_demand.usd_per_hour) / 16
    return {"mix": {"input": inp, "output": out}, "cpu_seconds_per_request": round(cpu_seconds, 3),
            "tokens_per_cpu_s": round(tokens_per_cpu_s, 1), "usd_per_vcpu_hour": round(per_vcpu, 5),
            "usd_per_mtok_at_full_use": round(per_vcpu / (tokens_per_cpu_s * 3600) * 1e6, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--mix", default="1500,500", help="input,output tokens of the request priced")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.threads, args.runs, args.prompt_tokens, args.output_tokens)
    inp, out = (int(x) for x in args.mix.split(","))
    result["priced"] = price(result, (inp, out))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
