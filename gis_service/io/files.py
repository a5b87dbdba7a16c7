"""Reading layer files (GeoJSON, GeoPackage, Shapefile, CSV) and writing exports, through GDAL (pyogrio)."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis_service.errors import InvalidInputError
from gis_service.io.csv_cells import restore
from gis_service.io.csv_cells import write_frame as write_csv_frame
from gis_service.io.encodings import GBK_LANGUAGE_DRIVER, Decoding, dbf_decoding, decode_text_file, read_cpg
from gis_service.io.excel import read_sheet
from gis_service.io.excel import write_frame as write_sheet_frame
from gis_service.io.geocode import ADDRESS_COLUMNS, TOWNSHIP_COLUMNS, VILLAGE_COLUMNS, place_columns
from gis_service.io.labels import LAT_HEADERS, LON_HEADERS, check_labels, find_header, in_chinese, name_columns
from gis_service.layers import get_layer
from gis_service.layers.base import Layer
from gis_service.limits import check_zip
from gis_service.settings import SERVE_SRID, STORAGE_SRID

READ_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip", ".csv", ".xlsx"}
#: Files read as a table of cells (points from lon/lat columns) rather than by GDAL.
TABLE_SUFFIXES = (".csv", ".xlsx")
EXPORT_FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx")
WKT_COLUMNS = ("wkt", "geometry", "geom")


def parse_crs(text: str) -> CRS:
    """A CRS from 'EPSG:4490', '4490' or any string pyproj understands; InvalidInputError otherwise."""
    text = text.strip()
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise InvalidInputError(f"unknown coordinate reference system {text!r}; write it as EPSG:<code>, "
                                "e.g. EPSG:4490 (CGCS2000) or EPSG:4545 (Gauss-Krüger zone 36)") from None


def read_layer_file(path: Path, *, layer: Layer, crs: str | None = None, encoding: str | None = None,
                    sheet: str | None = None, header_row: int | None = None, coordinates_optional: bool = False
                    ) -> tuple[gpd.GeoDataFrame, str]:
    """Read a file into a GeoDataFrame in EPSG:4490.

    ``crs`` declares the coordinates' CRS and overrides what the file says; a CSV or XLSX without ``crs`` is taken as
    EPSG:4490 longitude/latitude. ``encoding`` overrides the text encoding of a CSV or a Shapefile's DBF
    (io/encodings.py decides it otherwise); ``sheet`` and ``header_row`` choose what of an XLSX workbook is read
    (io/excel.py); with ``coordinates_optional`` a CSV or XLSX may lack lon/lat columns (rows to be placed by their
    address, io/geocode.py). Returns the frame and the sentences (one per line) saying which CRS and which encoding
    were used.
    A frame read from a sheet carries the sheet's row number of each row in ``frame.attrs["source_rows"]``.
    Columns that name a field by its Chinese title or a synonym (io/labels.py) carry the field's name.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"no such file or folder: {path}")
    declared = parse_crs(crs) if crs else None
    suffix = path.suffix.lower()
    if path.is_dir():
        shapefiles = sorted(path.glob("*.shp"))
        if len(shapefiles) != 1:
            raise InvalidInputError(f"the folder {path} must hold exactly one .shp file; it holds {len(shapefiles)}")
        path, suffix = shapefiles[0], ".shp"
    if suffix not in READ_SUFFIXES:
        raise InvalidInputError(f"cannot import {path.name}: use GeoJSON, GeoPackage, Shapefile (.shp, a folder "
                                f"or a .zip), CSV or XLSX with lon/lat columns")
    if encoding is not None and suffix not in (".csv", ".shp", ".zip"):
        raise InvalidInputError(f"--encoding applies to CSV files and Shapefiles (their DBF); {path.name} is "
                                "always read as UTF-8")
    notes = []
    if suffix in TABLE_SUFFIXES:
        table = read_table(path, encoding=encoding, sheet=sheet, header_row=header_row,
                           known_headers=_layer_headers(layer))
        frame = _points_from_table(table.frame, path.name, optional=coordinates_optional)
        frame.attrs["source_rows"] = table.source_rows
        notes.append(table.note)
    else:
        frame, decoding = _read_gdal(path, layer=layer, suffix=suffix, encoding=encoding)
        if suffix in (".shp", ".zip"):
            frame = _restore_shapefile_names(frame, layer)
            notes.append(f"text read as {decoding.reason}")
    if declared is not None:
        frame = frame.set_crs(declared, allow_override=True)
        source = f"coordinates read as {declared.to_string()} (from --crs)"
    elif frame.crs is None:
        if suffix not in TABLE_SUFFIXES:
            raise InvalidInputError(f"{path.name} does not say its coordinate reference system; pass --crs EPSG:<code>")
        frame = frame.set_crs(STORAGE_SRID)
        source = (f"coordinates read as EPSG:4490 longitude/latitude ({suffix[1:].upper()}; pass --crs if they are "
                  "not)")
    else:
        source = f"coordinates read as {frame.crs.to_string()} (declared by the file)"
    if frame.crs.to_epsg() != STORAGE_SRID:
        frame = _to_storage(frame)
    source_rows = frame.attrs.get("source_rows")
    frame = name_columns(frame, layer)
    frame.attrs["source_rows"] = source_rows
    return frame, "\n".join([source, *notes])


