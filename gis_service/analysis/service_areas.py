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
from dataclasses import dataclass

import numpy as np
import shapely
import sqlalchemy as sa
from pyproj import Transformer

from gis_service.analysis import network as net
from gis_service.analysis.graph import (
    EdgePoints,
    RoadGraph,
    covered_length_m,
    nearest_node_costs,
    pair_costs,
    reached_by_any,
    reached_pieces,
    road_csr,
    single_source_node_costs,
    substrings,
)
from gis_service.analysis.limits import check_time
from gis_service.analysis.travel import (
    AnalysisSettings,
    Travel,
    check_facilities,
    check_population,
    describe_population,
    travel_for,
)
from gis_service.errors import InvalidInputError
from gis_service.layers.base import Layer, Population

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


@dataclass(frozen=True)
class _Asked:
    """What a service-area question asks, checked, with the network it is answered on."""

    layer: str
    spec: Layer
    kind: str | None
    travel: Travel
    buffer_m: float
    county: str | None
    network: net.Network
    who: Population

    @classmethod
    def checked(cls, conn: sa.Connection, *, layer: str, kind: str | None, minutes: float | None,
                mode: str | None, buffer_m: float, county: str | None, measure_srid: int,
                settings: AnalysisSettings | None) -> _Asked:
        """Every argument checked (InvalidInputError naming it), the kind's default travel where ``mode`` or
        ``minutes`` is None, the network built if the roads changed."""
        settings = settings or AnalysisSettings()
        spec, kind = check_facilities(layer, kind)
        who = check_population(spec, kind, None)
        county = net.check_county(county, conn)
        if not (MIN_BUFFER_M <= buffer_m <= MAX_BUFFER_M):
            raise InvalidInputError(f"buffer_m must be between {MIN_BUFFER_M:g} and {MAX_BUFFER_M:g} metres; "
                                    f"got {buffer_m}")
        travel = travel_for(settings, spec, kind, mode=mode, minutes=minutes)
        network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
        return cls(layer, spec, kind, travel, float(buffer_m), county, network, who)

    def key(self, answer: str) -> tuple:
        """The cache key of ``answer`` (service_areas, served_area) to this question on this data."""
        t = self.travel
        params = (self.layer, self.kind, t.mode, t.minutes, self.buffer_m, self.county,
                  tuple(sorted(t.speeds_kmh_by_road_class.items())))
        return (answer, params) + self.network.key("roads", self.layer, "admin_divisions", "settlements")

    def facilities(self, conn: sa.Connection, *, people: bool = False
                   ) -> tuple[net.JoinedPoints, RoadGraph, EdgePoints, net.JoinedPoints | None, EdgePoints | None]:
        """The facilities asked for, and the graph to search and their points on it (a county's region); with
        ``people``, also the settlements of the population the kind serves and their points on that graph."""
        sites = net.facilities(conn, self.network, self.spec, self.kind, self.county)
        served = net.of_population(net.settlements(conn, self.network, self.county), self.who) if people else None
        if self.county is None:
            return sites, self.network.graph, sites.points, served, served.points if served else None
        region = net.county_region(self.network, self.county, [sites] + ([served] if served else []), self.travel)
        return (sites, region.graph, region.local(sites.points), served,
                region.local(served.points) if served else None)

    def describe(self) -> dict:
        return {**self.travel.describe(), "layer": self.layer, "kind": self.kind, "buffer_m": self.buffer_m,
                "county": self.county, "method": "network", "crs_measured": f"EPSG:{self.network.srid}"}


def service_areas(conn: sa.Connection, *, layer: str = "elder_care", kind: str | None = None,
                  minutes: float | None = None, mode: str | None = None, buffer_m: float = 50.0,
                  county: str | None = None, measure_srid: int = 4545,
                  settings: AnalysisSettings | None = None, use_cache: bool = True) -> dict:
    """A GeoJSON FeatureCollection (EPSG:4326): one feature per existing facility of ``layer`` (and ``kind``),
    its geometry the reached roads grown by ``buffer_m`` metres, its properties the facility, the reached road
    length in metres and the area in m² (both measured in EPSG:``measure_srid``), and the households of the
    population ``kind`` is for (``served_population``; township homes: of their own township) within its reach.
    ``county``: that county's facilities only (6-digit code). ``mode``, ``minutes`` not given: the kind's default."""
    asked = _Asked.checked(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, buffer_m=buffer_m,
                           county=county, measure_srid=measure_srid, settings=settings)
    network, travel = asked.network, asked.travel

    def compute() -> dict:
        started = time.perf_counter()
        sites, graph, points, people, people_points = asked.facilities(conn, people=True)
        s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
        within = _within_reach(conn, asked.spec, graph, s_per_m, travel.limit_s, sites, points, people,
                               people_points, asked.who)
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
            "parameters": asked.describe(),
            "served_population": describe_population(asked.who),
            "population_within_reach": within["totals"],
            "computed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(asked.key("service_areas"), compute)


def served_area(conn: sa.Connection, *, layer: str = "elder_care", kind: str | None = None,
                minutes: float | None = None, mode: str | None = None, buffer_m: float = 50.0,
                county: str | None = None, measure_srid: int = 4545,
                settings: AnalysisSettings | None = None, use_cache: bool = True) -> dict:
    """The union of the service areas of every existing facility of ``layer`` (and ``kind``) as one GeoJSON
    Feature (EPSG:4326, geometry None when there is no facility): the roads reachable from any of them within the
    limit, grown by ``buffer_m`` metres. Properties: the number of facilities, the reached road length in metres
    (overlaps once) and the area in m² (both in EPSG:``measure_srid``).

    What a map draws: one search from all facilities at once and at most one piece per road end plus one per
    facility, so its cost is bounded by the network, never by how much the facilities' areas overlap (24 minutes
    by bicycle from the demo county's 193 elder-care facilities: 19 s and 10 MB as :func:`service_areas`, which
    refuses it as too large to draw).
    """
    asked = _Asked.checked(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, buffer_m=buffer_m,
                           county=county, measure_srid=measure_srid, settings=settings)
    network, travel = asked.network, asked.travel

    def compute() -> dict:
        started = time.perf_counter()
        sites, graph, points, _, _ = asked.facilities(conn)
        geometry, length_m, area_m2 = None, 0.0, 0.0
        if len(points):
            s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
            node_cost, _ = nearest_node_costs(road_csr(graph, s_per_m, points), graph.n_nodes, len(points),
                                              limit_s=travel.limit_s)
            check_time()
            edge, start, end = reached_by_any(graph, s_per_m, node_cost, travel.limit_s, points)
            length_m = covered_length_m(graph, edge, start, end)
            xy = sites.frame[["x", "y"]].to_numpy(dtype=float)
            feet = shapely.line_interpolate_point(graph.lines(points.edge), points.frac, normalized=True)
            connectors = shapely.linestrings(np.stack([xy, shapely.get_coordinates(feet).reshape(-1, 2)], axis=1))
            parts = np.concatenate([substrings(graph.lines(edge), start, end), connectors[points.connector_m > 0]])
            check_time()
            lines = np.array([shapely.line_merge(shapely.multilinestrings(parts))], dtype=object)
            area = grow(lines, buffer_m)
            area_m2 = float(shapely.area(area[0])) if area[0] is not None else 0.0
            geometry = to_lonlat(area, network.srid)[0]
        return {
            "type": "Feature", "id": 1, "geometry": geometry,
            "properties": {"facilities": len(points), "reached_road_m": round(length_m, 1),
                           "area_m2": round(area_m2, 1)},
            "parameters": asked.describe(),
            "computed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(asked.key("served_area"), compute)


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
