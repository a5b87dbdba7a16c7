"""GDAL's OAPIF driver (what QGIS and ogr2ogr use) reads the collections from a running server.

The server runs in a subprocess (uvicorn) against the session's database, which holds the committed demo county;
a thread would not do: pyogrio holds the GIL while GDAL waits for the answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pyogrio
import pytest
import sqlalchemy as sa

from gis_service.layers import LAYERS

from .harness.devserver import service


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    """The service in a subprocess on a free port, over the committed demo county."""
    with service(database_url, ready_path="/conformance") as url:
        yield url


def test_gdal_lists_every_collection(server_url: str) -> None:
    names = {name for name, _ in pyogrio.list_layers(f"OAPIF:{server_url}")}
    assert names == set(LAYERS)


@pytest.mark.parametrize("layer_id", ["elder_care", "roads", "admin_divisions"])
def test_gdal_reads_exactly_number_matched_features(server_url: str, layer_id: str) -> None:
    matched = httpx.get(f"{server_url}/collections/{layer_id}/items", params={"limit": 1}).json()["numberMatched"]
    frame = pyogrio.read_dataframe(f"OAPIF:{server_url}", layer=layer_id)
    assert len(frame) == matched > 0
    assert frame.crs.to_epsg() in (4490, 4326)
    # GDAL read the right axis order: every geometry lies in the county, lon about 109, lat about 28.5
    minx, miny, maxx, maxy = frame.total_bounds
    assert 108.2 < minx < maxx < 109.6 and 27.9 < miny < maxy < 28.9
    assert "name" in frame.columns and frame["name"].notna().all()
