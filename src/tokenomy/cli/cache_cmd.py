"""``tokenomy cache simulate``: what provider prompt caching would bill for a workload, with and without shaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from tokenomy.errors import InvalidRequestError

DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o"}


@click.group("cache")
def cache_group() -> None:
    """Response and prompt caching tools."""


@cache_group.command("simulate")
@click.argument("log", type=click.Path(dir_okay=False), required=False)
@click.option("--demo", is_flag=True, help="Use the built-in multi-turn workload instead of a log.")
@click.option("--provider", type=click.Choice(["anthropic", "openai"]), default="anthropic", show_default=True)
@click.option("--model", help="Model whose prices and cache minimums apply (default per provider).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML config file (for the price override file in the data dir).")
def simulate(log: str | None, demo: bool, provider: str, model: str | None, as_json: bool,
             config_path: str | None) -> None:
    """Replay LOG (OpenAI-format JSONL: timestamp + request per line) through the provider's caching rules."""
    from tokenomy.audit.cache_workload import demo as demo_workload
    from tokenomy.audit.cache_workload import read_log
    from tokenomy.audit.prompt_cache import Simulator
    from tokenomy.config.settings import data_home, load_settings
    from tokenomy.pricing.catalogue import OVERRIDE_FILENAME, Catalogue
    from tokenomy.tokens.counter import TokenCounter

    if bool(log) == demo:
        raise InvalidRequestError("give a LOG file or --demo (one of them)")
    catalogue = Catalogue.load(data_home(load_settings(config_path)) / OVERRIDE_FILENAME)
    model = model or DEFAULT_MODELS[provider]
    if catalogue.resolve(model) is None:
        raise InvalidRequestError(f"--model {model!r} has no price in the catalogue, so nothing can be billed; "
                                  "`tokenomy prices` lists the priced models (`tokenomy prices import` adds one)")
    workload = demo_workload() if demo else list(read_log(Path(str(log))))
    if not workload:
        raise InvalidRequestError(f"{log}: no requests to replay (one JSON object a line with a timestamp and a "
                                  "request; see docs/cache.md)")
    simulator = Simulator(provider, model, TokenCounter(), catalogue)
    report = simulator.run(workload)
    _unpriced(report, catalogue, min(at for at, _ in workload))
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    for label in ("unshaped", "shaped"):
        r = report[label]
        click.echo(f"{label:9} requests {r['requests']}  prompt {r['prompt_tokens']:,}"
                   f"  cacheable {r['cacheable_prefix_tokens']:,}  read {r['cache_read_tokens']:,}"
                   f" ({r['cacheable_read_share']:.1%} of cacheable)"
                   f"  write {r['cache_write_5m_tokens'] + r['cache_write_1h_tokens']:,}  ${r['cost_usd']}")
    click.echo(f"saving ${report['saving_usd']} ({report['provider']}, {report['model']})")


def _unpriced(report: dict[str, Any], catalogue: Any, first_s: float) -> None:
    """Requests dated before the model's first price cost nothing in the report: an error when that is all of them,
    a warning when some."""
    from datetime import UTC, datetime

    unpriced, total = report["unshaped"]["unpriced_requests"], report["unshaped"]["requests"]
    if not unpriced:
        return
    since = catalogue.resolve(report["model"]).rows[0].effective_from
    first = datetime.fromtimestamp(first_s, UTC).date()
    why = (f"{unpriced} of {total} requests are dated before the first price of {report['model']} ({since}; the "
           f"log starts {first})")
    if unpriced == total:
        raise InvalidRequestError(f"{why}: nothing could be billed; import the price with an earlier "
                                  "`tokenomy prices import --effective-from DATE`")
    click.echo(f"warning: {why}: they are left out of the costs", err=True)


@cache_group.command("eval")
@click.option("--pairs", "pairs_path", required=True, type=click.Path(dir_okay=False),
              help="JSONL of {\"a\", \"b\", \"same\"} rows.")
@click.option("--max-error", type=float, default=0.02, show_default=True,
              help="The bound to evaluate: the share of served semantic hits allowed to be wrong.")
@click.option("--cross-negatives", is_flag=True,
              help="Build negatives by pairing across rows (for files whose rows are all same: true).")
