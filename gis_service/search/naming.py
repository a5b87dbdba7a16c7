"""The naming rules a proposed name is checked against (命名审核), from 《地名管理条例》 (2022, 国务院令第753号).

Pure: names, kinds and scopes in, grades and rulings out; :func:`gis_service.search.queries.check_name` finds the
existing names and their places.

**Grades of a clash** between a proposed name and an existing one:

- ``same_name`` (同名): the same characters;
- ``same_sound`` (同音): the same toneless pinyin (石堤镇 and 时堤镇), either reading of a polyphonic character;
- ``similar`` (近似): one character apart (石提镇), or the same specific part (专名: 梅江路 and 梅江大道 share 梅江).

**The rule** (第九条第一款): "（七）国内著名的自然地理实体名称，全国范围内的县级以上行政区划名称，不应重名，并避免同音；
（八）同一个省级行政区域内的乡、镇名称，同一个县级行政区域内的村民委员会、居民委员会所在地名称，同一个建成区内的街路巷名称，
同一个建成区内的具有重要地理方位意义的住宅区、楼宇名称，不应重名，并避免同音". So a clash is **refused** when it is
``same_name`` or ``same_sound``, both names are of the same kind, and the existing one lies in the scope item (八)
sets for that kind:

==============  ===============================================  ============================================
kind            scope of the rule                                 checked here as
==============  ===============================================  ============================================
township        乡、镇 in the same province (重庆市)                 every township name of the county (the part
                                                                 of the province this service holds)
village         村（居）民委员会所在地 in the same county             every village and community of the county
road            街路巷 in the same built-up area (建成区)              roads in the same built-up area: the county
                                                                 seat (the 街道) is one, each township's seat
                                                                 another
residential     住宅区、楼宇 in the same built-up area                settlements in the same built-up area
==============  ===============================================  ============================================

Everything else is a **warning**: similar names (the regulation does not forbid them; they are what mistakes are
made of), the same name or sound outside the rule's scope or between different kinds, and clashes with historical
names. The 1986 regulation (第四条) was narrower (township names in the county, village names in the township,
street names in one town); 2022 widened village names to the county and streets to the built-up area.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GRADES = ("same_name", "same_sound", "similar")
KINDS = ("township", "village", "road", "residential", "other")
SCOPES = ("same_township", "neighbouring_township", "same_county")
#: How the 命名核查 page writes the grades, kinds and scopes (the words of the regulation and of the office).
GRADES_ZH = {"same_name": "同名", "same_sound": "同音", "similar": "近似"}
KINDS_ZH = {"township": "乡、镇、街道", "village": "村（社区）", "road": "街路巷", "residential": "住宅区、楼宇",
            "other": "其他（自然地理实体、设施等）"}
SCOPES_ZH = {"same_township": "同一乡镇", "neighbouring_township": "相邻乡镇", "same_county": "本县"}

#: Generic parts (通名) by kind, longest first within a kind: what a name ends in tells its kind.
GENERICS: dict[str, tuple[str, ...]] = {
    "township": ("街道", "镇", "乡"),
    "village": ("社区", "村"),
    "road": ("大道", "大街", "胡同", "路", "街", "巷"),
    "residential": ("小区", "花园", "家园", "新村", "公寓", "华庭", "名城", "佳苑", "雅居", "苑"),
    "other": ("河", "溪", "江", "湖", "山", "岭", "坡", "洞", "沟", "湾", "坝", "潭", "峡", "桥", "广场", "公园",
              "寨"),
}
_BY_LENGTH = sorted(((g, kind) for kind, generics in GENERICS.items() for g in generics), key=lambda p: -len(p[0]))

ARTICLE = "《地名管理条例》（2022年，国务院令第753号）第九条第一款"
RULES = {
    "township": f"{ARTICLE}第（八）项：同一个省级行政区域内的乡、镇名称不应重名，并避免同音",
    "village": f"{ARTICLE}第（八）项：同一个县级行政区域内的村民委员会、居民委员会所在地名称不应重名，并避免同音",
    "road": f"{ARTICLE}第（八）项：同一个建成区内的街路巷名称不应重名，并避免同音",
    "residential": f"{ARTICLE}第（八）项：同一个建成区内的具有重要地理方位意义的住宅区、楼宇名称不应重名，并避免同音",
}
WARNINGS = {
    "similar": "近似名称（相差一字或专名相同）：条例不禁止，易混淆，审核时宜斟酌（第五条：地名应当方便生产生活）",
    "other_kind": "不同类别的同名或同音：第九条第一款第（八）项只约束同类地名，不拒绝，但易混淆",
    "outside_scope": "同名或同音但不在该类地名的不重名范围内（见所引条款），不拒绝，但易混淆",
    "historical": "与历史地名（已不使用）同名或同音：条例约束现行地名，不拒绝；重用旧名须说明沿革",
    "no_rule": "该类地名（自然地理实体、设施等）在本县范围内无不重名规定（第（七）项只约束国内著名的自然地理实体），"
               "不拒绝，但易混淆",
}


def kind_of(name: str) -> tuple[str, str | None]:
    """The kind a name's generic part says (``other`` when none matches) and that generic."""
    for generic, kind in _BY_LENGTH:
        if name.endswith(generic) and len(name) > len(generic):
            return kind, generic
    return "other", None


def specific_part(name: str) -> str:
    """The name without its generic part (专名): 梅江大道 -> 梅江; the name itself when nothing is left."""
    _, generic = kind_of(name)
    return name[: -len(generic)] if generic else name


@dataclass(frozen=True)
class Ruling:
    """What one clash means: refused or a warning, and the rule or reason in Chinese."""

    refused: bool
    rule: str
    why: str


def rule_on(*, grade: str, proposed_kind: str, existing_kind: str, scope: str, same_built_up_area: bool,
            existing_current: bool) -> Ruling:
    """Whether the regulation refuses the proposed name for this clash (module docstring), and why."""
    if grade == "similar":
        return Ruling(False, WARNINGS["similar"], "similar")
    if not existing_current:
        return Ruling(False, WARNINGS["historical"], "historical")
    if proposed_kind not in RULES:
        return Ruling(False, WARNINGS["no_rule"], "no_rule")
    if existing_kind != proposed_kind:
        return Ruling(False, WARNINGS["other_kind"], "other_kind")
    in_scope = same_built_up_area if proposed_kind in ("road", "residential") else True  # the whole county
    if not in_scope:
        return Ruling(False, f"{WARNINGS['outside_scope']}；{RULES[proposed_kind]}", "outside_scope")
    return Ruling(True, RULES[proposed_kind], "refused")


_LEVEL_CODE = re.compile(r"^[0-9]{12}$")


def division_kind(code: str | None) -> str | None:
    """county, township or village for a 12-digit statistical code."""
    if not code or not _LEVEL_CODE.match(code):
        return None
    if code[6:] == "000000":
        return "county"
    return "township" if code[9:] == "000" else "village"


def existing_kind(category: str, division_code: str | None) -> str:
    """The kind of an existing gazetteer record, from its category (and, for administrative names, its level)."""
    if category == "administrative":
        level = division_kind(division_code)
        return level if level in ("township", "village") else "other"
    return {"road": "road", "settlement": "residential"}.get(category, "other")
