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
from gis_service.ogc.tiles import BUFFER, DETAIL_ZOOM, EXTENT, simplify_tolerance_deg, tile_fields
from gis_service.store.features import current
from gis_service.store.tables import layer_table


def _property_sql(field: Field, column: sa.Column) -> str:
    if field.type == "text_list":
        return f"array_to_string({column.name}, '; ') AS {column.name}"
    if field.type == "date":
        return f"{column.name}::text AS {column.name}"
    return column.name


def tile_sql(layer: Layer, *, simplify: bool, z: int = DETAIL_ZOOM) -> str:
    """The statement of a tile of ``layer`` at zoom ``z`` (its fields depend only on whether ``z`` is below
    DETAIL_ZOOM), made once per layer and kind of zoom."""
    return _tile_sql(layer.id, simplify, z >= DETAIL_ZOOM)


@functools.lru_cache(maxsize=64)
def _tile_sql(layer_id: str, simplify: bool, detail: bool) -> str:
    layer = LAYERS[layer_id]
    z = DETAIL_ZOOM if detail else DETAIL_ZOOM - 1
    table = layer_table(layer)
    geom = "geom"
    if simplify and layer.geometry_type != "Point":
        geom = "ST_Simplify(geom, :tolerance, true)"
    condition = current(layer, table)
    where = f"AND {condition.compile(compile_kwargs={'include_table': False})}" if condition is not None else ""
    props = "".join(", " + _property_sql(f, table.c[f.name]) for f in tile_fields(layer, z))
    return (
        "WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env, "
        "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4490) AS env_storage) "
        f"SELECT ST_AsMVT(mvt, :layer_name, {EXTENT}, 'mvt_geom', 'id') FROM ("
        f"SELECT id{props}, ST_AsMVTGeom(ST_Transform({geom}, 3857), bounds.env, {EXTENT}, {BUFFER}, true) "
        f"AS mvt_geom FROM {table.name}, bounds WHERE geom && bounds.env_storage {where} OFFSET 0"
        ") AS mvt WHERE mvt_geom IS NOT NULL"
    )


def render_tile(conn: sa.Connection, layer: Layer, z: int, x: int, y: int) -> bytes:
    """The MVT of one tile (one layer named after the collection); empty bytes when no feature is in it."""
    params = {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer_name": layer.id,
              "tolerance": simplify_tolerance_deg(z)}
    conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))  # see the module docstring
    data = conn.execute(sa.text(tile_sql(layer, simplify=True, z=z)), params).scalar()
    return bytes(data) if data else b""
