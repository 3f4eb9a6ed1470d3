"""Model-name matching over the genai-prices snapshot: which provider's model a name a log carries refers to. Pure.

genai-prices (pydantic/genai-prices, MIT) describes every model by a *match rule* over lower-cased names rather
than a list of aliases; the snapshot keeps those rules as JSON clauses, and this module evaluates them with the
library's own semantics (``DataSnapshot.find_provider_model``):

- a clause is ``{"equals" | "starts_with" | "ends_with" | "contains" | "regex": text}`` or ``{"or" | "and":
  [clause, ...]}``; text clauses compare case-insensitively, ``regex`` is ``re.search`` on the name as given;
- a provider is picked by id (or its ``provider_match`` rule) when a provider hint is given, else by the first
  provider whose ``model_match`` rule accepts the name; its models are tried in order, then (one step only) the
  models of its ``fallback`` providers (Azure offers OpenAI's models, Vertex AI and Bedrock Anthropic's);
- a compact date suffix (``-20251211``) is retried in the dashed form (``-2025-12-11``).

On top of that, ``candidates`` turns a name as logs carry it into the (provider hint, name) pairs to try, in
order: the name as is; each ``provider/`` prefix as the hint for the rest (LiteLLM's ``azure/``, ``bedrock/``,
``vertex_ai/``, ``openrouter/``, …), then the rest alone; an OpenRouter id (``vendor/model``) at OpenRouter; a
fine-tune id (``ft:…``) at OpenAI; a Bedrock id (``anthropic.claude-…-v2:0``, with or without a region prefix)
at AWS. ``tests/pricing/test_matching.py`` checks that ``Matcher.find`` agrees with genai-prices itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from tokenomy.pricing.price import PriceError

Rule = Callable[[str], bool]

_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")
_BEDROCK_ID = re.compile(r"^(?:[a-z]{2,4}\.)?[a-z0-9]+\.[a-z]")
# LiteLLM's provider prefixes that no genai-prices provider id or provider rule names.
PREFIX_ALIASES = {"fireworks_ai": "fireworks", "azure_ai": "azure", "vertex_ai_beta": "google"}


def compile_rule(raw: Any, where: str) -> Rule:
    """A JSON clause as a predicate on a lower-cased name; a malformed clause is a ``PriceError`` naming ``where``."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise PriceError(f"{where}: a match clause is an object with one key, got {str(raw)[:80]}", field="match")
    (kind, value), = raw.items()
    if kind in ("or", "and") and isinstance(value, list) and value:
        parts = [compile_rule(part, where) for part in value]
        if kind == "or":
            return lambda name: any(p(name) for p in parts)
        return lambda name: all(p(name) for p in parts)
    if not isinstance(value, str):
        raise PriceError(f"{where}: match clause '{kind}' needs a string, got {value!r}", field="match")
    text = value.lower()
    if kind == "equals":
        return lambda name: name == text
    if kind == "starts_with":
        return lambda name: name.startswith(text)
    if kind == "ends_with":
        return lambda name: name.endswith(text)
    if kind == "contains":
        return lambda name: text in name
    if kind == "regex":
        pattern = re.compile(value)
        return lambda name: pattern.search(name) is not None
    raise PriceError(f"{where}: unknown match clause '{kind}'", field="match")


@dataclass(frozen=True, slots=True)
class ProviderRules:
    id: str
    model_match: Rule | None
    provider_match: Rule | None
    fallback: tuple[str, ...]
    models: tuple[tuple[str, Rule], ...]  # (catalogue key, rule), in the source's order: the first match wins


