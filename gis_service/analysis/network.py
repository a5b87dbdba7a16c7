"""The routable network in the database, built with pgRouting, and the in-process caches keyed by data versions.

``ensure_network(conn)`` returns the graph for the data ``conn`` sees. ``network_state`` records the ``roads``
version, SRID and speeds the ``network_edges``/``network_nodes`` tables were built from; when they differ from the
current ones the tables are rebuilt:

- in a transaction of their own (committed, under an advisory lock) when ``conn`` sees the committed roads;
- inside ``conn``'s transaction when it holds uncommitted road changes (a test, an import being checked).

Versions come from ``data_versions`` (bumped by statement-level triggers, values from a sequence, so never
reused), so a cached graph, point join or answer can never outlive the data it was computed from. Each worker
process keeps its own caches (:data:`GRAPHS`, :data:`POINTS`, :data:`RESULTS`), all keyed by those versions, so
that a change made through any worker, host or command is seen by every one at its next request. The graph's
arrays themselves are shared: saved once in the data folder and memory-mapped (:mod:`.graphfiles`,
:func:`keep_graphs_in`). Points are joined to the network in PostGIS (the GiST index of ``network_edges``), so no
worker holds the edges' geometry.

With several counties in one database (a province), an analysis for one county (``county=``) reads that county's
settlements and facilities only and searches a region of the graph (:func:`county_region`): the nodes within the
reach of the travel limit around them, so its cost follows the county's size, not the database's.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gis_service.analysis import graphfiles
from gis_service.analysis.graph import EdgePoints, Region, RoadGraph
from gis_service.analysis.travel import COST_TOLERANCE_S, AnalysisSettings, Travel
from gis_service.errors import InvalidInputError, NetworkBuildingError, NoNetworkError
from gis_service.layers.base import Layer, Population
from gis_service.layers.registry import DEMAND_LAYER, DIVISIONS, ROADS
from gis_service.store import features as feature_store

_ADVISORY_LOCK = 0x6E6574776F726B  # "network"


class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class AnswerCache:
    """The analyses' answers, least recently used out first, bounded in number and in bytes. Thread-safe.

    An answer's size depends on the data and the parameters: a coverage answer of the demo county holds 1-2 MB as
    Python objects, the service areas of its 193 elder-care facilities 8 MB within 15 minutes' walk and 85 MB within
    30 minutes by bicycle, so 32 answers bounded only in number could take gigabytes. They are kept pickled: 5 to 8
    times smaller than the objects, of an exact size, and each hit is a copy of its own that a caller may change.
    An answer larger than a quarter of ``max_bytes`` is not kept: it would push most of the others out.
    """

    def __init__(self, *, max_entries: int, max_bytes: int):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """Bytes the kept answers take, pickled."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> dict | None:
        with self._lock:
            data = self._items.get(key)
            if data is None:
                return None
            self._items.move_to_end(key)
        return pickle.loads(data)

    def put(self, key: Hashable, answer: dict) -> None:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        if self.max_entries <= 0 or len(data) > self.max_bytes // 4:
            return
        with self._lock:
            replaced = self._items.pop(key, None)
            self._bytes += len(data) - (len(replaced) if replaced is not None else 0)
            self._items[key] = data
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


GRAPHS = LRU(4)
#: Parts of the graph cut out for one county's analyses (:func:`county_region`).
REGIONS = LRU(16)
POINTS = LRU(32)
RESULTS = AnswerCache(max_entries=32, max_bytes=64 * 2**20)


class BuildGate:
    """Whether this process is building the network (in a transaction of its own) or loading its graph now.

    Requests that need the network look here before they take a database session (``wait_for_network_build`` in
    the API): while a build runs, they wait without one. Otherwise every session would soon be held by a request
    waiting for the build, and tiles and searches would wait too: at demo scale 10 (a 30 s build) 50 clients got
    nothing for 20 s and 50 requests timed out.
    """

    def __init__(self) -> None:
        self._builds = 0
        self._lock = threading.Lock()
        #: Requests waiting for the build to end (counted in the event loop by ``wait_for_network_build``).
        self.waiting = 0

    @property
    def busy(self) -> bool:
        return self._builds > 0

    def begin(self) -> None:
        """A build starts (busy until the matching :meth:`end`)."""
        with self._lock:
            self._builds += 1

    def end(self) -> None:
        with self._lock:
            self._builds -= 1

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()


