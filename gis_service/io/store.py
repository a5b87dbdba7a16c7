"""Writing checked rows into a layer's table, all or nothing, and reading what rows may refer to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from gis_service.errors import ImportRejected, RowProblem
from gis_service.io.validate import ValidationContext, candidate_ints, candidate_texts, validate_frame
from gis_service.layers.base import Layer
from gis_service.settings import STORAGE_SRID

#: Metres of tolerance around the county outline when checking that data lies inside the county.
COUNTY_TOLERANCE_M = 200
BUNDLED_OUTLINES = {"500241": Path(__file__).resolve().parents[2] / "layers" / "xiushan"
                    / "xiushan_county_amap_wgs84.geojson"}


#: Called with the number of rows just written, for progress bars.
RowCallback = Callable[[int], None]


@dataclass
class WriteResult:
    layer_id: str
    rows_read: int
    rows_written: int
    dry_run: bool = False
    problems: list[RowProblem] = field(default_factory=list)


def county_prefix(county_code: str) -> str:
    """The statistical-code prefix of the counties ``county_code`` stands for: a county's own six digits, or a
    prefecture's four (``500100``) or a province's two (``500000``) for a database holding several counties."""
    code = county_code[:6]
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


#: County outlines grown by the tolerance, per (database, prefix, SRID, admin_divisions data version): a province's
#: union of forty outlines takes a second to grow, and every write checks against it.
_AREAS: dict[tuple, BaseGeometry | None] = {}


def county_area(conn: sa.Connection, *, county_code: str, measure_srid: int) -> BaseGeometry | None:
    """The outline grown by COUNTY_TOLERANCE_M, in EPSG:4490, of the county ``county_code`` names, or of every county
    under a province or prefecture code (see :func:`county_prefix`): from the database, else the bundled file."""
    prefix = county_prefix(county_code)
    database, version = conn.execute(sa.text(
        "SELECT (SELECT instance_id::text FROM network_state), version FROM data_versions "
        "WHERE table_name = 'admin_divisions'")).one()
    key = (database, prefix, measure_srid, version)
    if key in _AREAS:
        return _AREAS[key]
    wkb = conn.execute(sa.text(
        "SELECT ST_AsBinary(ST_Transform(ST_Buffer(ST_Transform(ST_Union(geom), :srid), :tol), 4490)) "
        "FROM admin_divisions WHERE level = 'county' AND valid_to IS NULL AND code LIKE :prefix"
    ), {"srid": measure_srid, "tol": COUNTY_TOLERANCE_M, "prefix": f"{prefix}%"}).scalar()
    area = shapely.from_wkb(bytes(wkb)) if wkb is not None else _bundled_area(prefix, measure_srid)
    if len(_AREAS) > 16:
        _AREAS.clear()
    _AREAS[key] = area
    return area


def _bundled_area(prefix: str, measure_srid: int) -> BaseGeometry | None:
    bundled = BUNDLED_OUTLINES.get(prefix)
    if bundled is None or not bundled.exists():
        return None
    outline = gpd.read_file(bundled).set_crs(STORAGE_SRID, allow_override=True)
    return outline.to_crs(measure_srid).buffer(COUNTY_TOLERANCE_M).to_crs(STORAGE_SRID).union_all()


def load_context(conn: sa.Connection, layer: Layer, frame: pd.DataFrame, *, county_code: str,
                 measure_srid: int) -> ValidationContext:
    """Read what ``frame``'s rows may refer to or clash with (inside the caller's transaction).

    Only the values the frame holds are looked up, so a one-feature write reads a few index entries, not every
    code and id of the table."""
    context = ValidationContext(county_area=county_area(conn, county_code=county_code, measure_srid=measure_srid))
    referenced = set().union(*(candidate_texts(frame, f.name) for f in layer.fields if f.references == "division"))
    if layer.id == "admin_divisions":
        referenced |= candidate_texts(frame, "code")
    context.division_codes = _existing(conn, "SELECT code FROM admin_divisions WHERE valid_to IS NULL "
                                             "AND code = ANY(:values)", referenced)
    current = f"{layer.current_condition} AND " if layer.current_condition else ""
    for spec in layer.fields:
        if spec.unique:
            context.taken[spec.name] = _existing(
                conn, f"SELECT {spec.name} FROM {layer.table} WHERE {current}{spec.name} = ANY(:values)",
                candidate_texts(frame, spec.name))
    context.existing_ids = _existing(conn, f"SELECT id FROM {layer.table} WHERE id = ANY(:values)",
                                     candidate_ints(frame, "id"))
    if layer.id == "boundary_markers":
        context.line_codes = _existing(conn, "SELECT code FROM boundary_lines WHERE code = ANY(:values)",
                                       candidate_texts(frame, "line_code"))
    if layer.id == "place_names":
        context.place_name_ids = _existing(conn, "SELECT id FROM place_names WHERE id = ANY(:values)",
                                           candidate_ints(frame, "successor_id"))
    return context


def _existing(conn: sa.Connection, sql: str, values: set) -> set:
    if not values:
        return set()
    return set(conn.execute(sa.text(sql), {"values": sorted(values)}).scalars())


def check_frame(conn: sa.Connection, layer: Layer, frame: gpd.GeoDataFrame, *, county_code: str,
                measure_srid: int) -> tuple[pd.DataFrame, list[RowProblem]]:
    context = load_context(conn, layer, frame, county_code=county_code, measure_srid=measure_srid)
    return validate_frame(layer, frame, context)


def write_frame(conn: sa.Connection, layer: Layer, frame: gpd.GeoDataFrame, *, county_code: str,
                measure_srid: int, dry_run: bool = False, on_rows: RowCallback | None = None) -> WriteResult:
    """Check and write every row of ``frame`` (EPSG:4490) inside the caller's transaction.

    Raises ImportRejected listing every problem when any row is bad; the caller rolls back.
    """
    if frame.crs is not None and frame.crs.to_epsg() != STORAGE_SRID:
        frame = frame.to_crs(STORAGE_SRID)
    rows, problems = check_frame(conn, layer, frame, county_code=county_code, measure_srid=measure_srid)
    if problems:
        raise ImportRejected(layer.id, problems, len(frame))
    if dry_run or rows.empty:
        return WriteResult(layer.id, len(frame), 0 if dry_run else len(rows), dry_run=dry_run)
    written = copy_rows(conn, layer, rows, measure_srid=measure_srid, on_rows=on_rows)
    return WriteResult(layer.id, len(frame), written)


def copy_rows(conn: sa.Connection, layer: Layer, rows: pd.DataFrame, *, measure_srid: int,
              on_rows: RowCallback | None = None) -> int:
    """COPY checked rows into the layer's table; computed fields (length_m) are measured here."""
    geoms = gpd.GeoSeries(rows["geom"].tolist(), crs=STORAGE_SRID)
    columns = [spec.name for spec in layer.writable_fields]
    data = {name: rows[name].tolist() for name in columns}
    if layer.get_field("length_m") is not None:
        columns.append("length_m")
        data["length_m"] = geoms.to_crs(measure_srid).length.round(2).tolist()
    with_ids = rows["id"].notna().any()
    if with_ids:
        columns.insert(0, "id")
        data["id"] = [None if pd.isna(v) else int(v) for v in rows["id"]]
    columns.append("geom")
    data["geom"] = shapely.to_wkb(shapely.set_srid(geoms.values, STORAGE_SRID), hex=True, include_srid=True)

    raw: psycopg.Connection = conn.connection.driver_connection
    sql = f"COPY {layer.table} ({', '.join(columns)}) FROM STDIN"
    count = len(rows)
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for i in range(count):
                copy.write_row([_copy_value(data[c][i]) for c in columns])
                if on_rows is not None and (i + 1) % 1000 == 0:
                    on_rows(1000)
        if on_rows is not None:
            on_rows(count % 1000)
        if with_ids:
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{layer.table}', 'id'), "
                                 f"(SELECT max(id) FROM {layer.table}))"))
    except psycopg.errors.IntegrityError as exc:
        raise ImportRejected(layer.id, [RowProblem(None, _constraint_column(exc), _database_message(exc))],
                             count) from exc
    return count


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
