"""Settlements (居民点) and the road network (道路) of the demo county, built together in EPSG:4545.

Every road segment is an edge of one Delaunay triangulation of all network nodes (street-grid
crossings, settlements, the lanes around them, bridge heads), so no two segments cross and they
meet only at shared end points. The selected edges are: the street grids of the county town and
the township towns, a Euclidean minimum spanning tree over everything (one connected network),
some extra short edges for loops, the routes between township seats, and the bridges. Edges
that would cross 梅江河 or leave the county are never selected, except the bridges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay

from . import geo, geography, roadnames
from .divisions import Layout
from .settlements import Settlements, lanes, move_to_network, place_settlements

TOWN_GRID_SPACING_M = 100.0
RIVER_CLEARANCE_M = 35.0  # no network node this close to 梅江河 (bridge heads excepted)
EDGE_CLEARANCE_M = 5.0  # no segment this close to the river or the county border (bridges excepted)
BRIDGE_HALF_LENGTH_M = (35.0, 55.0)  # each bridge head stands this far from the river's centre line
BRIDGE_KEEP_OUT_M = 110.0  # no other node this close to a bridge's centre
URBAN_BRIDGE_SPACING_M = 650.0
RURAL_BRIDGE_SPACING_M = (3000.0, 5000.0)

NODE_URBAN, NODE_TOWN, NODE_SETTLEMENT, NODE_LANE, NODE_BRIDGE = range(5)

WIDTH_M = {
    "urban_arterial": (32.0, 40.0),
    "urban_secondary": (18.0, 24.0),
    "urban_branch": (9.0, 14.0),
    "county": (7.5, 8.5),
    "township": (6.0, 7.0),
    "village": (4.5, 5.5),
    "path": (2.5, 3.5),
}


@dataclass
class Network:
    nodes: np.ndarray  # (n, 2) EPSG:4545
    edges: np.ndarray  # (m, 2) node indices
    road_class: list[str]
    name: list[str]
    is_bridge: np.ndarray
    width_m: np.ndarray
    named_on: list[date | None]
    approval_no: list[str | None]
    former_names: list[list[str]]
    settlements: Settlements
    seat_nodes: np.ndarray  # node index of each township seat
    bridge_names: list[str] = field(default_factory=list)

    @property
    def lengths_m(self) -> np.ndarray:
        a, b = self.nodes[self.edges[:, 0]], self.nodes[self.edges[:, 1]]
        return np.hypot(*(b - a).T)


# --------------------------------------------------------------------------------------------
# zones, lattices, bridges


def urban_grid_zone(layout: Layout) -> shapely.Geometry:
    """Where the county town's street grid is: around 中和 and the other four 街道 seats."""
    seat = geography.county_seat_metric()
    discs = [shapely.Point(seat).buffer(2600.0, quad_segs=16)]
    for t, township in enumerate(layout.townships):
        if township.kind == "街道":
            discs.append(shapely.Point(layout.seats[t]).buffer(1000.0, quad_segs=16))
    zone = shapely.union_all(discs).buffer(300.0).buffer(-300.0)
    zone = zone.intersection(geography.urban_area_metric().buffer(-300.0))
    return zone.intersection(geography.county_metric().buffer(-200.0))


def town_zones(layout: Layout) -> dict[int, shapely.Geometry]:
    """The small street grid of every rural township seat (镇/乡 town), by township index."""
    out = {}
    for t, township in enumerate(layout.townships):
        if township.kind == "街道":
            continue
        population = float(layout.township_population[t])
        radius = 180.0 + 2.4 * np.sqrt(population)
        disc = shapely.Point(layout.seats[t]).buffer(radius, quad_segs=12)
        out[t] = disc.intersection(layout.township_polygons[t].buffer(-100.0))
    return out


