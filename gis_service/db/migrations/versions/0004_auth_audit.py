"""Tokens, the audit trail and feature versions (for ETag / If-Match).

Revision ID: 0004_auth_audit
Revises: 0003_network
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004_auth_audit"
down_revision = "0003_network"
branch_labels = None
depends_on = None

LAYER_TABLES = ("admin_divisions", "boundary_lines", "boundary_markers", "roads", "place_names", "settlements",
                "cemeteries", "elder_care", "community_centres")


def upgrade() -> None:
    op.execute("""
    CREATE TABLE api_tokens (
        id           serial PRIMARY KEY,
        name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
        role         text NOT NULL CHECK (role IN ('inspector', 'placename', 'planner', 'admin')),
        token_hash   char(64) NOT NULL UNIQUE,
        created_at   timestamptz NOT NULL DEFAULT now(),
        expires_at   timestamptz,
        revoked_at   timestamptz,
        last_used_at timestamptz
    );

    -- One row per accepted change, written in the same transaction as the change.
    CREATE TABLE audit_log (
        id         bigserial PRIMARY KEY,
        changed_at timestamptz NOT NULL DEFAULT now(),
        token_id   integer REFERENCES api_tokens (id),
        actor      text NOT NULL,
        role       text NOT NULL,
        layer      text NOT NULL,
        feature_id bigint NOT NULL,
        action     text NOT NULL CHECK (action IN ('create', 'update', 'delete', 'inspect')),
        version    integer,
        before     jsonb,
        after      jsonb,
        request_id text
    );
    CREATE INDEX audit_log_feature ON audit_log (layer, feature_id, id);

    -- Every UPDATE, by whatever path, makes a new version: an ETag built on it can never go stale unseen.
    CREATE FUNCTION bump_feature_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.version := OLD.version + 1;
        RETURN NEW;
    END $$;
    """)
    for table in LAYER_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN version integer NOT NULL DEFAULT 1")
        op.execute(f"CREATE TRIGGER {table}_version BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION bump_feature_version()")


def downgrade() -> None:
    for table in LAYER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_version ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS version")
    op.execute("DROP FUNCTION IF EXISTS bump_feature_version()")
    op.execute("DROP TABLE IF EXISTS audit_log")
    op.execute("DROP TABLE IF EXISTS api_tokens")
