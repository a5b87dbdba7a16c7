"""Service areas (服务范围): for each facility, the stretch of road reachable within the time limit, as a polygon.

The polygon is the reached road network grown by ``buffer_m`` on each side: whole edges, plus the reached part of
partially reached edges (pgRouting's driving distance leaves those out; they are added here), plus the
facility's connector and the stretch of its own edge. Ends are flat, so along a road the polygon stops where the
reach stops. It is not a convex hull: a river without a bridge stays out.

How it is grown: each facility's reached lines are merged where they continue one another, each merged line is
grown on its own, and the strips are unioned once per facility. Growing a facility's whole reached network in one
buffer call, as before, cost GEOS time that rose steeply with ``buffer_m`` (every offset line is noded against
every other it crosses, and at 500 m around a dense network that is most of them): every elder-care facility at 10
minutes by car with 500 m took 455-504 s and left the server at 3.3 GB. Strip by strip, the same takes about 11 s
of CPU and 130 MB, and the one-call buffer's quirk of losing parts of strips (as holes where flat ends of many lines
meet) is gone. The cost is now about proportional to the pieces drawn, whatever ``buffer_m``: 60-110 µs of CPU and
0.7-1.4 kB per piece on this project's machine, small buffers the dearest (their outlines are finer). So the size
guard counts pieces (:data:`MAX_REACHED_PIECES`), before any of them is drawn.
"""

from __future__ import annotations

import functools
import json
import time

import numpy as np
import shapely
import sqlalchemy as sa
from pyproj import Transformer

from gis_service.analysis import network as net
from gis_service.analysis.graph import pair_costs, reached_pieces, road_csr, single_source_node_costs, substrings
from gis_service.analysis.limits import check_time
from gis_service.analysis.travel import (
    AnalysisSettings,
    check_facilities,
    check_population,
    describe_population,
    travel_for,
)
from gis_service.errors import InvalidInputError

MIN_BUFFER_M, MAX_BUFFER_M = 1.0, 500.0
#: Road pieces one request may draw: at most about 10 s of CPU and 150 MB, half the default time budget
#: (GIS_ANALYSIS_TIMEOUT_S). 30 min walking from all 193 elder-care facilities of the demo county is 49,500
#: pieces; 10 min driving 171,800 (refused: 15 s of CPU at 50 m); 120 min driving would be 3.4 million.
MAX_REACHED_PIECES = 100_000
#: Facilities whose shortest paths are searched in one call: about 0.5 s of CPU at demo scale 10 when every search
#: covers the whole network (the time budget is checked between calls).
SOURCES_AT_ONCE = 16
#: Lines grown and unioned in one call: at most about 0.3 s of CPU between two checks of the time budget.
UNION_CHUNK = 2000


@functools.lru_cache(maxsize=4)
def _to_wgs84(srid: int) -> Transformer:
    return Transformer.from_crs(srid, 4326, always_xy=True)


