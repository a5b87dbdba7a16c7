"""Import a file into a layer and export a layer to a file: the operations behind the CLI."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import sqlalchemy as sa

from gis_service.io.files import read_layer_file, write_export
from gis_service.io.store import RowCallback, WriteResult, write_frame
from gis_service.layers import get_layer
from gis_service.layers.base import Layer
from gis_service.settings import STORAGE_SRID, Settings


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
    where = f" WHERE {layer.current_condition}" if current_only and layer.current_condition else ""
    sql = f"SELECT id, {', '.join(layer.field_names)}, geom FROM {layer.table}{where} ORDER BY id"
    return gpd.read_postgis(sa.text(sql), conn, geom_col="geom", crs=STORAGE_SRID)


def export_layer(engine: sa.Engine, layer_id: str, path: Path, *, fmt: str) -> tuple[Path, int]:
    layer = get_layer(layer_id)
    with engine.connect() as conn:
        frame = read_layer(conn, layer)
    return write_export(frame, path, fmt=fmt, layer_name=layer.id), len(frame)
