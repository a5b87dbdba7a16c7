"""What real clients (QGIS, GDAL, OWSLib) send: merge-patch edits in every CRS, If-Match as RFC 9110 says, CASEI and
ACCENTI on either side, a capped limit, alternate links."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.auth import create_token
from gis_service.ogc.crs import served_crs_list

from .helpers import bearer, current_count, station

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
CRS_URIS = [crs.uri for crs in served_crs_list(4545)]


def _created(client: TestClient, tokens: dict) -> tuple[str, str]:
    created = client.post("/collections/elder_care/items", json=station(), headers=bearer(tokens["planner"]))
    assert created.status_code == 201, created.text
    return f"/collections/elder_care/items/{created.json()['id']}", created.headers["ETag"]


@pytest.mark.parametrize("crs", CRS_URIS)
def test_a_feature_read_in_any_crs_can_be_written_back_as_read(client: TestClient, conn: sa.Connection,
                                                                tokens: dict, crs: str) -> None:
    url, _ = _created(client, tokens)
    stored = conn.execute(sa.text(f"SELECT ST_X(geom), ST_Y(geom) FROM elder_care WHERE id = {url.rsplit('/')[-1]}")
                          ).one()
    read = client.get(url, params={"crs": crs})
    feature = read.json()
    patch = {"geometry": feature["geometry"], "properties": {"beds": 31}}
    written = client.patch(url, json=patch, headers={**bearer(tokens["planner"], **MERGE_PATCH),
                                                     "If-Match": read.headers["ETag"], "Content-Crs": f"<{crs}>"})
    assert written.status_code == 200, written.text
    assert written.json()["properties"]["beds"] == 31
    after = conn.execute(sa.text(f"SELECT ST_X(geom), ST_Y(geom) FROM elder_care WHERE id = {url.rsplit('/')[-1]}")
                         ).one()
    assert after == pytest.approx(stored, abs=1e-6)  # a round trip moves the point by less than 10 cm


def test_put_in_epsg_4490_reads_latitude_first(client: TestClient, tokens: dict) -> None:
    url, etag = _created(client, tokens)
    lon, lat = 108.9950, 28.4500
    body = {**station(), "geometry": {"type": "Point", "coordinates": [lat, lon]}}
    put = client.put(url, json=body, headers=bearer(tokens["planner"], **{
        "If-Match": etag, "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4490>"}))
    assert put.status_code == 200, put.text
    assert put.json()["geometry"]["coordinates"] == pytest.approx([lon, lat])  # answers in CRS84


def test_a_merge_patch_sent_as_json_without_type_is_read_the_same(client: TestClient, tokens: dict) -> None:
    url, etag = _created(client, tokens)
    answer = client.patch(url, json={"properties": {"beds": 25}}, headers=bearer(tokens["planner"], **{
        "Content-Type": "application/json", "If-Match": etag}))
    assert answer.status_code == 200 and answer.json()["properties"]["beds"] == 25


@pytest.mark.parametrize(("patch", "message"), [
    ({"geometry": None}, "cannot lose its geometry"),
    ({"type": "FeatureCollection"}, 'its "type" may only be "Feature"'),
    ({"id": 1, "properties": {}}, "id cannot be changed"),
    ([1, 2], "a PATCH body is a JSON object"),
])
def test_bad_merge_patches_are_400_and_change_nothing(client: TestClient, tokens: dict, patch, message) -> None:
    url, etag = _created(client, tokens)
    answer = client.patch(url, json=patch, headers=bearer(tokens["planner"], **MERGE_PATCH, **{"If-Match": etag}))
    assert answer.status_code == 400 and message in answer.json()["description"]
    assert client.get(url).headers["ETag"] == etag


def test_merge_patch_is_for_patch_only(client: TestClient, tokens: dict) -> None:
    answer = client.post("/collections/elder_care/items", json=station(),
                         headers=bearer(tokens["planner"], **MERGE_PATCH))
    assert answer.status_code == 415


@pytest.mark.parametrize(("if_match", "status"), [
    ("*", 200),
    ('"elder_care.0.v9", {etag}', 200),
    ("W/{etag}", 412),
    ('"elder_care.0.v9"', 412),
    ("{etag}x", 400),
])
def test_if_match_follows_rfc_9110(client: TestClient, tokens: dict, if_match: str, status: int) -> None:
    url, etag = _created(client, tokens)
    answer = client.patch(url, json={"properties": {"beds": 26}},
                          headers=bearer(tokens["planner"], **{"If-Match": if_match.format(etag=etag)}))
    assert answer.status_code == status, answer.text
    if status == 412 and if_match.startswith("W/"):
        assert "weak tag" in answer.json()["description"]


def test_a_no_if_match_token_writes_last_wins_and_the_audit_says_so(client: TestClient, conn: sa.Connection,
                                                                     tokens: dict) -> None:
    url, _ = _created(client, tokens)
    assert client.patch(url, json={"properties": {"beds": 27}}, headers=bearer(tokens["planner"])).status_code == 428
    _, qgis = create_token(conn, role="planner", name="QGIS 工作站", if_match_required=False)
    answer = client.patch(url, json={"properties": {"beds": 27}}, headers=bearer(qgis, **MERGE_PATCH))
    assert answer.status_code == 200 and answer.json()["properties"]["beds"] == 27
    history = client.get(url + "/history", headers=bearer(qgis)).json()["changes"]
    assert [(c["action"], c["actor"], c["last_write_wins"]) for c in history] == [
        ("create", "测试planner", False), ("update", "QGIS 工作站", True)]


def test_token_create_no_if_match(runner, engine: sa.Engine) -> None:
    from gis_service.cli import app

    result = runner.invoke(app, ["token", "create", "--role", "planner", "--name", "qgis-test", "--no-if-match"])
    assert result.exit_code == 0, result.output
    assert "changes without If-Match allowed" in " ".join(result.output.split())
    with engine.begin() as conn:
        required = conn.execute(sa.text("SELECT if_match_required FROM api_tokens WHERE name = 'qgis-test'")).one()
        conn.execute(sa.text("DELETE FROM api_tokens WHERE name = 'qgis-test'"))
    assert required == (False,)


@pytest.mark.parametrize(("cql", "where"), [
    ("CASEI(road_class) = CASEI('URBAN_BRANCH')", "road_class = 'urban_branch'"),
    ("road_class = CASEI('Urban_Branch')", "road_class = 'urban_branch'"),
    ("CASEI(road_class) IN ('URBAN_BRANCH', 'County')", "road_class IN ('urban_branch', 'county')"),
    ("CASEI(pinyin) LIKE CASEI('%LÙ')", "lower(pinyin) LIKE '%lù'"),
    ("ACCENTI(pinyin) LIKE ACCENTI('%Lú')", "translate(pinyin, 'āáǎàēéěèīíǐìōóǒòūúǔù', "
     "'aaaaeeeeiiiioooouuuu') LIKE '%Lu'"),
    ("CASEI(ACCENTI(pinyin)) LIKE '%LU'", "lower(translate(pinyin, 'āáǎàēéěèīíǐìōóǒòūúǔùĀÁǍÀĒÉĚÈĪÍǏÌŌÓǑÒŪÚǓÙ', "
     "'aaaaeeeeiiiioooouuuuAAAAEEEEIIIIOOOOUUUU')) LIKE '%lu'"),
])
def test_casei_and_accenti_count_what_sql_counts(client: TestClient, conn: sa.Connection, cql: str,
                                                 where: str) -> None:
    expected = current_count(conn, "roads", where)
    assert expected > 0
    answer = client.get("/collections/roads/items", params={"filter": cql, "limit": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["numberMatched"] == expected


def test_conformance_declares_the_comparisons_implemented(client: TestClient) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison" in classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison" in classes


def test_a_limit_above_the_maximum_is_served_as_the_maximum(client: TestClient, conn: sa.Connection) -> None:
    answer = client.get("/collections/place_names/items", params={"limit": 50000, "properties": "name"})
    assert answer.status_code == 200
    assert answer.json()["numberReturned"] == min(10000, current_count(conn, "place_names"))


def test_a_single_feature_links_its_other_format(client: TestClient) -> None:
    as_json = client.get("/collections/elder_care/items/1").json()["links"]
    alternate = [link for link in as_json if link["rel"] == "alternate"]
    assert [(link["type"], link["href"].endswith("f=html")) for link in alternate] == [("text/html", True)]
    page = client.get(alternate[0]["href"].replace("http://testserver", ""))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "f=json" in page.text


@pytest.mark.parametrize(("path", "media"), [
    ("/collections/roads/items?limit=1000", "application/geo+json"),
    ("/collections", "application/json"),
    ("/collections/roads/items?limit=200&f=html", "text/html"),
    ("/collections/roads/tiles/WebMercatorQuad/12/3288/1710", "application/vnd.mapbox-vector-tile"),
])
def test_answers_are_gzipped_for_clients_that_accept_it(client: TestClient, path: str, media: str) -> None:
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith(media)
    assert "content-encoding" not in plain.headers
    zipped = client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["vary"]
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
    if media != "application/geo+json":  # items carry a timestamp
        assert zipped.content == plain.content  # httpx unzips: the same bytes


def test_tiny_answers_and_refused_gzip_stay_plain(client: TestClient) -> None:
    assert "content-encoding" not in client.get("/health", headers={"Accept-Encoding": "gzip"}).headers
    assert "content-encoding" not in client.get("/collections", headers={"Accept-Encoding": "gzip;q=0"}).headers


@pytest.mark.parametrize("path", ["/collections/roads/items?limit=5", "/conformance",
                                  "/collections/roads/tiles/WebMercatorQuad/12/3288/1710",
                                  "/collections/elder_care/items/1"])
def test_head_answers_as_get_without_a_body(client: TestClient, path: str) -> None:
    get = client.get(path, headers={"Accept-Encoding": "identity"})
    head = client.head(path, headers={"Accept-Encoding": "identity"})
    assert head.status_code == get.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_options_lists_what_the_caller_may_do(client: TestClient, tokens: dict) -> None:
    items = "/collections/elder_care/items"
    assert client.options(items).headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options(items).status_code == 204
    assert client.options(items, headers=bearer(tokens["planner"])).headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert client.options(items + "/1", headers=bearer(tokens["planner"])).headers["allow"] == \
        "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    assert client.options(items + "/1", headers=bearer(tokens["inspector"])).headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/nowhere").status_code == 404


def test_cors_is_off_unless_origins_are_listed(client_with) -> None:
    origin = {"Origin": "http://maps.intranet:8080"}
    assert "access-control-allow-origin" not in client_with().get("/collections", headers=origin).headers
    allowing = client_with(cors_origins="http://maps.intranet:8080, http://other.intranet")
    assert allowing.get("/collections", headers=origin).headers["access-control-allow-origin"] == origin["Origin"]
    preflight = allowing.options("/collections/roads/tiles/WebMercatorQuad/12/3288/1710", headers={
        **origin, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200 and "GET" in preflight.headers["access-control-allow-methods"]
    stranger = allowing.get("/collections", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
