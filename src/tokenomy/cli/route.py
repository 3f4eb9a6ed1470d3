"""``tokenomy route train --data FILE... --out DIR [--prices FILE] [--target KIND=VALUE]``
``tokenomy route eval --router DIR --data FILE... [--json] [--decisions OUT.jsonl] [--plot OUT.png] [--target ...]``

Learned routing from outcome data (``shared/data/README.md``); the method, the figures and the targets are in
docs/routing.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tokenomy.cli.terminal import show_progress

if TYPE_CHECKING:
    from tokenomy.routing.features import Embed

_EMBED_CHUNK = 256
_files = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("route")
def route_group() -> None:
    """Learned routing: train a router on outcome data, evaluate it against baselines."""


@contextmanager
def _embedding_progress(embedders: Sequence[Any]) -> Iterator[list[Embed]]:
    """One embed function per embedder, sharing one rich progress bar on stderr for long inputs (when stderr is a
    terminal, also with --json)."""
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), disable=not show_progress(), transient=True) as bar:

        def with_bar(embedder: Any) -> Embed:
            def embed(texts: list[str]) -> Any:
                task = bar.add_task("embedding", total=len(texts), visible=len(texts) > _EMBED_CHUNK)
                parts = []
                for start in range(0, len(texts), _EMBED_CHUNK):
                    parts.append(embedder.embed(texts[start : start + _EMBED_CHUNK]).vectors)
                    bar.advance(task, len(parts[-1]))
                bar.remove_task(task)
                return np.vstack(parts) if parts else np.zeros((0, embedder.dimensions), dtype=np.float32)

            return embed

        yield [with_bar(e) for e in embedders]


def _cached(embed: Embed, folder: Path | None, embedder: str, progress: Any) -> Embed:
    """``embed`` behind the on-disk embedding cache in ``folder`` (None: no cache)."""
    if folder is None:
        return embed
    from tokenomy.routing.embedding_cache import EmbeddingCache

    cache = EmbeddingCache(folder, embedder)
    wrapped = cache.wrap(embed)

    def counted(texts: list[str]) -> Any:
        vectors = wrapped(texts)
        if texts:
            progress(f"embeddings: {cache.hits} from {cache.path}, {cache.misses} computed")
        return vectors

    return counted


def _cache_folder(given: Path | None, disabled: bool, router_dir: Path) -> Path | None:
    from tokenomy.routing.embedding_cache import DEFAULT_FOLDER

    return None if disabled else given or router_dir / DEFAULT_FOLDER


_cache_options = [
    click.option("--embedding-cache", "embedding_cache", type=click.Path(file_okay=False, path_type=Path),
                 help="Folder of cached prompt embeddings (default: embedding-cache/ in the router directory; "
                      "never read when serving, safe to delete)."),
    click.option("--no-embedding-cache", "no_embedding_cache", is_flag=True, help="Embed every text afresh."),
]


def _with_cache_options(command: Any) -> Any:
    for option in reversed(_cache_options):
        command = option(command)
    return command


def _prices(path: Path | None) -> dict[str, Any]:
    from tokenomy.routing.outcomes import read_prices

    return read_prices(path) if path is not None else {}


@route_group.command("train")
@click.option("--data", "data", type=_files, multiple=True, required=True, help="Outcomes JSONL file (repeatable).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Router directory to write.")
@click.option("--prices", "prices", type=_files, help="model -> input_usd_per_mtok/output_usd_per_mtok JSON, for "
              "rows without cost_usd (default: the data file's NAME.models.json, then the price catalogue).")
@click.option("--target", "target", default="quality=0.95", show_default=True,
              help="Default operating point: share=S (frontier-call share), quality=Q (× the best single model's "
                   "score) or budget=B (USD per 1k requests).")
@click.option("--embedder", type=click.Choice(["auto", "all-minilm-l6-v2", "wordllama-l2-supercat"]),
              default="auto", show_default=True,
              help="Prompt embedder: auto measures both on the training rows' folds and keeps the one that routes "
                   "better (a tie to WordLlama: static, ~1-2 ms a decision; MiniLM ~15 ms).")
@click.option("--no-guard", "no_guard", is_flag=True,
              help="Serve the learned rule at every operating point, also where it does not beat the best single "
                   "models out of fold (the no-harm guard off; docs/routing.md, 'No harm').")
@click.option("--current", "current", metavar="MODEL",
              help="The model you call today: where learning does not pay the guard serves it, not the model that "
                   "merely scored best on these rows, unless another beats it by more than the fold-to-fold noise.")
@click.option("--json", "as_json", is_flag=True, help="Print the training report as one JSON object.")
@_with_cache_options
def train_cmd(data: tuple[Path, ...], out: Path, prices: Path | None, target: str, embedder: str, no_guard: bool,
              current: str | None, as_json: bool, embedding_cache: Path | None, no_embedding_cache: bool) -> None:
    """Train a router on the rows whose split is not test."""
    from rich.console import Console

    from tokenomy.embeddings.choice import EMBEDDERS, load_embedder
    from tokenomy.routing.calibrate import parse_target
    from tokenomy.routing.features import FeatureConfig
    from tokenomy.routing.train import train
    from tokenomy.tokens.counter import TokenCounter

    parse_target(target)  # a bad target fails before minutes of embedding
    if current is not None and no_guard:
        raise click.UsageError("--current sets what the no-harm guard serves: drop --no-guard to use it")
    console = Console(stderr=True, quiet=not show_progress())
    say = lambda text: console.print(f"[dim]{text}[/dim]")  # noqa: E731
    names = list(EMBEDDERS) if embedder == "auto" else [embedder]
    folder = _cache_folder(embedding_cache, no_embedding_cache, out)
    with _embedding_progress([load_embedder(name) for name in names]) as bars:
        embeds = {name: _cached(embed, folder, name, say) for name, embed in zip(names, bars, strict=True)}
        first = embeds.pop(names[0])
        report = train(list(data), out, embed=first, counter=TokenCounter(), prices=_prices(prices), target=target,
                       base=FeatureConfig(embedder=names[0]), rivals=embeds, progress=say, no_harm=not no_guard,
                       current=current)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"router written to {out}: {report['rows']} training rows, {len(report['models'])} models, "
               f"embedder {report['embedder']}, learner {report['method']}, "
               f"default target {report['default_target']} ({report['seconds']['total']} s)")
    _print_no_harm(report["no_harm"])
    if report.get("policy") == "cascade":
        shares = report["cascade"]["served_at_shares"]
        click.echo(f"the cascade beats the router and the hull out of fold at escalation shares {shares[0]:.2f}-"
                   f"{shares[-1]:.2f}: policy auto serves it there")
    _print_parts(report.get("parts") or {}, report.get("policy") == "parts")


def _print_parts(parts: dict[str, Any], chosen: bool) -> None:
    """Mixed traffic: what each part serves and why (tokenomy.routing.parts)."""
    if "detector_oof_balanced_accuracy" not in parts:
        return
    click.echo(f"parts (only some rows carry the cheap model's answer): detector out-of-fold balanced accuracy "
               f"{parts['detector_oof_balanced_accuracy']:.3f}")
    if not parts.get("built"):
        click.echo(f"  not used: {parts['reason']}")
        return
    for part in parts["parts"]:
        kinds = ", ".join(f"{k} {v}" for k, v in part["vertices_by_kind"].items())
        shares = part["cascade_shares_kept"]
        cascade = f"; cascade beats its hull at escalation shares {shares[0]:.2f}-{shares[-1]:.2f}" if shares else ""
        click.echo(f"  {part['name']}: {part['rows']} rows; {part['route_points_kept']} router points beat its hull"
                   f"{cascade}; vertices of the mix's curve serve {kinds}")
    click.echo("policy auto serves each part its candidate on one curve for the mix" if chosen else
               "policy auto routes: the cascade is on no vertex of the mix's curve")


def _print_no_harm(no_harm: dict[str, Any]) -> None:
    """Per cost band, the learned rule's out-of-fold uplift over the hull of single models, and the verdict."""
    if not no_harm.get("guard"):
        click.echo("no-harm guard off: the learned rule serves every operating point")
        return
    click.echo("out-of-fold uplift over the hull of single models, per cost band (normalised cost; points):")
    for band in no_harm["bands"]:
        span = f"{band['cost_from']:.1f}-{band['cost_to']:.1f}" if band["cost_to"] is not None else \
            f">= {band['cost_from']:.1f}"
        kept = "learned" if band["beats_hull"] else "hull"
        click.echo(f"  {span:>9}  {100 * band['uplift']:+6.2f} +/- {100 * band['spread']:5.2f}  "
                   f"({band['points']} points) -> {kept}")
    click.echo(no_harm["verdict"])
    if no_harm.get("current"):
        served = no_harm["hull_served"]
        click.echo(f"your current model {no_harm['current']}: " + (
            "served where learning does not pay" if no_harm["current"] in served else
            f"not served: on these rows the hull's choices ({', '.join(served)}) do better at their cost"))