@click.option("--online", is_flag=True, help="Also replay with each row's label revealed after its lookup.")
@click.option("--calibration", type=click.Path(dir_okay=False), help="A calibration file instead of the shipped one.")
@click.option("--policy", type=click.Choice(["verified", "calibrated"]), default="verified", show_default=True,
              help="verified: also play the verified policy's protocol at 0.02, 0.05, 0.1 and --max-error "
                   "(labels revealed only for the lookups it verifies); calibrated: the threshold table only.")
@click.option("--explore", type=float, default=0.1, show_default=True,
              help="verified: the share of servable lookups still verified.")
@click.option("--checker-sensitivity", type=float, default=1.0, show_default=True,
              help="verified: simulate an answer check that catches only this share of wrong answers.")
@click.option("--seed", type=int, default=0, show_default=True, help="verified: the exploration draws' seed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(pairs_path: str, max_error: float, cross_negatives: bool, online: bool, calibration: str | None,
             policy: str, explore: float, checker_sensitivity: float, seed: int, as_json: bool) -> None:
    """Semantic cache on labelled pairs: insert every distinct a, look up every b, count correct and wrong hits."""
    from rich.progress import Progress

    from tokenomy.cache.semantic.evaluate import VERIFIED_LEVELS, Evaluation, read_pairs
    from tokenomy.cache.semantic.evaluate import cross_negatives as with_negatives
    from tokenomy.cache.semantic.verifier import load_calibration
    from tokenomy.cli.terminal import err_console, show_progress
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    if not 0 < max_error < 1:
        raise InvalidRequestError(f"--max-error must be between 0 and 1, got {max_error}")
    if not 0 <= explore <= 1 or not 0 < checker_sensitivity <= 1:
        raise InvalidRequestError("--explore must be between 0 and 1 and --checker-sensitivity above 0, at most 1")
    pairs = read_pairs(Path(pairs_path))
    if cross_negatives:
        pairs = with_negatives(pairs)
    embedder = MiniLMEmbedder.load()
    with Progress(transient=True, console=err_console(), disable=not show_progress()) as progress:
        tasks: dict[str, object] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)  # type: ignore[arg-type]

        evaluation = Evaluation(lambda texts: embedder.embed(list(texts)).vectors,
                                load_calibration(Path(calibration) if calibration else None), progress=report)
        levels = sorted({*VERIFIED_LEVELS, max_error}) if policy == "verified" else ()
        result = evaluation.run(pairs, max_error=max_error, online=online, verified=levels, explore=explore,
                                checker_sensitivity=checker_sensitivity, seed=seed)
    if as_json:
        click.echo(orjson.dumps(result).decode())
        return
    click.echo(f"{result['pairs']} pairs ({result['same_rows']} same), {result['entries']} cached entries")
    click.echo(f"lookup p50 {result['lookup_ms']['p50']} ms, p99 {result['lookup_ms']['p99']} ms"
               f" (+ embedding p50 {result['embed_ms']['p50']} ms)")
    rows = [*result["sweep"], {"max_error": "baseline", **result["baseline"], "threshold": "cos 0.8"}]
    rows += [{**r, "max_error": f"online {r['max_error']}", "threshold": r["final_threshold"]}
             for r in result.get("online", [])]
    click.echo(f"{'max_error':>14} {'threshold':>9} {'correct':>8} {'wrong':>6} {'miss':>6}"
               f" {'hit rate':>9} {'wrong %':>8}")
    for r in rows:
        click.echo(f"{r['max_error']!s:>14} {r['threshold']!s:>9} {r['correct_hits']:>8} {r['wrong_hits']:>6}"
                   f" {r['misses']:>6} {r['correct_hit_rate']!s:>9} {r['wrong_share']:>8.1%}")
    verified = result.get("verified")
    if verified:
        click.echo("verified policy: labels seen only when verified; saved% = calls avoided")
        click.echo(f"{'max_err':>7} {'correct':>7} {'wrong':>5} {'wrong%':>6} {'95% interval':>13}"
                   f" {'hits%':>6} {'verif%':>6} {'saved%':>6} {'half2 wrong%':>12}")
        for r in verified:
            ci = r["wrong_share_95"]
            interval = f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}" if ci else "-"
            click.echo(f"{r['max_error']!s:>7} {r['correct_hits']:>7} {r['wrong_hits']:>5}"
                       f" {100 * r['wrong_share']:>6.1f} {interval:>13} {100 * (r['correct_hit_rate'] or 0):>6.1f}"
                       f" {100 * r['verification_share']:>6.1f} {100 * r['net_saving']:>6.1f}"
                       f" {100 * r['halves'][1]['wrong_share']:>12.1f}")
