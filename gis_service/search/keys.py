"""Search keys of a name, computed the same way in Python as the database computes them in its trigger.

The database (migration ``0002_placename_search``) stores, for every place name, its short name, the toneless
pinyin key of the name and of the short name, the initials and the one-deletion variants. A query is turned
into the same kinds of key here, so that comparing the two is a plain equality or prefix test.
Keys fold ü to u ("lü" and "lv" are typed as "lu" as often as not), which merges a few syllables on purpose.
"""

from __future__ import annotations

import re
import unicodedata

from gis_service.pinyin import toneless

__all__ = ["fold_pinyin", "short_name", "deletes", "pinyin_key", "levenshtein", "is_han"]

# Must match pn_fold_pinyin and pn_short_name in the migration.
_TONE_FROM = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüêńňǹḿv"
_TONE_TO = "aaaaeeeeiiiioooouuuuuuuuuennnmu"
_FOLD = str.maketrans(_TONE_FROM, _TONE_TO)
_GENERIC_SUFFIX = re.compile("(土家族苗族自治县|自治县|居民委员会|村民委员会|街道办事处|街道|社区|县|镇|乡|村)$")
_NOT_KEY = re.compile("[^a-z0-9]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_han(text: str) -> bool:
    """True when ``text`` holds at least one Chinese character."""
    return bool(_HAN.search(text))


def fold_pinyin(spelling: str) -> str:
    """Toneless letters and digits of a pinyin spelling, ü (and v) folded to u: "Lǜshuǐ Cūn" -> "lushuicun"."""
    text = unicodedata.normalize("NFC", spelling).lower().translate(_FOLD)
    return _NOT_KEY.sub("", text)


def short_name(name: str) -> str:
    """The name without its administrative generic (镇/乡/街道/村/社区 …) when two characters or more remain."""
    stripped = _GENERIC_SUFFIX.sub("", name)
    return stripped if len(stripped) >= 2 else name


def deletes(text: str, *, min_length: int) -> set[str]:
    """Every variant of ``text`` with one character removed, of at least ``min_length`` characters."""
    if len(text) - 1 < min_length:
        return set()
    return {text[:i] + text[i + 1:] for i in range(len(text))}


def pinyin_key(text: str) -> str:
    """The folded toneless pinyin of a name or query: 石堤镇 -> "shidizhen"; Latin letters pass through."""
    return fold_pinyin(toneless(text).replace(" ", ""))


def levenshtein(a: str, b: str, *, limit: int = 3) -> int:
    """Edit distance between two short strings (characters, not bytes), a swap of neighbours counting as one
    edit (optimal string alignment), capped at ``limit``."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        if min(current) >= limit and (i == len(a) or min(previous) >= limit):
            return limit  # every path is already at the cap (a swap can lower a cell by one row at most)
        before, previous = previous, current
    return min(previous[-1], limit)


# Must match PREFERRED_READINGS in the migration: the reading a place name most likely uses.
PREFERRED_READINGS = {"长": "chang", "都": "du", "堡": "bao", "朝": "chao", "覃": "qin", "曾": "zeng",
                      "单": "shan", "解": "xie", "乐": "yue", "石": "shi", "重": "chong", "行": "hang"}


def char_readings(char: str) -> list[str]:
    """Folded toneless readings of one character, the preferred one first ([] when unknown)."""
    from pypinyin.pinyin_dict import pinyin_dict

    spellings = pinyin_dict.get(ord(char))
    if not spellings:
        return []
    readings: list[str] = []
    for spelling in spellings.split(","):
        reading = fold_pinyin(spelling)
        if reading and reading not in readings:
            readings.append(reading)
    preferred = PREFERRED_READINGS.get(char)
    if preferred:
        readings = [preferred] + [r for r in readings if r != preferred]
    return readings


def preferred_syllables(text: str) -> list[str]:
    """One syllable per character, as the database computes when a name has no stored spelling."""
    syllables = []
    for char in text:
        if char.isascii() and char.isalnum():
            syllables.append(char.lower())
        else:
            readings = char_readings(char)
            syllables.append(readings[0] if readings else "")
    return syllables


def common_subsequence(a: str, b: str) -> int:
    """Length of the longest common subsequence of two short strings: how many typed characters are in the name,
    in order (龙坝镇 in 龙凤坝镇: 3)."""
    previous = [0] * (len(b) + 1)
    for ca in a:
        current = [0]
        for j, cb in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if ca == cb else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


# Slips a pinyin input method lets through, and the southwestern-Mandarin mergers (Chongqing): zh/z, ch/c,
# sh/s, n/l, and the -n/-ng finals.
FUZZY_SOUNDS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("ang", "an"), ("eng", "en"), ("ing", "in"), ("l", "n"))


def fuzzy_pinyin(key: str) -> str:
    """A pinyin key with the easily confused sounds merged: "shilongzhen" -> "sinonzen"."""
    for sound, merged in FUZZY_SOUNDS:
        key = key.replace(sound, merged)
    return key