def _lattice(origin: np.ndarray, spacing: float, angle_deg: float, zone) -> tuple[np.ndarray, np.ndarray]:
    """Lattice points inside ``zone``: xy (n, 2) and their integer indices ij (n, 2)."""
    a = np.radians(angle_deg)
    u = np.array([np.cos(a), np.sin(a)]) * spacing
    v = np.array([-np.sin(a), np.cos(a)]) * spacing
    minx, miny, maxx, maxy = zone.bounds
    reach = int(np.ceil(max(maxx - minx, maxy - miny, 2 * np.abs(origin - [minx, miny]).max()) / spacing)) + 2
    i, j = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    ij = np.column_stack([i.ravel(), j.ravel()])
    xy = origin + ij[:, :1] * u + ij[:, 1:] * v
    inside = shapely.contains_xy(zone, xy[:, 0], xy[:, 1])
    return xy[inside], ij[inside]


def _bridge_sites(layout: Layout, urban_zone, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(centre, unit normal, is_urban) of every bridge over 梅江河."""
    river = geography.river_metric()
    county = geography.county_metric()
    length = river.length
    step = 10.0
    s = np.arange(0.0, length, step)
    pts = np.array([np.asarray(p.coords)[0] for p in shapely.line_interpolate_point(river, s)])
    in_urban = shapely.contains_xy(urban_zone.buffer(-150.0), pts[:, 0], pts[:, 1])
    far_from_border = shapely.distance(shapely.points(pts), county.exterior) > 600.0

    chosen: list[tuple[float, bool]] = []
    urban_s = s[in_urban & far_from_border]
    if len(urban_s):
        offset = rng.uniform(0.3, 0.7) * URBAN_BRIDGE_SPACING_M
        for target in np.arange(urban_s.min() + offset, urban_s.max(), URBAN_BRIDGE_SPACING_M):
            nearest = urban_s[np.abs(urban_s - target).argmin()]
            if abs(nearest - target) < 100.0:
                chosen.append((float(nearest), True))
    position = rng.uniform(800.0, 2000.0)
    while position < length:
        k = int(position // step)
        if k < len(s) and far_from_border[k] and not in_urban[k]:
            if all(abs(position - c) > 1500.0 for c, _ in chosen):
                chosen.append((float(s[k]), False))
        position += rng.uniform(*RURAL_BRIDGE_SPACING_M)
    for t, township in enumerate(layout.townships):  # a bridge at each riverside town
        if township.kind == "街道":
            continue
        d = np.hypot(*(pts - layout.seats[t]).T)
        k = int(d.argmin())
        if d[k] < 3000.0 and far_from_border[k] and all(abs(s[k] - c) > 1200.0 for c, _ in chosen):
            chosen.append((float(s[k]), False))
    chosen.sort()
    sites = []
    for position, urban in chosen:
        a = np.asarray(shapely.line_interpolate_point(river, max(position - 20.0, 0.0)).coords)[0]
        b = np.asarray(shapely.line_interpolate_point(river, min(position + 20.0, length)).coords)[0]
        tangent = (b - a) / np.linalg.norm(b - a)
        centre = np.asarray(shapely.line_interpolate_point(river, position).coords)[0]
        sites.append((centre, np.array([-tangent[1], tangent[0]]), urban))
    return sites


# --------------------------------------------------------------------------------------------
# the network


def build_network(layout: Layout, rng: np.random.Generator, scale: int) -> Network:
    """Settlements and the road network (EPSG:4545)."""
    county = geography.county_metric()
    river = geography.river_metric()
    county_inner = county.buffer(-30.0)
    shapely.prepare(county_inner)
    shapely.prepare(river)

    urban_zone = urban_grid_zone(layout)
    towns = town_zones(layout)
    sites = _bridge_sites(layout, urban_zone, rng)
    bridge_centres = np.array([c for c, _, _ in sites]) if sites else np.zeros((0, 2))

    def clear_of_bridges(xy: np.ndarray, radius: float) -> np.ndarray:
        if not len(bridge_centres) or not len(xy):
            return np.ones(len(xy), dtype=bool)
        tree = shapely.STRtree(shapely.points(bridge_centres))
        hits = tree.query(shapely.points(xy), predicate="dwithin", distance=radius)
        ok = np.ones(len(xy), dtype=bool)
        ok[hits[0]] = False
        return ok

    def near_river(xy: np.ndarray, distance: float) -> np.ndarray:
        return geo.near_line(xy, river, distance)

    # street-grid nodes
    node_xy, node_kind, node_owner, node_ij = [], [], [], []
    grids = [
        (0, geography.county_seat_metric(), geography.URBAN_GRID_SPACING_M, geography.URBAN_GRID_ANGLE_DEG, urban_zone)
    ]
    for t, zone in towns.items():
        grids.append((t + 1, layout.seats[t], TOWN_GRID_SPACING_M, float(rng.uniform(-40, 40)), zone))
    for grid_id, origin, spacing, angle, zone in grids:
        xy, ij = _lattice(origin, spacing, angle, zone)
        ok = shapely.contains_xy(county_inner, xy[:, 0], xy[:, 1])
        ok &= ~near_river(xy, RIVER_CLEARANCE_M) & clear_of_bridges(xy, BRIDGE_KEEP_OUT_M)
        xy, ij = xy[ok], ij[ok]
        xy = xy + rng.uniform(-3.0, 3.0, xy.shape)
        node_xy.append(xy)
        node_kind.append(np.full(len(xy), NODE_URBAN if grid_id == 0 else NODE_TOWN))
        node_owner.append(np.full(len(xy), grid_id))
        node_ij.append(ij)

    settlements = place_settlements(
        layout, rng, scale, [urban_zone, *towns.values()], bridge_centres, BRIDGE_KEEP_OUT_M
    )
    hamlets = np.flatnonzero(~settlements.estate)
    node_xy.append(settlements.xy[hamlets])
    node_kind.append(np.full(len(hamlets), NODE_SETTLEMENT))
    node_owner.append(hamlets)
    node_ij.append(np.zeros((len(hamlets), 2), dtype=np.int64))

    zones_outer = shapely.union_all([urban_zone, *towns.values()]).buffer(60.0)
    shapely.prepare(zones_outer)

    def blocked(xy: np.ndarray) -> np.ndarray:
        bad = ~shapely.contains_xy(county_inner, xy[:, 0], xy[:, 1])
        bad |= shapely.contains_xy(zones_outer, xy[:, 0], xy[:, 1])
        bad |= near_river(xy, RIVER_CLEARANCE_M + 10.0)
        bad |= ~clear_of_bridges(xy, BRIDGE_KEEP_OUT_M)
        return bad

    lane_xy, lane_owner = lanes(settlements, rng, scale, blocked)
    node_xy.append(lane_xy)
    node_kind.append(np.full(len(lane_xy), NODE_LANE))
    node_owner.append(lane_owner)
    node_ij.append(np.zeros((len(lane_xy), 2), dtype=np.int64))

    bridge_pairs = []
    first = sum(len(x) for x in node_xy)
    bxy = []
    for b, (centre, normal, urban) in enumerate(sites):
        half = rng.uniform(*BRIDGE_HALF_LENGTH_M) * (1.2 if urban else 1.0)
        bxy += [centre - normal * half, centre + normal * half]
        bridge_pairs.append((first + 2 * b, first + 2 * b + 1))
    node_xy.append(np.array(bxy).reshape(-1, 2))
    node_kind.append(np.full(len(bxy), NODE_BRIDGE))
    node_owner.append(np.repeat(np.arange(len(sites)), 2))
    node_ij.append(np.zeros((len(bxy), 2), dtype=np.int64))

    nodes = np.concatenate(node_xy)
    kind = np.concatenate(node_kind)
    owner = np.concatenate(node_owner)
    ij = np.concatenate(node_ij)

    # Delaunay edges and which of them may carry a road
    edges = _delaunay_edges(nodes)
    lines = shapely.linestrings(np.stack([nodes[edges[:, 0]], nodes[edges[:, 1]]], axis=1))
    lengths = shapely.length(lines)
    at_border = _near(lines, county.exterior, EDGE_CLEARANCE_M)
    at_river = _near(lines, river, EDGE_CLEARANCE_M)
    edge_index = {(int(a), int(b)): e for e, (a, b) in enumerate(edges)}
    is_bridge = np.zeros(len(edges), dtype=bool)
    bridge_of_edge = np.full(len(edges), -1)
    for b, (u, w) in enumerate(bridge_pairs):
        e = edge_index.get((u, w))
        if e is None or at_border[e]:
            raise RuntimeError(f"bridge {b} is not a usable Delaunay edge")
        crossing = shapely.intersection(lines[e], river)
        if crossing.geom_type != "Point":
            raise RuntimeError(f"bridge {b} does not cross 梅江河 exactly once")
        is_bridge[e] = True
        bridge_of_edge[e] = b
    same_grid = (kind[edges[:, 0]] <= NODE_TOWN) & (kind[edges[:, 1]] <= NODE_TOWN)
    same_grid &= owner[edges[:, 0]] == owner[edges[:, 1]]
    lattice_step = np.abs(ij[edges[:, 0]] - ij[edges[:, 1]]).sum(axis=1) == 1
    # inside a street grid only the streets themselves, never a diagonal across a block
    allowed = ~at_border & (~at_river | is_bridge) & ~(same_grid & ~lattice_step)
    lattice = same_grid & lattice_step & allowed

    n = len(nodes)
    usable = np.flatnonzero(allowed)
    n_comp, label = connected_components(
        csr_matrix((np.ones(len(usable)), (edges[usable, 0], edges[usable, 1])), shape=(n, n)), directed=False
    )
    main = np.bincount(label).argmax()
    if n_comp > 1:
        stray = np.flatnonzero((label != main) & (kind == NODE_SETTLEMENT))
        if len(stray):
            move_to_network(layout, settlements, owner[stray], nodes[label == main], rng)
        allowed &= (label[edges[:, 0]] == main) & (label[edges[:, 1]] == main)
        usable = np.flatnonzero(allowed)

    weight = lengths * np.where(lattice, 0.5, 1.0)
    mst = minimum_spanning_tree(csr_matrix((weight[usable], (edges[usable, 0], edges[usable, 1])), shape=(n, n)))
    mst = mst.tocoo()
    selected = lattice | is_bridge
    for a, b in zip(np.minimum(mst.row, mst.col), np.maximum(mst.row, mst.col), strict=True):
        selected[edge_index[(int(a), int(b))]] = True

    cluster = np.where(np.isin(kind, [NODE_SETTLEMENT, NODE_LANE]), owner, -1)
    ca, cb = cluster[edges[:, 0]], cluster[edges[:, 1]]
    hubs = np.isin(kind, [NODE_SETTLEMENT, NODE_TOWN, NODE_URBAN])
    loop_reach = 1500.0 / np.sqrt(scale)
    loop_hub = allowed & ~selected & hubs[edges[:, 0]] & hubs[edges[:, 1]] & ~same_grid & (lengths < loop_reach)
    loop_lane = allowed & ~selected & (ca >= 0) & (cb >= 0) & (ca != cb) & (lengths < 250.0)
    draw = rng.random(len(edges))
    selected |= (loop_hub & (draw < 0.3)) | (loop_lane & (draw < 0.15))

    # routes between township seats
    seat_nodes = _seat_nodes(layout, nodes, kind, owner, ij)
    route_of_edge, route_class, route_names = _routes(layout, nodes, edges, lengths, allowed, selected, seat_nodes)
    selected |= route_of_edge >= 0

    keep = np.flatnonzero(selected)
    return _classify(
        layout,
        rng,
        nodes,
        edges[keep],
        kind,
        owner,
        ij,
        lattice[keep],
        is_bridge[keep],
        bridge_of_edge[keep],
        route_of_edge[keep],
        route_class,
        route_names,
        sites,
        settlements,
        seat_nodes,
    )


def _delaunay_edges(nodes: np.ndarray) -> np.ndarray:
    """The edges (i < j) of the Delaunay triangulation of ``nodes``, sorted."""
    simplices = Delaunay(nodes).simplices
    pairs = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
    pairs.sort(axis=1)
    return np.unique(pairs, axis=0)


def _near(lines: np.ndarray, line, distance: float) -> np.ndarray:
    """Which of ``lines`` come within ``distance`` of ``line`` (cut into segments for speed)."""
    tree = shapely.STRtree(lines)
    hits = tree.query(geo.segments(np.asarray(line.coords)), predicate="dwithin", distance=distance)
    out = np.zeros(len(lines), dtype=bool)
    out[hits[1]] = True
    return out


def _seat_nodes(layout: Layout, nodes, kind, owner, ij) -> np.ndarray:
    out = np.zeros(len(layout.townships), dtype=np.int64)
    for t, township in enumerate(layout.townships):
        if township.kind == "街道":
            candidates = np.flatnonzero(kind == NODE_URBAN)
        else:
            candidates = np.flatnonzero((kind == NODE_TOWN) & (owner == t + 1))
            if not len(candidates):
                candidates = np.flatnonzero(kind != NODE_BRIDGE)
        d = np.hypot(*(nodes[candidates] - layout.seats[t]).T)
        out[t] = candidates[d.argmin()]
    return out


def _routes(layout: Layout, nodes, edges, lengths, allowed, selected, seat_nodes):
    """County and township roads: shortest routes between neighbouring township seats."""
    seats = layout.seats
    urban = np.array([t.kind == "街道" for t in layout.townships])
    tri = Delaunay(seats)
    pairs = set()
    for simplex in tri.simplices:
        for a, b in ((0, 1), (1, 2), (0, 2)):
            i, j = sorted((int(simplex[a]), int(simplex[b])))
            if urban[i] and urban[j]:
                continue
            if np.hypot(*(seats[i] - seats[j])) > 30000.0:
                continue
            pairs.add((i, j))
    pairs = sorted(pairs, key=lambda p: (np.hypot(*(seats[p[0]] - seats[p[1]])), p))
    # the spanning tree of the seat graph is the county-road backbone, the rest are township roads
    parent = list(range(len(seats)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for t in np.flatnonzero(urban):  # the urban seats count as one town
        parent[find(int(t))] = find(int(np.flatnonzero(urban)[0]))
    classes = []
    for i, j in pairs:
        if find(i) != find(j):
            parent[find(i)] = find(j)
            classes.append("county")
        else:
            classes.append("township")
    n = len(nodes)
    usable = np.flatnonzero(allowed)
    weight = lengths[usable] * np.where(selected[usable], 0.7, 1.0)
    graph = csr_matrix((weight, (edges[usable, 0], edges[usable, 1])), shape=(n, n))
    sources_ = sorted({i for i, _ in pairs})
    _, predecessors = dijkstra(
        graph, directed=False, indices=[int(seat_nodes[s]) for s in sources_], return_predecessors=True
    )
    row_of = {s: k for k, s in enumerate(sources_)}
    edge_index = {(int(a), int(b)): e for e, (a, b) in enumerate(edges)}
    route_of_edge = np.full(len(edges), -1)
    names_: list[str] = []
    taken: set[str] = set()
    order = sorted(range(len(pairs)), key=lambda k: (classes[k] != "county", k))
    for k in order:
        i, j = pairs[k]
        name = roadnames.route_name(layout, i, j, taken)
        taken.add(name)
        names_.append(name)
        route = len(names_) - 1
        pred = predecessors[row_of[i]]
        node = int(seat_nodes[j])
        while node != int(seat_nodes[i]):
            prev = int(pred[node])
            if prev < 0:
                raise RuntimeError(f"no road between {layout.townships[i].name} and {layout.townships[j].name}")
            e = edge_index[(min(prev, node), max(prev, node))]
            if route_of_edge[e] < 0:
                route_of_edge[e] = route
            node = prev
    ordered_classes = [classes[k] for k in order]
    return route_of_edge, ordered_classes, names_


# --------------------------------------------------------------------------------------------
# classes, names, naming records


def _classify(
    layout,
    rng,
    nodes,
    edges,
    kind,
    owner,
    ij,
    lattice,
    is_bridge,
    bridge_of_edge,
    route_of_edge,
    route_class,
    route_names,
    sites,
    settlements,
    seat_nodes,
) -> Network:
    m = len(edges)
    road_class = np.empty(m, dtype=object)
    name = np.empty(m, dtype=object)
    a, b = edges[:, 0], edges[:, 1]
    mid = (nodes[a] + nodes[b]) / 2
    village = layout.village_at(mid)
    missing = village < 0
    if missing.any():  # a midpoint exactly on a border: take the village of an end point
        village[missing] = layout.village_at(nodes[a[missing]])

    # 1. street grids
    grid_id = np.where(lattice, owner[a], -1)
    axis = np.where(ij[a, 0] == ij[b, 0], 1, 0)  # 1: runs along j (constant i), 0: runs along i
    line_index = np.where(axis == 1, ij[a, 0], ij[a, 1])
    urban_line_names = roadnames.urban_street_names(rng, grid_id, axis, line_index, road_class, name)
    for t in sorted(set(int(g) for g in grid_id[grid_id > 0])):
        roadnames.town_street_names(
            layout.townships[t - 1].short_name, grid_id == t, axis, line_index, road_class, name
        )

    # 2. routes
    on_route = (route_of_edge >= 0) & ~lattice
    for e in np.flatnonzero(on_route):
        road_class[e] = route_class[route_of_edge[e]]
        name[e] = route_names[route_of_edge[e]]

    # 3. bridges
    bridge_names = roadnames.bridge_names(layout, sites, rng)
    for e in np.flatnonzero(is_bridge):
        site = int(bridge_of_edge[e])
        name[e] = bridge_names[site]
        if sites[site][2]:
            road_class[e] = "urban_arterial" if site % 2 == 0 else "urban_secondary"
        elif route_of_edge[e] >= 0:
            road_class[e] = route_class[route_of_edge[e]]
        else:
            road_class[e] = "village"

    # 4. lanes and village roads
    cluster = np.where(np.isin(kind, [NODE_SETTLEMENT, NODE_LANE]), owner, -1)
    rest = np.flatnonzero(name == None)  # noqa: E711 (object array)
    for e in rest:
        ca, cb = cluster[a[e]], cluster[b[e]]
        if ca >= 0 and ca == cb:
            s = int(ca)
            road_class[e] = "path"
            name[e] = f"{layout.villages[settlements.village[s]].name}{settlements.name[s]}便道"
        else:
            v = layout.villages[village[e]]
            road_class[e] = "village"
            name[e] = f"{v.short_name}村道" if v.kind == "村" else f"{v.short_name}社区路"

    # widths: one per road name
    width = np.zeros(m, dtype=np.float32)
    width_of: dict[tuple[str, str], float] = {}
    for e in range(m):
        key = (name[e], road_class[e])
        if key not in width_of:
            lo, hi = WIDTH_M[road_class[e]]
            width_of[key] = round(float(rng.uniform(lo, hi)) * 2) / 2
        width[e] = width_of[key]

    named_on, approval_no, former = roadnames.naming_records(rng, nodes, edges, name, urban_line_names)
    return Network(
        nodes=nodes,
        edges=edges,
        road_class=list(road_class),
        name=list(name),
        is_bridge=is_bridge,
        width_m=width,
        named_on=named_on,
        approval_no=approval_no,
        former_names=former,
        settlements=settlements,
        seat_nodes=seat_nodes,
        bridge_names=bridge_names,
    )
