"""Real clients: the Debian gdal-bin (ogrinfo) and the GDAL in pyogrio's wheel read the tiles through the OGC API
Tiles driver, and send an -where on a queryable to the server instead of downloading the whole collection."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pyogrio
import pytest
import sqlalchemy as sa

from .harness.devserver import service
from .helpers import current_count


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    with service(database_url, ready_path="/conformance") as url:
        yield url


def _ogrinfo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CPL_DEBUG": "ON", "GDAL_HTTP_TIMEOUT": "60"})


def test_gdal_follows_the_tiles_metadata_to_every_zoom(server_url: str) -> None:
    """GDAL 3.12 (pyogrio's): collection -> tileset list -> tileset -> tile matrix set -> one layer per zoom.
    (Reading features from those layers still gives none: see the README's Clients section.)"""
    source = f"OGCAPI:{server_url}/collections/elder_care"
    layers = [name for name, _ in pyogrio.list_layers(source)]
    assert layers == [f"Zoom level {z}" for z in range(23)]


def test_gdal_sends_a_where_on_a_queryable_to_the_server(server_url: str, conn: sa.Connection) -> None:
    done = _ogrinfo("-so", "-where", "road_class = 'urban_branch'", f"OAPIF:{server_url}", "roads")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "road_class=urban_branch" in done.stderr  # the filter went to the server
    expected = current_count(conn, "roads", "road_class = 'urban_branch'")
    assert f"Feature Count: {expected}" in done.stdout
