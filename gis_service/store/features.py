"""Features in and out of their tables: pages and single features (GeoJSON built by PostgreSQL), counts and
summaries, what maps draw, snapshots for the audit trail, inserts, updates and deletes, COPY loads, and what a
validation needs to know from the database.

Statements are SQLAlchemy Core on :mod:`gis_service.store.tables`, so identifiers come from the layer registry and
every value is a bound parameter. Query geometries are transformed to the storage CRS (EPSG:4490) before they meet
the column, so the GiST index on ``geom`` is used. Features are serialised by PostgreSQL (``json_build_object`` and
``ST_AsGeoJSON``) and handed on as text, without a round trip through Python objects: at 1,000 roads a page, that
is several times faster than building them in Python (``scripts/bench_ogc.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from gis_service.errors import ImportRejected, RowProblem
from gis_service.geo.gcj02 import geojson_geometry_to_gcj02
from gis_service.io.validate import ValidationContext, candidate_ints, candidate_texts
from gis_service.layers import LAYERS
from gis_service.layers.base import Layer
from gis_service.layers.registry import DIVISIONS
from gis_service.ogc.crs import ServedCrs
from gis_service.ogc.filters import FilterTranslator, to_storage
from gis_service.ogc.params import ItemsQuery
from gis_service.settings import STORAGE_SRID
from gis_service.store.tables import data_versions as data_versions_table
from gis_service.store.tables import layer_table, metadata, network_state

#: Called with the number of rows just written, for progress bars.
RowCallback = Callable[[int], None]


def current(layer: Layer, table: sa.Table | sa.Subquery | None = None) -> sa.ColumnElement[bool] | None:
    """The condition selecting the current features of a layer that keeps versions; None when all are current."""
    if layer.validity is None:
        return None
    columns = (table if table is not None else layer_table(layer)).c
    return columns[layer.validity[1]].is_(None)


def counted_sql(layer: Layer, alias: str) -> str:
    """SQL condition on ``alias`` (a row of ``layer``'s table) selecting the features that count in the analyses
    (``layer.network.counts``: facilities that exist); ``true`` when all count. Values come from the registry."""
    counts = layer.network.counts if layer.network else ()
    return " AND ".join(f"{alias}.{layer_table(layer).c[name].name} = '{value}'" for name, value in counts) or "true"


def _where(*conditions: sa.ColumnElement[bool] | None) -> list[sa.ColumnElement[bool]]:
    return [c for c in conditions if c is not None]


def _any(column: sa.ColumnElement, values: Iterable) -> sa.ColumnElement[bool]:
    """``column = ANY(:values)``: one array parameter, however many values."""
    return column == sa.any_(sa.bindparam(None, sorted(values), type_=pg.ARRAY(column.type)))


def _ewkb(geom: BaseGeometry) -> sa.ColumnElement:
    """A shapely geometry (SRID set) as a bound EWKB value turned into a geometry by PostgreSQL."""
    return sa.func.ST_GeomFromEWKB(sa.literal(shapely.to_wkb(geom, include_srid=True), sa.LargeBinary))


def _literal(value: int | str) -> sa.ColumnElement:
    """A constant written into the statement (an SRID, a JSON key from the registry): never a request's value."""
    return sa.literal_column(str(int(value)) if isinstance(value, int) else "'" + value.replace("'", "''") + "'")


# -- GeoJSON built in the database --------------------------------------------------------------------------------

def geometry_json(layer: Layer, geom: sa.ColumnElement, crs: ServedCrs) -> sa.ColumnElement:
    """GeoJSON of ``geom`` in ``crs`` (axis order as the CRS says), polygons wound per RFC 7946."""
    expr = geom
    if layer.geometry_type in ("MultiPolygon", "Polygon"):
        expr = sa.func.ST_ForcePolygonCCW(expr)
    if crs.transform_needed and not crs.gcj02:
        expr = sa.func.ST_Transform(expr, _literal(crs.srid))
    if crs.lat_first:
        expr = sa.func.ST_FlipCoordinates(expr)
    return sa.cast(sa.func.ST_AsGeoJSON(expr, _literal(crs.decimals), _literal(0)), pg.JSON)


def feature_json(layer: Layer, columns, crs: ServedCrs, names: list[str] | None) -> sa.ColumnElement:
    """``{"type": "Feature", "id", "geometry", "properties"}`` of a row of ``columns`` (a table's or a subquery's),
    with the properties ``names`` (None: all)."""
    chosen = [f for f in layer.fields if names is None or f.name in names]
    properties = sa.func.json_build_object(*(part for f in chosen for part in (_literal(f.name), columns[f.name])))
    return sa.func.json_build_object(_literal("type"), _literal("Feature"), _literal("id"), columns.id,
                                     _literal("geometry"), geometry_json(layer, columns.geom, crs),
                                     _literal("properties"), properties)


# -- items -------------------------------------------------------------------------------------------------------

#: (which ends of a datetime are given, whether a bbox is, the property filters' names, the translated CQL2
#: condition): what decides a WHERE clause's text; its values are bound.
WhereShape = tuple[tuple[bool, bool] | None, bool, tuple[str, ...], str | None]


def items_where(query: ItemsQuery) -> tuple[WhereShape, dict]:
    """The WHERE clause of ``query``, its filter translated: its shape and the values to bind (the bbox transformed
    to the storage CRS). Made once per request, for the page and the count."""
    values: dict = {}
    when = None
    if query.datetime is not None:
        start, end = query.datetime
        when = (start is not None, end is not None)
        values.update({k: v for k, v in (("dt_start", start), ("dt_end", end)) if v is not None})
    if query.bbox is not None:
        box = to_storage(shapely.box(*query.bbox), _xy_order(query.bbox_crs), what="bbox")
        values["bbox"] = shapely.to_wkb(box, include_srid=True)
    values.update({f"pf{i}": value for i, value in enumerate(query.property_filters.values())})
    cql = None
    if query.filter is not None:
        cql = FilterTranslator(query.layer, query.filter_crs, values, prefix="cql").translate(query.filter)
    return (when, query.bbox is not None, tuple(query.property_filters), cql), values


def _condition(layer: Layer, shape: WhereShape) -> sa.ColumnElement[bool]:
    """The condition of a WHERE clause of ``shape`` on ``layer``'s table, its values as named parameters."""
    when, bbox, filters, cql = shape
    columns = layer_table(layer).c
    conditions = [_datetime_condition(layer, when) if when is not None else current(layer)]
    if bbox:
        conditions.append(sa.func.ST_Intersects(columns.geom, sa.func.ST_GeomFromEWKB(
            sa.bindparam("bbox", type_=sa.LargeBinary))))
    for i, name in enumerate(filters):
        column, value = columns[name], _as_sent(f"pf{i}")  # a registry name (or id): no other is parsed
        is_list = name != "id" and layer.field_named(name).type == "text_list"
        conditions.append(value == sa.any_(column) if is_list else column == value)
    if cql is not None:  # its :names are bound as sent (text() gives them no type, so no cast)
        conditions.append(sa.text(f"({cql})"))
    conditions = _where(*conditions)
    return sa.and_(*conditions) if conditions else sa.true()


def _datetime_condition(layer: Layer, ends: tuple[bool, bool]) -> sa.ColumnElement[bool]:
    """The condition of an OGC ``datetime`` with these ends given (``dt_start``, ``dt_end``) on ``layer``.

    A layer that keeps versions (admin_divisions: valid_from/valid_to) returns the versions in force at some time
    in the interval; other layers match their first date field (``layer.temporal[0]``) inside it.
    """
    columns = layer_table(layer).c
    start = sa.bindparam("dt_start", type_=sa.Date) if ends[0] else None
    end = sa.bindparam("dt_end", type_=sa.Date) if ends[1] else None
    if layer.validity is not None:
        valid_from, valid_to = (columns[name] for name in layer.validity)
        return sa.and_(*_where(valid_from <= end if end is not None else None,
                               sa.or_(valid_to.is_(None), valid_to > start) if start is not None else None))
    column = columns[layer.temporal[0]]
    return sa.and_(*_where(column >= start if start is not None else None, column <= end if end is not None else None))


class _AsSent(sa.types.UserDefinedType):
    """The type of a value bound as the driver sends it, without the cast SQLAlchemy would add."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "unknown"


def _as_sent(name: str) -> sa.BindParameter:
    """A request's value bound without a cast to the column's type: the database compares it as the driver sends
    it (an id beyond bigint matches nothing, rather than failing the cast)."""
    return sa.bindparam(name, type_=_AsSent())


def _xy_order(crs: ServedCrs) -> ServedCrs:
    """The bbox was already put in x/y order by parse_bbox: the same CRS without the axis swap."""
    return dataclasses.replace(crs, lat_first=False)


def _sort_keys(query: ItemsQuery) -> tuple[tuple[str, bool], ...]:
    """(column, descending) pairs, registry names only; the id breaks ties so pages never overlap."""
    keys = [(name if name == "id" else query.layer.field_named(name).name, desc) for name, desc in query.sortby]
    if not any(name == "id" for name, _ in keys):
        keys.append(("id", False))
    return tuple(keys)


def _ordered(columns, keys: tuple[tuple[str, bool], ...]) -> list[sa.ColumnElement]:
    return [columns[name].desc() if desc else columns[name].asc() for name, desc in keys]


_DIALECT = psycopg_dialect.dialect()


@functools.lru_cache(maxsize=1024)
def _page_sql(layer_id: str, crs: ServedCrs, properties: tuple[str, ...] | None, keys: tuple[tuple[str, bool], ...],
              where: WhereShape) -> tuple[str, str]:
    """The SQL of a page and of its count, for requests of this shape, built once and kept: a request only binds
    its values (``limit``, ``offset`` and those of :func:`items_where`). Building and compiling the statements
    costs some 1.5 ms of CPU, which with four clients on two cores added 6 ms to every items answer
    (``scripts/bench_ogc.py``)."""
    layer = LAYERS[layer_id]
    table = layer_table(layer)
    condition = _condition(layer, where)
    page = (sa.select(table).where(condition).order_by(*_ordered(table.c, keys))
            .limit(sa.bindparam("limit", type_=sa.Integer))
            .offset(sa.bindparam("offset", type_=sa.BigInteger))  # up to 2^63-1
            .subquery("page"))
    feature = feature_json(layer, page.c, crs, None if properties is None else list(properties))
    agg = sa.func.json_agg(pg.aggregate_order_by(feature, *_ordered(page.c, keys)))
    statement = sa.select(sa.func.count(), sa.cast(sa.func.coalesce(agg, sa.literal_column("'[]'::json")), sa.Text))
    count = sa.select(sa.func.count()).select_from(table).where(condition)
    return str(statement.compile(dialect=_DIALECT)), str(count.compile(dialect=_DIALECT))


@dataclass
class FeaturePage:
    """One page of features: the GeoJSON array as text, how many it holds and how many match in all."""

    features_json: str
    returned: int
    matched: int


def fetch_page(conn: sa.Connection, query: ItemsQuery) -> FeaturePage:
    """The features of ``query``'s page, serialised by PostgreSQL; GCJ-02 coordinates are shifted here. The page is
    cut first and serialised after: rows skipped by OFFSET are never turned into GeoJSON. ``numberMatched`` is
    counted with the same WHERE clause only when the page does not tell it (a first page that is not full)."""
    shape, values = items_where(query)
    properties = None if query.properties is None else tuple(query.properties)
    page_sql, count_sql = _page_sql(query.layer.id, query.crs, properties, _sort_keys(query), shape)
    returned, features = conn.exec_driver_sql(page_sql, {**values, "limit": query.limit,
                                                         "offset": query.offset}).one()
    if query.offset == 0 and returned < query.limit:
        matched = returned
    else:
        matched = conn.exec_driver_sql(count_sql, values).scalar_one()
    if query.crs.gcj02:
        features = _to_gcj02(features)
    return FeaturePage(features, returned, matched)


@functools.lru_cache(maxsize=256)
def _feature_sql(layer_id: str, crs: ServedCrs) -> str:
    layer = LAYERS[layer_id]
    table = layer_table(layer)
    return str(sa.select(sa.cast(feature_json(layer, table.c, crs, None), sa.Text), table.c.version)
               .where(table.c.id == sa.bindparam("id", type_=sa.BigInteger)).compile(dialect=_DIALECT))


def fetch_feature(conn: sa.Connection, layer: Layer, feature_id: int, crs: ServedCrs) -> tuple[str, int] | None:
    """One feature as GeoJSON text (any version, current or not) and its version (for the ETag), or None."""
    row = conn.exec_driver_sql(_feature_sql(layer.id, crs), {"id": feature_id}).one_or_none()
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


# -- counts, summaries, versions -----------------------------------------------------------------------------------

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
    table = layer_table(layer)
    versions = data_versions_table.c
    version = (sa.select(versions.version).where(versions.table_name == layer.table).scalar_subquery())
    extent = sa.func.ST_Extent(table.c.geom)
    dates = [sa.cast(sa.func.min(table.c[layer.temporal[0]]), sa.Text),
             sa.cast(sa.func.max(table.c[layer.temporal[-1]]), sa.Text)] if layer.temporal else []
    row = conn.execute(sa.select(version, sa.func.count(), sa.func.ST_XMin(extent), sa.func.ST_YMin(extent),
                                 sa.func.ST_XMax(extent), sa.func.ST_YMax(extent), *dates)
                       .select_from(table).where(*_where(current(layer)))).one()
    seen_version, count, *rest = row
    bbox = None if rest[0] is None else (rest[0], rest[1], rest[2], rest[3])
    temporal = (rest[4], rest[5]) if layer.temporal else None
    return LayerSummary(count, bbox, temporal), seen_version


def data_versions(conn: sa.Connection, tables: Iterable[str] | None = None) -> dict[str, int]:
    """The data version of each table (of ``tables``, or every one that has a version): bumped on every change."""
    versions = data_versions_table.c
    statement = sa.select(versions.table_name, versions.version)
    if tables is not None:
        statement = statement.where(_any(versions.table_name, tables))
    return dict(conn.execute(statement).all())


def layer_version(conn: sa.Connection, layer: Layer) -> tuple[str, int] | None:
    """The database's instance id and the data version of ``layer``'s table as ``conn`` sees them (one statement):
    together a key no other database or state of the layer shares. None before the instance id is set."""
    row = conn.execute(sa.text(f"SELECT (SELECT instance_id::text FROM {network_state.name}), version "
                               f"FROM {data_versions_table.name} WHERE table_name = :table"),
                       {"table": layer_table(layer).name}).one_or_none()
    return None if row is None or row[0] is None else (row[0], row[1])


def layer_counts(conn: sa.Connection) -> dict[str, int]:
    """Features per layer, counting current features only where a layer keeps versions."""
    return {layer.id: conn.execute(sa.select(sa.func.count()).select_from(layer_table(layer))
                                   .where(*_where(current(layer)))).scalar_one()
            for layer in LAYERS.values()}


def has_features(conn: sa.Connection, layer: Layer) -> bool:
    return conn.execute(sa.select(sa.exists(sa.select(layer_table(layer).c.id)))).scalar()


def database_is_empty(conn: sa.Connection) -> bool:
    return not any(has_features(conn, layer) for layer in LAYERS.values())


def counts_by(conn: sa.Connection, layer: Layer, field: str) -> dict[object, int]:
    """Current features of ``layer`` per value of ``field`` (e.g. boundary markers per line)."""
    column = layer_table(layer).c[field]
    return dict(conn.execute(sa.select(column, sa.func.count()).where(*_where(current(layer))).group_by(column)).all())


def sums_by(conn: sa.Connection, layer: Layer, by: str, field: str, *,
            starting: Mapping[str, str | None] | None = None) -> dict[object, float]:
    """The sum of ``field`` over the current features of ``layer`` (those ``starting`` selects) per value of ``by``
    (e.g. households per village)."""
    columns = layer_table(layer).c
    return dict(conn.execute(sa.select(columns[by], sa.func.sum(columns[field]))
                             .where(*_where(current(layer), *_starting(columns, starting)))
                             .group_by(columns[by])).all())


def clear(conn: sa.Connection, tables: Iterable[sa.Table]) -> None:
    """Empty every layer's table and ``tables`` (restarting their ids), in the caller's transaction."""
    names = [layer_table(layer).name for layer in LAYERS.values()] + [t.name for t in tables]
    conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))


def analyze(conn: sa.Connection, table_names: Iterable[str]) -> None:
    """Fresh planner statistics for the tables ``table_names`` (tables of the schema: KeyError for any other), so
    that the first queries after a bulk load get good plans."""
    for name in table_names:
        conn.execute(sa.text(f"ANALYZE {metadata.tables[name].name}"))


# -- whole layers and records --------------------------------------------------------------------------------------

def read_frame(conn: sa.Connection, layer: Layer, *, current_only: bool = False) -> gpd.GeoDataFrame:
    """Every feature of a layer (id, fields, geometry in EPSG:4490), ordered by id."""
    table = layer_table(layer)
    statement = (sa.select(table.c.id, *(table.c[name] for name in layer.field_names), table.c.geom)
                 .where(*_where(current(layer) if current_only else None)).order_by(table.c.id))
    return gpd.read_postgis(statement, conn, geom_col="geom", crs=STORAGE_SRID)


def _starting(columns, starting: Mapping[str, str | None] | None) -> list[sa.ColumnElement[bool]]:
    """Rows whose field starts with the prefix (a county's features by their statistical codes); a None prefix
    selects every row."""
    return [columns[name].startswith(prefix, autoescape=True) for name, prefix in (starting or {}).items()
            if prefix is not None]


def read_records(conn: sa.Connection, layer: Layer, fields: Iterable[str], *,
                 equals: Mapping[str, object] | None = None, starting: Mapping[str, str | None] | None = None,
                 order_by: Iterable[str] = ()) -> list[dict]:
    """``fields`` of the current features of ``layer`` (those with ``equals``' values and whose ``starting``
    fields start with its prefixes), without geometry."""
    columns = layer_table(layer).c
    conditions = [columns[name] == value for name, value in (equals or {}).items()] + _starting(columns, starting)
    statement = (sa.select(*(columns[name] for name in fields)).where(*_where(current(layer), *conditions))
                 .order_by(*(columns[name] for name in order_by)))
    return [dict(row) for row in conn.execute(statement).mappings()]


def read_frame_of_records(conn: sa.Connection, layer: Layer, fields: list[str], **options) -> pd.DataFrame:
    """:func:`read_records` as a DataFrame with the columns ``fields`` (also when nothing is found)."""
    return pd.DataFrame(read_records(conn, layer, fields, **options), columns=fields)


def division_field_of(layer: Layer) -> str:
    """The name of the first field of ``layer`` naming an administrative division (its code)."""
    return next(f.name for f in layer.fields if f.references is not None and f.references.layer == DIVISIONS.id)


def counted_with_township(conn: sa.Connection, layer: Layer) -> pd.DataFrame:
    """Every column of the features of ``layer`` that count (``layer.network.counts``), and ``township_code``: the
    township its division field names (the division itself, or a village's parent), or else the township polygon
    that holds it."""
    division = division_field_of(layer)
    sql = f"""
        SELECT f.*, coalesce(
            CASE d.level WHEN 'township' THEN d.code WHEN 'village' THEN d.parent_code END,
            (SELECT t.code FROM {DIVISIONS.table} t WHERE t.level = 'township' AND t.{DIVISIONS.validity[1]} IS NULL
               AND ST_Intersects(t.geom, f.geom) ORDER BY t.code LIMIT 1)) AS township_code
        FROM {layer_table(layer).name} f
        LEFT JOIN {DIVISIONS.table} d ON d.code = f.{division} AND d.{DIVISIONS.validity[1]} IS NULL
        WHERE {counted_sql(layer, "f")}"""
    result = conn.execute(sa.text(sql))
    return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))


def in_county(columns, county: str | None, *, by: str | None = None) -> list[sa.ColumnElement[bool]]:
    """Conditions selecting what lies in ``county`` (6 digits): by the statistical code in the field ``by`` (the
    county's six digits first), or without one by lying in the county's bounding box (the GiST index serves it: what
    a map of the county shows); none for every county."""
    if county is None:
        return []
    if by is not None:
        return [sa.func.left(columns[by], 6) == county]
    divisions = layer_table(DIVISIONS)
    outline = (sa.select(divisions.c.geom).where(divisions.c.code == county + "000000",
                                                 divisions.c.level == "county", *_where(current(DIVISIONS)))
               .scalar_subquery())
    return [columns.geom.op("&&")(outline)]


def display_features(conn: sa.Connection, layer: Layer, properties: Iterable[str], *,
                     equals: Mapping[str, object] | None = None, excluding: Mapping[str, Iterable] | None = None,
                     order_by: Iterable[str] = ("id",), key: str = "id", simplify_m: float | None = None,
                     measure_srid: int | None = None, decimals: int = 5, county: str | None = None,
                     county_by: str | None = None) -> list[dict]:
    """What a map draws of ``layer``: GeoJSON features in EPSG:4326 (lon, lat) of its current features (with
    ``equals``' values, without ``excluding``'s; of ``county``, by the code in ``county_by`` or else by place, when
    given), properties as stored. Lines and polygons are simplified by ``simplify_m`` metres in
    EPSG:``measure_srid`` (ST_SimplifyPreserveTopology, never in degrees); coordinates keep ``decimals`` decimals
    (5: about 1 m). ``key``: the field that is the feature's id."""
    columns = layer_table(layer).c
    geom = columns.geom
    if simplify_m is not None:
        geom = sa.func.ST_Transform(sa.func.ST_SimplifyPreserveTopology(
            sa.func.ST_Transform(geom, _literal(measure_srid)), simplify_m), _literal(4326))
    else:
        geom = sa.func.ST_Transform(geom, _literal(4326))
    conditions = [columns[name] == value for name, value in (equals or {}).items()]
    conditions += [columns[name].not_in(list(values)) for name, values in (excluding or {}).items()]
    conditions += in_county(columns, county, by=county_by)
    statement = (sa.select(columns[key].label("fid"), *(columns[name] for name in properties),
                           sa.func.ST_AsGeoJSON(geom, _literal(decimals)).label("geojson"))
                 .where(*_where(current(layer), *conditions)).order_by(*(columns[name] for name in order_by)))
    return _features(conn.execute(statement).mappings())


def merged_display_lines(conn: sa.Connection, layer: Layer, *, simplify_m: float, measure_srid: int,
                         decimals: int = 5, county: str | None = None) -> list[dict]:
    """A line layer as a map draws it: one feature per value of ``layer.map_style.merged_by`` (roads: one per
    standard name and class, so a page holds a few thousand lines, not every segment), with the summed length
    (metres) and the segments merged; features with ``unnamed_when``'s value are merged without their name. With
    ``county``, the lines in its bounding box only."""
    style = layer.map_style
    columns = layer_table(layer).c
    label = columns[layer.label_field]
    if style.unnamed_when is not None:
        field, value = style.unnamed_when
        label = sa.case((columns[field] == value, sa.null()), else_=label)
    keys = [label.label(layer.label_field) if name == layer.label_field else columns[name]
            for name in style.merged_by]
    merged = (sa.select(*keys, sa.func.sum(columns.length_m).label("length_m"),
                        sa.func.count().label("segments"),
                        sa.func.ST_LineMerge(sa.func.ST_Collect(columns.geom)).label("geom"))
              .where(*in_county(columns, county))
              .group_by(*(sa.literal_column(str(i + 1)) for i in range(len(keys)))).subquery("merged"))
    order = [merged.c[name] for name in reversed(style.merged_by)]
    geom = sa.func.ST_Transform(sa.func.ST_SimplifyPreserveTopology(
        sa.func.ST_Transform(merged.c.geom, _literal(measure_srid)), simplify_m), _literal(4326))
    statement = (sa.select(sa.func.row_number().over(order_by=order).label("fid"),
                           *(merged.c[name] for name in style.merged_by),
                           sa.cast(sa.func.round(sa.cast(merged.c.length_m, sa.Numeric)), pg.DOUBLE_PRECISION)
                           .label("length_m"), merged.c.segments,
                           sa.func.ST_AsGeoJSON(geom, _literal(decimals)).label("geojson"))
                 .order_by(*order))
    return _features(conn.execute(statement).mappings())


def _features(rows) -> list[dict]:
    """Rows with ``fid`` and ``geojson`` columns as features: ``{"type", "id", "geometry", "properties"}``."""
    return [{"type": "Feature", "id": row["fid"], "geometry": json.loads(row["geojson"]),
             "properties": {k: v for k, v in row.items() if k not in ("geojson", "fid")}} for row in rows]


# -- one feature at a time -----------------------------------------------------------------------------------------

def snapshot(conn: sa.Connection, layer: Layer, feature_id: int, *, lock: bool = False) -> dict | None:
    """The feature as stored (every column but the geometry, and its GeoJSON geometry in EPSG:4326), or None."""
    row = layer_table(layer).alias("t")
    statement = (sa.select(sa.func.to_jsonb(row.table_valued()).op("-")(_literal("geom")).op("||")(
        sa.func.jsonb_build_object(_literal("geometry"), sa.cast(
            sa.func.ST_AsGeoJSON(sa.func.ST_Transform(row.c.geom, _literal(4326)), _literal(7)), pg.JSONB))))
        .where(row.c.id == feature_id))
    return conn.execute(statement.with_for_update() if lock else statement).scalar()


def stored_values(conn: sa.Connection, layer: Layer, feature_id: int) -> dict:
    """The writable fields of a feature as stored (the feature exists)."""
    columns = layer_table(layer).c
    return dict(conn.execute(sa.select(*(columns[f.name] for f in layer.writable_fields))
                             .where(columns.id == feature_id)).mappings().one())


def stored_frame(conn: sa.Connection, layer: Layer, feature_id: int) -> gpd.GeoDataFrame:
    """The writable fields and geometry of a feature, as a one-row frame in EPSG:4490."""
    columns = layer_table(layer).c
    statement = (sa.select(*(columns[f.name] for f in layer.writable_fields), columns.geom)
                 .where(columns.id == feature_id))
    return gpd.read_postgis(statement, conn, geom_col="geom", crs=STORAGE_SRID)


def measured(layer: Layer, geoms: gpd.GeoSeries, *, measure_srid: int) -> dict[str, list[float]]:
    """The computed fields of ``geoms`` (EPSG:4490): lengths in metres in EPSG:``measure_srid``, 2 decimals."""
    if not layer.computed_fields:
        return {}
    lengths = geoms.to_crs(measure_srid).length.round(2).tolist()
    return {f.name: lengths for f in layer.computed_fields}


def _values(layer: Layer, row: Mapping, *, measure_srid: int) -> dict:
    values = {f.name: row[f.name] for f in layer.writable_fields}
    measures = measured(layer, gpd.GeoSeries([row["geom"]], crs=STORAGE_SRID), measure_srid=measure_srid)
    values.update({name: lengths[0] for name, lengths in measures.items()})
    values["geom"] = _ewkb(shapely.set_srid(row["geom"], STORAGE_SRID))
    return values


def insert_feature(conn: sa.Connection, layer: Layer, row: Mapping, *, measure_srid: int) -> tuple[int, int]:
    """Insert a checked row (its fields and ``geom``); returns the new feature's id and version."""
    table = layer_table(layer)
    statement = (sa.insert(table).values(**_values(layer, row, measure_srid=measure_srid))
                 .returning(table.c.id, table.c.version))
    feature_id, version = conn.execute(statement).one()
    return feature_id, version


def update_feature(conn: sa.Connection, layer: Layer, feature_id: int, version: int, row: Mapping, *,
                   measure_srid: int) -> int | None:
    """Replace the fields and geometry of the feature at ``version``; its new version, or None when it is no
    longer at ``version``."""
    table = layer_table(layer)
    statement = (sa.update(table).where(table.c.id == feature_id, table.c.version == version)
                 .values(**_values(layer, row, measure_srid=measure_srid)).returning(table.c.version))
    return conn.execute(statement).scalar()


def delete_feature(conn: sa.Connection, layer: Layer, feature_id: int) -> None:
    table = layer_table(layer)
    conn.execute(sa.delete(table).where(table.c.id == feature_id))


def insert_copy(conn: sa.Connection, layer: Layer, feature_id: int, *, changes: Mapping[str, object],
                pointing_back: str) -> int:
    """A new feature copying the fields and geometry of ``feature_id``, with ``changes`` (field -> value) and the
    field ``pointing_back`` set to the copied feature's id; returns the new id."""
    columns = layer_table(layer).c
    names = [f.name for f in layer.writable_fields]
    chosen = [columns.id if name == pointing_back else sa.literal(changes[name], columns[name].type)
              if name in changes else columns[name] for name in names]
    statement = (sa.insert(layer_table(layer)).from_select([*names, "geom"], sa.select(*chosen, columns.geom)
                                                         .where(columns.id == feature_id))
                 .returning(columns.id))
    return conn.execute(statement).scalar_one()


def check_constraints_now(conn: sa.Connection) -> None:
    """Check the deferred constraints (references to current divisions) now, inside the statement's savepoint."""
    conn.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))


# -- what a validation reads ---------------------------------------------------------------------------------------

def county_outline(conn: sa.Connection, *, code_prefix: str, measure_srid: int, grown_m: float
                   ) -> BaseGeometry | None:
    """The union of the current county divisions whose codes start with ``code_prefix`` (a county's six digits, a
    prefecture's four, a province's two) grown by ``grown_m`` metres (in EPSG:``measure_srid``), in EPSG:4490; None
    when the database has no such county."""
    columns = layer_table(DIVISIONS).c
    grown = sa.func.ST_Transform(sa.func.ST_Buffer(sa.func.ST_Transform(sa.func.ST_Union(columns.geom),
                                                                        _literal(measure_srid)), grown_m),
                                 _literal(STORAGE_SRID))
    wkb = conn.execute(sa.select(sa.func.ST_AsBinary(grown)).where(
        columns.level == "county", current(DIVISIONS), columns.code.startswith(code_prefix, autoescape=True))).scalar()
    return None if wkb is None else shapely.from_wkb(bytes(wkb))


def validation_context(conn: sa.Connection, layer: Layer, frame: pd.DataFrame,
                       county_area: BaseGeometry | None) -> ValidationContext:
    """What ``frame``'s rows may refer to or clash with (inside the caller's transaction): the values of its
    references that exist, the values of its unique fields already taken, its ids already used.

    Only the values the frame holds are looked up, so a one-feature write reads a few index entries, not every
    code and id of the table."""
    context = ValidationContext(county_area=county_area)
    columns = layer_table(layer).c
    for spec in layer.writable_fields:
        ref = spec.references
        if ref is not None:
            target = LAYERS[ref.layer]
            column = layer_table(target).c[ref.field]
            wanted = (candidate_ints if spec.type == "integer" else candidate_texts)(frame, spec.name)
            context.found[spec.name] = _existing(conn, column, wanted, current(target))
        if spec.unique:
            context.taken[spec.name] = _existing(conn, columns[spec.name], candidate_texts(frame, spec.name),
                                                 current(layer))
    context.existing_ids = _existing(conn, columns.id, candidate_ints(frame, "id"))
    return context


def _existing(conn: sa.Connection, column: sa.Column, values: set,
              condition: sa.ColumnElement[bool] | None = None) -> set:
    if not values:
        return set()
    return set(conn.execute(sa.select(column).where(*_where(condition), _any(column, values))).scalars())


# -- COPY ------------------------------------------------------------------------------------------------------------

def copy_rows(conn: sa.Connection, layer: Layer, rows: pd.DataFrame, *, measure_srid: int,
              on_rows: RowCallback | None = None) -> int:
    """COPY checked rows (``id`` or None, the writable fields, ``geom``) into the layer's table, measuring the
    computed fields (length_m) here; ImportRejected when the database refuses them (nothing is written)."""
    table = layer_table(layer)
    geoms = gpd.GeoSeries(rows["geom"].tolist(), crs=STORAGE_SRID)
    data = {f.name: rows[f.name].tolist() for f in layer.writable_fields}
    data.update(measured(layer, geoms, measure_srid=measure_srid))
    with_ids = rows["id"].notna().any()
    if with_ids:
        data = {"id": [None if pd.isna(v) else int(v) for v in rows["id"]], **data}
    data["geom"] = shapely.to_wkb(shapely.set_srid(geoms.values, STORAGE_SRID), hex=True, include_srid=True)
    count = len(rows)
    try:
        copy_into(conn, table, data, count, on_rows=on_rows)
        if with_ids:
            restart_ids_after(conn, table)
    except psycopg.errors.IntegrityError as exc:
        raise ImportRejected(layer.id, [RowProblem(None, _constraint_column(exc), _database_message(exc))],
                             count) from exc
    return count


def copy_into(conn: sa.Connection, table: sa.Table, data: Mapping[str, list], count: int, *,
              on_rows: RowCallback | None = None) -> None:
    """COPY ``count`` rows given column by column (``data``: column name -> values) into ``table``."""
    names = list(data)
    for name in names:
        table.c[name]  # noqa: B018 - KeyError on a name that is not a column: no identifier comes from elsewhere
    raw: psycopg.Connection = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for i in range(count):
            copy.write_row([_copy_value(data[name][i]) for name in names])
            if on_rows is not None and (i + 1) % 1000 == 0:
                on_rows(1000)
    if on_rows is not None:
        on_rows(count % 1000)


def restart_ids_after(conn: sa.Connection, table: sa.Table) -> None:
    """Set the id sequence of ``table`` past its largest id, after rows were copied in with their ids."""
    conn.execute(sa.select(sa.func.setval(sa.func.pg_get_serial_sequence(table.name, "id"),
                                          sa.select(sa.func.coalesce(sa.func.max(table.c.id), 1))
                                          .scalar_subquery())))


def _copy_value(value):
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, float) and pd.isna(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _constraint_column(exc: psycopg.Error) -> str | None:
    diag = exc.diag
    return diag.column_name or diag.constraint_name


def _database_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [diag.message_primary or str(exc)]
    if diag.message_detail:
        detail = diag.message_detail
        parts.append(detail if len(detail) <= 300 else detail[:300] + "...)")
    return "the database refused the rows: " + " ".join(parts)
