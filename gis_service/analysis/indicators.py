"""The plan's spatial indicators (民政事业发展"十四五"规划, 专栏1 and chapter 5), computed from the current data.

Each indicator has its value, the 2025 target, whether it is met and the counts behind it. A facility lies in the
township its ``division_code`` names (or whose village it names); without a code, in the township polygon that
holds it. Only ``status = 'existing'`` facilities count.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gis_service.analysis import network as net
from gis_service.analysis.coverage import compute_served
from gis_service.analysis.facility_area import TARGET_M2_PER_100_HOUSEHOLDS, area_table, read_inputs
from gis_service.analysis.graph import nearest_facility_costs
from gis_service.analysis.travel import AnalysisSettings, describe_population, make_travel, travel_for
from gis_service.layers import FACILITY_LAYERS
from gis_service.layers.facilities import INSTITUTION, PUBLIC_WELFARE_BURIAL
from gis_service.layers.registry import DIVISIONS
from gis_service.store import features

#: The layers the indicators read, by what they are.
ELDER_CARE, CEMETERIES, CENTRES = (FACILITY_LAYERS[name] for name in ("elder_care", "cemeteries",
                                                                      "community_centres"))
#: Elder-care institutions (养老机构) whose beds the bed indicators count: the kinds the layer tags so.
INSTITUTION_KINDS = ELDER_CARE.field_named("kind").codes_tagged(INSTITUTION)
#: Public-welfare burial facilities (公益性安葬(放)设施): the kinds the layer tags so.
BURIAL_KINDS = CEMETERIES.field_named("kind").codes_tagged(PUBLIC_WELFARE_BURIAL)
#: A township without its own burial facility is served when more than half its households are this close by car.
BURIAL_REACH_MINUTES = 30.0

def share(numerator: float, denominator: float) -> float | None:
    """numerator ÷ denominator in percent, or None when the denominator is 0."""
    return round(numerator / denominator * 100.0, 2) if denominator else None


def judge(value: float | None, target: float | None, comparison: str) -> bool | None:
    """Whether ``value`` meets ``target``; None without a value or a target (the plan sets none)."""
    if value is None or target is None:
        return None
    return value >= target - 1e-9 if comparison == ">=" else value <= target + 1e-9


def indicator(id_: str, title: str, title_zh: str, value, unit: str, target: float | None, comparison: str,
              counts: dict, method: str) -> dict:
    return {"id": id_, "title": title, "title_zh": title_zh, "value": value, "unit": unit, "target": target,
            "comparison": comparison, "met": judge(value, target, comparison), "counts": counts, "method": method}


def indicators(conn: sa.Connection, *, county: str | None = None, measure_srid: int = 4545,
               settings: AnalysisSettings | None = None, use_cache: bool = True) -> dict:
    """Every spatial indicator of the plan listed in DOMAIN.md, in the plan's order, for ``county`` (6-digit code)
    or for every county in the database together."""
    settings = settings or AnalysisSettings()
    county = net.check_county(county, conn)
    network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
    key = ("indicators", county) + network.key("roads", "settlements", "admin_divisions", *FACILITY_LAYERS)

    def compute() -> dict:
        started = time.perf_counter()
        items = [
            _floor_area(conn, county),
            *_centre_shares(conn, county),
            _burial(conn, network, settings, county),
            *_elder_care(conn, county),
            _fifteen_minutes(conn, network, settings, county),
            _village_happiness_homes(conn, network, settings, county),
            _township_homes(conn, network, settings, county),
        ]
        return {"indicators": items, "county": county,
                "computed_ms": round((time.perf_counter() - started) * 1000, 1),
                "data_versions": dict(network.versions)}

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(key, compute)


def _townships(conn: sa.Connection, county: str | None) -> pd.DataFrame:
    return features.read_frame_of_records(conn, DIVISIONS, ["code", "name"], equals={"level": "township"},
                                          starting={"code": county}, order_by=["code"])


def _in_townships_of(frame: pd.DataFrame, county: str | None) -> pd.DataFrame:
    """The rows of ``frame`` (with ``township_code``) in ``county``; every row when None."""
    if county is None or not len(frame):
        return frame
    return frame[frame["township_code"].fillna("").str.startswith(county)].reset_index(drop=True)


def _floor_area(conn: sa.Connection, county: str | None) -> dict:
    divisions, centres, households = read_inputs(conn, county)
    county = area_table(divisions, centres, households, level="county")
    villages = area_table(divisions, centres, households, level="village")
    row = county[0] if county else {"floor_area_m2": 0.0, "households": 0, "m2_per_100_households": None}
    return indicator(
        "community_floor_area_per_100_households", "Community service floor area per 100 households",
        "每百户居民拥有的城乡社区综合服务设施面积", row["m2_per_100_households"], "m2", TARGET_M2_PER_100_HOUSEHOLDS,
        ">=",
        {"floor_area_m2": row["floor_area_m2"], "households": row["households"],
         "villages": len(villages), "villages_meeting_target": sum(1 for r in villages if r["meets_target"])},
        "county: Σ floor area of existing community service centres ÷ households × 100 (see /analysis/facility-area)")


def _centre_shares(conn: sa.Connection, county: str | None) -> list[dict]:
    centres = _in_townships_of(features.counted_with_township(conn, CENTRES), county)
    townships = _townships(conn, county)
    with_volunteers = int(centres["volunteer_point"].sum()) if len(centres) else 0
    protected = set(centres.loc[centres["minor_protection_station"].astype(bool), "township_code"]) if len(
        centres) else set()
    covered = int(townships["code"].isin(protected).sum())
    return [
        indicator("volunteer_points_in_centres", "Community centres with a volunteer service point",
                  "志愿服务站点在社区综合服务设施中的覆盖率", share(with_volunteers, len(centres)), "%", 80.0, ">=",
                  {"centres": len(centres), "centres_with_volunteer_point": with_volunteers},
                  "share of existing community service centres with a volunteer service point"),
        indicator("townships_with_minor_protection_station", "Townships with a minor-protection work station",
                  "乡镇(街道)未成年人保护工作站覆盖率", share(covered, len(townships)), "%", 45.0, ">=",
                  {"townships": len(townships), "townships_with_station": covered},
                  "share of township-level units with an existing centre holding a minor-protection work station"),
    ]


def _burial(conn: sa.Connection, network: net.Network, settings: AnalysisSettings, county: str | None) -> dict:
    cemeteries = _in_townships_of(features.counted_with_township(conn, CEMETERIES), county)
    townships = _townships(conn, county)
    public = cemeteries[cemeteries["kind"].isin(BURIAL_KINDS) & cemeteries["public_welfare"].astype(bool)] if len(
        cemeteries) else cemeteries
    own = set(public["township_code"]) if len(public) else set()
    travel = make_travel(settings, mode="drive", minutes=BURIAL_REACH_MINUTES)
    joined = net.facilities(conn, network, CEMETERIES, None, county)
    keep = joined.frame["id"].isin(public["id"]).to_numpy() if len(public) else np.zeros(len(joined.frame), bool)
    sites = joined.subset(keep)
    people = net.settlements(conn, network, county)
    graph, site_points, people_points = network.graph, sites.points, people.points
    if county is not None:
        region = net.county_region(network, county, [people, sites], travel)
        graph, site_points, people_points = region.graph, region.local(sites.points), region.local(people.points)
    s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
    costs = nearest_facility_costs(graph, s_per_m, site_points, people_points, limit_s=travel.limit_s)
    reached = costs.cost_s <= travel.limit_s
    frame = people.frame.assign(reached=np.where(reached, people.frame["households"], 0))
    by_township = frame.groupby("township_code")[["households", "reached"]].sum() if len(frame) else None
    within_reach = set()
    if by_township is not None:
        majority = by_township["reached"] * 2 > by_township["households"]
        within_reach = set(by_township.index[majority])
    served_own = int(townships["code"].isin(own).sum())
    served_reach = int((townships["code"].isin(within_reach) & ~townships["code"].isin(own)).sum())
    unserved = townships[~townships["code"].isin(own | within_reach)]
    return indicator(
        "burial_facility_coverage", "County coverage of public-welfare burial facilities",
        "城乡公益性安葬(放)设施县级覆盖率", share(served_own + served_reach, len(townships)), "%", 100.0, ">=",
        {"townships": len(townships), "with_own_facility": served_own, "served_within_reach": served_reach,
         "unserved_townships": unserved["code"].tolist(), "public_welfare_facilities": len(public),
         "reach": travel.describe()},
        f"share of township-level units with their own existing public-welfare cemetery or burial point, or with "
        f"more than half their households within {BURIAL_REACH_MINUTES:g} minutes' drive of one (along roads)")


def _elder_care(conn: sa.Connection, county: str | None) -> list[dict]:
    homes = _in_townships_of(features.counted_with_township(conn, ELDER_CARE), county)
    townships = _townships(conn, county)
    institutions = homes[homes["kind"].isin(INSTITUTION_KINDS)] if len(homes) else homes
    beds = int(institutions["beds"].sum()) if len(institutions) else 0
    nursing = int(institutions["nursing_beds"].sum()) if len(institutions) else 0
    government = int(institutions.loc[institutions["operator"] == "government", "beds"].sum()) if len(
        institutions) else 0
    comprehensive = set(homes.loc[homes["comprehensive"].astype(bool), "township_code"]) if len(homes) else set()
    with_comprehensive = int(townships["code"].isin(comprehensive).sum())
    kinds = ", ".join(INSTITUTION_KINDS)
    return [
        indicator("nursing_beds_share", "Nursing-type beds in elder-care institutions", "养老机构护理型床位占比",
                  share(nursing, beds), "%", 60.0, ">=",
                  {"institutions": len(institutions), "beds": beds, "nursing_beds": nursing},
                  f"Σ nursing-type beds ÷ Σ beds of existing institutions ({kinds}); the plan's table prints ≤60, "
                  f"its text says 不低于 (at least), which is used"),
        indicator("government_operated_beds_share", "Government-operated beds", "政府运营床位占比",
                  share(government, beds), "%", 40.0, "<=",
                  {"institutions": len(institutions), "beds": beds, "government_operated_beds": government},
                  f"Σ beds of government-run existing institutions ({kinds}) ÷ Σ their beds"),
        indicator("townships_with_comprehensive_elder_care",
                  "Townships with a comprehensive elder-care institution", "乡镇(街道)具备综合功能的养老服务机构覆盖率",
                  share(with_comprehensive, len(townships)), "%", 90.0, ">=",
                  {"townships": len(townships), "townships_with_comprehensive": with_comprehensive},
                  "share of township-level units with an existing elder-care facility with comprehensive functions"),
    ]


def _served_by(conn: sa.Connection, network: net.Network, settings: AnalysisSettings, county: str | None,
               kind: str) -> tuple[pd.DataFrame, int, int, dict]:
    """The settlements of the population ``kind`` is for (with ``served``: within the kind's default reach of one of
    its existing facilities), their households, those served, and the counts every such indicator gives: the share
    served, the population as answers name it and the reach."""
    travel = travel_for(settings, ELDER_CARE, kind, mode=None, minutes=None)
    served = compute_served(conn, network, travel, layer=ELDER_CARE.id, kind=kind, method="network", county=county)
    frame = served.settlements.frame.assign(served=served.served)
    households = int(frame["households"].sum()) if len(frame) else 0
    served_households = int(frame.loc[frame["served"], "households"].sum()) if len(frame) else 0
    return frame, households, served_households, {
        "households_percent": share(served_households, households),
        "served_population": describe_population(served.population), "travel": travel.describe()}


def _fifteen_minutes(conn: sa.Connection, network: net.Network, settings: AnalysisSettings,
                     county: str | None) -> dict:
    frame, households, served_households, reach = _served_by(conn, network, settings, county, "community_station")
    communities = frame.groupby("village_code")["served"].all() if len(frame) else pd.Series(dtype=bool)
    return indicator(
        "fifteen_minute_elder_care_circle", "15-minute community elder-care circle",
        "15分钟社区养老服务圈", share(served_households, households), "%", 100.0, ">=",
        {"community_households": households, "community_households_served": served_households,
         "communities_with_settlements": int(len(communities)), "communities_fully_covered": int(communities.sum()),
         **reach},
        "share of the households of urban communities (村(社区) with urban_rural = urban) within 15 minutes' walk "
        "of an existing community elder-care station (社区养老服务站) along roads, the plan's 15-minute circle "
        "(城市社区生活圈); every community covered means 100 %")


def _village_happiness_homes(conn: sa.Connection, network: net.Network, settings: AnalysisSettings,
                             county: str | None) -> dict:
    frame, households, served_households, reach = _served_by(conn, network, settings, county,
                                                             "rural_happiness_home")
    villages = (frame.assign(reached=np.where(frame["served"], frame["households"], 0))
                .groupby("village_code")[["households", "reached"]].sum()) if len(frame) else None
    within = villages.index[villages["reached"] * 2 > villages["households"]] if villages is not None else []
    return indicator(
        "rural_villages_with_happiness_home", "Rural villages with a rural happiness home within reach",
        "农村幸福院村级覆盖率", share(len(within), len(villages) if villages is not None else 0), "%", None, ">=",
        {"rural_villages": int(len(villages)) if villages is not None else 0, "villages_within_reach": len(within),
         "villages_not_within_reach": sorted(set(villages.index) - set(within)) if villages is not None else [],
         "rural_households": households, "rural_households_served": served_households, **reach},
        "share of rural villages (村(社区) with urban_rural = rural, with settlements) more than half of whose "
        "households are within the rural happiness home's default reach (the 15-minute walk) of an existing one "
        "along roads; households_percent: the share of rural-village households within it. The plan sets "
        "happiness homes at village level (社区（村）) with no figure of its own, so no target is judged")


def _township_homes(conn: sa.Connection, network: net.Network, settings: AnalysisSettings,
                    county: str | None) -> dict:
    homes = _in_townships_of(features.counted_with_township(conn, ELDER_CARE), county)
    homes = homes[homes["kind"] == "township_home"] if len(homes) else homes
    townships = _townships(conn, county)
    has_home = townships["code"].isin(set(homes["township_code"]) if len(homes) else set())
    _, households, served_households, reach = _served_by(conn, network, settings, county, "township_home")
    lacking = townships[~has_home]
    return indicator(
        "township_homes_per_township", "Townships with a township home (敬老院)", "乡镇敬老院覆盖率",
        share(int(has_home.sum()), len(townships)), "%", None, ">=",
        {"townships": len(townships), "townships_with_home": int(has_home.sum()), "township_homes": len(homes),
         "townships_without_home": [{"code": c, "name": n} for c, n in zip(lacking["code"], lacking["name"])],
         "households": households, "households_served_in_own_township": served_households, **reach},
        "share of township-level units with at least one existing township home; households_percent: the share "
        "of households within the township home's default reach (30 minutes' drive) of a township home of their "
        "own township. The plan asks for every 敬老院 to be upgraded (推进乡镇敬老院规范化建设), with no figure, so no "
        "target is judged")
