"""The semantic cache inside the gateway: which requests it may answer, probing before the upstream call, and
remembering (and learning from) the answer after it.

- Only requests the exact cache would store are eligible (same determinism rules and opt-outs), and only when the
  last message is a user turn with text. The *context* is the exact-cache key of the request with that text
  blanked, so system prompt, earlier turns, model, parameters and namespace must all match exactly.
- A semantic entry points at the exact-cache key of its original request; the answer is stored once, by the exact
  cache. An expired answer makes the hit a miss.
- Near misses teach the threshold (``online``): when the nearest entry was not served, the fresh upstream answer is
  compared with the entry's cached answer. Equal text, or answer embeddings at least ``agreement_cosine`` apart,
  means serving it would have been right. No user action is needed; deterministic requests make this label sound.

- Entries outlive the process through an ``EntryLog``: ``SharedEntries`` (a Redis stream every replica follows)
  or ``SQLiteEntries`` (a table beside the exact cache's answers in ``cache.db``). Each loads what it holds on
  ``start`` and is told of every entry added here and every entry removed by a user's report.
- The verified policy (the default, ``cache.semantic.policy: verified``, issue 22): a lookup the cache chose to
  verify goes upstream like a miss (its ledger row says ``cache_status = semantic-verify``); its fresh answer is
  compared with the candidate entry's cached answer (exactly for structured answers and equal text, else by the
  answer-equivalence check) and the label is evidence for the candidate's region (``evidence.py``), shared and kept
  through the same ``EntryLog`` as the entries.
- Users can report a served semantic hit (``POST /v1/feedback`` with its ``x-request-id``): the label moves the
  online threshold and a wrong entry is dropped. The last ``remember_served`` hits are kept for this.

Failures of the semantic layer never fail a request: they are logged and the request goes upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokenomy.cache.exact import ExactCache
from tokenomy.cache.key import CacheDecision, request_key
from tokenomy.cache.semantic.cache import Match, SemanticCache
from tokenomy.cache.semantic.evidence import Label
from tokenomy.wire.chat import ANTHROPIC_REQUEST
from tokenomy.wire.completion import answer_text
from tokenomy.wire.prompt import sole_prompt

log = logging.getLogger("tokenomy.cache.semantic")

Embedder = Callable[[], Awaitable[Any]]  # returns the gateway's AsyncEmbedder (MiniLM, shared with /v1/embeddings)


class EntryLog(Protocol):
    """Where entries are kept beyond this process's index (see ``setup.build_semantic_layer``)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def publish_add(self, context: str, text: str, vector: Any, answer_key: str) -> None: ...

    async def publish_remove(self, context: str, text: str) -> None: ...

    async def publish_label(self, label: Label) -> None:
        """A verified label (evidence, ``evidence.py``): kept and shared like the entries."""


@dataclass(slots=True)
class Probe:
    context: str
    text: str
    vector: Any
    match: Match | None
    answer: dict[str, Any] | None = None  # the exact-cache entry served for a semantic hit


def context_key(body: Mapping[str, Any], namespace: str) -> str:
    """Everything but the last message's content (the Anthropic request a Messages-door body carries likewise)."""
    context = {**body, "messages": _without_last_content(body["messages"])}
    native = body.get(ANTHROPIC_REQUEST)
    if isinstance(native, dict) and isinstance(native.get("request"), dict):
        request = native["request"]
        context[ANTHROPIC_REQUEST] = {**native, "request": {**request, "messages": _without_last_content(
            request.get("messages") or [{}])}}
    return request_key(context, f"semantic:{namespace}")


def _without_last_content(messages: Any) -> list[Any]:
    found = list(messages)
    found[-1] = {**found[-1], "content": None}
    return found


