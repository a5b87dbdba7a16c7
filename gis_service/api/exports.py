"""``GET /exports/boundaries``: the boundary inspectors' field package in one request."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gis_service.api.deps import ConnectionDep, SettingsDep
from gis_service.api.openapi import error_responses
from gis_service.io.boundary_export import SELECTION_PATTERNS, Selection, export_boundaries

router = APIRouter(tags=["exports"])


@router.get(
    "/exports/boundaries",
    summary="Boundary lines and their markers for field inspection",
    description="The lines of one selection with their markers (number, type, condition, last inspection), "
    "as one file. Name exactly one of `line`, `township` or `neighbour`. A township's package holds its township "
    "lines and, of each county line along its border, only the part that bounds it (code `<line>/<township>`, "
    "`part_of` the county line; cut where the township boundaries meet the county line), with exactly the markers "
    "on them (each with its `part_code`). GeoJSON, KML and GPX are in WGS84 (EPSG:4326); GeoPackage and Shapefile "
    "in CGCS2000 (EPSG:4490). GPX holds the markers as waypoints named by their number and the lines as tracks; "
    "KML colours the markers by condition; Shapefile comes as a zip of two layers. Descriptions in KML and GPX are "
    "Chinese; attribute values are the stored codes, or their Chinese labels with `lang=zh`.",
    response_class=Response,
    responses={200: {"content": {media: {"schema": {"type": "string", "format": "binary"}} for media in (
        "application/geo+json", "application/vnd.google-earth.kml+xml", "application/gpx+xml",
        "application/geopackage+sqlite3", "application/zip")}, "description": "the file"},
        **error_responses(400, 404, 503)},
)
def boundaries(
    conn: ConnectionDep,
    settings: SettingsDep,
    line: Annotated[str | None, Query(description="Code of one boundary line, e.g. 500241-500242.",
                                      json_schema_extra={"pattern": SELECTION_PATTERNS["line"]})] = None,
    township: Annotated[str | None, Query(description="9- or 12-digit code of a township: its township lines "
                                          "and the parts of the county lines that bound it.",
                                          json_schema_extra={"pattern": SELECTION_PATTERNS["township"]})] = None,
    neighbour: Annotated[str | None, Query(description="6-digit code of a neighbouring county, e.g. 500242 "
                                           "(酉阳): every county line shared with it.",
                                           json_schema_extra={"pattern": SELECTION_PATTERNS["neighbour"]})] = None,
    format: Annotated[Literal["geojson", "kml", "gpx", "gpkg", "shp"],
                      Query(description="File format.")] = "geojson",
    lang: Annotated[Literal["en", "zh"], Query(
        description="en: coded values as stored (condition intact, status agreed); zh: their Chinese labels "
        "(状况 完好, 状态 已勘定).")] = "en",
) -> Response:
    content, media_type, filename = export_boundaries(
        conn, Selection(line=line, township=township, neighbour=neighbour), fmt=format,
        measure_srid=settings.measure_srid, lang=lang)
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
