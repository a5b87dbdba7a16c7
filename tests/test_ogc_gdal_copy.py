"""A collection copied through GDAL's OAPIF driver to GeoPackage is lossless, and QGIS-style requests work.

The copy is made with ``ogr2ogr`` when it is on PATH (``scripts/setup.sh`` installs gdal-bin), otherwise with
pyogrio (GDAL's OAPIF reader and GPKG writer, as bundled with pyogrio). The server runs in a subprocess (uvicorn)
against the session's database, which holds the committed demo county; a thread would not do: GDAL holds the GIL
while it waits for the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from pyproj import Transformer

from gis_service.layers import LAYERS

from .harness.devserver import service
from .helpers import SEAT_LAT, SEAT_LON

#: Lines with every kind of property (text, number, boolean, date, list), points, and multipolygons with history.
COPIED = ["roads", "boundary_markers", "admin_divisions"]
GEOMETRY_TOLERANCE_DEG = 1e-7


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    """The service in a subprocess on a free port, over the committed demo county."""
    with service(database_url, ready_path="/conformance") as url:
        yield url


def copy_to_geopackage(server_url: str, layer_id: str, path: Path) -> None:
    """``ogr2ogr -f GPKG path OAPIF:server layer`` (FIDs kept), or the same through pyogrio (ids in a column)."""
    ogr2ogr = shutil.which("ogr2ogr")
    if ogr2ogr:
        subprocess.run([ogr2ogr, "-f", "GPKG", str(path), f"OAPIF:{server_url}", layer_id], check=True,
                       capture_output=True, timeout=600)
        return
    frame = pyogrio.read_dataframe(f"OAPIF:{server_url}", layer=layer_id, fid_as_index=True)
    frame["id"] = frame.index.astype("int64")
    for name in frame.columns.drop("geometry"):
        if frame[name].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            # A string list goes to the GeoPackage as JSON text, as newer GDAL writes it itself.
            frame[name] = frame[name].map(lambda v: None if v is None else json.dumps([str(i) for i in v],
                                                                                        ensure_ascii=False))
    pyogrio.write_dataframe(frame, path, layer=layer_id, driver="GPKG")


def read_geopackage(path: Path, layer_id: str) -> dict[int, dict]:
    """Features of the copy by id: their properties and a ``geometry`` (shapely)."""
    frame = pyogrio.read_dataframe(path, layer=layer_id, fid_as_index=True)
    ids = frame["id"] if "id" in frame.columns else frame.index
    records = frame.drop(columns=["id"], errors="ignore").to_dict("records")
    return {int(fid): record for fid, record in zip(ids, records, strict=True)}


def _is_missing(value) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _string_list(value) -> list:
    """A list field as GDAL writes it to a GeoPackage: JSON (newer GDAL), or OGR's ``(count:a,b)`` (3.6), whose
    count must match the items."""
    if not isinstance(value, str):
        return list(value)
    if value.startswith("["):
        return json.loads(value)
    count, _, items = value[1:-1].partition(":")
    assert value[0] == "(" and value[-1] == ")" and count.isdigit(), value
    parsed = items.split(",") if int(count) else []
    assert len(parsed) == int(count), f"the list {value!r} does not survive the copy"
    return parsed


def _copied_value(value, kind: str):
    """A value read from the GeoPackage as the database's type."""
    if _is_missing(value):
        return [] if kind == "text_list" else None
    if kind == "text_list":
        return [str(item) for item in _string_list(value)]
    if kind == "date":
        return value.date() if hasattr(value, "date") else dt.date.fromisoformat(str(value)[:10])
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


@pytest.mark.parametrize("layer_id", COPIED)
def test_a_collection_copies_to_geopackage_losslessly(server_url: str, engine: sa.Engine, tmp_path: Path,
                                                      layer_id: str) -> None:
    layer = LAYERS[layer_id]
    path = tmp_path / f"{layer_id}.gpkg"
    copy_to_geopackage(server_url, layer_id, path)
    copied = read_geopackage(path, layer_id)

    current = f"WHERE {layer.current_condition}" if layer.current_condition else ""
    columns = ", ".join(f.name for f in layer.fields)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            f"SELECT id, {columns}, ST_AsBinary(geom) FROM {layer.table} {current}")).all()
    assert len(copied) == len(rows) > 0
    assert set(copied) == {row[0] for row in rows}
    differences = []
    for row in rows:
        feature = copied[row[0]]
        for spec, stored in zip(layer.fields, row[1:-1], strict=True):
            expected = list(stored or []) if spec.type == "text_list" else stored
            if spec.type == "number" and expected is not None:
                expected = float(expected)
            got = _copied_value(feature.get(spec.name), spec.type)
            if got != expected:
                differences.append((row[0], spec.name, expected, got))
        stored_geometry = shapely.from_wkb(row[-1])
        copied_geometry = feature["geometry"]
        if not (copied_geometry.geom_type == stored_geometry.geom_type and shapely.equals_exact(
                shapely.normalize(copied_geometry), shapely.normalize(stored_geometry),
                tolerance=GEOMETRY_TOLERANCE_DEG)):
            differences.append((row[0], "geometry", stored_geometry.wkt[:80], copied_geometry.wkt[:80]))
    assert differences == [], differences[:5]


def _page_through(server_url: str, path: str, params: dict) -> tuple[list[int], int, int]:
    """Ids of every page from ``path`` following ``next`` links; numberMatched of the first page; pages read."""
    ids: list[int] = []
    url: str | None = server_url + path
    matched = None
    pages = 0
    with httpx.Client(timeout=60) as http:
        while url is not None and pages < 1000:
            page = http.get(url, params=params if pages == 0 else None).json()
            matched = page["numberMatched"] if matched is None else matched
            assert page["numberReturned"] == len(page["features"])
            ids += [feature["id"] for feature in page["features"]]
            url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
            pages += 1
    return ids, matched, pages


def test_qgis_style_bbox_in_web_mercator_and_paging_give_every_feature_once(server_url: str,
                                                                           engine: sa.Engine) -> None:
    to_mercator = Transformer.from_crs(4326, 3857, always_xy=True)
    x, y = to_mercator.transform(SEAT_LON, SEAT_LAT)
    box = (x - 3000, y - 3000, x + 3000, y + 3000)  # 6 km across the county seat, metres, x/y order
    ids, matched, pages = _page_through(server_url, "/collections/roads/items", {
        "bbox": ",".join(f"{v:.2f}" for v in box), "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "limit": 97})
    with engine.connect() as conn:
        expected = set(conn.execute(sa.text(
            "SELECT id FROM roads WHERE ST_Intersects(geom, ST_Transform(ST_Segmentize("
            "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857), :step), 4490))"),
            {"x0": round(box[0], 2), "y0": round(box[1], 2), "x1": round(box[2], 2), "y1": round(box[3], 2),
             "step": 6000 / 64}).scalars())
    assert pages > 3  # the bbox holds several pages
    assert len(ids) == len(set(ids)) == matched  # every feature exactly once
    assert set(ids) == expected


def test_paging_through_a_whole_collection_gives_every_feature_once(server_url: str, engine: sa.Engine) -> None:
    ids, matched, pages = _page_through(server_url, "/collections/place_names/items", {"limit": 500})
    with engine.connect() as conn:
        expected = set(conn.execute(sa.text("SELECT id FROM place_names")).scalars())
    assert pages == math.ceil(len(expected) / 500)
    assert len(ids) == len(set(ids)) == matched == len(expected)
    assert set(ids) == expected
