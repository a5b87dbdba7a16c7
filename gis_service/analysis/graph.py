"""Pure computations on the road graph: arrays in, arrays out, no database.

The graph is undirected; its nodes are the pgRouting vertices, its edges the road segments with their length in
metres. Settlements and facilities are :class:`EdgePoints`: the nearest point on the nearest edge (``frac`` of the
way from the edge's source to its target) and the straight connector from the feature to that point. A point's
cost from a facility is the cheapest of: through the edge's source node, through its target node, or, when both are
on the same edge, directly along it; connectors count in full, at the speed of the edge they join.

Shortest paths are scipy's Dijkstra on a CSR matrix in which each facility is a virtual node with two arcs to the
ends of its edge, so one multi-source run (``min_only``) gives every node's cost from its nearest facility.
Costs are seconds; :data:`gis_service.analysis.travel.COST_TOLERANCE_S` decides ties with the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from gis_service.analysis.travel import COST_TOLERANCE_S

#: Weight given to arcs of zero cost: scipy drops explicit zeros from a sparse graph.
_ZERO = 1e-9


@dataclass(frozen=True)
class RoadGraph:
    """The road network, edges sorted by id. Plain numeric arrays only, so that a graph saved in the data folder is
    memory-mapped by every worker process rather than copied into each (see :mod:`.graphfiles`).

    ``coords``/``coord_start``: the edges' vertices in the measure CRS (metres), edge after edge, each drawn from
    source to target (edge ``i`` is ``coords[coord_start[i]:coord_start[i + 1]]``); ``node_xy``: each node's
    position. Needed only to draw service areas, to join points in memory and to cut a region out."""

    edge_ids: np.ndarray  # int64, sorted
    source: np.ndarray  # int64 node index
    target: np.ndarray
    length_m: np.ndarray  # float64
    class_code: np.ndarray  # int16: position in class_names
    class_names: tuple[str, ...]
    n_nodes: int
    coords: np.ndarray | None = None  # float64 (vertices, 2)
    coord_start: np.ndarray | None = None  # int64 (edges + 1)
    node_xy: np.ndarray | None = None  # float64 (nodes, 2)

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)

    @property
    def road_class(self) -> np.ndarray:
        """Each edge's road class (str)."""
        return np.asarray(self.class_names, dtype=object)[self.class_code]

    def seconds_per_metre(self, speeds_kmh_by_class: dict[str, float]) -> np.ndarray:
        """Seconds per metre of each edge at the given speeds (km/h by road class)."""
        per_class = np.array([3.6 / speeds_kmh_by_class[c] for c in self.class_names], dtype=float)
        return per_class[self.class_code] if len(per_class) else np.zeros(0)

    @classmethod
    def from_edges(cls, edge_ids, source_vid, target_vid, length_m, road_class, geoms=None) -> RoadGraph:
        """Build from pgRouting-style columns (any vertex ids) and shapely LineStrings (or None); nodes are numbered
        0..n-1."""

        edge_ids = np.asarray(edge_ids, dtype=np.int64)
        order = np.argsort(edge_ids, kind="stable")
        ends = np.concatenate([np.asarray(source_vid, dtype=np.int64)[order],
                               np.asarray(target_vid, dtype=np.int64)[order]])
        vids, index = np.unique(ends, return_inverse=True)
        m = len(edge_ids)
        names, codes = np.unique(np.asarray(road_class, dtype=str)[order], return_inverse=True)
        coords = coord_start = node_xy = None
        if geoms is not None:
            coords, coord_start = line_arrays(np.asarray(geoms, dtype=object)[order])
            node_xy = node_positions(coords, coord_start, index[:m], index[m:], len(vids))
        return cls(edge_ids=edge_ids[order], source=index[:m].astype(np.int64), target=index[m:].astype(np.int64),
                   length_m=np.asarray(length_m, dtype=float)[order], class_code=codes.astype(np.int16),
                   class_names=tuple(str(n) for n in names), n_nodes=len(vids), coords=coords,
                   coord_start=coord_start, node_xy=node_xy)

    def edge_index(self, edge_ids) -> np.ndarray:
        """Positions of the edges with these ids."""
        edge_ids = np.asarray(edge_ids, dtype=np.int64)
        pos = np.searchsorted(self.edge_ids, edge_ids)
        if len(edge_ids) and (pos.max(initial=0) >= self.n_edges or not np.array_equal(self.edge_ids[pos], edge_ids)):
            raise ValueError("unknown edge id")
        return pos

    def lines(self, edges) -> np.ndarray:
        """The edges at these positions as shapely LineStrings (metres, measure CRS), drawn from source to target:
        made on demand from the coordinates, never kept."""
        import shapely

        edges = np.asarray(edges, dtype=np.int64)
        if len(edges) == 0:
            return np.zeros(0, dtype=object)
        start, stop = self.coord_start[edges], self.coord_start[edges + 1]
        counts = stop - start
        owner = np.repeat(np.arange(len(edges)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return shapely.linestrings(self.coords[np.repeat(start, counts) + offsets], indices=owner)

    @cached_property
    def _tree(self):
        import shapely

        return shapely.STRtree(self.lines(np.arange(self.n_edges)))

    def join(self, xy: np.ndarray) -> EdgePoints:
        """Join points (metres, measure CRS) to the nearest point on the nearest edge; of equally near edges the
        one with the lowest id. In memory, for small graphs: the service joins in PostGIS
        (:func:`gis_service.analysis.network.settlements`), which gives the same answer without a copy of every
        edge's geometry in each worker."""
        import shapely

        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(xy) == 0:
            return EdgePoints(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
        points = shapely.points(xy)
        (point, edge), distance = self._tree.query_nearest(points, all_matches=True, return_distance=True)
        order = np.lexsort((edge, point))  # per point, lowest edge position (= lowest id) first
        point, edge, distance = point[order], edge[order], distance[order]
        first = np.ones(len(point), dtype=bool)
        first[1:] = point[1:] != point[:-1]
        point, edge, distance = point[first], edge[first], distance[first]
        if len(point) != len(xy):
            raise ValueError("a point could not be joined to the network")
        frac = shapely.line_locate_point(self.lines(edge), points[point], normalized=True)
        return EdgePoints(edge.astype(np.int64), np.clip(np.asarray(frac, dtype=float), 0.0, 1.0),
                          np.asarray(distance, dtype=float))

    def region(self, bounds: tuple[float, float, float, float], *, with_edges: np.ndarray) -> Region:
        """The part of the graph whose nodes lie within ``bounds`` (minx, miny, maxx, maxy in metres): every edge
        with both ends inside, and the edges ``with_edges`` (positions) whatever their ends. Its own arrays, of the
        region's size; see :class:`Region`."""
        minx, miny, maxx, maxy = bounds
        x, y = self.node_xy[:, 0], self.node_xy[:, 1]
        inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
        keep = inside[self.source] & inside[self.target]
        keep[np.asarray(with_edges, dtype=np.int64)] = True
        edges = np.flatnonzero(keep)
        nodes, local = np.unique(np.concatenate([self.source[edges], self.target[edges]]), return_inverse=True)
        m = len(edges)
        start, stop = self.coord_start[edges], self.coord_start[edges + 1]
        counts = stop - start
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        coords = np.asarray(self.coords[np.repeat(start, counts) + offsets])
        coord_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        graph = RoadGraph(edge_ids=np.asarray(self.edge_ids[edges]), source=local[:m].astype(np.int64),
                          target=local[m:].astype(np.int64), length_m=np.asarray(self.length_m[edges]),
                          class_code=np.asarray(self.class_code[edges]), class_names=self.class_names,
                          n_nodes=len(nodes), coords=coords, coord_start=coord_start,
                          node_xy=np.asarray(self.node_xy[nodes]))
        return Region(graph, edges)


@dataclass(frozen=True)
class Region:
    """A part of a graph (:meth:`RoadGraph.region`): ``graph`` numbers its own edges and nodes; ``edges`` holds, for
    each of its edges, the position of that edge in the whole graph (sorted)."""

    graph: RoadGraph
    edges: np.ndarray

    def local(self, points: EdgePoints) -> EdgePoints:
        """``points`` (joined to the whole graph's edges, all within the region) on the region's own edges."""
        return EdgePoints(np.searchsorted(self.edges, points.edge).astype(np.int64), points.frac, points.connector_m)


def line_arrays(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LineStrings as one array of vertices (x, y) and where each line's vertices start (one more entry: the end)."""
    import shapely

    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    start = np.searchsorted(owner, np.arange(len(geoms) + 1)).astype(np.int64)
    return np.ascontiguousarray(coords, dtype=float), start


def node_positions(coords: np.ndarray, coord_start: np.ndarray, source: np.ndarray, target: np.ndarray,
                   n_nodes: int) -> np.ndarray:
    """Each node's position: the first vertex of the edges it starts, the last of those it ends."""
    xy = np.full((n_nodes, 2), np.nan)
    if len(source):
        xy[target] = coords[coord_start[1:] - 1]
        xy[source] = coords[coord_start[:-1]]
    return xy


@dataclass(frozen=True)
class EdgePoints:
    """Points joined to the graph: edge position, fraction along it (0 at source), connector length in metres."""

    edge: np.ndarray  # int64 edge position
    frac: np.ndarray
    connector_m: np.ndarray

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, index) -> EdgePoints:
        return EdgePoints(self.edge[index], self.frac[index], self.connector_m[index])

    @staticmethod
    def concat(*parts: EdgePoints) -> EdgePoints:
        """The points of ``parts`` one after the other."""
        return EdgePoints(np.concatenate([p.edge for p in parts]).astype(np.int64),
                          np.concatenate([p.frac for p in parts]), np.concatenate([p.connector_m for p in parts]))


@dataclass(frozen=True)
class Costs:
    """Each point's cost from its nearest facility: seconds (inf when unreachable) and the facility's position
    (-1 when unreachable)."""

    cost_s: np.ndarray
    facility: np.ndarray


# -- the CSR graph ---------------------------------------------------------------------------------------------

def endpoint_arcs(graph: RoadGraph, s_per_m: np.ndarray, points: EdgePoints) -> tuple[np.ndarray, np.ndarray]:
    """Cost from each point to its edge's source and target node (connector included), seconds."""
    k = s_per_m[points.edge]
    length = graph.length_m[points.edge]
    connector = points.connector_m * k
    return connector + points.frac * length * k, connector + (1.0 - points.frac) * length * k


def _road_arcs(graph: RoadGraph, s_per_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Road arcs both ways, sorted by (row, col), parallel arcs reduced to the cheapest; kept per speed."""
    cache = graph.__dict__.setdefault("_arc_cache", {})
    key = hash(s_per_m.tobytes())
    if key in cache:
        return cache[key]
    w = graph.length_m * s_per_m
    keep = graph.source != graph.target  # a loop never shortens a path
    row = np.concatenate([graph.source[keep], graph.target[keep]])
    col = np.concatenate([graph.target[keep], graph.source[keep]])
    weight = np.maximum(np.concatenate([w[keep], w[keep]]), _ZERO)
    order = np.lexsort((weight, col, row))
    row, col, weight = row[order], col[order], weight[order]
    first = np.ones(len(row), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    arcs = (row[first], col[first], weight[first])
    if len(cache) > 8:
        cache.clear()
    cache[key] = arcs
    return arcs


def road_csr(graph: RoadGraph, s_per_m: np.ndarray, sources: EdgePoints | None = None) -> sparse.csr_matrix:
    """Directed CSR: every road both ways (parallel roads keep the cheapest), plus one virtual node per source
    (numbered after the road nodes) with arcs to the ends of its edge."""
    n = graph.n_nodes
    row, col, weight = _road_arcs(graph, s_per_m)
    size = n
    if sources is not None and len(sources):
        to_source, to_target = endpoint_arcs(graph, s_per_m, sources)
        a, b = graph.source[sources.edge], graph.target[sources.edge]
        loop = a == b  # one arc, the cheaper, when the edge is a loop
        virtual = n + np.arange(len(sources))
        v_row = np.concatenate([virtual, virtual[~loop]])
        v_col = np.concatenate([a, b[~loop]])
        v_weight = np.concatenate([np.where(loop, np.minimum(to_source, to_target), to_source), to_target[~loop]])
        order = np.argsort(v_row, kind="stable")
        row = np.concatenate([row, v_row[order]])
        col = np.concatenate([col, v_col[order]])
        weight = np.concatenate([weight, np.maximum(v_weight[order], _ZERO)])
        size = n + len(sources)
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=size), out=indptr[1:])
    return sparse.csr_matrix((weight, col.astype(np.int32), indptr.astype(np.int32)), shape=(size, size))


# -- nearest facility --------------------------------------------------------------------------------------------

def nearest_facility_costs(graph: RoadGraph, s_per_m: np.ndarray, facilities: EdgePoints, points: EdgePoints,
                           *, limit_s: float = np.inf, csr: sparse.csr_matrix | None = None) -> Costs:
    """For each point, the cost in seconds from its nearest facility along the network, and which facility.

    ``limit_s`` stops the search early; points beyond it get inf (so pass inf to learn every distance).
    ``csr`` is :func:`road_csr` (graph, s_per_m, facilities) when the caller has it already.
    """
    m = len(points)
    if len(facilities) == 0 or m == 0:
        return Costs(np.full(m, np.inf), np.full(m, -1, dtype=np.int64))
    csr = road_csr(graph, s_per_m, facilities) if csr is None else csr
    limit = limit_s + COST_TOLERANCE_S if np.isfinite(limit_s) else np.inf
    node_cost, node_facility = nearest_node_costs(csr, graph.n_nodes, len(facilities), limit_s=limit_s)
    costs = point_costs(graph, s_per_m, node_cost, node_facility, facilities, points)
    if np.isfinite(limit):
        beyond = costs.cost_s > limit
        costs.cost_s[beyond] = np.inf
        costs.facility[beyond] = -1
    return costs


def nearest_node_costs(csr: sparse.csr_matrix, n_nodes: int, n_sources: int, *,
                       limit_s: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """One multi-source search over :func:`road_csr` (graph, s_per_m, sources): every road node's cost in seconds
    from its nearest source (inf beyond ``limit_s``) and that source's position (-1 when none)."""
    limit = limit_s + COST_TOLERANCE_S if np.isfinite(limit_s) else np.inf
    dist, _, origin = dijkstra(csr, directed=True, indices=n_nodes + np.arange(n_sources), min_only=True,
                               return_predecessors=True, limit=limit)
    return dist[:n_nodes], np.where(origin[:n_nodes] >= n_nodes, origin[:n_nodes] - n_nodes, -1)


def point_costs(graph: RoadGraph, s_per_m: np.ndarray, node_cost: np.ndarray, node_facility: np.ndarray,
                facilities: EdgePoints, points: EdgePoints) -> Costs:
    """Points' costs from the node costs of a multi-source search, plus the direct way along a shared edge."""
    to_source, to_target = endpoint_arcs(graph, s_per_m, points)
    via_source = node_cost[graph.source[points.edge]] + to_source
    via_target = node_cost[graph.target[points.edge]] + to_target
    cost = np.minimum(via_source, via_target)
    facility = np.where(via_source <= via_target, node_facility[graph.source[points.edge]],
                        node_facility[graph.target[points.edge]])
    # a facility on the same edge reaches the point directly along the edge
    order = np.argsort(points.edge, kind="stable")
    sorted_edges = points.edge[order]
    k = s_per_m[facilities.edge]
    length = graph.length_m[facilities.edge]
    for f in np.flatnonzero(np.isin(facilities.edge, sorted_edges)):
        lo, hi = np.searchsorted(sorted_edges, facilities.edge[f], "left"), np.searchsorted(
            sorted_edges, facilities.edge[f], "right")
        on_edge = order[lo:hi]
        direct = (facilities.connector_m[f] + np.abs(points.frac[on_edge] - facilities.frac[f]) * length[f]
                  + points.connector_m[on_edge]) * k[f]
        better = direct < cost[on_edge]
        cost[on_edge[better]] = direct[better]
        facility[on_edge[better]] = f
    facility = np.where(np.isfinite(cost), facility, -1)
    return Costs(cost, facility.astype(np.int64))


def euclidean_nearest(facility_xy: np.ndarray, point_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straight-line distance in metres from each point to the nearest facility (coordinates in metres), and its
    position; inf and -1 when there is no facility."""
    from scipy.spatial import cKDTree

    if len(facility_xy) == 0:
        return np.full(len(point_xy), np.inf), np.full(len(point_xy), -1, dtype=np.int64)
    distance, index = cKDTree(np.asarray(facility_xy, dtype=float)).query(np.asarray(point_xy, dtype=float))
    return np.asarray(distance, dtype=float), np.asarray(index, dtype=np.int64)


# -- service areas -----------------------------------------------------------------------------------------------

def _reached_from_nodes(graph: RoadGraph, s_per_m: np.ndarray, node_cost: np.ndarray,
                        limit_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts of edges reachable within ``limit_s`` through their end nodes, costs ``node_cost``: whole edges and
    the reached stretch at either end of a partially reached edge, as (edge position, start, end fraction)."""
    limit = limit_s + COST_TOLERANCE_S
    k = s_per_m
    length = graph.length_m
    du = node_cost[graph.source]
    dv = node_cost[graph.target]
    with np.errstate(invalid="ignore"):
        a = np.where(du <= limit, np.clip((limit_s - du) / k, 0.0, length), 0.0)  # metres from the source end
        b = np.where(dv <= limit, np.clip((limit_s - dv) / k, 0.0, length), 0.0)  # metres from the target end
    full = (du <= limit) & (dv <= limit) & (a + b >= length - 1e-6)
    from_a = (a > 0) & ~full
    from_b = (b > 0) & ~full
    edges = [np.flatnonzero(full), np.flatnonzero(from_a), np.flatnonzero(from_b)]
    starts = [np.zeros(len(edges[0])), np.zeros(len(edges[1])), 1.0 - b[from_b] / length[from_b]]
    ends = [np.ones(len(edges[0])), a[from_a] / length[from_a], np.ones(len(edges[2]))]
    return np.concatenate(edges).astype(np.int64), np.concatenate(starts), np.concatenate(ends)


def _own_stretches(graph: RoadGraph, s_per_m: np.ndarray, limit_s: float,
                   own: EdgePoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each facility in ``own``, the stretch of its own edge around its point reachable within ``limit_s``
    (after its connector), as (edge position, start, end fraction); facilities whose connector alone takes longer
    have none."""
    k = s_per_m[own.edge]
    length = graph.length_m[own.edge]
    reach = (limit_s - own.connector_m * k) / k / length  # a fraction of the edge, either way
    has = reach > 0
    return (own.edge[has].astype(np.int64), np.maximum(0.0, own.frac[has] - reach[has]),
            np.minimum(1.0, own.frac[has] + reach[has]))


def reached_pieces(graph: RoadGraph, s_per_m: np.ndarray, node_cost: np.ndarray, limit_s: float,
                   own: EdgePoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts of edges reachable within ``limit_s`` from one facility, as (edge position, start fraction, end
    fraction) arrays: whole edges, the reached stretch at either end of a partially reached edge, and the stretch
    of the facility's own edge around its point (``own``: one point). Pieces may overlap."""
    edge, start, end = _reached_from_nodes(graph, s_per_m, node_cost, limit_s)
    own_edge, own_start, own_end = _own_stretches(graph, s_per_m, limit_s, own)
    if len(own_edge):  # the facility's own edge: around its point, merged with what arrives from the ends
        e = int(own_edge[0])
        on_own = edge == e
        intervals = sorted([(float(own_start[0]), float(own_end[0]))] + list(zip(start[on_own], end[on_own])))
        merged = [list(intervals[0])]
        for lo, hi in intervals[1:]:
            if lo <= merged[-1][1] + 1e-12:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        edge = np.concatenate([edge[~on_own], np.full(len(merged), e)])
        start = np.concatenate([start[~on_own], [m[0] for m in merged]])
        end = np.concatenate([end[~on_own], [m[1] for m in merged]])
    keep = end - start > 1e-12
    return edge[keep], start[keep], end[keep]


def reached_by_any(graph: RoadGraph, s_per_m: np.ndarray, node_cost: np.ndarray, limit_s: float,
                   facilities: EdgePoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts of edges reachable within ``limit_s`` from any of ``facilities``, ``node_cost`` being every node's
    cost from its nearest facility (:func:`nearest_node_costs`): the union of each facility's
    :func:`reached_pieces`, since the stretch reached from an edge's end is the longest when that end's cost is the
    least. At most one piece per edge end plus one per facility, however many facilities reach an edge; pieces may
    overlap."""
    edge, start, end = _reached_from_nodes(graph, s_per_m, node_cost, limit_s)
    own_edge, own_start, own_end = _own_stretches(graph, s_per_m, limit_s, facilities)
    edge, start, end = (np.concatenate([edge, own_edge]), np.concatenate([start, own_start]),
                        np.concatenate([end, own_end]))
    keep = end - start > 1e-12
    return edge[keep], start[keep], end[keep]


def covered_length_m(graph: RoadGraph, edge: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Metres of road covered by the pieces (edge position, start, end fraction), overlaps counted once."""
    if len(edge) == 0:
        return 0.0
    # each edge's fractions moved to [2e, 2e + 1]: one sort and one running maximum merge every edge's intervals
    lo, hi = 2.0 * edge + start, 2.0 * edge + end
    order = np.argsort(lo, kind="stable")
    lo, hi, edge = lo[order], hi[order], edge[order]
    reach_before = np.concatenate([[-np.inf], np.maximum.accumulate(hi)[:-1]])
    covered = np.clip(hi - np.maximum(lo, reach_before), 0.0, None)
    return float(np.sum(covered * graph.length_m[edge]))


def substrings(geoms: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The part of each line from fraction ``start`` to ``end`` of its length (vectorised
    ``shapely.ops.substring``; ``start`` < ``end``)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0, dtype=object)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    step = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    step[owner[1:] != owner[:-1]] = 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(step)])
    first = np.searchsorted(owner, np.arange(len(geoms)))
    along = cumulative - cumulative[first][owner]
    length = shapely.length(geoms)
    lo, hi = np.asarray(start) * length, np.asarray(end) * length
    inner = (along > lo[owner]) & (along < hi[owner])
    head = shapely.get_coordinates(shapely.line_interpolate_point(geoms, lo))
    tail = shapely.get_coordinates(shapely.line_interpolate_point(geoms, hi))
    index = np.arange(len(geoms))
    xy = np.concatenate([head, coords[inner], tail])
    which = np.concatenate([index, owner[inner], index])
    rank = np.concatenate([np.full(len(geoms), -np.inf), along[inner], np.full(len(geoms), np.inf)])
    order = np.lexsort((rank, which))
    return shapely.linestrings(xy[order], indices=which[order])


def single_source_node_costs(csr: sparse.csr_matrix, n_nodes: int, source_nodes: np.ndarray,
                             limit_s: float) -> np.ndarray:
    """Node costs (rows: sources) from each of ``source_nodes`` (virtual node numbers), inf beyond the limit."""
    if len(source_nodes) == 0:
        return np.zeros((0, n_nodes))
    dist = dijkstra(csr, directed=True, indices=np.asarray(source_nodes), limit=limit_s + COST_TOLERANCE_S)
    return np.atleast_2d(dist)[:, :n_nodes]


# -- maximal covering location -------------------------------------------------------------------------------------

def pair_costs(graph: RoadGraph, s_per_m: np.ndarray, candidates: EdgePoints, points: EdgePoints,
               limit_s: float, *, chunk: int = 128, on_chunk=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (candidate, point) pair a facility at the candidate would reach within ``limit_s``, with its cost:
    arrays of candidate positions, point positions and seconds (the cheapest of the ways through the network and,
    on a shared edge, directly along it)."""
    n = graph.n_nodes
    csr = road_csr(graph, s_per_m, candidates)
    to_source, to_target = endpoint_arcs(graph, s_per_m, points)
    p_source = graph.source[points.edge]
    p_target = graph.target[points.edge]
    limit = limit_s + COST_TOLERANCE_S
    rows, cols, costs = [], [], []
    by_edge: dict[int, np.ndarray] = {}
    order = np.argsort(points.edge, kind="stable")
    edges_sorted = points.edge[order]
    uniq, starts = np.unique(edges_sorted, return_index=True)
    bounds = np.append(starts, len(order))
    for i, e in enumerate(uniq):
        by_edge[int(e)] = order[bounds[i]:bounds[i + 1]]
    for lo in range(0, len(candidates), chunk):
        idx = np.arange(lo, min(lo + chunk, len(candidates)))
        node_cost = single_source_node_costs(csr, n, n + idx, limit_s)
        cost = np.minimum(node_cost[:, p_source] + to_source, node_cost[:, p_target] + to_target)
        for i in idx:  # the direct way along a shared edge
            same = by_edge.get(int(candidates.edge[i]))
            if same is None:
                continue
            e = candidates.edge[i]
            direct = (candidates.connector_m[i] + np.abs(points.frac[same] - candidates.frac[i]) * graph.length_m[e]
                      + points.connector_m[same]) * s_per_m[e]
            cost[i - lo, same] = np.minimum(cost[i - lo, same], direct)
        r, c = np.nonzero(cost <= limit)
        rows.append(idx[r])
        cols.append(c)
        costs.append(cost[r, c])
        if on_chunk:
            on_chunk(len(idx))
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(rows) if rows else empty, np.concatenate(cols) if cols else empty,
            np.concatenate(costs) if costs else np.zeros(0))


def coverage_pairs(graph: RoadGraph, s_per_m: np.ndarray, candidates: EdgePoints, points: EdgePoints,
                   limit_s: float, *, chunk: int = 128, on_chunk=None) -> sparse.csr_matrix:
    """Boolean matrix (candidates × points): True where a facility at the candidate would reach the point within
    ``limit_s``."""
    row, col, _ = pair_costs(graph, s_per_m, candidates, points, limit_s, chunk=chunk, on_chunk=on_chunk)
    return sparse.csr_matrix((np.ones(len(row), dtype=bool), (row, col)), shape=(len(candidates), len(points)))


@dataclass(frozen=True)
class GreedyCover:
    """Chosen candidates in order, the weight each newly covers, and an upper bound on the best possible total."""

    chosen: list[int]
    gains: list[float]
    upper_bound: float

    @property
    def total(self) -> float:
        return float(sum(self.gains))


def greedy_max_cover(cover: sparse.csr_matrix, weights: np.ndarray, k: int) -> GreedyCover:
    """Pick ``k`` candidates (rows of ``cover``) that together cover the most weight, greedily.

    Greedy reaches at least 1 - (1 - 1/k)^k (≥ 63.2 %) of the optimum (Nemhauser, Wolsey and Fisher 1978). The
    returned ``upper_bound`` on the optimum is the tightest of f(S_i) + the k largest marginal gains after step i
    (a property of submodular coverage), so ``total / upper_bound`` is a guarantee for this instance.
    """
    weights = np.asarray(weights, dtype=float)
    cover = sparse.csr_matrix(cover, dtype=float)
    remaining = weights.copy()
    chosen: list[int] = []
    gains_out: list[float] = []
    covered_total = 0.0
    upper = np.inf
    for _ in range(min(k, cover.shape[0])):
        gains = cover @ remaining
        top = np.sort(gains)[::-1][:k]
        upper = min(upper, covered_total + float(top.sum()))
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        chosen.append(best)
        gains_out.append(float(gains[best]))
        covered_total += float(gains[best])
        remaining[cover[best].indices] = 0.0
    if len(chosen) < k:  # nothing left to gain: the greedy answer is optimal
        upper = min(upper, covered_total)
    gains = cover @ remaining
    upper = min(upper, covered_total + float(np.sort(gains)[::-1][:k].sum()))
    return GreedyCover(chosen, gains_out, float(upper) if np.isfinite(upper) else 0.0)
