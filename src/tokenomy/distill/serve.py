"""Promoted students in the gateway: shadow, live with a cascade, spot-checks and automatic demotion.

A chat request that matches a promoted task (its selector: the system prompt's hash, the route = the model name
asked for, or ``metadata.tag``) is handled by that task's student before anything else (:meth:`StudentSet.before`):

- ``shadow``: for a ``shadow_sample`` share of requests the student predicts, the teacher answers as usual, and the
  two are compared when the request is recorded (:meth:`StudentSet.observe`); the comparison is in the ledger
  (``requests.distill_*``). After ``min_checks`` comparisons agreeing ≥ ``min_agreement`` the student goes live.
- ``live``: the student predicts every request. Confident (≥ ``threshold``): it answers, as the deployment
  ``distill/<task>`` on the small tier, priced at its CPU time, so ``spend`` shows the saving against the model the
  client asked for — except a ``spot_check`` share, which the teacher answers and the student is compared against.
  Not confident: the request cascades to the normal route (``distill_mode = cascade``, compared too, not counted for
  drift). When the last ``window`` spot-checks agree < ``min_agreement`` the student is demoted.

The student runs before the teacher (so its answer is known when the ledger row is written): a head student adds a
few milliseconds to the sampled shadow requests; a LoRA student the time of one short generation.

A student promoted while the gateway runs is picked up without a restart: at most every ``RELOAD_S`` seconds a
request (or ``/healthz``) looks at the registry file's modification time; when another process changed it, the new
registry is read and its new students loaded in a background thread, then swapped in (students already served keep
their state and their checks). Such a student serves its task's traffic (shadow, then live); being listed in
``/v1/models`` and asked for by name (``distill/<task>``) as a deployment of its own needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.config.settings import DeploymentConfig, PriceOverride, Settings, data_home
from tokenomy.distill.agreement import agrees
from tokenomy.distill.examples import Example, prompt_messages
from tokenomy.distill.lora_base import LoraBases
from tokenomy.distill.registry import Promotion, load_registry, registry_path, save_registry
from tokenomy.distill.selector import LiveRequest, Selector
from tokenomy.distill.student import Prediction, Student, load_student
from tokenomy.errors import UpstreamError
from tokenomy.ledger.trace import DistillMark, RequestTrace
from tokenomy.providers.base import ChatCall, ChunkStream, Completion
from tokenomy.providers.registry import Deployment
from tokenomy.wire.stream import replay_chunks

log = logging.getLogger("tokenomy.distill")


@dataclass
class ServedStudent:
    promotion: Promotion
    student: Student
    selector: Selector
    deployment: DeploymentConfig
    executor: ThreadPoolExecutor
    shadow_checks: deque[bool]  # the last max(min_checks, window) shadow comparisons, newest last
    spot_checks: deque[bool]  # the last ``window`` live spot-checks
    rng: random.Random = field(default_factory=random.Random)

    async def predict(self, chat_body: Mapping[str, Any]) -> Prediction:
        example = Example(messages=prompt_messages(chat_body.get("messages")), answer="")
        loop = asyncio.get_running_loop()
        predictions = await loop.run_in_executor(self.executor, self.student.predict, [example])
        return predictions[0]


def student_deployment(p: Promotion) -> DeploymentConfig:
    price = PriceOverride(gpu_hour_usd=Decimal(p.gpu_hour_usd), tokens_per_s=Decimal(p.tokens_per_s)) \
        if p.gpu_hour_usd and p.tokens_per_s else None
    return DeploymentConfig(name=p.deployment, provider="local", model=p.deployment, tier="small", price=price)


RELOAD_S = 2.0  # how often a request may look at the registry file for a promotion made while the gateway runs


def _serve(p: Promotion, bases: LoraBases) -> ServedStudent:
    """Load a promoted student (blocking: seconds); LoRA students on the same base GGUF share one loaded model."""
    student = load_student(Path(p.path), threads=1, bases=bases)
    log.info("distill: serving %s student for %s (%s) in %s mode", p.kind, p.task, p.where, p.state)
    return ServedStudent(p, student, Selector.parse(p.where), student_deployment(p),
                         ThreadPoolExecutor(1, thread_name_prefix=f"student-{p.task}"),
                         deque(maxlen=max(p.min_checks, p.window)), deque(maxlen=p.window), random.Random(p.task))


def _identity(p: Promotion) -> tuple[str, str, int]:
    """A promotion is the same one while its task, student and promotion time are (its state may move)."""
    return p.task, p.path, p.promoted_at


class StudentSet:
    def __init__(self, served: list[ServedStudent], path: Path, bases: LoraBases | None = None) -> None:
        self._served = served
        self._path = path
        self._bases = bases or LoraBases()
        self._seen = _stamp(path)  # the registry file as last read or written here
        self._next_look = time.monotonic() + RELOAD_S
        self._reloading = threading.Lock()

    @classmethod
    def load(cls, settings: Settings, env: Mapping[str, str]) -> StudentSet | None:
        """The promoted students that are not demoted (blocking: run in a worker thread), watched for new
        promotions; None when the gateway serves no students (``distill.serve_students: false``)."""
        if not settings.distill.serve_students:
            return None
        path = registry_path(settings.distill.registry, data_home(settings, env))
        bases = LoraBases()
        return cls([_serve(p, bases) for p in load_registry(path) if p.state != "demoted"], path, bases)

    def _look(self) -> None:
        """At most every RELOAD_S: when the registry file changed, reload it in a background thread."""
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + RELOAD_S
        stamp = _stamp(self._path)
        if stamp != self._seen and self._reloading.acquire(blocking=False):
            self._seen = stamp
            threading.Thread(target=self._reload, name="student-reload", daemon=True).start()

    def _reload(self) -> None:
        """Serve the registry as it is now: students already served stay as they are (state, checks), new ones
        are loaded, removed or demoted ones dropped. A registry or student that cannot be read leaves the set
        as it was (logged)."""
        try:
            current = {_identity(s.promotion): s for s in self._served}
            wanted = [p for p in load_registry(self._path) if p.state != "demoted"]
            served = [current.get(_identity(p)) or _serve(p, self._bases) for p in wanted]
            kept = {id(s) for s in served}
            for gone in (s for s in self._served if id(s) not in kept):
                gone.executor.shutdown(wait=False, cancel_futures=True)
                log.warning("distill: the %s student for %s is no longer served", gone.promotion.kind,
                            gone.promotion.task)
            self._served = served
        except Exception:  # a bad registry or student must not take the gateway down: it keeps what it serves
            log.exception("distill: cannot load the changed registry %s; serving the students loaded before",
                          self._path)
        finally:
            self._reloading.release()

    @property
    def students(self) -> list[ServedStudent]:
        return list(self._served)

    def match(self, body: Mapping[str, Any]) -> ServedStudent | None:
        """The task's student for a request (None for a request that asks for a student by name: it is no teacher
        traffic to shadow or replace)."""
        self._look()
        if not self._served:
            return None
        model = str(body.get("model") or "")
        if any(model == s.deployment.model for s in self._served):
            return None
        record = LiveRequest(model=model, body=body)
        for served in self._served:
            if served.promotion.state in ("shadow", "live") and served.selector.matches(record):
                return served
        return None

    async def before(self, served: ServedStudent, body: Mapping[str, Any]) -> DistillMark | None:
        """What the student does for this request (None: nothing; the request goes on untouched). A student that
        fails (its runtime raised) leaves the request to the normal route; the failure is logged."""
        p = served.promotion
        if p.state == "shadow" and served.rng.random() >= p.shadow_sample:
            return None
        try:
            prediction = await served.predict(body)
        except Exception:  # the ML runtime's own errors: the teacher answers instead
            log.exception("distill: the %s student failed; the request goes to the normal route", p.task)
            return None
        if p.state == "shadow":
            return DistillMark(p.task, "shadow", prediction.answer, prediction.confidence)
        if prediction.confidence < p.threshold:
            mode = "cascade"
        else:
            mode = "spot" if served.rng.random() < p.spot_check else "live"
        return DistillMark(p.task, mode, prediction.answer, prediction.confidence)

    def completion(self, served: ServedStudent, mark: DistillMark, body: Mapping[str, Any],
                   usage: dict[str, int]) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": served.deployment.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": mark.answer or ""}}],
                "usage": usage}

    def observe(self, trace: RequestTrace) -> None:
        """At record time: compare the student with the teacher's served answer; move states when due."""
        mark = trace.distill
        served_call = trace.served
        if mark is None or mark.mode == "live" or served_call is None or served_call.outcome != "ok":
            return
        served = next((s for s in self._served if s.promotion.task == mark.task), None)
        if served is None or mark.answer is None:
            return
        teacher = "".join(served_call.text)
        mark.agreed = agrees(served.promotion.rule, mark.answer, teacher)
        if mark.mode == "shadow" and served.promotion.state == "shadow":
            served.shadow_checks.append(mark.agreed)
            self._transition(served, served.shadow_checks)
        elif mark.mode == "spot" and served.promotion.state == "live":
            served.spot_checks.append(mark.agreed)
            self._transition(served, served.spot_checks)

    def _transition(self, served: ServedStudent, checks: deque[bool]) -> None:
        p = served.promotion
        agreement = sum(checks) / len(checks)
        if p.state == "shadow" and len(checks) >= p.min_checks and agreement >= p.min_agreement:
            p.move("live", agreement=round(agreement, 4), checks=len(checks), reason="shadow agreement reached")
            log.warning("distill: %s goes live (shadow agreement %.3f over %d)", p.task, agreement, len(checks))
        elif p.state == "live" and len(checks) >= p.min_spot_checks and agreement < p.min_agreement:
            p.move("demoted", agreement=round(agreement, 4), checks=len(checks), reason="spot-check drift")
            log.warning("distill: %s demoted (spot-check agreement %.3f over %d)", p.task, agreement, len(checks))
        else:
            return
        self._save()

    def _save(self) -> None:
        current = {p.task: p for p in load_registry(self._path)}
        for served in self._served:
            current[served.promotion.task] = served.promotion
        save_registry(self._path, list(current.values()))
        self._seen = _stamp(self._path)  # our own write is no promotion to reload

    def deployments(self) -> list[Deployment]:
        """Each student as a deployment on the small tier (``distill/<task>``: listed in /v1/models, and a client
        may ask for it by name) — except a student promoted ``--to`` a deployment, which that deployment's shared
        base serves under the same name (distill/attach.py)."""
        return [Deployment(config=s.deployment, provider=StudentProvider(self, s)) for s in self._served
                if s.promotion.serve_on is None]

    def served(self) -> list[dict[str, Any]]:
        self._look()  # a health check also picks up a promotion, so `distill promote --url` sees it without traffic
        return [{"task": s.promotion.task, "kind": s.promotion.kind, "state": s.promotion.state,
                 "promoted_at": s.promotion.promoted_at} for s in self._served]

    def close(self) -> None:
        for served in self._served:
            served.executor.shutdown(wait=False, cancel_futures=True)


