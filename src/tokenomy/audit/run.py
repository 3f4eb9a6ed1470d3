"""Run an audit over log files (and PostgreSQL ledgers given by URL): detect each file's format, stream its records
through one ``Audit``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tokenomy.audit.analyse import Audit
from tokenomy.audit.paraphrase import ParaphraseResult, ParaphraseSample
from tokenomy.audit.pg_ledger import read_pg_ledger, shown_url
from tokenomy.audit.readers import detect_format, read_log
from tokenomy.audit.records import BadLines, LogRecord
from tokenomy.audit.routing import RouterTargets
from tokenomy.audit.strategies import Assumptions
from tokenomy.db.engine import is_postgres
from tokenomy.errors import AuditError
from tokenomy.plan.apis import MID_TIER
from tokenomy.pricing.catalogue import Catalogue


@dataclass
class AuditRun:
    audit: Audit
    formats: dict[str, str] = field(default_factory=dict)  # file name (a ledger URL, password masked) -> format
    bad: BadLines = field(default_factory=BadLines)
    paraphrases: ParaphraseResult | None = None
    semantic_note: str = "not requested"


def cheapest_mid_tier(catalogue: Catalogue, at: datetime) -> str | None:
    """The routing target: the mid-tier model (``tokenomy.plan.apis.MID_TIER``) cheapest at a 3:1 input:output
    blend of its standard rates."""
    prices = [p for p in (catalogue.find(m, at) for m in MID_TIER) if p is not None]
    if not prices:
        return None
    return min(prices, key=lambda p: 3 * p.input + p.output).model


OnFile = Callable[[Path, int], Callable[[int], None] | None]


def run_audit(paths: Sequence[Path | str], catalogue: Catalogue, assumptions: Assumptions,
              on_file: OnFile | None = None, router: RouterTargets | None = None, semantic: bool = False) -> AuditRun:
    """``paths``: log files, or PostgreSQL ledger URLs (``str``); ``on_file(path, size)`` may return a progress
    callback (bytes read) for a file; ``router`` replaces the routing heuristic; ``semantic`` measures paraphrases on
    a sample (needs WordLlama: the ``route`` extra)."""
    if assumptions.small_model is None:
        assumptions = replace(assumptions, small_model=cheapest_mid_tier(catalogue, datetime.now(UTC)))
    if not 0 <= assumptions.batchable_share <= 1:
        raise AuditError(f"--batchable-share must be in [0, 1], got {assumptions.batchable_share}")
    sample = ParaphraseSample(assumptions.exact_ttl_s) if semantic else None
    run = AuditRun(Audit(catalogue, assumptions, router=router, paraphrases=sample))
    for path in paths:
        for record in _records(path, run, on_file):
            run.audit.add(record)
    if run.audit.total.requests == 0:
        raise AuditError("no request could be read from the logs" + _first_bad(run.bad))
    if sample is not None:
        _measure_paraphrases(run, sample)
    return run


def _records(source: Path | str, run: AuditRun, on_file: OnFile | None) -> Iterator[LogRecord]:
    """One source's records: a PostgreSQL ledger by URL (no progress bar: its size is not known up front), else a
    file in its detected format."""
    if isinstance(source, str) and is_postgres(source):
        run.formats[shown_url(source)] = "ledger"
        return read_pg_ledger(source)
    path = Path(source)
    if not path.is_file():
        raise AuditError(f"{path}: no such file")
    fmt = detect_format(path)
    run.formats[path.name] = fmt
    progress = on_file(path, path.stat().st_size) if on_file else None
    return read_log(path, fmt, run.bad, progress)


def _measure_paraphrases(run: AuditRun, sample: ParaphraseSample) -> None:
    from tokenomy.embeddings.static import WordLlamaEmbedder
    from tokenomy.errors import ConfigError

    try:
        embedder = WordLlamaEmbedder.load()
    except ConfigError as exc:  # the route extra is not installed: say so in the report
        run.semantic_note = f"not measured: {exc.message}"
        return
    run.paraphrases = sample.measure(lambda texts: embedder.embed(texts).vectors)
    run.semantic_note = (f"WordLlama cosine >= {sample.threshold} on the first {run.paraphrases.sampled:,} "
                         "non-repeat requests")


def _first_bad(bad: BadLines) -> str:
    if not bad.first:
        return ""
    name, line, reason = bad.first[0]
    return f" ({bad.count} bad lines; first: {name}:{line} {reason})"


def monthly(usd: Decimal, window_s: float, days_per_month: int) -> Decimal:
    """``usd`` spent over ``window_s`` seconds, scaled to a month of ``days_per_month`` days."""
    return usd * days_per_month * 86_400 / Decimal(str(window_s))
