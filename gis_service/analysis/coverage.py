"""Coverage (服务覆盖): which settlements, and how many households, are within reach of a facility.

``method=network`` measures along the roads (the nearest point on the nearest road, connectors included);
``method=euclidean`` draws the circle, for comparison. Every answer states the method, mode, speed, minutes and
the distance limit in metres it used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gis_service.analysis import network as net
from gis_service.analysis.graph import Costs, EdgePoints, RoadGraph, euclidean_nearest, nearest_facility_costs
from gis_service.analysis.limits import check_time
from gis_service.analysis.travel import (
    COST_TOLERANCE_S,
    AnalysisSettings,
    Travel,
    check_facilities,
    check_method,
    check_population,
    describe_population,
    travel_for,
)
from gis_service.errors import InvalidInputError
from gis_service.layers.base import EVERYONE, Population
from gis_service.layers.registry import DIVISIONS
from gis_service.store import features

#: The division levels results are grouped by.
GROUP_BY = DIVISIONS.field_named("level").codes


def check_group_by(group_by: str) -> str:
    if group_by not in GROUP_BY:
        raise InvalidInputError(f"group_by must be one of {', '.join(GROUP_BY)}; got {group_by!r}")
    return group_by


@dataclass(frozen=True)
class Served:
    """Per settlement (in the order of ``settlements.frame``): cost or distance to the nearest facility, served."""

    settlements: net.JoinedPoints
    facilities: net.JoinedPoints
    distance_m: np.ndarray  # network distance (walk/cycle) or straight line; nan where not meaningful
    minutes: np.ndarray  # travel minutes along the network; nan for euclidean
    nearest: np.ndarray  # position in facilities.frame, -1 when none reachable
    served: np.ndarray  # bool
    #: Whose households ``settlements`` are (the population the facilities are for).
    population: Population = EVERYONE


#: The shortest-path search: (graph, seconds per metre per edge, facilities, points) -> each point's cost from its
#: nearest facility. The service uses scipy's; tests and the benchmark pass NetworkX's (tests/harness) to compare.
PathCosts = Callable[[RoadGraph, np.ndarray, EdgePoints, EdgePoints], Costs]


def compute_served(conn: sa.Connection, network: net.Network, travel: Travel, *, layer: str, kind: str | None,
                   method: str, county: str | None = None, path_costs: PathCosts = nearest_facility_costs,
                   population: str | None = None) -> Served:
    """Who of ``population`` (default: whom ``kind`` is for) is served, measured ``method``-wise; with ``county``,
    that county's settlements by its facilities, along the roads of the region around them
    (:func:`~gis_service.analysis.network.county_region`). Along the network, the shortest paths come from
    ``path_costs``."""
    spec, kind = check_facilities(layer, kind)
    who = check_population(spec, kind, population)
    people = net.of_population(net.settlements(conn, network, county), who)
    sites = net.facilities(conn, network, spec, kind, county)
    if who.own_township:
        sites = net.with_township(conn, sites, spec)
    if method == "euclidean":
        distance, nearest = by_township(people, sites, who, lambda s, p: euclidean_nearest(s.xy, p.xy))
        served = distance <= travel.limit_m + 1e-3
        return Served(people, sites, distance, np.full(len(distance), np.nan), nearest, served, who)
    check_time()
    graph, site_points, people_points = network.graph, sites.points, people.points
    if county is not None:
        region = net.county_region(network, county, [people, sites], travel)
        graph, site_points, people_points = region.graph, region.local(sites.points), region.local(people.points)
    s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
    local = net.JoinedPoints(sites.frame, site_points), net.JoinedPoints(people.frame, people_points)

    def search(s: net.JoinedPoints, p: net.JoinedPoints) -> tuple[np.ndarray, np.ndarray]:
        found = path_costs(graph, s_per_m, s.points, p.points)
        return found.cost_s, found.facility

    cost_s, nearest = by_township(local[1], local[0], who, search)
    costs = Costs(cost_s, nearest)
    served = costs.cost_s <= travel.limit_s + COST_TOLERANCE_S
    distance = costs.cost_s * travel.speed_kmh / 3.6 if travel.uniform_speed else np.full(len(costs.cost_s), np.nan)
    return Served(people, sites, distance, costs.cost_s / 60.0, costs.facility, served, who)


def by_township(people: net.JoinedPoints, sites: net.JoinedPoints, who: Population,
                 nearest: Callable[[net.JoinedPoints, net.JoinedPoints], tuple[np.ndarray, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per settlement of ``people``: the cost and position (in ``sites``) of its nearest site as ``nearest`` finds
    them; for a population served in its own township, the nearest site of the settlement's own township (a
    search per township), inf and -1 where the township has none."""
    if not who.own_township:
        return nearest(sites, people)
    cost = np.full(len(people.frame), np.inf)
    found = np.full(len(people.frame), -1, dtype=np.int64)
    homes = sites.frame["township_code"].to_numpy(dtype=object) if len(sites.frame) else np.zeros(0, dtype=object)
    townships = people.frame["township_code"].to_numpy(dtype=object) if len(people.frame) else homes
    for township in sorted(set(homes) & set(townships) - {None}):
        own_sites, own_people = np.flatnonzero(homes == township), np.flatnonzero(townships == township)
        c, f = nearest(sites.subset(homes == township), people.subset(townships == township))
        cost[own_people] = c
        found[own_people] = np.where(np.asarray(f) >= 0, own_sites[np.maximum(np.asarray(f), 0)], -1)
        check_time()
    return cost, found


