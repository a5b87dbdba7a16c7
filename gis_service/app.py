"""The web application: ``create_app(settings, engine)``. Nothing heavy happens at import time."""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import AsyncIterator

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from starlette.routing import get_route_path

from gis_service import __version__
from gis_service.api import analysis, edits, exports, health, interop, maps, ogc, pages, placenames, session, signin
from gis_service.api.docs import install_docs
from gis_service.api.middleware import RequestContext, install_error_handlers
from gis_service.api.openapi import install_openapi
from gis_service.api.ratelimit import WriteRateLimiter
from gis_service.api.security import DOCS_POLICY
from gis_service.db.engine import READER_CHECKS
from gis_service.db.replicas import ReadRouter, RetryOnPrimary
from gis_service.errors import AuthenticationRequired
from gis_service.ogc.tilecache import TileCache
from gis_service.settings import Settings


def create_app(settings: Settings | None = None, engine: sa.Engine | None = None, *,
               owns_engine: bool = False) -> FastAPI:
    """Build the app. With no ``engine`` the lifespan provisions the database (embedded or configured),
    runs the migrations and disposes of it on shutdown; ``gis-service serve``'s workers pass a ready engine
    (``owns_engine``: dispose of it on shutdown)."""
    settings = settings or Settings()
    from gis_service.analysis.network import keep_graphs_in

    keep_graphs_in(settings.data_dir / "network")  # one copy of the road graph per host, mapped by every worker

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            app.state.engine = engine
            app.state.read_router = _read_router(engine, settings)
            _start_warm_up(engine, settings)
            try:
                yield
            finally:
                app.state.read_router.stop()
                if owns_engine:
                    engine.dispose()
            return
        from gis_service.db.engine import create_db_engine, provisioned, upgrade_schema

        with provisioned(settings) as url:
            upgrade_schema(settings, url)
            app.state.engine = create_db_engine(url, statement_timeout_s=settings.statement_timeout_s)
            app.state.read_router = _read_router(app.state.engine, settings)
            _start_warm_up(app.state.engine, settings)
            try:
                yield
            finally:
                app.state.read_router.stop()
                app.state.engine.dispose()

    app = FastAPI(
        title="gis-service",
        version=__version__,
        description="Spatial data and service coverage for a county civil-affairs bureau: administrative divisions, "
        "boundary lines and markers, named roads, place names, settlements and facilities, in PostGIS.",
        lifespan=lifespan,
        dependencies=[Depends(require_reader, max_concurrency=READER_CHECKS)],
        docs_url=None, redoc_url=None,  # served offline by install_docs
    )
    app.state.settings = settings
    app.state.write_limiter = WriteRateLimiter(settings.write_rate_per_minute)
    app.state.tile_cache = TileCache(settings.data_dir / "tiles", max_bytes=settings.tile_cache_mb * 2**20)
    if engine is not None:
        app.state.engine = engine
        app.state.read_router = ReadRouter(engine)  # replaced by the lifespan's, which may have standbys
    app.add_middleware(RetryOnPrimary)  # innermost: a retried read is compressed once, logged once
    interop.install_interop(app, settings)  # inside RequestContext
    doc_pages = install_docs(app)
    app.add_middleware(RequestContext, settings=settings, html_policies={path: DOCS_POLICY for path in doc_pages})
    interop.install_cors(app, settings)  # outermost
    install_error_handlers(app, statement_timeout_s=settings.statement_timeout_s)

    app.include_router(health.router)
    app.include_router(ogc.router)
    app.include_router(exports.router)
    app.include_router(edits.router)
    app.include_router(analysis.router)
    app.include_router(placenames.router)
    app.include_router(maps.router)
    app.include_router(pages.router)
    signin.install_sign_in(app)
    app.include_router(interop.router)  # last: OPTIONS on any path
    install_openapi(app, settings)
    return app


def _read_router(engine: sa.Engine, settings: Settings) -> ReadRouter:
    """Where reads go: the primary, and the standbys of GIS_DATABASE_READ_URLS (sampled from now on)."""
    from gis_service.db.engine import create_db_engine
    from gis_service.db.replicas import fence_file

    router = ReadRouter.from_urls(
        engine, settings.database_read_urls, max_lag_s=settings.replica_max_lag_s,
        fence_file=fence_file(settings.data_dir) if settings.database_read_urls else None,
        engine_factory=lambda url: create_db_engine(url, statement_timeout_s=settings.statement_timeout_s))
    router.start()
    return router


def _start_warm_up(engine: sa.Engine, settings: Settings) -> None:
    """In the background: build the road network if roads changed and import folium, so that the first coverage
    request or map a planner opens does not wait for them (seconds each). Off with GIS_WARM_UP=false."""
    if settings.warm_up:
        threading.Thread(target=_warm_up, args=(engine, settings), name="warm-up", daemon=True).start()


def _warm_up(engine: sa.Engine, settings: Settings) -> None:
    try:
        importlib.import_module("folium")
        from gis_service.analysis.network import ensure_network_if_roads
        from gis_service.analysis.travel import AnalysisSettings

        with engine.connect() as conn:
            ensure_network_if_roads(conn, measure_srid=settings.measure_srid, settings=AnalysisSettings())
            conn.commit()
    except Exception:  # a warm-up must never take the service down; the first request will say what is wrong
        logging.getLogger(__name__).exception("warm-up failed")


async def require_reader(request: Request) -> None:
    """With GIS_READ_REQUIRES_TOKEN, every request but /health and the sign-in page needs a valid bearer token (any
    role), or a signed-in browser's session cookie; a browser opening a page without either is sent to sign in."""
    settings: Settings = request.app.state.settings
    path = get_route_path(request.scope)
    if not settings.read_requires_token or session.open_to_all(path):
        return
    try:
        await run_in_threadpool(_check_reader, request.app.state.engine, session.authorization(request))
    except AuthenticationRequired as refused:
        if signin.wants_page(request):
            raise session.sign_in_needed(request) from refused
        raise


def _check_reader(engine: sa.Engine, authorization: str | None) -> None:
    from gis_service.auth import authenticate

    with engine.begin() as conn:
        authenticate(conn, authorization)
