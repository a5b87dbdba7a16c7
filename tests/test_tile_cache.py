"""Tiles served like a tile server: kept per layer, tile and data version in the data folder, sent gzip-compressed
when accepted, revalidated with ETags (304), bounded in size, and seeded ahead by `gis-service tiles seed`."""

from __future__ import annotations

import gzip
import os
import subprocess
import time
from pathlib import Path

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.api.ogc import tile_response
from gis_service.auth import create_token
from gis_service.layers import get_layer
from gis_service.ogc.tilecache import TileCache, Version, accepts_gzip, layer_version
from gis_service.settings import Settings
from gis_service.store import tiles as tile_store

from .helpers import CLI, REPO, SEAT_LAT, SEAT_LON, bearer, station, tile_of

Z = 14
X, Y = tile_of(SEAT_LON, SEAT_LAT, Z)
SEAT_TILE = f"/collections/elder_care/tiles/WebMercatorQuad/{Z}/{X}/{Y}"


def _names(mvt: bytes, layer: str = "elder_care") -> set[str]:
    return {f["properties"]["name"] for f in mapbox_vector_tile.decode(mvt)[layer]["features"]}


def test_a_tile_is_sent_gzip_compressed_with_its_etag_and_how_long_to_keep_it(client: TestClient,
                                                                           conn: sa.Connection) -> None:
    answer = client.get(SEAT_TILE, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["Content-Encoding"] == "gzip" and answer.headers["Vary"] == "Accept-Encoding"
    assert answer.headers["Cache-Control"] == "public, max-age=60"
    assert answer.headers["ETag"].endswith('-gzip"')
    assert answer.content == tile_store.render_tile(conn, get_layer("elder_care"), Z, X, Y)  # httpx decompressed it
    assert "Content-Encoding" not in (plain := client.get(SEAT_TILE, headers={"Accept-Encoding": "identity"})).headers
    assert plain.content == answer.content
    assert plain.headers["ETag"] == answer.headers["ETag"].replace("-gzip", "")
    assert int(answer.headers["Content-Length"]) < len(plain.content)  # sent compressed


def test_a_held_tile_is_revalidated_with_304_until_its_layer_changes(client: TestClient, conn: sa.Connection) -> None:
    first = client.get(SEAT_TILE)
    etag = first.headers["ETag"]
    again = client.get(SEAT_TILE, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert client.get(SEAT_TILE, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304

    token = create_token(conn, role="planner", name="测试瓦片")[1]
    added = client.post("/collections/elder_care/items", json=station("测试瓦片养老站"), headers=bearer(token))
    assert added.status_code == 201, added.text
    changed = client.get(SEAT_TILE, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "测试瓦片养老站" in _names(changed.content) and "测试瓦片养老站" not in _names(first.content)


def test_a_tile_is_kept_under_its_version_and_served_from_the_folder(client: TestClient, conn: sa.Connection,
                                                                     settings: Settings) -> None:
    layer = get_layer("elder_care")
    version = layer_version(conn, layer)
    client.get(SEAT_TILE).raise_for_status()
    kept = TileCache(settings.data_dir / "tiles", max_bytes=1).path(layer, version, Z, X, Y)
    assert kept.exists() and f"/{version.version}/{Z}/{X}/{Y}.mvt.gz" in str(kept)
    assert gzip.decompress(kept.read_bytes()) == tile_store.render_tile(conn, layer, Z, X, Y)
    # what is served next is the kept file, not a new render: put another tile's bytes in its place
    other = tile_store.render_tile(conn, get_layer("settlements"), Z, X, Y)
    kept.write_bytes(gzip.compress(other))
    try:
        assert client.get(SEAT_TILE).content == other
    finally:
        kept.unlink()


def test_an_empty_tile_is_204_kept_and_revalidated_too(client: TestClient) -> None:
    empty = "/collections/elder_care/tiles/WebMercatorQuad/14/0/0"
    answer = client.get(empty)
    assert answer.status_code == 204 and answer.content == b"" and answer.headers["ETag"]
    assert client.get(empty, headers={"If-None-Match": answer.headers["ETag"]}).status_code == 304


def test_tiles_of_the_eastern_hemisphere_hold_the_county_at_the_lowest_zooms(client: TestClient) -> None:
    """The tile envelope's margin crossed the antimeridian at zoom 1 and the eastern tile selected the west."""
    for z in (0, 1, 2):
        x, y = tile_of(SEAT_LON, SEAT_LAT, z)
        answer = client.get(f"/collections/admin_divisions/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert answer.status_code == 200, (z, x, y)
        assert "秀山土家族苗族自治县" in {f["properties"]["name"] for f in mapbox_vector_tile.decode(
            answer.content)["admin_divisions"]["features"]}


def test_with_reading_behind_a_token_tiles_are_private(settings: Settings) -> None:
    """Shared caches (a proxy) must not keep a tile that took a token to read."""
    tile = TileCache(Path("/nonexistent"), max_bytes=0).put(get_layer("roads"), Version("db", 1), 1, 1, 0, b"mvt")
    answer = tile_response(tile, if_none_match=None, accept_encoding="gzip",
                           settings=settings.model_copy(update={"read_requires_token": True}))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "private, max-age=60"


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True), ("x-gzip", True),
    ("gzip;q=0", False), ("identity", False), ("", False), (None, False), ("br, *;q=0", False),
    ("deflate, gzip;q=abc", False),
])
def test_accept_encoding_is_read_with_its_q_values(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_the_cache_stays_within_its_bound_removing_the_oldest_tiles_first(tmp_path: Path) -> None:
    layer = get_layer("roads")
    cache = TileCache(tmp_path, max_bytes=64 * 4096, prune_while_writing=False)  # 64 blocks
    version = Version("db", 7)
    for i in range(120):
        cache.put(layer, version, 14, i, 0, os.urandom(2000))  # incompressible: one block each
        os.utime(cache.path(layer, version, 14, i, 0), (1000 + i, 1000 + i))  # written in this order
    cache.prune()
    kept = sorted(int(p.parent.name) for p in tmp_path.rglob("*.mvt.gz"))
    assert cache.size_bytes() <= 64 * 4096 * 0.8
    assert kept == list(range(120 - len(kept), 120))  # the newest stayed


def test_seeding_renders_the_tiles_with_features_into_the_cache_the_service_serves(
        engine: sa.Engine, database_url: str, settings: Settings, tmp_path: Path, client_with) -> None:
    environment = {**os.environ, "GIS_DATABASE_URL": database_url, "GIS_DATA_DIR": str(tmp_path)}
    started = time.perf_counter()
    seeded = subprocess.run([*CLI, "tiles", "seed", "--max-zoom", "13", "--layers", "elder_care,cemeteries"],
                            env=environment, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert seeded.returncode == 0, seeded.stderr
    assert "elder_care" in seeded.stderr and "cemeteries" in seeded.stderr  # the progress bars
    files = list((tmp_path / "tiles").rglob("*.mvt.gz"))
    assert f"{len(files):,} tiles rendered, 0 kept already" in seeded.stderr.replace("\n", " ")
    with engine.connect() as conn:  # every facility is in a seeded tile of zoom 13
        facility_tiles = {tile_of(lon, lat, 13) for lon, lat in conn.execute(sa.text(
            "SELECT ST_X(geom), ST_Y(geom) FROM elder_care WHERE status <> 'closed'"))}
    seeded_tiles = {(int(f.parent.name), int(f.name.split(".")[0])) for f in files
                    if f.match("*/elder_care/*/*/13/*/*.mvt.gz") and f.stat().st_size}
    assert len(facility_tiles) >= 10 and facility_tiles <= seeded_tiles
    assert time.perf_counter() - started < 300

    again = subprocess.run([*CLI, "tiles", "seed", "--max-zoom", "13", "--layers", "elder_care,cemeteries"],
                           env=environment, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert f"0 tiles rendered, {len(files):,} kept already" in again.stderr.replace("\n", " ")

    # the service over the same folder answers from the seeded files
    client = client_with(data_dir=tmp_path)
    x, y = tile_of(SEAT_LON, SEAT_LAT, 13)
    [kept] = [f for f in files if f.match(f"*/elder_care/*/*/13/{x}/{y}.mvt.gz")]
    kept.write_bytes(gzip.compress(b"seeded"))
    assert client.get(f"/collections/elder_care/tiles/WebMercatorQuad/13/{x}/{y}").content == b"seeded"
