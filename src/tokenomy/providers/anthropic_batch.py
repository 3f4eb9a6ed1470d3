"""Anthropic's Message Batches API for pass-through batches: each chat line translated to a Messages request,
one batch created, polled until ``ended``, results read from ``results_url`` and translated back to chat
completions (usage kept in Anthropic's shape so the ledger prices cache reads and writes exactly)."""

from __future__ import annotations

from typing import Any

from tokenomy.errors import TokenomyError
from tokenomy.providers.anthropic import ANTHROPIC_VERSION
from tokenomy.providers.anthropic_translate import from_messages_response, to_messages_request
from tokenomy.providers.batch_api import RemoteRequest, RemoteResult, RemoteStatus, line_of, remote_id
from tokenomy.providers.batch_http import BatchHTTP, jsonl

_STATUS = {"errored": 500, "succeeded": 200}


class AnthropicBatchAPI:
    def __init__(self, *, base_url: str, api_key: str | None, headers: dict[str, str], deployment: str) -> None:
        base = base_url.rstrip("/")
        self._url = base + ("/messages/batches" if base.endswith("/v1") else "/v1/messages/batches")
        auth = {"x-api-key": api_key} if api_key else {}
        self._http = BatchHTTP({"anthropic-version": ANTHROPIC_VERSION, **headers, **auth}, deployment)
        self._models: dict[int, str] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(self, requests: list[RemoteRequest], tag: str) -> dict[str, Any]:
        payload = []
        for r in requests:
            if r.endpoint != "/v1/chat/completions":
                raise TokenomyError(f"Anthropic batches run chat completions only, not {r.endpoint}")
            payload.append({"custom_id": remote_id(r.line_no), "params": to_messages_request(r.body)})
        created = await self._http.json("POST", self._url, json={"requests": payload})
        return {"id": created["id"], "model": requests[0].body.get("model")}

    async def poll(self, state: dict[str, Any]) -> RemoteStatus:
        batch = await self._http.json("GET", f"{self._url}/{state['id']}")
        kept = {**state, "status": batch.get("processing_status"), "results_url": batch.get("results_url")}
        return RemoteStatus(done=batch.get("processing_status") == "ended", state=kept)

    async def cancel(self, state: dict[str, Any]) -> None:
        await self._http.json("POST", f"{self._url}/{state['id']}/cancel")

    async def results(self, state: dict[str, Any]) -> list[RemoteResult]:
        url = state.get("results_url") or f"{self._url}/{state['id']}/results"
        model = str(state.get("model") or "")
        found: list[RemoteResult] = []
        for row in jsonl(await self._http.raw("GET", url)):
            line_no = line_of(row.get("custom_id"))
            result = row.get("result") or {}
            kind = result.get("type") if isinstance(result, dict) else None
            if line_no is None or kind is None:
                continue
            if kind == "succeeded":
                message = result.get("message") or {}
                found.append(RemoteResult(line_no=line_no, status_code=200,
                                          body=from_messages_response(message, model),
                                          usage=message.get("usage") or {}))
            elif kind == "errored":
                error = (result.get("error") or {}).get("error") or result.get("error") or {}
                found.append(RemoteResult(line_no=line_no, status_code=_STATUS["errored"], body={"error": {
                    "message": str(error.get("message", "errored")), "type": str(error.get("type", "api_error")),
                    "param": None, "code": None}}))
            else:  # canceled / expired: never ran
                found.append(RemoteResult(line_no=line_no, status_code=None, body=None))
        return found
