"""``tokenomy distill tasks|collect|train|eval|promote|estimate|demo-log``: logged frontier traffic → a student that
replaces it. The method and the figures are in docs/distill.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tokenomy.cli.gateway_client import GatewayClient, api_key_option, given_url, url_option
from tokenomy.cli.terminal import show_progress, when
from tokenomy.errors import DistillError

_files = click.Path(exists=True, dir_okay=False, path_type=Path)
_dirs = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("distill")
def distill_group() -> None:
    """Distillation: find repeated tasks in logs, train a small student on the frontier's answers, promote it."""


class RichTracker:
    """The training progress bar (stderr): one bar per stage, with ETA when the stage has a total."""

    def __init__(self, progress: Any, console: Any) -> None:
        self._progress = progress
        self._console = console
        self._task: Any = None

    def stage(self, description: str, total: int | None) -> None:
        if self._task is not None:  # the previous stage is over: an open-ended one is shown full
            done = self._progress.tasks[-1]
            if done.total is None:
                self._progress.update(self._task, total=1, completed=1)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def note(self, text: str) -> None:
        self._console.print(text)


@contextmanager
def _tracker(quiet: bool) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tokenomy.distill.train import QuietTracker

    if quiet:
        yield QuietTracker()
        return
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=console) as progress:
        yield RichTracker(progress, console)


def _pricer() -> Any:
    from tokenomy.distill.costs import record_cost
    from tokenomy.pricing.catalogue import Catalogue
    from tokenomy.tokens.counter import TokenCounter

    catalogue, counter = Catalogue.load(None), TokenCounter()
    return lambda rec: record_cost(rec, catalogue, counter)


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=None, default=str))


@distill_group.command("tasks")
@click.argument("logs", nargs=-1, required=True, type=_files)
@click.option("--by", "kinds", type=click.Choice(["system", "route", "tag"]), multiple=True,
              help="Group by (repeatable; default: all three).")
