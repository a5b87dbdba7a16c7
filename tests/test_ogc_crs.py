"""OGC API - Features Part 2: output CRSs with their axis order, bbox-crs, and GCJ-02 for AMap overlays."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pyproj import Transformer

from gis_service.geo.gcj02 import wgs84_to_gcj02

from .helpers import assert_rfc7946, ids, sql_ids

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: A box around the county seat, lon/lat.
BOX = (108.96, 28.42, 109.02, 28.47)


def _points(client: TestClient, **params) -> tuple[dict, dict[int, list[float]]]:
    response = client.get("/collections/settlements/items", params={"limit": 10000, **params})
    assert response.status_code == 200, response.text
    return response, {f["id"]: f["geometry"]["coordinates"] for f in response.json()["features"]}


def test_default_output_is_crs84_lon_lat(client: TestClient, conn: sa.Connection) -> None:
    response, points = _points(client)
    assert response.headers["content-crs"] == f"<{CRS84}>"
    fid = next(iter(points))
    lon, lat = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM settlements WHERE id = :id"),
                            {"id": fid}).one()
    assert points[fid] == pytest.approx([lon, lat], abs=1e-7)


def test_epsg_4490_and_4326_are_latitude_first(client: TestClient) -> None:
    _, lonlat = _points(client)
    for code in (4490, 4326):
        response, latlon = _points(client, crs=f"{EPSG}{code}")
        assert response.headers["content-crs"] == f"<{EPSG}{code}>"
        assert all(latlon[i] == pytest.approx([lat, lon], abs=1e-7) for i, (lon, lat) in lonlat.items())


def test_projected_output_matches_pyproj(client: TestClient) -> None:
    _, lonlat = _points(client)
    to_3857 = Transformer.from_crs(4490, 3857, always_xy=True)
    to_4545 = Transformer.from_crs(4490, 4545, always_xy=True)
    _, mercator = _points(client, crs="EPSG:3857")
    response, gauss = _points(client, crs=f"{EPSG}4545")
    assert response.headers["content-crs"] == f"<{EPSG}4545>"
    for fid, (lon, lat) in lonlat.items():
        assert mercator[fid] == pytest.approx(list(to_3857.transform(lon, lat)), abs=0.01)
        easting, northing = to_4545.transform(lon, lat)
        assert gauss[fid] == pytest.approx([northing, easting], abs=0.01)  # EPSG:4545 is northing, easting
        assert 3.1e6 < gauss[fid][0] < 3.2e6 and 5e5 < gauss[fid][1] < 7e5  # false easting 500 km


def test_bbox_in_web_mercator_selects_what_the_same_box_selects_in_crs84(client: TestClient,
                                                                       conn: sa.Connection) -> None:
    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    x1, y1 = to_3857.transform(BOX[0], BOX[1])
    x2, y2 = to_3857.transform(BOX[2], BOX[3])
    for layer_id in ("settlements", "roads", "admin_divisions"):
        crs84 = client.get(f"/collections/{layer_id}/items",
                           params={"bbox": ",".join(map(str, BOX)), "limit": 10000}).json()
        expected = sql_ids(conn, layer_id, "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4490))",
                           dict(zip("abcd", BOX)))
        assert expected and ids(crs84) == expected, layer_id
        mercator = client.get(f"/collections/{layer_id}/items",
                              params={"bbox": f"{x1},{y1},{x2},{y2}", "bbox-crs": f"{EPSG}3857",
                                      "limit": 10000}).json()
        assert ids(mercator) == expected, layer_id
        latlon = client.get(f"/collections/{layer_id}/items",
                            params={"bbox": f"{BOX[1]},{BOX[0]},{BOX[3]},{BOX[2]}", "bbox-crs": "EPSG:4490",
                                    "limit": 10000}).json()
        assert ids(latlon) == expected, layer_id


def test_bbox_in_the_gauss_kruger_zone_is_northing_easting(client: TestClient, conn: sa.Connection) -> None:
    to_4545 = Transformer.from_crs(4490, 4545, always_xy=True)
    e1, n1 = to_4545.transform(BOX[0], BOX[1])
    e2, n2 = to_4545.transform(BOX[2], BOX[3])
    box = (min(e1, e2), min(n1, n2), max(e1, e2), max(n1, n2))
    for layer_id in ("settlements", "roads"):
        body = client.get(f"/collections/{layer_id}/items",
                          params={"bbox": f"{box[1]},{box[0]},{box[3]},{box[2]}", "bbox-crs": f"{EPSG}4545",
                                  "limit": 10000}).json()
        expected = sql_ids(conn, layer_id,
                           "ST_Intersects(ST_Transform(geom, 4545), ST_MakeEnvelope(:a, :b, :c, :d, 4545))",
                           dict(zip("abcd", box)))
        assert expected and ids(body) == expected, layer_id


def test_gcj02_output_is_shifted_by_the_published_formula(client: TestClient) -> None:
    _, lonlat = _points(client)
    response, shifted = _points(client, crs="gcj02")
    assert "GCJ-02" in response.headers["content-crs"]
    assert_rfc7946(response.json())
    for fid, (lon, lat) in lonlat.items():
        assert shifted[fid] == pytest.approx(list(wgs84_to_gcj02(lon, lat)), abs=2e-7)
    roads = client.get("/collections/roads/items", params={"crs": "gcj02", "limit": 5}).json()
    plain = client.get("/collections/roads/items", params={"limit": 5}).json()
    for a, b in zip(roads["features"], plain["features"]):
        assert a["geometry"]["coordinates"][0] == pytest.approx(list(wgs84_to_gcj02(*b["geometry"]["coordinates"][0])),
                                                               abs=2e-7)


def test_bbox_in_gcj02_finds_what_an_amap_user_drew(client: TestClient, conn: sa.Connection) -> None:
    g1, g2 = wgs84_to_gcj02(BOX[0], BOX[1]), wgs84_to_gcj02(BOX[2], BOX[3])
    body = client.get("/collections/settlements/items",
                      params={"bbox": f"{g1[0]},{g1[1]},{g2[0]},{g2[1]}", "bbox-crs": "gcj02", "limit": 10000}).json()
    expected = sql_ids(conn, "settlements", "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4490))",
                       dict(zip("abcd", BOX)))
    # The box's corners map exactly; its edges bend by centimetres, so allow features on the very edge.
    assert len(set(ids(body)) ^ set(expected)) <= 2 and expected


def test_single_feature_in_a_crs(client: TestClient, conn: sa.Connection) -> None:
    fid, lon, lat = conn.execute(sa.text("SELECT id, ST_X(geom), ST_Y(geom) FROM elder_care ORDER BY id LIMIT 1")
                                 ).one()
    response = client.get(f"/collections/elder_care/items/{fid}", params={"crs": "EPSG:4490"})
    assert response.headers["content-crs"] == f"<{EPSG}4490>"
    assert response.json()["geometry"]["coordinates"] == pytest.approx([lat, lon], abs=1e-7)
