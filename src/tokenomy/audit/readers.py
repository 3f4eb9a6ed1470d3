"""Log readers, one pass each, with the format detected per file:

- ``openai-jsonl``: one object per line, the chat request under ``request`` or ``body`` (or the object itself when
  it has ``messages``), an optional ``response`` (a chat completion, or ``{"body": completion}``) with ``usage``,
  and an optional ``timestamp`` (ISO 8601 or epoch seconds/milliseconds; else the response's ``created``).
- ``batch-input`` / ``batch-output``: the OpenAI Batch API's files (``custom_id``/``method``/``url``/``body``, and
  ``custom_id``/``response``/``error``); priced at batch rates. Input files carry no usage (tokens counted offline,
  output unknown); output files carry no prompt text. Give one or the other per batch, not both.
- ``ledger``: tokenomy's own ledger (its ``requests`` table), a SQLite file here or a PostgreSQL database given by
  URL (``pg_ledger``); no prompt text, costs as recorded.

A line that is not a JSON object, names no model, or has a malformed usage object is counted in ``BadLines`` and
skipped. Memory is bounded: lines are read and dropped one at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tokenomy.audit.records import BadLines, LogRecord
from tokenomy.errors import AuditError
from tokenomy.pricing.cost import TokenUsage, UsageError, normalise_usage

FORMATS = ("openai-jsonl", "batch-input", "batch-output", "litellm-spend", "ledger")
_SQLITE_MAGIC = b"SQLite format 3\x00"
PICO = Decimal(10) ** 12

Progress = Callable[[int], None]


class _BadLine(Exception):
    """Internal: why one line was skipped."""


def detect_format(path: Path) -> str:
    """The format of ``path``, from its first bytes (SQLite) or its first JSON object's keys."""
    try:
        with path.open("rb") as f:
            if f.read(16) == _SQLITE_MAGIC:
                return "ledger"
            f.seek(0)
            for raw in f:
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    if "custom_id" in obj and "response" in obj:
                        return "batch-output"
                    if "custom_id" in obj and "body" in obj:
                        return "batch-input"
                    if "request_id" in obj and "spend" in obj and "startTime" in obj:
                        return "litellm-spend"
                    return "openai-jsonl"
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror or exc}") from exc
    raise AuditError(f"{path}: no JSON object on any line and not a SQLite ledger; formats: {', '.join(FORMATS)}")


def read_log(path: Path, fmt: str, bad: BadLines, progress: Progress | None = None) -> Iterator[LogRecord]:
    if fmt == "ledger":
        yield from _ledger(path)
        if progress:
            progress(path.stat().st_size)
        return
    parse = {"openai-jsonl": _openai_line, "batch-input": _batch_input_line, "batch-output": _batch_output_line,
             "litellm-spend": _litellm_line}[fmt]
    try:
        with path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                if progress:
                    progress(len(raw))
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                    if not isinstance(obj, dict):
                        raise _BadLine("not a JSON object")
                    yield parse(obj)
                except orjson.JSONDecodeError:
                    bad.add(path.name, number, "invalid JSON")
                except _BadLine as exc:
                    bad.add(path.name, number, str(exc))
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _openai_line(obj: dict[str, Any]) -> LogRecord:
    body = next((obj[k] for k in ("request", "body") if isinstance(obj.get(k), dict)), obj if "messages" in obj
                else None)
    response = obj.get("response")
    if isinstance(response, dict) and isinstance(response.get("body"), dict):
        response = response["body"]
    response = response if isinstance(response, dict) else {}
    if body is None and "usage" not in response:
        raise _BadLine("no request body and no usage")
    timestamp = _timestamp(obj["timestamp"]) if obj.get("timestamp") is not None else _created(response)
    return _record(body, response, timestamp, batch=False, metadata=obj.get("metadata"))


def _batch_input_line(obj: dict[str, Any]) -> LogRecord:
    body = obj.get("body")
    if not isinstance(body, dict):
        raise _BadLine("batch input line without a body object")
    return _record(body, {}, None, batch=True, metadata=None)


def _batch_output_line(obj: dict[str, Any]) -> LogRecord:
    response = obj.get("response")
    completion = response.get("body") if isinstance(response, dict) else None
    if not isinstance(completion, dict):
        raise _BadLine("batch output line without a response body (a failed request)")
    return _record(None, completion, _created(completion), batch=True, metadata=None)


