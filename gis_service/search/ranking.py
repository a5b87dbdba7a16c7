"""How a candidate matched a query, and the order of the answers: pure functions, no database.

Order: exact (the name or the short name) before a former name before prefix before pinyin before initials
before one-edit typos before fuzzy; among equals the higher administrative level (county, township,
village, then everything else), then the nearer (when a point was given), then the shorter name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gis_service.search.keys import common_subsequence, fuzzy_pinyin, levenshtein
from gis_service.search.normalize import SearchQuery

__all__ = ["Candidate", "Match", "Ranked", "classify", "rank", "MATCH_KINDS", "level_rank"]

#: Match kinds, best first, with the tier that orders them and the base score they are worth.
_DOUBLED = re.compile(r"(.)\1")
#: Letters of pinyin difference beyond which closeness stops counting (it is low by then anyway).
_CLOSENESS_EDITS = 5

MATCH_KINDS: dict[str, tuple[int, float]] = {
    "exact": (0, 1.00),
    "short_name": (0, 0.97),
    "former_name": (1, 0.94),
    "prefix": (2, 0.80),
    "pinyin": (3, 0.75),
    "initials": (4, 0.68),
    "pinyin_prefix": (5, 0.60),
    "initials_prefix": (6, 0.52),
    "typo": (7, 0.48),
    "fuzzy": (8, 0.30),
}


@dataclass(frozen=True)
class Candidate:
    """A place-name record found by one of the look-ups, with the search keys the database keeps for it."""

    id: int
    name: str
    name_short: str
    py_key: str
    py_short_key: str
    py_initials: str
    status: str = "current"
    successor_id: int | None = None
    py_alt_key: str | None = None
    py_alt_short_key: str | None = None
    py_alt_initials: str | None = None
    #: 3 county, 2 township, 1 village-level division, 0 any other place name.
    level: int = 0
    #: Distance to the ``near`` point in metres, None without one.
    distance_m: float | None = None
    #: pg_trgm similarity of the pinyin keys, from the fuzzy fallback only.
    similarity: float = 0.0
    #: Least edit distance between the query's pinyin key and this name's keys (plain, and with the easily
    #: confused sounds merged), capped; computed by the database (fuzzystrmatch) when it found the candidate.
    pinyin_distance: int | None = None
    fuzzy_pinyin_distance: int | None = None
    #: What the answer shows (the database row), carried along so that it need not be fetched again.
    display: object = field(default=None, compare=False, repr=False)

    def pinyin_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.py_key, self.py_alt_key) if k)

    def short_pinyin_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.py_short_key, self.py_alt_short_key) if k)

    def initials(self) -> tuple[str, ...]:
        return tuple(k for k in (self.py_initials, self.py_alt_initials) if k)

    def short_initials(self) -> tuple[str, ...]:
        n = len(self.name_short)
        return tuple(k[:n] for k in self.initials() if len(k) > n)


@dataclass(frozen=True)
class Match:
    kind: str
    #: 0..1, how good the match is within its kind (coverage of a prefix, similarity of a fuzzy match).
    quality: float = 1.0

    @property
    def tier(self) -> int:
        return MATCH_KINDS[self.kind][0]


@dataclass(frozen=True)
class Ranked:
    """One answer: the record to show, how it matched, and (for a former name) the record that matched."""

    candidate: Candidate
    match: Match
    score: float
    former: Candidate | None = None
    sort_key: tuple = field(default=(), compare=False)


def level_rank(category: str, division_code: str | None) -> int:
    """3 for the county, 2 for a township, 1 for a village-level division; 0 for any other kind of place."""
    if category != "administrative" or not division_code:
        return 0
    if division_code.endswith("000000"):
        return 3
    if division_code.endswith("000"):
        return 2
    return 1


def classify(query: SearchQuery, c: Candidate) -> Match | None:
    """How ``c`` matches ``query`` at best, or None when it does not."""
    if query.is_han:
        return _classify_han(query, c)
    return _classify_latin(query, c)


def _coverage(part: str, whole: str) -> float:
    return len(part) / len(whole) if whole else 0.0


def _classify_han(q: SearchQuery, c: Candidate) -> Match | None:
    text = q.text
    if c.name == text:
        return Match("exact")
    if c.name_short == text:
        return Match("short_name")
    if c.name.startswith(text):
        return Match("prefix", _coverage(text, c.name))
    keys = set(q.pinyin_keys)
    if keys & set(c.pinyin_keys()) or keys & set(c.short_pinyin_keys()):
        # a homophone: the more of the typed characters the name has, the likelier it is the one meant
        shared = max(common_subsequence(text, c.name), common_subsequence(text, c.name_short)) / len(text)
        return Match("pinyin", (shared + 1.0) / 2 if keys & set(c.pinyin_keys()) else 0.95 * (shared + 1.0) / 2)
    prefixes = [(key, k) for key in keys for k in c.pinyin_keys() if k.startswith(key)]
    if prefixes:
        return Match("pinyin_prefix", max(_coverage(key, k) for key, k in prefixes))
    if len(text) >= 2 and min(levenshtein(text, c.name, limit=2), levenshtein(text, c.name_short, limit=2)) <= 1:
        return Match("typo", _han_typo_quality(q, c))
    if _pinyin_typo(q, c):
        return Match("typo", 0.5 * _pinyin_closeness(q, c))
    if c.similarity > 0:
        return Match("fuzzy", c.similarity)
    return None


def _classify_latin(q: SearchQuery, c: Candidate) -> Match | None:
    letters = q.letters
    if letters in c.pinyin_keys():
        return Match("pinyin")
    if letters in c.short_pinyin_keys():
        return Match("pinyin", 0.97)
    if letters in c.initials():
        return Match("initials")
    if letters in c.short_initials():
        return Match("initials", 0.97)
    prefixed = [k for k in c.pinyin_keys() if k.startswith(letters)]
    if prefixed:
        return Match("pinyin_prefix", max(_coverage(letters, k) for k in prefixed))
    prefixed = [k for k in c.initials() if k.startswith(letters)]
    if prefixed:
        return Match("initials_prefix", max(_coverage(letters, k) for k in prefixed))
    if _pinyin_typo(q, c):
        return Match("typo", _pinyin_closeness(q, c))
    if c.similarity > 0:
        return Match("fuzzy", c.similarity)
    return None


def _pinyin_typo(q: SearchQuery, c: Candidate) -> bool:
    key = q.pinyin_keys[0] if q.pinyin_keys else ""
    if len(key) < 4:
        return False
    if c.pinyin_distance is not None:
        if c.pinyin_distance <= 1:
            return True
        if c.pinyin_distance > 2:
            return False  # two letters swapped is 2 plain edits; more cannot be one edit
    return any(levenshtein(key, k, limit=2) <= 1 for k in (*c.pinyin_keys(), *c.short_pinyin_keys()))


def _pinyin_closeness(q: SearchQuery, c: Candidate) -> float:
    """1 when the pinyin is the same, less by each letter that differs; sounds that are easily confused
    (zh/z, n/l, -n/-ng …) count as almost the same."""
    key = q.pinyin_keys[0] if q.pinyin_keys else ""
    if not key:
        return 0.0
    keys = (*c.pinyin_keys(), *c.short_pinyin_keys())
    cap = min(len(key), _CLOSENESS_EDITS)
    if c.pinyin_distance is not None and c.fuzzy_pinyin_distance is not None:
        distance, fuzzy_distance = min(c.pinyin_distance, cap), min(c.fuzzy_pinyin_distance, cap)
        return max(0.0, 1.0 - distance / len(key), 0.95 - fuzzy_distance / len(key))
    distance = min((levenshtein(key, k, limit=cap) for k in keys), default=cap)
    if distance == 0:
        return 1.0
    fuzzy_key = fuzzy_pinyin(key)
    fuzzy_distance = min((levenshtein(fuzzy_key, fuzzy_pinyin(k), limit=cap) for k in keys), default=cap)
    return max(0.0, 1.0 - distance / len(key), 0.95 - fuzzy_distance / len(key))


def _han_typo_quality(q: SearchQuery, c: Candidate) -> float:
    """How likely a one-edit match is the name meant: the share of typed characters found in the name in order,
    then how close the pinyin is (a wrong character that sounds alike is the likelier slip), then whether the
    typed generic (镇, 村 …) is the name's."""
    text = q.text
    kept = max(common_subsequence(text, c.name), common_subsequence(text, c.name_short)) / len(text)
    same_generic = 1.0 if text[-1] == c.name[-1] else 0.0
    # a character typed twice (太阳阳村) is the commonest extra character; else a slip keeps the length
    doubled = 1.0 if _DOUBLED.sub(r"\1", text) in (c.name, c.name_short) and _DOUBLED.search(text) else 0.0
    same_length = 1.0 if len(text) == len(c.name) else 0.0
    return 0.6 * kept + 0.3 * _pinyin_closeness(q, c) + 0.1 * same_generic + 0.1 * doubled + 0.02 * same_length


