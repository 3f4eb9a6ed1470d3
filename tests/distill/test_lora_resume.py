"""The LoRA student: killed mid-training, resumed from its checkpoint, exported to GGUF and served by llama.cpp.

Needs the distill extra (torch, transformers, peft) and llama.cpp's converters (``make distill-tools``); ``make
test`` installs neither (the CI loop test uses the head student, see docs/distill.md), so this test skips there and
runs where ``make distill`` was run."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tokenomy.distill.examples import EVAL, TRAIN, Example, write_examples, write_manifest

pytest.importorskip("peft", reason="the LoRA student needs the distill extra (make distill)")
pytest.importorskip("llama_cpp", reason="serving the LoRA student needs llama-cpp-python")
TOOLS = Path(os.environ.get("TOKENOMY_LLAMA_CONVERT") or
             Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "tokenomy" / "llama-convert-0.3.36")
if not (TOOLS / "convert_lora_to_gguf.py").is_file():
    pytest.skip("llama.cpp's converters are missing (make distill-tools)", allow_module_level=True)
pytestmark = pytest.mark.slow


def _data(root: Path) -> Path:
    system = "Reply with the colour of the thing: red or green."
    things = [("a ripe tomato", "red"), ("grass", "green"), ("a fire engine", "red"), ("a lime", "green"),
              ("a strawberry", "red"), ("a frog", "green"), ("blood", "red"), ("a leaf", "green")]
    rows = [Example(({"role": "system", "content": system}, {"role": "user", "content": t}), a) for t, a in things]
    root.mkdir(parents=True)
    write_examples(root / TRAIN, rows * 2)
    write_examples(root / EVAL, rows[:2])
    write_manifest(root, {"task": "colours", "where": "tag=colours", "shape": "classification",
                          "labels": ["green", "red"], "teacher_usd_per_1k": "0.2", "requests_per_day": 10})
    return root


def test_killed_training_resumes_and_exports(tmp_path: Path) -> None:
    data, out = _data(tmp_path / "data"), tmp_path / "student"
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    env = {**os.environ, "TOKENOMY_DISTILL_SAVE_EVERY_S": "0", "TOKENOMY_LLAMA_CONVERT": str(TOOLS),
           "TOKENOMY_DISTILL_CACHE": str(home / ".cache" / "tokenomy" / "distill")}
    cli = [sys.executable, "-c", "from tokenomy.cli.main import main; main()", "distill", "train", "--data",
           str(data), "--out", str(out), "--student", "lora", "--json"]
    state = out / "checkpoint" / "state.pt"
    first = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 900
    import torch

    step = 0
    while time.monotonic() < deadline and first.poll() is None:
        if state.is_file():
            try:
                step = int(torch.load(state, weights_only=False)["step"])
            except (EOFError, RuntimeError):  # caught mid-replace: read it again
                step = 0
            if step >= 2:
                break
        time.sleep(0.5)
    assert first.poll() is None, "training finished before it could be killed"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert step >= 2
    second = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads(second.stdout)
    assert summary["steps"] == 6 and summary["stopped"] == ""  # 16 rows / batch 8 x 3 epochs, none lost
    final = torch.load(state, weights_only=False)
    assert len(final["losses"]) == 6 and final["losses"][-1] < final["losses"][0]
    assert (out / "adapter.gguf").stat().st_size > 1_000_000

    from tokenomy.distill.student import load_student

    student = load_student(out)
    predictions = student.predict([Example(({"role": "system", "content": "Reply with the colour of the thing: red "
                                                                          "or green."},
                                            {"role": "user", "content": "grass"}), "")])
    assert 0 <= predictions[0].confidence <= 1 and isinstance(predictions[0].answer, str)
