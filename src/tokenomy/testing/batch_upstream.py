"""A stand-in for the providers' own batch APIs, which no real server offers offline: OpenAI's Files + Batches and
Anthropic's Message Batches, in their documented shapes, answering every request the way the fault upstream's
``echo`` model does (usage counted in words). A batch finishes after ``polls`` status checks; a request whose model
starts with ``error-`` fails with a 400. Tests use it to drive pass-through batches end to end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class _Job:
    id: str
    requests: list[dict[str, Any]]  # {custom_id, body}
    metadata: dict[str, Any] | None = None
    polls: int = 0
    cancelled: bool = False
    output: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            return content if isinstance(content, str) else " ".join(
                str(p.get("text", "")) for p in content or [] if isinstance(p, dict))
    return ""


def _words(body: dict[str, Any]) -> int:
    system = body.get("system")
    extra = len(str(system).split()) if system else 0
    return extra + sum(len(str(m.get("content") or "").split()) + 4 for m in body.get("messages") or [])


class BatchUpstream:
    def __init__(self, polls: int = 2) -> None:
        self.polls = polls
        self.files: dict[str, bytes] = {}
        self.openai: dict[str, _Job] = {}
        self.anthropic: dict[str, _Job] = {}
        self.created = 0  # batches created, both APIs

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{id}/content", self.content)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches", self.list)
        app.router.add_get("/v1/batches/{id}", self.retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self.cancel)
        app.router.add_post("/v1/messages/batches", self.msg_create)
        app.router.add_get("/v1/messages/batches/{id}", self.msg_retrieve)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self.msg_cancel)
        app.router.add_get("/v1/messages/batches/{id}/results", self.msg_results)
        return app

    # --- OpenAI ---------------------------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        file_id = f"file-up{len(self.files)}"
        self.files[file_id] = upload.file.read()
        return _json({"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "purpose": "batch",
                      "created_at": int(time.time()), "filename": upload.filename, "status": "processed"})

    async def content(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["id"]])

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        lines = [orjson.loads(line) for line in self.files[body["input_file_id"]].splitlines() if line.strip()]
        job = _Job(id=f"batch_up{len(self.openai)}", metadata=body.get("metadata"),
                   requests=[{"custom_id": line["custom_id"], "body": line["body"]} for line in lines])
        self.openai[job.id] = job
        self.created += 1
        return _json(self._openai_batch(job, body.get("input_file_id")))

    async def list(self, request: web.Request) -> web.Response:
        return _json({"object": "list", "data": [self._openai_batch(j, None) for j in self.openai.values()],
                      "has_more": False})

    async def retrieve(self, request: web.Request) -> web.Response:
        job = self.openai[request.match_info["id"]]
        job.polls += 1
        return _json(self._openai_batch(job, None))

    async def cancel(self, request: web.Request) -> web.Response:
        job = self.openai[request.match_info["id"]]
        job.cancelled = True
        return _json(self._openai_batch(job, None))

    def _openai_batch(self, job: _Job, input_file_id: str | None) -> dict[str, Any]:
        status = "in_progress"
        out_id = err_id = None
        if job.cancelled:
            status = "cancelled"
        elif job.polls >= self.polls:
            status = "completed"
            if not job.output and not job.errors:
                self._run_openai(job)
            out_id, err_id = (f"file-{job.id}-out" if job.output else None), (
                f"file-{job.id}-err" if job.errors else None)
            if out_id:
                self.files[out_id] = b"".join(orjson.dumps(r) + b"\n" for r in job.output)
            if err_id:
                self.files[err_id] = b"".join(orjson.dumps(r) + b"\n" for r in job.errors)
        return {"id": job.id, "object": "batch", "endpoint": "/v1/chat/completions", "status": status,
                "input_file_id": input_file_id, "output_file_id": out_id, "error_file_id": err_id,
                "metadata": job.metadata, "created_at": int(time.time()), "completion_window": "24h"}

    def _run_openai(self, job: _Job) -> None:
        for i, req in enumerate(job.requests):
            body = req["body"]
            row: dict[str, Any] = {"id": f"batch_req_{i}", "custom_id": req["custom_id"], "error": None}
            if str(body.get("model", "")).startswith("error-"):
                row["response"] = {"status_code": 400, "request_id": f"r{i}", "body": {"error": {
                    "message": "scripted 400", "type": "invalid_request_error", "param": None, "code": None}}}
                job.errors.append(row)
                continue
            answer = f"echo: {_text(body)}"
            prompt, completion = _words(body), len(answer.split())
            row["response"] = {"status_code": 200, "request_id": f"r{i}", "body": {
                "id": f"chatcmpl-{i}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}}
            job.output.append(row)

    # --- Anthropic ------------------------------------------------------------------------------------------------

    async def msg_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        job = _Job(id=f"msgbatch_{len(self.anthropic)}",
                   requests=[{"custom_id": r["custom_id"], "body": r["params"]} for r in body["requests"]])
        self.anthropic[job.id] = job
        self.created += 1
        return _json(self._message_batch(job, request))

    async def msg_retrieve(self, request: web.Request) -> web.Response:
        job = self.anthropic[request.match_info["id"]]
        job.polls += 1
        return _json(self._message_batch(job, request))

    async def msg_cancel(self, request: web.Request) -> web.Response:
        job = self.anthropic[request.match_info["id"]]
        job.cancelled = True
        return _json(self._message_batch(job, request))

    async def msg_results(self, request: web.Request) -> web.Response:
        job = self.anthropic[request.match_info["id"]]
        rows = []
        for req in job.requests:
            params = req["params"] if "params" in req else req["body"]
            if job.cancelled:
                rows.append({"custom_id": req["custom_id"], "result": {"type": "canceled"}})
                continue
            answer = f"echo: {_text(params)}"
            rows.append({"custom_id": req["custom_id"], "result": {"type": "succeeded", "message": {
                "id": f"msg_{req['custom_id']}", "type": "message", "role": "assistant", "model": params.get("model"),
                "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                "usage": {"input_tokens": _words(params), "output_tokens": len(answer.split()),
                          "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}})
        return web.Response(body=b"".join(orjson.dumps(r) + b"\n" for r in rows))

    def _message_batch(self, job: _Job, request: web.Request) -> dict[str, Any]:
        ended = job.cancelled or job.polls >= self.polls
        base = f"{request.scheme}://{request.host}"
        return {"id": job.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "results_url": f"{base}/v1/messages/batches/{job.id}/results" if ended else None,
                "request_counts": {"processing": 0 if ended else len(job.requests)}}


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
