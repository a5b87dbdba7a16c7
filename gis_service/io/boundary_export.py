"""The boundary inspectors' field package: the lines of one selection and their markers, in one file.

Selections: one line (its code), every line of a township (its township lines and the county lines along its
border), or every line shared with a neighbouring county. Formats, all written by GDAL (pyogrio):

- geojson: one FeatureCollection (EPSG:4326), lines then markers, ``feature_type`` telling them apart;
- kml: folders ``boundary_lines`` and ``boundary_markers`` (LIBKML), placemarks named by line code and marker number;
- gpx: markers as waypoints named by their number, lines as tracks (GPX 1.1, WGS84), for handheld GPS;
- gpkg: layers ``boundary_lines`` and ``boundary_markers`` in EPSG:4490, dates as dates;
- shp: a zip of the two Shapefiles (EPSG:4490, UTF-8 .cpg, dates as dates).

KML and GPX are XML that viewers show as HTML (a KML ``<description>`` is an HTML balloon in Google Earth; OsmAnd
renders GPX descriptions): every text written into them is HTML-escaped, so an inspection note or a line name that
holds ``<img onerror=...>`` is shown as those characters, never run. Characters XML cannot hold at all (control
characters, U+FFFE/U+FFFF, lone surrogates; the API and the import refuse them, but older rows may hold them) are
written as U+FFFD, so one such row cannot make a whole export fail.
"""

from __future__ import annotations

import html
import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import geopandas as gpd
import pandas as pd
import pyogrio
import sqlalchemy as sa

from gis_service.errors import InvalidInputError, NotFoundError
from gis_service.io.files import write_features
from gis_service.layers import get_layer
from gis_service.settings import SERVE_SRID, STORAGE_SRID
from gis_service.store import exports

FORMATS = {
    "geojson": ("application/geo+json", "geojson"),
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "gpx": ("application/gpx+xml", "gpx"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "shp": ("application/zip", "zip"),
}
#: Metres of shared border for a county line to count as one of a township's lines.
TOWNSHIP_BORDER_MIN_M = 10.0
#: The codes a selection names (an empty value is a selection not made).
SELECTION_PATTERNS = {"line": "^(?:[0-9]{6,12}-[0-9]{6,12})?$", "township": "^(?:[0-9]{9}(?:[0-9]{3})?)?$",
                      "neighbour": "^(?:[0-9]{6})?$"}


@dataclass(frozen=True)
class Selection:
    """Which lines: exactly one of ``line``, ``township`` or ``neighbour`` (codes)."""

    line: str | None = None
    township: str | None = None
    neighbour: str | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("line", "township", "neighbour") if getattr(self, name)]
        if len(given) != 1:
            raise InvalidInputError("name exactly one of line=CODE, township=CODE or neighbour=CODE "
                                    f"(got {', '.join(given) or 'none'})")
        value = getattr(self, given[0])
        if not re.fullmatch(SELECTION_PATTERNS[given[0]], value):
            examples = {"line": "500241-500242", "township": "500241107 or 500241107000", "neighbour": "500242"}
            raise InvalidInputError(f"{given[0]} must look like {examples[given[0]]}; got {value[:40]!r}")

    @property
    def slug(self) -> str:
        kind = next(name for name in ("line", "township", "neighbour") if getattr(self, name))
        return f"boundaries_{kind}_{getattr(self, kind)}"


