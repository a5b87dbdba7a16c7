"""Hanyu Pinyin spellings of Chinese place names (地名汉语拼音).

``romanize`` follows the style of the national place-name database (国家地名信息库) and
GB/T 16159 / GB 17733: the specific part (专名) is written as one capitalised word, the
generic part (通名: 镇, 街道, 社区, 路, 河 …) as a separate capitalised word, tone marks on,
ü kept as ü, and an apostrophe before a syllable starting with a, o or e inside a word:

    龙凤坝镇 -> "Lóngfèngbà Zhèn"     中和街道 -> "Zhōnghé Jiēdào"     梅江河 -> "Méijiāng Hé"
    矮坳村   -> "Ǎi'ào Cūn"           酉水     -> "Yǒushuǐ" (one-syllable specific: written as one word)

``toneless`` ("long feng ba zhen") and ``initials`` ("lfbz") are the search keys.

Readings come from pypinyin (phrase dictionary first, then the most common reading of each
character), corrected by a short table of readings that place names and surnames use.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

__all__ = ["romanize", "toneless", "initials", "split_generic"]

# Generic parts (通名), longest first so that 街道 wins over 道, 大道 over 路 and 古镇 over 镇.
# fmt: off
_GENERIC_SET = {
    "土家族苗族自治县", "自治县", "县", "街道", "镇", "乡", "社区", "村", "小区",  # divisions, settlements
    "大道", "路", "街", "巷", "村道", "便道", "支路", "大桥", "桥",  # roads and bridges
    "河", "江", "溪", "湖", "山", "盖",  # natural features (盖: a flat-topped mountain)
    "古镇", "景区", "森林公园", "公园", "陵园", "山寨", "边城", "公墓", "站", "医院",  # places and facilities
}
# fmt: on
GENERICS: tuple[str, ...] = tuple(sorted(_GENERIC_SET, key=lambda g: (-len(g), g)))

_NUMBERED_GENERICS = {"桥", "巷", "街", "路"}
_NUMERALS = set("一二三四五六七八九十")

# Readings that place names (and the surnames in them) use where the dictionary default differs.
_PHRASE_READINGS: dict[str, tuple[str, ...]] = {
    "朝阳": ("cháo", "yáng"),
    "曾家": ("zēng", "jiā"),
    "单家": ("shàn", "jiā"),
    "覃家": ("qín", "jiā"),
    "解家": ("xiè", "jiā"),
    "乐家": ("yuè", "jiā"),
    "秀山": ("xiù", "shān"),
}
_CHAR_READINGS: dict[str, str] = {
    "长": "cháng",  # 长滩, 长岗, 长冲: "long", not "grow"
    "都": "dū",  # 雅都
    "堡": "bǎo",
}

# Whole names with an official spelling that the rules above do not produce.
_SPECIAL: dict[str, str] = {
    "秀山土家族苗族自治县": "Xiùshān Tǔjiāzú Miáozú Zìzhìxiàn",
}

_TONE_MARKS = {"\u0304", "\u0301", "\u030c", "\u0300"}  # macron, acute, caron, grave
_VOWEL_START = set("aoeāáǎàōóǒòēéěè")


def _syllables(text: str) -> list[str]:
    """Toned syllables of ``text``, one per character (non-Han runs pass through as one item)."""
    syllables = lazy_pinyin(text, style=Style.TONE, errors=lambda chars: [c for c in chars])
    if len(syllables) != len(text):  # defensive: pypinyin keeps one item per Han character
        return syllables
    out = list(syllables)
    for i, char in enumerate(text):
        if char in _CHAR_READINGS:
            out[i] = _CHAR_READINGS[char]
    for phrase, reading in _PHRASE_READINGS.items():
        start = text.find(phrase)
        while start >= 0:
            out[start : start + len(phrase)] = reading
            start = text.find(phrase, start + 1)
    return out


def _strip_tones(syllable: str) -> str:
    decomposed = unicodedata.normalize("NFD", syllable)
    kept = "".join(c for c in decomposed if c not in _TONE_MARKS)
    return unicodedata.normalize("NFC", kept).replace("ü", "v")


def _word(syllables: list[str]) -> str:
    """One capitalised word: syllables joined, with an apostrophe before a, o, e."""
    parts: list[str] = []
    for i, syllable in enumerate(syllables):
        if i > 0 and syllable[:1].lower() in _VOWEL_START:
            parts.append("'")
        parts.append(syllable)
    word = "".join(parts)
    return word[:1].upper() + word[1:]


def split_generic(name: str) -> tuple[str, str]:
    """Split ``name`` into (specific, generic); generic is "" when none is recognised.

    A serial number belongs to the generic of a street or bridge: 梅江一桥 -> (梅江, 一桥).
    """
    for generic in GENERICS:
        if name.endswith(generic) and len(name) > len(generic):
            specific = name[: -len(generic)]
            if generic in _NUMBERED_GENERICS and len(specific) >= 3 and specific[-1] in _NUMERALS:
                return specific[:-1], specific[-1] + generic
            return specific, generic
    return name, ""


@lru_cache(maxsize=65536)
def romanize(name: str) -> str:
    """Hanyu Pinyin with tone marks, specific and generic as separate capitalised words.

    A one-character specific is joined to its generic (酉水 -> "Yǒushuǐ", 泰山 -> "Tàishān").
    """
    name = name.strip()
    if not name:
        return ""
    if name in _SPECIAL:
        return _SPECIAL[name]
    syllables = _syllables(name)
    specific, generic = split_generic(name)
    if not generic or len(specific) < 2 or len(syllables) != len(name):
        return _word(syllables)
    return f"{_word(syllables[: len(specific)])} {_word(syllables[len(specific) :])}"


def toneless(name: str) -> str:
    """Lowercase toneless syllables separated by spaces, ü written v: 龙凤坝镇 -> "long feng ba zhen".

    A run of Latin letters or digits stays one token ("G319" -> "g319").
    """
    tokens: list[str] = []
    previous_ascii = False
    for syllable in _syllables(name.strip()):
        if not syllable.strip():
            previous_ascii = False
            continue
        is_ascii = len(syllable) == 1 and syllable.isascii()
        if is_ascii and previous_ascii:
            tokens[-1] += syllable.lower()
        else:
            tokens.append(_strip_tones(syllable).lower())
        previous_ascii = is_ascii
    return " ".join(tokens)


def initials(name: str) -> str:
    """First letter of each syllable: 龙凤坝镇 -> "lfbz"."""
    return "".join(s[0] for s in toneless(name).split())
