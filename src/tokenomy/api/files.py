"""/v1/files: upload (multipart, ``purpose=batch``, ``.jsonl``), list, retrieve, content, delete — OpenAI's shapes.

An upload is checked line by line before it is kept (``batch/validate.py``): a bad file is refused with a 400 that
names its first bad lines, so a batch never starts on a file that cannot run. Its size limit holds on the bytes read,
not on what the headers declare: the body is cut off with a 413 as soon as it passes the limit (on 939b14d a 1 GB
chunked upload was spooled to disk before the check), and the check streams (memory bounded by the longest line).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import IO, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive

from tokenomy.api.responses import json_response, principal_of, request_id
from tokenomy.batch.files import CHUNK
from tokenomy.batch.objects import FileRecord, new_id
from tokenomy.batch.service import BatchService
from tokenomy.batch.validate import check_lines, raise_problems
from tokenomy.errors import InvalidRequestError, NotFoundError, RequestTooLargeError, TokenomyError
from tokenomy.gateway.core import Gateway

PURPOSES = ("batch",)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the purpose field, beside the file itself


def _service(request: Request) -> BatchService:
    gateway: Gateway = request.app.state.gateway
    return gateway.batches


def owner(request: Request) -> str | None:
    """Whose files and batches a caller sees: a virtual key only its own; the master key (or an open gateway)
    everyone's. Another key's object is a 404, as if it did not exist."""
    return principal_of(request).key_id


def visible(record_owner: str | None, viewer: str | None) -> bool:
    return viewer is None or record_owner == viewer


async def create_file(request: Request) -> Response:
    service = _service(request)
    limit = service.config.max_file_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise RequestTooLargeError(f"the upload is {declared} bytes; files may be at most {limit} bytes")
    try:
        form = await Request(request.scope, _counted(request.receive, limit + FORM_OVERHEAD)).form(
            max_files=1, max_fields=8)
    except TokenomyError:
        raise
    except Exception as exc:  # starlette/python-multipart raise their own parse errors
        raise InvalidRequestError(f"the body must be multipart/form-data with 'file' and 'purpose': {exc}") from exc
    try:
        upload, purpose = form.get("file"), form.get("purpose")
        if purpose not in PURPOSES:
            raise InvalidRequestError(f"'purpose' must be 'batch' here (got {purpose!r})", param="purpose")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError("'file' must be an uploaded file", param="file")
        name = os.path.basename(upload.filename or "upload.jsonl")
        if not name.endswith(".jsonl"):
            raise InvalidRequestError(f"a batch file must be JSON lines named *.jsonl (got {name!r})", param="file")
        record = await asyncio.to_thread(_keep, service, upload.file, name, limit, owner(request))
    finally:
        await form.close()
    return json_response(record.to_openai(), headers={"x-request-id": request_id(request)})


def _keep(service: BatchService, source: IO[bytes], name: str, limit: int, key_id: str | None) -> FileRecord:
    size = source.seek(0, os.SEEK_END)
    if size > limit:
        raise RequestTooLargeError(f"{name} is {size} bytes; files may be at most {limit} bytes")
    source.seek(0)
    check = check_lines(source, max_lines=service.config.max_lines)
    raise_problems(check.problems, name, check.more_problems)
    source.seek(0)
    file_id = new_id("file", sep="-")
    written = service.blobs.copy_in(file_id, source)  # type: ignore[arg-type]
    record = FileRecord(id=file_id, purpose="batch", filename=name, bytes=written, lines=check.lines,
                        created_at=int(time.time()), key_id=key_id)
    service.store.add_file(record)
    return record


def _counted(receive: Receive, max_bytes: int) -> Receive:
    """``receive`` that refuses (413) a body once more than ``max_bytes`` of it have been read."""
    read = 0

    async def counted() -> Message:
        nonlocal read
        message = await receive()
        read += len(message.get("body", b""))
        if read > max_bytes:
            raise RequestTooLargeError(f"the upload passed {max_bytes} bytes; files may be at most "
                                       f"{max_bytes - FORM_OVERHEAD} bytes")
        return message

    return counted


async def list_files(request: Request) -> Response:
    service = _service(request)
    query = request.query_params
    limit = _limit(query.get("limit"), default=10000, most=10000)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("'order' must be 'asc' or 'desc'", param="order")
    found = await asyncio.to_thread(service.store.list_files, query.get("purpose"), query.get("after"), limit + 1,
                                    order, owner(request))
    return json_response(page([f.to_openai() for f in found], limit))


async def retrieve_file(request: Request) -> Response:
    record = await _file(request)
    return json_response(record.to_openai())


async def file_content(request: Request) -> Response:
    service = _service(request)
    record = await _file(request)
    handle = await asyncio.to_thread(service.blobs.open, record.id)

    async def body() -> Any:
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    return StreamingResponse(body(), media_type="application/jsonl",
                             headers={"content-length": str(record.bytes)})


async def delete_file(request: Request) -> Response:
    service = _service(request)
    record = await _file(request)
    await asyncio.to_thread(service.store.delete_file, record.id)
    await asyncio.to_thread(service.blobs.delete, record.id)
    return json_response({"id": record.id, "object": "file", "deleted": True})


async def _file(request: Request) -> FileRecord:
    service = _service(request)
    file_id = request.path_params["file_id"]
    record = await asyncio.to_thread(service.store.get_file, file_id)
    if record is None or not visible(record.key_id, owner(request)):
        raise NotFoundError(f"no such file: {file_id!r}", param="file_id")
    return record


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """OpenAI's cursor page: ``limit`` items (one more was fetched to know ``has_more``)."""
    shown = items[:limit]
    return {"object": "list", "data": shown, "first_id": shown[0]["id"] if shown else None,
            "last_id": shown[-1]["id"] if shown else None, "has_more": len(items) > limit}


def _limit(text: str | None, *, default: int, most: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise InvalidRequestError(f"'limit' must be an integer in [1, {most}]", param="limit")
    return int(text)
