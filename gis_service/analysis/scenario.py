"""What if (情景分析): coverage before and after hypothetical facilities, writing nothing.

A planner posts points where facilities might be built (with their kinds); the answer gives coverage with the
existing facilities only and with the hypothetical ones added, per county, township or village, the settlements the
additions newly serve, and what each addition alone would newly serve. Nothing is written: the points are joined to
the road network in memory, exactly as existing facilities are (nearest point on the nearest road, the connector
counted), so "after" is what :mod:`.coverage` would answer once they were built.

The body (JSON)::

    {"layer": "elder_care", "kind": "community_station", "minutes": 15, "mode": "walk", "group_by": "township",
     "facilities": [{"lon": 108.99, "lat": 28.45, "kind": "community_station", "name": "拟建站"}]}

``kind`` (optional) is the kind measured: with it, only existing facilities of that kind count and every
hypothetical facility must be of it; without it every kind of the layer counts. A facility's ``kind`` defaults to
the body's. Points are lon, lat in EPSG:4326 (CGCS2000 is treated as the same) and must lie in the county.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gis_service.analysis import network as net
from gis_service.analysis.coverage import Served, by_township, check_group_by, compute_served, summarise
from gis_service.analysis.graph import EdgePoints, nearest_facility_costs, pair_costs
from gis_service.analysis.limits import check_time
from gis_service.analysis.travel import COST_TOLERANCE_S, AnalysisSettings, check_facilities, travel_for
from gis_service.errors import InvalidInputError
from gis_service.io.layers_io import county_area
from gis_service.io.validate import text_problem

MAX_FACILITIES = 100
_KEYS = {"layer", "kind", "minutes", "mode", "group_by", "facilities"}
_FACILITY_KEYS = {"lon", "lat", "kind", "name"}


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{where} must be a number; got {value!r:.40}")
    return float(value)


def _text(value: object, where: str, *, max_length: int = 100) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise InvalidInputError(f"{where} must be text of 1 to {max_length} characters; got {str(value)[:40]!r}")
    problem = text_problem(value)
    if problem:
        raise InvalidInputError(f"{where} {problem}")
    return value


def parse_body(body: object) -> dict:
    """The scenario's parameters from a decoded JSON body; InvalidInputError naming the field otherwise."""
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object with facilities: [{lon, lat, kind}, ...]")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise InvalidInputError(f"unknown field {unknown[0]!r}; the body takes {', '.join(sorted(_KEYS))}")
    layer = _text(body.get("layer", "elder_care"), "layer")
    kind = body.get("kind")
    kind = None if kind in (None, "") else _text(kind, "kind")
    spec, kind = check_facilities(layer, kind)
    facilities = body.get("facilities")
    if not isinstance(facilities, list) or not facilities:
        raise InvalidInputError("facilities must be a non-empty list of {lon, lat, kind} objects")
    if len(facilities) > MAX_FACILITIES:
        raise InvalidInputError(f"facilities holds {len(facilities)} points; at most {MAX_FACILITIES} at once")
    parsed = []
    for i, item in enumerate(facilities):
        where = f"facilities[{i}]"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{where} must be an object with lon, lat and kind")
        extra = sorted(set(item) - _FACILITY_KEYS)
        if extra:
            raise InvalidInputError(f"{where} has unknown field {extra[0]!r}; a facility takes lon, lat, kind, name")
        lon, lat = _number(item.get("lon"), f"{where}.lon"), _number(item.get("lat"), f"{where}.lat")
        own = item.get("kind", kind)
        if spec.kinds:
            if own in (None, ""):
                raise InvalidInputError(f"{where}.kind is missing: one of {', '.join(spec.kinds)}")
            own = _text(own, f"{where}.kind")
            if own not in spec.kinds:
                raise InvalidInputError(f"{where}.kind must be one of {', '.join(spec.kinds)} for layer {layer}; "
                                        f"got {own!r:.40}")
            if kind is not None and own != kind:
                raise InvalidInputError(f"{where}.kind is {own} but the scenario measures {kind}; leave the "
                                        "body's kind out to measure every kind")
        elif own not in (None, ""):
            raise InvalidInputError(f"layer {layer} has no kinds; leave {where}.kind out")
        name = _text(item["name"], f"{where}.name") if item.get("name") not in (None, "") else f"拟建设施{i + 1}"
        parsed.append({"lon": lon, "lat": lat, "kind": own or None, "name": name})
    minutes = None if body.get("minutes") is None else _number(body["minutes"], "minutes")
    mode = None if body.get("mode") is None else _text(body["mode"], "mode")
    group_by = check_group_by(_text(body.get("group_by", "township"), "group_by"))
    return {"layer": layer, "kind": kind, "minutes": minutes, "mode": mode, "group_by": group_by,
            "facilities": parsed}


def _project(conn: sa.Connection, facilities: list[dict], *, county_code: str, measure_srid: int) -> np.ndarray:
    """The points in the measure CRS (metres); InvalidInputError for one outside the county."""
    area = county_area(conn, county_code=county_code, measure_srid=measure_srid)
    lon = np.array([f["lon"] for f in facilities])
    lat = np.array([f["lat"] for f in facilities])
    if area is not None:
        inside = shapely.covers(area, shapely.points(lon, lat))
        for i in np.flatnonzero(~inside):
            swapped = bool(area.covers(shapely.Point(lat[i], lon[i])))
            hint = "; it would lie inside with longitude and latitude swapped: write lon, lat" if swapped else (
                f"; the county spans lon {area.bounds[0]:.3f}–{area.bounds[2]:.3f}, "
                f"lat {area.bounds[1]:.3f}–{area.bounds[3]:.3f} (EPSG:4326)")
            raise InvalidInputError(f"facilities[{i}] at {lon[i]:.6f}, {lat[i]:.6f} lies outside the county{hint}")
    rows = conn.execute(sa.text(
        "SELECT ST_X(p), ST_Y(p) FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[])) WITH ORDINALITY "
        "AS t(lon, lat, i) CROSS JOIN LATERAL (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), "
        ":srid) AS p) q ORDER BY i"), {"lon": lon.tolist(), "lat": lat.tolist(), "srid": measure_srid}).all()
    return np.array(rows, dtype=float)