class SemanticLayer:
    def __init__(self, cache: SemanticCache, exact: ExactCache, embedder: Embedder, *,
                 agreement_cosine: float, remember_served: int = 10_000, entries: EntryLog | None = None) -> None:
        self._cache, self._exact, self._embedder = cache, exact, embedder
        self.entries = entries
        self._agreement = agreement_cosine
        self._served: OrderedDict[str, tuple[Match, str | None]] = OrderedDict()  # request id -> hit, its key
        self._publishing: set[asyncio.Task[None]] = set()
        self._remember_served = remember_served

    def served(self, request_id: str, match: Match, owner: str | None = None) -> None:
        """Remember a served semantic hit so its caller (the virtual key ``owner``) can report on it."""
        self._served[request_id] = (match, owner)
        while len(self._served) > self._remember_served:
            self._served.popitem(last=False)

    def report(self, request_id: str, correct: bool, viewer: str | None = None) -> bool:
        """A user's verdict on a served semantic hit; False when that request is not (or no longer) remembered, or
        was another key's (a virtual key ``viewer`` reports only on its own hits; the master key on any)."""
        served = self._served.get(request_id)
        if served is None or (viewer is not None and served[1] != viewer):
            return False
        match = self._served.pop(request_id)[0]
        self._cache.feedback(match, correct)
        if self.entries is not None and match.served and not correct:
            self._publish(self.entries.publish_remove(match.entry.context, match.entry.text))
            if self._cache.evidence is not None:  # a reported wrong hit is evidence (feedback observed it here)
                self._publish(self.entries.publish_label(Label(match.score, True, True, match.kind)))
        return True

    def _publish(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def start(self) -> None:
        if self.entries is not None:
            await self.entries.start()

    async def aclose(self) -> None:
        for failed in await asyncio.gather(*self._publishing, return_exceptions=True):  # removals still queued
            if isinstance(failed, Exception):
                log.error("semantic cache removal not published: %s", failed)
        if self.entries is not None:
            await self.entries.aclose()

    @property
    def cache(self) -> SemanticCache:
        return self._cache

    async def probe(self, body: Mapping[str, Any], decision: CacheDecision, namespace: str) -> Probe | None:
        """Look the request up; ``Probe.answer`` is set when a paraphrase may be served. None when ineligible."""
        if not decision.read:
            return None
        text = sole_prompt(body)
        if text is None:
            return None
        try:
            embedder = await self._embedder()
            vector = (await embedder.embed([text])).vectors[0]
            probe = Probe(context_key(body, namespace), text, vector, None)
            probe.match = self._cache.lookup(probe.context, text, vector)
            if probe.match is not None and probe.match.served:
                probe.answer = await self._exact.get(CacheDecision(probe.match.entry.answer_key, True, False))
                if probe.answer is None:  # its answer expired or was evicted: drop the entry
                    self._cache.remove(probe.match.entry.id)
            return probe
        except Exception:
            log.exception("semantic cache lookup failed; serving without it")
            return None

    async def remember(self, probe: Probe | None, decision: CacheDecision, completion: Mapping[str, Any]) -> None:
        """After a fresh answer: store the entry, and label the near miss (if any) by answer agreement."""
        if probe is None or answer_text(completion) is None:
            return
        try:
            self._cache.insert(probe.context, probe.text, probe.vector, decision.key)
            if self.entries is not None:
                await self.entries.publish_add(probe.context, probe.text, probe.vector, decision.key)
            match = probe.match
            if match is None or match.served:
                return
            if self._cache.evidence is not None and not match.verify:
                return  # the verified policy: not a would-be hit, nothing to learn
            cached = await self._exact.get(CacheDecision(match.entry.answer_key, True, False))
            if cached is None:
                return
            agree, exact = await self._agree(cached["completion"], completion)
            if self._cache.evidence is None:
                self._cache.feedback(match, agree)
                return
            label = self._cache.verified(match, agree, exact=exact)
            if self.entries is not None and label is not None:
                if match.servable and not agree:  # verified wrong where it would have been served: dropped
                    await self.entries.publish_remove(match.entry.context, match.entry.text)
                await self.entries.publish_label(label)
        except Exception:
            log.exception("semantic cache update failed")

    async def _agree(self, cached: Mapping[str, Any], fresh: Mapping[str, Any]) -> tuple[bool, bool]:
        """Do the two answers say the same, and was that decided exactly? Structured answers (tool calls, several
        choices, no text) and equal texts are compared exactly; other texts by the answer-equivalence check
        (``answers_agree``), whose own error the evidence accounts for."""
        a, b = answer_text(cached), answer_text(fresh)
        if a is None or b is None:
            return _structured(cached) == _structured(fresh), True
        if " ".join(a.split()).lower() == " ".join(b.split()).lower():
            return True, True
        embedder = await self._embedder()
        vectors = (await embedder.embed([a, b])).vectors
        return answers_agree(a, b, float(vectors[0] @ vectors[1]), self._agreement), False


def _structured(completion: Mapping[str, Any]) -> Any:
    """What a completion answers, without what differs between two calls (ids, usage, timing)."""
    choices = completion.get("choices")
    if not isinstance(choices, list):
        return None
    return [_message(c.get("message") if isinstance(c, dict) else None) for c in choices]


def _message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {} if isinstance(call, dict) else {}
        arguments = function.get("arguments")
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        calls.append((function.get("name"), arguments))  # the call's id differs on every call: left out
    content = message.get("content")
    return (" ".join(content.split()).lower() if isinstance(content, str) else content, calls)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_YES_NO = re.compile(r"^\W*(yes|no)\b")
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|can't|don't|doesn't|isn't|aren't|won't|none)\b", re.I)


def answers_agree(a: str, b: str, cosine: float, agreement_cosine: float) -> bool:
    """The cheap answer-equivalence check for free text: the answers' embeddings at least ``agreement_cosine``
    alike, the same numbers, the same leading yes/no and as many negations (embeddings blur "3" vs "4" and "is" vs
    "is not").
    Measured in ``bench/semantic_checker.py`` (docs/cache.md)."""
    if cosine < agreement_cosine:
        return False
    if sorted(_NUMBER.findall(a)) != sorted(_NUMBER.findall(b)):
        return False
    if _YES_NO.findall(a[:12].lower())[:1] != _YES_NO.findall(b[:12].lower())[:1]:
        return False
    return len(_NEGATION.findall(a)) == len(_NEGATION.findall(b))