def read_selection(conn: sa.Connection, selection: Selection, *, measure_srid: int
                   ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The selected lines and all their markers (EPSG:4490). NotFoundError if no line matches."""
    lines = exports.selected_lines(conn, line=selection.line, township=selection.township,
                                   neighbour=selection.neighbour, measure_srid=measure_srid,
                                   township_border_min_m=TOWNSHIP_BORDER_MIN_M)
    if lines.empty:
        raise NotFoundError(_nothing_found(conn, selection))
    markers = exports.markers_of_lines(conn, list(lines["code"]))
    return lines, markers


def _dates_as_text(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its dates as YYYY-MM-DD text (GeoJSON has no dates)."""
    return frame.assign(**{column: frame[column].map(lambda d: d.isoformat() if pd.notna(d) and d else None)
                           for column in ("last_inspected", "set_on") if column in frame})


def _nothing_found(conn: sa.Connection, selection: Selection) -> str:
    if selection.line:
        return f"no boundary line has the code {selection.line}"
    if selection.neighbour:
        neighbours = exports.county_neighbours(conn)
        return f"no county line is shared with {selection.neighbour}; the neighbours are: {', '.join(neighbours)}"
    return f"no boundary line belongs to township {selection.township}"


def export_boundaries(conn: sa.Connection, selection: Selection, *, fmt: str, measure_srid: int
                      ) -> tuple[bytes, str, str]:
    """The field package as bytes, with its media type and a file name."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}; got {fmt[:40]!r}")
    lines, markers = read_selection(conn, selection, measure_srid=measure_srid)
    media_type, extension = FORMATS[fmt]
    writer = {"geojson": _geojson, "kml": _kml, "gpx": _gpx, "gpkg": _gpkg, "shp": _shp}[fmt]
    return writer(lines, markers), media_type, f"{selection.slug}.{extension}"


# -- writers --------------------------------------------------------------------------------------------

def _marker_description(row) -> str:
    markers = get_layer("boundary_markers")
    kind = markers.field_named("marker_type").label_of(row.marker_type)
    parts = [f"界桩 {row.number}", f"类型 {row.marker_type}（{kind}）",
             f"状况 {markers.field_named('condition').label_of(row.condition)}", f"所属界线 {row.line_code}",
             f"最近检查 {row.last_inspected or '无记录'}"]
    if row.last_notes:
        parts.append(f"备注 {row.last_notes}")
    return "；".join(parts)


def _line_description(row) -> str:
    return (f"{row.name}：{row.left_name}（{row.left_code}）与 {row.right_name}（{row.right_code}），"
            f"长 {row.length_m / 1000:.2f} km，状态 {row.status}，最近检查 {row.last_inspected or '无记录'}")


#: What XML 1.0 cannot hold: C0 controls but tab and line breaks, surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _markup_text(value):
    """``value`` fit for a KML or GPX text: HTML-escaped, XML's forbidden characters as U+FFFD; not text: as is."""
    if not isinstance(value, str):
        return value
    return html.escape(_NOT_XML.sub("\ufffd", value))


def _as_markup(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with every text cell made fit for KML or GPX (the geometry untouched)."""
    return frame.assign(**{column: frame[column].map(_markup_text) for column in frame.columns
                           if column != frame.geometry.name and not pd.api.types.is_numeric_dtype(frame[column])})


def _with_temp_dir(write) -> bytes:
    with tempfile.TemporaryDirectory(prefix="gis-export-") as folder:
        return write(Path(folder))


def _geojson(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame) -> bytes:
    def features(frame: gpd.GeoDataFrame, feature_type: str) -> list[dict]:
        if frame.empty:
            return []
        frame = _dates_as_text(frame).to_crs(SERVE_SRID).assign(feature_type=feature_type)
        return json.loads(frame.to_json(drop_id=True, to_wgs84=False))["features"]

    return _with_temp_dir(lambda folder: _write_rfc7946(
        folder, features(lines, "boundary_line") + features(markers, "boundary_marker")))


def _write_rfc7946(folder: Path, features: list[dict]) -> bytes:
    """Let GDAL write the collection with RFC7946=YES (right-hand winding, 7 decimals, no crs member)."""
    source = folder / "in.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    frame = pyogrio.read_dataframe(source)
    target = folder / "out.geojson"
    pyogrio.write_dataframe(frame, target, driver="GeoJSON", RFC7946="YES", WRITE_BBOX="NO")
    return target.read_bytes()


def _kml(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame) -> bytes:
    def write(folder: Path) -> bytes:
        path = folder / "boundaries.kml"
        named_lines = lines.to_crs(SERVE_SRID).assign(
            Name=lines["code"], Description=[_line_description(r) for r in lines.itertuples()])
        pyogrio.write_dataframe(_as_markup(named_lines), path, layer="boundary_lines", driver="LIBKML")
        if not markers.empty:
            named_markers = markers.to_crs(SERVE_SRID).assign(
                Name=markers["number"], Description=[_marker_description(r) for r in markers.itertuples()])
            pyogrio.write_dataframe(_as_markup(named_markers), path, layer="boundary_markers", driver="LIBKML",
                                    append=True)
        return path.read_bytes()

    return _with_temp_dir(write)


GPX_NS = "http://www.topografix.com/GPX/1/1"


def _gpx(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame) -> bytes:
    """GDAL writes one GPX layer per file: waypoints and tracks are written apart, then the tracks are moved
    into the waypoint file after its waypoints (the order GPX 1.1 requires)."""
    def write(folder: Path) -> bytes:
        waypoints_path, tracks_path = folder / "waypoints.gpx", folder / "tracks.gpx"
        waypoints = gpd.GeoDataFrame({
            "name": markers["number"],
            "desc": [_marker_description(r) for r in markers.itertuples()],
            "sym": "Flag",
            "type": markers["marker_type"],
        }, geometry=markers.geometry.values, crs=STORAGE_SRID).to_crs(SERVE_SRID)
        tracks = gpd.GeoDataFrame({
            "name": lines["code"] + " " + lines["name"],
            "desc": [_line_description(r) for r in lines.itertuples()],
        }, geometry=lines.geometry.values, crs=STORAGE_SRID).to_crs(SERVE_SRID)
        pyogrio.write_dataframe(_as_markup(tracks), tracks_path, layer="tracks", driver="GPX")
        if waypoints.empty:
            return tracks_path.read_bytes()
        pyogrio.write_dataframe(_as_markup(waypoints), waypoints_path, layer="waypoints", driver="GPX")
        ElementTree.register_namespace("", GPX_NS)
        document = ElementTree.parse(waypoints_path)
        for track in ElementTree.parse(tracks_path).getroot().findall(f"{{{GPX_NS}}}trk"):
            document.getroot().append(track)
        buffer = io.BytesIO()
        document.write(buffer, encoding="utf-8", xml_declaration=True)
        return buffer.getvalue()

    return _with_temp_dir(write)


def _gpkg(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame) -> bytes:
    def write(folder: Path) -> bytes:
        path = folder / "boundaries.gpkg"
        write_features(lines, path, layer="boundary_lines", driver="GPKG")
        write_features(markers, path, layer="boundary_markers", driver="GPKG")
        return path.read_bytes()

    return _with_temp_dir(write)


def _shp(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame) -> bytes:
    def write(folder: Path) -> bytes:
        # Shapefile field names are at most 10 characters.
        write_features(lines.rename(columns={"last_inspected": "last_insp"}), folder / "boundary_lines.shp",
                       driver="ESRI Shapefile", encoding="UTF-8")
        write_features(markers.rename(columns={"last_inspected": "last_insp", "marker_type": "type",
                                               "last_notes": "notes"}),
                       folder / "boundary_markers.shp", driver="ESRI Shapefile", encoding="UTF-8")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(folder.iterdir()):
                archive.write(member, member.name)
        return buffer.getvalue()

    return _with_temp_dir(write)
