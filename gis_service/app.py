"""The web application: ``create_app(settings, engine)``. Nothing heavy happens at import time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gis_service import __version__
from gis_service.api import analysis, edits, exports, health, maps, ogc, placenames
from gis_service.errors import GisServiceError
from gis_service.settings import Settings


def create_app(settings: Settings | None = None, engine: sa.Engine | None = None) -> FastAPI:
    """Build the app. With no ``engine`` the lifespan provisions the database (embedded or configured),
    runs the migrations and disposes of it on shutdown; ``gis-service serve`` passes a ready engine."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            app.state.engine = engine
            yield
            return
        from gis_service.db import migrate
        from gis_service.db.engine import create_db_engine, provisioned

        with provisioned(settings) as url:
            migrate.upgrade(url)
            app.state.engine = create_db_engine(url)
            try:
                yield
            finally:
                app.state.engine.dispose()

    app = FastAPI(
        title="gis-service",
        version=__version__,
        description="Spatial data and service coverage for a county civil-affairs bureau: administrative divisions, "
        "boundary lines and markers, named roads, place names, settlements and facilities, in PostGIS.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if engine is not None:
        app.state.engine = engine

    @app.exception_handler(GisServiceError)
    async def _service_error(request: Request, exc: GisServiceError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code,
                            content={"code": type(exc).__name__, "description": str(exc)})

    app.include_router(health.router)
    app.include_router(ogc.router)
    app.include_router(exports.router)
    app.include_router(edits.router)
    app.include_router(analysis.router)
    app.include_router(placenames.router)
    app.include_router(maps.router)
    return app