def coverage(conn: sa.Connection, *, layer: str = "elder_care", kind: str | None = None,
             minutes: float | None = None, mode: str | None = None, group_by: str = "township",
             method: str = "network", county: str | None = None,
             measure_srid: int = 4545, settings: AnalysisSettings | None = None, use_cache: bool = True,
             population: str | None = None) -> dict:
    """Households and settlements served and not served per unit of ``group_by``, with the coverage rate
    (served households ÷ households), and every unserved settlement with its distance to the nearest facility.
    Only the households of ``population`` count (default: those ``kind`` is for; see ``served_population``);
    ``mode`` and ``minutes`` not given: the kind's default reach (``travel_chosen`` says so).
    ``county`` (6-digit code): that county's settlements and facilities only; else every county in the database.

    Distances in metres in EPSG:``measure_srid``; ``limit_m`` is the distance ``minutes`` allow at ``speed_kmh``.
    """
    settings = settings or AnalysisSettings()
    spec, kind = check_facilities(layer, kind)
    who = check_population(spec, kind, population)
    check_method(method)
    check_group_by(group_by)
    county = net.check_county(county, conn)
    travel = travel_for(settings, spec, kind, mode=mode, minutes=minutes)
    network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
    params = (layer, kind, who.code, travel.mode, travel.minutes, group_by, method, county, travel.speed_kmh,
              tuple(sorted(travel.speeds_kmh_by_road_class.items())))
    key = ("coverage", params) + network.key("roads", "settlements", "admin_divisions", layer)

    def compute() -> dict:
        started = time.perf_counter()
        served = compute_served(conn, network, travel, layer=layer, kind=kind, method=method, county=county,
                                population=who.code)
        answer = summarise(conn, served, travel, group_by=group_by, county=county)
        answer.update(layer=layer, kind=kind or None, method=method, county=county,
                      data_versions={t: network.versions.get(t) for t in
                                     ("roads", "settlements", "admin_divisions", layer)},
                      network=network.state, computed_ms=round((time.perf_counter() - started) * 1000, 1))
        return answer

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(key, compute)


def _units(conn: sa.Connection, group_by: str, county: str | None) -> pd.DataFrame:
    return features.read_frame_of_records(conn, DIVISIONS, ["code", "name", "level", "parent_code"],
                                          equals={"level": group_by}, starting={"code": county}, order_by=["code"])


