"""``tokenomy batch``: submit a batch input file to a running gateway and follow it, list, cancel, fetch results.

The gateway runs the batch (its own workers, or the provider's batch API with ``--via provider``); these commands
only talk to it over its OpenAI-compatible API (``--url`` or TOKENOMY_URL, default http://127.0.0.1:4000).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from tokenomy.cli.gateway_client import GatewayClient, api_key_option, url_option
from tokenomy.errors import GatewayClientError

TERMINAL = ("completed", "failed", "expired", "cancelled")

_url = url_option("else http://127.0.0.1:4000")
_key = api_key_option("A key for a gateway with auth on: a virtual key or the master key")
_json = click.option("--json", "as_json", is_flag=True, help="Print the batch object as JSON.")


@click.group("batch")
def batch_group() -> None:
    """Batch jobs on a running gateway (OpenAI's Batch API)."""


@batch_group.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Follow the batch with a progress bar until it ends.")
@click.option("--via", type=click.Choice(["gateway", "provider"]),
              help="Run it on tokenomy's workers or the provider's batch API (default: the gateway's batch.via).")
@click.option("--endpoint", help="Default: the url of the file's first line.")
@click.option("--window", default="24h", show_default=True, help="Completion window.")
@click.option("--metadata", "-m", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("--concurrency", type=int, help="Lines in flight at once for this batch.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="With --wait: write the output file here (errors to OUT.errors.jsonl).")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between status checks.")
@_url
@_key
@_json
def submit(file: Path, wait: bool, via: str | None, endpoint: str | None, window: str, metadata: tuple[str, ...],
           concurrency: int | None, out: Path | None, poll: float, url: str | None, api_key: str | None,
           as_json: bool) -> None:
    """Upload FILE (JSON lines of {custom_id, method, url, body}) and start a batch on it."""
    client = GatewayClient(url, api_key)
    meta = _metadata(metadata)
    if concurrency is not None:
        meta["tokenomy_concurrency"] = str(concurrency)
    uploaded = client.upload(file, "batch")
    body: dict[str, Any] = {"input_file_id": uploaded["id"], "endpoint": endpoint or _first_url(file),
                            "completion_window": window}
    if meta:
        body["metadata"] = meta
    if via:
        body["via"] = via
    batch = client.call("POST", "/v1/batches", json=body)
    if not wait:
        _show(batch, as_json)
        return
    batch = _follow(client, batch, poll)
    if out is not None:
        _save(client, batch, out)
    _show(batch, as_json)
    counts = batch["request_counts"]
    if batch["status"] != "completed":
        click.echo(f"error: batch {batch['id']} ended {batch['status']}", err=True)
        sys.exit(1)
    if counts["failed"]:
        every = counts["failed"] >= counts["total"]
        click.echo(f"{'error' if every else 'warning'}: {'every line' if every else str(counts['failed'])} of "
                   f"batch {batch['id']} failed ({counts['failed']} of {counts['total']}); `tokenomy batch results "
                   f"{batch['id']} --errors` shows why", err=True)
        if every:
            sys.exit(1)


@batch_group.command("status")
@click.argument("batch_id")
@_url
@_key
@_json
def status(batch_id: str, url: str | None, api_key: str | None, as_json: bool) -> None:
    """Show one batch."""
    _show(GatewayClient(url, api_key).call("GET", f"/v1/batches/{batch_id}"), as_json)


@batch_group.command("list")
@click.option("--limit", default=20, show_default=True, help="Most recent first.")
@click.option("--wide", is_flag=True, help="Every column, whatever the terminal's width.")
@_url
@_key
@_json
def list_(limit: int, wide: bool, url: str | None, api_key: str | None, as_json: bool) -> None:
    """List batches, newest first."""
    from tokenomy.cli.terminal import id_column, name_column, out_console, short_column, table, when, wide_enough

    found = GatewayClient(url, api_key).call("GET", "/v1/batches", params={"limit": str(limit)})
    if as_json:
        click.echo(orjson.dumps(found["data"]).decode())
        return
    if not found["data"]:
        click.echo("no batches yet: `tokenomy batch submit FILE`", err=True)
        return
    console = out_console(wide)
    every = wide_enough(console, wide, 110)
    listed = table("batches" if every else "batches (--wide: endpoint)")
    id_column(listed, "id")
    for column in ("status", "done/failed/total"):
        short_column(listed, column)
    if every:
        name_column(listed, "endpoint")
    short_column(listed, "created (UTC)")
    for b in found["data"]:
        counts = b["request_counts"]
        listed.add_row(b["id"], b["status"], f"{counts['completed']}/{counts['failed']}/{counts['total']}",
                       *((b["endpoint"],) if every else ()), when(b["created_at"], zone=False))
    console.print(listed)


@batch_group.command("cancel")
@click.argument("batch_id")
@_url
@_key
@_json
def cancel(batch_id: str, url: str | None, api_key: str | None, as_json: bool) -> None:
    """Cancel a batch: lines not started are cancelled, finished ones are kept."""
    _show(GatewayClient(url, api_key).call("POST", f"/v1/batches/{batch_id}/cancel"), as_json)


@batch_group.command("results")
@click.argument("batch_id")
@click.option("--errors", is_flag=True, help="The error file instead of the output file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@_url
@_key
def results(batch_id: str, errors: bool, out: Path | None, url: str | None, api_key: str | None) -> None:
    """Print (or save) a batch's output or error file."""
    client = GatewayClient(url, api_key)
    batch = client.call("GET", f"/v1/batches/{batch_id}")
    file_id = batch["error_file_id" if errors else "output_file_id"]
    if file_id is None:
        raise GatewayClientError(f"batch {batch_id} ({batch['status']}) has no {'error' if errors else 'output'} "
                                 "file" + ("" if batch["status"] in TERMINAL else " yet"))
    content = client.download(f"/v1/files/{file_id}/content")
    if out is None:
        sys.stdout.buffer.write(content)
    else:
        _write(out, content)


def _follow(client: GatewayClient, batch: dict[str, Any], poll: float) -> dict[str, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tokenomy.cli.terminal import err_console, show_progress

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, transient=False, console=err_console(), disable=not show_progress()) as progress:
        task = progress.add_task(batch["id"], total=None, note=batch["status"])
        while batch["status"] not in TERMINAL:
            time.sleep(poll)
            batch = client.call("GET", f"/v1/batches/{batch['id']}")
            counts = batch["request_counts"]
            progress.update(task, total=counts["total"] or None, completed=counts["completed"] + counts["failed"],
                            note=f"{batch['status']}, {counts['failed']} failed")
    return batch


def _save(client: GatewayClient, batch: dict[str, Any], out: Path) -> None:
    if batch.get("output_file_id"):
        _write(out, client.download(f"/v1/files/{batch['output_file_id']}/content"))
    if batch.get("error_file_id"):
        errors = client.download(f"/v1/files/{batch['error_file_id']}/content")
        _write(out.with_name(out.name + ".errors.jsonl"), errors)


def _write(path: Path, content: bytes) -> None:
    try:
        path.write_bytes(content)
    except OSError as exc:
        raise GatewayClientError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _show(batch: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(batch).decode())
        return
    counts = batch["request_counts"]
    click.echo(f"{batch['id']}  {batch['status']}  {counts['completed']} done, {counts['failed']} failed of "
               f"{counts['total']}  output {batch['output_file_id'] or '-'}  errors {batch['error_file_id'] or '-'}")
    for problem in ((batch.get("errors") or {}).get("data") or [])[:10]:
        click.echo(f"  line {problem.get('line')}: {problem.get('message')}")


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GatewayClientError(f"--metadata {pair!r}: use KEY=VALUE")
        found[key] = value
    return found


def _first_url(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    url = orjson.loads(raw).get("url")
                    if isinstance(url, str):
                        return url
                    break
    except OSError as exc:
        raise GatewayClientError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise GatewayClientError(f"{path}: line 1 is not a JSON object with a 'url'; give --endpoint") from exc
    raise GatewayClientError(f"{path}: no request with a 'url' on its first line; give --endpoint")
