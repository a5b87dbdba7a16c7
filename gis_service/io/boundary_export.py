"""The boundary inspectors' field package: the lines of one selection and their markers, in one file.

Selections: one line (its code); a township: its township lines and the parts of the county lines that bound it,
with exactly the markers on them (:mod:`gis_service.store.boundary_parts`; a part's code is
``<line code>/<township code>`` and its ``part_of`` the county line's code, each marker carries the ``part_code`` it
belongs to); or every line shared with a neighbouring county, whole. Formats, all written by GDAL (pyogrio):

- geojson: one FeatureCollection (EPSG:4326), lines then markers, ``feature_type`` telling them apart;
- kml: folders ``boundary_lines`` and ``boundary_markers`` (LIBKML), placemarks named by line code and marker number,
  markers coloured by condition as on the boundaries map (完好 green, 损坏 amber, 缺失 red, 移位 purple: the colours
  of the condition Values) with the legend in the document's description;
- gpx: markers as waypoints named by their number, lines as tracks (GPX 1.1, WGS84), for handheld GPS;
- gpkg: layers ``boundary_lines`` and ``boundary_markers`` in EPSG:4490, dates as dates;
- shp: a zip of the two Shapefiles (EPSG:4490, UTF-8 .cpg, dates as dates).

KML and GPX are XML that viewers show as HTML (a KML ``<description>`` is an HTML balloon in Google Earth; OsmAnd
renders GPX descriptions): every text written into them is HTML-escaped, so an inspection note or a line name that
holds ``<img onerror=...>`` is shown as those characters, never run. Characters XML cannot hold at all (control
characters, U+FFFE/U+FFFF, lone surrogates; the API and the import refuse them, but older rows may hold them) are
written as U+FFFD, so one such row cannot make a whole export fail.

Values: the descriptions of KML placemarks and GPX points are Chinese sentences, every coded value in them given by
its label (状况 完好, 状态 已勘定). Attribute values are the stored codes (``condition = intact``), which other
software can match on; ``lang=zh`` writes their Chinese labels instead (``状况 = 完好``), in every format. Labels are
the layers' Values (:mod:`gis_service.layers.boundaries`).
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
from gis_service.layers import Layer, get_layer
from gis_service.maps import markup
from gis_service.settings import SERVE_SRID, STORAGE_SRID
from gis_service.store import exports

FORMATS = {
    "geojson": ("application/geo+json", "geojson"),
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "gpx": ("application/gpx+xml", "gpx"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "shp": ("application/zip", "zip"),
}
LANGUAGES = ("en", "zh")
LINES_LAYER, MARKERS_LAYER = get_layer("boundary_lines"), get_layer("boundary_markers")
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
    """The selected lines and their markers (EPSG:4490). NotFoundError if no line matches."""
    if selection.township:
        code9 = selection.township.ljust(12, "0")[:9]
        lines = exports.township_lines(conn, code9, measure_srid=measure_srid)
        markers = exports.township_markers(conn, code9, measure_srid=measure_srid)
    else:
        lines = exports.selected_lines(conn, line=selection.line, neighbour=selection.neighbour)
        markers = exports.markers_of_lines(conn, list(lines["code"]))
    if lines.empty:
        raise NotFoundError(_nothing_found(conn, selection))
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


def export_boundaries(conn: sa.Connection, selection: Selection, *, fmt: str, measure_srid: int, lang: str = "en"
                      ) -> tuple[bytes, str, str]:
    """The field package as bytes, with its media type and a file name. ``lang``: ``en`` writes coded values as
    stored, ``zh`` their Chinese labels."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}; got {fmt[:40]!r}")
    if lang not in LANGUAGES:
        raise InvalidInputError(f"lang must be one of {', '.join(LANGUAGES)}; got {lang[:40]!r}")
    lines, markers = read_selection(conn, selection, measure_srid=measure_srid)
    media_type, extension = FORMATS[fmt]
    writer = {"geojson": _geojson, "kml": _kml, "gpx": _gpx, "gpkg": _gpkg, "shp": _shp}[fmt]
    return writer(lines, markers, lang), media_type, f"{selection.slug}.{extension}"


# -- writers --------------------------------------------------------------------------------------------

def _label(layer: Layer, field: str, code: object) -> str:
    return layer.field_named(field).label_of(code)