def summarise(conn: sa.Connection, served: Served, travel: Travel, *, group_by: str,
              county: str | None = None) -> dict:
    """The answer's body: totals, per-unit rows (of ``county`` only, when given), the unserved settlements (most
    households first)."""
    frame = served.settlements.frame
    households = frame["households"].to_numpy(dtype=np.int64) if len(frame) else np.zeros(0, dtype=np.int64)
    is_served = np.asarray(served.served, dtype=bool)
    units = _units(conn, group_by, county)
    column = {"county": "village_code", "township": "township_code", "village": "village_code"}[group_by]
    unit_code = frame[column].to_numpy(dtype=object) if len(frame) else np.zeros(0, dtype=object)
    if group_by == "county":  # a statistical code starts with its county's six digits
        unit_code = np.asarray([c[:6] + "000000" if isinstance(c, str) else c for c in unit_code], dtype=object)
    codes, where = np.unique(np.asarray([c if isinstance(c, str) else "" for c in unit_code], dtype=object),
                             return_inverse=True)
    sums = {
        "households": np.bincount(where, weights=households, minlength=len(codes)),
        "served_households": np.bincount(where, weights=households * is_served, minlength=len(codes)),
        "settlements": np.bincount(where, minlength=len(codes)),
        "served_settlements": np.bincount(where, weights=is_served, minlength=len(codes)),
    }
    position = {code: i for i, code in enumerate(codes)}
    rows = []
    for code, name, level in zip(units["code"], units["name"], units["level"]):
        i = position.get(code)
        counts = {k: v[i] for k, v in sums.items()} if i is not None else None
        rows.append(_counts({"code": code, "name": name, "level": level}, counts))
    totals = _counts({}, {k: v.sum() for k, v in sums.items()})
    index = np.flatnonzero(~is_served)
    ids = frame["id"].to_numpy(dtype=np.int64) if len(frame) else np.zeros(0, dtype=np.int64)
    index = index[np.lexsort((ids[index], -households[index]))]
    facility_ids = served.facilities.frame["id"].astype(int).tolist() if len(served.facilities.frame) else []
    nearest = served.nearest[index]
    columns = {name: frame[name].to_numpy()[index].tolist() if len(frame) else []
               for name in ("name", "village_code", "township_code", "lon", "lat")}
    distance = np.round(served.distance_m[index], 1)
    minutes = np.round(served.minutes[index], 2)
    unserved = [
        {"id": i, "name": name, "households": h, "village_code": village, "township_code": township,
         "distance_m": d if d == d and d != np.inf else None, "travel_minutes": m if m == m and m != np.inf else None,
         "nearest_facility_id": facility_ids[f] if f >= 0 else None, "lon": lon, "lat": lat}
        for i, name, h, village, township, d, m, f, lon, lat in zip(
            ids[index].tolist(), columns["name"], households[index].tolist(), columns["village_code"],
            columns["township_code"], distance.tolist(), minutes.tolist(), nearest.tolist(),
            np.round(np.asarray(columns["lon"], dtype=float), 7).tolist(),
            np.round(np.asarray(columns["lat"], dtype=float), 7).tolist())
    ]
    return {
        **travel.describe(),
        "served_population": describe_population(served.population),
        "group_by": group_by,
        "facilities": len(served.facilities.frame),
        "totals": totals,
        "units": rows,
        "unserved": unserved,
        "distance_note": ("distance_m of an unserved settlement: along the network (connectors included) for "
                          "method=network with a uniform speed, straight-line for method=euclidean; "
                          "null when no facility can be reached"),
    }


def _counts(head: dict, counts) -> dict:
    keys = ("households", "served_households", "settlements", "served_settlements")
    values = {k: int(counts[k]) if counts is not None else 0 for k in keys}
    values["unserved_households"] = values["households"] - values["served_households"]
    values["unserved_settlements"] = values["settlements"] - values["served_settlements"]
    rate = values["served_households"] / values["households"] if values["households"] else None
    values["coverage_rate"] = round(rate, 6) if rate is not None else None
    values["coverage_percent"] = round(rate * 100, 2) if rate is not None else None
    return {**head, **values}


def _finite(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None
