"""What the verifier sees about a (query, cached entry) pair: the embedding similarity, how ambiguous the match is
(the gap to the second-nearest entry), and cheap lexical checks for the differences embeddings blur — numbers,
negation, opposites (WordNet antonyms, un-/in-/dis- prefixes, on/off-style particles), swapped order around a
direction word ("from A to B" / "from B to A"), a different question word, content words present on one side only.

Words are compared after a light suffix strip (``stem``) so "covers"/"cover" or "increased"/"increase" match.
"""

from __future__ import annotations

import itertools
import math
import re
from functools import cache, lru_cache
from importlib import resources

FEATURE_NAMES = ("cosine", "gap", "jaccard", "recall", "unmatched_query", "unmatched_entry", "all_matched",
                 "numbers_differ", "negation_differs", "opposed", "question_word_differs", "relation_words_differ",
                 "bigram_jaccard", "order_differs", "direction_swapped", "char_jaccard", "length_ratio", "query_words")

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NEGATION = frozenset({"not", "no", "never", "nor", "none", "nobody", "nothing", "without", "cannot"})
_STOP_WORDS = (
    "a an the of to in on for and or is are was were be been it this that with as at by from what how why when "
    "where who which do does did can could should would will i you he she we they my your"
)
_STOP = frozenset(_STOP_WORDS.split())
_QUESTION_WORDS = "what why how when where who which whose whom"
_RELATION_WORDS = ("to from into onto before after within without above below over under more less up down in out on "
                   "off with than between during until since per by against")
_DIRECTION_WORDS = "to from into before after than over under above below"
_QUESTION = frozenset(_QUESTION_WORDS.split())
_RELATION = frozenset(_RELATION_WORDS.split())
_DIRECTION = frozenset(_DIRECTION_WORDS.split())
_PARTICLES = (("on", "off"), ("in", "out"), ("over", "under"), ("above", "below"), ("before", "after"),
              ("up", "down"), ("with", "without"), ("more", "less"), ("most", "least"), ("max", "min"),
              ("always", "never"), ("all", "none"), ("first", "last"), ("can", "cannot"), ("still", "longer"),
              ("to", "from"))
_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non")
_SUFFIXES = ("edly", "ing", "ies", "ed", "ly", "es", "s")
_CARDINALS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
              "seventeen eighteen nineteen twenty")
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth"
_NUMBER_WORDS = {w: i for i, w in enumerate(_CARDINALS.split())} | {w: i + 1 for i, w in enumerate(_ORDINALS.split())}
_NUMBER_WORDS |= {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
                  "hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_DIGITS = re.compile(r"\d+")


def normalise(text: str) -> str:
    """The form an entry is stored and matched under: whitespace collapsed, case folded (MiniLM is uncased)."""
    return " ".join(text.split()).lower()


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix strip that maps a lemma and its inflections together ("exclude"/"excluded", "pass"/"passes",
    "city"/"cities"); not a linguist's stemmer, only consistent."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not (suffix == "s" and word.endswith("ss")):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _numbers(words: list[str]) -> set[int]:
    """The numbers a text mentions, digits or words: "2nd" / "second", "7am" / "seven" and "2fa" / "two" agree."""
    found = {int(d) for w in words for d in _DIGITS.findall(w) if len(d) < 16}
    return found | {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS}


@cache
def antonym_pairs() -> tuple[tuple[str, str], ...]:
    """The word pairs of ``antonyms.txt``: WordNet 3.0's direct antonym pointers, written by
    ``bench/semantic_calibrate.py --antonyms`` (licence: LICENSE.wordnet.txt)."""
    text = resources.files(__package__).joinpath("antonyms.txt").read_text(encoding="utf-8")
    return tuple((a, b) for a, _, b in (line.partition(" ") for line in text.splitlines()) if a and b)


@cache
def antonyms() -> dict[str, frozenset[str]]:
    """word (and its stem) -> its antonyms (and their stems), for lookups."""
    table: dict[str, set[str]] = {}
    for a, b in antonym_pairs():
        for x, y in ((a, b), (b, a)):
            for key in {x, stem(x)}:
                table.setdefault(key, set()).update({y, stem(y)})
    return {word: frozenset(opposites) for word, opposites in table.items()}


def _opposed(side: set[str], other: set[str]) -> bool:
    """A word on one side only whose antonym, or whose un-/in-/dis- form or root, is among ``other``'s words."""
    known, none = antonyms(), frozenset[str]()
    stems = other | {stem(w) for w in other}
    for word in side:
        if not known.get(word, none).isdisjoint(stems) or not known.get(stem(word), none).isdisjoint(stems):
            return True
        for prefix in _PREFIXES:
            if word.startswith(prefix) and word[len(prefix):].lstrip("-") in other:
                return True
            if prefix + word in other:
                return True
    return False


def _negated(words: list[str]) -> int:
    return sum(w in _NEGATION or w.endswith("n't") for w in words) % 2


def _trigrams(words: list[str]) -> set[str]:
    s = f" {' '.join(words)} "
    return {s[i:i + 3] for i in range(len(s) - 2)}


def pair_features(query: str, entry: str, cosine: float, second_cosine: float) -> list[float]:
    """Features in :data:`FEATURE_NAMES` order. ``second_cosine`` is the query's similarity to the next-nearest
    entry of the same context (0 when there is none)."""
    wq, we = _WORD.findall(query.lower()), _WORD.findall(entry.lower())
    cq, ce = [w for w in wq if w not in _STOP], [w for w in we if w not in _STOP]
    tq, te = {stem(w) for w in cq}, {stem(w) for w in ce}
    shared = len(tq & te)
    jaccard = shared / max(1, len(tq | te))
    recall = min(shared / max(1, len(tq)), shared / max(1, len(te)))
    uq, ue = len(tq - te), len(te - tq)
    numbers_differ = _numbers(wq) != _numbers(we)
    sq, se = set(wq), set(we)
    only_q, only_e = sq - se, se - sq
    opposed = (_opposed(only_q, se) or _opposed(only_e, sq) or ("non" in sq) != ("non" in se)
               or any((a in sq) != (a in se) and (b in sq) != (b in se) and (a in sq) != (b in sq)
                      for a, b in _PARTICLES))
    bq, be = set(itertools.pairwise(wq)), set(itertools.pairwise(we))
    order_differs = tq == te and [stem(w) for w in cq] != [stem(w) for w in ce]
    gq, ge = _trigrams(wq), _trigrams(we)
    return [cosine, cosine - max(0.0, second_cosine), jaccard, recall, float(min(uq, 4)), float(min(ue, 4)),
            float(uq + ue == 0), float(numbers_differ), float(_negated(wq) != _negated(we)), float(opposed),
            float(sq & _QUESTION != se & _QUESTION), float(sq & _RELATION != se & _RELATION),
            len(bq & be) / max(1, len(bq | be)), float(order_differs), float(order_differs and bool(sq & _DIRECTION)),
            len(gq & ge) / max(1, len(gq | ge)), abs(math.log((len(wq) + 1) / (len(we) + 1))), float(len(wq))]