def score(match: Match) -> float:
    """The score shown with an answer: the kind's base score, lowered by up to 0.05 for a partial match."""
    base = MATCH_KINDS[match.kind][1]
    return round(base - 0.05 * (1.0 - max(0.0, min(1.0, match.quality))), 4)


def _sort_key(match: Match, shown: Candidate, *, former: bool) -> tuple:
    distance = shown.distance_m if shown.distance_m is not None else 0.0
    tier = match.tier * 2 + (1 if former else 0)  # a former name just after current names matched alike
    if match.kind in ("typo", "fuzzy"):
        # one-edit and fuzzy matches differ most in how close they are: that decides before the level
        return (tier, -round(match.quality, 3), -shown.level, round(distance, 0), len(shown.name), shown.id)
    return (tier, -shown.level, 0 if match.kind == "exact" else 1, round(distance, 0), -match.quality,
            len(shown.name), shown.id)


def rank(query: SearchQuery, candidates: Iterable[Candidate], *, successors: dict[int, Candidate] | None = None,
         resolve_former: bool = True, limit: int = 10) -> list[Ranked]:
    """The best ``limit`` answers, best first, one per record shown.

    With ``resolve_former`` a record that is no longer current and names a successor is answered with the
    successor (found in ``successors``, by id) and the match ``former_name``; records with neither are dropped.
    """
    successors = successors or {}
    best: dict[int, Ranked] = {}
    for candidate in candidates:
        match = classify(query, candidate)
        if match is None:
            continue
        former: Candidate | None = None
        shown = candidate
        if resolve_former and candidate.status != "current":
            successor = successors.get(candidate.successor_id) if candidate.successor_id else None
            if successor is None:
                continue
            former, shown = candidate, successor
            key = _sort_key(match, shown, former=True)
            match = Match("former_name", match.quality * (1.0 if match.tier == 0 else 0.8))
        else:
            key = _sort_key(match, shown, former=False)
        answer = Ranked(candidate=shown, match=match, score=score(match), former=former, sort_key=key)
        kept = best.get(shown.id)
        if kept is None or key < kept.sort_key:
            best[shown.id] = answer
    return sorted(best.values(), key=lambda r: r.sort_key)[:limit]
