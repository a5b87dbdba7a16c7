"""Turning what a user typed into the keys the database holds: Chinese, pinyin, initials, one-edit variants."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gis_service.errors import InvalidInputError
from gis_service.io.validate import CONTROL_CHARACTERS
from gis_service.search.keys import deletes, fold_pinyin, is_han, pinyin_key, preferred_syllables, short_name

__all__ = ["SearchQuery", "normalize_query", "typed_text", "MAX_QUERY_LENGTH", "SEARCHABLE_PATTERN", "HAN_PATTERN"]

#: Longest query accepted, in characters as typed (the longest standard name is 100).
MAX_QUERY_LENGTH = 100
#: A query must hold one of these to be searched for: a Chinese character, or a letter or digit (also full-width,
#: as a Chinese input method types them). As the API document's pattern.
SEARCHABLE_PATTERN = "[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3400-\u9fff]"
#: A Chinese character (CJK unified ideographs and extension A): a proposed name must hold one.
HAN_PATTERN = "[\u3400-\u9fff]"

# Prefixes a user may type before a name in this county: 秀山县石堤镇 means 石堤镇.
_COUNTY_PREFIXES = ("重庆市秀山土家族苗族自治县", "秀山土家族苗族自治县", "重庆市秀山县", "重庆市", "秀山县")
# The committee (居民委员会, 村委会) is the organisation, not the place: 东风社区居民委员会 means 东风社区.
_COMMITTEE = re.compile("(居民委员会|村民委员会|居委会|村委会)$")
_SPACE_AND_PUNCTUATION = re.compile(r"[\s\u3000·•・.,，。、;；:：'\"“”‘’()（）\[\]【】<>《》!！?？/\\|_-]+")
_LATIN_NOISE = re.compile(r"[^a-z0-9üvāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜêńňǹḿ]+")


@dataclass(frozen=True)
class SearchQuery:
    """A normalised query and every key it is compared on."""

    #: What the user typed, trimmed: the text shown back.
    raw: str
    #: Chinese query: the name typed, without spaces and punctuation. Latin query: "".
    text: str
    #: ``text`` without its administrative generic (石堤镇 -> 石堤); "" for a Latin query.
    short: str
    #: Folded toneless pinyin keys the query may stand for: "shidizhen" (both readings of a polyphonic query).
    pinyin_keys: tuple[str, ...]
    #: Latin query: its folded letters, compared with initials ("sdz"). Chinese query: "".
    letters: str
    #: The query and its one-deletion variants (Chinese), for one-edit look-ups against ``typo_keys``.
    typo_variants: tuple[str, ...]
    #: The pinyin key and its one-deletion variants, for one-edit look-ups against ``py_typo_keys``.
    pinyin_typo_variants: tuple[str, ...]

    @property
    def is_han(self) -> bool:
        return bool(self.text)

    @property
    def typo_deletes(self) -> tuple[str, ...]:
        """Variants of the query with one character removed (an extra character typed)."""
        return tuple(v for v in self.typo_variants if v != self.text)


def normalize_query(q: str | None, *, argument: str = "q") -> SearchQuery:
    """Normalise a user's query; InvalidInputError (400) when it is empty, too long or has nothing searchable."""
    if q is None or not q.strip():
        raise InvalidInputError(f"{argument} is empty; type a place name, its pinyin or its initials, e.g. 石堤 or sdz")
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidInputError(f"{argument} is {len(q)} characters long; at most {MAX_QUERY_LENGTH} are accepted")
    if not re.search(SEARCHABLE_PATTERN, q):
        raise InvalidInputError(f"{argument} {q!r} holds no letters, digits or Chinese characters to search for")
    raw = unicodedata.normalize("NFKC", q).strip()
    if CONTROL_CHARACTERS.search(raw):
        raise InvalidInputError(f"{argument} contains control characters; type the name without them")
    if is_han(raw):
        text = _SPACE_AND_PUNCTUATION.sub("", raw)
        for prefix in _COUNTY_PREFIXES:
            if text.startswith(prefix) and len(text) - len(prefix) >= 2:
                text = text[len(prefix):]
                break
        if len(_COMMITTEE.sub("", text)) >= 2:
            text = _COMMITTEE.sub("", text)
        keys = [pinyin_key(text), fold_pinyin("".join(preferred_syllables(text)))]
        pinyin_keys = tuple(dict.fromkeys(k for k in keys if k))
        letters = ""
        typo_variants = (text, *sorted(deletes(text, min_length=2)))
        short = short_name(text)
    else:
        lowered = _LATIN_NOISE.sub("", raw.lower())
        letters = fold_pinyin(lowered)
        if not letters:
            raise InvalidInputError(f"{argument} {q!r} holds no letters, digits or Chinese characters to search for")
        text, short, typo_variants = "", "", ()
        pinyin_keys = (letters,)
    first_key = pinyin_keys[0] if pinyin_keys else ""
    pinyin_typo_variants = (first_key, *sorted(deletes(first_key, min_length=4))) if len(first_key) >= 4 else ()
    return SearchQuery(raw=raw, text=text, short=short, pinyin_keys=pinyin_keys, letters=letters,
                       typo_variants=typo_variants, pinyin_typo_variants=pinyin_typo_variants)


def typed_text(query: SearchQuery) -> str:
    """What a Chinese query asks a name to contain: the text as typed without spaces and punctuation, before the
    county's name or a committee's is taken off (a "contains" search for 秀山县 finds names holding 秀山县)."""
    return _SPACE_AND_PUNCTUATION.sub("", query.raw) if query.is_han else ""
