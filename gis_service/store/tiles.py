"""A vector tile of a layer, drawn by PostgreSQL (ST_AsMVT).

The tile's envelope is transformed to the storage CRS (EPSG:4490) to select features through the GiST index;
only the selected geometries are transformed to EPSG:3857, simplified by one tile unit (see
:mod:`gis_service.ogc.tiles`).

Two things make a dense tile (a z12 roads tile at demo scale 10: 11,000 segments) fast, measured with
``scripts/bench_ogc.py``: the query runs without parallel workers (PostgreSQL plans a parallel aggregate for it,
and merging the workers' partial tiles in ST_AsMVT's combine step costs more than it saves: 480 ms against 80 ms
serial for that tile), and each feature's tile geometry is computed once (``OFFSET 0`` keeps the planner from
pushing ``mvt_geom IS NOT NULL`` into the scan, where ST_AsMVTGeom would run a second time). The statement is
written as SQL text rather than Core: its shape (the CTE, ``OFFSET 0``) is what those timings depend on; its
identifiers come from the table of the layer.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from gis_service.layers import LAYERS
from gis_service.layers.base import Field, Layer
from gis_service.ogc.tiles import BUFFER, DETAIL_ZOOM, EXTENT, WORLD_CRS84_QUAD, simplify_tolerance_deg, tile_fields
from gis_service.store.features import current
from gis_service.store.tables import layer_table


def _property_sql(field: Field, column: sa.Column) -> str:
    if field.type == "text_list":
        return f"array_to_string({column.name}, '; ') AS {column.name}"
    if field.type == "date":
        return f"{column.name}::text AS {column.name}"
    return column.name


#: The tile's envelope with its margin, cut at the edge of the world: at zoom 0-2 the margin crosses the
#: antimeridian, and transformed to degrees such an envelope wrapped round to the other side (tile 1/1/0, the
#: eastern hemisphere, selected the western one and came out empty).
WORLD_CLIPPED_ENVELOPE = "ST_Intersection(ST_TileEnvelope(:z, :x, :y, margin => :margin), ST_TileEnvelope(0, 0, 0))"


def tile_sql(layer: Layer, *, simplify: bool, z: int = DETAIL_ZOOM) -> str:
    """The statement of a tile of ``layer`` at zoom ``z`` (its fields depend only on whether ``z`` is below
    DETAIL_ZOOM), made once per layer and kind of zoom."""
    return _tile_sql(layer.id, simplify, z >= DETAIL_ZOOM)


#: A WorldCRS84Quad tile's envelope in degrees and, with the tiles' margin, in the storage CRS (the margin cut at
#: the poles and the antimeridian as for WebMercatorQuad). CGCS2000 and WGS 84 agree to well under a tile unit.
CRS84_BOUNDS = ("SELECT ST_MakeEnvelope(:west, :south, :east, :north, 4326) AS env, ST_Transform(ST_Intersection("
                "ST_Expand(ST_MakeEnvelope(:west, :south, :east, :north, 4326), :margin_deg), "
                "ST_MakeEnvelope(-180, -90, 180, 90, 4326)), 4490) AS env_storage")


@functools.lru_cache(maxsize=64)
def _tile_sql(layer_id: str, simplify: bool, detail: bool, crs84: bool = False) -> str:
    layer = LAYERS[layer_id]
    z = DETAIL_ZOOM if detail else DETAIL_ZOOM - 1
    table = layer_table(layer)
    geom = "geom"
    if simplify and layer.geometry_type != "Point":
        geom = "ST_Simplify(geom, :tolerance, true)"
    where = _where_current(layer, table)
    props = "".join(", " + _property_sql(f, table.c[f.name]) for f in tile_fields(layer, z))
    bounds = (CRS84_BOUNDS if crs84 else "SELECT ST_TileEnvelope(:z, :x, :y) AS env, "
              f"ST_Transform({WORLD_CLIPPED_ENVELOPE}, 4490) AS env_storage")
    return (
        f"WITH bounds AS ({bounds}) "
        f"SELECT ST_AsMVT(mvt, :layer_name, {EXTENT}, 'mvt_geom', 'id') FROM ("
        f"SELECT id{props}, ST_AsMVTGeom(ST_Transform({geom}, {4326 if crs84 else 3857}), bounds.env, {EXTENT}, "
        f"{BUFFER}, true) AS mvt_geom FROM {table.name}, bounds WHERE geom && bounds.env_storage {where} OFFSET 0"
        ") AS mvt WHERE mvt_geom IS NOT NULL"
    )


def render_tile(conn: sa.Connection, layer: Layer, z: int, x: int, y: int) -> bytes:
    """The MVT of one tile (one layer named after the collection); empty bytes when no feature is in it."""
    params = {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer_name": layer.id,
              "tolerance": simplify_tolerance_deg(z)}
    conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))  # see the module docstring
    data = conn.execute(sa.text(tile_sql(layer, simplify=True, z=z)), params).scalar()
    return bytes(data) if data else b""


def render_crs84_tile(conn: sa.Connection, layer: Layer, z: int, x: int, y: int) -> bytes:
    """The MVT of one WorldCRS84Quad tile (coordinates in tile units of its degrees), as :func:`render_tile`:
    the properties and the simplification of the WebMercatorQuad zoom with its resolution."""
    grid = WORLD_CRS84_QUAD
    west, south, east, north = grid.tile_bounds_deg(z, x, y)
    params = {"west": west, "south": south, "east": east, "north": north, "layer_name": layer.id,
              "margin_deg": (east - west) * BUFFER / EXTENT, "tolerance": simplify_tolerance_deg(grid.mercator_zoom(z))}
    conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))  # see the module docstring
    detail = grid.mercator_zoom(z) >= DETAIL_ZOOM
    data = conn.execute(sa.text(_tile_sql(layer.id, True, detail, crs84=True)), params).scalar()
    return bytes(data) if data else b""


def _where_current(layer: Layer, table: sa.Table) -> str:
    condition = current(layer, table)
    return f"AND {condition.compile(compile_kwargs={'include_table': False})}" if condition is not None else ""


def layer_extent(conn: sa.Connection, layer: Layer) -> tuple[float, float, float, float] | None:
    """The extent of the layer's current features in EPSG:4326, or None when it has none."""
    table = layer_table(layer)
    box = conn.execute(sa.text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ("
                               f"SELECT ST_Extent(ST_Transform(geom, 4326)) AS e FROM {table.name} "
                               f"WHERE true {_where_current(layer, table)}) b")).one()
    return None if box[0] is None else tuple(box)


def tiles_with_features(conn: sa.Connection, layer: Layer, z: int, candidates: list[tuple[int, int]]
                        ) -> list[tuple[int, int]]:
    """Of the tiles (x, y) at zoom ``z``, those whose envelope with the tiles' margin holds a current feature of
    the layer: the very condition :func:`tile_sql` selects by, asked for all of them in one statement."""
    table = layer_table(layer)
    envelope = WORLD_CLIPPED_ENVELOPE.replace(":x", "t.x").replace(":y", "t.y")
    rows = conn.execute(sa.text(
        f"SELECT t.x, t.y FROM unnest(CAST(:xs AS integer[]), CAST(:ys AS integer[])) AS t(x, y) "
        f"WHERE EXISTS (SELECT 1 FROM {table.name} WHERE geom && ST_Transform({envelope}, 4490) "
        f"{_where_current(layer, table)})"),
        {"xs": [x for x, _ in candidates], "ys": [y for _, y in candidates], "z": z, "margin": BUFFER / EXTENT})
    return [tuple(row) for row in rows]
