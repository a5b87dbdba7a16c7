"""The schema is made by alembic alone, and every migration can be undone and redone."""

from __future__ import annotations

import sqlalchemy as sa

from gis_service.db import migrate
from gis_service.layers import LAYERS


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_every_layer_and_downgrade_removes_them(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    tables = _tables(scratch_url)
    assert {layer.table for layer in LAYERS.values()} | {"marker_inspections"} <= tables
    migrate.downgrade(scratch_url, "base")
    assert _tables(scratch_url) & {layer.table for layer in LAYERS.values()} == set()
    migrate.upgrade(scratch_url)
    assert {layer.table for layer in LAYERS.values()} <= _tables(scratch_url)


def test_the_test_database_is_at_the_head_revision(engine: sa.Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_every_geometry_column_has_a_gist_index_and_a_validity_check(conn: sa.Connection) -> None:
    for layer in LAYERS.values():
        srid, kind = conn.execute(sa.text(
            "SELECT srid, type FROM geometry_columns WHERE f_table_name = :t AND f_geometry_column = 'geom'"
        ), {"t": layer.table}).one()
        assert srid == 4490
        assert kind == layer.geometry_type.upper()
        indexes = conn.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"),
                               {"t": layer.table}).scalars().all()
        assert any("USING gist (geom)" in d for d in indexes), layer.table
        checks = conn.execute(sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
            "AND contype = 'c'"), {"t": layer.table}).scalars().all()
        assert any("st_isvalid(geom)" in c for c in checks), layer.table
