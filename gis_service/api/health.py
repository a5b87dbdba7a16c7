"""``GET /health``: is the database there, which versions, how much data."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request

from gis_service import __version__
from gis_service.api.deps import ConnectionDep
from gis_service.api.openapi import error_responses
from gis_service.db.migrate import current_revision
from gis_service.io.load_demo import layer_counts

router = APIRouter(tags=["service"])


@router.get("/health", summary="Service and database status",
            description="Database, PostGIS and pgRouting versions, the schema revision and the number of "
            "features in each layer, and the standbys reads are spread over (their lag in seconds, whether they are "
            "used now).", responses=error_responses(503))
def health(conn: ConnectionDep, request: Request) -> dict:
    versions = conn.execute(sa.text(
        "SELECT current_setting('server_version'), postgis_lib_version(), pgr_version(), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm')"
    )).one()
    return {
        "status": "ok",
        "service_version": __version__,
        "database": {
            "postgresql": versions[0],
            "postgis": versions[1],
            "pgrouting": versions[2],
            "pg_trgm": versions[3],
            "schema_revision": current_revision(conn),
        },
        "layers": layer_counts(conn),
        "replicas": request.app.state.read_router.describe(),
    }