def _layer_headers(layer: Layer) -> set[str]:
    """Column headers that mark a sheet's header row for ``layer``: its fields' names, Chinese titles and synonyms,
    and the coordinate columns."""
    return {*(header for spec in layer.fields for header in spec.headers), *LON_HEADERS, *LAT_HEADERS,
            *WKT_COLUMNS, "id", *TOWNSHIP_COLUMNS, *VILLAGE_COLUMNS, *ADDRESS_COLUMNS}


def _read_gdal(path: Path, *, layer: Layer, suffix: str, encoding: str | None = None
               ) -> tuple[gpd.GeoDataFrame, Decoding | None]:
    """The file's features, and for a Shapefile the encoding its DBF was read in (io/encodings.py)."""
    target = path
    if suffix == ".zip":
        check_zip(path)
        target = f"/vsizip/{path}"
    try:
        layers = pyogrio.list_layers(target)
        name = None
        if len(layers) > 1:
            names = [str(n) for n in layers[:, 0]]
            if layer.id not in names:
                raise InvalidInputError(f"{path.name} holds several layers ({', '.join(names)}); name one {layer.id}")
            name = layer.id
        decoding = None
        if suffix in (".shp", ".zip"):
            dbf, dbf_name, cpg = _shapefile_dbf(path, name)
            decoding = dbf_decoding(dbf, name=dbf_name, cpg=cpg, override=encoding)
        frame = gpd.read_file(target, layer=name, engine="pyogrio",
                              encoding=decoding.gdal_name if decoding else None)
        return frame, decoding
    except InvalidInputError:
        raise
    except Exception as exc:  # GDAL reports malformed files in many ways
        raise InvalidInputError(f"cannot read {path.name}: {exc}") from None


def _shapefile_dbf(path: Path, layer_name: str | None) -> tuple[bytes, str, str | None]:
    """The bytes of a Shapefile's DBF (a .shp beside it, or inside a zip), its name and the text of its .cpg."""
    if path.suffix.lower() != ".zip":
        dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
        if dbf is None:
            raise InvalidInputError(f"{path.name} has no .dbf beside it: a Shapefile needs its .shp, .shx and .dbf")
        return dbf.read_bytes(), dbf.name, read_cpg(path)
    with zipfile.ZipFile(path) as archive:
        members = {Path(m.filename): m for m in archive.infolist() if not m.is_dir()}
        dbfs = [p for p in members if p.suffix.lower() == ".dbf" and (layer_name is None or p.stem == layer_name)]
        if len(dbfs) != 1:
            raise InvalidInputError(f"{path.name} must hold one Shapefile with its .dbf; it holds {len(dbfs)} "
                                    ".dbf files")
        dbf = dbfs[0]
        cpg = next((p for p in members if p.parent == dbf.parent and p.stem == dbf.stem
                    and p.suffix.lower() == ".cpg"), None)
        cpg_text = archive.read(members[cpg])[:100].decode("ascii", errors="replace") if cpg else None
        return archive.read(members[dbf]), dbf.name, cpg_text


