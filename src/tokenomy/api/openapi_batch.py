"""The OpenAPI description of ``/v1/files`` and ``/v1/batches`` (merged into ``/openapi.json`` when batches are
on), in OpenAI's shapes, so schemathesis checks them against the running gateway like the rest."""

from __future__ import annotations

from typing import Any

from tokenomy.batch.objects import ENDPOINTS, BatchStatus

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json(_ERROR, "error") for code in codes}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["object", "data", "has_more"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": _ref(item)}, "first_id": _NULL_STR,
        "last_id": _NULL_STR, "has_more": {"type": "boolean"}}}


def batch_schemas() -> dict[str, Any]:
    counts = {"type": "object", "required": ["total", "completed", "failed"],
              "properties": {"total": _INT, "completed": _INT, "failed": _INT}}
    times = {name: _NULL_INT for name in ("in_progress_at", "finalizing_at", "completed_at", "failed_at",
                                          "expired_at", "cancelling_at", "cancelled_at")}
    return {
        "File": {"type": "object", "required": ["id", "object", "bytes", "created_at", "filename", "purpose"],
                 "properties": {"id": _STR, "object": {"const": "file"}, "bytes": _INT, "created_at": _INT,
                                "filename": _STR, "purpose": {"enum": ["batch", "batch_output"]},
                                "status": _STR, "expires_at": _NULL_INT, "status_details": _NULL_STR}},
        "FileList": _page("File"),
        "DeletedFile": {"type": "object", "required": ["id", "object", "deleted"], "properties": {
            "id": _STR, "object": {"const": "file"}, "deleted": {"type": "boolean"}}},
        "Batch": {"type": "object", "required": ["id", "object", "endpoint", "input_file_id", "completion_window",
                                                 "status", "created_at", "request_counts"],
                  "properties": {"id": _STR, "object": {"const": "batch"}, "endpoint": _STR, "model": _NULL_STR,
                                 "input_file_id": _STR, "completion_window": _STR,
                                 "status": {"enum": [str(s) for s in BatchStatus]}, "output_file_id": _NULL_STR,
                                 "error_file_id": _NULL_STR, "created_at": _INT, "expires_at": _NULL_INT,
                                 "request_counts": counts, "errors": {"type": ["object", "null"]},
                                 "usage": {"type": ["object", "null"]}, "metadata": {"type": ["object", "null"]},
                                 **times}},
        "BatchList": _page("Batch"),
    }


def batch_paths() -> dict[str, Any]:
    file_id = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    batch_id = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    limit = {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1,
                                                                          "maximum": 100}}
    after = {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}}
    return {
        "/v1/files": {
            "post": {"operationId": "uploadFile", "summary": "Upload a batch input file (JSON lines)",
                     "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                         "type": "object", "required": ["file", "purpose"], "properties": {
                             "file": {"type": "string", "format": "binary"}, "purpose": {"enum": ["batch"]}}}}}},
                     "responses": {"200": _json(_ref("File")), **_errors("400", "401", "413")}},
            "get": {"operationId": "listFiles", "parameters": [
                after, {"name": "purpose", "in": "query", "required": False, "schema": _STR},
                {"name": "order", "in": "query", "required": False, "schema": {"enum": ["asc", "desc"]}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}],
                "responses": {"200": _json(_ref("FileList")), **_errors("400", "401")}}},
        "/v1/files/{file_id}": {
            "get": {"operationId": "retrieveFile", "parameters": [file_id],
                    "responses": {"200": _json(_ref("File")), **_errors("401", "404")}},
            "delete": {"operationId": "deleteFile", "parameters": [file_id],
                       "responses": {"200": _json(_ref("DeletedFile")), **_errors("401", "404")}}},
        "/v1/files/{file_id}/content": {"get": {"operationId": "fileContent", "parameters": [file_id], "responses": {
            "200": {"description": "the file's bytes", "content": {"application/jsonl": {"schema": _STR}}},
            **_errors("401", "404")}}},
        "/v1/batches": {
            "post": {"operationId": "createBatch", "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object", "required": ["input_file_id", "endpoint",
                                                                               "completion_window"], "properties": {
                    "input_file_id": {"type": "string", "pattern": "^file-[A-Za-z0-9_]{1,64}$"},
                    "endpoint": {"enum": list(ENDPOINTS)},
                    "completion_window": {"const": "24h"}, "via": {"enum": ["gateway", "provider"]},
                    "metadata": {"type": ["object", "null"], "maxProperties": 16,
                                 "additionalProperties": {"type": "string", "maxLength": 512}}}}}}},
                "responses": {"200": _json(_ref("Batch")), **_errors("400", "401", "404", "413")}},
            "get": {"operationId": "listBatches", "parameters": [after, limit],
                    "responses": {"200": _json(_ref("BatchList")), **_errors("400", "401")}}},
        "/v1/batches/{batch_id}": {"get": {"operationId": "retrieveBatch", "parameters": [batch_id],
                                           "responses": {"200": _json(_ref("Batch")), **_errors("401", "404")}}},
        "/v1/batches/{batch_id}/cancel": {"post": {"operationId": "cancelBatch", "parameters": [batch_id],
                                                   "responses": {"200": _json(_ref("Batch")),
                                                                 **_errors("401", "404", "409")}}},
    }
