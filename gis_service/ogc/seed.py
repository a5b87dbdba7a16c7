"""Seeding the tile cache: render every tile of a layer that holds a feature, zoom by zoom, into the cache.

Which tiles: at the first zoom, those covering the layer's extent; at each next zoom, the four children of every
tile found to hold a feature. Whether a tile holds one is asked of PostGIS for all candidates of a zoom at once, with
the very condition a tile's query selects by (the tile's envelope with its margin, through the GiST index), so no
tile is skipped that would have content and no empty ocean of tiles is rendered: a county at zoom 14 is about a
thousand tiles per layer, not the 30,000 its bounding box spans for a grid of counties.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from gis_service.layers.base import Layer
from gis_service.ogc.tilecache import TileCache
from gis_service.store import tiles as tile_store

#: Candidate tiles asked about in one query.
BATCH = 20_000


def tile_range(bbox: tuple[float, float, float, float], z: int) -> Iterator[tuple[int, int]]:
    """The WebMercatorQuad tiles (x, y from the top) at zoom ``z`` covering ``bbox`` (lon/lat, EPSG:4326)."""
    west, south, east, north = bbox
    n = 2 ** z

    def column(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))

    def row(lat: float) -> int:
        lat = max(-85.0511, min(85.0511, lat))
        return min(n - 1, max(0, int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)))

    for x in range(column(west), column(east) + 1):
        for y in range(row(north), row(south) + 1):
            yield x, y


def with_features(conn: sa.Connection, layer: Layer, z: int,
                  candidates: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The candidate tiles at zoom ``z`` whose envelope (with the tiles' margin) holds a feature of the layer."""
    found: list[tuple[int, int]] = []
    for lo in range(0, len(candidates), BATCH):
        found += tile_store.tiles_with_features(conn, layer, z, candidates[lo:lo + BATCH])
    return sorted(found)


def tiles_to_seed(conn: sa.Connection, layer: Layer, *, min_zoom: int, max_zoom: int) -> list[tuple[int, int, int]]:
    """(z, x, y) of every tile from ``min_zoom`` to ``max_zoom`` that holds a feature of the layer."""
    bbox = tile_store.layer_extent(conn, layer)
    if bbox is None:
        return []
    result: list[tuple[int, int, int]] = []
    candidates = list(tile_range(bbox, min_zoom))
    for z in range(min_zoom, max_zoom + 1):
        found = with_features(conn, layer, z, candidates)
        result += [(z, x, y) for x, y in found]
        candidates = [(2 * x + dx, 2 * y + dy) for x, y in found for dx in (0, 1) for dy in (0, 1)]
    return result


def seed(engine: sa.Engine, cache: TileCache, work: Iterable[tuple[Layer, int, int, int]], *, jobs: int,
         on_tile: Callable[[Layer, bool], None] | None = None) -> dict[str, int]:
    """Render the tiles ``work`` names into ``cache`` with ``jobs`` threads (each its own connection), skipping
    those kept already; ``on_tile(layer, rendered)`` after each. Returns counts: rendered, kept already, empty."""
    counts = {"rendered": 0, "kept": 0, "empty": 0}
    lock = threading.Lock()

    def one(item: tuple[Layer, int, int, int]) -> None:
        layer, z, x, y = item
        with engine.connect() as conn, conn.begin():
            tile = cache.kept(conn, layer, z, x, y)
            rendered = tile is None
            if rendered:
                tile = cache.rendered(conn, layer, z, x, y)
        with lock:
            counts["rendered" if rendered else "kept"] += 1
            counts["empty"] += tile.empty
        if on_tile:
            on_tile(layer, rendered)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for _ in pool.map(one, work):
            pass
    return counts
