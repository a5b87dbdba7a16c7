"""Tokens that may change features without If-Match, and the audit trail saying which changes did.

Revision ID: 0010_if_match_waiver
Revises: 0009_write_allowance
Create Date: 2026-12-04

QGIS and other clients send no If-Match: an administrator may create a token with ``--no-if-match`` for them (the
last write wins). Every change made that way is marked in ``audit_log.last_write_wins``.
"""

from alembic import op

revision = "0010_if_match_waiver"
down_revision = "0009_write_allowance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_tokens ADD COLUMN if_match_required boolean NOT NULL DEFAULT true")
    op.execute("ALTER TABLE audit_log ADD COLUMN last_write_wins boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_log DROP COLUMN last_write_wins")
    op.execute("ALTER TABLE api_tokens DROP COLUMN if_match_required")
