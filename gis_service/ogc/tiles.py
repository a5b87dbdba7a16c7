"""Mapbox Vector Tiles of a layer on the WebMercatorQuad grid (and the WorldCRS84Quad one that GDAL reads, see
:class:`TileGrid`): the grids, the fields a tile carries, the layer's TileJSON and OGC API - Tiles documents. The
tile itself is drawn by PostgreSQL (:mod:`gis_service.store.tiles`).

Lines and polygons are simplified per zoom with a tolerance of one tile unit (1/4096 of the tile's width), which
ST_AsMVTGeom's snapping to the tile grid would hide anyway: a z8 tile of the county then carries a few hundred
vertices per township instead of thousands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: Half the width of the Web Mercator square, metres (π · 6,378,137).
_HALF = 20037508.342789244
#: The metres of one pixel at zoom 0 with 256-pixel tiles, and the scale denominator's 0.28 mm pixel.
_CELL_0 = 2 * _HALF / 256
_PIXEL_M = 0.00028
#: Metres of one degree of longitude at the equator, for the scale of a grid in degrees.
_METRES_PER_DEGREE = 2 * math.pi * 6378137 / 360

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class TileGrid:
    """A tile matrix set of the tiles: its identifier, CRS and the zooms served.

    Two are served. WebMercatorQuad (EPSG:3857, 2^z by 2^z tiles) is what web maps use, with TileJSON beside it.
    WorldCRS84Quad (longitude/latitude degrees, 2^(z+1) by 2^z tiles of 180/2^z degrees) is what GDAL's OGC API
    driver reads features through: it picks WorldCRS84Quad over any other tileset, and it places each zoom's tiles
    by taking the collection's CRS84 extent as coordinates of the tile matrix set's CRS (GDAL 3.6 to 3.12 at least:
    the extent is reprojected for raster tiles only). On WebMercatorQuad it therefore reads the tiles around
    0°, 0° (degrees taken as metres) and gets no feature; with tileMatrixSetLimits, whose tiles do not meet those,
    it opens only zooms 0 and 1, where the tile at 0°, 0° is also the county's. On WorldCRS84Quad degrees are
    degrees. A CRS84 zoom z has the longitude resolution of WebMercatorQuad zoom z + 1 (``mercator_zoom``), which
    decides the properties carried and the simplification.
    """

    id: str
    title: str
    crs: str
    min_zoom: int
    max_zoom: int

    @property
    def uri(self) -> str:
        return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{self.id}"

    @property
    def is_crs84(self) -> bool:
        return self.crs == CRS84

    def matrix_size(self, z: int) -> tuple[int, int]:
        """(columns, rows) at zoom ``z``."""
        return (2 ** (z + 1), 2 ** z) if self.is_crs84 else (2 ** z, 2 ** z)

    def mercator_zoom(self, z: int) -> int:
        """The WebMercatorQuad zoom with this zoom's resolution in degrees of longitude."""
        return z + 1 if self.is_crs84 else z

    def tile_bounds_deg(self, z: int, x: int, y: int) -> Bbox:
        """The tile's (west, south, east, north) in degrees (WorldCRS84Quad only)."""
        size = 180.0 / 2 ** z
        return -180.0 + x * size, 90.0 - (y + 1) * size, -180.0 + (x + 1) * size, 90.0 - y * size

    def tile_of(self, lon: float, lat: float, z: int) -> tuple[int, int]:
        """The (column, row) of the tile holding ``lon``, ``lat`` (degrees) at zoom ``z``, kept inside the grid."""
        columns, rows = self.matrix_size(z)
        if self.is_crs84:
            size = 180.0 / 2 ** z
            col, row = math.floor((lon + 180.0) / size), math.floor((90.0 - lat) / size)
        else:
            lat = max(min(lat, 85.0511287798), -85.0511287798)
            col = math.floor((lon + 180.0) / 360.0 * columns)
            row = math.floor((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * rows)
        return min(max(col, 0), columns - 1), min(max(row, 0), rows - 1)

    def limits(self, bbox: Bbox) -> list[dict]:
        """tileMatrixSetLimits: per zoom, the columns and rows of the tiles that meet ``bbox`` (CRS84 degrees)."""
        limits = []
        for z in range(self.min_zoom, self.max_zoom + 1):
            min_col, min_row = self.tile_of(bbox[0], bbox[3], z)
            max_col, max_row = self.tile_of(bbox[2], bbox[1], z)
            limits.append({"tileMatrix": str(z), "minTileRow": min_row, "maxTileRow": max_row,
                           "minTileCol": min_col, "maxTileCol": max_col})
        return limits

    def check_tile(self, z: str, x: str, y: str) -> tuple[int, int, int]:
        """z, x (column), y (row from the top) as integers: 400 when not whole numbers, 404 outside the grid.
        ``y`` may end in ``.pbf`` or ``.mvt``, as tile files in a folder are named: GDAL's MVT driver, which reads a
        zoom level as such a folder over HTTP, asks for ``{z}/{x}/{y}.pbf``."""
        try:
            zi, xi, yi = int(z), int(x), int(y.removesuffix(".pbf").removesuffix(".mvt"))
        except ValueError:
            raise InvalidInputError(f"tile coordinates must be whole numbers; got z={z!r}, x={x!r}, y={y!r}") from None
        if not self.min_zoom <= zi <= self.max_zoom:
            raise TileOutOfRange(f"zoom {zi} is outside {self.min_zoom}..{self.max_zoom} of {self.id}")
        columns, rows = self.matrix_size(zi)
        if not (0 <= xi < columns and 0 <= yi < rows):
            ranges = (f"x and y run 0..{rows - 1}" if columns == rows
                      else f"x runs 0..{columns - 1} and y 0..{rows - 1}")
            raise TileOutOfRange(f"tile {zi}/{xi}/{yi} is outside the grid: at zoom {zi}, {ranges}")
        return zi, xi, yi

    def tile_matrix_set(self) -> dict:
        """The grid in OGC 2D Tile Matrix Set 2.0 JSON and, in the same document, 1.0 JSON (``type``,
        ``identifier``, ``tileMatrix``): some clients read only 1.0, later GDAL and others 2.0; the two use
        different member names, so one document serves both."""
        levels = range(self.min_zoom, self.max_zoom + 1)
        if self.is_crs84:
            cell_0, origin, box = 180.0 / 256, [-180.0, 90.0], ([-180.0, -90.0], [180.0, 90.0])
            scale_0 = cell_0 * _METRES_PER_DEGREE / _PIXEL_M
            axes, scale_set = ["Lon", "Lat"], "http://www.opengis.net/def/wkss/OGC/1.0/GoogleCRS84Quad"
        else:
            cell_0, origin, box = _CELL_0, [-_HALF, _HALF], ([-_HALF, -_HALF], [_HALF, _HALF])
            scale_0 = _CELL_0 / _PIXEL_M
            axes, scale_set = ["X", "Y"], "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible"
        matrices = [(str(z), scale_0 / 2 ** z, cell_0 / 2 ** z, *self.matrix_size(z)) for z in levels]
        return {
            "id": self.id,
            "title": self.title,
            "uri": self.uri,
            "crs": self.crs,
            "orderedAxes": axes,
            "wellKnownScaleSet": scale_set,
            "tileMatrices": [{
                "id": z, "scaleDenominator": scale, "cellSize": cell, "cornerOfOrigin": "topLeft",
                "pointOfOrigin": origin, "tileWidth": 256, "tileHeight": 256, "matrixWidth": width,
                "matrixHeight": height} for z, scale, cell, width, height in matrices],
            "type": "TileMatrixSetType",
            "identifier": self.id,
            "supportedCRS": self.crs,
            "boundingBox": {"type": "BoundingBoxType", "crs": self.crs, "lowerCorner": box[0], "upperCorner": box[1]},
            "tileMatrix": [{
                "type": "TileMatrixType", "identifier": z, "scaleDenominator": scale, "topLeftCorner": origin,
                "tileWidth": 256, "tileHeight": 256, "matrixWidth": width, "matrixHeight": height}
                for z, scale, _, width, height in matrices],
        }


WEB_MERCATOR_QUAD = TileGrid(TILE_MATRIX_SET, "Google Maps Compatible for the World",
                             "http://www.opengis.net/def/crs/EPSG/0/3857", MIN_ZOOM, MAX_ZOOM)
#: Zooms 0-21: the same resolutions as WebMercatorQuad's 1-22.
WORLD_CRS84_QUAD = TileGrid("WorldCRS84Quad", "CRS84 for the World", CRS84, MIN_ZOOM, MAX_ZOOM - 1)
GRIDS = {grid.id: grid for grid in (WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD)}


def tileset_summary(layer: Layer, grid: TileGrid, *, base_url: str) -> dict:
    """The layer's entry for ``grid`` in its tileset list: where the tileset document and the grid are."""
    href = f"{base_url}/collections/{layer.id}/tiles/{grid.id}"
    tms = f"{base_url}/tileMatrixSets/{grid.id}"
    return {
        "title": f"{layer.title} ({grid.id})",
        "dataType": "vector",
        "crs": grid.crs,
        "tileMatrixSetURI": grid.uri,
        "tileMatrixSetDefinition": tms,  # the name GDAL before 3.6 reads
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": "the tileset"},
            {"href": href, "rel": "http://www.opengis.net/def/rel/ogc/1.0/tileset", "type": "application/json",
             "title": "the tileset"},
            {"href": tms, "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
             "title": "the tile matrix set"},
        ],
    }


