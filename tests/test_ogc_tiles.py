"""Vector tiles: a tile over the county seat decodes to features with their properties; an empty tile is 204."""

from __future__ import annotations

import mapbox_vector_tile
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.ogc.tiles import WORLD_CRS84_QUAD

from .helpers import SEAT_LAT, SEAT_LON, tile_of


def test_a_tile_over_the_county_seat_holds_divisions_with_properties(client: TestClient,
                                                                     conn: sa.Connection) -> None:
    x, y = tile_of(SEAT_LON, SEAT_LAT, 12)
    response = client.get(f"/collections/admin_divisions/tiles/WebMercatorQuad/12/{x}/{y}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = mapbox_vector_tile.decode(response.content)["admin_divisions"]
    codes = {f["properties"]["code"] for f in layer["features"]}
    seat_units = set(conn.execute(sa.text(
        "SELECT code FROM admin_divisions WHERE valid_to IS NULL AND "
        "ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"), {"lon": SEAT_LON, "lat": SEAT_LAT})
        .scalars())
    assert seat_units and seat_units <= codes  # the county, its township and its community
    feature = next(f for f in layer["features"] if f["properties"]["level"] == "township")
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon") and feature["properties"]["name"]
    assert layer["extent"] == 4096


def test_point_tiles_carry_every_feature_inside_them(client: TestClient, conn: sa.Connection) -> None:
    fid, lon, lat = conn.execute(sa.text(
        "SELECT id, ST_X(geom), ST_Y(geom) FROM elder_care ORDER BY ST_Distance(geom, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) LIMIT 1"), {"lon": SEAT_LON, "lat": SEAT_LAT}).one()
    x, y = tile_of(lon, lat, 14)
    response = client.get(f"/collections/elder_care/tiles/WebMercatorQuad/14/{x}/{y}")
    assert response.status_code == 200
    features = mapbox_vector_tile.decode(response.content)["elder_care"]["features"]
    by_id = {f["id"]: f["properties"] for f in features}
    name, beds = conn.execute(sa.text("SELECT name, beds FROM elder_care WHERE id = :id"), {"id": fid}).one()
    assert by_id[fid]["name"] == name and by_id[fid]["beds"] == beds


def _vertices(coordinates) -> int:
    if isinstance(coordinates[0], (int, float)):
        return 1
    return sum(_vertices(c) for c in coordinates)


def test_lower_zooms_are_simplified(client: TestClient, conn: sa.Connection) -> None:
    x, y = tile_of(SEAT_LON, SEAT_LAT, 8)
    coarse = client.get(f"/collections/admin_divisions/tiles/WebMercatorQuad/8/{x}/{y}")
    features = mapbox_vector_tile.decode(coarse.content)["admin_divisions"]["features"]
    in_tile = sum(_vertices(f["geometry"]["coordinates"]) for f in features)
    stored = conn.execute(sa.text(
        "SELECT sum(ST_NPoints(geom)) FROM admin_divisions WHERE valid_to IS NULL AND id = ANY(:ids)"),
        {"ids": [f["id"] for f in features]}).scalar()
    touching = conn.execute(sa.text(
        "SELECT count(*) FROM admin_divisions WHERE valid_to IS NULL AND "
        "geom && ST_Transform(ST_TileEnvelope(8, :x, :y, margin => 64.0 / 4096), 4490)"), {"x": x, "y": y}).scalar()
    # Every division of this tile is there (none is smaller than a pixel at z8), with fewer vertices.
    assert len(features) == touching, (len(features), touching)
    assert in_tile < 0.6 * stored, (in_tile, stored)


def test_empty_tiles_are_204_and_bad_tiles_are_refused(client: TestClient) -> None:
    assert client.get("/collections/elder_care/tiles/WebMercatorQuad/12/0/0").status_code == 204
    x, y = tile_of(SEAT_LON, SEAT_LAT, 12)
    assert client.get(f"/collections/elder_care/tiles/WebMercatorQuad/12/{x + 40}/{y}").status_code == 204
    assert client.get("/collections/elder_care/tiles/WebMercatorQuad/3/8/0").status_code == 404
    assert client.get("/collections/elder_care/tiles/WebMercatorQuad/30/0/0").status_code == 404
    assert client.get("/collections/elder_care/tiles/WebMercatorQuad/a/0/0").status_code == 400
    assert client.get("/collections/nowhere/tiles/WebMercatorQuad/12/0/0").status_code == 404


def test_tilejson_describes_the_tiles(client: TestClient) -> None:
    document = client.get("/collections/roads/tiles/WebMercatorQuad/tilejson.json").json()
    assert document["tilejson"] == "3.0.0"
    assert document["tiles"][0].endswith("/collections/roads/tiles/WebMercatorQuad/{z}/{x}/{y}")
    minx, miny, maxx, maxy = document["bounds"]
    assert minx < SEAT_LON < maxx and miny < SEAT_LAT < maxy
    fields = document["vector_layers"][0]["fields"]
    assert fields["name"] == "String" and fields["length_m"] == "Number"
    assert client.get("/collections/roads/tiles/WebMercatorQuad").json()["tileMatrixSetURI"].endswith("WebMercatorQuad")
    tilesets = client.get("/collections/roads/tiles").json()["tilesets"]
    assert tilesets[0]["tileMatrixSetURI"].endswith("WebMercatorQuad")


def test_tiles_below_z12_carry_only_the_label_and_class_fields(client: TestClient) -> None:
    x, y = tile_of(SEAT_LON, SEAT_LAT, 10)
    response = client.get(f"/collections/roads/tiles/WebMercatorQuad/10/{x}/{y}")
    assert response.status_code == 200
    features = mapbox_vector_tile.decode(response.content)["roads"]["features"]
    assert features
    assert set().union(*(f["properties"] for f in features)) <= {"name", "road_class"}
    x, y = tile_of(SEAT_LON, SEAT_LAT, 12)
    detailed = mapbox_vector_tile.decode(client.get(f"/collections/roads/tiles/WebMercatorQuad/12/{x}/{y}").content)
    assert "length_m" in set().union(*(f["properties"] for f in detailed["roads"]["features"]))


def test_a_crs84_tile_holds_the_facilities_inside_its_degrees_where_they_stand(client: TestClient,
                                                                               conn: sa.Connection) -> None:
    """WorldCRS84Quad (the tileset GDAL reads): a zoom 11 tile over the county seat holds every facility inside
    its 180/2^11 degrees, placed within a tile unit, with every property (zoom 11 is as detailed as
    WebMercatorQuad's 12)."""
    col, row = WORLD_CRS84_QUAD.tile_of(SEAT_LON, SEAT_LAT, 11)
    west, south, east, north = WORLD_CRS84_QUAD.tile_bounds_deg(11, col, row)
    response = client.get(f"/collections/elder_care/tiles/WorldCRS84Quad/11/{col}/{row}")
    assert response.status_code == 200 and response.headers["etag"]
    features = mapbox_vector_tile.decode(response.content)["elder_care"]["features"]
    inside = {name: (lon, lat, beds) for name, lon, lat, beds in conn.execute(sa.text(
        "SELECT name, ST_X(geom), ST_Y(geom), beds FROM elder_care "
        "WHERE geom && ST_MakeEnvelope(:w, :s, :e, :n, 4490)"), {"w": west, "s": south, "e": east, "n": north})}
    assert inside and set(inside) <= {f["properties"]["name"] for f in features}
    unit = (east - west) / 4096
    for feature in features:
        name = feature["properties"]["name"]
        if name in inside:
            x, y = feature["geometry"]["coordinates"]  # tile units from the lower left (decode flips y)
            lon, lat, beds = inside[name]
            assert abs(west + x * unit - lon) <= unit and abs(south + y * unit - lat) <= unit, name
            assert feature["properties"]["beds"] == beds


def test_both_tile_grids_are_listed_and_their_tiles_checked(client: TestClient) -> None:
    sets = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad", "WorldCRS84Quad"]
    crs84 = client.get("/tileMatrixSets/WorldCRS84Quad").json()
    assert crs84["crs"].endswith("OGC/1.3/CRS84") and len(crs84["tileMatrices"]) == 22
    assert (crs84["tileMatrices"][3]["matrixWidth"], crs84["tileMatrices"][3]["matrixHeight"]) == (16, 8)
    tilesets = client.get("/collections/roads/tiles").json()["tilesets"]
    assert [t["tileMatrixSetURI"].rsplit("/", 1)[1] for t in tilesets] == ["WebMercatorQuad", "WorldCRS84Quad"]
    refused = client.get("/collections/elder_care/tiles/WorldCRS84Quad/3/8/8")
    assert refused.status_code == 404 and "y 0..7" in refused.json()["description"]
    assert client.get("/collections/elder_care/tiles/WorldCRS84Quad/3/15/0").status_code == 204
