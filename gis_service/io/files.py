"""Reading layer files (GeoJSON, GeoPackage, Shapefile, CSV) and writing exports, through GDAL (pyogrio)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis_service.errors import InvalidInputError
from gis_service.io.csv_cells import restore
from gis_service.io.csv_cells import write_frame as write_csv_frame
from gis_service.layers.base import Layer
from gis_service.settings import SERVE_SRID, STORAGE_SRID

READ_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip", ".csv"}
EXPORT_FORMATS = ("geojson", "gpkg", "csv")
LON_COLUMNS = ("lon", "lng", "longitude", "x", "经度")
LAT_COLUMNS = ("lat", "latitude", "y", "纬度")
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


def read_layer_file(path: Path, *, layer: Layer, crs: str | None = None) -> tuple[gpd.GeoDataFrame, str]:
    """Read a file into a GeoDataFrame in EPSG:4490.

    ``crs`` declares the coordinates' CRS and overrides what the file says; a CSV without ``crs`` is taken as
    EPSG:4490 longitude/latitude. Returns the frame and a sentence saying which CRS was used.
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
                                f"or a .zip) or CSV with lon/lat columns")
    if suffix == ".csv":
        frame = _read_csv(path)
    else:
        frame = _read_gdal(path, layer=layer, suffix=suffix)
        if suffix in (".shp", ".zip"):
            frame = _restore_shapefile_names(frame, layer)
    if declared is not None:
        frame = frame.set_crs(declared, allow_override=True)
        source = f"coordinates read as {declared.to_string()} (from --crs)"
    elif frame.crs is None:
        if suffix != ".csv":
            raise InvalidInputError(f"{path.name} does not say its coordinate reference system; pass --crs EPSG:<code>")
        frame = frame.set_crs(STORAGE_SRID)
        source = "coordinates read as EPSG:4490 longitude/latitude (CSV; pass --crs if they are not)"
    else:
        source = f"coordinates read as {frame.crs.to_string()} (declared by the file)"
    if frame.crs.to_epsg() != STORAGE_SRID:
        frame = _to_storage(frame)
    return frame, source


def _read_gdal(path: Path, *, layer: Layer, suffix: str) -> gpd.GeoDataFrame:
    target = path
    if suffix == ".zip":
        _check_zip(path)
        target = f"/vsizip/{path}"
    try:
        layers = pyogrio.list_layers(target)
        name = None
        if len(layers) > 1:
            names = [str(n) for n in layers[:, 0]]
            if layer.id not in names:
                raise InvalidInputError(f"{path.name} holds several layers ({', '.join(names)}); name one {layer.id}")
            name = layer.id
        return gpd.read_file(target, layer=name, engine="pyogrio")
    except InvalidInputError:
        raise
    except Exception as exc:  # GDAL reports malformed files in many ways
        raise InvalidInputError(f"cannot read {path.name}: {exc}") from None


#: Limits on what a zip may expand to, against zip bombs.
MAX_ZIP_MEMBERS = 1000
MAX_ZIP_BYTES = 2 * 1024**3


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


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise InvalidInputError(f"{path.name} is not a readable zip file") from None
    if len(members) > MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
        raise InvalidInputError(f"{path.name} expands to more than {MAX_ZIP_MEMBERS} files or "
                                f"{MAX_ZIP_BYTES // 1024**3} GiB; refusing to open it")
    for member in members:
        if member.filename.startswith("/") or ".." in Path(member.filename).parts:
            raise InvalidInputError(f"{path.name} holds an unsafe path {member.filename!r}")


def _read_csv(path: Path) -> gpd.GeoDataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInputError(f"cannot read {path.name} as UTF-8 CSV: {exc}") from None
    table = table.map(restore)  # undo the exports' defence against formulas (see io/csv_cells.py)
    lowered = {c.lower(): c for c in table.columns}
    lon = next((lowered[c] for c in LON_COLUMNS if c in lowered), None)
    lat = next((lowered[c] for c in LAT_COLUMNS if c in lowered), None)
    wkt = next((lowered[c] for c in WKT_COLUMNS if c in lowered), None)
    if lon and lat:
        xs = pd.to_numeric(table[lon].replace("", None), errors="coerce")
        ys = pd.to_numeric(table[lat].replace("", None), errors="coerce")
        geometry = [None if pd.isna(x) or pd.isna(y) else shapely.Point(x, y) for x, y in zip(xs, ys)]
        table = table.drop(columns=[lon, lat])
    elif wkt:
        geometry = []
        for n, text in enumerate(table[wkt], start=1):
            try:
                geometry.append(shapely.from_wkt(text) if text else None)
            except shapely.errors.GEOSException:
                raise InvalidInputError(f"{path.name} row {n}: {wkt} is not valid WKT") from None
        table = table.drop(columns=[wkt])
    else:
        raise InvalidInputError(f"{path.name} needs lon and lat columns (or a wkt column); its columns are "
                                + ", ".join(table.columns))
    table = table.replace("", None)
    return gpd.GeoDataFrame(table, geometry=geometry, crs=None)


def _to_storage(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    coords = shapely.get_coordinates(frame.geometry.values)
    if len(coords) and not pd.Series(coords.ravel()).map(lambda v: v == v and abs(v) != float("inf")).all():
        return frame.set_crs(STORAGE_SRID, allow_override=True)  # let validation name the bad rows
    return frame.to_crs(STORAGE_SRID)


# -- export --------------------------------------------------------------------------------------

def write_export(frame: gpd.GeoDataFrame, path: Path, *, fmt: str, layer_name: str) -> Path:
    """Write a layer's features. GeoJSON in EPSG:4326 (RFC 7946); GeoPackage in EPSG:4490; CSV with lon/lat
    (points) or WKT (other geometries) in EPSG:4490, no text cell a spreadsheet would run (io/csv_cells.py).
    Lists become ';'-separated text outside GeoJSON."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        frame.to_crs(SERVE_SRID).to_file(path, driver="GeoJSON", engine="pyogrio", RFC7946="YES",
                                         WRITE_BBOX="NO")
        return path
    flat = _flatten_lists(frame)
    if fmt == "gpkg":
        flat.to_file(path, driver="GPKG", layer=layer_name, engine="pyogrio")
        return path
    table = pd.DataFrame(flat.drop(columns=flat.geometry.name))
    if (flat.geom_type == "Point").all():
        table.insert(len(table.columns), "lon", flat.geometry.x.round(7))
        table.insert(len(table.columns), "lat", flat.geometry.y.round(7))
    else:
        table["wkt"] = flat.geometry.to_wkt(rounding_precision=7)
    write_csv_frame(table, path)
    return path


def _flatten_lists(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if column != frame.geometry.name and frame[column].map(lambda v: isinstance(v, (list, tuple))).any():
            frame[column] = frame[column].map(lambda v: ";".join(v) if isinstance(v, (list, tuple)) else v)
    return frame
