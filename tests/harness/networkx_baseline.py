"""The coverage question answered with NetworkX: the baseline ``scripts/bench_coverage.py`` times the scipy search
against, and the independent computation ``tests/test_analysis_county.py`` checks it with.

Pass :func:`networkx_costs` as ``path_costs`` to :func:`gis_service.analysis.coverage.compute_served`
(``functools.partial(networkx_costs, limit_s=...)`` for a search that stops at the limit).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from gis_service.analysis import network as net
from gis_service.analysis.graph import Costs, EdgePoints, RoadGraph, endpoint_arcs, point_costs
from gis_service.analysis.travel import COST_TOLERANCE_S


def networkx_costs(graph: RoadGraph, s_per_m: np.ndarray, facilities: EdgePoints, points: EdgePoints, *,
                   limit_s: float = np.inf) -> Costs:
    """Each point's cost in seconds from its nearest facility, as
    :func:`gis_service.analysis.graph.nearest_facility_costs` gives it: the same graph in NetworkX (built once per
    graph and speeds and kept), each facility a virtual node joined to the ends of its edge, one
    ``multi_source_dijkstra_path_length`` (with ``cutoff=limit_s`` when finite), then the same point formula.
    Points beyond a finite limit get inf; the nearest facility is not tracked (-1)."""
    n = graph.n_nodes
    key = ("networkx", id(graph), float(np.sum(s_per_m)))
    g = net.GRAPHS.get(key)
    if g is None:
        g = nx.Graph()
        g.add_nodes_from(range(n))
        w = graph.length_m * s_per_m
        for u, v, c in zip(graph.source.tolist(), graph.target.tolist(), w.tolist()):
            if u != v and (not g.has_edge(u, v) or g[u][v]["weight"] > c):
                g.add_edge(u, v, weight=c)
        net.GRAPHS.put(key, g)
    to_source, to_target = endpoint_arcs(graph, s_per_m, facilities)
    virtual = [("facility", i) for i in range(len(facilities))]
    try:
        for i, node in enumerate(virtual):
            e = facilities.edge[i]
            g.add_edge(node, int(graph.source[e]), weight=float(to_source[i]))
            g.add_edge(node, int(graph.target[e]), weight=float(to_target[i]))
        cutoff = limit_s + COST_TOLERANCE_S if np.isfinite(limit_s) else None
        dist = nx.multi_source_dijkstra_path_length(g, set(virtual), cutoff=cutoff)
    finally:
        g.remove_nodes_from(virtual)
    node_cost = np.full(n, np.inf)
    for node, cost in dist.items():
        if not isinstance(node, tuple):
            node_cost[node] = cost
    costs = point_costs(graph, s_per_m, node_cost, np.full(n, -1, dtype=np.int64), facilities, points)
    return Costs(np.where(costs.cost_s <= limit_s + COST_TOLERANCE_S, costs.cost_s, np.inf), costs.facility)


# -- coverage recomputed from exported files alone ------------------------------------------------------------

def _on_roads(roads, points):
    """For each point (a GeoSeries in the roads' metric CRS): the position of its nearest road, the fraction along
    it and the connector's length in metres."""
    import shapely

    tree = shapely.STRtree(roads.geometry.to_numpy())
    pairs = tree.query_nearest(points.to_numpy(), all_matches=False)
    road = np.empty(len(points), dtype=np.int64)
    road[pairs[0]] = pairs[1]
    lines = roads.geometry.to_numpy()[road]
    frac = shapely.line_locate_point(lines, points.to_numpy(), normalized=True)
    return road, frac, shapely.distance(points.to_numpy(), lines)


def coverage_from_files(roads, settlements, facilities, divisions, *, speeds_kmh: dict[str, float], minutes: float,
                        urban_rural: str | None = None, own_township: bool = False, srid: int = 4545) -> dict:
    """Households served, computed from exported layers alone (geopandas frames as read from the files: roads with
    ``road_class``; settlements with ``households`` and ``village_code``; the facilities that serve; the divisions
    with ``code``, ``level``, ``parent_code``, ``urban_rural``) in NetworkX, sharing no code with the service: the
    roads are a graph whose nodes are their end points (equal to the millimetre), each point joins its nearest road
    at the nearest point (the connector travelled at that road's speed), and a settlement is served when a
    facility reaches it within ``minutes`` (``own_township``: a facility of its own township). Only the settlements
    of villages with ``urban_rural`` count (None: all)."""
    roads = roads.to_crs(srid).reset_index(drop=True)
    settlements = settlements.to_crs(srid).reset_index(drop=True)
    facilities = facilities.to_crs(srid).reset_index(drop=True)
    parent = dict(zip(divisions["code"], divisions["parent_code"]))
    level = dict(zip(divisions["code"], divisions["level"]))
    village_kind = dict(zip(divisions["code"], divisions["urban_rural"]))
    if urban_rural is not None:
        settlements = settlements[settlements["village_code"].map(village_kind) == urban_rural].reset_index(drop=True)
    s_per_m = roads["road_class"].map(lambda c: 3.6 / speeds_kmh[c]).to_numpy(dtype=float)
    length = roads.geometry.length.to_numpy()
    g = nx.Graph()
    ends = []
    for line in roads.geometry:
        (x0, y0), (x1, y1) = line.coords[0], line.coords[-1]
        ends.append(((round(x0, 3), round(y0, 3)), (round(x1, 3), round(y1, 3))))
    for (a, b), w in zip(ends, length * s_per_m):
        if a != b and (not g.has_edge(a, b) or g[a][b]["weight"] > w):
            g.add_edge(a, b, weight=float(w))
    p_road, p_frac, p_conn = _on_roads(roads, settlements.geometry)
    f_road, f_frac, f_conn = _on_roads(roads, facilities.geometry)

    def township(code):
        if code is None or code != code:
            return None
        return code if level.get(code) == "township" else parent.get(code)

    homes = [township(c) for c in facilities["division_code"]] if own_township else [None] * len(facilities)
    people_township = [parent.get(c) for c in settlements["village_code"]]
    groups = sorted(set(homes) - {None}) if own_township else [None]
    cost = np.full(len(settlements), np.inf)
    limit = minutes * 60.0
    for group in groups:
        chosen = [i for i, h in enumerate(homes) if h == group]
        people = [i for i, t in enumerate(people_township) if not own_township or t == group]
        virtual = [("facility", i) for i in chosen]
        for i in chosen:
            r = f_road[i]
            k = s_per_m[r]
            a, b = ends[r]
            g.add_edge(("facility", i), a, weight=float((f_conn[i] + f_frac[i] * length[r]) * k))
            g.add_edge(("facility", i), b, weight=float((f_conn[i] + (1 - f_frac[i]) * length[r]) * k))
        try:
            dist = nx.multi_source_dijkstra_path_length(g, set(virtual), cutoff=limit + 1.0) if virtual else {}
        finally:
            g.remove_nodes_from(virtual)
        for p in people:
            r, k = p_road[p], s_per_m[p_road[p]]
            a, b = ends[r]
            best = min(dist.get(a, np.inf) + (p_conn[p] + p_frac[p] * length[r]) * k,
                       dist.get(b, np.inf) + (p_conn[p] + (1 - p_frac[p]) * length[r]) * k)
            for i in chosen:  # a facility on the same road reaches it directly
                if f_road[i] == r:
                    best = min(best, (f_conn[i] + abs(f_frac[i] - p_frac[p]) * length[r] + p_conn[p]) * k)
            cost[p] = min(cost[p], best)
    households = settlements["households"].to_numpy(dtype=float)
    served = cost <= limit + COST_TOLERANCE_S
    return {"households": int(households.sum()), "served_households": int(households[served].sum()),
            "percent": round(float(households[served].sum() / households.sum() * 100), 2)}
