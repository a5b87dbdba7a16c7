"""The SQL behind the collections and items: conditions, counts, extents, and GeoJSON built in the database.

Identifiers (table, columns) come only from the layer registry; values are bound parameters. Query geometries
(bbox, filter literals) are transformed to the storage CRS (EPSG:4490) before they meet the column, so the
GiST index on ``geom`` is used. Features are serialised by PostgreSQL (``json_build_object`` and
``ST_AsGeoJSON``) and handed to the client as text, without a round trip through Python objects.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import shapely
import sqlalchemy as sa

from gis_service.geo.gcj02 import geojson_geometry_to_gcj02
from gis_service.layers.base import Layer
from gis_service.ogc.crs import ServedCrs
from gis_service.ogc.filters import FilterTranslator, to_storage
from gis_service.ogc.params import ItemsQuery


def datetime_condition(layer: Layer, interval, params: dict) -> str:
    """The condition of an OGC ``datetime`` on ``layer``.

    A layer with a validity period (admin_divisions: valid_from/valid_to) returns the versions in force at some
    time in the interval; other layers match their first date field (``layer.temporal[0]``) inside it.
    """
    start, end = interval
    if layer.current_condition and len(layer.temporal) == 2:
        valid_from, valid_to = layer.temporal
        parts = []
        if end is not None:
            params["dt_end"] = end
            parts.append(f"{valid_from} <= :dt_end")
        if start is not None:
            params["dt_start"] = start
            parts.append(f"({valid_to} IS NULL OR {valid_to} > :dt_start)")
        return " AND ".join(parts)
    column = layer.temporal[0]
    parts = []
    if start is not None:
        params["dt_start"] = start
        parts.append(f"{column} >= :dt_start")
    if end is not None:
        params["dt_end"] = end
        parts.append(f"{column} <= :dt_end")
    return " AND ".join(parts)


def where_clause(query: ItemsQuery, params: dict) -> str:
    """``WHERE ...`` (or empty) selecting what ``query`` asks for; binds its values into ``params``."""
    layer = query.layer
    conditions: list[str] = []
    if query.datetime is not None:
        conditions.append(datetime_condition(layer, query.datetime, params))
    elif layer.current_condition:
        conditions.append(layer.current_condition)
    if query.bbox is not None:
        box = to_storage(shapely.box(*query.bbox), _xy_order(query.bbox_crs), what="bbox")
        params["bbox"] = shapely.to_wkb(box, include_srid=True)
        conditions.append("ST_Intersects(geom, ST_GeomFromEWKB(:bbox))")
    for i, (name, value) in enumerate(query.property_filters.items()):
        column = "id" if name == "id" else layer.get_field(name).name  # registry name, never the request's
        params[f"pf{i}"] = value
        if name != "id" and layer.get_field(name).type == "text_list":
            conditions.append(f":pf{i} = ANY({column})")
        else:
            conditions.append(f"{column} = :pf{i}")
    if query.filter is not None:
        translator = FilterTranslator(layer, query.filter_crs, params, prefix="cql")
        conditions.append(translator.translate(query.filter))
    return ("WHERE " + " AND ".join(f"({c})" for c in conditions)) if conditions else ""


def _xy_order(crs: ServedCrs) -> ServedCrs:
    """The bbox was already put in x/y order by parse_bbox: the same CRS without the axis swap."""
    return dataclasses.replace(crs, lat_first=False)


def geometry_sql(layer: Layer, crs: ServedCrs) -> str:
    """GeoJSON of ``geom`` in ``crs`` (axis order as the CRS says), polygons wound per RFC 7946."""
    expr = "geom"
    if layer.geometry_type in ("MultiPolygon", "Polygon"):
        expr = f"ST_ForcePolygonCCW({expr})"
    if crs.transform_needed and not crs.gcj02:
        expr = f"ST_Transform({expr}, {int(crs.srid)})"
    if crs.lat_first:
        expr = f"ST_FlipCoordinates({expr})"
    return f"ST_AsGeoJSON({expr}, {int(crs.decimals)}, 0)::json"


def properties_sql(layer: Layer, names: list[str] | None) -> str:
    chosen = [f for f in layer.fields if names is None or f.name in names]
    return "json_build_object(" + ", ".join(f"'{f.name}', {f.name}" for f in chosen) + ")"


def feature_sql(layer: Layer, crs: ServedCrs, names: list[str] | None) -> str:
    return (f"json_build_object('type', 'Feature', 'id', id, 'geometry', {geometry_sql(layer, crs)}, "
            f"'properties', {properties_sql(layer, names)})")


def sort_keys(query: ItemsQuery) -> list[tuple[str, bool]]:
    """(column, descending) pairs, registry names only; the id breaks ties so pages never overlap."""
    keys = [(name if name == "id" else query.layer.get_field(name).name, desc) for name, desc in query.sortby]
    if not any(name == "id" for name, _ in keys):
        keys.append(("id", False))
    return keys


def count_matched(conn: sa.Connection, query: ItemsQuery) -> int:
    params: dict = {}
    where = where_clause(query, params)
    return conn.execute(sa.text(f"SELECT count(*) FROM {query.layer.table} {where}"), params).scalar_one()


@dataclass
class FeaturePage:
    """One page of features: the GeoJSON array as text, how many it holds and how many match in all."""

    features_json: str
    returned: int
    matched: int


def fetch_page(conn: sa.Connection, query: ItemsQuery) -> FeaturePage:
    """The features of ``query``'s page, serialised by PostgreSQL; GCJ-02 coordinates are shifted here."""
    params: dict = {"limit": query.limit, "offset": query.offset}
    where = where_clause(query, params)
    keys = sort_keys(query)
    direction = {False: "ASC", True: "DESC"}
    order = ", ".join(f"{column} {direction[desc]}" for column, desc in keys)
    # The page is cut first and serialised after: rows skipped by OFFSET are never turned into GeoJSON.
    sql = (f"SELECT count(*), coalesce(json_agg({feature_sql(query.layer, query.crs, query.properties)} "
           f"ORDER BY {order}), '[]'::json)::text "
           f"FROM (SELECT * FROM {query.layer.table} {where} ORDER BY {order} LIMIT :limit OFFSET :offset) AS page")
    returned, features = conn.execute(sa.text(sql), params).one()
    if query.offset == 0 and returned < query.limit:
        matched = returned
    else:
        matched = count_matched(conn, query)
    if query.crs.gcj02:
        features = _to_gcj02(features)
    return FeaturePage(features, returned, matched)


