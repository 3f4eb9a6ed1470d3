"""A promoted head student in a running gateway, driven with the official OpenAI SDK: shadow → live (with the
cascade and spot-checks) → demoted when the teacher's answers drift; the ledger records every comparison, the
stored bodies are redacted, and ``spend`` shows the saving. The teacher is a real HTTP upstream answering with the
corpus labels (the same stand-in for a frontier model the demo log uses)."""

from __future__ import annotations

import json
import sqlite3
import statistics
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from click.testing import CliRunner

from servers import run_aiohttp, run_gateway
from tokenomy.audit.records import BadLines
from tokenomy.cli.main import cli
from tokenomy.config.settings import (
    BodyStoreConfig,
    DeploymentConfig,
    DistillConfig,
    LedgerConfig,
    LocalConfig,
    Settings,
)
from tokenomy.distill.collect import collect
from tokenomy.distill.corpora import topic_rows
from tokenomy.distill.examples import TRAIN, Example, load_split
from tokenomy.distill.promote import promote
from tokenomy.distill.selector import Selector
from tokenomy.distill.student import load_student
from tokenomy.distill.tasks import read_records
from tokenomy.distill.train import train_student


class Teacher:
    """The frontier stand-in: the corpus label for a known message; with ``drift`` on, a wrong label."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.labels = sorted(set(answers.values()))
        self.drift = False
        self.calls = 0

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        user = body["messages"][-1]["content"]
        label = self.answers.get(user, self.labels[0])
        if self.drift:
            label = self.labels[(self.labels.index(label) + 1) % len(self.labels)]
        usage = {"prompt_tokens": 60, "completion_tokens": 2, "total_tokens": 62}
        return web.json_response({"id": "chatcmpl-t", "object": "chat.completion", "created": 0,
                                  "model": body["model"], "usage": usage,
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": label}}]})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A head student on three chatterbot categories, collected from a log through the real collect step."""
    root = tmp_path_factory.mktemp("distill-gw")
    keep = {"coding", "psychology", "emotion"}
    rows = [r for r in topic_rows() if r.answer in keep]
    system = rows[0].system
    log = root / "log.jsonl"
    with log.open("w") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"timestamp": 1_772_400_000 + i, "request": {"model": "gpt-4o", "messages": [
                {"role": "system", "content": system}, {"role": "user", "content": r.user}]},
                "response": {"model": "gpt-4o", "choices": [{"message": {"role": "assistant", "content": r.answer}}],
                             "usage": {"prompt_tokens": 60, "completion_tokens": 2}}}) + "\n")
    from tokenomy.distill.examples import system_hash

    selector = Selector("system", system_hash(system))
    records = list(read_records([log], BadLines()))
    collect(records, task="topics", selector=selector, out=root / "data", price=lambda rec: None, sources=[])
    train_student(root / "data", root / "student", student="head", threads=1)
    return {"root": root, "system": system, "answers": {r.user: r.answer for r in rows},
            "train": load_split(root / "data", TRAIN)}


@pytest.fixture
def teacher(trained: dict[str, Any]) -> Iterator[tuple[str, Teacher]]:
    upstream = Teacher(trained["answers"])
    with run_aiohttp(upstream.app()) as base:
        yield f"{base}/v1", upstream


def _ask(client: openai.OpenAI, system: str, user: str) -> tuple[str, dict[str, str]]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "system", "content": system}, {"role": "user", "content": user}])
    return raw.parse().choices[0].message.content or "", dict(raw.headers)


def _state(registry: Path) -> str:
    return str(json.loads(registry.read_text())["students"][0]["state"])