def to_lonlat(geometries: np.ndarray, srid: int) -> list[dict | None]:
    """GeoJSON geometries in EPSG:4326 (lon, lat), 7 decimals, kept valid."""
    transformer = _to_wgs84(srid)

    def transform(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    simpler = shapely.simplify(geometries, 0.5)  # half a metre: far below what a map shows
    lonlat = shapely.set_precision(shapely.transform(simpler, transform), 1e-7)
    return [None if g is None or g.is_empty else json.loads(shapely.to_geojson(g)) for g in lonlat]


def check_reach(pieces: int, facilities_done: int, facilities: int) -> None:
    """Refuse, before anything is drawn, service areas that reach more than MAX_REACHED_PIECES road pieces."""
    if pieces > MAX_REACHED_PIECES:
        raise InvalidInputError(
            f"these service areas are too large to draw: the first {facilities_done} of {facilities} facilities "
            f"already reach {pieces:,} road pieces, and one request draws at most {MAX_REACHED_PIECES:,}. Ask for "
            "fewer minutes, a slower mode, or one kind of facility; /analysis/coverage answers county-wide "
            "questions without drawing")


def grow(lines: np.ndarray, buffer_m: float) -> np.ndarray:
    """Per element of ``lines`` (a (Multi)LineString or None, metres): its lines grown by ``buffer_m`` on each
    side with flat ends, as one polygon, or None. Each line is grown on its own and the strips are unioned (see the
    module's docstring for why)."""
    parts, owner = shapely.get_parts(lines, return_index=True)
    bounds = np.searchsorted(owner, np.arange(len(lines) + 1))
    grown = np.full(len(lines), None, dtype=object)
    for i in np.flatnonzero(bounds[1:] > bounds[:-1]):
        grown[i] = _grown_union(parts[bounds[i]:bounds[i + 1]], buffer_m)
    return grown


def _grown_union(parts: np.ndarray, buffer_m: float) -> shapely.Geometry:
    """The union of ``parts`` grown by ``buffer_m``, UNION_CHUNK lines at a time (west to east, so that each chunk's
    union is compact), the time budget checked after each: one facility may reach the whole network."""
    order = np.argsort(shapely.get_x(shapely.centroid(parts))) if len(parts) > UNION_CHUNK else slice(None)
    parts = parts[order]
    unions = []
    for lo in range(0, len(parts), UNION_CHUNK):
        strips = shapely.buffer(parts[lo:lo + UNION_CHUNK], buffer_m, quad_segs=2, cap_style="flat")
        unions.append(shapely.union_all(strips))
        check_time()
    return unions[0] if len(unions) == 1 else shapely.union_all(unions)


def service_areas(conn: sa.Connection, *, layer: str = "elder_care", kind: str | None = None,
                  minutes: float | None = None, mode: str | None = None, buffer_m: float = 50.0,
                  county: str | None = None, measure_srid: int = 4545,
                  settings: AnalysisSettings | None = None, use_cache: bool = True) -> dict:
    """A GeoJSON FeatureCollection (EPSG:4326): one feature per existing facility of ``layer`` (and ``kind``),
    its geometry the reached roads grown by ``buffer_m`` metres, its properties the facility, the reached road
    length in metres and the area in m² (both measured in EPSG:``measure_srid``), and the households of the
    population ``kind`` is for (``served_population``; township homes: of their own township) within its reach.
    ``county``: that county's facilities only (6-digit code). ``mode``, ``minutes`` not given: the kind's default."""
    settings = settings or AnalysisSettings()
    spec, kind = check_facilities(layer, kind)
    who = check_population(spec, kind, None)
    county = net.check_county(county, conn)
    if not (MIN_BUFFER_M <= buffer_m <= MAX_BUFFER_M):
        raise InvalidInputError(f"buffer_m must be between {MIN_BUFFER_M:g} and {MAX_BUFFER_M:g} metres; "
                                f"got {buffer_m}")
    travel = travel_for(settings, spec, kind, mode=mode, minutes=minutes)
    network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
    params = (layer, kind, travel.mode, travel.minutes, float(buffer_m), county,
              tuple(sorted(travel.speeds_kmh_by_road_class.items())))
    key = ("service_areas", params) + network.key("roads", layer, "admin_divisions", "settlements")

    def compute() -> dict:
        started = time.perf_counter()
        sites = net.facilities(conn, network, spec, kind, county)
        people = net.of_population(net.settlements(conn, network, county), who)
        graph, points, people_points = network.graph, sites.points, people.points
        if county is not None:
            region = net.county_region(network, county, [sites, people], travel)
            graph, points, people_points = region.graph, region.local(points), region.local(people_points)
        s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
        within = _within_reach(conn, spec, graph, s_per_m, travel.limit_s, sites, points, people, people_points, who)
        csr = road_csr(graph, s_per_m, points)
        ids = sites.frame["id"].to_numpy(dtype=np.int64) if len(sites.frame) else np.zeros(0, dtype=np.int64)
        xy = sites.frame[["x", "y"]].to_numpy(dtype=float) if len(sites.frame) else np.zeros((0, 2))
        owner, edge, start, end, reached = [], [], [], [], {}
        drawn = 0
        for lo in range(0, len(points), SOURCES_AT_ONCE):
            index = np.arange(lo, min(lo + SOURCES_AT_ONCE, len(points)))
            node_costs = single_source_node_costs(csr, graph.n_nodes, graph.n_nodes + index, travel.limit_s)
            for row, i in zip(node_costs, index):
                e, a, b = reached_pieces(graph, s_per_m, row, travel.limit_s, points.take([i]))
                drawn += len(e)
                check_reach(drawn, int(i) + 1, len(points))
                owner.append(np.full(len(e), i))
                edge.append(e)
                start.append(a)
                end.append(b)
                reached[int(ids[i])] = (len(np.unique(e)), float(np.sum((b - a) * graph.length_m[e])))
            check_time()
        owner, edge = np.concatenate(owner or [[]]).astype(np.int64), np.concatenate(edge or [[]]).astype(np.int64)
        pieces = substrings(graph.lines(edge), np.concatenate(start or [[]]), np.concatenate(end or [[]]))
        feet = shapely.line_interpolate_point(graph.lines(points.edge), points.frac, normalized=True)
        connectors = shapely.linestrings(np.stack([xy, shapely.get_coordinates(feet).reshape(-1, 2)], axis=1))
        with_connector = points.connector_m > 0
        parts = np.concatenate([pieces, connectors[with_connector]])
        part_of = np.concatenate([owner, np.flatnonzero(with_connector)])
        order = np.argsort(part_of, kind="stable")
        present, dense = np.unique(part_of[order], return_inverse=True)
        merged = np.full(len(ids), None, dtype=object)
        if len(parts):
            merged[present] = shapely.line_merge(shapely.multilinestrings(parts[order], indices=dense))
        check_time()
        areas = grow(merged, buffer_m)
        polygons = dict(zip(ids.tolist(), zip(shapely.area(areas).tolist(), to_lonlat(areas, network.srid))))
        features = []
        for i, row in enumerate(sites.frame.itertuples(index=False)):
            area_m2, geometry = polygons.get(int(row.id), (0.0, None))
            edges_reached, length_m = reached.get(int(row.id), (0, 0.0))
            features.append({
                "type": "Feature", "id": int(row.id),
                "geometry": geometry,
                "properties": {
                    "facility_id": int(row.id), "name": row.name, "kind": row.kind, "layer": layer,
                    "division_code": row.division_code, "edges_reached": edges_reached,
                    "reached_road_m": round(length_m, 1), "area_m2": round(area_m2, 1),
                    "connector_m": round(float(points.connector_m[i]), 1),
                    "households_within_reach": int(within["households"][i]),
                    "settlements_within_reach": int(within["settlements"][i]),
                },
            })
        return {
            "type": "FeatureCollection",
            "features": features,
            "parameters": {**travel.describe(), "layer": layer, "kind": kind, "buffer_m": float(buffer_m),
                           "county": county,
                           "method": "network", "crs_measured": f"EPSG:{network.srid}"},
            "served_population": describe_population(who),
            "population_within_reach": within["totals"],
            "computed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(key, compute)


def _within_reach(conn: sa.Connection, spec, graph, s_per_m: np.ndarray, limit_s: float, sites: net.JoinedPoints,
                  points, people: net.JoinedPoints, people_points, who) -> dict:
    """Per facility, the households and settlements of ``who`` within ``limit_s`` of it (for a population served
    in its own township, those of the facility's township), and the totals: of the population, and within reach of
    any facility (each household once)."""
    households = people.frame["households"].to_numpy(dtype=float) if len(people.frame) else np.zeros(0)
    row, col, _ = pair_costs(graph, s_per_m, points, people_points, limit_s, on_chunk=lambda n: check_time())
    if who.own_township and len(row):
        homes = net.with_township(conn, sites, spec).frame["township_code"].to_numpy(dtype=object)
        same = homes[row] == people.frame["township_code"].to_numpy(dtype=object)[col]
        row, col = row[same], col[same]
    reached = np.zeros(len(households), dtype=bool)
    reached[col] = True
    return {"households": np.bincount(row, weights=households[col], minlength=len(sites.frame)),
            "settlements": np.bincount(row, minlength=len(sites.frame)),
            "totals": {"households": int(households.sum()), "settlements": len(households),
                       "households_within_reach": int(households[reached].sum()),
                       "settlements_within_reach": int(reached.sum()),
                       "percent": round(float(households[reached].sum() / households.sum() * 100), 2)
                       if households.sum() else None}}
