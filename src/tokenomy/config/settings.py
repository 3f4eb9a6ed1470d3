"""Settings: the one place where flags, environment, the YAML file and defaults meet.

Precedence is flag > env > file > default, applied in ``load_settings`` and nowhere else. Every invalid value is
reported as a ``ConfigError`` that names the key and the bad value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from tokenomy.config.adapters import AdapterConfig
from tokenomy.config.checks import check_settings
from tokenomy.config.explain import describe
from tokenomy.errors import ConfigError

Tier = Literal["small", "medium", "frontier"]
TIERS: tuple[Tier, ...] = ("small", "medium", "frontier")
ProviderKind = Literal[
    "local", "openai", "anthropic", "openai_compatible", "openrouter", "together", "groq", "deepseek",
    "fireworks", "mistral", "ollama", "vllm", "sglang", "llamacpp",
]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class PriceOverride(_Strict, frozen=True):
    """A deployment's own price: flat per-token figures, or a self-hosted GPU's hourly price over its measured
    throughput (USD per hour ÷ tokens per second ÷ 3600 = USD per token, for input and output alike)."""

    input_usd_per_mtok: Decimal | None = None
    output_usd_per_mtok: Decimal | None = None
    cached_input_usd_per_mtok: Decimal | None = None
    gpu_hour_usd: Decimal | None = None
    tokens_per_s: Decimal | None = None


class MicroBatchConfig(_Strict, frozen=True):
    """Online micro-batching: concurrent work gathered for up to ``max_wait_ms`` or ``max_batch`` items, then run
    as one call (see docs/batching.md for the measured trade-off)."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_inflight: int = 1  # batches running at once (1 for a CPU model; more for an upstream that serves many)


class DeploymentConfig(_Strict, frozen=True):
    """One upstream endpoint serving one model. ``model`` is the name clients ask for."""

    name: str
    provider: ProviderKind
    model: str
    tier: Tier = "medium"
    upstream_model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = {}
    timeout_s: float = 60.0
    max_retries: int | None = None
    max_concurrency: int | None = None
    model_path: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    price: PriceOverride | None = None
    kind: Literal["chat", "embeddings"] = "chat"  # embeddings: serves /v1/embeddings for ``model``
    batching: MicroBatchConfig | None = None  # embeddings deployments: coalesce concurrent requests upstream
    rpm: int | None = None  # the upstream's own quota: requests per minute (shared across replicas through Redis)
    tpm: int | None = None  # tokens per minute (prompt + max_tokens at admission)
    max_output_tokens: int | None = None  # the model's output limit: a budget reserves it when max_tokens is unset
    adapters: list[AdapterConfig] = []  # LoRA adapters the upstream serves on this base (config/adapters.py)
    adapter_of: str | None = None  # set by tokenomy on an adapter's own deployment: the base deployment's name

    @property
    def sent_model(self) -> str:
        return self.upstream_model or self.model


class RetryConfig(_Strict, frozen=True):
    max_retries: int = 2
    base_delay_ms: int = 100
    max_delay_ms: int = 4000
    max_retry_after_s: float = 10.0
    cooldown_s: float = 30.0
    stream_idle_timeout_s: float = 60.0


class RouterConfig(_Strict, frozen=True):
    """A learned router served as the virtual model ``tokenomy/<name>``: ``path`` is a directory written by
    ``tokenomy route train``; ``target`` (``share=S``, ``quality=Q`` or ``budget=B``) overrides the router's own
    default operating point. ``policy: cascade`` asks the router's cheapest model first and escalates to its
    frontier model when the router's cascade check expects the frontier to beat that answer by more than
    ``margin`` (score units; default 0), or, with a ``share=S`` target, on the share S of requests the check
    ranks most likely to gain (calibrated on the training rows). ``policy: auto`` serves what ``route train`` chose:
    the cascade for a share target at a share where it beat both the router and the hull of single models out of
    fold (and both of its models are served), the router everywhere else; on a router trained on a mix whose report
    says ``policy: parts``, each request's part (from its prompt) is served that part's choice (the cascade, the
    router or a single model) for any target. ``fallback: next`` (the default): when
    every deployment of the chosen model's chain has failed, the router's other served models answer in the order of
    its objective for that request; ``none``: the chosen model's chain only (a cascade falls back between its own
    two steps and ignores it)."""

    path: str
    target: str | None = None
    policy: Literal["route", "cascade", "auto"] = "route"
    margin: float | None = None
    fallback: Literal["next", "none"] = "next"


