"""The embeddings path: the offline MiniLM model (micro-batched across concurrent callers), or upstream ``kind:
embeddings`` deployments (optionally coalesced into one upstream call). Either way the request is admitted like a
chat request (allowed models, RPM/TPM, the budget at the deployment's price) and leaves one ledger row under the
caller's key."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from tokenomy.config.settings import DeploymentConfig
from tokenomy.errors import InvalidRequestError, ModelNotAllowedError, ModelNotFoundError, TokenomyError
from tokenomy.gateway.recorders import Recorder, refusals
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import EmbeddingsAnswer
from tokenomy.ledger.trace import RequestTrace
from tokenomy.wire.embeddings import EmbeddingRequest
from tokenomy.wire.validation import typed_view

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway

MAX_INPUTS = 2048
LOCAL = "local-embeddings"  # the ledger's deployment name for the in-process model


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


async def serve_embeddings(gw: Gateway, body: dict[str, Any], caller: Caller, rid: str,
                           record: Recorder) -> EmbeddingsAnswer:
    """The embeddings response for a request body (also what a batch line of /v1/embeddings runs)."""
    req = typed_view(body, EmbeddingRequest)
    principal = caller.principal
    trace = RequestTrace(id=rid, endpoint=caller.endpoint or "embeddings", requested_model=req.model, stream=False,
                         body=body, key_id=principal.key_id, tenant=principal.team_name, tags=principal.tags_json,
                         client_request_id=caller.client_request_id)
    with refusals(record, trace):  # not allowed, not served, or refused before any call: no cost
        principal.check_model(req.model)
        chain = _chain(gw, req.model)
        allowed = [d for d in chain if principal.may_call(d.model, d.tier)]
        if not allowed:
            raise ModelNotAllowedError(f"this key may not use any deployment that serves '{req.model}'",
                                        param="model")
    texts = _texts(req) if chain[0].name == LOCAL else None
    with refusals(record, trace):
        ticket = await gw.control.admit_embeddings(principal, body, rid, allowed)
    entry = None
    try:
        result = await (_local(gw, req, texts, trace, chain[0]) if texts is not None else
                        gw.upstream_embeddings.embed(body, trace, allow=frozenset(d.name for d in allowed)))
        entry = record(trace, 200)
    except TokenomyError as exc:
        entry = record(trace, exc.status, exc)
        raise
    finally:
        await gw.control.settle(ticket, entry)
    await record.acknowledge(entry)
    tier = "embedding" if texts is not None else "upstream-embedding"
    headers = {"x-request-id": rid, "x-tokenomy-model": result["model"], "x-tokenomy-tier": tier}
    if caller.client_request_id:
        headers["x-client-request-id"] = caller.client_request_id
    return EmbeddingsAnswer(result, headers)


def _chain(gw: Gateway, model: str) -> list[DeploymentConfig]:
    """The deployments that may answer ``model``: the local model (when it is this name and switched on), else the
    upstream ``kind: embeddings`` deployments of it in config order. ModelNotFoundError (404) otherwise."""
    settings = gw.settings.embeddings
    if settings.enabled and model == settings.model:
        return [DeploymentConfig(name=LOCAL, provider="local", model=model, tier="small", kind="embeddings")]
    upstream = gw.upstream_embeddings
    if upstream.serves(model):
        return upstream.chain(model)
    served = ([settings.model] if settings.enabled else []) + upstream.models()
    raise ModelNotFoundError(f"embedding model '{model}' is not served here; available: "
                             f"{', '.join(served) or 'none'}", param="model")


async def _local(gw: Gateway, req: EmbeddingRequest, texts: list[str], trace: RequestTrace,
                 config: DeploymentConfig) -> dict[str, Any]:
    embedder = await gw.embedder()
    if req.dimensions is not None and not 1 <= req.dimensions <= embedder.dimensions:
        raise InvalidRequestError(f"'dimensions' must be in [1, {embedder.dimensions}]", param="dimensions")
    call = trace.begin_call(config)
    result = await embedder.embed(texts)
    vectors = result.vectors
    if req.dimensions is not None and req.dimensions < embedder.dimensions:
        vectors = vectors[:, : req.dimensions]
        norms = (vectors ** 2).sum(axis=1, keepdims=True) ** 0.5
        vectors = vectors / norms.clip(min=1e-12)
    data = [{"object": "embedding", "index": i, "embedding": _encode(vec, req.encoding_format)}
            for i, vec in enumerate(vectors)]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    call.complete({"usage": usage})
    return {"object": "list", "data": data, "model": config.model, "usage": usage}


def _encode(vector: Any, encoding_format: str | None) -> Any:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
