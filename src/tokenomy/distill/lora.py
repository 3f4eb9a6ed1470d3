"""The ``lora`` student: LoRA (peft) on a small causal LM, trained on the teacher's answers, exported for llama.cpp.

- Base: the bundled SmolLM2-135M-Instruct GGUF by default, dequantised to fp32 by transformers; or a Hugging Face
  directory, or another GGUF file (``--base``). On a CUDA GPU with bitsandbytes the base is loaded in 4 bits (NF4)
  and trained as QLoRA; on the CPU it is fp32 LoRA.
- Data: the base's chat template; loss on the answer tokens only; prompts truncated from the left to fit
  ``MAX_TOKENS``.
- LoRA r=16, alpha=32, dropout 0.05 on every attention and MLP projection; AdamW, lr 2e-4, batch 8, up to
  ``EPOCHS`` epochs, a fixed shuffle per epoch (seeded) so a resumed run sees the batches a whole run would have.
- Checkpoints (``checkpoint/state.pt``: adapter weights, optimiser, step, losses; one file) every ``SAVE_EVERY_S``
  seconds (``TOKENOMY_DISTILL_SAVE_EVERY_S``) and at the end; a rerun with the same ``--out`` resumes from the last one.
- ``--max-minutes``: the loop stops when the next step would cross the budget less the export's estimated time.
- Export: the adapter in peft's format (``adapter/``) and as a GGUF LoRA adapter (``adapter.gguf``, f16) made by
  llama.cpp's ``convert_lora_to_gguf.py`` (:mod:`tokenomy.distill.export`), served on the original base GGUF.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.distill.examples import Example
from tokenomy.errors import DistillError

if TYPE_CHECKING:
    from tokenomy.distill.train import Tracker

MAX_TOKENS = 256
BATCH = 8
EPOCHS = 3
LR = 2e-4
SAVE_EVERY_S = 60.0
EXPORT_RESERVE_S = 45.0
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Measured on 2 cores (docs/distill.md): seconds per batch-8 step ≈ this × padded sequence length.
SECONDS_PER_STEP_TOKEN = 0.043


def estimate_epoch_minutes(train: Sequence[Example]) -> float:
    if not train:
        return 0.0
    tokens = sorted(min(MAX_TOKENS, (len(e.system) + len(e.user) + len(e.answer)) // 4 + 12) for e in train)
    length = tokens[int(0.9 * (len(tokens) - 1))]
    return math.ceil(len(train) / BATCH) * SECONDS_PER_STEP_TOKEN * length / 60


def _require() -> None:
    missing = []
    for name in ("torch", "transformers", "peft"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise DistillError(f"the lora student needs {', '.join(missing)}: install a CPU build of torch 2.13.0, then "
                           "pip install 'tokenomy[distill]' (or use --student head)")


def _chat(tokenizer: Any, example: Example) -> tuple[list[int], list[int]]:
    prompt = tokenizer.apply_chat_template([dict(m) for m in example.messages], add_generation_prompt=True,
                                           tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[:MAX_TOKENS // 2]
    prompt_ids = prompt_ids[-(MAX_TOKENS - len(answer_ids)):]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def _batch(tokenizer: Any, rows: list[tuple[list[int], list[int]]]) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, :len(row_ids)] = torch.tensor(row_ids)
        labels[i, :len(row_labels)] = torch.tensor(row_labels)
        mask[i, :len(row_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _schedule(n: int, epochs: int) -> list[list[int]]:
    """Every step's row indices, for all epochs: a seeded shuffle per epoch."""
    steps: list[list[int]] = []
    for epoch in range(epochs):
        order = list(range(n))
        random.Random(1000 + epoch).shuffle(order)
        steps.extend(order[i:i + BATCH] for i in range(0, n, BATCH))
    return steps


def train_lora(train: Sequence[Example], out: Path, *, base: str | None, deadline: float | None,
               tracker: Tracker, threads: int, epochs: int = EPOCHS) -> dict[str, Any]:
    """``deadline``: a ``time.monotonic()`` by which the whole command should be done (loading the base and the
    export count against it; the loop stops early enough to leave the export its estimated time)."""
    _require()
    import torch

    from tokenomy.distill.base_model import load_base
    from tokenomy.distill.export import convert_tools, export_adapter

    convert_tools()  # fail before training, not after it, when the exporter is missing
    save_every_s = float(os.environ.get("TOKENOMY_DISTILL_SAVE_EVERY_S") or SAVE_EVERY_S)
    stop_at = deadline - EXPORT_RESERVE_S if deadline is not None else None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tracker.stage("loading the base model", None)
    loaded = load_base(base, quantise_4bit=torch.cuda.is_available())
    model, tokenizer = _with_adapter(loaded.model, out), loaded.tokenizer
    device = next(model.parameters()).device
    encoded = [_chat(tokenizer, e) for e in train]
    schedule = _schedule(len(encoded), epochs)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    state_path = out / "checkpoint" / "state.pt"
    step, losses = 0, []
    if state_path.is_file():
        from peft import set_peft_model_state_dict

        state = torch.load(state_path, map_location=device, weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        optimiser.load_state_dict(state["optimiser"])
        step, losses = int(state["step"]), list(state["losses"])
        tracker.note(f"resuming at step {step} of {len(schedule)} from {state_path}")
    tracker.stage(f"LoRA training ({len(train):,} examples, {epochs} epochs)", len(schedule))
    tracker.advance(step)
    model.train()
    saved_at, stopped, step_s = time.monotonic(), "", 0.0
    while step < len(schedule):
        if stop_at is not None and time.monotonic() + step_s > stop_at:
            stopped = f"stopped at step {step} of {len(schedule)} by --max-minutes"
            break
        t0 = time.monotonic()
        batch = {k: v.to(device) for k, v in _batch(tokenizer, [encoded[i] for i in schedule[step]]).items()}
        loss = model(**batch).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        losses.append(round(float(loss.detach()), 4))
        step += 1
        step_s = time.monotonic() - t0 if step_s == 0 else 0.8 * step_s + 0.2 * (time.monotonic() - t0)
        tracker.advance(1)
        if time.monotonic() - saved_at >= save_every_s:
            _checkpoint(model, optimiser, step, losses, out)
            saved_at = time.monotonic()
    _checkpoint(model, optimiser, step, losses, out)
    tracker.stage("exporting the adapter to GGUF", None)
    export = export_adapter(model, loaded, out)
    return {"lora": {"base": loaded.describe(), "base_gguf": str(loaded.gguf_path) if loaded.gguf_path else None,
                     "adapter_gguf": export.get("adapter_gguf"), "r": 16, "alpha": 32, "lr": LR, "batch": BATCH,
                     "max_tokens": MAX_TOKENS, "qlora": loaded.quantised,
                     "answer_tokens": max(len([t for t in labels if t != -100]) for _, labels in encoded)},
            "steps": step, "epochs": round(step / max(len(schedule) / epochs, 1), 2), "stopped": stopped,
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "export": export}


def _with_adapter(model: Any, out: Path) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _checkpoint(model: Any, optimiser: Any, step: int, losses: list[float], out: Path) -> None:
    """One file, replaced atomically: adapter weights, optimiser state and step always match."""
    import torch
    from peft import get_peft_model_state_dict

    directory = out / "checkpoint"
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "state.pt.tmp"
    torch.save({"adapter": get_peft_model_state_dict(model), "optimiser": optimiser.state_dict(), "step": step,
                "losses": losses}, tmp)
    tmp.replace(directory / "state.pt")
