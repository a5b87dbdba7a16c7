"""The service's first endpoints answer with what the database holds."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.layers import LAYERS


def test_health_reports_versions_and_counts(client: TestClient, conn: sa.Connection) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    server = conn.execute(sa.text("SELECT current_setting('server_version')")).scalar_one()
    assert body["database"]["postgresql"] == server and server[0].isdigit()
    assert body["database"]["postgis"].startswith("3.")
    assert body["layers"]["admin_divisions"] == 1 + 27 + 268
    assert body["layers"]["roads"] == conn.execute(sa.text("SELECT count(*) FROM roads")).scalar()


def test_collections_list_every_layer_with_its_count(client: TestClient, conn: sa.Connection) -> None:
    collections = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert set(collections) == set(LAYERS)
    for layer in LAYERS.values():
        assert collections[layer.id]["featureCount"] > 0, layer.id
    assert collections["elder_care"]["featureCount"] == conn.execute(
        sa.text("SELECT count(*) FROM elder_care")).scalar()