class Matcher:
    """Finds the catalogue key (``provider/model``) of a name, as genai-prices would."""

    def __init__(self, providers: Sequence[ProviderRules]) -> None:
        self._providers = tuple(providers)
        self._by_id = {p.id: p for p in self._providers}

    @classmethod
    def from_document(cls, providers: Any, models: Any, origin: str) -> Matcher:
        """From a snapshot's ``providers`` list and its model entries (each with ``provider`` and ``match``)."""
        if not isinstance(providers, list):
            raise PriceError(f"{origin}: field 'providers' must be a list", field="providers")
        rules: dict[str, list[tuple[str, Rule]]] = {}
        for entry in models if isinstance(models, list) else ():
            if isinstance(entry, Mapping) and entry.get("match") is not None:
                key = str(entry.get("model"))
                rules.setdefault(str(entry.get("provider")), []).append(
                    (key, compile_rule(entry["match"], f"{origin}: model '{key}'")))
        out = []
        for raw in providers:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
                raise PriceError(f"{origin}: every provider needs an 'id', got {str(raw)[:80]}", field="providers")
            where = f"{origin}: provider '{raw['id']}'"
            out.append(ProviderRules(
                raw["id"],
                compile_rule(raw["model_match"], where) if raw.get("model_match") is not None else None,
                compile_rule(raw["provider_match"], where) if raw.get("provider_match") is not None else None,
                tuple(raw.get("fallback") or ()), tuple(rules.get(raw["id"], ()))))
        return cls(out)

    def find(self, name: str, provider_hint: str | None = None, *, fallback: bool = True) -> str | None:
        """The key of the model ``name`` refers to (at ``provider_hint`` when given); ``fallback=False`` keeps to
        that provider's own models (no reseller fallback)."""
        ref = name.lower()
        provider = self._provider(ref, provider_hint)
        if provider is None:
            return None
        found = self._in_provider(provider, ref, fallback=fallback)
        if found is None:
            compact = _dashed_dates(ref)
            if compact != ref:
                found = self._in_provider(provider, compact, fallback=fallback)
        return found

    def resolve(self, name: str) -> str | None:
        """The first key any of ``candidates(name)`` finds."""
        return next((key for hint, ref in candidates(name) if (key := self.find(ref, hint)) is not None), None)

    def owner(self, name: str) -> str | None:
        """The model ``name`` is itself, for merging a price row into it: the name as it is, or its first
        ``provider/`` prefix as the hint for the rest, in that provider's own models only (no reseller fallback, no
        guesses, no dropping the prefix: an ``azure/…`` row stays Azure's)."""
        found = self.find(name.strip())
        if found is None and "/" in name:
            prefix, rest = name.strip().split("/", 1)
            found = self.find(rest, prefix, fallback=False)
        return found

    def _provider(self, ref: str, hint: str | None) -> ProviderRules | None:
        if hint is not None:
            wanted = PREFIX_ALIASES.get(hint.lower().strip(), hint.lower().strip())
            exact = self._by_id.get(wanted)
            if exact is not None:
                return exact
            return next((p for p in self._providers if p.provider_match and p.provider_match(wanted)), None)
        return next((p for p in self._providers if p.model_match and p.model_match(ref)), None)

    def _in_provider(self, provider: ProviderRules, ref: str, *, fallback: bool) -> str | None:
        found = next((key for key, rule in provider.models if rule(ref)), None)
        if found is not None or not fallback:
            return found
        for other in provider.fallback:
            if other in self._by_id and (found := self._in_provider(self._by_id[other], ref, fallback=False)):
                return found
        return None


def candidates(name: str, *, guess: bool = True) -> Iterator[tuple[str | None, str]]:
    """(provider hint, name) pairs to try for a name as a log carries it, most specific first; ``guess`` adds the
    hints a name's shape suggests (OpenRouter, fine-tune, Bedrock ids)."""
    name = name.strip()
    yield None, name
    rest = name
    while "/" in rest:
        prefix, rest = rest.split("/", 1)
        yield prefix, rest
        yield None, rest
    if not guess:
        return
    if "/" in name:
        yield "openrouter", name.split("/", 1)[1] if name.lower().startswith("openrouter/") else name
    if name.lower().startswith("ft:"):
        yield "openai", name
    bare = name.rsplit("/", 1)[-1]
    if _BEDROCK_ID.match(bare.lower()):
        yield "aws", bare


def _dashed_dates(ref: str) -> str:
    def dashed(match: re.Match[str]) -> str:
        year, month, day = (int(match.group(i)) for i in range(2, 5))
        try:
            date(year, month, day)
        except ValueError:
            return match.group(0)
        return f"{match.group(1)}{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(dashed, ref)
