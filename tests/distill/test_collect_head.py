from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tokenomy.audit.records import LogRecord
from tokenomy.distill.collect import collect
from tokenomy.distill.corpora import reply_check_rows
from tokenomy.distill.embedding import CachedEmbedder
from tokenomy.distill.examples import EVAL, TRAIN, Example, is_eval, read_examples
from tokenomy.distill.head import train_head
from tokenomy.distill.selector import Selector
from tokenomy.distill.tasks import answer_shape, find_tasks


def _rec(system: str, user: str, answer: str, tag: str | None = None) -> LogRecord:
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    return LogRecord(model="gpt-4o", timestamp=1.7e9, body=body, usage=None, output_text=answer,
                     metadata={"tag": tag} if tag else None)


def test_shape_rule() -> None:
    assert answer_shape(Counter({"yes": 40, "no": 35}), 75) == "classification"
    assert answer_shape(Counter({f"answer {i}": 1 for i in range(30)}), 30) == "free-text"  # one answer a prompt
    assert answer_shape(Counter({"a long sentence of more than six words here": 9, "no": 9}), 18) == "free-text"


def test_groups_and_collect_dedupes_by_majority_answer(tmp_path: Path) -> None:
    records = [_rec("Sort it.", f"item {i}", "odd" if i % 2 else "even", tag="parity") for i in range(60)]
    records += [_rec("Sort it.", "item 0", "odd", tag="parity"), _rec("Sort it.", "item 0", "even", tag="parity")]
    records += [_rec("Other task.", f"q {i}", f"a free answer with quite a few words, number {i}") for i in range(10)]
    groups = {str(g.selector): g for g in find_tasks(records, lambda rec: None)}
    by_system = next(g for w, g in groups.items() if w.startswith("system=") and g.requests == 62)
    assert by_system.name == "parity" and by_system.shape == "classification"  # named after its one tag
    assert groups["tag=parity"].requests == 62 and len(groups["tag=parity"].prompts) == 60
    assert groups["route=gpt-4o"].requests == 72 and groups["route=gpt-4o"].shape == "free-text"
    selector = Selector.parse("tag=parity")
    done = collect(records, task="parity", selector=selector, out=tmp_path, price=lambda rec: None, sources=[])
    examples = read_examples(tmp_path / TRAIN) + read_examples(tmp_path / EVAL)
    assert len(examples) == 60 and done.manifest["conflicting_prompts"] == 1
    assert done.manifest["duplicates_dropped"] == 2
    assert next(e for e in examples if e.user == "item 0").answer == "even"
    assert all(is_eval(e.prompt_hash) for e in read_examples(tmp_path / EVAL))
    assert json.loads((tmp_path / "manifest.json").read_text())["labels"] == ["even", "odd"]


def test_head_beats_the_plain_baseline_on_a_two_input_judgement() -> None:
    rows = reply_check_rows()[:240]
    examples = [Example(({"role": "system", "content": r.system}, {"role": "user", "content": r.user}), r.answer)
                for r in rows]
    train = [e for e in examples if not is_eval(e.prompt_hash)]
    held = [e for e in examples if is_eval(e.prompt_hash)]
    embed = CachedEmbedder.minilm()
    scores = {}
    for mode in ("plain", "head"):
        model = train_head(train, embed, mode=mode)
        probs = model.probabilities(held, embed)
        scores[mode] = sum(model.classes[int(i)] == e.answer for i, e in zip(probs.argmax(axis=1), held,
                                                                             strict=True)) / len(held)
        assert abs(probs.sum(axis=1) - 1).max() < 1e-6
    assert model.spec.parts == 2  # "Message: … / Reply: …" was seen as two inputs
    assert scores["head"] >= scores["plain"] + 0.15, scores
