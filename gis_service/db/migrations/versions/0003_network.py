"""The routable road network, data versions that say when layers changed, and the network's build record.

Revision ID: 0003_network
Revises: 0002_placename_search
Create Date: 2026-11-29

- ``data_versions``: one row per layer the analyses read; a statement-level trigger on each of those tables sets
  its ``version`` to the next value of ``data_version_seq`` on every INSERT, UPDATE, DELETE or TRUNCATE. A sequence
  never hands out a value twice, even when the transaction that took it rolls back, so a version names one state
  of the data: caches keyed by versions are never fooled by a rolled-back change.
- ``network_edges`` / ``network_nodes``: the graph built from ``roads`` (edge id = road id), geometry in the
  county's Gauss-Krüger zone (the SRID is recorded in ``network_state``), lengths in metres, a travel time per
  mode in seconds; ``source``/``target`` are pgRouting vertex ids (pgr_extractVertices), ``component`` the
  connected component (pgr_connectedComponents).
- ``network_state``: one row: which ``roads`` version, SRID and speeds the tables were built from, and how long
  the build took. The tables are rebuilt when that differs from the current state.
"""

from alembic import op

revision = "0003_network"
down_revision = "0002_placename_search"
branch_labels = None
depends_on = None

#: Tables whose changes invalidate the network or cached analysis results.
VERSIONED_TABLES = ("roads", "settlements", "elder_care", "community_centres", "cemeteries", "admin_divisions")

UPGRADE_SQL = r"""
CREATE SEQUENCE data_version_seq;

CREATE TABLE data_versions (
    table_name  text PRIMARY KEY,
    version     bigint NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_versions AS d (table_name, version, changed_at)
    VALUES (TG_TABLE_NAME, nextval('data_version_seq'), now())
    ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END $$;

CREATE TABLE network_nodes (
    id         bigint PRIMARY KEY,
    component  bigint,
    geom       geometry(Point) NOT NULL
);
CREATE INDEX network_nodes_geom ON network_nodes USING gist (geom);

CREATE TABLE network_edges (
    id            bigint PRIMARY KEY,
    road_id       bigint NOT NULL,
    road_class    text NOT NULL,
    is_bridge     boolean NOT NULL DEFAULT false,
    source        bigint,
    target        bigint,
    length_m      double precision NOT NULL CHECK (length_m > 0),
    cost_walk_s   double precision NOT NULL,
    cost_cycle_s  double precision NOT NULL,
    cost_drive_s  double precision NOT NULL,
    geom          geometry(LineString) NOT NULL
);
CREATE INDEX network_edges_geom ON network_edges USING gist (geom);
CREATE INDEX network_edges_source ON network_edges (source);
CREATE INDEX network_edges_target ON network_edges (target);

CREATE TABLE network_state (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    instance_id    uuid NOT NULL DEFAULT gen_random_uuid(),
    roads_version  bigint,
    measure_srid   integer,
    speeds         jsonb,
    edges          integer,
    nodes          integer,
    components     integer,
    built_at       timestamptz,
    build_seconds  double precision
);
INSERT INTO network_state DEFAULT VALUES;
"""


def upgrade() -> None:
    op.execute(UPGRADE_SQL)
    for table in VERSIONED_TABLES:
        op.execute(f"INSERT INTO data_versions (table_name, version) VALUES ('{table}', nextval('data_version_seq'))")
        op.execute(
            f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()"
        )


def downgrade() -> None:
    for table in VERSIONED_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
    for table in ("network_state", "network_edges", "network_nodes", "data_versions"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_data_version()")
    op.execute("DROP SEQUENCE IF EXISTS data_version_seq")