def _marker_description(row) -> str:
    parts = [f"界桩 {row.number}", f"类型 {row.marker_type}（{_label(MARKERS_LAYER, 'marker_type', row.marker_type)}）",
             f"材质 {_label(MARKERS_LAYER, 'material', row.material) or '未记录'}",
             f"状况 {_label(MARKERS_LAYER, 'condition', row.condition)}", f"所属界线 {row.line_code}"]
    if getattr(row, "part_code", None):
        parts.append(f"所属界线段 {row.part_code}")
    parts.append(f"最近检查 {row.last_inspected or '无记录'}")
    if row.last_notes:
        parts.append(f"备注 {row.last_notes}")
    return "；".join(parts)


def _line_description(row) -> str:
    part = f"，为 {row.part_of} 的一段" if getattr(row, "part_of", None) else ""
    return (f"{row.name}（{_label(LINES_LAYER, 'level', row.level)}{part}）：{row.left_name}（{row.left_code}）与 "
            f"{row.right_name}（{row.right_code}），长 {row.length_m / 1000:.2f} km，"
            f"状态 {_label(LINES_LAYER, 'status', row.status)}，最近检查 {row.last_inspected or '无记录'}")


def _in_language(frame: pd.DataFrame, layer: Layer, lang: str) -> pd.DataFrame:
    """``frame`` (of ``layer``'s features) with its coded values as Chinese labels when ``lang`` is zh, unchanged
    otherwise. A label two values share keeps its code beside it (A and B are both 同号双立: 同号双立（A）)."""
    if lang != "zh":
        return frame
    labelled = {}
    for column in frame.columns:
        spec = layer.get_field(column)
        if spec is None or spec.values is None:
            continue
        labels = [v.label_zh for v in spec.values]
        shown = {v.code: v.label_zh if labels.count(v.label_zh) == 1 else f"{v.label_zh}（{v.code}）"
                 for v in spec.values}
        labelled[column] = frame[column].map(lambda v, shown=shown: shown.get(v, v) if v else v)
    if "feature_type" in frame.columns:
        labelled["feature_type"] = layer.title_zh
    return frame.assign(**labelled)


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


def _geojson(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame, lang: str) -> bytes:
    def features(frame: gpd.GeoDataFrame, layer: Layer, feature_type: str) -> list[dict]:
        if frame.empty:
            return []
        frame = _in_language(_dates_as_text(frame).to_crs(SERVE_SRID).assign(feature_type=feature_type), layer, lang)
        return json.loads(frame.to_json(drop_id=True, to_wgs84=False))["features"]

    return _with_temp_dir(lambda folder: _write_rfc7946(
        folder, features(lines, LINES_LAYER, "boundary_line") + features(markers, MARKERS_LAYER, "boundary_marker")))


def _write_rfc7946(folder: Path, features: list[dict]) -> bytes:
    """Let GDAL write the collection with RFC7946=YES (right-hand winding, 7 decimals, no crs member)."""
    source = folder / "in.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    frame = pyogrio.read_dataframe(source)
    target = folder / "out.geojson"
    pyogrio.write_dataframe(frame, target, driver="GeoJSON", RFC7946="YES", WRITE_BBOX="NO")
    return target.read_bytes()


KML_NS = "http://www.opengis.net/kml/2.2"
#: The icon a marker's colour tints (Google Earth keeps it with its program, so it shows offline too).
KML_MARKER_ICON = "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png"


def _kml_colour(rgb: str) -> str:
    """``#rrggbb`` as KML's opaque ``aabbggrr``."""
    return "ff" + rgb[5:7] + rgb[3:5] + rgb[1:3]


