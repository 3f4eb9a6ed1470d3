"""The OpenAPI description of the Messages door (``/v1/messages``, ``/v1/messages/count_tokens``, in Anthropic's
shapes and error body) and the Responses door (``/v1/responses`` and its stored responses), merged into
``/openapi.json`` so schemathesis checks them against the running gateway like the rest. The request schemas cover
the subset a fuzzer can send meaningfully (text turns); the docs pages say everything each door takes."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_BOOL = {"type": ["boolean", "null"]}
_MAX_INT = 2**64 - 1  # what msgspec reads as an int


def _nullable(kind: str, **limits: Any) -> dict[str, Any]:
    """An optional field: null is the same as leaving it out (as msgspec reads it, and as the chat door does)."""
    return {"type": [kind, "null"], **limits}
_TEXT = {"type": "string", "minLength": 1}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(schema: str, *codes: str) -> dict[str, Any]:
    return {code: _json(_ref(schema), "error") for code in codes}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _sse(description: str) -> dict[str, Any]:
    return {"schema": {"type": "object", "required": ["data"], "properties": {"data": _STR, "event": _STR}},
            "description": description}


def door_schemas(models: list[str]) -> dict[str, Any]:
    model = {"type": "string", "enum": models} if models else {"type": "string", "minLength": 1}
    turn = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"type": "string", "enum": ["user", "assistant"]}, "content": _TEXT}}
    conversation = {"model": model, "system": _NULL_STR, "messages": {"type": "array", "items": turn, "minItems": 1}}
    item = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]}, "content": _STR}}
    return {
        "AnthropicError": {"type": "object", "required": ["type", "error"], "properties": {
            "type": {"const": "error"}, "request_id": _STR, "error": {
                "type": "object", "required": ["type", "message"], "properties": {"type": _STR, "message": _STR}}}},
        "MessagesRequest": {"type": "object", "additionalProperties": False,
                            "required": ["model", "max_tokens", "messages"], "properties": {
            **conversation, "max_tokens": {"type": "integer", "minimum": 1, "maximum": _MAX_INT},
            "stream": _NULL_BOOL, "temperature": _nullable("number", minimum=0, maximum=1),
            "top_p": _nullable("number", minimum=0, maximum=1),
            "top_k": _nullable("integer", minimum=0, maximum=_MAX_INT),
            "stop_sequences": {"type": ["array", "null"], "items": _STR, "maxItems": 4},
            "metadata": {"type": ["object", "null"], "properties": {"user_id": _NULL_STR}}}},
        "CountTokensRequest": {"type": "object", "additionalProperties": False, "required": ["model", "messages"],
                               "properties": conversation},
        "Message": {"type": "object", "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
                    "properties": {
            "id": _STR, "type": {"const": "message"}, "role": {"const": "assistant"}, "model": _STR,
            "content": {"type": "array", "items": {"type": "object", "required": ["type"]}},
            "stop_reason": _NULL_STR, "stop_sequence": _NULL_STR,
            "usage": {"type": "object", "required": ["input_tokens", "output_tokens"], "properties": {
                "input_tokens": _INT, "output_tokens": _INT, "cache_read_input_tokens": _INT,
                "cache_creation_input_tokens": _INT}}}},
        "ResponsesRequest": {"type": "object", "additionalProperties": False, "required": ["model", "input"],
                             "properties": {
            "model": model, "input": {"anyOf": [_TEXT, {"type": "array", "items": item, "minItems": 1}]},
            "instructions": _NULL_STR, "max_output_tokens": _nullable("integer", minimum=1, maximum=_MAX_INT),
            "temperature": _nullable("number", minimum=0, maximum=2),
            "top_p": _nullable("number", minimum=0, maximum=1),
            "store": _NULL_BOOL, "stream": _NULL_BOOL,
            "metadata": {"type": ["object", "null"], "additionalProperties": _STR}}},
        "Response": {"type": "object", "required": ["id", "object", "created_at", "status", "model", "output"],
                     "properties": {
            "id": _STR, "object": {"const": "response"}, "created_at": _INT, "status": _STR, "model": _STR,
            "output": {"type": "array", "items": {"type": "object", "required": ["id", "type"]}},
            "previous_response_id": _NULL_STR, "usage": {"type": ["object", "null"]}}},
        "ResponseItems": {"type": "object", "required": ["object", "data", "has_more"], "properties": {
            "object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object", "required": ["id"]}},
            "first_id": _NULL_STR, "last_id": _NULL_STR, "has_more": {"type": "boolean"}}},
    }


def door_paths() -> dict[str, Any]:
    anthropic_errors = _errors("AnthropicError", "400", "401", "403", "404", "413", "429", "502", "503", "504")
    openai_errors = ("400", "401", "403", "404", "413", "429", "502", "503", "504")
    response_id = {"name": "response_id", "in": "path", "required": True, "schema": {"type": "string",
                                                                                     "minLength": 1}}
    return {
        "/v1/messages": {"post": {
            "operationId": "createMessage", "summary": "Anthropic Messages API (streamed as SSE when stream is true)",
            "requestBody": _body("MessagesRequest"),
            "responses": {"200": {"description": "the message, or its SSE events", "content": {
                "application/json": {"schema": _ref("Message")},
                "text/event-stream": _sse("message_start … message_stop")}}, **anthropic_errors}}},
        "/v1/messages/count_tokens": {"post": {
            "operationId": "countMessageTokens", "requestBody": _body("CountTokensRequest"),
            "responses": {"200": _json({"type": "object", "required": ["input_tokens"],
                                        "properties": {"input_tokens": _INT}}),
                          **_errors("AnthropicError", "400", "401", "403", "404", "413")}}},
        "/v1/responses": {"post": {
            "operationId": "createResponse", "summary": "OpenAI Responses API (semantic SSE events when streamed)",
            "requestBody": _body("ResponsesRequest"),
            "responses": {"200": {"description": "the response, or its SSE events", "content": {
                "application/json": {"schema": _ref("Response")},
                "text/event-stream": _sse("response.created … response.completed")}},
                **_errors("Error", *openai_errors)}}},
        "/v1/responses/{response_id}": {
            "get": {"operationId": "getResponse", "parameters": [response_id],
                    "responses": {"200": _json(_ref("Response")), **_errors("Error", "401", "404")}},
            "delete": {"operationId": "deleteResponse", "parameters": [response_id],
                       "responses": {"200": _json({"type": "object", "required": ["id", "object", "deleted"],
                                                   "properties": {"id": _STR, "object": {"const": "response"},
                                                                  "deleted": {"const": True}}}),
                                     **_errors("Error", "401", "404")}}},
        "/v1/responses/{response_id}/input_items": {"get": {
            "operationId": "listInputItems", "parameters": [
                response_id,
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "order", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["asc", "desc"]}}],
            "responses": {"200": _json(_ref("ResponseItems")), **_errors("Error", "400", "401", "404")}}},
    }
