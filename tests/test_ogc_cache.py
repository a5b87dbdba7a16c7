"""Collection summaries are cached per data version: a write is seen at once, a repeated call costs no scan."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.db import migrate
from gis_service.layers import LAYERS

from .helpers import SEAT_LAT, SEAT_LON, current_count


def served_count(client: TestClient, layer_id: str) -> int:
    listed = {c["id"]: c["featureCount"] for c in client.get("/collections").json()["collections"]}
    one = client.get(f"/collections/{layer_id}").json()["featureCount"]
    assert listed[layer_id] == one
    return one


def test_a_new_feature_is_counted_and_widens_the_extent(client: TestClient, conn: sa.Connection) -> None:
    before = served_count(client, "elder_care")
    assert before == current_count(conn, "elder_care") > 0
    west = client.get("/collections/elder_care").json()["extent"]["spatial"]["bbox"][0][0]
    conn.execute(sa.text(
        "INSERT INTO elder_care (name, kind, operator, geom) VALUES ('测试敬老院', 'township_home', 'government', "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"), {"lon": west - 0.01, "lat": SEAT_LAT})
    assert served_count(client, "elder_care") == before + 1
    assert client.get("/collections/elder_care").json()["extent"]["spatial"]["bbox"][0][0] == pytest.approx(
        west - 0.01)


def test_deleted_features_leave_the_count(client: TestClient, conn: sa.Connection) -> None:
    before = served_count(client, "place_names")  # versioned by migration 0005
    conn.execute(sa.text("DELETE FROM place_names WHERE id IN (SELECT id FROM place_names ORDER BY id LIMIT 3)"))
    assert served_count(client, "place_names") == before - 3 == current_count(conn, "place_names")


def test_an_update_moves_the_temporal_extent(client: TestClient, conn: sa.Connection) -> None:
    def last_inspected() -> str:
        return client.get("/collections/boundary_lines").json()["extent"]["temporal"]["interval"][0][1]

    assert last_inspected() < "2099-01-01"
    conn.execute(sa.text("UPDATE boundary_lines SET last_inspected = '2099-01-01' "
                         "WHERE id = (SELECT min(id) FROM boundary_lines)"))
    assert last_inspected() == "2099-01-01"


def test_a_replaced_division_leaves_the_current_count(client: TestClient, conn: sa.Connection) -> None:
    before = served_count(client, "admin_divisions")
    conn.execute(sa.text(
        "UPDATE admin_divisions SET valid_to = current_date WHERE valid_to IS NULL AND level = 'village' AND "
        "id = (SELECT min(id) FROM admin_divisions WHERE valid_to IS NULL AND level = 'village')"))
    assert served_count(client, "admin_divisions") == before - 1


def test_repeated_calls_are_answered_from_the_cache(client: TestClient, conn: sa.Connection) -> None:
    client.get("/collections")
    cache = client.app.state.summary_cache
    misses = cache.misses
    for _ in range(3):
        assert client.get("/collections").status_code == 200
        client.get("/collections/roads/tiles/WebMercatorQuad/tilejson.json")
    assert cache.misses == misses  # nothing changed: no layer was counted again
    conn.execute(sa.text("UPDATE roads SET width_m = width_m WHERE id = (SELECT min(id) FROM roads)"))
    client.get("/collections")
    assert cache.misses == misses + 1  # only roads changed
    near_seat = client.get("/collections/roads").json()["extent"]["spatial"]["bbox"][0]
    assert near_seat[0] < SEAT_LON < near_seat[2]


def test_every_layer_table_has_a_data_version_and_its_trigger(conn: sa.Connection) -> None:
    versioned = set(conn.execute(sa.text("SELECT table_name FROM data_versions")).scalars())
    triggers = set(conn.execute(sa.text(
        "SELECT event_object_table FROM information_schema.triggers WHERE trigger_name LIKE '%\\_data\\_version' "
        "AND action_timing = 'AFTER' AND action_orientation = 'STATEMENT'")).scalars())
    tables = {layer.table for layer in LAYERS.values()}
    assert tables <= versioned and tables <= triggers


def test_the_layer_versions_migration_undoes_exactly_itself(scratch_url: str) -> None:
    def state() -> tuple[set[str], set[str]]:
        scratch = sa.create_engine(scratch_url)
        try:
            with scratch.connect() as c:
                rows = set(c.execute(sa.text("SELECT table_name FROM data_versions")).scalars())
                triggers = set(c.execute(sa.text(
                    "SELECT tgname FROM pg_trigger WHERE tgname LIKE '%\\_data\\_version'")).scalars())
            return rows, triggers
        finally:
            scratch.dispose()

    migrate.upgrade(scratch_url)
    at_head = state()
    migrate.downgrade(scratch_url, "0004_auth_audit")
    rows, triggers = state()
    added = {"boundary_lines", "boundary_markers", "place_names"}
    assert rows == at_head[0] - added and added & rows == set()
    assert triggers == at_head[1] - {f"{t}_data_version" for t in added}
    assert "roads" in rows and "roads_data_version" in triggers  # 0003's are untouched
    migrate.upgrade(scratch_url)
    assert state() == at_head
