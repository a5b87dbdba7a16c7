"""Geometry helpers for the demo builder: CRS conversion, sampling, and exact planar partitions.

All construction happens in EPSG:4545 (CGCS2000 / 3-degree Gauss-Kruger CM 108E, metres); the
frames are converted to EPSG:4490 once, at the end. Coordinates that are vertices of the real county
outline are mapped back to their original EPSG:4490 values exactly, so that the synthetic polygons
meet the real outline without sub-millimetre slivers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import shapely
from pyproj import Transformer

CRS_STORAGE = 4490  # CGCS2000 geographic: what the frames are stored in
CRS_METRIC = 4545  # CGCS2000 / 3-degree GK CM 108E: where lengths, areas and distances are measured
GRID_M = 0.001  # precision (m) of the noded linework that the partitions are built from

_TO_METRIC = Transformer.from_crs(CRS_STORAGE, CRS_METRIC, always_xy=True)
_TO_STORAGE = Transformer.from_crs(CRS_METRIC, CRS_STORAGE, always_xy=True)


def xy_to_metric(xy: np.ndarray) -> np.ndarray:
    """(n, 2) lon/lat in EPSG:4490 -> (n, 2) x/y in EPSG:4545 metres."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    x, y = _TO_METRIC.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def xy_to_storage(xy: np.ndarray) -> np.ndarray:
    """(n, 2) x/y in EPSG:4545 metres -> (n, 2) lon/lat in EPSG:4490."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    x, y = _TO_STORAGE.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def to_metric(geom):
    """A geometry (or array of geometries) in EPSG:4490 -> EPSG:4545."""
    return shapely.transform(geom, xy_to_metric)


class StorageTransform:
    """EPSG:4545 -> EPSG:4490, mapping known vertices (the county outline) back exactly."""

    def __init__(self, exact: dict[tuple[float, float], tuple[float, float]]):
        self.exact = exact

    def coords(self, xy: np.ndarray) -> np.ndarray:
        out = xy_to_storage(xy)
        if self.exact:
            for i, (x, y) in enumerate(np.asarray(xy)):
                hit = self.exact.get((x, y))
                if hit is not None:
                    out[i] = hit
        return out

    def __call__(self, geom):
        return shapely.transform(geom, self.coords)


def sample_in_polygon(polygon, n: int, rng: np.random.Generator, *, max_rounds: int = 200) -> np.ndarray:
    """``n`` points drawn uniformly inside ``polygon`` (rejection sampling), as an (n, 2) array."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    found: list[np.ndarray] = []
    count = 0
    fill = max(polygon.area / ((maxx - minx) * (maxy - miny)), 0.05)
    for _ in range(max_rounds):
        batch = int((n - count) / fill * 1.3) + 16
        x = rng.uniform(minx, maxx, batch)
        y = rng.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(polygon, x, y)
        pts = np.column_stack([x[inside], y[inside]])
        found.append(pts)
        count += len(pts)
        if count >= n:
            break
    if count < n:
        raise ValueError(f"could not sample {n} points inside a polygon of area {polygon.area:.1f} m2")
    return np.concatenate(found)[:n]