BUILD_GATE = BuildGate()
_GRAPH_LOAD = threading.Lock()
#: Where graphs are saved and memory-mapped from (``DATA_DIR/network``); None: each process reads its own copy.
_graph_root: Path | None = None


def keep_graphs_in(folder: Path | None) -> None:
    """Save road graphs in ``folder`` and memory-map them from there (this process's setting; ``serve`` and its
    workers pass ``DATA_DIR/network``), or keep them in memory only (None)."""
    global _graph_root
    _graph_root = Path(folder) if folder is not None else None


def clear_caches() -> None:
    """Forget every cached graph, point join and answer (the benchmark uses it to time cold runs)."""
    for cache in (GRAPHS, REGIONS, POINTS, RESULTS):
        cache.clear()


@dataclass(frozen=True)
class Network:
    """The graph for one state of the data. ``versions``: data version per table as ``conn`` saw them."""

    instance: str
    versions: dict[str, int]
    srid: int
    graph: RoadGraph
    state: dict

    def key(self, *tables: str) -> tuple:
        """Cache key naming this database and the versions of ``tables``."""
        return (self.instance, self.srid) + tuple((t, self.versions.get(t)) for t in sorted(tables))


def data_versions(conn: sa.Connection) -> dict[str, int]:
    return feature_store.data_versions(conn)


def database_instance(conn: sa.Connection) -> str:
    """This database's id (made when its schema was), which caches of what it holds are keyed by."""
    return conn.execute(sa.text("SELECT instance_id::text FROM network_state")).scalar_one()


def _state(conn: sa.Connection) -> dict:
    row = conn.execute(sa.text(
        "SELECT instance_id::text AS instance, roads_version, measure_srid, speeds, edges, nodes, components, "
        "built_at, build_seconds FROM network_state")).mappings().one()
    return dict(row)


def _fresh(state: dict, roads_version: int, srid: int, speeds: dict) -> bool:
    return state["roads_version"] == roads_version and state["measure_srid"] == srid and state["speeds"] == speeds


def ensure_network(conn: sa.Connection, *, measure_srid: int, settings: AnalysisSettings) -> Network:
    """The network for the data ``conn`` sees, rebuilding the tables if roads, SRID or speeds changed. On a hot
    standby, which cannot write, a network not yet rebuilt on the primary raises NetworkBuildingError (503)."""
    versions = data_versions(conn)
    speeds = settings.fingerprint()
    state = _state(conn)
    roads_version = versions["roads"]
    if not _fresh(state, roads_version, measure_srid, speeds):
        if conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar():
            raise NetworkBuildingError(state["build_seconds"] or 5)
        if _committed_roads_version(conn) == roads_version:
            engine = conn.engine
            with BUILD_GATE.building(), engine.begin() as own:
                own.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
                own_versions = data_versions(own)
                if own_versions["roads"] == roads_version and not _fresh(_state(own), roads_version,
                                                                        measure_srid, speeds):
                    rebuild_network(own, measure_srid=measure_srid, settings=settings)
        if not _fresh(_state(conn), roads_version, measure_srid, speeds):
            rebuild_network(conn, measure_srid=measure_srid, settings=settings)
        state = _state(conn)
    key = _graph_key(state, roads_version, measure_srid, speeds)
    graph = GRAPHS.get(key)
    if graph is None:
        # one thread loads it (seconds at scale 10), the others that missed wait for that one
        with BUILD_GATE.building(), _GRAPH_LOAD:
            graph = GRAPHS.get(key)
            if graph is None:
                graph = load_graph(conn, graphfiles.folder_name(state["instance"], roads_version, measure_srid,
                                                                speeds))
                GRAPHS.put(key, graph)
    if graph.n_edges == 0:
        raise NoNetworkError("the roads layer is empty: there is no network to measure along; import roads first")
    return Network(instance=state["instance"], versions=versions, srid=measure_srid, graph=graph,
                   state={k: state[k] for k in ("edges", "nodes", "components", "build_seconds")}
                   | {"built_at": state["built_at"].isoformat() if state["built_at"] else None})


def _graph_key(state: dict, roads_version: int, measure_srid: int, speeds: dict) -> tuple:
    return (state["instance"], roads_version, measure_srid, json.dumps(speeds, sort_keys=True))