def fetch_feature(conn: sa.Connection, layer: Layer, feature_id: int, crs: ServedCrs) -> tuple[str, int] | None:
    """One feature as GeoJSON text (any version, current or not) and its version (for the ETag), or None."""
    sql = f"SELECT {feature_sql(layer, crs, None)}::text, version FROM {layer.table} WHERE id = :id"
    row = conn.execute(sa.text(sql), {"id": feature_id}).one_or_none()
    if row is None:
        return None
    text, version = row
    if crs.gcj02:
        feature = json.loads(text)
        feature["geometry"] = geojson_geometry_to_gcj02(feature["geometry"])
        text = json.dumps(feature, ensure_ascii=False, separators=(",", ":"))
    return text, version


def _to_gcj02(features_json: str) -> str:
    features = json.loads(features_json)
    for feature in features:
        feature["geometry"] = geojson_geometry_to_gcj02(feature["geometry"])
    return json.dumps(features, ensure_ascii=False, separators=(",", ":"))


@dataclass
class LayerSummary:
    """What the collection documents say about a layer's data: feature count and extents."""

    count: int
    bbox: tuple[float, float, float, float] | None
    temporal: tuple[str | None, str | None] | None


def summarize_layer(conn: sa.Connection, layer: Layer) -> LayerSummary:
    """Current features' count, bbox (CRS84, untransformed CGCS2000) and dates: from the earliest value of the
    layer's first date field to the latest of its last (open-ended where that is empty, as for current divisions)."""
    return summarize_layer_versioned(conn, layer)[0]


def summarize_layer_versioned(conn: sa.Connection, layer: Layer) -> tuple[LayerSummary, int | None]:
    """:func:`summarize_layer` and the layer's data version (``data_versions``; None if it has none), read in one
    statement, so from one snapshot: the summary describes exactly that version."""
    where = f"WHERE {layer.current_condition}" if layer.current_condition else ""
    dates = f", min({layer.temporal[0]})::text, max({layer.temporal[-1]})::text" if layer.temporal else ""
    row = conn.execute(sa.text(
        f"SELECT (SELECT version FROM data_versions WHERE table_name = :table), count(*), "
        f"ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)), ST_XMax(ST_Extent(geom)), "
        f"ST_YMax(ST_Extent(geom)){dates} FROM {layer.table} {where}"
    ), {"table": layer.table}).one()
    version, count, *rest = row
    bbox = None if rest[0] is None else (rest[0], rest[1], rest[2], rest[3])
    temporal = (rest[4], rest[5]) if layer.temporal else None
    return LayerSummary(count, bbox, temporal), version
