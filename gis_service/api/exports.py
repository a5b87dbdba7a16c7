"""``GET /exports/boundaries``: the boundary inspectors' field package in one request."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gis_service.api.deps import ConnectionDep, SettingsDep
from gis_service.io.boundary_export import Selection, export_boundaries

router = APIRouter(tags=["exports"])


@router.get(
    "/exports/boundaries",
    summary="Boundary lines and their markers for field inspection",
    description="The lines of one selection with all their markers (number, type, condition, last inspection), "
    "as one file. Name exactly one of `line`, `township` or `neighbour`. GeoJSON, KML and GPX are in WGS84 "
    "(EPSG:4326); GeoPackage and Shapefile in CGCS2000 (EPSG:4490). GPX holds the markers as waypoints named by "
    "their number and the lines as tracks; Shapefile comes as a zip of two layers.",
    response_class=Response,
    responses={200: {"content": {media: {} for media in (
        "application/geo+json", "application/vnd.google-earth.kml+xml", "application/gpx+xml",
        "application/geopackage+sqlite3", "application/zip")}, "description": "the file"},
        400: {"description": "no selection, more than one, or a malformed code or format"},
        404: {"description": "no line matches the selection"}},
)
def boundaries(
    conn: ConnectionDep,
    settings: SettingsDep,
    line: Annotated[str | None, Query(description="Code of one boundary line, e.g. 500241-500242.",
                                      max_length=40)] = None,
    township: Annotated[str | None, Query(description="9- or 12-digit code of a township: its township lines "
                                          "and the county lines along its border.", max_length=12)] = None,
    neighbour: Annotated[str | None, Query(description="6-digit code of a neighbouring county, e.g. 500242 "
                                           "(酉阳): every county line shared with it.", max_length=6)] = None,
    format: Annotated[Literal["geojson", "kml", "gpx", "gpkg", "shp"],
                      Query(description="File format.")] = "geojson",
) -> Response:
    content, media_type, filename = export_boundaries(
        conn, Selection(line=line, township=township, neighbour=neighbour), fmt=format,
        measure_srid=settings.measure_srid)
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
