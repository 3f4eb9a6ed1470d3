"""The head student against the plain baseline (a linear head on one embedding of the whole prompt) on every
classification-shaped task of the distillation demo log, through the real CLI: collect → train → eval.

    .venv/bin/python bench/distill_heads.py [--work /tmp/distill-bench] [--tasks topic,reply-check,...]

Prints one row per task: held-out n, the majority answer's agreement, plain, head, and the head's training time.
Figures and method: docs/distill.md. The corpora's labels stand in for the teacher (see tokenomy.distill.corpora).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TASKS = ("topic", "reply-check", "same-topic", "science-domain")


def tokenomy(*args: str) -> str:
    cli = Path(sys.executable).with_name("tokenomy")  # the venv's entry point
    done = subprocess.run([str(cli), *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"tokenomy {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/distill-bench"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.tasks.split(","):
        log = work / f"{task}.jsonl"
        if not log.exists():
            tokenomy("distill", "demo-log", "--out", str(log), "--task", task)
        data = work / "data" / task
        names = json.loads(tokenomy("distill", "tasks", str(log), "--by", "system", "--json"))["tasks"]
        tokenomy("distill", "collect", str(log), "--task", names[0]["name"], "--out", str(data))
        row: dict[str, object] = {"task": task}
        for student in ("plain", "head"):
            out = work / "students" / f"{task}-{student}"
            start = time.monotonic()
            tokenomy("distill", "train", "--data", str(data), "--out", str(out), "--student", student, "--quiet")
            seconds = time.monotonic() - start
            result = json.loads(tokenomy("distill", "eval", "--student", str(out), "--data", str(data), "--json"))
            row.update({"n": result["n"], "majority": result["majority_agreement"], student: result["agreement"],
                        f"{student}_train_s": round(seconds, 1)})
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| task | held-out n | majority | plain head | head | head train s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['n']} | {r['majority']:.3f} | {r['plain']:.3f} | {r['head']:.3f} | "
              f"{r['head_train_s']} |")


if __name__ == "__main__":
    main()