def network_ready(conn: sa.Connection, *, measure_srid: int, settings: AnalysisSettings) -> tuple[bool, float]:
    """Whether an analysis would find the network built for the committed roads and its graph loaded in this
    process (one query), and how long the last build took (seconds)."""
    versions = data_versions(conn)
    speeds = settings.fingerprint()
    state = _state(conn)
    ready = _fresh(state, versions["roads"], measure_srid, speeds) and GRAPHS.get(
        _graph_key(state, versions["roads"], measure_srid, speeds)) is not None
    return ready, float(state["build_seconds"] or 0.0)
def ensure_network_if_roads(conn: sa.Connection, *, measure_srid: int, settings: AnalysisSettings) -> None:
    """:func:`ensure_network` when there are roads to build it from (the start-up warm-up); else nothing."""
    if feature_store.has_features(conn, ROADS):
        ensure_network(conn, measure_srid=measure_srid, settings=settings)


def _committed_roads_version(conn: sa.Connection) -> int | None:
    """The roads version a fresh connection sees (the committed one)."""
    with conn.engine.connect() as other:
        return other.execute(sa.text("SELECT version FROM data_versions WHERE table_name = 'roads'")).scalar()


#: The build's working tables, temporary (in this session, not written to the WAL) and dropped when it ends.
_BUILD_SEGMENTS, _BUILD_VERTICES, _BUILD_TOPOLOGY = "network_build_segments", "network_build_vertices", \
    "network_build_topology"

#: Each road in EPSG:``srid`` with its length and the coordinates of its two ends.
_SEGMENTS_SQL = f"""
CREATE TEMP TABLE {_BUILD_SEGMENTS} ON COMMIT DROP AS
SELECT r.id, r.road_class, r.is_bridge, g.geom, ST_Length(g.geom) AS length_m,
       ST_X(ST_StartPoint(g.geom)) AS x0, ST_Y(ST_StartPoint(g.geom)) AS y0,
       ST_X(ST_EndPoint(g.geom)) AS x1, ST_Y(ST_EndPoint(g.geom)) AS y1
FROM roads r CROSS JOIN LATERAL (SELECT ST_Transform(r.geom, :srid) AS geom) g
WHERE ST_Length(g.geom) > 0
"""
#: The vertices as ``pgr_extractVertices`` makes them (pgRouting 3.4: its SQL groups the end points by exact
#: equality and numbers them by x, then y): the same ids, found without its arrays of edges per vertex, whose
#: unnesting and joining back to every edge cost more than the rest of the build.
_VERTICES_SQL = f"""
CREATE TEMP TABLE {_BUILD_VERTICES} ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY x, y) AS id, x, y
FROM (SELECT x0 AS x, y0 AS y FROM {_BUILD_SEGMENTS} UNION SELECT x1, y1 FROM {_BUILD_SEGMENTS}) ends
"""
_TOPOLOGY_SQL = f"""
CREATE TEMP TABLE {_BUILD_TOPOLOGY} ON COMMIT DROP AS
SELECT s.id, a.id AS source, b.id AS target, s.length_m
FROM {_BUILD_SEGMENTS} s
JOIN {_BUILD_VERTICES} a ON a.x = s.x0 AND a.y = s.y0
JOIN {_BUILD_VERTICES} b ON b.x = s.x1 AND b.y = s.y1
"""
_NODES_SQL = f"""
INSERT INTO network_nodes (id, component, geom)
SELECT v.id, c.component, ST_SetSRID(ST_MakePoint(v.x, v.y), :srid)
FROM {_BUILD_VERTICES} v
JOIN pgr_connectedComponents(
    'SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM {_BUILD_TOPOLOGY}') c
  ON c.node = v.id
ORDER BY v.id
"""
_EDGES_SQL = f"""
INSERT INTO network_edges (id, road_id, road_class, is_bridge, source, target, length_m, cost_walk_s, cost_cycle_s,
                           cost_drive_s, geom)
SELECT s.id, s.id, s.road_class, s.is_bridge, t.source, t.target, s.length_m,
       s.length_m / ((CAST(:speeds AS jsonb) -> 'walk' ->> s.road_class)::float8 / 3.6),
       s.length_m / ((CAST(:speeds AS jsonb) -> 'cycle' ->> s.road_class)::float8 / 3.6),
       s.length_m / ((CAST(:speeds AS jsonb) -> 'drive' ->> s.road_class)::float8 / 3.6),
       s.geom
FROM {_BUILD_SEGMENTS} s JOIN {_BUILD_TOPOLOGY} t USING (id)
ORDER BY s.id
"""


