"""Checking and writing a frame of features into a layer, all or nothing; importing a file into a layer and
exporting a layer to a file: the operations behind the CLI and the demo loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from gis_service.errors import ImportRejected, InvalidInputError, RowProblem
from gis_service.io.files import read_layer_file, write_export
from gis_service.io.geocode import load_gazetteer, place_frame
from gis_service.io.labels import check_labels
from gis_service.io.validate import validate_frame
from gis_service.layers import LAYERS, get_layer
from gis_service.layers.base import LOCATION_PRECISIONS, Layer
from gis_service.layers.registry import DIVISIONS
from gis_service.resources import county_sources
from gis_service.settings import STORAGE_SRID, Settings
from gis_service.store import features
from gis_service.store.features import RowCallback

#: Metres of tolerance around the county outline when checking that data lies inside the county.
COUNTY_TOLERANCE_M = 200
BUNDLED_OUTLINES = {"500241": county_sources("xiushan") / "xiushan_county_amap_wgs84.geojson"}


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


#: County outlines grown by the tolerance, per (database and admin_divisions data version, prefix, SRID): a
#: province's union of forty outlines takes a second to grow, and every write checks against it.
_AREAS: dict[tuple, BaseGeometry | None] = {}


def county_area(conn: sa.Connection, *, county_code: str, measure_srid: int) -> BaseGeometry | None:
    """The outline grown by COUNTY_TOLERANCE_M, in EPSG:4490, of the county ``county_code`` names, or of every county
    under a province or prefecture code (see :func:`county_prefix`): from the database, else the bundled file."""
    prefix = county_prefix(county_code)
    version = features.layer_version(conn, DIVISIONS)
    key = (version, prefix, measure_srid)
    if key in _AREAS:
        return _AREAS[key]
    area = features.county_outline(conn, code_prefix=prefix, measure_srid=measure_srid, grown_m=COUNTY_TOLERANCE_M)
    if area is None:
        area = _bundled_area(prefix, measure_srid)
    if version is not None:  # kept only under a key that names the database and the state of its divisions
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


def import_file(engine: sa.Engine, settings: Settings, layer_id: str, path: Path, *, dry_run: bool = False,
                on_rows: RowCallback | None = None, **reading) -> tuple[WriteResult, str]:
    """Read, check and write a file into a layer in one transaction: every row or none.

    ``reading`` are :func:`read_layer_file`'s options (crs, encoding, sheet, header_row). Returns the result and the
    sentences saying which CRS and encoding the file was read in. Raises ImportRejected (listing every bad row) or
    InvalidInputError (the file as a whole) and writes nothing.
    """
    with engine.connect() as conn:
        with conn.begin() as transaction:
            result, notes = import_into(conn, settings, layer_id, path, dry_run=dry_run, on_rows=on_rows, **reading)
            if dry_run:
                transaction.rollback()
    return result, notes


def import_into(conn: sa.Connection, settings: Settings, layer_id: str, path: Path, *, dry_run: bool = False,
                on_rows: RowCallback | None = None, geocode: bool = False, allow_approximate: bool = False,
                **reading) -> tuple[WriteResult, str]:
    """:func:`import_file` inside the caller's transaction (the caller commits or rolls back).

    With ``geocode``, rows without coordinates are placed by their address or village (io/geocode.py); a row it
    cannot place, can place two ways or, unless ``allow_approximate``, places only at its village is a bad row."""
    layer = get_layer(layer_id)
    if allow_approximate and not geocode:
        raise InvalidInputError("--allow-approximate goes with --geocode")
    if geocode and layer.get_field("location_precision") is None:
        placeable = ", ".join(lid for lid, candidate in LAYERS.items() if candidate.get_field("location_precision"))
        raise InvalidInputError(f"--geocode places facilities ({placeable}); {layer.id} needs coordinates")
    frame, notes = read_layer_file(path, layer=layer, coordinates_optional=geocode, **reading)
    source_rows = frame.attrs.get("source_rows")
    problems: list[RowProblem] = []
    if geocode:
        gazetteer = load_gazetteer(conn, county_code=settings.county_code)
        division = next((f.name for f in layer.fields if f.references and f.references.layer == "admin_divisions"),
                        None)
        frame, problems, placed = place_frame(frame, gazetteer, allow_approximate=allow_approximate,
                                              division_field=division)
        notes += "\n" + _placed_note(placed, problems)
    try:
        if problems:  # list the rows' other problems too, then refuse
            _, others = check_frame(conn, layer, frame, county_code=settings.county_code,
                                    measure_srid=settings.measure_srid)
            unplaced = {p.row for p in problems}
            problems += [p for p in others if not (p.row in unplaced and p.field == "geometry")]
            raise ImportRejected(layer.id, sorted(problems, key=lambda p: p.row or 0), len(frame))
        result = write_frame(conn, layer, frame, county_code=settings.county_code,
                             measure_srid=settings.measure_srid, dry_run=dry_run, on_rows=on_rows)
    except ImportRejected as rejected:
        raise numbered_as_in(rejected, source_rows) from None
    return result, notes


def _placed_note(placed, problems: list[RowProblem]) -> str:
    words = {"settlement": "at a settlement", "road": "on a road", "village": "at their village (approximate)"}
    counts = ", ".join(f"{placed[p]} {words[p]}" for p in LOCATION_PRECISIONS if placed[p]) or "none"
    left = f"; {len(problems)} could not be placed (listed below)" if problems else ""
    return f"rows placed by their address: {counts}{left}"


def numbered_as_in(rejected: ImportRejected, source_rows: list[int] | None) -> ImportRejected:
    """``rejected`` with its rows numbered as the sheet they came from numbers them (unchanged without one)."""
    if not source_rows:
        return rejected
    problems = [RowProblem(None if p.row is None else source_rows[p.row - 1], p.field, p.message)
                for p in rejected.problems]
    return ImportRejected(rejected.layer_id, problems, rejected.total_rows,
                          numbering="rows are numbered as in the sheet")


def read_layer(conn: sa.Connection, layer: Layer, *, current_only: bool = False) -> gpd.GeoDataFrame:
    """Every feature of a layer (id, fields, geometry in EPSG:4490), ordered by id."""
    return features.read_frame(conn, layer, current_only=current_only)


def export_layer(engine: sa.Engine, layer_id: str, path: Path, *, fmt: str, encoding: str | None = None,
                 labels: str = "en") -> tuple[Path, int]:
    """Write every feature of a layer to ``path`` (see :func:`write_export`); returns the path and the count."""
    layer = get_layer(layer_id)
    check_labels(labels, fmt)
    with engine.connect() as conn:
        frame = read_layer(conn, layer)
    return write_export(frame, path, fmt=fmt, layer_name=layer.id, encoding=encoding, labels=labels), len(frame)