def _style_kml(content: bytes, conditions: dict[str, str]) -> bytes:
    """Add a style per marker condition (icon colour and label: the condition Value's colour, as on the maps),
    point each marker placemark (by its name, the marker number, in ``conditions``) at its condition's style, and
    say the colours in the document's description."""
    ElementTree.register_namespace("", KML_NS)
    root = ElementTree.fromstring(content)
    ns = f"{{{KML_NS}}}"
    document = root.find(f"{ns}Document")
    values = [v for v in MARKERS_LAYER.field_named("condition").values or () if v.color]
    description = ElementTree.Element(f"{ns}description")
    description.text = markup.render("kml-legend.html", values=values)
    styles = [description]
    for value in values:
        style = ElementTree.Element(f"{ns}Style", id=f"condition_{value.code}")
        icon_style = ElementTree.SubElement(style, f"{ns}IconStyle")
        ElementTree.SubElement(icon_style, f"{ns}color").text = _kml_colour(value.color)
        ElementTree.SubElement(icon_style, f"{ns}scale").text = "1.1"
        ElementTree.SubElement(ElementTree.SubElement(icon_style, f"{ns}Icon"), f"{ns}href").text = KML_MARKER_ICON
        label_style = ElementTree.SubElement(style, f"{ns}LabelStyle")
        ElementTree.SubElement(label_style, f"{ns}color").text = _kml_colour(value.color)
        styles.append(style)
    for position, element in enumerate(styles):  # a Document's own elements come before its schemas and features
        document.insert(position, element)
    for placemark in root.iter(f"{ns}Placemark"):
        condition = conditions.get(placemark.findtext(f"{ns}name"))
        if condition is None:
            continue
        style_url = ElementTree.Element(f"{ns}styleUrl")
        style_url.text = f"#condition_{condition}"
        children = list(placemark)
        after = max((i for i, child in enumerate(children)
                     if child.tag in (f"{ns}name", f"{ns}description")), default=-1)
        placemark.insert(after + 1, style_url)  # KML's order: name, description, styleUrl, ExtendedData, geometry
    ElementTree.indent(root)
    buffer = io.BytesIO()
    ElementTree.ElementTree(root).write(buffer, encoding="utf-8", xml_declaration=True)
    return buffer.getvalue()


def _kml(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame, lang: str) -> bytes:
    def write(folder: Path) -> bytes:
        path = folder / "boundaries.kml"
        named_lines = lines.to_crs(SERVE_SRID).assign(
            Name=lines["code"], Description=[_line_description(r) for r in lines.itertuples()])
        pyogrio.write_dataframe(_as_markup(_in_language(named_lines, LINES_LAYER, lang)), path,
                                layer="boundary_lines", driver="LIBKML")
        if not markers.empty:
            named_markers = markers.to_crs(SERVE_SRID).assign(
                Name=markers["number"], Description=[_marker_description(r) for r in markers.itertuples()])
            pyogrio.write_dataframe(_as_markup(_in_language(named_markers, MARKERS_LAYER, lang)), path,
                                    layer="boundary_markers", driver="LIBKML", append=True)
        return _style_kml(path.read_bytes(), dict(zip(markers["number"], markers["condition"])))

    return _with_temp_dir(write)


GPX_NS = "http://www.topografix.com/GPX/1/1"


def _gpx(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame, lang: str) -> bytes:
    """GDAL writes one GPX layer per file: waypoints and tracks are written apart, then the tracks are moved
    into the waypoint file after its waypoints (the order GPX 1.1 requires)."""
    def write(folder: Path) -> bytes:
        waypoints_path, tracks_path = folder / "waypoints.gpx", folder / "tracks.gpx"
        waypoints = gpd.GeoDataFrame({
            "name": markers["number"],
            "desc": [_marker_description(r) for r in markers.itertuples()],
            "sym": "Flag",
            "type": _in_language(markers, MARKERS_LAYER, lang)["marker_type"],
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


def _gpkg(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame, lang: str) -> bytes:
    def write(folder: Path) -> bytes:
        path = folder / "boundaries.gpkg"
        write_features(_in_language(lines, LINES_LAYER, lang), path, layer="boundary_lines", driver="GPKG")
        write_features(_in_language(markers, MARKERS_LAYER, lang), path, layer="boundary_markers", driver="GPKG")
        return path.read_bytes()

    return _with_temp_dir(write)


def _shp(lines: gpd.GeoDataFrame, markers: gpd.GeoDataFrame, lang: str) -> bytes:
    def write(folder: Path) -> bytes:
        # Shapefile field names are at most 10 characters.
        write_features(_in_language(lines, LINES_LAYER, lang).rename(columns={"last_inspected": "last_insp"}),
                       folder / "boundary_lines.shp", driver="ESRI Shapefile", encoding="UTF-8")
        write_features(_in_language(markers, MARKERS_LAYER, lang).rename(
            columns={"last_inspected": "last_insp", "marker_type": "type", "last_notes": "notes"}),
                       folder / "boundary_markers.shp", driver="ESRI Shapefile", encoding="UTF-8")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(folder.iterdir()):
                archive.write(member, member.name)
        return buffer.getvalue()

    return _with_temp_dir(write)