def rebuild_network(conn: sa.Connection, *, measure_srid: int, settings: AnalysisSettings) -> float:
    """Rebuild ``network_edges`` and ``network_nodes`` from ``roads`` in ``conn``'s transaction; return seconds.

    Edges are the road segments in EPSG:``measure_srid`` with their length in metres and travel time per mode;
    vertices are the segments' end points, equal end points one vertex (segments meet only there), numbered as
    pgRouting's ``pgr_extractVertices`` numbers them; components come from ``pgr_connectedComponents``.

    The work is done in temporary tables and each row of the two tables is written once, already whole: inserting
    the edges, then setting every edge's vertices and every node's component (as the build did before) wrote each
    row and its index entries twice, and read the edges back, geometry and all, from a table that at 40 counties
    no longer fits in shared buffers; the build grew 86-fold for 40 times the roads.
    """
    started = time.perf_counter()
    speeds = settings.fingerprint()
    params = {"speeds": json.dumps(speeds), "srid": measure_srid}
    # bounded work (the whole road layer once), not a user's heavy query: the request timeout does not apply
    conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
    conn.execute(sa.text("DELETE FROM network_edges"))
    conn.execute(sa.text("DELETE FROM network_nodes"))
    for statement in (_SEGMENTS_SQL, _VERTICES_SQL, _TOPOLOGY_SQL, _NODES_SQL, _EDGES_SQL):
        conn.execute(sa.text(statement), params)
    counts = conn.execute(sa.text(f"""
        SELECT (SELECT count(*) FROM {_BUILD_TOPOLOGY}) AS edges, (SELECT count(*) FROM {_BUILD_VERTICES}) AS nodes,
               (SELECT count(DISTINCT component) FROM network_nodes) AS components""")).mappings().one()
    # dropped now, not only at commit: the network may be rebuilt again in this transaction
    conn.execute(sa.text(f"DROP TABLE {_BUILD_SEGMENTS}, {_BUILD_VERTICES}, {_BUILD_TOPOLOGY}"))
    seconds = time.perf_counter() - started
    conn.execute(sa.text("""
        UPDATE network_state SET
            roads_version = (SELECT version FROM data_versions WHERE table_name = 'roads'),
            measure_srid = :srid, speeds = CAST(:speeds AS jsonb), edges = :edges, nodes = :nodes,
            components = :components, built_at = now(), build_seconds = :seconds
    """), {**params, **counts, "seconds": seconds})
    return seconds


def load_graph(conn: sa.Connection, name: str | None = None) -> RoadGraph:
    """The graph as the ``network_edges`` table holds it: memory-mapped from the data folder (saved there first if
    needed) when graphs are kept there and ``name`` says which it is, else read into this process."""
    if _graph_root is not None and name is not None:
        return graphfiles.mapped_graph(_graph_root, name, conn)
    return graphfiles.read_graph(conn)


# -- points joined to the network ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class JoinedPoints:
    """Features of one layer with their join to the network. ``frame``: one row per feature (id, attributes,
    ``x``/``y`` in the measure CRS, ``lon``/``lat`` in EPSG:4326); ``points``: their :class:`EdgePoints`."""

    frame: pd.DataFrame
    points: EdgePoints

    def subset(self, mask: np.ndarray) -> JoinedPoints:
        index = np.flatnonzero(np.asarray(mask))
        return JoinedPoints(self.frame.iloc[index].reset_index(drop=True), self.points.take(index))

    @property
    def xy(self) -> np.ndarray:
        return self.frame[["x", "y"]].to_numpy(dtype=float)


#: Each feature with its coordinates and the nearest point of the nearest network edge, found in PostGIS with
#: the GiST index of ``network_edges`` (a nearest-neighbour scan per point; 0.25 s for the 2,902 settlements of
#: the demo county): of the 8 nearest edges, the nearest, and of equally near ones the lowest id, as
#: :meth:`RoadGraph.join` does in memory.
_POINTS_SQL = """
SELECT {columns}, ST_X(p.g) AS x, ST_Y(p.g) AS y,
       ST_X(ST_Transform(f.geom, 4326)) AS lon, ST_Y(ST_Transform(f.geom, 4326)) AS lat,
       near.id AS edge_id, ST_LineLocatePoint(near.geom, p.g) AS frac, near.distance AS connector_m
FROM {table} f
CROSS JOIN LATERAL (SELECT ST_Transform(f.geom, :srid) AS g) p
CROSS JOIN LATERAL (
    SELECT id, geom, distance FROM (
        SELECT id, geom, geom <-> p.g AS distance FROM network_edges ORDER BY geom <-> p.g LIMIT 8) candidates
    ORDER BY distance, id LIMIT 1) near
{joins}
{where}
ORDER BY f.id
"""


