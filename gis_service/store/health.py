"""What ``/health`` reports of the database: server and extension versions."""

from __future__ import annotations

import sqlalchemy as sa


def server_versions(conn: sa.Connection) -> dict[str, str | None]:
    """PostgreSQL, PostGIS, pgRouting and pg_trgm versions."""
    row = conn.execute(sa.text(
        "SELECT current_setting('server_version'), postgis_lib_version(), pgr_version(), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm')")).one()
    return {"postgresql": row[0], "postgis": row[1], "pgrouting": row[2], "pg_trgm": row[3]}