def _stamp(path: Path) -> tuple[int, int] | None:
    """The registry file's modification time and size; None when there is none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


class StudentProvider:
    """The Provider seam over a student: its answer as a chat completion (or that completion replayed as a
    stream), usage counted offline."""

    def __init__(self, students: StudentSet, served: ServedStudent) -> None:
        self._students = students
        self._served = served
        self._counter: Any = None

    async def chat(self, call: ChatCall) -> Completion | ChunkStream:
        try:
            prediction = await self._served.predict(call.body)
        except Exception as exc:  # the ML runtime's own errors, converted at this boundary
            raise UpstreamError(f"the distilled student failed: {exc}", deployment=self._served.deployment.name) \
                from exc
        if self._counter is None:
            from tokenomy.tokens.counter import TokenCounter

            self._counter = TokenCounter()
        model = self._served.deployment.model
        prompt = self._counter.count_messages(call.body.get("messages") or [], model)
        output = self._counter.count_text(prediction.answer, model)
        mark = DistillMark(self._served.promotion.task, "direct", prediction.answer, prediction.confidence)
        completion = self._students.completion(self._served, mark, call.body, {
            "prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output})
        if not call.stream:
            return completion
        return _replay(replay_chunks(completion, include_usage=True))


async def _replay(chunks: list[dict[str, Any]]) -> ChunkStream:
    for chunk in chunks:
        yield chunk