@route_group.command("eval")
@click.option("--router", "router_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Router directory (tokenomy route train).")
@click.option("--data", "data", type=_files, multiple=True, required=True, help="Outcomes JSONL file (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--decisions", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {point, id, model} per (operating point, row).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG of the curves.")
@click.option("--target", "targets", multiple=True, help="Also report target vs realised for KIND=VALUE "
              "(repeatable; the router's default target is always reported).")
@click.option("--prices", "prices", type=_files, help="Price file for rows without cost_usd.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resample the evaluated rows N times: spreads of APGR, cost share and the worst point's gap.")
@_with_cache_options
def eval_cmd(router_dir: Path, data: tuple[Path, ...], as_json: bool, decisions: Path | None, plot: Path | None,
             targets: tuple[str, ...], prices: Path | None, bootstrap: int, embedding_cache: Path | None,
             no_embedding_cache: bool) -> None:
    """Evaluate a router on the rows whose split is test (every row when none has a split)."""
    from tokenomy.routing.calibrate import parse_target
    from tokenomy.routing.evaluate import evaluate
    from tokenomy.routing.router import Router

    for text in targets:
        parse_target(text)
    from rich.console import Console

    console = Console(stderr=True, quiet=not show_progress())
    router = Router.load(router_dir, threads=2)
    with _embedding_progress([router.embedder]) as (embed,):
        router.batch_embed = _cached(embed, _cache_folder(embedding_cache, no_embedding_cache, router_dir),
                                     router.state.features.embedder, lambda t: console.print(f"[dim]{t}[/dim]"))
        result = evaluate(router, list(data), targets=targets, prices=_prices(prices), decisions=decisions,
                          bootstrap=bootstrap)
    if plot is not None:
        from tokenomy.routing.plot import plot_curves

        plot_curves(result, plot)
    if as_json:
        click.echo(json.dumps(result))
        return
    _print_summary(result)


def _print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['rows']} rows; axis: {result['axis']}")
    for column in ("method", "APGR", "APGR (cost)", "CPT50", "CPT80", "USD/1k to best", "harm", "uplift"):
        table.add_column(column)
    for name, figures in result["summary"].items():
        if "apgr" not in figures:
            continue
        reach = figures["cost_to_best_usd"]
        table.add_row(name, f"{figures['apgr']:.3f}", f"{figures['apgr_cost']:.3f}", _fmt(figures["cpt50"]),
                      _fmt(figures["cpt80"]), "-" if reach is None else f"{reach * 1000:.3f}",
                      f"{100 * figures['harm']:.1f}", f"{100 * figures['uplift_mean']:+.1f}")
    Console().print(table)
    hull = sum(result["no_harm"]["hull_points"])
    click.echo(f"harm (largest shortfall below the hull of single models at equal cost, points): router "
               f"{100 * result['summary']['router']['harm']:.2f}; {hull} of {len(result['no_harm']['hull_points'])} "
               "operating points serve the hull's single model")
    if "auto" in result["summary"] and result.get("policy") == "parts":
        note = result["parts"]
        click.echo(f"policy auto (per part: rows {note['rows_per_part']}, the cascade where it won on its part): "
                   f"harm {100 * result['summary']['auto']['harm']:.2f}")
    elif "auto" in result["summary"]:
        click.echo("policy auto (the cascade where it won out of fold): harm "
                   f"{100 * result['summary']['auto']['harm']:.2f}")
    for row in result["calibration"]:
        rule = f"frontier call charged {row['mu']:.3g}" if row.get("mu") else f"λ={row['lambda']:.4g}"
        click.echo(f"target {row['target']}: realised {row['realised']:.3f} ({rule})")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
