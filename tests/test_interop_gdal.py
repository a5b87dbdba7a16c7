"""Real clients against `gis-service serve`, counted in its access log: the GDAL in pyogrio's wheel (3.12) reads
features from the tiles through its OGC API Tiles driver; the Debian gdal-bin (3.6), whose OGC API driver has its
vector-tile reader compiled out, reads them through its MVT driver; both send an -where on a queryable to the
server instead of downloading the whole collection."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable

import httpx
import pyogrio
import pytest
import sqlalchemy as sa

from gis_service.ogc.tiles import WORLD_CRS84_QUAD

from .helpers import Served, current_count

#: One tile unit of a WorldCRS84Quad zoom 11 tile, degrees: how far ST_AsMVTGeom may move a point.
Z11_TILE_UNIT_DEG = 180 / 2 ** 11 / 4096


@pytest.fixture(scope="module")
def served(serve: Callable[..., Served], engine: sa.Engine, database_url: str) -> Served:
    return serve({"GIS_DATABASE_URL": database_url, "GIS_WORKERS": "1"})


def _requests_during(served: Served, action: Callable[[], object]) -> tuple[object, list[dict]]:
    """What ``action`` returned, and the requests the service logged while it ran (path, query, status)."""
    start = len(served.log_text())
    result = action()
    # the service writes a request's log line after sending its answer: a marker request sent now is logged after
    # every request the action saw answered, so once the marker is in the log, so are they
    marker = f"after={uuid.uuid4().hex}"
    httpx.get(f"{served.url}/conformance?{marker}", timeout=30)
    deadline = time.monotonic() + 10
    while marker not in served.log_text()[start:] and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = served.log_text()[start:].splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return result, [e for e in entries if e.get("logger") == "gis_service.access" and marker not in json.dumps(e)]


def _gdal_36(*args: str, tool: str = "ogrinfo") -> subprocess.CompletedProcess:
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GDAL_HTTP_TIMEOUT": "60"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _elder_care(conn: sa.Connection) -> dict[str, tuple[float, float, int]]:
    """name -> (lon, lat, beds) of the current elder-care facilities (their names are unique in the demo)."""
    rows = conn.execute(sa.text("SELECT name, ST_X(geom), ST_Y(geom), beds FROM elder_care")).all()
    assert len({name for name, *_ in rows}) == len(rows)
    return {name: (lon, lat, beds) for name, lon, lat, beds in rows}


def test_gdal_312_reads_every_facility_from_the_tiles_of_a_zoom_level(served: Served, conn: sa.Connection) -> None:
    """collection -> tilesets (GDAL picks WorldCRS84Quad) -> tileset -> tile matrix set -> one layer per zoom; the
    layer of zoom 11 holds each facility once, where it stands, with its figures; GDAL asked for exactly the
    tiles that tileMatrixSetLimits names, not the tiles round 0°, 0° it reads on WebMercatorQuad."""
    source = f"OGCAPI:{served.url}/collections/elder_care"
    assert [name for name, _ in pyogrio.list_layers(source)] == [f"Zoom level {z}" for z in range(22)]

    frame, requests = _requests_during(served, lambda: pyogrio.read_dataframe(source, layer="Zoom level 11"))
    expected = _elder_care(conn)
    assert sorted(frame["name"]) == sorted(expected)
    for name, point, beds in zip(frame["name"], frame.geometry, frame["beds"], strict=True):
        lon, lat, stored_beds = expected[name]
        assert math.dist((point.x, point.y), (lon, lat)) < 2 * Z11_TILE_UNIT_DEG, name
        assert beds == stored_beds, name

    tileset = httpx.get(f"{served.url}/collections/elder_care/tiles/WorldCRS84Quad").json()
    limit = next(lim for lim in tileset["tileMatrixSetLimits"] if lim["tileMatrix"] == "11")
    held = {f"/collections/elder_care/tiles/WorldCRS84Quad/11/{col}/{row}"
            for col in range(limit["minTileCol"], limit["maxTileCol"] + 1)
            for row in range(limit["minTileRow"], limit["maxTileRow"] + 1)}
    asked = {r["path"] for r in requests if r["path"].startswith("/collections/elder_care/tiles/WorldCRS84Quad/11/")}
    assert asked == held, (len(asked), len(held))


def test_tile_matrix_set_limits_name_the_tiles_that_hold_the_layer(served: Served) -> None:
    """Per zoom, the tiles meeting the layer's extent; the tile holding a facility at zoom 11 is among them."""
    tileset = httpx.get(f"{served.url}/collections/elder_care/tiles/WorldCRS84Quad").json()
    limits = {lim["tileMatrix"]: lim for lim in tileset["tileMatrixSetLimits"]}
    assert list(limits) == [str(z) for z in range(22)]
    assert limits["0"] == {"tileMatrix": "0", "minTileRow": 0, "maxTileRow": 0, "minTileCol": 1, "maxTileCol": 1}
    west, south = tileset["boundingBox"]["lowerLeft"]
    east, north = tileset["boundingBox"]["upperRight"]
    col, row = WORLD_CRS84_QUAD.tile_of((west + east) / 2, (south + north) / 2, 11)
    assert limits["11"]["minTileCol"] <= col <= limits["11"]["maxTileCol"]
    assert limits["11"]["minTileRow"] <= row <= limits["11"]["maxTileRow"]
    size = 180 / 2 ** 11  # degrees of a zoom 11 tile: the rectangle is the extent rounded out to whole tiles
    assert limits["11"]["maxTileCol"] - limits["11"]["minTileCol"] <= (east - west) / size + 1
    mercator = httpx.get(f"{served.url}/collections/elder_care/tiles/WebMercatorQuad").json()
    assert [lim["tileMatrix"] for lim in mercator["tileMatrixSetLimits"]] == [str(z) for z in range(23)]


