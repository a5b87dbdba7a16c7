"""``/analysis/...``: coverage along the road network, service areas, floor area per 100 households, the plan's
indicators and site suggestions. Thin: parameters are checked and answered by :mod:`gis_service.analysis`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gis_service.analysis.coverage import GROUP_BY, coverage
from gis_service.analysis.facility_area import LEVELS, facility_area
from gis_service.analysis.indicators import indicators
from gis_service.analysis.limits import time_budget
from gis_service.analysis.service_areas import MAX_BUFFER_M, MIN_BUFFER_M, service_areas
from gis_service.analysis.sites import MAX_CANDIDATES, MAX_K, site_suggestions
from gis_service.analysis.travel import MAX_MINUTES, METHODS, MODES, AnalysisSettings
from gis_service.api.deps import RUNS_ANALYSIS, ConnectionDep, SettingsDep
from gis_service.api.openapi import GEOJSON, error_responses
from gis_service.layers import FACILITY_LAYERS

router = APIRouter(prefix="/analysis", tags=["analysis"])
#: What an analysis answers besides its result: 400 for a bad parameter; 503 when the database gives up, the
#: analysis runs out of time (GIS_ANALYSIS_TIMEOUT_S) or too many analyses wait (see ``RUNS_ANALYSIS``).
ERRORS = error_responses(400, 503)
#: The analyses along the roads: also 409 while the roads layer is empty.
NETWORK_ERRORS = error_responses(400, 409, 503)

#: What to ask for instead when an analysis runs out of time (GIS_ANALYSIS_TIMEOUT_S).
LESS_TRAVEL = "fewer minutes, a slower mode, or one kind of facility"

#: Every facility kind; each belongs to one layer (see ``layer``).
FACILITY_KINDS = [kind for layer in FACILITY_LAYERS.values() for kind in layer.kinds]


def get_analysis_settings(request: Request) -> AnalysisSettings:
    """Travel speeds, read from the environment once per app."""
    settings = getattr(request.app.state, "analysis_settings", None)
    if settings is None:
        settings = request.app.state.analysis_settings = AnalysisSettings()
    return settings


AnalysisSettingsDep = Annotated[AnalysisSettings, Depends(get_analysis_settings)]

LayerQuery = Annotated[str, Query(description="Facility layer: elder_care, community_centres or cemeteries. "
                                               "Only facilities with status 'existing' count.",
                                   json_schema_extra={"enum": list(FACILITY_LAYERS)})]
KindQuery = Annotated[str | None, Query(description="Facility kind within the layer: welfare_institution, "
                                                    "township_home, community_station or rural_happiness_home for "
                                                    "elder_care; public_welfare_cemetery, burial_point, funeral_home, "
                                                    "funeral_service_station or commercial_cemetery for cemeteries; "
                                                    "none for community_centres. Empty: every kind.",
                                        json_schema_extra={"enum": ["", *FACILITY_KINDS]})]
MinutesQuery = Annotated[float, Query(description=f"Travel time limit in minutes, more than 0 and at most "
                                                  f"{MAX_MINUTES}.",
                                      json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_MINUTES})]
CountyQuery = Annotated[str | None, Query(
    description="A county's 6-digit code (e.g. 500241): that county's settlements and facilities only, in a database "
    "holding several counties. Empty: every county in the database.",
    json_schema_extra={"pattern": "^([0-9]{6}(000000)?)?$"})]
ModeQuery = Annotated[str, Query(description="walk (4.8 km/h by default: 15 min = 1,200 m), cycle (12 km/h) or "
                                             "drive (speed by road class). Speeds are settings (GIS_WALK_SPEED_KMH, "
                                             "GIS_CYCLE_SPEED_KMH, GIS_DRIVE_SPEEDS_KMH).",
                                 json_schema_extra={"enum": list(MODES)})]


@router.get("/service-areas", summary="Service area of each facility along the roads",
            description="One polygon per facility (GeoJSON, EPSG:4326): the roads reachable within the time limit, "
            "including the reached part of partially reached roads and the connector from the facility to the road, "
            "grown by buffer_m metres. Not a convex hull: a river without a bridge is not crossed.",
            response_class=Response,
            responses={200: {"description": "A GeoJSON FeatureCollection, one feature per facility.",
                             "content": {GEOJSON: {"schema": {"type": "object"}}}}, **NETWORK_ERRORS},
            dependencies=RUNS_ANALYSIS)
def get_service_areas(
    conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
    layer: LayerQuery = "elder_care", kind: KindQuery = None, minutes: MinutesQuery = 15, mode: ModeQuery = "walk",
    buffer_m: Annotated[float, Query(description=f"Metres the reached roads are grown by on each side "
                                                 f"({MIN_BUFFER_M:g} to {MAX_BUFFER_M:g}).",
                                     json_schema_extra={"minimum": MIN_BUFFER_M, "maximum": MAX_BUFFER_M})] = 50,
    county: CountyQuery = None,
) -> JSONResponse:
    with time_budget(settings.analysis_timeout_s, advice=f"{LESS_TRAVEL}; /analysis/coverage answers "
                     "county-wide questions without drawing"):
        body = service_areas(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, buffer_m=buffer_m,
                             county=county, measure_srid=settings.measure_srid, settings=analysis_settings)
    return JSONResponse(body, media_type="application/geo+json")


@router.get("/coverage", summary="Households and settlements served, per county, township or village",
            description="For each unit: households and settlements served and not served, and the coverage rate "
            "(served households ÷ households); then every unserved settlement with its distance to the nearest "
            "facility. Settlements and facilities join the roads at the nearest point on the nearest road; the "
            "connector counts. The answer states method, mode, speed_kmh, minutes and limit_m.",
            responses=NETWORK_ERRORS, dependencies=RUNS_ANALYSIS)
def get_coverage(
    conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
    layer: LayerQuery = "elder_care", kind: KindQuery = None, minutes: MinutesQuery = 15, mode: ModeQuery = "walk",
    group_by: Annotated[str, Query(description="county, township or village.",
                                   json_schema_extra={"enum": list(GROUP_BY)})] = "township",
    method: Annotated[str, Query(description="network (along the roads) or euclidean (straight line, "
                                             "for comparison).",
                                 json_schema_extra={"enum": list(METHODS)})] = "network",
    county: CountyQuery = None,
) -> dict:
    with time_budget(settings.analysis_timeout_s, advice=LESS_TRAVEL):
        return coverage(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, group_by=group_by, method=method,
                        county=county, measure_srid=settings.measure_srid, settings=analysis_settings)


@router.get("/facility-area", summary="Community service floor area per 100 households",
            description="Σ floor area of existing community service centres ÷ households × 100 per unit, against "
            "the plan's 30 m² target, with the shortfall in m² of each unit below it.", responses=ERRORS)
def get_facility_area(
    conn: ConnectionDep,
    level: Annotated[str, Query(description="village, township or county.",
                                json_schema_extra={"enum": list(LEVELS)})] = "village",
    county: CountyQuery = None,
) -> dict:
    return facility_area(conn, level=level, county=county)


@router.get("/indicators", summary="The plan's spatial indicators",
            description="Every spatial indicator of the civil-affairs plan (专栏1 and chapter 5): value, 2025 "
            "target, met or not, and the counts behind it, computed from the current data.",
            responses=NETWORK_ERRORS, dependencies=RUNS_ANALYSIS)
def get_indicators(conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
                   county: CountyQuery = None) -> dict:
    with time_budget(settings.analysis_timeout_s, advice="one county at a time (county=); try again when the "
                     "service is less busy"):
        return indicators(conn, county=county, measure_srid=settings.measure_srid, settings=analysis_settings)


@router.get("/site-suggestions", summary="Where k new facilities would serve the most unserved households",
            description="Maximal covering location, solved greedily (at least 1-(1-1/k)^k of the optimum; the answer "
            "also gives an upper bound for this instance). Candidate sites are the unserved settlements.",
            responses=NETWORK_ERRORS, dependencies=RUNS_ANALYSIS)
def get_site_suggestions(
    conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
    layer: LayerQuery = "elder_care", kind: KindQuery = None, minutes: MinutesQuery = 15, mode: ModeQuery = "walk",
    k: Annotated[int, Query(description=f"Number of new sites, 1 to {MAX_K}.",
                            json_schema_extra={"minimum": 1, "maximum": MAX_K})] = 3,
    max_candidates: Annotated[int, Query(description=f"Largest unserved settlements (by households) tried as "
                                                     f"sites, 1 to {MAX_CANDIDATES}.",
                                         json_schema_extra={"minimum": 1, "maximum": MAX_CANDIDATES})] = 3000,
    county: CountyQuery = None,
) -> dict:
    with time_budget(settings.analysis_timeout_s, advice=f"fewer max_candidates, {LESS_TRAVEL}"):
        return site_suggestions(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, k=k,
                                max_candidates=max_candidates, county=county, measure_srid=settings.measure_srid,
                                settings=analysis_settings)