def test_shadow_live_cascade_spot_demote(trained: dict[str, Any], teacher: tuple[str, Teacher],
                                         tmp_path: Path) -> None:
    root, system, train = trained["root"], trained["system"], trained["train"]
    registry, ledger, bodies = tmp_path / "students.json", tmp_path / "ledger.db", tmp_path / "bodies"
    promote(root / "student", registry, min_agreement=0.8, shadow_sample=1.0, spot_check=0.3, min_checks=8)
    # The live threshold is put at the median confidence of the requests below, so about half of them cascade.
    student = load_student(root / "student")
    users = [e.user for e in train[:40]]
    confidences = [p.confidence for p in student.predict([Example(e.messages, "") for e in train[:40]])]
    doc = json.loads(registry.read_text())
    doc["students"][0].update(threshold=statistics.median(confidences[8:]), min_spot_checks=5, window=5)
    registry.write_text(json.dumps(doc))

    base, upstream = teacher
    settings = Settings(
        deployments=[DeploymentConfig(name="gpt-4o", provider="openai_compatible", model="gpt-4o", tier="frontier",
                                      base_url=base)],
        local=LocalConfig(enabled=False), ledger=LedgerConfig(database_url=str(ledger)),
        distill=DistillConfig(registry=str(registry), store_bodies=BodyStoreConfig(enabled=True, path=str(bodies))))
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        # shadow: the teacher answers every request; the student is compared on each
        for user in users[:8]:
            answer, headers = _ask(client, system, user)
            assert headers["x-tokenomy-distill"] == "topics shadow"
            assert headers["x-tokenomy-deployment"] == "gpt-4o" and answer == trained["answers"][user]
        assert _state(registry) == "live"
        # the student is a deployment of its own too: listed, and answering when asked for by name
        assert "distill/topics" in {m.id for m in client.models.list().data}
        direct = client.chat.completions.with_raw_response.create(
            model="distill/topics", messages=[{"role": "system", "content": system},
                                              {"role": "user", "content": users[0]}])
        assert direct.headers["x-tokenomy-deployment"] == "distill/topics"
        assert "x-tokenomy-distill" not in direct.headers
        assert direct.parse().choices[0].message.content == trained["answers"][users[0]]
        # live: confident answers come from the student, the rest cascade; a share is spot-checked
        modes: Counter[str] = Counter()
        for user in users[8:]:
            answer, headers = _ask(client, system, user)
            mode = headers["x-tokenomy-distill"].split()[1]
            modes[mode] += 1
            expected = "distill/topics" if mode == "live" else "gpt-4o"
            assert headers["x-tokenomy-deployment"] == expected
            assert answer in {"coding", "psychology", "emotion"}
        assert modes["live"] >= 3 and modes["cascade"] >= 3, modes
        assert _state(registry) == "live"
        # a request with personal data: stored bodies are redacted
        _ask(client, system, "my mail is jane@example.com, is coding hard?")
        # drift: the teacher's answers change; spot-checks disagree; the student is demoted
        upstream.drift = True
        for user in users[:40] * 3:
            _ask(client, system, user)
            if _state(registry) == "demoted":
                break
        assert _state(registry) == "demoted"
        _, headers = _ask(client, system, users[0])
        assert "x-tokenomy-distill" not in headers and headers["x-tokenomy-deployment"] == "gpt-4o"

    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT distill_mode, distill_agreed, distill_confidence, deployment, cost_pusd, "
                      "counterfactual_pusd FROM requests WHERE distill_task = 'topics'").fetchall()
    by_mode = Counter(r[0] for r in rows)
    assert by_mode["shadow"] == 8 and by_mode["live"] >= 3 and by_mode["spot"] >= 5
    assert all(r[1] == 1 for r in rows if r[0] == "shadow")
    assert all(r[1] is None and r[3] == "distill/topics" for r in rows if r[0] == "live")
    threshold = json.loads(registry.read_text())["students"][0]["threshold"]
    assert all(r[2] >= threshold for r in rows if r[0] in ("live", "spot"))
    assert all(r[2] < threshold for r in rows if r[0] == "cascade")
    live = [r for r in rows if r[0] == "live"]
    assert all(0 < r[4] < r[5] / 100 for r in live)  # priced at CPU time: under 1/100 of gpt-4o's price
    history = [h["state"] for h in json.loads(registry.read_text())["students"][0]["history"]]
    assert history == ["shadow", "live", "demoted"]

    stored = [json.loads(line) for line in (bodies / "gpt-4o.jsonl").read_text().splitlines()]
    assert len(stored) == upstream.calls  # every teacher answer, and no student answer
    assert any("[EMAIL]" in s["request"]["messages"][-1]["content"] for s in stored)
    assert "jane@example.com" not in (bodies / "gpt-4o.jsonl").read_text()

    spend = CliRunner().invoke(cli, ["spend", "--by", "deployment", "--json"],
                               env={"TOKENOMY_DATABASE_URL": str(ledger)})
    assert spend.exit_code == 0, spend.output
    groups = {g["key"]: g for g in json.loads(spend.output)["groups"]}
    assert float(groups["distill/topics"]["saving_usd"]) > 0


