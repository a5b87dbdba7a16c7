"""The pure parts of place-name search: query normalisation, keys and ranking, without a database."""

from __future__ import annotations

import pytest

from gis_service.errors import InvalidInputError
from gis_service.search.keys import common_subsequence, deletes, fold_pinyin, levenshtein, pinyin_key, short_name
from gis_service.search.normalize import MAX_QUERY_LENGTH, normalize_query
from gis_service.search.ranking import Candidate, classify, level_rank, rank


def candidate(id_: int, name: str, *, level: int = 0, status: str = "current", successor_id: int | None = None,
              alt: str | None = None, distance_m: float | None = None) -> Candidate:
    """A candidate with the keys the database would compute for it (dictionary readings)."""
    short = short_name(name)
    key = pinyin_key(name)
    from gis_service.pinyin import toneless

    syllables = toneless(name).split()
    return Candidate(id=id_, name=name, name_short=short, py_key=key,
                     py_short_key=fold_pinyin("".join(syllables[:len(short)])),
                     py_initials="".join(s[0] for s in syllables), status=status, successor_id=successor_id,
                     py_alt_key=alt, level=level, distance_m=distance_m)


def test_fold_pinyin_strips_tones_spaces_and_folds_u_umlaut() -> None:
    assert fold_pinyin("Lóngfèngbà Zhèn") == "longfengbazhen"
    assert fold_pinyin("Lǜshuǐ Cūn") == fold_pinyin("lv shui cun") == fold_pinyin("lushuicun") == "lushuicun"
    assert fold_pinyin("Xī'ān Lù") == "xianlu"


def test_short_name_drops_the_administrative_generic_only() -> None:
    assert short_name("石堤镇") == "石堤"
    assert short_name("中和街道") == "中和"
    assert short_name("东风社区") == "东风"
    assert short_name("大田坝村") == "大田坝"
    assert short_name("上村") == "上村"  # one character would be left
    assert short_name("梅江路") == "梅江路"


def test_deletes_and_edit_distances() -> None:
    assert deletes("石堤镇", min_length=2) == {"堤镇", "石镇", "石堤"}
    assert deletes("石堤", min_length=2) == set()
    assert levenshtein("龙坝镇", "龙凤坝镇") == 1
    assert levenshtein("石提镇", "石堤镇") == 1
    assert levenshtein("abc", "xyzabc", limit=3) == 3
    assert common_subsequence("龙坝镇", "龙凤坝镇") == 3


@pytest.mark.parametrize("typed, text, keys", [
    ("石堤镇", "石堤镇", ("shidizhen",)),
    (" 秀山县石堤镇 ", "石堤镇", ("shidizhen",)),
    ("石 堤", "石堤", ("shidi",)),
    ("ＳＨＩ　ＤＩ", "", ("shidi",)),
])
def test_normalize_query(typed: str, text: str, keys: tuple[str, ...]) -> None:
    query = normalize_query(typed)
    assert query.text == text
    assert query.pinyin_keys[:1] == keys


def test_latin_query_keeps_letters_for_initials_and_pinyin() -> None:
    query = normalize_query("Shí Dī Zhèn")
    assert not query.is_han and query.letters == "shidizhen"
    assert normalize_query("lü shui").letters == normalize_query("lv shui").letters == "lushui"


@pytest.mark.parametrize("typed", ["", "   ", None, "x" * (MAX_QUERY_LENGTH + 1), "!!!"])
def test_empty_oversize_or_meaningless_queries_are_refused(typed) -> None:
    with pytest.raises(InvalidInputError):
        normalize_query(typed)


def test_classify_names_how_a_candidate_matched() -> None:
    shidi = candidate(1, "石堤镇", level=2)
    assert classify(normalize_query("石堤镇"), shidi).kind == "exact"
    assert classify(normalize_query("石堤"), shidi).kind == "short_name"
    assert classify(normalize_query("石"), shidi).kind == "prefix"
    assert classify(normalize_query("时堤镇"), shidi).kind == "pinyin"  # homophone
    assert classify(normalize_query("shi di"), shidi).kind == "pinyin"
    assert classify(normalize_query("sdz"), shidi).kind == "initials"
    assert classify(normalize_query("shid"), shidi).kind == "pinyin_prefix"
    assert classify(normalize_query("石提镇"), shidi).kind == "typo"
    assert classify(normalize_query("shidizen"), shidi).kind == "typo"
    assert classify(normalize_query("梅江"), shidi) is None


def test_rank_prefers_exact_then_level_then_distance() -> None:
    town = candidate(1, "大溪乡", level=2)
    village = candidate(2, "大溪村", level=1)
    hamlet = candidate(3, "大溪", level=0)
    ranked = rank(normalize_query("大溪"), [hamlet, village, town])
    assert [r.candidate.id for r in ranked] == [1, 2, 3]  # all exact-tier: township, village, the rest
    near = candidate(4, "大溪湾", distance_m=100.0)
    far = candidate(5, "大溪坪", distance_m=9000.0)
    ranked = rank(normalize_query("大溪"), [far, near, town])
    assert [r.candidate.id for r in ranked] == [1, 4, 5]
    assert ranked[0].match.kind == "short_name" and ranked[1].match.kind == "prefix"


def test_former_name_answers_with_its_successor() -> None:
    successor = candidate(10, "清溪场街道", level=2)
    former = candidate(11, "孝溪乡", status="historical", successor_id=10)
    ranked = rank(normalize_query("孝溪乡"), [former], successors={10: successor})
    assert len(ranked) == 1
    assert ranked[0].candidate.name == "清溪场街道"
    assert ranked[0].match.kind == "former_name" and ranked[0].former.name == "孝溪乡"
    # without a successor a historical record is not an answer among current names
    assert rank(normalize_query("孝溪乡"), [former], successors={}) == []
    # asked for as itself, it is
    assert rank(normalize_query("孝溪乡"), [former], resolve_former=False)[0].candidate.id == 11


def test_typo_prefers_the_name_holding_every_typed_character_and_sounding_alike() -> None:
    ranked = rank(normalize_query("龙坝镇"), [candidate(1, "龙池镇", level=2), candidate(2, "龙凤坝镇", level=2)])
    assert ranked[0].candidate.name == "龙凤坝镇"
    ranked = rank(normalize_query("石提镇"), [candidate(1, "石耶镇", level=2), candidate(2, "石堤镇", level=2)])
    assert ranked[0].candidate.name == "石堤镇"


def test_polyphonic_name_is_found_by_both_readings() -> None:
    chaoyang = candidate(1, "朝阳社区", level=1, alt="zhaoyangshequ")
    assert classify(normalize_query("chaoyangshequ"), chaoyang).kind == "pinyin"
    assert classify(normalize_query("zhaoyangshequ"), chaoyang).kind == "pinyin"


def test_level_rank_from_the_division_code() -> None:
    assert level_rank("administrative", "500241000000") == 3
    assert level_rank("administrative", "500241107000") == 2
    assert level_rank("administrative", "500241107200") == 1
    assert level_rank("settlement", "500241107200") == 0
