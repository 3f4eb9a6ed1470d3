"""``GET /openapi.json``: the gateway's API as OpenAPI 3.1, built from what this gateway serves (its model names are
the ``model`` enum, so a schema-valid request names a real model). Checked against the running gateway with
schemathesis (tests/control/test_openapi.py): no 5xx, every response as described here."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenomy import __version__
from tokenomy.api.openapi_batch import batch_paths, batch_schemas
from tokenomy.api.openapi_doors import door_paths, door_schemas
from tokenomy.api.responses import json_response
from tokenomy.control.keys import VISIBLE
from tokenomy.gateway.core import Gateway

_ERROR_STATUSES = {"400": "invalid request", "401": "missing or invalid API key", "403": "not allowed for this key",
                   "404": "not found", "405": "method not allowed", "413": "request body too large",
                   "429": "rate limit or budget (insufficient_quota) spent", "502": "upstream failed",
                   "503": "upstream or store unavailable", "504": "upstream timed out"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json(_ref("Error"), _ERROR_STATUSES[code]) for code in codes}


_NULLABLE_STR = {"type": ["string", "null"]}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": VISIBLE}
_SINCE = {"name": "since", "in": "query", "required": False,
          "schema": {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,6}[smhdw]$"},
                               {"type": "string", "format": "date"}]}}
_BY = {"name": "by", "in": "query", "required": False,
       "schema": {"type": "string", "enum": ["day", "deployment", "key", "model", "team", "tier"]}}

_KEY_FIELDS: dict[str, Any] = {
    "name": _TEXT, "team": {"anyOf": [_TEXT, {"type": "null"}]},
    "budget_usd": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1_000_000},
                             {"type": "string", "pattern": "^[0-9]{1,6}(\\.[0-9]{1,12})?$"}, {"type": "null"}]},
    "period": {"type": "string", "enum": ["total", "daily", "monthly"]},
    "rpm": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000_000},
    "tpm": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000_000},
    "models": {"type": ["array", "null"], "items": _TEXT, "maxItems": 100},
    "expires": {"type": ["string", "null"], "format": "date"},
    "tags": {"type": ["object", "null"], "additionalProperties": {"type": "string"}, "maxProperties": 50},
}


def _schemas(models: list[str]) -> dict[str, Any]:
    message = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "function"]},
        "content": {"type": "string"}, "name": {"type": ["string", "null"]}}}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["message", "type"], "properties": {
                "message": {"type": "string"}, "type": {"type": "string"}, "param": _NULLABLE_STR,
                "code": _NULLABLE_STR}}}},
        "ChatCompletionRequest": {
            "type": "object", "required": ["model", "messages"], "properties": {
                "model": {"type": "string", "enum": models} if models else {"type": "string", "minLength": 1},
                "messages": {"type": "array", "items": message, "minItems": 1},
                "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": 2**64 - 1},
                "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
                "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 128},
                "seed": {"type": ["integer", "null"], "minimum": -(2**63), "maximum": 2**64 - 1},
                "stream": {"type": ["boolean", "null"]},
                "user": {"type": ["string", "null"]}}},
        "ChatCompletion": {"type": "object", "required": ["id", "object", "choices"], "properties": {
            "id": {"type": "string"}, "object": {"type": "string", "const": "chat.completion"},
            "created": {"type": "integer"}, "model": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "object", "required": ["index", "message"], "properties": {
                "index": {"type": "integer"}, "finish_reason": _NULLABLE_STR,
                "message": {"type": "object", "required": ["role"], "properties": {
                    "role": {"type": "string"}, "content": _NULLABLE_STR}}}}},
            "usage": {"type": ["object", "null"]}}},
        "Model": {"type": "object", "required": ["id", "object", "owned_by"], "properties": {
            "id": {"type": "string"}, "object": {"type": "string", "const": "model"}, "created": {"type": "integer"},
            "owned_by": {"type": "string"}, "tier": {"type": "string"}}},
        "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
            "object": {"type": "string", "const": "list"}, "data": {"type": "array", "items": _ref("Model")}}},
        "KeyFields": {"type": "object", "additionalProperties": False, "properties": _KEY_FIELDS},
        "NewKey": {"type": "object", "additionalProperties": False, "required": ["name"], "properties": _KEY_FIELDS},
        "Key": {"type": "object", "required": ["id", "name", "display", "status", "budgets"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "display": {"type": "string"},
            "team": _NULLABLE_STR, "status": {"type": "string", "enum": ["active", "revoked", "expired"]},
            "budget_usd": _NULLABLE_STR, "period": {"type": "string"}, "rpm": {"type": ["integer", "null"]},
            "tpm": {"type": ["integer", "null"]}, "budgets": {"type": "array", "items": _ref("Budget")},
            "key": {"type": "string", "pattern": "^tk-"}}},
        "KeyList": {"type": "object", "required": ["object", "data"], "properties": {
            "object": {"type": "string", "const": "list"}, "data": {"type": "array", "items": _ref("Key")}}},
        "Budget": {"type": "object", "required": ["scope", "budget_usd", "spent_usd", "reserved_usd"], "properties": {
            "scope": {"type": "string"}, "period": {"type": "string"}, "budget_usd": {"type": "string"},
            "spent_usd": {"type": "string"}, "reserved_usd": {"type": "string"},
            "remaining_usd": {"type": "string"}}},
        "TeamFields": {"type": "object", "additionalProperties": False, "properties": {
            k: _KEY_FIELDS[k] for k in ("budget_usd", "period", "rpm", "tpm")}},
        "Team": {"type": "object", "required": ["name", "period"], "properties": {
            "name": {"type": "string"}, "budget_usd": _NULLABLE_STR, "period": {"type": "string"},
            "rpm": {"type": ["integer", "null"]}, "tpm": {"type": ["integer", "null"]}}},
        "TeamList": {"type": "object", "required": ["object", "data"], "properties": {
            "object": {"type": "string", "const": "list"}, "data": {"type": "array", "items": _ref("Team")}}},
        "SpendReport": {"type": "object", "required": ["requests", "cost_usd", "saving_usd", "tokens"], "properties": {
            "requests": {"type": "integer"}, "errors": {"type": "integer"}, "cost_usd": {"type": "string"},
            "saving_usd": {"type": "string"}, "counterfactual_usd": {"type": "string"},
            "tokens": {"type": "object"}, "groups": {"type": "array", "items": {"type": "object"}}}},
    }


def _paths(embeddings: bool) -> dict[str, Any]:
    key_id = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    paths: dict[str, Any] = {
        "/v1/chat/completions": {"post": {
            "operationId": "createChatCompletion", "summary": "Chat completion (streamed as SSE when stream is true)",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("ChatCompletionRequest")}}},
            "responses": {"200": {"description": "the completion, or an SSE stream of chunks", "content": {
                "application/json": {"schema": _ref("ChatCompletion")},
                "text/event-stream": {"schema": {"type": "object", "required": ["data"], "properties": {
                    "data": {"type": "string"}, "event": {"type": "string"}}}}}},
                **_errors("400", "401", "403", "404", "413", "429", "502", "503", "504")}}},
        "/v1/models": {"get": {"operationId": "listModels", "responses": {
            "200": _json(_ref("ModelList")), **_errors("401")}}},
        "/v1/models/{model_id}": {"get": {"operationId": "getModel", "parameters": [
            {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": _json(_ref("Model")), **_errors("401", "404")}}},
        "/v1/feedback": {"post": {"operationId": "semanticFeedback", "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "required": ["request_id", "correct"], "properties": {
                "request_id": {"type": "string", "minLength": 1}, "correct": {"type": "boolean"}}}}}},
            "responses": {"200": _json({"type": "object"}), **_errors("400", "401", "404", "413")}}},
        "/v1/key": {"get": {"operationId": "ownKey", "summary": "The calling virtual key and its budgets",
                            "responses": {"200": _json(_ref("Key")), **_errors("401")}}},
        "/v1/spend": {"get": {"operationId": "ownSpend", "summary": "Spend of the calling key's own requests",
                              "parameters": [_SINCE, _BY],
                              "responses": {"200": _json(_ref("SpendReport")), **_errors("400", "401")}}},
        "/admin/keys": {
            "get": {"operationId": "listKeys", "responses": {"200": _json(_ref("KeyList")), **_errors("401")}},
            "post": {"operationId": "createKey", "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("NewKey")}}},
                "responses": {"201": _json(_ref("Key"), "created; 'key' is shown only here"),
                              **_errors("400", "401", "413")}}},
        "/admin/keys/{key_id}": {
            "get": {"operationId": "getKey", "parameters": [key_id],
                    "responses": {"200": _json(_ref("Key")), **_errors("401", "404")}},
            "patch": {"operationId": "updateKey", "parameters": [key_id], "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("KeyFields")}}},
                "responses": {"200": _json(_ref("Key")), **_errors("400", "401", "404", "413")}}},
        "/admin/keys/{key_id}/revoke": {"post": {
            "operationId": "revokeKey", "summary": "Revoke a key (kept, marked revoked, refused everywhere)",
            "parameters": [key_id], "responses": {"200": _json(_ref("Key")), **_errors("401", "404")}}},
        "/admin/teams": {"get": {"operationId": "listTeams", "responses": {
            "200": _json(_ref("TeamList")), **_errors("401")}}},
        "/admin/teams/{name}": {"put": {"operationId": "putTeam", "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": _TEXT}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TeamFields")}}},
            "responses": {"200": _json(_ref("Team")), **_errors("400", "401", "413")}}},
        "/admin/spend": {"get": {"operationId": "adminSpend", "parameters": [_SINCE, _BY],
                                 "responses": {"200": _json(_ref("SpendReport")), **_errors("400", "401")}}},
        "/healthz": {"get": {"operationId": "health", "security": [],
                             "responses": {"200": _json({"type": "object", "required": ["status"]})}}},
        "/readyz": {"get": {"operationId": "ready", "security": [], "responses": {
            "200": _json({"type": "object", "required": ["status", "checks", "ledger"]}),
            "503": _json({"type": "object", "required": ["status", "checks", "ledger"]})}}},
        "/metrics": {"get": {"operationId": "metrics", "security": [], "responses": {"200": {
            "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }
    if embeddings:
        paths["/v1/embeddings"] = {"post": {"operationId": "createEmbedding", "requestBody": {"required": True,
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["input", "model"], "properties": {
                    "input": {"type": "string", "minLength": 1, "maxLength": 2000}, "model": {"type": "string"}}}}}},
            "responses": {"200": _json({"type": "object"}), **_errors("400", "401", "404", "413")}}}
    return paths


def openapi_document(gateway: Gateway) -> dict[str, Any]:
    models = sorted({e.id for e in gateway.dispatcher.catalog.models()})
    return {
        "openapi": "3.1.0",
        "info": {"title": "tokenomy gateway", "version": __version__,
                 "description": "OpenAI-compatible chat completions, Anthropic Messages and OpenAI Responses with "
                                "routing, caching and cost control; /admin is master-key only. See docs/api.md, "
                                "docs/messages.md, docs/responses.md and docs/control.md."},
        "components": {"schemas": {**_schemas(models), **door_schemas(models), **batch_schemas()},
                       "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {**_paths(gateway.settings.embeddings.enabled), **door_paths(),
                  **(batch_paths() if gateway.batch_service else {})},
    }


async def openapi_endpoint(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return json_response(openapi_document(gateway))
