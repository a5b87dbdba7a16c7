"""Data versions for the layers that lacked them, so collection summaries can be cached.

Revision ID: 0005_layer_versions
Revises: 0004_auth_audit
Create Date: 2026-11-29

0003 gave ``data_versions`` rows and statement-level ``bump_data_version`` triggers to the tables the analyses
read. The collection documents (``/collections``: feature count, spatial and temporal extent) are cached per layer
and version (:mod:`gis_service.ogc.cache`), so every published layer needs them: this adds the same trigger and row
to the layer tables without one. ``marker_inspections`` is not a layer and no summary reads it (an inspection
updates its marker, which bumps ``boundary_markers``), so it gets none.
"""

from alembic import op

revision = "0005_layer_versions"
down_revision = "0004_auth_audit"
branch_labels = None
depends_on = None

#: Layer tables without a data version before this revision (0003 versioned the others).
NEWLY_VERSIONED_TABLES = ("boundary_lines", "boundary_markers", "place_names")


def upgrade() -> None:
    for table in NEWLY_VERSIONED_TABLES:
        op.execute(f"INSERT INTO data_versions (table_name, version) VALUES ('{table}', nextval('data_version_seq'))")
        op.execute(
            f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()"
        )


def downgrade() -> None:
    for table in NEWLY_VERSIONED_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
        op.execute(f"DELETE FROM data_versions WHERE table_name = '{table}'")
