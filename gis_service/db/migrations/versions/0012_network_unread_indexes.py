"""Drop the network's indexes nothing reads: ``network_edges`` by ``source`` and by ``target``, ``network_nodes``
by geometry.

Revision ID: 0012_network_unread_indexes
Revises: 0011_contains_index
Create Date: 2026-12-04

The service reads the edges whole (the graph) or by geometry (points joined to the nearest edge), pgRouting's
functions read every edge they are given, and the nodes are not read by the service at all (they are there, with
their components, for SQL users); yet every network build paid for these three indexes entry by entry: a quarter
to a third of the build's time and WAL, and a part that grew faster than the roads (issue 17).
"""

from alembic import op

revision = "0012_network_unread_indexes"
down_revision = "0011_contains_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS network_edges_source")
    op.execute("DROP INDEX IF EXISTS network_edges_target")
    op.execute("DROP INDEX IF EXISTS network_nodes_geom")


def downgrade() -> None:
    op.execute("CREATE INDEX network_nodes_geom ON network_nodes USING gist (geom)")
    op.execute("CREATE INDEX network_edges_source ON network_edges (source)")
    op.execute("CREATE INDEX network_edges_target ON network_edges (target)")
