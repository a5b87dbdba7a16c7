"""The per-token write allowance, shared by every worker process and API host.

Revision ID: 0009_write_allowance
Revises: 0008_location_precision
Create Date: 2026-11-30

One row per token that has written: how many writes it has left (a token bucket refilled continuously up to
GIS_WRITE_RATE_PER_MINUTE) when it was last counted. In the database rather than in each process, so that N workers
(or N hosts) do not allow N times the rate; see :mod:`gis_service.api.ratelimit`.
"""

from alembic import op

revision = "0009_write_allowance"
down_revision = "0008_location_precision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE write_allowance (
        token_id   integer PRIMARY KEY,
        writes_left float8 NOT NULL,
        counted_at timestamptz NOT NULL,
        allowed    boolean NOT NULL
    )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE write_allowance")