def _points_sql(layer: Layer, county: str | None) -> str:
    """The features of ``layer`` that count (of ``county`` when given), with the columns its part in the network
    says the analyses read (every identifier from the registry): a demand layer's features with their township
    (the parent of their village), a facility layer's with their ``kind`` (NULL where the layer has one kind)."""
    role = layer.network
    columns = ["f.id", *(f"f.{layer.field_named(name).name}" for name in role.columns)]
    joins = ""
    if role.role == "demand":
        joins = (f"LEFT JOIN {DIVISIONS.table} v ON v.code = f.{layer.field_named(role.village).name} "
                 f"AND v.{DIVISIONS.validity[1]} IS NULL")
        columns += ["v.parent_code AS township_code", f"v.{DIVISIONS.field_named('urban_rural').name} AS urban_rural"]
    elif role.kind is None:
        columns.insert(2, "NULL::text AS kind")
    where = [feature_store.counted_sql(layer, "f")] if role.counts else []
    if county is not None:
        where.append(_in_county(role.village or feature_store.division_field_of(layer), county))
    return _POINTS_SQL.format(columns=", ".join(columns), table=layer.table, joins=joins,
                              where=f"WHERE {' AND '.join(where)}" if where else "")


def check_county(county: str | None, conn: sa.Connection | None = None) -> str | None:
    """A county's 6-digit code (or its 12-digit statistical code), as 6 digits; None or empty: every county. With
    ``conn``, the county must be in the database."""
    if county in (None, ""):
        return None
    if not (county.isascii() and county.isdigit() and (len(county) == 6 or (len(county) == 12
                                                                            and county.endswith("000000")))):
        raise InvalidInputError(f"county must be a county's 6-digit code, e.g. 500241 (or its 12-digit code "
                                f"500241000000); got {county[:40]!r}")
    if conn is not None:
        known = [row["code"][:6] for row in feature_store.read_records(conn, DIVISIONS, ["code"],
                                                                       equals={"level": "county"}, order_by=["code"])]
        if county[:6] not in known:
            raise InvalidInputError(f"county {county[:6]} is not in the database; the counties are: "
                                    f"{', '.join(known) or 'none'}")
    return county[:6]


def _in_county(code_column: str, county: str | None) -> str:
    """SQL condition: the feature lies in ``county`` (by its division code, or without one by the county's
    polygon); TRUE for every county."""
    if county is None:
        return "TRUE"
    return (f"(f.{code_column} LIKE :county_prefix OR (f.{code_column} IS NULL AND ST_Intersects(f.geom, ("
            f"SELECT c.geom FROM {DIVISIONS.table} c WHERE c.code = :county_code "
            f"AND c.{DIVISIONS.validity[1]} IS NULL))))")


def _join(conn: sa.Connection, network: Network, key: tuple, sql: str, county: str | None) -> JoinedPoints:
    """Read the features (coordinates in the measure CRS) with the nearest point on the nearest edge; kept per
    data versions."""
    cached = POINTS.get(key)
    if cached is not None:
        return cached
    params = {"srid": network.srid}
    if county is not None:
        params |= {"county_prefix": f"{county}%", "county_code": county.ljust(12, "0")}
    result = conn.execute(sa.text(sql), params)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    points = EdgePoints(network.graph.edge_index(frame["edge_id"].to_numpy(dtype=np.int64)),
                        np.clip(frame["frac"].to_numpy(dtype=float), 0.0, 1.0),
                        frame["connector_m"].to_numpy(dtype=float))
    joined = JoinedPoints(frame.drop(columns=["edge_id", "frac", "connector_m"]), points)
    POINTS.put(key, joined)
    return joined


def settlements(conn: sa.Connection, network: Network, county: str | None = None) -> JoinedPoints:
    """Every settlement (the demand layer's features; of ``county``, when given) joined to the network, with its
    households, village and township."""
    layer = DEMAND_LAYER
    tables = (ROADS.table, layer.table, DIVISIONS.table)
    return _join(conn, network, (layer.id, county) + network.key(*tables), _points_sql(layer, county), county)