def _restore_shapefile_names(frame: gpd.GeoDataFrame, layer: Layer) -> gpd.GeoDataFrame:
    """Shapefiles cut field names to 10 characters (nursing_beds → nursing_be): give back the layer's names
    where exactly one field starts with the cut name."""
    renames = {}
    for column in frame.columns:
        if column in layer.field_names or len(column) != 10:
            continue
        matches = [name for name in layer.field_names if name.startswith(column)]
        if len(matches) == 1:
            renames[column] = matches[0]
    return frame.rename(columns=renames)


@dataclass(frozen=True)
class Table:
    """Rows of a CSV or a sheet: text cells (and a sheet's numbers and dates as they are), the sheet's row number of
    each row (None for CSV: rows are counted from the first after the header) and the sentence saying how the file
    was read."""

    frame: pd.DataFrame
    source_rows: list[int] | None
    note: str


def read_table(path: Path, *, encoding: str | None = None, sheet: str | None = None, header_row: int | None = None,
               known_headers: set[str] = frozenset()) -> Table:
    """A CSV (in the encoding io/encodings.py decides) or the first sheet (or ``sheet``) of an XLSX workbook, its
    header row found by io/excel.py (``known_headers`` are names that mark it) unless ``header_row`` says."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        if encoding is not None:
            raise InvalidInputError("--encoding applies to CSV files and Shapefiles; an XLSX workbook says its own")
        return Table(*read_sheet(path, sheet=sheet, header_row=header_row, known_headers=known_headers))
    if sheet is not None or header_row is not None:
        raise InvalidInputError("--sheet and --header-row apply to XLSX workbooks; a CSV's first line is its header")
    text, decoding = decode_text_file(path, override=encoding)
    try:
        first_line = text.split("\n", 1)[0]
        separator = "\t" if "\t" in first_line and "," not in first_line else ","  # Excel's "Unicode text" is tabbed
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=separator)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInputError(f"cannot read {path.name} as CSV: {exc}") from None
    table = table.map(restore)  # undo the exports' defence against formulas (see io/csv_cells.py)
    table.columns = [str(c).strip() for c in table.columns]
    return Table(table, None, f"text read as {decoding.reason}")


def _points_from_table(table: pd.DataFrame, name: str, *, optional: bool = False) -> gpd.GeoDataFrame:
    """Points from lon/lat columns (or geometries from a WKT column) of a CSV or sheet; EPSG:4490 unless told. With
    ``optional``, a table without either has no geometries (None)."""
    lon = find_header(table.columns, LON_HEADERS)
    lat = find_header(table.columns, LAT_HEADERS)
    wkt = find_header(table.columns, WKT_COLUMNS)
    if lon and lat:
        xs = pd.to_numeric(table[lon].map(_number_text), errors="coerce")
        ys = pd.to_numeric(table[lat].map(_number_text), errors="coerce")
        geometry = [None if pd.isna(x) or pd.isna(y) else shapely.Point(x, y) for x, y in zip(xs, ys)]
        table = table.drop(columns=[lon, lat])
    elif wkt:
        geometry = []
        for n, text in enumerate(table[wkt], start=1):
            try:
                geometry.append(shapely.from_wkt(text) if isinstance(text, str) and text.strip() else None)
            except shapely.errors.GEOSException:
                raise InvalidInputError(f"{name} row {n}: {wkt} is not valid WKT") from None
        table = table.drop(columns=[wkt])
    elif optional:
        geometry = [None] * len(table)
    else:
        hint = "; or pass --geocode to place the rows by their address" if place_columns(table.columns) else ""
        raise InvalidInputError(f"{name} needs lon and lat columns (or a wkt column){hint}; its columns are "
                                + ", ".join(map(str, table.columns)))
    table = table.replace("", None)
    return gpd.GeoDataFrame(table, geometry=geometry, crs=None)


def _number_text(value: object) -> object:
    """A coordinate cell as pandas reads numbers: text trimmed (full-width digits made ASCII), numbers as they are,
    empty as None."""
    if isinstance(value, str):
        value = unicodedata.normalize("NFKC", value).strip()
        return value or None
    return value


def _to_storage(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    coords = shapely.get_coordinates(frame.geometry.values)
    if len(coords) and not pd.Series(coords.ravel()).map(lambda v: v == v and abs(v) != float("inf")).all():
        return frame.set_crs(STORAGE_SRID, allow_override=True)  # let validation name the bad rows
    return frame.to_crs(STORAGE_SRID)


# -- export --------------------------------------------------------------------------------------

def write_export(frame: gpd.GeoDataFrame, path: Path, *, fmt: str, layer_name: str,
                 encoding: str | None = None, labels: str = "en") -> Path:
    """Write a layer's features. GeoJSON in EPSG:4326 (RFC 7946); GeoPackage and Shapefile in EPSG:4490, dates as
    dates; CSV (UTF-8 with a byte-order mark) and XLSX with lon/lat (points) or WKT (other geometries) in EPSG:4490,
    no cell a spreadsheet would run (io/csv_cells.py, io/excel.py). Lists become ';'-separated text outside GeoJSON.

    A Shapefile is ``path`` and the files beside it, or a zip of them when ``path`` ends in .zip; its text is UTF-8,
    or GBK with ``encoding="gbk"`` (for desktop tools that know no other: .cpg 936 and the DBF's language driver
    0x4D, so that tools reading either find it).

    ``labels="zh"`` (CSV and XLSX of a layer, ``layer_name`` its id) writes Chinese headers and values that an
    import reads back unchanged (io/labels.py)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    check_labels(labels, fmt)
    if encoding is not None and fmt != "shp":
        raise InvalidInputError(f"--encoding applies to Shapefile exports (--format shp); {fmt} is always UTF-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        frame.to_crs(SERVE_SRID).to_file(path, driver="GeoJSON", engine="pyogrio", RFC7946="YES",
                                         WRITE_BBOX="NO")
        return path
    flat = _flatten_lists(frame)
    if fmt == "gpkg":
        write_features(flat, path, driver="GPKG", layer=layer_name)
        return path
    if fmt == "shp":
        return write_shapefile(flat, path, layer_name=layer_name, encoding=encoding)
    table = pd.DataFrame(flat.drop(columns=flat.geometry.name))
    if (flat.geom_type == "Point").all():
        table.insert(len(table.columns), "lon", flat.geometry.x.round(7))
        table.insert(len(table.columns), "lat", flat.geometry.y.round(7))
    else:
        table["wkt"] = flat.geometry.to_wkt(rounding_precision=7)
    if labels == "zh":
        table = in_chinese(get_layer(layer_name), table)
    if fmt == "xlsx":
        write_sheet_frame(table, path, title=layer_name)
    else:
        write_csv_frame(table, path)
    return path


