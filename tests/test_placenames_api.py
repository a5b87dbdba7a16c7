"""The place-name endpoints over HTTP (search filters, type-ahead, reverse look-up, clash check, one record), the
write-path functions (rename, pinyin override), the gazetteer export and the search keys the database keeps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.auth import create_token
from gis_service.db import migrate
from gis_service.io.placenames_export import NATIONAL_FIELDS, export_place_names
from gis_service.search import records
from gis_service.search.keys import deletes, fold_pinyin, short_name

SHIDI_TOWN = "500241107000"
XIUSHAN_BBOX = (108.6, 28.1, 109.4, 28.9)


def place_id(conn: sa.Connection, name: str, status: str = "current") -> int:
    return conn.execute(sa.text("SELECT min(id) FROM place_names WHERE name = :n AND status = :s"),
                        {"n": name, "s": status}).scalar_one()


def search(client: TestClient, **params) -> dict:
    response = client.get("/placenames/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def first_name(client: TestClient, q: str, **params) -> str:
    return search(client, q=q, **params)["features"][0]["properties"]["name"]


# -- search ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q, expected", [
    ("石堤", "石堤镇"), ("中和", "中和街道"), ("shidi", "石堤镇"), ("shi di zhen", "石堤镇"), ("shidizhen", "石堤镇"),
    ("Shídī Zhèn", "石堤镇"), ("sdz", "石堤镇"), ("qxc", "清溪场街道"), ("时堤镇", "石堤镇"), ("石提镇", "石堤镇"),
    ("龙坝镇", "龙凤坝镇"), ("龙凤坝坝镇", "龙凤坝镇"), ("秀山县石堤镇", "石堤镇"), ("石堤镇高桥村", "高桥村"),
    ("东风社区居民委员会", "东风社区"),
])
def test_the_issue_examples_come_first(client: TestClient, q: str, expected: str) -> None:
    assert first_name(client, q) == expected


def test_answers_are_rfc7946_features_with_score_and_match(client: TestClient) -> None:
    answer = search(client, q="石堤")
    assert answer["type"] == "FeatureCollection" and answer["features"]
    scores = [f["properties"]["score"] for f in answer["features"]]
    assert scores[0] == max(scores)
    for feature in answer["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        assert feature["geometry"]["type"] == "Point"
        assert XIUSHAN_BBOX[0] < lon < XIUSHAN_BBOX[2] and XIUSHAN_BBOX[1] < lat < XIUSHAN_BBOX[3]
        assert 0 < feature["properties"]["score"] <= 1
        assert feature["properties"]["match"] in {"exact", "short_name", "prefix", "pinyin", "pinyin_prefix",
                                                  "typo", "initials", "initials_prefix", "former_name", "fuzzy"}
    assert answer["features"][0]["properties"]["match"] == "short_name"


def test_exact_before_prefix_and_township_before_village(client: TestClient) -> None:
    answer = search(client, q="大溪")
    names = [f["properties"]["name"] for f in answer["features"]]
    assert names[:2] == ["大溪乡", "大溪村"]  # both short names; the township first
    kinds = [f["properties"]["match"] for f in answer["features"]]
    tiers = {"exact": 0, "short_name": 0, "prefix": 1}
    assert [tiers.get(k, 2) for k in kinds] == sorted(tiers.get(k, 2) for k in kinds)


def test_division_filter_keeps_names_inside_it_and_below(client: TestClient) -> None:
    features = search(client, q="高", division=SHIDI_TOWN, limit=50)["features"]
    assert features
    assert all(f["properties"]["division_code"].startswith("500241107") for f in features)
    assert first_name(client, "高桥村", division=SHIDI_TOWN) == "高桥村"


def test_near_prefers_the_nearer_of_two_equal_names(client: TestClient, conn: sa.Connection) -> None:
    name = conn.execute(sa.text(
        "SELECT name FROM place_names WHERE status = 'current' AND category = 'settlement' "
        "GROUP BY name HAVING count(*) >= 2 ORDER BY name LIMIT 1")).scalar_one()
    places = conn.execute(sa.text(
        "SELECT id, ST_X(ST_Transform(geom, 4326)) AS lon, ST_Y(ST_Transform(geom, 4326)) AS lat "
        "FROM place_names WHERE name = :n AND status = 'current' ORDER BY id"), {"n": name}).all()
    for place in places[:2]:
        features = search(client, q=name, near=f"{place.lon},{place.lat}")["features"]
        assert features[0]["id"] == place.id
        assert features[0]["properties"]["distance_m"] < 1.0
        distances = [f["properties"]["distance_m"] for f in features if f["properties"]["name"] == name]
        assert distances == sorted(distances)


def test_radius_keeps_only_names_within_it(client: TestClient, conn: sa.Connection) -> None:
    lon, lat = conn.execute(sa.text(
        "SELECT ST_X(ST_Transform(geom, 4326)), ST_Y(ST_Transform(geom, 4326)) FROM place_names "
        "WHERE name = '石堤镇' AND status = 'current'")).one()
    features = search(client, q="石", near=f"{lon},{lat}", radius_m=3000, limit=100)["features"]
    assert features and all(f["properties"]["distance_m"] <= 3000 for f in features)
    assert "石堤镇" in [f["properties"]["name"] for f in features]


def test_category_and_status_filters(client: TestClient) -> None:
    roads = search(client, q="石堤", category="road")["features"]
    assert roads and all(f["properties"]["category"] == "road" for f in roads)
    historical = search(client, q="孝溪乡", status="historical")["features"]
    assert historical[0]["properties"]["name"] == "孝溪乡"
    assert historical[0]["properties"]["status"] == "historical"
    both = [f["properties"]["name"] for f in search(client, q="清溪场", status="all", limit=20)["features"]]
    assert "清溪场街道" in both and "清溪场镇" in both


@pytest.mark.parametrize("params, words", [
    ({"q": ""}, "q is empty"),
    ({"q": "   "}, "q is empty"),
    ({"q": "石" * 101}, "at most 100"),
    ({"q": "石堤", "category": "village"}, "unknown category"),
    ({"q": "石堤", "status": "gone"}, "unknown status"),
    ({"q": "石堤", "near": "28.4,abc"}, "near must be lon,lat"),
    ({"q": "石堤", "near": "200,28"}, "longitude must be within"),
    ({"q": "石堤", "radius_m": 100}, "radius_m needs near"),
    ({"q": "石堤", "division": "5002"}, "division must be"),
    ({"q": "石堤", "limit": 0}, "limit must be"),
    ({"q": "石堤", "near": "10,0"}, "outside the area distances are measured in"),
    ({"q": "!!"}, "holds no letters, digits or Chinese characters"),
    ({}, "q (query) is required"),
])
def test_bad_parameters_are_400_with_a_plain_message(client: TestClient, params: dict, words: str) -> None:
    response = client.get("/placenames/search", params=params)
    assert response.status_code == 400
    assert words in response.json()["description"]


def test_a_division_no_one_has_is_not_found(client: TestClient) -> None:
    response = client.get("/placenames/search", params={"q": "石堤", "division": "500299000000"})
    assert response.status_code == 404
    assert "is not the code of any" in response.json()["description"]


def test_openapi_documents_every_search_parameter(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    parameters = spec["paths"]["/placenames/search"]["get"]["parameters"]
    assert {p["name"] for p in parameters} >= {"q", "category", "division", "near", "radius_m", "status", "limit"}
    assert all(p.get("description") for p in parameters)


# -- autocomplete ---------------------------------------------------------------------------------------

def test_autocomplete_completes_names_pinyin_and_initials(client: TestClient) -> None:
    for q, expected in [("梅江", "梅江镇"), ("meij", "梅江镇"), ("qxc", "清溪场街道"), ("清溪", "清溪场街道"),
                        ("lfb", "龙凤坝镇")]:
        response = client.get("/placenames/autocomplete", params={"q": q})
        assert response.status_code == 200
        features = response.json()["features"]
        assert 1 <= len(features) <= 10
        assert features[0]["properties"]["name"] == expected, q
    features = client.get("/placenames/autocomplete", params={"q": "石"}).json()["features"]
    assert len(features) == 10 and all(f["properties"]["name"].startswith("石") for f in features)
    assert client.get("/placenames/autocomplete", params={"q": ""}).status_code == 400


# -- reverse ----------------------------------------------------------------------------------------------

def test_reverse_names_the_divisions_the_nearest_road_and_places(client: TestClient, conn: sa.Connection) -> None:
    village_code = conn.execute(sa.text(
        "SELECT code FROM admin_divisions WHERE name = '高桥村' AND valid_to IS NULL")).scalar_one()
    lon, lat = conn.execute(sa.text(
        "SELECT ST_X(ST_Transform(ST_PointOnSurface(geom), 4326)), ST_Y(ST_Transform(ST_PointOnSurface(geom), 4326)) "
        "FROM admin_divisions WHERE code = :code AND valid_to IS NULL"), {"code": village_code}).one()
    answer = client.get("/placenames/reverse", params={"lon": lon, "lat": lat}).json()
    assert answer["county"]["code"] == "500241000000"
    assert answer["township"]["name"] == "石堤镇"
    assert answer["village"]["code"] == village_code
    nearest_m = conn.execute(sa.text(
        "SELECT min(ST_Distance(ST_Transform(geom, 4545), ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), "
        "4545))) FROM roads"), {"lon": lon, "lat": lat}).scalar_one()
    assert answer["nearest_road"]["distance_m"] == pytest.approx(nearest_m, abs=0.5)
    places = answer["nearest_place_names"]["features"]
    assert len(places) == 5
    distances = [p["properties"]["distance_m"] for p in places]
    assert distances == sorted(distances)
    assert client.get("/placenames/reverse", params={"lon": 300, "lat": 28}).status_code == 400
    assert client.get("/placenames/reverse", params={"lon": 109}).status_code == 400


def test_reverse_outside_the_county_says_so(client: TestClient) -> None:
    # Chongqing's city centre: outside the county, inside its Gauss-Krüger zone (EPSG:4545)
    answer = client.get("/placenames/reverse", params={"lon": 106.57, "lat": 29.55}).json()
    assert answer["inside_county"] is False and answer["county"] is None
    assert answer["nearest_road"]["distance_m"] > 100_000


def test_reverse_refuses_points_where_distances_cannot_be_measured(client: TestClient) -> None:
    # Beijing lies 8° off the zone's meridian; 90° off (10°E on the equator) the projection has no answer at all
    # (once a server error)
    for lon, lat in ((116.39, 39.91), (10, 0)):
        response = client.get("/placenames/reverse", params={"lon": lon, "lat": lat})
        assert response.status_code == 400
        assert "EPSG:4545" in response.json()["description"]


# -- duplicate check ----------------------------------------------------------------------------------------

def test_check_grades_same_name_same_sound_and_similar(client: TestClient) -> None:
    def grades(name: str, **params) -> dict[str, str]:
        response = client.get("/placenames/check", params={"name": name, **params})
        assert response.status_code == 200
        return {f["properties"]["name"]: f["properties"]["grade"] for f in response.json()["clashes"]["features"]}

    assert grades("石堤镇")["石堤镇"] == "same_name"
    assert grades("时堤镇")["石堤镇"] == "same_sound"
    assert grades("石提镇")["石堤镇"] == "similar"
    assert "涌洞镇" in grades("涌洞乡")  # the historical record is there too
    response = client.get("/placenames/check", params={"name": "鑫磊犇路"}).json()
    assert response["clear"] is True and response["clashes"]["features"] == []
    flagged = client.get("/placenames/check", params={"name": "高桥村", "division": SHIDI_TOWN}).json()
    first = flagged["clashes"]["features"][0]["properties"]
    assert first["name"] == "高桥村" and first["same_division"] is True and first["scope"] == "same_township"
    assert client.get("/placenames/check", params={"name": ""}).status_code == 400


# -- one record, rename, pinyin override -------------------------------------------------------------------

def test_detail_lists_former_names_and_404_for_unknown(client: TestClient, conn: sa.Connection) -> None:
    qxc = place_id(conn, "清溪场街道")
    detail = client.get(f"/placenames/{qxc}").json()
    assert detail["properties"]["name"] == "清溪场街道"
    assert {f["name"] for f in detail["properties"]["former_names"]} == {"清溪场镇", "孝溪乡"}
    assert detail["properties"]["history"]
    former = place_id(conn, "孝溪乡", "historical")
    assert client.get(f"/placenames/{former}").json()["properties"]["successor"]["name"] == "清溪场街道"
    missing = client.get("/placenames/99999999")
    assert missing.status_code == 404 and "no place name" in missing.json()["description"]


def test_rename_keeps_the_old_name_as_a_former_name(client: TestClient, conn: sa.Connection) -> None:
    road_id = conn.execute(sa.text(
        "SELECT min(id) FROM place_names WHERE category = 'road' AND status = 'current'")).scalar_one()
    old_name = conn.execute(sa.text("SELECT name FROM place_names WHERE id = :id"), {"id": road_id}).scalar_one()
    result = records.rename_place_name(conn, road_id, "凤鸣大道", changed_by="地名办 张三",
                                       note="批复 秀府地名〔2026〕1号")
    assert result.place_name_id == road_id
    feature = next(f for f in search(client, q=old_name)["features"] if f["id"] == road_id)
    assert feature["properties"]["name"] == "凤鸣大道"
    assert feature["properties"]["match"] == "former_name" and feature["properties"]["former_name"] == old_name
    assert first_name(client, "fengmingdadao") == "凤鸣大道"
    detail = client.get(f"/placenames/{road_id}").json()["properties"]
    assert old_name in [f["name"] for f in detail["former_names"]]
    token = create_token(conn, role="planner", name="规划员")[1]  # the change log names staff: any role may read it
    changes = client.get(f"/placenames/{road_id}/changes", headers={"Authorization": f"Bearer {token}"}).json()
    renamed = [c for c in changes["changes"] if c["action"] == "renamed"]
    assert renamed and renamed[0]["changed_by"] == "地名办 张三" and renamed[0]["old"]["name"] == old_name
    assert detail["pinyin"] == "Fèngmíng Dàdào"


def test_pinyin_override_is_searched_with_the_generated_reading(client: TestClient, conn: sa.Connection) -> None:
    chaoyang = place_id(conn, "朝阳社区")
    records.set_pinyin_override(conn, chaoyang, "Zhāoyáng Shèqū", changed_by="地名办")
    keys = conn.execute(sa.text("SELECT py_key, py_alt_key FROM place_names WHERE id = :id"),
                        {"id": chaoyang}).one()
    assert keys == ("zhaoyangshequ", "chaoyangshequ")
    assert first_name(client, "zhaoyangshequ") == "朝阳社区"
    assert first_name(client, "chaoyangshequ") == "朝阳社区"
    assert client.get(f"/placenames/{chaoyang}").json()["properties"]["pinyin"] == "Zhāoyáng Shèqū"
    with pytest.raises(Exception, match="Hanyu Pinyin"):
        records.set_pinyin_override(conn, chaoyang, "朝阳", changed_by="地名办")


# -- keys in the database agree with Python -------------------------------------------------------------------

def test_database_keys_agree_with_the_python_ones(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT name, pinyin, name_short, py_key FROM place_names")).all()
    assert all(row.name_short == short_name(row.name) for row in rows)
    aligned = sum(row.py_key == fold_pinyin(row.pinyin) for row in rows if row.pinyin)
    assert aligned / len(rows) > 0.99  # the stored spelling decides each polyphonic reading
    for text in ("石堤镇", "龙凤坝镇", "ab", "Lǜshuǐ Cūn"):
        sql_deletes = conn.execute(sa.text("SELECT pn_deletes(:t, 2)"), {"t": text}).scalar_one()
        assert set(sql_deletes) == deletes(text, min_length=2)
        assert conn.execute(sa.text("SELECT pn_fold_pinyin(:t)"), {"t": text}).scalar_one() == fold_pinyin(text)


def test_keys_follow_a_plain_sql_update(conn: sa.Connection) -> None:
    pid = place_id(conn, "石堤镇")
    conn.execute(sa.text("UPDATE place_names SET name = '石堤新镇', pinyin = NULL WHERE id = :id"), {"id": pid})
    row = conn.execute(sa.text("SELECT name_short, py_key, py_initials FROM place_names WHERE id = :id"),
                       {"id": pid}).one()
    assert tuple(row) == ("石堤新", "shidixinzhen", "sdxz")


# -- export ---------------------------------------------------------------------------------------------------

def test_export_writes_the_national_field_order(engine: sa.Engine, tmp_path: Path) -> None:
    path, count = export_place_names(engine, tmp_path / "place_names.csv", fmt="csv")
    with path.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:8] == [header for _, header in NATIONAL_FIELDS]
    assert rows[0][:8] == ["标准名称", "罗马字母拼写", "类别", "所属行政区划", "地理位置", "含义", "来历", "历史沿革"]
    assert len(rows) == count + 1
    shidi = next(r for r in rows if r[0] == "石堤镇")
    assert shidi[1] == "Shídī Zhèn" and shidi[2] == "行政区划" and shidi[3] == "秀山土家族苗族自治县石堤镇"
    path, count_json = export_place_names(engine, tmp_path / "place_names.geojson", fmt="geojson")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert count_json == count == len(document["features"])
    assert list(document["features"][0]["properties"])[:8] == [name for name, _ in NATIONAL_FIELDS]


# -- migration ---------------------------------------------------------------------------------------------------

def test_upgrade_computes_keys_of_existing_names_and_downgrade_removes_them(scratch_url: str) -> None:
    migrate.upgrade(scratch_url, "0001_layers")
    engine = sa.create_engine(scratch_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO place_names (name, pinyin, category, geom) VALUES "
                "('龙凤坝镇', 'Lóngfèngbà Zhèn', 'administrative', ST_SetSRID(ST_MakePoint(109.0, 28.4), 4490))"))
        migrate.upgrade(scratch_url, "0002_placename_search")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT py_key, py_initials FROM place_names")).one() == ("longfengbazhen",
                                                                                                  "lfbz")
        migrate.downgrade(scratch_url, "0001_layers")
        with engine.connect() as conn:
            columns = set(conn.execute(sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'place_names'")).scalars())
            assert "py_key" not in columns and "pinyin_manual" not in columns
            assert not sa.inspect(conn).has_table("place_name_events")
            assert conn.execute(sa.text("SELECT count(*) FROM place_names")).scalar_one() == 1
        migrate.upgrade(scratch_url, "0002_placename_search")
    finally:
        engine.dispose()
