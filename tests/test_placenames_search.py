"""Place-name search against the demo county: a query set of real Xiushan names typed every way the office's
users type them, and the issue's own examples. The intended place must come first."""

from __future__ import annotations

import csv
import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from gis_service.pinyin import toneless
from gis_service.search import queries
from gis_service.search.keys import char_readings, common_subsequence, pinyin_key, short_name

DATA = Path(__file__).resolve().parents[1] / "layers" / "xiushan"
MEASURE_SRID = 4545
GENERIC_PINYIN = {"镇": "zhen", "乡": "xiang", "街道": "jie dao", "村": "cun", "社区": "she qu"}
HISTORICAL = {"清溪场镇": "清溪场街道", "孝溪乡": "清溪场街道", "涌洞乡": "涌洞镇"}


@dataclass(frozen=True)
class Case:
    query: str
    expected_id: int
    expected_name: str
    how: str


def _divisions() -> list[tuple[str, str, str, dict]]:
    """(12-digit code, standard name, level, CSV row) of the real townships and villages (2023 codes)."""
    rows = []
    with (DATA / "xiushan_townships.csv").open(encoding="utf-8") as handle:
        rows += [(r["code12"], r["name"], "township", r) for r in csv.DictReader(handle)]
    with (DATA / "xiushan_villages.csv").open(encoding="utf-8") as handle:
        rows += [(r["code12"], r["short_name"], "village", r) for r in csv.DictReader(handle)]
    return rows


@functools.cache
def _characters_by_reading() -> dict[str, list[str]]:
    """Characters of the basic CJK block by their preferred reading, in code-point order."""
    by_reading: dict[str, list[str]] = {}
    for code in range(0x4E00, 0x9FA6):
        readings = char_readings(chr(code))
        if readings:
            by_reading.setdefault(readings[0], []).append(chr(code))
    return by_reading


def _homophone(char: str) -> str | None:
    """Another character read the same way (the first in code-point order with the same preferred reading):
    the slip a pinyin input method makes."""
    readings = char_readings(char)
    if not readings:
        return None
    return next((c for c in _characters_by_reading().get(readings[0], []) if c != char), None)


def _wrong(char: str) -> str:
    """A character that does not sound like ``char``: one of a fixed list, the first whose reading differs."""
    for other in "甲木水火土东南":
        if char_readings(other)[:1] != char_readings(char)[:1] and other != char:
            return other
    return "甲"


def _variants(name: str, level: str, row: dict) -> list[tuple[str, str]]:
    """(query, how) for one division name, typed in the ways the issue lists."""
    short = short_name(name)
    generic = name[len(short):]
    syllables = toneless(name).split()
    short_syllables = syllables[:len(short)]
    out = [(name, "exact"), (short, "short name"),
           (" ".join(short_syllables), "pinyin with spaces"), ("".join(short_syllables), "pinyin"),
           (" ".join(syllables), "full pinyin with spaces"), ("".join(syllables), "full pinyin"),
           ("".join(s[0] for s in syllables), "initials")]
    if level == "township":
        out.append(("".join(s[0] for s in short_syllables), "initials of the short name"))
    if generic in GENERIC_PINYIN and GENERIC_PINYIN[generic].replace(" ", "") != "".join(syllables[len(short):]):
        out.append(("".join(short_syllables) + GENERIC_PINYIN[generic].replace(" ", ""), "full pinyin"))
    # one character changed, missing or added, inside the specific part of the name
    last = len(short) - 1
    homophone = _homophone(short[last])
    if homophone:
        out.append((short[:last] + homophone + generic, "homophone"))
    first_homophone = _homophone(short[0])
    if first_homophone:
        out.append((first_homophone + short[1:], "homophone in the short name"))
    if len(short) >= 3:
        out.append((short[:1] + short[2:] + generic, "missing character"))
        out.append((short[:last] + _wrong(short[last]) + generic, "wrong character"))
    out.append((short + short[last] + generic, "extra character"))
    out.append((short[:1] + _wrong(short[0]) + short[1:] + generic, "extra character"))
    # pinyin with a letter left out or two letters swapped
    key = "".join(syllables)
    middle = len(key) // 2
    out.append((key[:middle] + key[middle + 1:], "pinyin, a letter missing"))
    if key[middle] != key[middle + 1]:
        out.append((key[:middle] + key[middle + 1] + key[middle] + key[middle + 2:], "pinyin, two letters swapped"))
    if level == "village":
        out.append((row["name_nbs"], "committee's full name"))
        township = row["township_name"]
        out.append((township + name, "with its township"))
        out.append((short_name(township) + name, "with its township's short name"))
    return out


