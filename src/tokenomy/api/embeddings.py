"""POST /v1/embeddings: the offline MiniLM model (embeddings/minilm.py, micro-batched across concurrent callers),
or upstream ``kind: embeddings`` deployments (dispatch/embeddings.py, optionally coalesced into one upstream call)."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.chat_completions import Recorder
from tokenomy.api.responses import json_response, read_body, request_id
from tokenomy.api.state import Gateway
from tokenomy.dispatch.embeddings import EmbeddingsDispatcher
from tokenomy.errors import InvalidRequestError, ModelNotFoundError, TokenomyError
from tokenomy.ledger.trace import RequestTrace
from tokenomy.wire.embeddings import EmbeddingRequest
from tokenomy.wire.validation import parse_json_object, typed_view

MAX_INPUTS = 2048


def _texts(req: EmbeddingRequest) -> list[str]:
    items = [req.input] if isinstance(req.input, str) else list(req.input)
    if not items:
        raise InvalidRequestError("'input' must not be empty", param="input")
    if len(items) > MAX_INPUTS:
        raise InvalidRequestError(f"'input' may hold at most {MAX_INPUTS} items, got {len(items)}", param="input")
    texts: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidRequestError("token-id input is not supported by the local embedding model; send text",
                                      param="input")
        if not item:
            raise InvalidRequestError(f"'input[{i}]' is an empty string", param="input")
        texts.append(item)
    return texts


async def embeddings(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    rid = request.state.request_id = request_id(request)
    body = parse_json_object(await read_body(request, gateway.settings.server.max_body_bytes))
    result = await embed_body(gateway, body, rid, gateway.record)
    tier = "embedding" if result["model"] == gateway.settings.embeddings.model else "upstream-embedding"
    return json_response(result, headers={"x-request-id": rid, "x-tokenomy-model": result["model"],
                                          "x-tokenomy-tier": tier})


async def embed_body(gateway: Gateway, body: dict[str, Any], rid: str, record: Recorder) -> dict[str, Any]:
    """The embeddings response for a request body (also what a batch line of /v1/embeddings runs): the local
    MiniLM, or an upstream ``kind: embeddings`` deployment of the model (that one's cost goes to ``record``)."""
    req = typed_view(body, EmbeddingRequest)
    wanted = gateway.settings.embeddings.model
    upstream = gateway.upstream_embeddings
    if upstream is not None and upstream.serves(req.model) and not (gateway.settings.embeddings.enabled
                                                                   and req.model == wanted):
        return await _upstream(upstream, body, rid, record)
    if not gateway.settings.embeddings.enabled or req.model != wanted:
        served = ([wanted] if gateway.settings.embeddings.enabled else []) + (upstream.models() if upstream else [])
        raise ModelNotFoundError(f"embedding model '{req.model}' is not served here; available: "
                                 f"{', '.join(served) or 'none'}", param="model")
    texts = _texts(req)
    embedder = await gateway.load_embedder()
    if req.dimensions is not None and not 1 <= req.dimensions <= embedder.dimensions:
        raise InvalidRequestError(f"'dimensions' must be in [1, {embedder.dimensions}]", param="dimensions")
    result = await embedder.embed(texts)
    vectors = result.vectors
    if req.dimensions is not None and req.dimensions < embedder.dimensions:
        vectors = vectors[:, : req.dimensions]
        norms = (vectors ** 2).sum(axis=1, keepdims=True) ** 0.5
        vectors = vectors / norms.clip(min=1e-12)
    data = [{"object": "embedding", "index": i, "embedding": _encode(vec, req.encoding_format)}
            for i, vec in enumerate(vectors)]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return {"object": "list", "data": data, "model": wanted, "usage": usage}


def _encode(vector: Any, encoding_format: str | None) -> Any:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


async def _upstream(upstream: EmbeddingsDispatcher, body: dict[str, Any], rid: str,
                    record: Recorder) -> dict[str, Any]:
    trace = RequestTrace(id=rid, endpoint="embeddings", requested_model=str(body["model"]), stream=False, body=body)
    try:
        result = await upstream.embed(body, trace)
    except TokenomyError as exc:
        record(trace, exc.status, exc)
        raise
    record(trace, 200)
    return result