class RoutingConfig(_Strict, frozen=True):
    """How a request picks among deployments. ``sticky_prefix``: self-hosted replicas of one model get a shared
    prompt prefix on the same replica (its prefix cache hits) unless that replica has more than
    ``sticky_busy_factor`` times the group's mean in-flight calls. ``routers``: learned routers by name, each served
    as ``tokenomy/<name>``; ``auto_router`` (env ``TOKENOMY_ROUTER``) is the directory of ``tokenomy/auto`` when
    ``routers`` has no ``auto`` entry."""

    sticky_prefix: bool = True
    sticky_busy_factor: float = 2.0
    routers: dict[str, RouterConfig] = {}
    auto_router: str | None = None
    # concurrent decisions of one router share one embedding call; no wait by default: a batch forms only from
    # requests that arrive while the previous one is being decided (null: one call each)
    batching: MicroBatchConfig | None = MicroBatchConfig(max_batch=32, max_wait_ms=0.0)
    # each router remembers its latest decisions by (prompt text, target); 0 turns it off
    decision_cache: Annotated[int, msgspec.Meta(ge=0)] = 4096
    # share and budget targets are held on the latest hold_window requests (after 100 of them); 0: the training
    # calibration only
    hold_window: Annotated[int, msgspec.Meta(ge=0)] = 1000


class ServerConfig(_Strict, frozen=True):
    host: str = "127.0.0.1"
    port: int = 4000
    max_body_bytes: int = 20 * 1024 * 1024
    # without a master key, only requests for these Host names (and from these Origins) are served, besides
    # loopback names; ["*"] switches the check off (docs/security.md)
    allowed_hosts: list[str] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # the HTTP server's own limits (tokenomy serve; docs/security.md)
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0  # request line and headers must arrive in this
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    body_idle_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0  # most time between two pieces of a body
    keep_alive_s: Annotated[int, msgspec.Meta(ge=1)] = 5
    graceful_shutdown_s: Annotated[int, msgspec.Meta(ge=1)] = 10  # on stop, requests still open then are cancelled


class LocalConfig(_Strict, frozen=True):
    """The embedded local tier (SmolLM2 in-process). ``enabled`` false turns it off."""

    enabled: bool = True
    model: str = "smollm2-135m-instruct"
    model_path: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    max_queue: Annotated[int, msgspec.Meta(ge=1)] = 64  # requests waiting for the model, in all
    max_queue_per_key: Annotated[int, msgspec.Meta(ge=1)] = 16  # ... for one virtual key (the keys take turns)
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] = 1024  # generated per choice at most, whatever is asked
    adapters: list[AdapterConfig] = []  # LoRA adapters (GGUF) served on the one loaded model (config/adapters.py)


class EmbeddingsConfig(_Strict, frozen=True):
    """The offline embedding model behind /v1/embeddings and the semantic cache. ``batching``: concurrent callers
    share model calls (null: one call each)."""

    enabled: bool = True
    model: str = "all-minilm-l6-v2"
    batching: MicroBatchConfig | None = MicroBatchConfig(max_batch=32, max_wait_ms=0.0)


class LedgerConfig(_Strict, frozen=True):
    """The cost ledger. ``database_url``: a SQLite path or ``sqlite:///PATH`` (default: ledger.db in the data dir)."""

    database_url: str | None = None
    reference_model: str | None = "gpt-4o"
    drain_on_disconnect_s: float = 30.0
    max_queue: int = 100_000
    batch_size: int = 1000
    # durable: a non-streamed response leaves only once its row is in the store or the fsynced spill file (a
    # SIGKILL loses no answered request); queued: rows wait up to 50 ms in memory. auto: durable on PostgreSQL.
    ack: Literal["auto", "queued", "durable"] = "auto"


class ExactCacheConfig(_Strict, frozen=True):
    """The exact response cache. ``mode``: ``deterministic`` (temperature 0 or a seed), ``all``, or ``off``."""

    mode: Literal["deterministic", "all", "off"] = "deterministic"
    # auto: redis when a Redis URL is set (TOKENOMY_REDIS_URL: every replica shares the answers), else sqlite
    store: Literal["auto", "sqlite", "memory", "redis"] = "auto"
    ttl_s: float = 86_400.0
    max_bytes: int = 256 * 1024 * 1024
    namespace: str = "default"


class SemanticCacheConfig(_Strict, frozen=True):
    """The semantic cache (paraphrases of the last user turn). Off by default: it serves answers to questions that
    were not asked verbatim, so an operator turns it on and states ``max_error``, the share of semantic hits allowed
    to be wrong. ``online`` lets the threshold learn from labels (near-miss answer agreement); ``agreement_cosine``
    is how close two answers' embeddings must be to count as the same answer."""

    enabled: bool = False
    max_error: float = 0.02
    # verified: serve only where this deployment's own verified lookups bound the wrong share (docs/cache.md);
    # calibrated: the shipped threshold table (moved by ``online`` labels), which does not transfer to all traffic
    policy: Literal["verified", "calibrated"] = "verified"
    verify_share: float = 0.1  # verified: the share of servable lookups still verified (sent upstream, compared)
    # verified: a young region verifies more, max(verify_share, 1 / (1 + shift_budget * max_error * (hits served
    # + 20))), so a change of the traffic costs about that many wrong hits before it is seen (0: verify_share always)
    shift_budget: float = 0.5
    checker_sensitivity: float = 0.9  # verified: the answer-equivalence check's measured sensitivity (lower bound)
    online: bool = True
    max_entries: int = 100_000
    agreement_cosine: float = 0.95
    calibration: str | None = None  # a file from bench/semantic_calibrate.py; None: the shipped one
    # auto: the exact cache's store when it is redis (entries shared by every replica, docs/scale.md) or sqlite
    # (entries survive a restart, beside their answers in cache.db), else memory
    store: Literal["auto", "memory", "sqlite", "redis"] = "auto"