def lloyd_centres(
    polygon,
    n: int,
    rng: np.random.Generator,
    *,
    fixed: np.ndarray | None = None,
    samples_per_centre: int = 120,
    iterations: int = 25,
) -> np.ndarray:
    """``n`` well-spread centres inside ``polygon`` (k-means on uniform samples, Lloyd's algorithm).

    ``fixed`` (optional, one point) is kept as centre 0. Returns an (n, 2) array; every centre lies
    inside the polygon (a centre that drifts out is replaced by its nearest sample).
    """
    samples = sample_in_polygon(polygon, max(n * samples_per_centre, 200), rng)
    centres = samples[:n].copy()
    if fixed is not None:
        centres[0] = fixed
    for _ in range(iterations):
        d2 = ((samples[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        nearest = d2.argmin(axis=1)
        for k in range(n):
            if fixed is not None and k == 0:
                continue
            members = samples[nearest == k]
            if len(members):
                centres[k] = members.mean(axis=0)
    inside = shapely.contains_xy(polygon, centres[:, 0], centres[:, 1])
    for k in np.flatnonzero(~inside):
        d2 = ((samples - centres[k]) ** 2).sum(axis=1)
        centres[k] = samples[d2.argmin()]
    return centres


def voronoi_ridges(points: np.ndarray, within) -> list:
    """The Voronoi edges of ``points`` that lie inside polygon ``within``, as a list of LineStrings."""
    if len(points) < 2:
        return []
    edges = shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=within.envelope.buffer(1000), only_edges=True
    )
    clipped = shapely.intersection(edges, within)
    return [g for g in shapely.get_parts(clipped) if g.geom_type == "LineString" and g.length > 0]


def snap_ends_to_vertices(lines: Sequence, ring, vertices: np.ndarray, tolerance: float = 1e-4) -> list:
    """Move line end points that lie on ``ring`` onto the nearest of ``vertices`` (the ring's own).

    Keeps the partition's outer edge made of the ring's original vertices only.
    """
    out = []
    for line in lines:
        coords = np.asarray(line.coords)
        for end in (0, -1):
            if shapely.distance(shapely.Point(coords[end]), ring) <= tolerance:
                d2 = ((vertices - coords[end]) ** 2).sum(axis=1)
                coords[end] = vertices[d2.argmin()]
        snapped = shapely.LineString(coords)
        if snapped.length > 0:
            out.append(snapped)
    return out


class Partition:
    """Faces of a noded planar arrangement, each owned by one region.

    Build with ``Partition(linework, domain)``; the faces cover ``domain`` exactly (up to GRID_M).
    Assign owners with ``assign(owners)``, fix non-contiguous regions with ``make_contiguous``,
    then read ``regions()`` and ``shared_edges()``. Faces share their edges bit for bit, so the
    region polygons tile without gaps or overlaps and the shared borders are exact.
    """

    def __init__(self, linework: Sequence, domain):
        noded = shapely.union_all(np.asarray(list(linework), dtype=object), grid_size=GRID_M)
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        reps = shapely.point_on_surface(faces)
        keep = shapely.contains(domain, reps)
        self.faces = faces[keep]
        self.reps = np.array([[p.x, p.y] for p in reps[keep]])
        self.areas = shapely.area(self.faces)
        self.owner = np.full(len(self.faces), -1, dtype=np.int64)
        self._edges = self._edge_map()
        self._adjacency = self._face_adjacency()

    def _edge_map(self) -> dict[tuple, list[int]]:
        edges: dict[tuple, list[int]] = {}
        for i, face in enumerate(self.faces):
            for ring in [face.exterior, *face.interiors]:
                coords = [tuple(c) for c in np.asarray(ring.coords)]
                for a, b in zip(coords[:-1], coords[1:], strict=True):
                    key = (a, b) if a <= b else (b, a)
                    edges.setdefault(key, []).append(i)
        return edges

    def _face_adjacency(self) -> dict[tuple[int, int], float]:
        shared: dict[tuple[int, int], float] = {}
        for (a, b), faces in self._edges.items():
            if len(faces) == 2 and faces[0] != faces[1]:
                i, j = sorted(faces)
                length = float(np.hypot(a[0] - b[0], a[1] - b[1]))
                shared[(i, j)] = shared.get((i, j), 0.0) + length
        return shared

    def assign(self, owner_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """Set each face's owner from its representative point: ``owner_of((n, 2) points) -> (n,) ints``."""
        self.owner = np.asarray(owner_of(self.reps), dtype=np.int64)

    def make_contiguous(self, group: np.ndarray | None = None, max_rounds: int = 20) -> None:
        """Give every detached piece of a region to the neighbour it shares the longest border with.

        ``group`` (optional, indexed by owner) restricts the takers to regions of the same group
        (villages of the same township).
        """
        for _ in range(max_rounds):
            changed = False
            for region in np.unique(self.owner):
                members = np.flatnonzero(self.owner == region)
                if len(members) <= 1:
                    continue
                components = self._components(members)
                if len(components) <= 1:
                    continue
                components.sort(key=lambda comp: -self.areas[comp].sum())
                for comp in components[1:]:
                    taker = self._best_neighbour(comp, region, group)
                    if taker is not None:
                        self.owner[comp] = taker
                        changed = True
            if not changed:
                return

    def _components(self, members: np.ndarray) -> list[list[int]]:
        member_set = set(int(m) for m in members)
        parent = {m: m for m in member_set}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, j in self._adjacency:
            if i in member_set and j in member_set:
                parent[find(i)] = find(j)
        comps: dict[int, list[int]] = {}
        for m in sorted(member_set):
            comps.setdefault(find(m), []).append(m)
        return list(comps.values())

    def _best_neighbour(self, comp: list[int], region: int, group: np.ndarray | None) -> int | None:
        comp_set = set(comp)
        lengths: dict[int, float] = {}
        for (i, j), length in self._adjacency.items():
            if (i in comp_set) == (j in comp_set):
                continue
            other = j if i in comp_set else i
            taker = int(self.owner[other])
            if taker == region or (group is not None and group[taker] != group[region]):
                continue
            lengths[taker] = lengths.get(taker, 0.0) + length
        if not lengths:
            return None
        return max(sorted(lengths), key=lambda t: lengths[t])

    def regions(self, n: int) -> list:
        """The union of each owner's faces, for owners 0..n-1 (None where an owner has no face)."""
        out = []
        for region in range(n):
            members = np.flatnonzero(self.owner == region)
            out.append(shapely.union_all(self.faces[members]) if len(members) else None)
        return out

    def shared_edges(self, key: Callable[[int], int]) -> dict[tuple[int, int], list[tuple]]:
        """Edges between faces whose ``key(owner)`` differ, grouped by the (smaller, larger) key pair."""
        out: dict[tuple[int, int], list[tuple]] = {}
        for (a, b), faces in self._edges.items():
            if len(faces) != 2:
                continue
            ka, kb = key(int(self.owner[faces[0]])), key(int(self.owner[faces[1]]))
            if ka == kb:
                continue
            out.setdefault((min(ka, kb), max(ka, kb)), []).append((a, b))
        return out


def near_line(xy: np.ndarray, line, distance: float) -> np.ndarray:
    """Which points of an (n, 2) array lie within ``distance`` of ``line`` (fast for long lines)."""
    if not len(xy):
        return np.zeros(0, dtype=bool)
    tree = shapely.STRtree(shapely.points(xy))
    hits = tree.query(segments(np.asarray(line.coords)), predicate="dwithin", distance=distance)
    out = np.zeros(len(xy), dtype=bool)
    out[hits[1]] = True
    return out


def segments(coords: np.ndarray) -> np.ndarray:
    """The straight segments of a coordinate sequence, as an array of 2-point LineStrings."""
    return shapely.linestrings(np.stack([coords[:-1], coords[1:]], axis=1))
