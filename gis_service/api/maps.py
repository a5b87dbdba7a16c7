"""``/maps``: the web maps for planners (an index, one page per map) and the files they need (``/maps/static``).

Pages link Leaflet relative to themselves (``static/...``), so they work behind any path prefix, and nothing is
loaded from the internet. Building a page is :func:`gis_service.maps.builders.build_map`, the same call
``gis-service map build`` makes.
"""

from __future__ import annotations

import dataclasses
import functools
import mimetypes
from collections.abc import Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from gis_service.analysis.limits import time_budget
from gis_service.analysis.sites import MAX_K
from gis_service.analysis.travel import MAX_MINUTES, MODE_LABELS_ZH, MODES
from gis_service.api.analysis import FACILITY_KINDS, LESS_TRAVEL, AnalysisSettingsDep, CountyQuery
from gis_service.api.deps import (
    ANALYSES,
    AnalysisRunnerDep,
    ReadRunner,
    SettingsDep,
    analysis_turn,
    give_memory_back_if_idle,
    wait_for_network,
)
from gis_service.api.openapi import error_responses
from gis_service.api.security import MAP_REFERRER_POLICY, map_policy
from gis_service.errors import Busy, NetworkBuildingError, NotFoundError
from gis_service.layers import FACILITY_LAYERS
from gis_service.maps import markup
from gis_service.maps.jobs import NETWORK_ZH, QUEUED_ZH, READING_ZH, MapJob, MapJobs, reporting_to
from gis_service.maps.recipes import MAP_NAMES, load_recipe
from gis_service.maps.render import STATIC_DIR

router = APIRouter(prefix="/maps", tags=["maps"])


@functools.cache
def static_assets() -> dict[str, str]:
    """The files under /maps/static (path relative to it -> media type)."""
    return {path.relative_to(STATIC_DIR).as_posix(): _media_type(path.name)
            for path in sorted(STATIC_DIR.rglob("*")) if path.is_file()}


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def map_page(html: str, *, basemap: str, tile_url: str | None = None) -> HTMLResponse:
    """A page of the maps, with the security policy its inline scripts and basemap tiles need."""
    return HTMLResponse(html, headers={"Content-Security-Policy": map_policy(basemap, tile_url),
                                       "Referrer-Policy": MAP_REFERRER_POLICY})


@router.get("", response_class=HTMLResponse, summary="Index of the web maps")
def maps_index(settings: SettingsDep) -> HTMLResponse:
    maps = [{"href": f"maps/{name}", "title": load_recipe(name).title_zh,
             "description": load_recipe(name).description_zh, "form": name == "coverage"} for name in MAP_NAMES]
    kinds = [{"title": layer.title_zh,
              "options": [(code, layer.field_named(layer.network.kind).label_of(code)) for code in layer.kinds]}
             for layer in FACILITY_LAYERS.values() if layer.kinds]
    default_layer = FACILITY_LAYERS[load_recipe("coverage").parameters.get("layer", "elder_care")].title_zh
    html = markup.render("index.html", maps=maps, kinds=kinds, modes=list(MODE_LABELS_ZH.items()),
                         default_layer=default_layer, max_minutes=MAX_MINUTES)
    return map_page(html, basemap=settings.map_basemap)