def _litellm_line(obj: dict[str, Any]) -> LogRecord:
    """One row of LiteLLM's spend logs (``LiteLLM_SpendLogs``, as ``/spend/logs`` returns it, one row per line):
    its own ``spend`` is the cost; messages are there only when the proxy stores prompts."""
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        raise _BadLine("no model")
    if obj.get("call_type") not in (None, "", "completion", "acompletion"):
        raise _BadLine(f"not a chat completion ({obj.get('call_type')})")
    messages = obj.get("messages")
    if isinstance(messages, str):
        try:
            messages = orjson.loads(messages)
        except orjson.JSONDecodeError:
            messages = None
    body = {"model": model, "messages": messages} if isinstance(messages, list) and messages else None
    try:
        spend = Decimal(str(obj["spend"])) if obj.get("spend") is not None else None
        usage = TokenUsage(input_tokens=int(obj.get("prompt_tokens") or 0),
                           output_tokens=int(obj.get("completion_tokens") or 0))
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise _BadLine(f"bad spend or token count ({exc})") from exc
    meta = obj.get("metadata")
    tolerant = isinstance(meta, dict) and any(_truthy(meta.get(k)) for k in ("batch", "latency_tolerant"))
    return LogRecord(model=model, timestamp=_timestamp(obj["startTime"]), body=body, usage=usage, cost_usd=spend,
                     latency_tolerant=tolerant)


def _record(body: Mapping[str, Any] | None, response: Mapping[str, Any], timestamp: float | None, *, batch: bool,
            metadata: Any) -> LogRecord:
    model = (body or {}).get("model") or response.get("model")
    if not isinstance(model, str) or not model:
        raise _BadLine("no model")
    usage = None
    if isinstance(response.get("usage"), dict):
        try:
            usage = normalise_usage("openai", response["usage"])
        except UsageError as exc:
            raise _BadLine(exc.message) from exc
    meta = metadata if isinstance(metadata, dict) else (body or {}).get("metadata")
    tolerant = isinstance(meta, dict) and any(_truthy(meta.get(k)) for k in ("batch", "latency_tolerant"))
    return LogRecord(model=model, timestamp=timestamp, body=body, usage=usage, output_text=_reply_text(response),
                     stream=bool((body or {}).get("stream")), batch=batch, latency_tolerant=tolerant,
                     metadata=meta if isinstance(meta, dict) else None)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes", "ok"))


def _reply_text(response: Mapping[str, Any]) -> str | None:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return str(message["content"])
    return None


def _created(response: Mapping[str, Any]) -> float | None:
    created = response.get("created")
    return _timestamp(created) if created is not None else None


def _timestamp(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            return _timestamp(float(value))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _BadLine(f"bad timestamp {value!r}") from exc
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    raise _BadLine(f"bad timestamp {value!r}")


LEDGER_SQL = ("SELECT COALESCE(served_model, requested_model), started_us, stream, input_tokens, cached_read_tokens,"
              " cache_write_tokens, output_tokens, reasoning_tokens, cost_pusd FROM requests ORDER BY started_us")


def ledger_record(row: tuple[Any, ...]) -> LogRecord:
    """One ``LEDGER_SQL`` row (SQLite or PostgreSQL) as a record: tokens and the recorded cost, no prompt text."""
    model, started, stream, inp, cached, written, out, reasoning, pusd = row
    usage = TokenUsage(input_tokens=inp, cached_read_tokens=cached, cache_write_5m_tokens=written,
                       output_tokens=out, reasoning_tokens=min(reasoning, out))
    return LogRecord(model=model, timestamp=started / 1e6, body=None, usage=usage,
                     cost_usd=None if pusd is None else Decimal(pusd) / PICO, stream=bool(stream))


def _ledger(path: Path) -> Iterator[LogRecord]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise AuditError(f"cannot open ledger {path}: {exc}") from exc
    try:
        for row in db.execute(LEDGER_SQL):
            yield ledger_record(row)
    except sqlite3.Error as exc:
        raise AuditError(f"{path}: not a tokenomy ledger ({exc})") from exc
    finally:
        db.close()
