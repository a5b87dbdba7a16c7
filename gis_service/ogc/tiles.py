"""Mapbox Vector Tiles of a layer on the WebMercatorQuad grid: the grid, the fields a tile carries, and the layer's
TileJSON. The tile itself is drawn by PostgreSQL (:mod:`gis_service.store.tiles`).

Lines and polygons are simplified per zoom with a tolerance of one tile unit (1/4096 of the tile's width), which
ST_AsMVTGeom's snapping to the tile grid would hide anyway: a z8 tile of the county then carries a few hundred
vertices per township instead of thousands.
"""

from __future__ import annotations

from gis_service.errors import InvalidInputError, TileOutOfRange
from gis_service.layers.base import Layer

TILE_MATRIX_SET = "WebMercatorQuad"
EXTENT = 4096
BUFFER = 64
MIN_ZOOM = 0
MAX_ZOOM = 22
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Text fields this long stay out of tiles (meaning, origin, history): fetch them from the items endpoint.
LONG_TEXT = 2000


def check_tile(z: str, x: str, y: str) -> tuple[int, int, int]:
    """z, x, y as integers on the grid: 400 when not whole numbers, 404 when outside the tile matrix."""
    try:
        zi, xi, yi = int(z), int(x), int(y)
    except ValueError:
        raise InvalidInputError(f"tile coordinates must be whole numbers; got z={z!r}, x={x!r}, y={y!r}") from None
    if not MIN_ZOOM <= zi <= MAX_ZOOM:
        raise TileOutOfRange(f"zoom {zi} is outside {MIN_ZOOM}..{MAX_ZOOM}")
    size = 2 ** zi
    if not (0 <= xi < size and 0 <= yi < size):
        raise TileOutOfRange(f"tile {zi}/{xi}/{yi} is outside the grid: at zoom {zi}, x and y run 0..{size - 1}")
    return zi, xi, yi


#: From this zoom on a tile carries every property (long texts excepted); below it, the overview properties only.
DETAIL_ZOOM = 12


def tile_fields(layer: Layer, z: int = DETAIL_ZOOM) -> list:
    """The properties in a tile at zoom ``z``.

    From DETAIL_ZOOM on: every field but long texts. Below it, where a tile covers a township or more (a z10 roads
    tile of the demo at scale 10 holds some 46,000 segments), only what a map styles and labels with: the label
    field, ``code`` and the enumerated (class) fields; the rest is one zoom-in or one items request away.
    """
    fields = [f for f in layer.fields if not (f.type == "text" and (f.max_length or 0) >= LONG_TEXT)]
    if z >= DETAIL_ZOOM:
        return fields
    return [f for f in fields if f.name in (layer.label_field, "code") or f.values is not None]


def simplify_tolerance_deg(z: int) -> float:
    """One tile unit at zoom ``z``, in degrees of longitude (the storage CRS's unit)."""
    return 360.0 / (2 ** z * EXTENT)


_TILEJSON_TYPES = {"text": "String", "text_list": "String", "date": "String", "integer": "Number",
                   "number": "Number", "boolean": "Boolean"}


def tilejson(layer: Layer, *, base_url: str, bbox: tuple[float, float, float, float] | None) -> dict:
    """TileJSON 3.0.0 of the layer's tiles."""
    bounds = list(bbox) if bbox else [-180.0, -85.0511, 180.0, 85.0511]
    centre = [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6), 10]
    return {
        "tilejson": "3.0.0",
        "name": layer.id,
        "description": f"{layer.title} ({layer.title_zh}): {layer.description}",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{base_url}/collections/{layer.id}/tiles/{TILE_MATRIX_SET}/{{z}}/{{x}}/{{y}}"],
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": centre,
        "vector_layers": [{
            "id": layer.id,
            "description": f"{layer.title}: every field from zoom {DETAIL_ZOOM}, below it only "
            + ", ".join(f.name for f in tile_fields(layer, DETAIL_ZOOM - 1)),
            "minzoom": MIN_ZOOM,
            "maxzoom": MAX_ZOOM,
            "fields": {f.name: _TILEJSON_TYPES[f.type] for f in tile_fields(layer)},  # no id: tiles carry none
        }],
    }


