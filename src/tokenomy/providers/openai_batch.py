"""OpenAI's Batch API for pass-through batches: upload the lines as a ``batch`` file, create the batch, poll it,
read its output and error files. The batch carries ``metadata.tokenomy_batch`` so a gateway that crashed between
creating it and remembering it finds it again instead of submitting twice."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tokenomy.providers.batch_api import RemoteRequest, RemoteResult, RemoteStatus, line_of, remote_id
from tokenomy.providers.batch_http import BatchHTTP, jsonl

_DONE = ("completed", "failed", "expired", "cancelled")


class OpenAIBatchAPI:
    def __init__(self, *, base_url: str, api_key: str | None, headers: dict[str, str], deployment: str) -> None:
        self._base = base_url
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = BatchHTTP({**headers, **auth}, deployment)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(self, requests: list[RemoteRequest], tag: str) -> dict[str, Any]:
        found = await self._find(tag)
        if found is not None:
            return found
        content = b"".join(orjson.dumps({"custom_id": remote_id(r.line_no), "method": "POST", "url": r.endpoint,
                                         "body": r.body}) + b"\n" for r in requests)
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", content, filename=f"{tag}.jsonl", content_type="application/jsonl")
        uploaded = await self._http.json("POST", f"{self._base}/files", data=form)
        created = await self._http.json("POST", f"{self._base}/batches", json={
            "input_file_id": uploaded["id"], "endpoint": requests[0].endpoint, "completion_window": "24h",
            "metadata": {"tokenomy_batch": tag}})
        return {"id": created["id"], "input_file_id": uploaded["id"]}

    async def _find(self, tag: str) -> dict[str, Any] | None:
        listed = await self._http.json("GET", f"{self._base}/batches?limit=100")
        for batch in listed.get("data") or ():
            if (batch.get("metadata") or {}).get("tokenomy_batch") == tag:
                return {"id": batch["id"], "input_file_id": batch.get("input_file_id")}
        return None

    async def poll(self, state: dict[str, Any]) -> RemoteStatus:
        batch = await self._http.json("GET", f"{self._base}/batches/{state['id']}")
        status = str(batch.get("status"))
        kept = {**state, "status": status, "output_file_id": batch.get("output_file_id"),
                "error_file_id": batch.get("error_file_id")}
        failed = None
        if status == "failed":
            errors = ((batch.get("errors") or {}).get("data") or [{}])
            failed = f"the provider failed the batch: {errors[0].get('message', 'no reason given')}"
        return RemoteStatus(done=status in _DONE, state=kept, failed=failed)

    async def cancel(self, state: dict[str, Any]) -> None:
        await self._http.json("POST", f"{self._base}/batches/{state['id']}/cancel")

    async def results(self, state: dict[str, Any]) -> list[RemoteResult]:
        found: list[RemoteResult] = []
        for key in ("output_file_id", "error_file_id"):
            if not state.get(key):
                continue
            for row in jsonl(await self._http.raw("GET", f"{self._base}/files/{state[key]}/content")):
                line_no = line_of(row.get("custom_id"))
                if line_no is None:
                    continue
                response = row.get("response") or {}
                body = response.get("body") if isinstance(response, dict) else None
                status = response.get("status_code") if isinstance(response, dict) and response else None
                usage = body.get("usage") if isinstance(body, dict) else None
                found.append(RemoteResult(line_no=line_no, status_code=status,
                                          body=body if isinstance(body, dict) else None,
                                          usage=usage if isinstance(usage, dict) else {}))
        return found