@click.option("--min-requests", default=20, show_default=True, help="Leave out smaller groups.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def tasks_cmd(logs: tuple[Path, ...], kinds: tuple[str, ...], min_requests: int, as_json: bool) -> None:
    """List candidate tasks in request logs (the audit's formats, or tokenomy's stored bodies)."""
    from tokenomy.audit.records import BadLines
    from tokenomy.distill.selector import KINDS
    from tokenomy.distill.tasks import find_tasks, read_records

    bad = BadLines()
    groups = find_tasks(read_records(list(logs), bad), _pricer(), kinds=kinds or KINDS, min_requests=min_requests)
    rows = [g.summary() for g in groups]
    if as_json:
        _emit({"tasks": rows, "bad_lines": bad.count})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    wide = console.width >= 130
    table = Table(title=f"candidate tasks in {len(logs)} log(s)")
    for column in ("task / where", "requests", "prompts", "per day", "spend $", "shape", "sample")[:7 if wide else 6]:
        table.add_column(column, no_wrap=column != "sample")
    for r in rows:
        shape = f"classes ({r['labels']})" if r["labels"] else "free text"
        cells = [f"{r['name']}\n{r['where']}", str(r["requests"]), str(r["distinct_prompts"]),
                 str(r["requests_per_day"]), f"{float(r['spend_usd']):.4f}", shape, r["sample"][:40]]
        table.add_row(*cells[:7 if wide else 6])
    console.print(table)
    if bad.count:
        click.echo(f"{bad.count} bad line(s) skipped", err=True)


@distill_group.command("collect")
@click.argument("logs", nargs=-1, required=True, type=_files)
@click.option("--task", required=True, help="The task's name (as 'distill tasks' lists it, or your own with --where).")
@click.option("--where", help="system=HASH | route=R | tag=T (default: the listed task named --task).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Data directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as one JSON object.")
def collect_cmd(logs: tuple[Path, ...], task: str, where: str | None, out: Path, as_json: bool) -> None:
    """Write a task's train and eval sets (fine-tuning chat format, deduplicated, 20 % eval by prompt hash)."""
    from tokenomy.audit.records import BadLines
    from tokenomy.distill.collect import collect, resolve_selector
    from tokenomy.distill.tasks import read_records

    bad = BadLines()
    price = _pricer()
    records = list(read_records(list(logs), bad))
    selector = resolve_selector(task, where, records, price)
    done = collect(records, task=task, selector=selector, out=out, price=price, sources=[str(p) for p in logs])
    m = done.manifest
    if as_json:
        _emit(m)
        return
    click.echo(f"{task} ({m['where']}): {m['train']} train + {m['eval']} eval examples from {m['requests']} "
               f"requests ({m['duplicates_dropped']} repeats dropped, {m['conflicting_prompts']} prompts with "
               f"conflicting answers); {m['shape']}" + (f", {len(m['labels'])} labels" if m["labels"] else "")
               + f"; teacher ${float(m['teacher_usd_per_1k']):.4f} per 1k requests -> {out}")


@distill_group.command("train")
@click.option("--data", required=True, type=_dirs, help="Data directory from 'distill collect'.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Student directory.")
@click.option("--student", default="auto", show_default=True,
              type=click.Choice(["auto", "head", "plain", "lora"]),
              help="auto: by task shape; head: embeddings + linear head; plain: the baseline head; lora: LoRA.")
@click.option("--base", help="LoRA base: a Hugging Face directory or a GGUF file (default: the bundled SmolLM2).")
@click.option("--max-minutes", type=float, help="Stop training after this many minutes (LoRA: save and export).")
@click.option("--threads", default=2, show_default=True, help="CPU threads for training and for the student.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the student's summary as one JSON object.")
def train_cmd(data: Path, out: Path, student: str, base: str | None, max_minutes: float | None, threads: int,
              quiet: bool, as_json: bool) -> None:
    """Train a student on the train split (resumes from <out>/checkpoint after a kill)."""
    from tokenomy.distill.examples import read_manifest
    from tokenomy.distill.train import train_student

    read_manifest(data)  # a bad directory is one line, before any progress bar
    with _tracker(not show_progress(quiet)) as tracker:
        meta = train_student(data, out, student=student, base=base, max_minutes=max_minutes, tracker=tracker,
                             threads=threads)
    summary = {k: meta.get(k) for k in ("task", "kind", "why", "train_examples", "train_minutes", "cv_agreement",
                                        "steps", "epochs", "stopped", "export")}
    if as_json:
        _emit(summary)
        return
    click.echo(f"{meta['kind']} student for {meta['task']} -> {out} in {meta['train_minutes']:.2f} min"
               + (f"; cross-validated agreement {meta['cv_agreement']:.3f}" if meta.get("cv_agreement") else "")
               + (f"; {meta['stopped']}" if meta.get("stopped") else ""))


@distill_group.command("eval")
@click.option("--student", "student_dir", required=True, type=_dirs, help="Student directory.")
@click.option("--data", required=True, type=_dirs, help="Data directory (its eval split is used).")
@click.option("--rule", type=click.Choice(["exact", "normalised", "final-answer"]),
              help="Agreement rule (default: exact for classification, normalised for free text).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_cmd(student_dir: Path, data: Path, rule: str | None, as_json: bool) -> None:
    """Agreement with the teacher on the eval split, the confidence-coverage curve, cost and latency."""
    from tokenomy.distill.evaluate import evaluate
    from tokenomy.distill.examples import EVAL, TRAIN, load_split, read_manifest
    from tokenomy.distill.student import load_student, read_student

    manifest = read_manifest(data)
    examples = load_split(data, EVAL)
    train = load_split(data, TRAIN)
    meta = read_student(student_dir)
    student = load_student(student_dir, threads=int(meta.get("threads") or 1))
    result = evaluate(student, examples, manifest, rule=rule, train_answers=[e.answer for e in train])
    result["train_minutes"] = meta.get("train_minutes")
    if as_json:
        _emit(result)
        return
    click.echo(f"{result['task']}: {result['student']} student agrees with the teacher on {result['agreement']:.3f} "
               f"of {result['n']} held-out requests ({result['rule']}); majority answer {result['majority_agreement']}")
    click.echo(f"cost per 1k requests: student ${result['student_usd_per_1k']:.6f} vs teacher "
               f"${result['teacher_usd_per_1k']:.4f} (ratio {result['cost_ratio'] or 0:.5f}); latency p50 "
               f"{result['latency_ms_p50']} ms")
    for row in result["coverage"]:
        agreement = "-" if row["agreement"] is None else f"{row['agreement']:.3f}"
        click.echo(f"  confidence >= {row['threshold']:.2f}: answers {row['coverage']:.1%}, agreement {agreement}; "
                   f"cascade agreement {row['cascade_agreement']:.3f} at ${row['cascade_usd_per_1k']:.4f}/1k")


@distill_group.command("demo-log")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="JSONL file to write.")
@click.option("--task", "tasks", multiple=True,
              type=click.Choice(["topic", "reply-check", "same-topic", "science-domain", "math"]),
              help="Tasks to include (repeatable; default: all).")
@click.option("--limit", type=int, help="At most this many distinct prompts per task.")
def demo_cmd(out: Path, tasks: tuple[str, ...], limit: int | None) -> None:
    """Write a week of demo traffic made from real licensed text (corpus labels stand in for the teacher)."""
    from tokenomy.distill.demo import DEFAULT_TASKS, write_demo_log

    count = write_demo_log(out, tasks or DEFAULT_TASKS, limit=limit)
    click.echo(f"wrote {count} requests to {out}")


def _registry(config: str | None) -> Path:
    from tokenomy.config.settings import data_home, load_settings
    from tokenomy.distill.registry import registry_path

    settings = load_settings(config)
    return registry_path(settings.distill.registry, data_home(settings))


@distill_group.command("promote")
@click.argument("student_dir", type=_dirs)
@click.option("--min-agreement", type=float, required=True, help="A: shadow agreement to go live, and the drift "
              "floor of live spot-checks (e.g. 0.9).")
@click.option("--data", type=_dirs, help="Data directory (default: the one the student was trained on).")
@click.option("--shadow-sample", default=0.25, show_default=True, help="Share of the task's requests shadowed.")
@click.option("--spot-check", default=0.05, show_default=True, help="Share of live answers checked by the teacher.")
@click.option("--min-checks", default=50, show_default=True, help="Shadow comparisons needed before going live.")
@click.option("--threshold", type=float, help="Confidence to answer at (default: from the eval split).")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Gateway config (for the registry path).")
@click.option("--to", "to", help="Serve the (LoRA) student as an adapter on this deployment's shared base.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@url_option("without either, nothing is checked")
@api_key_option("With --url: a key for a gateway with auth on")
def promote_cmd(student_dir: Path, min_agreement: float, data: Path | None, shadow_sample: float, spot_check: float,
                min_checks: int, threshold: float | None, config: str | None, to: str | None, as_json: bool,
                url: str | None, api_key: str | None) -> None:
    """Register a student with the gateway: shadow first, live at agreement >= A, demoted on drift. A running
    gateway reading the same registry picks it up within seconds; with --url (or TOKENOMY_URL) this waits until
    that gateway serves it. With --to, the student is served as an adapter on that deployment's shared base (which
    loads it when the gateway starts)."""
    import os

    from tokenomy.config.settings import load_settings
    from tokenomy.distill.attach import adapter_for, attach_student
    from tokenomy.distill.promote import promote

    settings = load_settings(config)
    if to is not None:
        adapter_for(student_dir, to, settings, os.environ)  # a wrong target fails before the evaluation
    result = promote(student_dir, _registry(config), min_agreement=min_agreement, data=data,
                     shadow_sample=shadow_sample, spot_check=spot_check, min_checks=min_checks, threshold=threshold,
                     serve_on=to)
    if to is not None:
        result["adapter"] = attach_student(student_dir, to, settings, os.environ)
    if url := given_url(url):
        result["gateway"] = _await_student(GatewayClient(url, api_key), result)
    if as_json:
        _emit(result)
        return
    at = result["at_threshold"] or {}
    served = f"; {result['gateway']} serves it" if result.get("gateway") else \
        "; a gateway reading it picks it up within seconds"
    click.echo(f"{result['task']} -> deployment {result['deployment']} ({result['where']}), state shadow, in "
               f"{result['registry']}{served}")
    if result.get("adapter"):
        adapter = result["adapter"]
        click.echo(f"served as adapter {adapter['adapter']} on {adapter['deployment']}'s base (restart the gateway "
                   "to load it)" + (f"; the upstream loads it: {adapter['upstream']}" if adapter["upstream"] else ""))
    click.echo(f"shadow: {result['shadow_sample']:.0%} of the task's requests are also answered by the student; live "
               f"after {result['min_checks']} comparisons agree >= {min_agreement:g}; then {result['spot_check']:.0%} "
               "spot-checks, demoted below it")
    if at:
        teacher = result["eval"]["teacher_usd_per_1k"]
        click.echo(f"live at confidence >= {result['threshold']:.2f}: on the eval split it answers "
                   f"{at['coverage']:.1%} with agreement {at['agreement']:.3f}; cascade agreement "
                   f"{at['cascade_agreement']:.3f} at ${at['cascade_usd_per_1k']:.4f} per 1k vs the teacher's "
                   f"${teacher:.4f}; about ${result['monthly_saving_usd_live']:.2f}/month at "
                   f"{result['requests_per_day']:g} requests/day")


def _await_student(client: GatewayClient, result: dict[str, Any], wait_s: float = 30.0) -> str:
    """Wait until the gateway's /healthz lists this promotion; its URL once it does."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        students = client.call("GET", "/healthz").get("students") or []
        if any(s.get("task") == result["task"] and s.get("promoted_at") == result["promoted_at"] for s in students):
            return client.url
        if time.monotonic() > deadline:
            raise DistillError(f"the gateway at {client.url} did not load {result['task']} within {wait_s:g} s: does "
                               f"it read the registry {result['registry']} (distill.registry, TOKENOMY_HOME) and "
                               "serve students (distill.serve_students)? Its log says why a load failed")
        time.sleep(0.5)


@distill_group.command("status")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Gateway config (for the registry path).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_cmd(config: str | None, as_json: bool) -> None:
    """Promoted students: their state and the history of their state changes."""
    from dataclasses import asdict

    from tokenomy.distill.registry import load_registry

    promotions = [asdict(p) for p in load_registry(_registry(config))]
    if as_json:
        _emit({"students": promotions})
        return
    if not promotions:
        click.echo("no promoted students")
    for p in promotions:
        last = p["history"][-1] if p["history"] else {}
        click.echo(f"{p['task']}: {p['kind']} student, {p['state']} since {when(last.get('at'))} "
                   f"({last.get('reason') or 'no reason recorded'}); "
                   f"answers at confidence >= {p['threshold']:.2f}; A = {p['min_agreement']:g}")


@distill_group.command("estimate")
@click.option("--base", default="8b", show_default=True, help="Base model size: 1b, 3b, 8b, 13b, 70b, …")
@click.option("--examples", type=int, required=True, help="Training examples.")
@click.option("--tokens-per-example", type=int, help="Default: the task's mean (with --data), else 500.")
@click.option("--epochs", default=3, show_default=True)
@click.option("--data", type=_dirs, help="A data directory: its volume and teacher cost give the monthly saving.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def estimate_cmd(base: str, examples: int, tokens_per_example: int | None, epochs: int, data: Path | None,
                 as_json: bool) -> None:
    """GPU-hours and dollars for QLoRA on A100/H100/L4, and the saving at the task's logged volume."""
    from tokenomy.distill.estimate import estimate
    from tokenomy.distill.examples import TRAIN, load_split, read_manifest

    manifest = read_manifest(data) if data else None
    if tokens_per_example is None and data is not None:
        rows = load_split(data, TRAIN)
        tokens_per_example = max(1, sum(len(e.system) + len(e.user) + len(e.answer) for e in rows) // 4 // len(rows))
    result = estimate(base, examples, tokens_per_example=tokens_per_example or 500, epochs=epochs, manifest=manifest)
    if as_json:
        _emit(result)
        return
    click.echo(f"QLoRA of a {result['params_billion']:g}B base on {examples:,} examples x "
               f"{result['tokens_per_example']} tokens x {epochs} epochs = {result['training_tokens']:,} tokens "
               f"(6N FLOPs/token, MFU {result['assumptions']['mfu']:.0%}, on-demand prices from plan/gpus.json)")
    for r in result["runs"]:
        fits = "" if r["fits_in_memory"] else " (does not fit in memory)"
        click.echo(f"  {r['gpu']:5} {r['tokens_per_s']:>7,} tok/s  {r['gpu_hours']:>8.2f} GPU-h  ${r['usd']:>9.2f} "
                   f"at ${r['usd_per_hour']}/h{fits}")
    click.echo(f"seed claim '{result['seed_claim']['claim']}': {result['seed_claim']['verdict']}")
    if result["serving"]:
        s = result["serving"]
        click.echo(f"serving at {s['requests_per_day']:g} requests/day: teacher "
                   f"${s['teacher_usd_per_month']:,.2f}/month vs {s['student_on']} "
                   f"${s['student_usd_per_month']:,.2f}/month: saving "
                   f"${s['saving_usd_per_month']:,.2f}/month ({s['note']})")