class CacheConfig(_Strict, frozen=True):
    exact: ExactCacheConfig = ExactCacheConfig()
    semantic: SemanticCacheConfig = SemanticCacheConfig()
    prompt_breakpoints: bool = True  # add Anthropic cache_control breakpoints on long stable prefixes


class BatchJobsConfig(_Strict, frozen=True):
    """Batches on a PostgreSQL ledger run as procrastinate jobs that any replica's worker takes (docs/scale.md):
    ``chunk_lines`` lines per job; a chunk runs ``lane_concurrency`` lines at once and a batch's chunks queue in
    ``ceil(max_concurrency / lane_concurrency)`` lanes (one job per lane at a time, on any replica), so a batch
    never has more than its ``max_concurrency`` lines in flight. ``worker_jobs``: jobs one replica runs at once.
    A replica that stops sending heartbeats (every ``heartbeat_s``) for ``stalled_after_s`` has its jobs handed to
    another; ``sweep_s``: how often each replica looks for those and for batches whose next step is due."""

    chunk_lines: int = 100
    lane_concurrency: int = 8
    worker_jobs: int = 4
    heartbeat_s: float = 5.0
    stalled_after_s: float = 30.0
    sweep_s: float = 10.0


class BatchConfig(_Strict, frozen=True):
    """Batch jobs (``/v1/files``, ``/v1/batches``). ``via``: where a batch runs unless it says otherwise
    (``gateway``: tokenomy's own workers over routing, caching and the configured tiers; ``provider``: the
    provider's own batch API at its batch discount). ``max_concurrency``: lines of one batch in flight at once
    (a batch's ``metadata.tokenomy_concurrency`` may lower or raise it up to ``max_concurrency_cap``).
    ``line_retries``: extra tries of a line after a transient upstream failure (5xx, timeout); a rate limit
    (429) never fails a line, it pauses the batch for a back-off of up to ``max_backoff_s``.
    ``poll_interval_s``: how often a provider batch is polled."""

    enabled: bool = True
    via: Literal["gateway", "provider"] = "gateway"
    max_concurrency: int = 8
    max_concurrency_cap: int = 256
    max_file_bytes: int = 200 * 1024 * 1024
    max_lines: int = 50_000
    line_retries: int = 3
    max_backoff_s: float = 60.0
    poll_interval_s: float = 30.0
    jobs: BatchJobsConfig = BatchJobsConfig()


class ControlConfig(_Strict, frozen=True):
    """Team control: auth, virtual keys, budgets and rate limits (docs/control.md). ``master_key`` (env
    TOKENOMY_MASTER_KEY) turns auth on for every ``/v1`` request and unlocks ``/admin`` and ``/ui``. With
    ``redis_url`` set, budgets and rate limits are shared by every replica using the same ``redis_prefix``."""

    master_key: str | None = None
    key_refresh_s: float = 2.0  # how often a replica re-reads keys (a revoked key is refused within this)
    budget_wait_s: float = 5.0  # a request that would fit once in-flight reservations settle waits this long
    reservation_ttl_s: float = 900.0  # a reservation whose replica died is released after this (Redis)
    default_max_output_tokens: int = 4096  # reserved when neither max_tokens nor the deployment's limit is known
    redis_prefix: str = "tokenomy:"
    # Redis down: "closed" refuses (503) requests that a budget or a rate limit applies to; "open" serves them
    # unchecked (their spend is in the ledger, not in the shared counters). Caches always fail open.
    on_redis_down: Literal["closed", "open"] = "closed"
    cors_origins: list[str] = []  # CORS is off unless origins are listed here
    metrics_key: str | None = None  # with a master key set, /metrics needs it or this scrape-only key
    ui_session_s: float = 8 * 3600.0


class BodyStoreConfig(_Strict, frozen=True):
    """Keep request/response bodies for distillation (off by default). ``routes``: the model names clients ask
    for whose bodies are kept (empty: every route); ``path``: the directory (default: ``bodies`` in the data dir).
    E-mail addresses, phone and card numbers and API keys are redacted before anything is written."""

    enabled: bool = False
    routes: list[str] = []
    path: str | None = None