def tileset(layer: Layer, *, base_url: str, bbox: Bbox | None, grid: TileGrid = WEB_MERCATOR_QUAD) -> dict:
    """The layer's tileset document on ``grid`` (OGC API - Tiles 1.0): the tile URL template (GDAL requires the
    names ``{tileMatrix}``, ``{tileCol}``, ``{tileRow}`` and the link type application/vnd.mapbox-vector-tile), the
    tile matrix set, the tiles that hold the layer (tileMatrixSetLimits, from its extent ``bbox`` in CRS84) and
    what each tile carries. Each tile has one MVT layer, named after the collection."""
    document = tileset_summary(layer, grid, base_url=base_url)
    href, tms = document["links"][0]["href"], document["tileMatrixSetDefinition"]
    document["links"] = [
        {"href": href, "rel": "self", "type": "application/json", "title": "this tileset"},
        {"href": tms, "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
         "title": "the tile matrix set"},
        {"href": f"{href}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}", "rel": "item", "type": MEDIA_TYPE,
         "title": "a tile (the path is zoom/column/row)", "templated": True},
        {"href": f"{base_url}/collections/{layer.id}", "rel": "collection", "type": "application/json",
         "title": layer.title},
    ]
    if grid is WEB_MERCATOR_QUAD:
        document["links"].append({"href": f"{href}/tilejson.json", "rel": "describedby", "type": "application/json",
                                  "title": "TileJSON"})
    detail = next(z for z in range(grid.min_zoom, grid.max_zoom + 1) if grid.mercator_zoom(z) >= DETAIL_ZOOM)
    document["layers"] = [{
        "id": layer.id, "dataType": "vector", "geometryType": layer.geometry_type,
        "description": f"every property from zoom {detail}; below it only "
        + ", ".join(f.name for f in tile_fields(layer, DETAIL_ZOOM - 1)),
        "minTileMatrix": str(grid.min_zoom), "maxTileMatrix": str(grid.max_zoom),
        "propertiesSchema": {"type": "object", "properties": {
            f.name: {"type": _TILEJSON_TYPES[f.type].lower()} for f in tile_fields(layer)}}}]
    if bbox is not None:
        document["boundingBox"] = {"lowerLeft": list(bbox[:2]), "upperRight": list(bbox[2:]), "crs": CRS84}
        document["tileMatrixSetLimits"] = grid.limits(bbox)
    return document
