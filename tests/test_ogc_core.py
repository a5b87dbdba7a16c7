"""OGC API - Features Part 1 over the demo county: what QGIS, GDAL and a script see."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.layers import LAYERS

from .helpers import assert_rfc7946, current_count, ids, sql_ids


def test_landing_page_links_to_api_conformance_and_collections(client: TestClient) -> None:
    links = {link["rel"]: link["href"] for link in client.get("/").json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    conforms = client.get("/conformance").json()["conformsTo"]
    for part in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                 "ogcapi-features-1/1.0/conf/oas30", "ogcapi-features-2/1.0/conf/crs",
                 "ogcapi-features-3/1.0/conf/filter", "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json"):
        assert any(c.endswith(part) for c in conforms), part
    api = client.get("/api")
    assert api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = api.json()
    assert document["openapi"].startswith("3.0")
    items = document["paths"]["/collections/{collectionId}/items"]["get"]
    described = {p["name"]: p for p in items["parameters"]}
    for name in ("bbox", "bbox-crs", "crs", "limit", "offset", "datetime", "properties", "sortby", "filter",
                 "filter-lang", "filter-crs"):
        assert described[name].get("description"), name
    # a larger limit is capped, not refused (Part 1, 7.15.3), so the schema states no maximum; the description does
    assert "maximum" not in described["limit"]["schema"] and "served as 10000" in described["limit"]["description"]
    assert "anyOf" not in json.dumps(document["paths"])  # 3.1 nullable unions rewritten


def test_every_collection_counts_what_the_database_holds(client: TestClient, conn: sa.Connection) -> None:
    body = client.get("/collections").json()
    collections = {c["id"]: c for c in body["collections"]}
    assert set(collections) == set(LAYERS)
    for layer_id, collection in collections.items():
        assert collection["featureCount"] == current_count(conn, layer_id) > 0, layer_id
        minx, miny, maxx, maxy = collection["extent"]["spatial"]["bbox"][0]
        assert 108.2 < minx < maxx < 109.6 and 27.9 < miny < maxy < 28.9, layer_id
        assert collection["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
        assert "http://www.opengis.net/def/crs/EPSG/0/4545" in collection["crs"]
        rels = {link["rel"] for link in collection["links"]}
        assert {"items", "http://www.opengis.net/def/rel/ogc/1.0/queryables"} <= rels
    one = client.get("/collections/boundary_markers").json()
    assert one["featureCount"] == collections["boundary_markers"]["featureCount"]
    assert one["extent"]["temporal"]["interval"][0][0] is not None


def test_number_matched_equals_the_sql_count_for_every_layer(client: TestClient, conn: sa.Connection) -> None:
    for layer_id in LAYERS:
        body = client.get(f"/collections/{layer_id}/items", params={"limit": 5}).json()
        assert body["numberMatched"] == current_count(conn, layer_id), layer_id
        assert body["numberReturned"] == len(body["features"]) == min(5, body["numberMatched"])
        assert_rfc7946(body)


def test_next_links_page_through_every_feature_exactly_once(client: TestClient, conn: sa.Connection) -> None:
    for sortby in (None, "-beds,name"):
        url, seen, pages = "/collections/elder_care/items?limit=17", [], 0
        if sortby:
            url += f"&sortby={sortby}"
        while url:
            body = client.get(url).json()
            seen += ids(body)
            pages += 1
            url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        expected = sql_ids(conn, "elder_care", "TRUE")
        assert len(seen) == len(set(seen)) == len(expected)
        assert sorted(seen) == expected
        assert pages == -(-len(expected) // 17)
    last = client.get("/collections/elder_care/items", params={"limit": 17, "offset": 17}).json()
    prev = next(link["href"] for link in last["links"] if link["rel"] == "prev")
    assert "offset=0" in prev


def test_sortby_orders_and_properties_choose_fields(client: TestClient, conn: sa.Connection) -> None:
    body = client.get("/collections/elder_care/items",
                      params={"sortby": "-beds,id", "properties": "name,beds", "limit": 50}).json()
    beds = [f["properties"]["beds"] for f in body["features"]]
    assert beds == sorted(beds, reverse=True)
    assert beds[0] == conn.execute(sa.text("SELECT max(beds) FROM elder_care")).scalar()
    assert all(set(f["properties"]) == {"name", "beds"} for f in body["features"])
    nothing = client.get("/collections/elder_care/items", params={"properties": "", "limit": 3}).json()
    assert all(f["properties"] == {} for f in nothing["features"])


def test_property_filters_select_like_sql(client: TestClient, conn: sa.Connection) -> None:
    body = client.get("/collections/elder_care/items",
                      params={"kind": "community_station", "limit": 10000}).json()
    expected = sql_ids(conn, "elder_care", "kind = 'community_station'")
    assert expected and ids(body) == expected and body["numberMatched"] == len(expected)
    both = client.get("/collections/elder_care/items",
                      params={"kind": "township_home", "comprehensive": "true", "limit": 10000}).json()
    assert ids(both) == sql_ids(conn, "elder_care", "kind = 'township_home' AND comprehensive")
    townships = client.get("/collections/admin_divisions/items", params={"level": "township"}).json()
    assert townships["numberMatched"] == 27


def test_admin_divisions_are_current_unless_a_datetime_is_given(client: TestClient, conn: sa.Connection) -> None:
    current = client.get("/collections/admin_divisions/items", params={"limit": 1000}).json()
    assert current["numberMatched"] == 1 + 27 + 268
    assert all(f["properties"]["valid_to"] is None for f in current["features"])
    for when in ("2015-06-01", "2021-06-01", "1960-01-01"):
        then = client.get("/collections/admin_divisions/items",
                          params={"datetime": when, "limit": 1000, "properties": "code,valid_from,valid_to"}).json()
        expected = list(conn.execute(sa.text(
            "SELECT id FROM admin_divisions WHERE valid_from <= :t AND (valid_to IS NULL OR valid_to > :t) "
            "ORDER BY id"), {"t": when}).scalars())
        assert ids(then) == expected, when
    historical = conn.execute(sa.text("SELECT count(*) FROM admin_divisions WHERE valid_to IS NOT NULL")).scalar()
    if historical:  # the 2021 changes: the versions before them are served for a date before them
        before = client.get("/collections/admin_divisions/items", params={"datetime": "2015-06-01",
                                                                          "limit": 1000}).json()
        assert set(ids(before)) != set(ids(current))
    interval = client.get("/collections/admin_divisions/items",
                          params={"datetime": "2015-01-01/..", "limit": 1000}).json()
    assert interval["numberMatched"] == conn.execute(sa.text(
        "SELECT count(*) FROM admin_divisions WHERE valid_to IS NULL OR valid_to > '2015-01-01'")).scalar()


def test_a_feature_by_id_and_404s(client: TestClient, conn: sa.Connection) -> None:
    marker_id, number = conn.execute(sa.text("SELECT id, number FROM boundary_markers ORDER BY id LIMIT 1")).one()
    response = client.get(f"/collections/boundary_markers/items/{marker_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    feature = response.json()
    assert feature["id"] == marker_id and feature["properties"]["number"] == number
    assert_rfc7946(feature)
    for url in ("/collections/boundary_markers/items/999999999", "/collections/boundary_markers/items/abc",
                "/collections/no_such_layer", "/collections/no_such_layer/items"):
        response = client.get(url)
        assert response.status_code == 404, url
    assert "no_such_layer" in client.get("/collections/no_such_layer/items").json()["description"]


def test_ids_and_offsets_past_what_the_database_counts_are_refused_not_failed(client: TestClient) -> None:
    # found by schemathesis: "²" is a digit to str.isdigit but not to int(); PostgreSQL's bigint ends at 2**63 - 1
    for url in ("/collections/roads/items/%C2%B2", f"/collections/roads/items/{2**64}"):
        assert client.get(url).status_code == 404, url
    response = client.get("/collections/roads/items", params={"offset": 2**64})
    assert response.status_code == 400 and "offset must be at most" in response.json()["description"]
    assert client.get(f"/placenames/{2**64}").status_code == 400


def test_polygons_are_right_hand_wound_lon_lat_without_crs_member(client: TestClient) -> None:
    body = client.get("/collections/admin_divisions/items", params={"limit": 1000}).json()
    assert len(body["features"]) == 296
    assert_rfc7946(body)
    county = client.get("/collections/admin_divisions/items", params={"level": "county"}).json()
    lon, lat = county["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 108 < lon < 110 and 27 < lat < 30


def test_bad_parameters_are_400_with_the_reason(client: TestClient) -> None:
    cases = {
        "limit=0": "limit must be between 1 and 10000",
        "bbox=109,28,108,29": "bbox must be minx,miny,maxx,maxy",
        "bbox=1,2,3": "got '1,2,3'",
        "crs=EPSG:27700": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "colour=red": "unknown query parameter 'colour'",
        "sortby=height": "no property 'height'",
    }
    for query, message in cases.items():
        response = client.get(f"/collections/elder_care/items?{query}")
        assert response.status_code == 400, query
        assert message in response.json()["description"], (query, response.json())
    assert "has no dates" in client.get("/collections/elder_care/items?datetime=2020-01-01").json()["description"]
    response = client.get("/collections/boundary_markers/items?datetime=soon")
    assert response.status_code == 400 and "datetime must be a date" in response.json()["description"]


def test_datetime_on_a_dated_layer_selects_its_first_date(client: TestClient, conn: sa.Connection) -> None:
    body = client.get("/collections/boundary_markers/items",
                      params={"datetime": "2000-01-01/2012-12-31", "limit": 10000}).json()
    expected = sql_ids(conn, "boundary_markers", "set_on BETWEEN '2000-01-01' AND '2012-12-31'")
    assert expected and ids(body) == expected


def test_html_pages_for_a_browser(client: TestClient, conn: sa.Connection) -> None:
    name = conn.execute(sa.text("SELECT name FROM elder_care ORDER BY id LIMIT 1")).scalar()
    page = client.get("/collections/elder_care/items", params={"f": "html", "limit": 5})
    assert page.headers["content-type"].startswith("text/html")
    assert name in page.text
    assert "<a href=" in client.get("/?f=html").text
