"""How a facility's point was placed: location_precision on the facility layers.

Revision ID: 0008_location_precision
Revises: 0007_admin_initials_index
Create Date: 2026-12-04

A facility list with an address instead of coordinates is placed by the geocoder (``import --geocode``) at a
settlement, on a road or at a village; the column says which, so that a planner knows which points to survey. Empty:
the coordinates were given.
"""

from alembic import op

revision = "0008_location_precision"
down_revision = "0007_admin_initials_index"
branch_labels = None
depends_on = None

FACILITY_TABLES = ("cemeteries", "elder_care", "community_centres")


def upgrade() -> None:
    for table in FACILITY_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN location_precision text "
                   f"CHECK (location_precision IN ('settlement', 'road', 'village'))")


def downgrade() -> None:
    for table in FACILITY_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN location_precision")