def test_batch_lines_take_the_same_student_step(trained: dict[str, Any], teacher: tuple[str, Teacher],
                                                tmp_path: Path) -> None:
    """One path: a batch line run by our workers is answered by a live student exactly as a live request is."""
    import io
    import time

    from tokenomy.config.settings import BatchConfig

    root, system = trained["root"], trained["system"]
    registry, ledger = tmp_path / "students.json", tmp_path / "ledger.db"
    promote(root / "student", registry, min_agreement=0.8, shadow_sample=1.0, spot_check=0.01, min_checks=8)
    doc = json.loads(registry.read_text())
    doc["students"][0].update(state="live", threshold=0.0, spot_check=0.0)  # every line confident, none checked
    registry.write_text(json.dumps(doc))
    base, upstream = teacher
    settings = Settings(
        deployments=[DeploymentConfig(name="gpt-4o", provider="openai_compatible", model="gpt-4o", tier="frontier",
                                      base_url=base)],
        local=LocalConfig(enabled=False), ledger=LedgerConfig(database_url=str(ledger)), home=str(tmp_path),
        distill=DistillConfig(registry=str(registry)), batch=BatchConfig())
    users = [e.user for e in trained["train"][:6]]
    lines = "".join(json.dumps({"custom_id": f"l{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "gpt-4o", "messages": [{"role": "system", "content": system},
                                                                         {"role": "user", "content": u}]}}) + "\n"
                    for i, u in enumerate(users))
    calls = upstream.calls
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        source = client.files.create(file=("s.jsonl", io.BytesIO(lines.encode())), purpose="batch")
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        deadline = time.monotonic() + 60
        while (found := client.batches.retrieve(batch.id)).status != "completed":
            assert time.monotonic() < deadline and found.status not in ("failed", "cancelled"), found
            time.sleep(0.1)
        output = [json.loads(x) for x in client.files.content(str(found.output_file_id)).text.splitlines()]
    assert upstream.calls == calls  # no line reached the teacher
    assert {o["response"]["body"]["model"] for o in output} == {"distill/topics"}
    rows = sqlite3.connect(ledger).execute(
        "SELECT endpoint, distill_mode, deployment FROM requests WHERE distill_task = 'topics'").fetchall()
    assert rows and set(rows) == {("batch.chat.completions", "live", "distill/topics")} and len(rows) == len(users)


def test_a_student_promoted_while_the_gateway_runs_serves_without_a_restart(
        trained: dict[str, Any], teacher: tuple[str, Teacher], tmp_path: Path) -> None:
    root, system, train = trained["root"], trained["system"], trained["train"]
    registry = tmp_path / "students.json"
    base, _ = teacher
    settings = Settings(
        deployments=[DeploymentConfig(name="gpt-4o", provider="openai_compatible", model="gpt-4o", tier="frontier",
                                      base_url=base)],
        local=LocalConfig(enabled=False), ledger=LedgerConfig(database_url=str(tmp_path / "ledger.db")),
        distill=DistillConfig(registry=str(registry)))
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        _, headers = _ask(client, system, train[0].user)
        assert "x-tokenomy-distill" not in headers  # nothing promoted yet
        promoted = CliRunner().invoke(cli, ["distill", "promote", str(root / "student"), "--min-agreement", "0.8",
                                            "--shadow-sample", "1.0", "--url", url, "--json"],
                                      env={"TOKENOMY_DISTILL_REGISTRY": str(registry)})
        assert promoted.exit_code == 0, promoted.output
        # the command returned once the running gateway listed the student: its next request is shadowed
        assert json.loads(promoted.output)["gateway"] == url.removesuffix("/v1")
        _, headers = _ask(client, system, train[1].user)
        assert headers["x-tokenomy-distill"] == "topics shadow"
        health = json.loads(urllib.request.urlopen(url.removesuffix("/v1") + "/healthz", timeout=5).read())
        assert [(s["task"], s["state"]) for s in health["students"]] == [("topics", "shadow")]
