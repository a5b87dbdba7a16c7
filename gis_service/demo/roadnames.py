"""Names of the demo roads and their naming records (道路命名: date, approval number, former names).

County-town streets get urban names (渝秀大道, 凤凰路, …) and the naming records: exactly 56 of them
were named in 2016-2020, as the bureau's plan reports. Township towns get 正街 / 新街 / 老街 …,
routes between township seats are named after their two ends (秀石路: 秀山-石堤), bridges after
their place, village roads after the village (X村道) and lanes after the hamlet they serve.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from . import geography, names
from .divisions import Layout

NAMED_2016_2020 = 56  # the plan: 56 roads newly named in 2016-2020
# Streets renamed when they got their standard name: the old names go to former_names.
FORMER_NAMES = (
    ["319国道城区段"],
    ["园区一号路"],
    ["园区二号路"],
    ["滨河路", "河滨路"],
    ["新市街"],
    ["老街"],
)


def route_name(layout: Layout, a: int, b: int, taken: set[str]) -> str:
    def abbreviation(t: int) -> str:
        return "秀" if layout.townships[t].kind == "街道" else layout.townships[t].short_name[0]

    short = f"{abbreviation(a)}{abbreviation(b)}路"
    if short not in taken:
        return short
    return f"{layout.townships[a].short_name}{layout.townships[b].short_name}路"


def urban_street_names(rng, grid_id, axis, line_index, road_class, name) -> list[str]:
    """Name the county town's street lines; returns the distinct names in naming order."""
    lines = sorted({(int(ax), int(li)) for ax, li, g in zip(axis, line_index, grid_id, strict=True) if g == 0})
    arterial_specifics = list(names.URBAN_ARTERIAL_SPECIFICS)
    others = [s for s in names.URBAN_SPECIFICS if s not in arterial_specifics and s != "凤凰"]
    others = ["凤凰"] + [others[k] for k in rng.permutation(len(others))]
    line_name: dict[tuple[int, int], tuple[str, str]] = {}
    used = []
    for ax, li in lines:
        if li % 8 == 0:
            specific = arterial_specifics.pop(0) if arterial_specifics else others.pop(0)
            klass, generic = "urban_arterial", names.URBAN_GENERIC_ARTERIAL
        elif li % 4 == 0:
            specific, klass, generic = others.pop(0), "urban_secondary", names.URBAN_GENERIC_SECONDARY
        else:
            specific = others.pop(0)
            klass = "urban_branch"
            generic = names.URBAN_GENERIC_BRANCH[int(rng.integers(len(names.URBAN_GENERIC_BRANCH)))]
        line_name[(ax, li)] = (specific + generic, klass)
        used.append(specific + generic)
    for e in np.flatnonzero(grid_id == 0):
        name[e], road_class[e] = line_name[(int(axis[e]), int(line_index[e]))]
    return used


_TOWN_STREETS = ("老街", "河街", "后街", "上街", "下街", "横街", "东街", "西街", "南街", "北街", "中街", "前街")


def town_street_names(short: str, mask, axis, line_index, road_class, name) -> None:
    lines = sorted(
        {(int(ax), int(li)) for ax, li in zip(axis[mask], line_index[mask], strict=True)}, key=lambda x: (abs(x[1]), x)
    )
    extra = 0
    line_name = {}
    for ax, li in lines:
        if li == 0:
            line_name[(ax, li)] = (f"{short}{'正街' if ax == 0 else '新街'}", "urban_secondary")
        elif extra < len(_TOWN_STREETS):
            line_name[(ax, li)] = (f"{short}{_TOWN_STREETS[extra]}", "urban_branch")
            extra += 1
        else:
            extra += 1
            line_name[(ax, li)] = (f"{short}{names.ordinal(extra - len(_TOWN_STREETS))}巷", "urban_branch")
    for e in np.flatnonzero(mask):
        name[e], road_class[e] = line_name[(int(axis[e]), int(line_index[e]))]


def bridge_names(layout: Layout, sites, rng) -> list[str]:
    out: list[str] = []
    urban_specifics = list(names.URBAN_BRIDGE_SPECIFICS)
    centres = np.array([c for c, _, _ in sites]) if sites else np.zeros((0, 2))
    villages = layout.village_at(centres) if len(centres) else np.zeros(0, dtype=int)
    for k, (_, _, urban) in enumerate(sites):
        if urban and urban_specifics:
            candidate = urban_specifics.pop(0) + "大桥"
        else:
            v = layout.villages[villages[k]] if villages[k] >= 0 else None
            candidate = (v.short_name if v else "梅江") + "大桥"
        serial = 1
        base = candidate
        while candidate in out:
            serial += 1
            candidate = base.replace("大桥", f"{names.ordinal(serial)}桥")
        out.append(candidate)
    return out


def naming_records(rng, nodes, edges, name, urban_names: list[str]):
    """named_on / approval_no / former_names per segment; only county-town streets have records.

    Exactly NAMED_2016_2020 names get a date in 2016-2020 (the outermost, newest streets), a few
    get 2021-2023, most of the rest an older date, and some have no record.
    """
    seat = geography.county_seat_metric()
    mid = (nodes[edges[:, 0]] + nodes[edges[:, 1]]) / 2
    name_arr = np.asarray(name, dtype=object)
    distance = {}
    for street in urban_names:
        members = np.flatnonzero(name_arr == street)
        distance[street] = float(np.hypot(*(mid[members] - seat).T).mean())
    order = sorted(urban_names, key=lambda s: (-(distance[s] + rng.uniform(0, 600.0)), s))
    if len(order) < NAMED_2016_2020 + 10:
        raise RuntimeError(f"only {len(order)} street names in the county town; need more than {NAMED_2016_2020}")
    recent = order[:NAMED_2016_2020]
    newest = order[NAMED_2016_2020 : NAMED_2016_2020 + 8]
    older = order[NAMED_2016_2020 + 8 :]
    record: dict[str, tuple[date | None, str | None]] = {}

    def batch(streets: list[str], years: list[int]) -> None:
        split = np.array_split(np.array(streets, dtype=object), len(years) * 2)
        for k, group in enumerate(split):
            year = years[k // 2]
            month = 3 + 6 * (k % 2) + int(rng.integers(0, 3))
            day = int(rng.integers(1, 28))
            number = f"秀山府地名〔{year}〕{int(rng.integers(3, 60))}号"
            for street in group:
                record[str(street)] = (date(year, month, day), number)

    batch(recent, [2016, 2017, 2018, 2019, 2020])
    batch(newest, [2021, 2022, 2023, 2023])
    dated_older = [s for s in older if rng.random() < 0.65]
    for street in dated_older:
        year = int(rng.integers(1992, 2016))
        record[street] = (
            date(year, int(rng.integers(1, 13)), int(rng.integers(1, 28))),
            f"秀山府地名〔{year}〕{int(rng.integers(1, 40))}号" if year >= 2005 else None,
        )
    former_of = {street: list(f) for street, f in zip(recent[::9], FORMER_NAMES, strict=False)}
    named_on, approval, former = [], [], []
    for street in name:
        day, number = record.get(street, (None, None))
        named_on.append(day)
        approval.append(number)
        former.append(list(former_of.get(street, [])))
    return named_on, approval, former