def of_population(people: JoinedPoints, population: Population) -> JoinedPoints:
    """The settlements of ``population`` (those whose village is urban or rural, as it says; all for everyone)."""
    if population.urban_rural is None:
        return people
    return people.subset(people.frame["urban_rural"].to_numpy() == population.urban_rural)


def facilities(conn: sa.Connection, network: Network, layer: Layer, kind: str | None,
               county: str | None = None) -> JoinedPoints:
    """The facilities of ``layer`` that count (the existing ones; of ``kind``, in ``county``, when given) joined to
    the network."""
    tables = (ROADS.table, layer.table, DIVISIONS.table)
    joined = _join(conn, network, (layer.id, county) + network.key(*tables), _points_sql(layer, county), county)
    if kind is None:
        return joined
    return joined.subset(joined.frame["kind"].to_numpy() == kind)


def with_township(conn: sa.Connection, sites: JoinedPoints, layer: Layer) -> JoinedPoints:
    """``sites`` (features of ``layer``) with ``township_code``: the township each lies in, as the indicators count
    it (:func:`~gis_service.store.features.counted_with_township`: its division's, or the township polygon's)."""
    townships = feature_store.counted_with_township(conn, layer)
    by_id = dict(zip(townships["id"].astype(int), townships["township_code"])) if len(townships) else {}
    codes = [by_id.get(int(i)) for i in sites.frame["id"]] if len(sites.frame) else []
    return JoinedPoints(sites.frame.assign(township_code=pd.Series(codes, dtype=object)), sites.points)


def places_at(conn: sa.Connection, xy: np.ndarray, measure_srid: int) -> list[dict]:
    """For points in EPSG:``measure_srid`` (metres): lon and lat (EPSG:4326) and the current village (code, name)
    and township code each lies in (None outside every village)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if not len(xy):
        return []
    rows = conn.execute(sa.text("""
        SELECT ST_X(g.p) AS lon, ST_Y(g.p) AS lat, v.code AS village_code, v.name AS village_name,
               v.parent_code AS township_code
        FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i)
        CROSS JOIN LATERAL (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(t.x, t.y), :srid), 4326) AS p) g
        LEFT JOIN LATERAL (SELECT code, name, parent_code FROM admin_divisions d
                           WHERE d.level = 'village' AND d.valid_to IS NULL
                             AND ST_Contains(d.geom, ST_Transform(g.p, 4490)) ORDER BY code LIMIT 1) v ON true
        ORDER BY t.i"""), {"xs": xy[:, 0].tolist(), "ys": xy[:, 1].tolist(), "srid": measure_srid}).mappings().all()
    return [dict(r) for r in rows]
def reach_m(travel: Travel) -> float:
    """The farthest, in a straight line, anything can be within ``travel``'s limit: the limit at the fastest speed
    (a road is never shorter than the straight line between its ends), in metres."""
    return (travel.limit_s + COST_TOLERANCE_S) * max(travel.speeds_kmh_by_road_class.values()) / 3.6 + 1.0


def county_region(network: Network, county: str, joined: list[JoinedPoints], travel: Travel) -> Region:
    """The part of the graph one county's analysis needs: every node within ``reach_m(travel)`` of the box around
    the county's points (``joined``), and the edges the points lie on. Any node reachable within the limit from a
    point inside the box lies inside it, and so does every node on the way, so costs within the limit are those
    of the whole graph; a cost beyond it (the distance of an unserved settlement) is measured along the roads of the
    region. Kept per data versions, county and reach."""
    reach = reach_m(travel)
    xy = np.concatenate([j.xy for j in joined] + [np.zeros((0, 2))])
    lo, hi = (xy.min(axis=0) - reach, xy.max(axis=0) + reach) if len(xy) else (np.zeros(2), np.zeros(2))
    bounds = tuple(float(v) for v in (*lo, *hi))
    edges = np.unique(np.concatenate([j.points.edge for j in joined] + [np.zeros(0, dtype=np.int64)]))
    key = (county, bounds, hash(edges.tobytes())) + network.key("roads")
    region = REGIONS.get(key)
    if region is None:
        region = network.graph.region(bounds, with_edges=edges)
        REGIONS.put(key, region)
    return region


def cached_result(key: tuple, compute: Callable[[], dict]) -> dict:
    """The answer for ``key`` from the result cache, or computed and kept; ``cached`` says which."""
    hit = RESULTS.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    answer = compute()
    RESULTS.put(key, answer)
    return {**answer, "cached": False}
