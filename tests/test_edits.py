"""Writes: roles, ETags, the audit trail and marker inspections, through the HTTP API."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.auth import create_token, revoke_token

from .helpers import GEOJSON, NEAR_SEAT, bearer, station


def _audit_count(conn: sa.Connection) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()


def test_create_needs_a_token_of_a_role_that_may_change_the_layer(
        client: TestClient, conn: sa.Connection, tokens: dict) -> None:
    before = conn.execute(sa.text("SELECT count(*) FROM elder_care")).scalar_one()
    assert client.post("/collections/elder_care/items", json=station(), headers=GEOJSON).status_code == 401
    wrong = client.post("/collections/elder_care/items", json=station(), headers=bearer(tokens["inspector"]))
    assert wrong.status_code == 403 and "role inspector may not change elder_care" in wrong.text
    assert client.post("/collections/elder_care/items", json=station(),
                       headers=bearer("gis_not-a-token")).status_code == 401
    assert conn.execute(sa.text("SELECT count(*) FROM elder_care")).scalar_one() == before
    assert _audit_count(conn) == 0

    created = client.post("/collections/elder_care/items", json=station(), headers=bearer(tokens["planner"]))
    assert created.status_code == 201, created.text
    feature = created.json()
    assert created.headers["Location"].endswith(f"/collections/elder_care/items/{feature['id']}")
    assert created.headers["ETag"] == f'"elder_care.{feature["id"]}.v1"'
    assert feature["geometry"]["coordinates"] == pytest.approx(NEAR_SEAT)
    assert conn.execute(sa.text("SELECT count(*) FROM elder_care")).scalar_one() == before + 1
    actor, action = conn.execute(sa.text("SELECT actor, action FROM audit_log")).one()
    assert (actor, action) == ("测试planner", "create")


def test_a_stale_etag_is_refused_and_nothing_is_lost(client: TestClient, conn: sa.Connection, tokens: dict) -> None:
    created = client.post("/collections/elder_care/items", json=station(), headers=bearer(tokens["planner"]))
    url, etag_v1 = f"/collections/elder_care/items/{created.json()['id']}", created.headers["ETag"]
    assert client.get(url).headers["ETag"] == etag_v1  # reading gives the ETag a change must carry
    patch = {"type": "Feature", "geometry": None, "properties": {"beds": 30}}
    missing = client.patch(url, json=patch, headers=bearer(tokens["planner"]))
    assert missing.status_code == 428 and "If-Match" in missing.text
    first = client.patch(url, json=patch, headers=bearer(tokens["planner"], **{"If-Match": etag_v1}))
    assert first.status_code == 200 and first.json()["properties"]["beds"] == 30
    assert first.json()["properties"]["nursing_beds"] == 8  # PATCH keeps what it does not name
    stale = client.patch(url, json={"type": "Feature", "properties": {"beds": 40}},
                         headers=bearer(tokens["planner"], **{"If-Match": etag_v1}))
    assert stale.status_code == 412 and "has changed since you read it" in stale.text
    assert conn.execute(sa.text(f"SELECT beds FROM elder_care WHERE id = {created.json()['id']}")).scalar() == 30
    assert client.get(url).headers["ETag"] == first.headers["ETag"] != etag_v1
    history = client.get(url + "/history", headers=bearer(tokens["inspector"])).json()  # any role may read it
    assert [c["action"] for c in history["changes"]] == ["create", "update"]
    assert history["changes"][1]["before"]["beds"] == 20 and history["changes"][1]["after"]["beds"] == 30


def test_bad_features_are_refused_with_the_reason_and_write_nothing(
        client: TestClient, conn: sa.Connection, tokens: dict) -> None:
    headers = bearer(tokens["planner"])
    cases = [
        ({**station(), "geometry": {"type": "Point", "coordinates": [28.449, 108.993]}}, 422, "swapped"),
        ({**station(), "geometry": {"type": "Point", "coordinates": [116.4, 39.9]}}, 422, "outside the county"),
        ({**station(), "geometry": {"type": "LineString", "coordinates": [NEAR_SEAT, [108.995, 28.45]]}}, 422,
         "elder_care holds Point geometries"),
        ({**station(), "properties": {**station()["properties"], "colour": "red"}}, 422, "colour: unknown field"),
        ({**station(), "properties": {**station()["properties"], "division_code": "500241999999"}}, 422,
         "not the code of a current administrative division"),
        ({**station(), "properties": {**station()["properties"], "nursing_beds": 50}}, 422, "exceed 20 beds"),
        ({**station(), "geometry": {"type": "Point", "coordinates": [108.99, 28.45, 300]}}, 422, "3-D"),
        ({"type": "FeatureCollection", "features": []}, 400, "must be a GeoJSON Feature"),
        # found by schemathesis: shapely failed on these with KeyError and TypeError (server errors)
        ({**station(), "geometry": {"type": "MultiPolygon", "coordinates": [[{"x": 1}]]}}, 400, "malformed"),
        ({**station(), "geometry": {"type": {}, "coordinates": [108.99, 28.45]}}, 400, "geometry type must be"),
    ]
    for body, status, words in cases:
        response = client.post("/collections/elder_care/items", json=body, headers=headers)
        assert response.status_code == status, (words, response.text)
        assert words in response.text
    malformed = client.post("/collections/elder_care/items", content=b'{"type": "Feature",', headers=headers)
    assert malformed.status_code == 400 and "not valid JSON" in malformed.text
    wrong_type = client.post("/collections/elder_care/items", content=b"{}",
                             headers={**headers, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert _audit_count(conn) == 0


def test_planners_may_change_only_the_figures_of_divisions(
        client: TestClient, conn: sa.Connection, tokens: dict) -> None:
    fid, version = conn.execute(sa.text(
        "SELECT id, version FROM admin_divisions WHERE code = '500241001001' AND valid_to IS NULL")).one()
    url, etag = f"/collections/admin_divisions/items/{fid}", f'"admin_divisions.{fid}.v{version}"'
    renamed = client.patch(url, json={"type": "Feature", "properties": {"name": "新名"}},
                           headers=bearer(tokens["planner"], **{"If-Match": etag}))
    assert renamed.status_code == 403
    counted = client.patch(url, json={"type": "Feature", "properties": {"households": 1234}},
                           headers=bearer(tokens["planner"], **{"If-Match": etag}))
    assert counted.status_code == 200, counted.text
    assert counted.json()["properties"]["households"] == 1234


def test_revoked_tokens_stop_working(client: TestClient, conn: sa.Connection) -> None:
    token_id, token = create_token(conn, role="planner", name="临时")
    revoke_token(conn, token_id)
    response = client.post("/collections/elder_care/items", json=station(), headers=bearer(token))
    assert response.status_code == 401 and "revoked" in response.text


def test_an_inspection_updates_the_marker_in_the_same_transaction(
        client: TestClient, conn: sa.Connection, tokens: dict) -> None:
    marker = conn.execute(sa.text("SELECT id FROM boundary_markers ORDER BY id LIMIT 1")).scalar_one()
    response = client.post(f"/collections/boundary_markers/items/{marker}/inspections",
                           json={"inspected_on": "2026-11-20", "condition": "damaged", "notes": "桩体倾斜"},
                           headers=bearer(tokens["inspector"]))
    assert response.status_code == 201, response.text
    condition, last = conn.execute(sa.text(
        "SELECT condition, last_inspected::text FROM boundary_markers WHERE id = :id"), {"id": marker}).one()
    assert (condition, last) == ("damaged", "2026-11-20")
    records = client.get(f"/collections/boundary_markers/items/{marker}/inspections",
                         headers=bearer(tokens["planner"])).json()["inspections"]
    assert records[0]["inspector"] == "测试inspector" and records[0]["notes"] == "桩体倾斜"
    denied = client.post(f"/collections/boundary_markers/items/{marker}/inspections",
                         json={"condition": "intact"}, headers=bearer(tokens["placename"]))
    assert denied.status_code == 403


def test_delete_keeps_the_feature_in_the_audit_trail(client: TestClient, conn: sa.Connection, tokens: dict) -> None:
    created = client.post("/collections/elder_care/items", json=station(), headers=bearer(tokens["admin"]))
    url = f"/collections/elder_care/items/{created.json()['id']}"
    assert client.delete(url, headers=bearer(tokens["admin"])).status_code == 428
    assert client.delete(url, headers=bearer(tokens["admin"], **{"If-Match": created.headers["ETag"]})
                         ).status_code == 204
    history = client.get(url + "/history", headers=bearer(tokens["admin"])).json()["changes"]
    assert [c["action"] for c in history] == ["create", "delete"]
    assert history[-1]["before"]["name"] == "测试养老服务站"


def test_renaming_a_place_name_keeps_the_old_one_findable(client: TestClient, conn: sa.Connection,
                                                          tokens: dict) -> None:
    fid, version = conn.execute(sa.text(
        "SELECT id, version FROM place_names WHERE name = '凤凰山' AND status = 'current'")).one()
    url = f"/collections/place_names/items/{fid}"
    renamed = client.patch(url, json={"type": "Feature", "properties": {"name": "凤鸣山"}},
                           headers=bearer(tokens["placename"], **{"If-Match": f'"place_names.{fid}.v{version}"'}))
    assert renamed.status_code == 200, renamed.text
    properties = renamed.json()["properties"]
    assert properties["pinyin"] == "Fèngmíng Shān"  # generated again for the new name
    assert "凤凰山更名为凤鸣山" in properties["history"]
    former = conn.execute(sa.text(
        "SELECT status, successor_id FROM place_names WHERE name = '凤凰山'")).one()
    assert tuple(former) == ("historical", fid)
    found = client.get("/placenames/search", params={"q": "凤凰山"}).json()["features"][0]
    assert found["properties"]["name"] == "凤鸣山" and found["properties"]["match"] == "former_name"
    assert client.patch(url, json={"type": "Feature", "properties": {"pinyin_manual": "凤鸣山"}},
                        headers=bearer(tokens["placename"], **{"If-Match": renamed.headers["ETag"]})).status_code == 422


def test_reading_can_be_closed_to_holders_of_a_token(engine: sa.Engine, settings) -> None:
    from gis_service.app import create_app

    closed = create_app(settings.model_copy(update={"read_requires_token": True}), engine)
    with engine.begin() as committed:
        token_id, token = create_token(committed, role="inspector", name="只读测试")
    try:
        with TestClient(closed) as reader:
            assert reader.get("/health").status_code == 200
            refused = reader.get("/collections/roads/items", params={"limit": 1})
            assert refused.status_code == 401 and "bearer token" in refused.text
            allowed = reader.get("/collections/roads/items", params={"limit": 1},
                                 headers={"Authorization": f"Bearer {token}"})
            assert allowed.status_code == 200 and allowed.json()["numberReturned"] == 1
    finally:
        with engine.begin() as committed:
            committed.execute(sa.text("DELETE FROM api_tokens WHERE id = :id"), {"id": token_id})
    with TestClient(create_app(settings, engine)) as open_reader:
        assert open_reader.get("/collections/roads/items", params={"limit": 1}).status_code == 200