@router.get("/static/{asset_path:path}", summary="Scripts, style sheets and images the maps use",
            response_class=FileResponse,
            responses={200: {"description": "The file.", "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in sorted(set(static_assets().values()))}}, **error_responses(404)})
def maps_static(asset_path: Annotated[str, Path(description="A file the map pages link to.",
                                                 json_schema_extra={"enum": list(static_assets())})]) -> FileResponse:
    # Only the listed files: no path from a request reaches the file system (not `..`, not a name too long for it).
    if asset_path not in static_assets():
        shown = asset_path if len(asset_path) <= 100 else asset_path[:100] + "..."
        raise NotFoundError(f"no map asset {shown!r}; the map pages link the files they need")
    return FileResponse(STATIC_DIR / asset_path, media_type=static_assets()[asset_path],
                        headers={"Cache-Control": "public, max-age=86400"})


#: The answer while a map is computed (GIS_MAP_WAIT_S passed): 正在计算…, asking again after this many seconds.
COMPUTING_REFRESH_S = 1


@router.get("/{name}", response_class=HTMLResponse, summary="One web map",
            description="overview, coverage, facility_area, boundaries or site_suggestions. The coverage and "
            "site-suggestion maps take the analysis parameters; the others check and ignore them. A map not ready "
            "within GIS_MAP_WAIT_S seconds (parameters no one asked before) is answered 202 with a page saying what "
            "is being computed, which asks again until the map is ready.",
            responses={202: {"description": "正在计算…: the map is being computed; the page says what and refreshes "
                                            "itself (Retry-After).", "content": {"text/html": {}}},
                       **error_responses(400, 404, 409, 503)})
async def get_map(
    name: Annotated[str, Path(description="The map.", json_schema_extra={"enum": list(MAP_NAMES)})],
    request: Request, settings: SettingsDep, analysis_settings: AnalysisSettingsDep, run: AnalysisRunnerDep,
    kind: Annotated[str | None, Query(description="Facility kind, e.g. rural_happiness_home; the layer follows "
                                                  "from it (given both, the kind must be one of the layer's). "
                                                  "Empty: every kind.",
                                      json_schema_extra={"enum": ["", *FACILITY_KINDS]})] = None,
    minutes: Annotated[float | None, Query(description=f"Travel time limit in minutes, more than 0 and at most "
                                                       f"{MAX_MINUTES} (default 15).",
                                           json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_MINUTES})] = None,
    mode: Annotated[str | None, Query(description="walk, cycle or drive (default walk).",
                                      json_schema_extra={"enum": list(MODES)})] = None,
    layer: Annotated[str | None, Query(description="elder_care, community_centres or cemeteries.",
                                       json_schema_extra={"enum": list(FACILITY_LAYERS)})] = None,
    k: Annotated[int | None, Query(description=f"Site suggestions: number of new sites, 1 to {MAX_K} (default 5).",
                                   json_schema_extra={"minimum": 1, "maximum": MAX_K})] = None,
    county: CountyQuery = None,
) -> HTMLResponse:
    from gis_service.analysis.network import check_county
    from gis_service.maps.builders import MapParameters, asked, build_map, describe_zh

    params = MapParameters(layer=layer, kind=kind or None, minutes=minutes, mode=mode, k=k,
                           county=check_county(county))
    key = asked(name, params)  # 404 for a name that is not a map, 400 for a bad parameter, before any work
    title_zh, asked_zh = describe_zh(name, params)
    build = functools.partial(
        build_map, name=name, measure_srid=settings.measure_srid, analysis_settings=analysis_settings,
        basemap=settings.map_basemap, tianditu_key=settings.tianditu_key, assets="served", static_url="static",
        service_url="..", tile_url=settings.map_tile_url, tile_attribution=settings.map_tile_attribution,
        organisation=settings.map_organisation, search_url="../placenames/search")

    def in_database(conn: sa.Connection) -> MapParameters:
        """The parameters, the county checked to be in the database (400 otherwise)."""
        return dataclasses.replace(params, county=check_county(params.county, conn))

    kept = await run(lambda conn: build(conn, params=in_database(conn), cached_only=True), transaction=True)
    if kept is not None:
        return map_page(kept, basemap=settings.map_basemap, tile_url=settings.map_tile_url)

    def computed(conn: sa.Connection) -> str:
        with time_budget(settings.analysis_timeout_s, advice=LESS_TRAVEL):
            return build(conn, params=in_database(conn))

    job = MapJob(key=key, title_zh=title_zh, asked_zh=asked_zh)
    try:
        found = await _map_jobs(request.app).page(job, functools.partial(_compute_map, request.app, run, computed),
                                                  wait_s=settings.map_wait_s)
    except Busy as busy:  # the network still building, too many analyses: the page goes on asking
        retry_s = int(busy.headers["Retry-After"])
        step_zh = f"{NETWORK_ZH}（仍在进行）" if isinstance(busy, NetworkBuildingError) else "等候其他计算完成"
        return _computing(job, step_zh, retry_s, settings, status_code=503)
    if isinstance(found, MapJob):
        return _computing(found, found.step_zh, COMPUTING_REFRESH_S, settings, status_code=202)
    return map_page(found, basemap=settings.map_basemap, tile_url=settings.map_tile_url)


def _computing(job: MapJob, step_zh: str, refresh_s: int, settings, *, status_code: int) -> HTMLResponse:
    """正在计算…: what ``job`` computes and its step, refreshed after ``refresh_s`` (also sent as Retry-After)."""
    note = "服务正忙，稍后自动重试。" if status_code == 503 else ""
    html = markup.render("computing.html", title=job.title_zh, asked=job.asked_zh, step=step_zh,
                         elapsed_s=f"{job.elapsed_s:.0f}", refresh_s=refresh_s, note=note)
    response = map_page(html, basemap=settings.map_basemap, tile_url=settings.map_tile_url)
    response.status_code = status_code
    response.headers["Retry-After"] = str(refresh_s)
    response.headers["Cache-Control"] = "no-store"
    return response


def _map_jobs(app) -> MapJobs:
    """This process's maps being computed: at most as many as analyses may compute and wait at once."""
    jobs = getattr(app.state, "map_jobs", None)
    if jobs is None:
        jobs = app.state.map_jobs = MapJobs(max_jobs=ANALYSES + app.state.settings.analysis_queue)
    return jobs


async def _compute_map(app, run: ReadRunner, computed: Callable[[sa.Connection], str], job: MapJob) -> str:
    """A map's page computed under the analyses' limits (the network build waited for, an analysis turn, the time
    budget in ``computed``), its steps reported to ``job``."""
    await wait_for_network(app, while_building=lambda: job.at(NETWORK_ZH))
    job.at(QUEUED_ZH)
    try:
        async with analysis_turn(app):
            job.at(READING_ZH)
            return await run(reporting_to(job, computed), transaction=True)
    finally:
        await give_memory_back_if_idle(app)
