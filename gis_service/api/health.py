"""``GET /health``: is the database there, which versions, how much data."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gis_service import __version__
from gis_service.api.deps import ConnectionDep
from gis_service.api.openapi import error_responses
from gis_service.db.migrate import current_revision
from gis_service.store.features import layer_counts
from gis_service.store.health import server_versions

router = APIRouter(tags=["service"])


@router.get("/health", summary="Service and database status",
            description="Database, PostGIS and pgRouting versions, the schema revision and the number of "
            "features in each layer, and the standbys reads are spread over (their lag in seconds, whether they are "
            "used now), and the reads this process sent to the primary.", responses=error_responses(503))
def health(conn: ConnectionDep, request: Request) -> dict:
    return {
        "status": "ok",
        "service_version": __version__,
        "database": {**server_versions(conn), "schema_revision": current_revision(conn)},
        "layers": layer_counts(conn),
        "replicas": request.app.state.read_router.describe(),
        "primary_reads": request.app.state.read_router.primary_reads,
    }
