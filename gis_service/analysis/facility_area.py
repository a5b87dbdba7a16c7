"""Community service floor area per 100 households (每百户居民拥有的城乡社区综合服务设施面积).

Per unit: Σ floor area (m²) of its existing community service centres ÷ households × 100, against the plan's
target of 30 m²; the shortfall is the floor area missing to reach it. A centre belongs to the division its
``division_code`` names (the community it serves) and to that division's township and the county. Households are
the division's registered households, or the sum over its settlements where none are registered.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from gis_service.analysis.travel import describe_population
from gis_service.errors import InvalidInputError
from gis_service.layers import FACILITY_LAYERS
from gis_service.layers.registry import DEMAND_LAYER, DIVISIONS
from gis_service.store import features

#: The facilities whose floor area is counted.
CENTRES = FACILITY_LAYERS["community_centres"]

TARGET_M2_PER_100_HOUSEHOLDS = 30.0
#: The division levels the floor area is reported for, the finest first.
LEVELS = tuple(reversed(DIVISIONS.field_named("level").codes))


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise InvalidInputError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    return level


def per_hundred_households(floor_area_m2: float, households: int, *,
                           target: float = TARGET_M2_PER_100_HOUSEHOLDS) -> dict:
    """m² per 100 households, whether it meets ``target`` and the shortfall in m² (0 when met). With no
    households the value is None and nothing is short."""
    if households <= 0:
        return {"m2_per_100_households": None, "meets_target": None, "shortfall_m2": 0.0}
    value = floor_area_m2 / households * 100.0
    shortfall = max(0.0, target * households / 100.0 - floor_area_m2)
    return {"m2_per_100_households": round(value, 3), "meets_target": value >= target - 1e-9,
            "shortfall_m2": round(shortfall, 1)}


def area_table(divisions: pd.DataFrame, centres: pd.DataFrame, settlement_households: pd.Series, *,
               level: str, target: float = TARGET_M2_PER_100_HOUSEHOLDS) -> list[dict]:
    """Pure part: one row per unit of ``level``.

    ``divisions``: code, name, level, parent_code, households (current units); ``centres``: division_code,
    floor_area_m2; ``settlement_households``: households per village code.
    """
    parent = dict(zip(divisions["code"], divisions["parent_code"]))
    level_of = dict(zip(divisions["code"], divisions["level"]))
    county = next((c for c, lv in level_of.items() if lv == "county"), None)

    def unit_of(code: str | None) -> str | None:
        """The unit of ``level`` that ``code`` lies in (None when it lies in none)."""
        seen = 0
        while code is not None and seen < 5:
            if level_of.get(code) == level:
                return code
            code = parent.get(code)
            seen += 1
        return county if level == "county" else None

    area = centres.assign(unit=[unit_of(c) for c in centres["division_code"]]).groupby("unit")["floor_area_m2"]
    area_sum, centre_count = area.sum(), area.count()
    settled = pd.Series([unit_of(c) for c in settlement_households.index], index=settlement_households.index)
    settled_households = settlement_households.groupby(settled).sum()
    rows = []
    for unit in divisions[divisions["level"] == level].sort_values("code").itertuples(index=False):
        registered = unit.households
        if pd.notna(registered):
            households, source = int(registered), "admin_divisions"
        else:
            households, source = int(settled_households.get(unit.code, 0)), "settlements"
        floor_area = float(area_sum.get(unit.code, 0.0))
        rows.append({"code": unit.code, "name": unit.name, "level": level, "households": households,
                     "households_source": source, "centres": int(centre_count.get(unit.code, 0)),
                     "floor_area_m2": round(floor_area, 1), "target_m2_per_100_households": target,
                     **per_hundred_households(floor_area, households, target=target)})
    return rows


def read_inputs(conn: sa.Connection, county: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The current divisions, the community centres that count (existing ones), and the settlements' households
    per village code; of ``county`` (6-digit code) when given, else of every county."""
    divisions = features.read_frame_of_records(conn, DIVISIONS, ["code", "name", "level", "parent_code", "households"],
                                               starting={"code": county})
    centres = features.read_frame_of_records(conn, CENTRES, ["division_code", "floor_area_m2"],
                                             equals=dict(CENTRES.network.counts), starting={"division_code": county})
    village = DEMAND_LAYER.network.village
    households = features.sums_by(conn, DEMAND_LAYER, village, "households", starting={village: county})
    series = pd.Series({code: int(n) for code, n in households.items()}, dtype="int64")
    return divisions, centres, series


def facility_area(conn: sa.Connection, *, level: str = "village", county: str | None = None,
                  target: float = TARGET_M2_PER_100_HOUSEHOLDS) -> dict:
    """Floor area of community service centres per 100 households for every unit of ``level`` (of ``county``, a
    6-digit code, when given), with the units below target and the total shortfall in m²."""
    from gis_service.analysis.network import check_county

    check_level(level)
    county = check_county(county, conn)
    rows = area_table(*read_inputs(conn, county), level=level, target=target)
    below = [r for r in rows if r["meets_target"] is False]
    return {
        "level": level,
        "served_population": describe_population(CENTRES.network.population(None)),
        "county": county,
        "target_m2_per_100_households": target,
        "units": rows,
        "totals": {
            "units": len(rows),
            "units_meeting_target": sum(1 for r in rows if r["meets_target"]),
            "units_below_target": len(below),
            "units_without_households": sum(1 for r in rows if r["meets_target"] is None),
            "shortfall_m2": round(sum(r["shortfall_m2"] for r in rows), 1),
        },
        "households_note": "registered households of the division (admin_divisions.households); the sum over "
                           "its settlements where none are registered",
    }
