"""A live distilled student answers a request: one call on its deployment (priced at its CPU time) in the ledger.
The student stands in for the model the client asked for (the operator promoted it for that traffic), so the
caller's model rules are those of the model asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenomy.distill.serve import ServedStudent
from tokenomy.errors import TokenomyError
from tokenomy.gateway.recorders import Recorder
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import Answer, StreamAnswer, cost_headers, replay, served_headers
from tokenomy.ledger.trace import RequestTrace
from tokenomy.wire.stream import replay_chunks
from tokenomy.wire.validation import ValidChat

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway


async def serve_student(gw: Gateway, chat: ValidChat, trace: RequestTrace, student: ServedStudent,
                        caller: Caller, record: Recorder) -> Answer | StreamAnswer:
    """Admitted like any call (RPM/TPM, the budget at the student's price), then answered by the student."""
    mark = trace.distill
    assert mark is not None
    try:
        ticket = await gw.control.admit_chat(caller.principal, chat, trace.id, [student.deployment])
    except TokenomyError as exc:
        record(trace, exc.status, exc)
        raise
    counter = gw.accountant.counter
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    if counter is not None:
        usage = {"prompt_tokens": counter.count_messages(chat.body.get("messages") or [], chat.typed.model),
                 "completion_tokens": counter.count_completion(mark.answer or "", None, chat.typed.model)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    completion = gw.students.completion(student, mark, chat.body, usage)
    trace.begin_call(student.deployment).complete(completion)
    entry = record(trace, 200)
    await gw.control.settle(ticket, entry)
    await record.acknowledge(entry)
    config = student.deployment
    headers = {**served_headers(trace.id, config.model, config.tier, config.name, trace.cache_status),
               "x-tokenomy-distill": f"{mark.task} live", "x-tokenomy-distill-confidence": f"{mark.confidence:.4f}"}
    if trace.client_request_id:
        headers["x-client-request-id"] = trace.client_request_id
    if not chat.stream:
        return Answer(completion, entry, {**headers, **cost_headers(entry)})
    chunks = replay_chunks(completion, include_usage=chat.include_usage)
    return StreamAnswer(replay(chunks), {**headers, "cache-control": "no-cache"})
