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
            "fields": {"id": "Number", **{f.name: _TILEJSON_TYPES[f.type] for f in tile_fields(layer)}},
        }],
    }