def scenario(conn: sa.Connection, body: object, *, county_code: str, measure_srid: int = 4545,
             settings: AnalysisSettings | None = None) -> dict:
    """Coverage before and after the hypothetical facilities of ``body`` (see the module docstring)."""
    started = time.perf_counter()
    settings = settings or AnalysisSettings()
    asked = parse_body(body)
    spec, _ = check_facilities(asked["layer"], asked["kind"])
    travel = travel_for(settings, spec, asked["kind"], mode=asked["mode"], minutes=asked["minutes"])
    xy = _project(conn, asked["facilities"], county_code=county_code, measure_srid=measure_srid)
    network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
    before = compute_served(conn, network, travel, layer=asked["layer"], kind=asked["kind"], method="network")
    check_time()
    graph = network.graph
    added = graph.join(xy)
    places = net.places_at(conn, xy, measure_srid)
    s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
    existing = before.facilities
    hypothetical = pd.DataFrame({"id": -np.arange(1, len(xy) + 1), "name": [f["name"] for f in asked["facilities"]],
                                 "kind": [f["kind"] for f in asked["facilities"]],
                                 "township_code": [p["township_code"] for p in places]})
    sites_after = net.JoinedPoints(pd.concat([existing.frame, hypothetical], ignore_index=True),
                                   EdgePoints.concat(existing.points, added))

    def search(sites: net.JoinedPoints, people: net.JoinedPoints) -> tuple[np.ndarray, np.ndarray]:
        found = nearest_facility_costs(graph, s_per_m, sites.points, people.points)
        return found.cost_s, found.facility

    cost_s, nearest = by_township(before.settlements, sites_after, before.population, search)
    served_after = cost_s <= travel.limit_s + COST_TOLERANCE_S
    after = Served(before.settlements, sites_after,
                   cost_s * travel.speed_kmh / 3.6 if travel.uniform_speed else np.full(len(cost_s), np.nan),
                   cost_s / 60.0, nearest, served_after, before.population)
    check_time()
    frame = before.settlements.frame
    households = frame["households"].to_numpy(dtype=float)
    newly = served_after & ~np.asarray(before.served)
    unserved = np.flatnonzero(~np.asarray(before.served))
    row, col, _ = pair_costs(graph, s_per_m, added, before.settlements.points.take(unserved), travel.limit_s)
    if before.population.own_township:  # an addition serves its own township only
        same = hypothetical["township_code"].to_numpy(dtype=object)[row] == frame["township_code"].to_numpy(
            dtype=object)[unserved][col]
        row, col = row[same], col[same]
    alone = np.bincount(row, weights=households[unserved][col], minlength=len(xy))
    alone_settlements = np.bincount(row, minlength=len(xy))
    summary_before = summarise(conn, before, travel, group_by=asked["group_by"])
    summary_after = summarise(conn, after, travel, group_by=asked["group_by"])
    additions = [{"index": i, "name": f["name"], "kind": f["kind"], "lon": f["lon"], "lat": f["lat"],
                  **{k: places[i][k] for k in ("village_code", "village_name", "township_code")},
                  "road_connector_m": round(float(added.connector_m[i]), 1),
                  "alone_newly_served_households": int(alone[i]), "alone_newly_served_settlements": int(
                      alone_settlements[i])} for i, f in enumerate(asked["facilities"])]
    index = np.flatnonzero(newly)
    index = index[np.lexsort((frame["id"].to_numpy()[index], -households[index]))]
    n_existing = len(existing.frame)
    newly_served = [{"id": int(frame["id"].iloc[i]), "name": frame["name"].iloc[i],
                     "households": int(households[i]), "village_code": frame["village_code"].iloc[i],
                     "township_code": frame["township_code"].iloc[i],
                     "travel_minutes": round(float(cost_s[i]) / 60, 2),
                     "by_facility_index": int(nearest[i] - n_existing) if nearest[i] >= n_existing
                     else None} for i in index]
    units = [{"code": b["code"], "name": b["name"], "level": b["level"], "before": _figures(b), "after": _figures(a),
              "gain_households": a["served_households"] - b["served_households"]}
             for b, a in zip(summary_before["units"], summary_after["units"])]
    gain = summary_after["totals"]["served_households"] - summary_before["totals"]["served_households"]
    return {
        **travel.describe(), "layer": asked["layer"], "kind": asked["kind"], "group_by": asked["group_by"],
        "served_population": summary_before["served_population"],
        "written": False,
        "facilities_existing": n_existing, "facilities_added": additions,
        "before": summary_before["totals"], "after": summary_after["totals"],
        "gain": {"served_households": gain, "served_settlements": int(newly.sum()),
                 "coverage_points": round((summary_after["totals"]["coverage_percent"] or 0)
                                          - (summary_before["totals"]["coverage_percent"] or 0), 2)},
        "units": units, "newly_served": newly_served,
        "note": "alone_newly_served_households: what that facility would newly serve if it were the only one added; "
                "the additions together newly serve gain.served_households (their reach may overlap)",
        "computed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _figures(row: dict) -> dict:
    return {k: row[k] for k in ("households", "served_households", "coverage_percent")}