def write_features(frame: gpd.GeoDataFrame, path: Path, *, driver: str, layer: str | None = None,
                   encoding: str | None = None) -> None:
    """Write ``frame`` with GDAL, columns of dates (``datetime.date`` values) as Date fields.

    pyogrio's ``write_dataframe`` writes such columns as text, and datetime64 columns as DateTime (a Shapefile then
    gets text again): so the columns are handed to ``pyogrio.raw.write`` as numpy ``datetime64[D]`` arrays, which
    GDAL creates as OFTDate in GeoPackage and Shapefile alike. Other columns go as pyogrio would pass them."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    data, masks = [], []
    for name in columns:
        values = frame[name].array
        if _holds_dates(frame[name]):
            data.append(np.array([np.datetime64(v, "D") if isinstance(v, dt.date) else np.datetime64("NaT")
                                  for v in frame[name]], dtype="datetime64[D]"))
            masks.append(None)
        elif isinstance(values, pd.arrays.IntegerArray | pd.arrays.FloatingArray | pd.arrays.BooleanArray):
            data.append(values._data)
            masks.append(values._mask)
        elif isinstance(values, pd.api.extensions.ExtensionArray) and not isinstance(
                values, pd.arrays.NumpyExtensionArray):
            data.append(np.asarray(values, dtype=object))
            masks.append(np.asarray(values.isna()))
        else:
            data.append(frame[name].to_numpy())
            masks.append(None)
    kinds = set(frame.geom_type.dropna())
    pyogrio.raw.write(path, shapely.to_wkb(frame.geometry.values), data, columns, field_mask=masks, layer=layer,
                      driver=driver, geometry_type=kinds.pop() if len(kinds) == 1 else "Unknown",
                      crs=frame.crs.to_wkt() if frame.crs else None, encoding=encoding)


def _holds_dates(column: pd.Series) -> bool:
    present = column.dropna()
    return column.dtype == object and len(present) > 0 and all(
        isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in present)


#: The encodings a Shapefile export may be written in: the .cpg's text and the DBF's language driver.
SHAPEFILE_ENCODINGS = {"utf-8": ("UTF-8", "UTF-8", 0x00), "gbk": ("GBK", "936", GBK_LANGUAGE_DRIVER)}


def write_shapefile(frame: gpd.GeoDataFrame, path: Path, *, layer_name: str, encoding: str | None = None) -> Path:
    """Write ``frame`` as a Shapefile (see :func:`write_export`); text GBK cannot hold is refused before anything is
    written, never replaced by question marks."""
    key = (encoding or "utf-8").strip().lower().replace("_", "-")
    key = {"utf8": "utf-8", "cp936": "gbk", "936": "gbk"}.get(key, key)
    if key not in SHAPEFILE_ENCODINGS:
        raise InvalidInputError(f"a Shapefile export is written in UTF-8 or GBK (--encoding gbk); got {encoding!r}")
    gdal_name, cpg, driver_byte = SHAPEFILE_ENCODINGS[key]
    if key == "gbk":
        _check_gbk(frame)
    path = Path(path)
    zipped = path.suffix.lower() == ".zip"
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"{path.stem}.shp" if zipped else path.with_suffix(".shp")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(truncated|Normalized/laundered).*")
            write_features(frame, target, driver="ESRI Shapefile", encoding=gdal_name)
        target.with_suffix(".cpg").write_text(cpg, encoding="ascii")
        with open(target.with_suffix(".dbf"), "r+b") as dbf:
            dbf.seek(29)
            dbf.write(bytes([driver_byte]))
        if not zipped:
            return target
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(Path(folder).iterdir()):
                archive.write(member, member.name)
    return path


def _check_gbk(frame: gpd.GeoDataFrame) -> None:
    for name in frame.columns:
        if name == frame.geometry.name:
            continue
        for n, value in enumerate(frame[name], start=1):
            if isinstance(value, str):
                try:
                    value.encode("gbk")
                except UnicodeEncodeError as exc:
                    raise InvalidInputError(
                        f"row {n}, {name}: {value!r} holds {value[exc.start:exc.end]!r}, which GBK cannot hold; "
                        "export it in UTF-8 (leave out --encoding gbk) or as a GeoPackage") from None


def _flatten_lists(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if column != frame.geometry.name and frame[column].map(lambda v: isinstance(v, (list, tuple))).any():
            frame[column] = frame[column].map(lambda v: ";".join(v) if isinstance(v, (list, tuple)) else v)
    return frame