class DistillConfig(_Strict, frozen=True):
    """Distillation in the gateway: stored bodies, and promoted students (``tokenomy distill promote`` writes the
    ``registry`` file, default ``distill/students.json`` in the data dir; ``serve_students`` false ignores it)."""

    store_bodies: BodyStoreConfig = BodyStoreConfig()
    registry: str | None = None
    serve_students: bool = True


class Settings(_Strict, frozen=True):
    server: ServerConfig = ServerConfig()
    deployments: list[DeploymentConfig] | None = None
    fallbacks: dict[str, list[str]] = {}
    retry: RetryConfig = RetryConfig()
    routing: RoutingConfig = RoutingConfig()
    local: LocalConfig = LocalConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    ledger: LedgerConfig = LedgerConfig()
    cache: CacheConfig = CacheConfig()
    batch: BatchConfig = BatchConfig()
    control: ControlConfig = ControlConfig()
    distill: DistillConfig = DistillConfig()
    redis_url: str | None = None
    env_providers: bool = True
    home: str | None = None


# flag/env name -> dotted settings key, and how to read the string value
_ENV_KEYS: dict[str, str] = {
    "TOKENOMY_HOST": "server.host",
    "TOKENOMY_PORT": "server.port",
    "TOKENOMY_MAX_BODY_BYTES": "server.max_body_bytes",
    "TOKENOMY_LOG_LEVEL": "server.log_level",
    "TOKENOMY_LOCAL": "local.enabled",
    "TOKENOMY_LOCAL_MODEL_PATH": "local.model_path",
    "TOKENOMY_EMBEDDINGS": "embeddings.enabled",
    "TOKENOMY_HOME": "home",
    "TOKENOMY_DATABASE_URL": "ledger.database_url",
    "TOKENOMY_REDIS_URL": "redis_url",
    "TOKENOMY_CACHE": "cache.exact.mode",
    "TOKENOMY_SEMANTIC_CACHE": "cache.semantic.enabled",
    "TOKENOMY_SEMANTIC_MAX_ERROR": "cache.semantic.max_error",
    "TOKENOMY_ROUTER": "routing.auto_router",
    "TOKENOMY_MASTER_KEY": "control.master_key",
    "TOKENOMY_METRICS_KEY": "control.metrics_key",
    "TOKENOMY_REDIS_PREFIX": "control.redis_prefix",
    "TOKENOMY_STORE_BODIES": "distill.store_bodies.enabled",
    "TOKENOMY_DISTILL_REGISTRY": "distill.registry",
}

# secrets stay strings, even "1234"
_RAW_STRINGS = frozenset({"control.master_key", "control.metrics_key", "control.redis_prefix"})


def load_settings(
    config_path: str | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings: defaults, then the file, then environment, then flags (dotted keys, e.g. ``server.port``)."""
    env = os.environ if env is None else env
    path = config_path or env.get("TOKENOMY_CONFIG")
    tree: dict[str, Any] = _read_file(Path(path)) if path else {}
    for var, key in _ENV_KEYS.items():
        if var in env and env[var] != "":
            value = env[var] if key in _RAW_STRINGS else _parse_scalar(env[var])
            _set_dotted(tree, key, value, source=f"environment variable {var}")
    for key, value in (flags or {}).items():
        if value is not None:
            _set_dotted(tree, key, value, source=f"flag for {key}")
    return _convert(tree, origin=str(path) if path else "settings")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".replace("\n", " ")) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top, not {type(data).__name__}")
    if "model_list" in data:
        raise ConfigError(f"config file {path} is a LiteLLM proxy config (it has model_list): convert it with "
                          f"`tokenomy config import-litellm {path} --out tokenomy.yaml`, then pass "
                          "--config tokenomy.yaml")
    return data


def _parse_scalar(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    try:
        return int(text)
    except ValueError:
        return text


def _set_dotted(tree: dict[str, Any], key: str, value: Any, *, source: str) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: '{part}' in the config is {type(child).__name__}, expected a mapping")
        node = child
    node[leaf] = value


def _convert(tree: dict[str, Any], *, origin: str) -> Settings:
    try:
        settings = msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{origin}: {describe(exc, tree, Settings)}") from exc
    check_settings(settings, origin)
    return settings


def database_url(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The ledger's store: ``ledger.database_url`` / TOKENOMY_DATABASE_URL, else ledger.db in the data dir."""
    return settings.ledger.database_url or str(data_home(settings, env) / "ledger.db")


def data_home(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """The data dir: ``home`` from settings/TOKENOMY_HOME, else ~/.local/share/tokenomy."""
    env = os.environ if env is None else env
    if settings.home:
        return Path(settings.home).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tokenomy"
