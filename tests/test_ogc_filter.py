"""OGC API - Features Part 3: queryables and CQL2 filters (text and JSON) return what the equivalent SQL returns."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient

from .helpers import SEAT_LAT, SEAT_LON, assert_rfc7946, ids, sql_ids

SEAT_AREA = "POLYGON((108.97 28.43, 109.01 28.43, 109.01 28.47, 108.97 28.47, 108.97 28.43))"

#: (layer, CQL2 text, CQL2 JSON, equivalent SQL condition)
CASES = [
    ("elder_care", "kind = 'township_home' AND beds >= 20",
     {"op": "and", "args": [{"op": "=", "args": [{"property": "kind"}, "township_home"]},
                            {"op": ">=", "args": [{"property": "beds"}, 20]}]},
     "kind = 'township_home' AND beds >= 20"),
    ("elder_care", "kind LIKE 'rural%'", {"op": "like", "args": [{"property": "kind"}, "rural%"]},
     "kind LIKE 'rural%'"),
    ("elder_care", "operator IN ('private', 'public_private')",
     {"op": "in", "args": [{"property": "operator"}, ["private", "public_private"]]},
     "operator IN ('private', 'public_private')"),
    ("elder_care", "beds BETWEEN 10 AND 60", {"op": "between", "args": [{"property": "beds"}, 10, 60]},
     "beds BETWEEN 10 AND 60"),
    ("elder_care", "rating IS NULL", {"op": "isNull", "args": [{"property": "rating"}]}, "rating IS NULL"),
    ("elder_care", "rating IS NOT NULL AND NOT (nursing_beds < 10)",
     {"op": "and", "args": [{"op": "not", "args": [{"op": "isNull", "args": [{"property": "rating"}]}]},
                            {"op": "not", "args": [{"op": "<", "args": [{"property": "nursing_beds"}, 10]}]}]},
     "rating IS NOT NULL AND NOT nursing_beds < 10"),
    ("elder_care", "kind = 'community_station' OR comprehensive = true",
     {"op": "or", "args": [{"op": "=", "args": [{"property": "kind"}, "community_station"]},
                           {"op": "=", "args": [{"property": "comprehensive"}, True]}]},
     "kind = 'community_station' OR comprehensive"),
    ("admin_divisions", "level = 'township' AND CASEI(kind) <> '乡'",
     {"op": "and", "args": [{"op": "=", "args": [{"property": "level"}, "township"]},
                            {"op": "<>", "args": [{"op": "casei", "args": [{"property": "kind"}]}, "乡"]}]},
     "level = 'township' AND kind <> '乡'"),
    ("settlements", f"S_INTERSECTS(geometry, {SEAT_AREA})",
     {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": [
         [[108.97, 28.43], [109.01, 28.43], [109.01, 28.47], [108.97, 28.47], [108.97, 28.43]]]}]},
     f"ST_Intersects(geom, ST_GeomFromText('{SEAT_AREA}', 4490))"),
    ("roads", f"S_WITHIN(geometry, {SEAT_AREA})",
     {"op": "s_within", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": [
         [[108.97, 28.43], [109.01, 28.43], [109.01, 28.47], [108.97, 28.47], [108.97, 28.43]]]}]},
     f"ST_Within(geom, ST_GeomFromText('{SEAT_AREA}', 4490))"),
    ("settlements", f"S_DWITHIN(geometry, POINT({SEAT_LON} {SEAT_LAT}), 1500)",
     {"op": "s_dwithin", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [SEAT_LON, SEAT_LAT]},
                                  1500]},
     f"ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint({SEAT_LON}, {SEAT_LAT}), 4490)::geography, 1500)"),
    ("roads", "road_class IN ('urban_arterial', 'urban_secondary') AND length_m > 100.5 AND is_bridge = false",
     {"op": "and", "args": [
         {"op": "in", "args": [{"property": "road_class"}, ["urban_arterial", "urban_secondary"]]},
         {"op": ">", "args": [{"property": "length_m"}, 100.5]},
         {"op": "=", "args": [{"property": "is_bridge"}, False]}]},
     "road_class IN ('urban_arterial', 'urban_secondary') AND length_m > 100.5 AND NOT is_bridge"),
    ("boundary_markers", "condition <> 'intact' AND set_on < DATE('2010-01-01')",
     {"op": "and", "args": [{"op": "<>", "args": [{"property": "condition"}, "intact"]},
                            {"op": "<", "args": [{"property": "set_on"}, {"date": "2010-01-01"}]}]},
     "condition <> 'intact' AND set_on < DATE '2010-01-01'"),
]


def test_cql2_text_and_json_return_what_sql_returns(client: TestClient, conn: sa.Connection) -> None:
    non_empty = 0
    for layer_id, text, as_json, sql in CASES:
        expected = sql_ids(conn, layer_id, sql)
        non_empty += bool(expected)
        by_text = client.get(f"/collections/{layer_id}/items", params={"filter": text, "limit": 10000})
        assert by_text.status_code == 200, (text, by_text.text)
        assert ids(by_text.json()) == expected, text
        assert by_text.json()["numberMatched"] == len(expected)
        by_json = client.get(f"/collections/{layer_id}/items",
                             params={"filter": json.dumps(as_json), "filter-lang": "cql2-json", "limit": 10000})
        assert by_json.status_code == 200, (as_json, by_json.text)
        assert ids(by_json.json()) == expected, as_json
        assert_rfc7946(by_json.json())
    assert non_empty >= len(CASES) - 2  # the demo data gives almost every case something to find


def test_spatial_filter_in_another_crs(client: TestClient, conn: sa.Connection) -> None:
    latlon_area = "POLYGON((28.43 108.97, 28.43 109.01, 28.47 109.01, 28.47 108.97, 28.43 108.97))"
    body = client.get("/collections/settlements/items",
                      params={"filter": f"S_INTERSECTS(geometry, {latlon_area})", "filter-crs": "EPSG:4490",
                              "limit": 10000}).json()
    expected = sql_ids(conn, "settlements", f"ST_Intersects(geom, ST_GeomFromText('{SEAT_AREA}', 4490))")
    assert expected and ids(body) == expected


def test_filter_combines_with_bbox_and_property_filters(client: TestClient, conn: sa.Connection) -> None:
    body = client.get("/collections/settlements/items", params={
        "filter": "households > 50", "bbox": "108.9,28.35,109.1,28.55", "limit": 10000}).json()
    expected = sql_ids(conn, "settlements", "households > 50 AND ST_Intersects(geom, "
                       "ST_MakeEnvelope(108.9, 28.35, 109.1, 28.55, 4490))")
    assert expected and ids(body) == expected


def test_invalid_filters_are_400s_that_say_where(client: TestClient) -> None:
    response = client.get("/collections/elder_care/items", params={"filter": "beds > 10 AND"})
    assert response.status_code == 400
    assert "1:14" in response.json()["description"]
    response = client.get("/collections/elder_care/items", params={"filter": "bedz > 10"})
    assert response.status_code == 400
    assert "unknown property 'bedz'" in response.json()["description"]
    response = client.get("/collections/elder_care/items",
                          params={"filter": '{"op": "=", "args": [{"property": "beds"}', "filter-lang": "cql2-json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["description"]
    response = client.get("/collections/elder_care/items", params={"filter": "kind = 3"})
    assert response.status_code == 400 and "text was expected, got 3" in response.json()["description"]
    response = client.get("/collections/elder_care/items", params={"filter": "beds = 1", "filter-lang": "ecql"})
    assert response.status_code == 400 and "filter-lang" in response.json()["description"]


def test_queryables_list_every_field_with_its_type(client: TestClient) -> None:
    response = client.get("/collections/elder_care/queryables")
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    properties = schema["properties"]
    assert properties["beds"]["type"] == "integer"
    assert properties["kind"]["enum"] == ["welfare_institution", "township_home", "community_station",
                                          "rural_happiness_home"]
    assert properties["comprehensive"]["type"] == "boolean"
    assert properties["geometry"]["format"] == "geometry-point"
    roads = client.get("/collections/roads/queryables").json()["properties"]
    assert roads["named_on"] == {**roads["named_on"], "type": "string", "format": "date"}
    assert roads["former_names"]["type"] == "array"


def test_array_and_temporal_operators(client: TestClient, conn: sa.Connection) -> None:
    former = conn.execute(sa.text(
        "SELECT former_names[1] FROM roads WHERE cardinality(former_names) > 0 ORDER BY id LIMIT 1")).scalar()
    assert former, "the demo names some roads' former names"
    expected = sql_ids(conn, "roads", ":n = ANY(former_names)", {"n": former})
    by_filter = client.get("/collections/roads/items",
                           params={"filter": f"A_CONTAINS(former_names, ('{former}'))", "limit": 10000}).json()
    by_property = client.get("/collections/roads/items", params={"former_names": former, "limit": 10000}).json()
    assert expected and ids(by_filter) == ids(by_property) == expected
    assert former in by_filter["features"][0]["properties"]["former_names"]
    after = client.get("/collections/boundary_markers/items", params={
        "filter": "T_AFTER(last_inspected, DATE('2022-01-01'))", "limit": 10000}).json()
    assert ids(after) == sql_ids(conn, "boundary_markers", "last_inspected > DATE '2022-01-01'")