# -- OGC API - Tiles metadata ------------------------------------------------------------------------------------
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
#: Half the width of the Web Mercator square, metres (π · 6,378,137).
_HALF = 20037508.342789244
#: The metres of one pixel at zoom 0 with 256-pixel tiles, and the scale denominator's 0.28 mm pixel.
_CELL_0 = 2 * _HALF / 256
_PIXEL_M = 0.00028


def web_mercator_quad() -> dict:
    """The WebMercatorQuad tile matrix set, zooms MIN_ZOOM..MAX_ZOOM, in OGC 2D Tile Matrix Set 2.0 JSON and, in
    the same document, 1.0 JSON (``type``, ``identifier``, ``tileMatrix``): GDAL up to 3.6 (Debian 12's) reads
    only 1.0, later GDAL and other clients 2.0; the two use different member names, so one document serves both."""
    levels = range(MIN_ZOOM, MAX_ZOOM + 1)
    crs = "http://www.opengis.net/def/crs/EPSG/0/3857"
    return {
        "id": TILE_MATRIX_SET,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": crs,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": [{
            "id": str(z), "scaleDenominator": _CELL_0 / 2 ** z / _PIXEL_M, "cellSize": _CELL_0 / 2 ** z,
            "cornerOfOrigin": "topLeft", "pointOfOrigin": [-_HALF, _HALF], "tileWidth": 256, "tileHeight": 256,
            "matrixWidth": 2 ** z, "matrixHeight": 2 ** z} for z in levels],
        "type": "TileMatrixSetType",
        "identifier": TILE_MATRIX_SET,
        "supportedCRS": crs,
        "boundingBox": {"type": "BoundingBoxType", "crs": crs, "lowerCorner": [-_HALF, -_HALF],
                        "upperCorner": [_HALF, _HALF]},
        "tileMatrix": [{
            "type": "TileMatrixType", "identifier": str(z), "scaleDenominator": _CELL_0 / 2 ** z / _PIXEL_M,
            "topLeftCorner": [-_HALF, _HALF], "tileWidth": 256, "tileHeight": 256, "matrixWidth": 2 ** z,
            "matrixHeight": 2 ** z} for z in levels],
    }


def tileset(layer: Layer, *, base_url: str, bbox: tuple[float, float, float, float] | None) -> dict:
    """The layer's tileset document (OGC API - Tiles 1.0): the tile URL template, the tile matrix set, the layer's
    bounding box and what each tile carries. (No tileMatrixSetLimits: GDAL 3.12 then opens zooms 0 and 1 only.)"""
    href = f"{base_url}/collections/{layer.id}/tiles/{TILE_MATRIX_SET}"
    tms = f"{base_url}/tileMatrixSets/{TILE_MATRIX_SET}"
    document = {
        "title": f"{layer.title} ({TILE_MATRIX_SET})",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetDefinition": tms,  # the name GDAL before 3.6 reads
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": "this tileset"},
            {"href": tms, "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
             "title": "the tile matrix set"},
            {"href": f"{href}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}", "rel": "item", "type": MEDIA_TYPE,
             "title": "a tile (the path is z/x/y)", "templated": True},
            {"href": f"{href}/tilejson.json", "rel": "describedby", "type": "application/json", "title": "TileJSON"},
            {"href": f"{base_url}/collections/{layer.id}", "rel": "collection", "type": "application/json",
             "title": layer.title},
        ],
        "layers": [{"id": layer.id, "dataType": "vector", "geometryType": layer.geometry_type,
                    "minTileMatrix": str(MIN_ZOOM), "maxTileMatrix": str(MAX_ZOOM),
                    "propertiesSchema": {"type": "object", "properties": {
                        f.name: {"type": _TILEJSON_TYPES[f.type].lower()} for f in tile_fields(layer)}}}],
    }
    if bbox is not None:
        document["boundingBox"] = {"lowerLeft": list(bbox[:2]), "upperRight": list(bbox[2:]),
                                   "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    return document
