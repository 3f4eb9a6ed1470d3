"""``tokenomy config check``: everything ``tokenomy serve`` would load, checked before anything starts, one line
per problem. ``serve`` runs the same check first, so a configuration mistake is a list of lines and exit 2, not a
traceback half-way through start-up.

An *error* is something the gateway would refuse to start with, or that makes every request of a deployment fail
(a missing key for a vendor's own endpoint); a *warning* is something it serves with but probably not as meant
(a model without a price records unknown costs). ``online`` also connects to the stores and asks every upstream for
its model list with the configured key.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tokenomy.cache.setup import cache_problems
from tokenomy.config.settings import DeploymentConfig, Settings, data_home, database_url
from tokenomy.config.vendors import VENDORS
from tokenomy.dispatch.catalog import fallback_problems
from tokenomy.errors import ConfigError
from tokenomy.gateway.reach import reach_database, reach_redis, reach_upstream
from tokenomy.pricing.catalogue import OVERRIDE_FILENAME, Catalogue
from tokenomy.providers.registry import resolve_deployments
from tokenomy.routing.serve import RouterSet


@dataclass(frozen=True, slots=True)
class Problem:
    level: Literal["error", "warning"]
    message: str

    def line(self, origin: str | None = None) -> str:
        return f"{self.level}: {origin}: {self.message}" if origin else f"{self.level}: {self.message}"


def check_config(settings: Settings, env: Mapping[str, str], *, online: bool = False) -> list[Problem]:
    """Every problem found, errors first; an empty list means ``serve`` would start with this configuration."""
    deployments = resolve_deployments(settings, env)
    found = [*_deployment_problems(deployments, env), *_price_problems(settings, env, deployments)]
    students = _student_models(settings, env, found)
    chat_models = {d.model for d in deployments if d.kind == "chat"} | students
    tiers = {d.tier for d in deployments if d.kind == "chat"} | ({"small"} if students else set())
    found += [Problem("error", p.message) for p in fallback_problems(chat_models, settings.fallbacks)]
    found += [Problem("error", p.message)
              for p in RouterSet.check(settings.routing, lambda m: m in chat_models or m in tiers)]
    found += [Problem("error", p.message) for p in cache_problems(settings)]
    found += _store_problems(settings, env)
    if not chat_models:
        found.append(Problem("error", "nothing to serve: no chat deployment is configured, the local tier is off and "
                                      "no provider key (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) is set"))
    if online:
        found += _online_problems(settings, env, deployments)
    return sorted(found, key=lambda p: p.level != "error")


def _deployment_problems(deployments: list[DeploymentConfig], env: Mapping[str, str]) -> list[Problem]:
    found = []
    for dep in deployments:
        where = f"deployment '{dep.name}'"
        if dep.provider == "local":
            found += _local_problems(where, dep)
            continue
        vendor = VENDORS[dep.provider]
        key_env = dep.api_key_env or vendor.key_env
        own_endpoint = dep.api_key_env or not dep.base_url or dep.base_url == vendor.base_url
        if key_env and not env.get(key_env) and own_endpoint:  # a self-hosted base_url may take no key
            found.append(Problem("error", f"{where}: environment variable {key_env} is not set (the key for "
                                          f"{dep.provider}); export it, or set api_key_env"))
    return found


def _local_problems(where: str, dep: DeploymentConfig) -> list[Problem]:
    from tokenomy.providers.local_llama import bundled_model_path

    try:
        path = Path(dep.model_path).expanduser() if dep.model_path else bundled_model_path()
    except ConfigError as exc:
        return [Problem("error", f"{where}: {exc.message}; or turn the local tier off (local.enabled: false)")]
    found = []
    if not path.is_file():
        found.append(Problem("error", f"{where}: model file {path} not found (local.model_path / model_path)"))
    if importlib.util.find_spec("llama_cpp") is None:
        found.append(Problem("error", f"{where}: the local tier needs llama-cpp-python: pip install "
                                      "'tokenomy[local]', or turn it off (local.enabled: false)"))
    return found


def _price_problems(settings: Settings, env: Mapping[str, str],
                    deployments: list[DeploymentConfig]) -> list[Problem]:
    override = data_home(settings, env) / OVERRIDE_FILENAME
    try:
        catalogue = Catalogue.load(override)
    except ConfigError as exc:
        return [Problem("error", f"price override file: {exc.message}")]
    now = datetime.now(UTC)
    found = [Problem("warning", f"deployment '{d.name}': no price for model '{d.sent_model}': its requests are "
                                "recorded with an unknown cost; give the deployment a price: or run "
                                "`tokenomy prices import`")
             for d in deployments
             if d.provider != "local" and d.price is None and catalogue.find(d.sent_model, now) is None]
    reference = settings.ledger.reference_model
    if reference and catalogue.find(reference, now) is None:
        found.append(Problem("warning", f"key 'ledger.reference_model': no price for '{reference}': savings will "
                                        "be reported as unknown"))
    return found


def _student_models(settings: Settings, env: Mapping[str, str], found: list[Problem]) -> set[str]:
    """The promoted students' model names (``distill/<task>``), each student's files checked."""
    from tokenomy.distill.registry import load_registry, registry_path
    from tokenomy.distill.student import read_student

    if not settings.distill.serve_students:
        return set()
    path = registry_path(settings.distill.registry, data_home(settings, env))
    try:
        promotions = [p for p in load_registry(path) if p.state != "demoted"]
    except ConfigError as exc:
        found.append(Problem("error", f"key 'distill.registry': {exc.message}"))
        return set()
    for p in promotions:
        try:
            read_student(Path(p.path))
        except ConfigError as exc:
            found.append(Problem("error", f"promoted student '{p.task}' in {path}: {exc.message}"))
    return {p.deployment for p in promotions}


def _store_problems(settings: Settings, env: Mapping[str, str]) -> list[Problem]:
    from tokenomy.db.engine import is_postgres, sqlite_path

    url = database_url(settings, env)
    found = []
    if not is_postgres(url):
        try:
            folder = sqlite_path(url).parent
        except ConfigError as exc:
            return [Problem("error", f"key 'ledger.database_url': {exc.message}")]
        if not _writable(folder):
            found.append(Problem("error", f"key 'ledger.database_url': cannot write in {folder} (the SQLite "
                                          "ledger's folder); set TOKENOMY_HOME or TOKENOMY_DATABASE_URL"))
    home = data_home(settings, env)
    if not _writable(home):
        found.append(Problem("error", f"key 'home': cannot write in the data dir {home}; set TOKENOMY_HOME"))
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        found.append(Problem("error", "key 'redis_url': expected redis://HOST:PORT/DB (or rediss://, unix://)"))
    return found


def _writable(folder: Path) -> bool:
    """``folder`` exists and can be written, or can be created."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def _online_problems(settings: Settings, env: Mapping[str, str],
                     deployments: list[DeploymentConfig]) -> list[Problem]:
    found = []
    url = database_url(settings, env)
    if (problem := reach_database(url)) is not None:
        found.append(Problem("error", f"key 'ledger.database_url': {problem}"))
    if settings.redis_url and (problem := reach_redis(settings.redis_url)) is not None:
        found.append(Problem("error", f"key 'redis_url': {problem}"))
    for dep in deployments:
        if dep.provider != "local" and (problem := reach_upstream(dep, env)) is not None:
            found.append(Problem("error", f"deployment '{dep.name}': {problem}"))
    return found

