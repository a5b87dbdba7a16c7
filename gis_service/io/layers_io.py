"""Checking and writing a frame of features into a layer, all or nothing; importing a file into a layer and
exporting a layer to a file: the operations behind the CLI and the demo loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from gis_service.errors import ImportRejected, RowProblem
from gis_service.io.files import read_layer_file, write_export
from gis_service.io.validate import validate_frame
from gis_service.layers import get_layer
from gis_service.layers.base import Layer
from gis_service.settings import STORAGE_SRID, Settings
from gis_service.store import features
from gis_service.store.features import RowCallback

#: Metres of tolerance around the county outline when checking that data lies inside the county.
COUNTY_TOLERANCE_M = 200
BUNDLED_OUTLINES = {"500241": Path(__file__).resolve().parents[2] / "layers" / "xiushan"
                    / "xiushan_county_amap_wgs84.geojson"}


@dataclass
class WriteResult:
    layer_id: str
    rows_read: int
    rows_written: int
    dry_run: bool = False
    problems: list[RowProblem] = field(default_factory=list)


def county_area(conn: sa.Connection, *, county_code: str, measure_srid: int) -> BaseGeometry | None:
    """The county outline grown by COUNTY_TOLERANCE_M, in EPSG:4490: from the database, else the bundled file."""
    outline = features.county_outline(conn, county_code=county_code, measure_srid=measure_srid,
                                      grown_m=COUNTY_TOLERANCE_M)
    if outline is not None:
        return outline
    bundled = BUNDLED_OUTLINES.get(county_code[:6])
    if bundled is None or not bundled.exists():
        return None
    outline = gpd.read_file(bundled).set_crs(STORAGE_SRID, allow_override=True)
    return outline.to_crs(measure_srid).buffer(COUNTY_TOLERANCE_M).to_crs(STORAGE_SRID).union_all()


def check_frame(conn: sa.Connection, layer: Layer, frame: gpd.GeoDataFrame, *, county_code: str,
                measure_srid: int) -> tuple[pd.DataFrame, list[RowProblem]]:
    """The checked rows of ``frame`` (EPSG:4490) and every problem found (see :func:`validate_frame`)."""
    area = county_area(conn, county_code=county_code, measure_srid=measure_srid)
    return validate_frame(layer, frame, features.validation_context(conn, layer, frame, area))


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
    written = features.copy_rows(conn, layer, rows, measure_srid=measure_srid, on_rows=on_rows)
    return WriteResult(layer.id, len(frame), written)


def import_file(engine: sa.Engine, settings: Settings, layer_id: str, path: Path, *, crs: str | None = None,
                dry_run: bool = False, on_rows: RowCallback | None = None) -> tuple[WriteResult, str]:
    """Read, check and write a file into a layer in one transaction: every row or none.

    Returns the result and a sentence saying which CRS the coordinates were read in. Raises ImportRejected
    (listing every bad row) or InvalidInputError (the file as a whole) and writes nothing.
    """
    with engine.connect() as conn:
        with conn.begin() as transaction:
            result, crs_note = import_into(conn, settings, layer_id, path, crs=crs, dry_run=dry_run,
                                           on_rows=on_rows)
            if dry_run:
                transaction.rollback()
    return result, crs_note


def import_into(conn: sa.Connection, settings: Settings, layer_id: str, path: Path, *, crs: str | None = None,
                dry_run: bool = False, on_rows: RowCallback | None = None) -> tuple[WriteResult, str]:
    """:func:`import_file` inside the caller's transaction (the caller commits or rolls back)."""
    layer = get_layer(layer_id)
    frame, crs_note = read_layer_file(path, layer=layer, crs=crs)
    result = write_frame(conn, layer, frame, county_code=settings.county_code, measure_srid=settings.measure_srid,
                         dry_run=dry_run, on_rows=on_rows)
    return result, crs_note


def read_layer(conn: sa.Connection, layer: Layer, *, current_only: bool = False) -> gpd.GeoDataFrame:
    """Every feature of a layer (id, fields, geometry in EPSG:4490), ordered by id."""
    return features.read_frame(conn, layer, current_only=current_only)


def export_layer(engine: sa.Engine, layer_id: str, path: Path, *, fmt: str) -> tuple[Path, int]:
    layer = get_layer(layer_id)
    with engine.connect() as conn:
        frame = read_layer(conn, layer)
    return write_export(frame, path, fmt=fmt, layer_name=layer.id), len(frame)