def build_query_set(conn: sa.Connection) -> list[Case]:
    """Every division of the county typed every way. A query is kept only when it can point at one place: it must
    not be the name, short name, pinyin or initials of another current division at the same or a higher level,
    nor a homophone of one that shares as many of its characters (then nothing tells which was meant, and by
    the rules the higher level is the answer)."""
    records = {(row.division_code, row.name): row.id for row in conn.execute(sa.text(
        "SELECT id, name, division_code FROM place_names WHERE category = 'administrative' AND status = 'current'"))}
    by_id = {i: name for (_, name), i in records.items()}
    keys = conn.execute(sa.text(
        "SELECT id, name, name_short, py_key, py_short_key, py_initials, division_code FROM place_names "
        "WHERE category = 'administrative' AND status = 'current'")).all()
    level = {row.id: (2 if row.division_code.endswith("000") else 1) for row in keys}
    cases: list[Case] = []
    for code, name, division_level, row in _divisions():
        place_id = records[(code, name)]
        for query, how in _variants(name, division_level, row):
            folded = query.replace(" ", "")
            rivals = [row for row in keys if row.id != place_id and level[row.id] >= level[place_id]
                      and folded in (row.name, row.name_short, row.py_key, row.py_short_key, row.py_initials,
                                     row.py_initials[:len(row.name_short)])]
            exact_elsewhere = [row for row in keys if row.id != place_id and folded == row.name]
            if any("\u4e00" <= ch <= "\u9fff" for ch in folded):
                key, shared = pinyin_key(folded), common_subsequence(folded, name)
                rivals += [row for row in keys if row.id != place_id and level[row.id] >= level[place_id]
                           and key in (row.py_key, row.py_short_key)
                           and common_subsequence(folded, row.name) >= shared]
            if rivals or exact_elsewhere:
                continue
            cases.append(Case(query, place_id, by_id[place_id], how))
    historical = {row.name: row.successor_id for row in conn.execute(sa.text(
        "SELECT name, successor_id FROM place_names WHERE status = 'historical'"))}
    for former, successor_name in HISTORICAL.items():
        successor = historical[former]
        assert by_id[successor] == successor_name
        cases.append(Case(former, successor, successor_name, "former name"))
        cases.append(Case("".join(toneless(former).split()), successor, successor_name, "former name in pinyin"))
    return cases


def first_hit(conn: sa.Connection, query: str) -> dict | None:
    answer = queries.search(conn, query, queries.SearchFilters(), measure_srid=MEASURE_SRID, limit=3)
    return answer["features"][0] if answer["features"] else None


def test_query_set_finds_the_intended_place_first_in_95_percent(conn: sa.Connection) -> None:
    cases = build_query_set(conn)
    assert len(cases) >= 2000
    misses: list[tuple[Case, str | None]] = []
    by_how: Counter = Counter()
    hits_by_how: Counter = Counter()
    for case in cases:
        top = first_hit(conn, case.query)
        by_how[case.how] += 1
        if top is not None and top["id"] == case.expected_id:
            hits_by_how[case.how] += 1
        else:
            misses.append((case, top["properties"]["name"] if top else None))
    rate = 1 - len(misses) / len(cases)
    print(f"\nplace-name query set: {len(cases)} queries, first-hit rate {rate:.1%}")
    for how in sorted(by_how):
        print(f"  {how:<28} {hits_by_how[how]:>4}/{by_how[how]:<4} {hits_by_how[how] / by_how[how]:.1%}")
    for case, got in misses[:40]:
        print(f"  miss: {case.query!r} ({case.how}) -> {got}, wanted {case.expected_name}")
    assert rate >= 0.95


def test_former_names_answer_with_the_successor_and_a_note(client) -> None:
    for former, successor in HISTORICAL.items():
        feature = client.get("/placenames/search", params={"q": former}).json()["features"][0]
        assert feature["properties"]["name"] == successor
        assert feature["properties"]["match"] == "former_name"
        assert feature["properties"]["former_name"] == former
        assert former in feature["properties"]["note"]
