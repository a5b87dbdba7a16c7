"""Revision 0003_network can be applied, undone and applied again; its triggers bump the data versions."""

from __future__ import annotations

import sqlalchemy as sa

from gis_service.db import migrate

NETWORK_TABLES = {"network_edges", "network_nodes", "network_state", "data_versions"}


def _inspect(url: str) -> tuple[set[str], set[str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            triggers = set(conn.execute(sa.text(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE '%_data_version'")).scalars())
        return tables, triggers
    finally:
        engine.dispose()


def test_the_network_revision_upgrades_downgrades_and_upgrades_again(scratch_url: str) -> None:
    migrate.upgrade(scratch_url, "0003_network")
    tables, triggers = _inspect(scratch_url)
    assert NETWORK_TABLES <= tables
    assert "roads_data_version" in triggers and "settlements_data_version" in triggers
    migrate.downgrade(scratch_url, "0002_placename_search")
    tables, triggers = _inspect(scratch_url)
    assert not NETWORK_TABLES & tables and not triggers
    assert "roads" in tables
    migrate.upgrade(scratch_url)
    assert NETWORK_TABLES <= _inspect(scratch_url)[0]


def test_every_change_to_a_layer_takes_a_new_version(conn: sa.Connection) -> None:
    def version() -> int:
        return conn.execute(sa.text("SELECT version FROM data_versions WHERE table_name = 'elder_care'")).scalar()

    first = version()
    conn.execute(sa.text("UPDATE elder_care SET beds = beds WHERE id = (SELECT min(id) FROM elder_care)"))
    second = version()
    conn.execute(sa.text("DELETE FROM elder_care WHERE id = (SELECT min(id) FROM elder_care)"))
    third = version()
    assert first < second < third
    roads = conn.execute(sa.text("SELECT version FROM data_versions WHERE table_name = 'roads'")).scalar()
    assert roads not in (first, second, third)