def test_gdal_36_reads_every_facility_from_the_tiles_through_its_mvt_driver(served: Served,
                                                                           conn: sa.Connection) -> None:
    """Debian's ogrinfo reads zoom 12 as a folder of tiles over HTTP ({z}/{x}/{y}.pbf), laid out by the TileJSON."""
    base = f"{served.url}/collections/elder_care/tiles/WebMercatorQuad"
    done, requests = _requests_during(served, lambda: _gdal_36(
        "-ro", "-al", "-oo", f"METADATA_FILE={base}/tilejson.json", f"MVT:{base}/12"))
    names = set(re.findall(r"^  name \(String\) = (.+)$", done.stdout, re.MULTILINE))
    assert names == set(_elder_care(conn))
    tiles = [r for r in requests if r["path"].startswith(f"{base.removeprefix(served.url)}/12/")]
    assert tiles and all(r["path"].endswith(".pbf") and r["status"] in (200, 204) for r in tiles)


def test_gdal_sends_a_where_on_a_queryable_to_the_server(served: Served, conn: sa.Connection) -> None:
    """Every items request GDAL makes after its first look carries the filter: both read only the 4,705 urban
    branch roads, in pages (a whole-collection read of roads took 1,776 requests)."""
    expected = current_count(conn, "roads", "road_class = 'urban_branch'")
    done, requests = _requests_during(served, lambda: _gdal_36(
        "-ro", "-so", "-oo", "PAGE_SIZE=1000", "-where", "road_class = 'urban_branch'", f"OAPIF:{served.url}",
        "roads"))
    assert f"Feature Count: {expected}" in done.stdout
    _assert_filtered_pages(requests, expected)

    frame, requests = _requests_during(served, lambda: pyogrio.read_dataframe(
        f"OAPIF:{served.url}", layer="roads", where="road_class = 'urban_branch'"))
    assert len(frame) == expected and set(frame["road_class"]) == {"urban_branch"}
    _assert_filtered_pages(requests, expected)


def _assert_filtered_pages(requests: list[dict], expected: int) -> None:
    """One page of 1,000 per 1,000 matching roads, each request filtered, besides at most one first look."""
    items = [r for r in requests if r["path"] == "/collections/roads/items"]
    filtered = [r for r in items if "road_class=urban_branch" in r["query"]]
    assert len(filtered) == math.ceil(expected / 1000), [r["query"] for r in items]
    assert len(items) - len(filtered) <= 1
