"""``/analysis/...``: coverage along the road network, service areas, floor area per 100 households, the plan's
indicators and site suggestions. Thin: parameters are checked and answered by :mod:`gis_service.analysis`."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gis_service.analysis.coverage import GROUP_BY, coverage
from gis_service.analysis.facility_area import LEVELS, facility_area
from gis_service.analysis.indicators import indicators
from gis_service.analysis.inspections import csv_rows, inspections_due
from gis_service.analysis.limits import time_budget
from gis_service.analysis.optimise import DEFAULT_TIME_LIMIT_S, MAX_TIME_LIMIT_S
from gis_service.analysis.scenario import MAX_FACILITIES, scenario
from gis_service.analysis.service_areas import MAX_BUFFER_M, MIN_BUFFER_M, service_areas
from gis_service.analysis.sites import (
    CANDIDATE_SOURCES,
    DEFAULT_CANDIDATES,
    DEFAULT_MAX_CANDIDATES,
    MAX_CANDIDATES,
    MAX_K,
    site_suggestions,
)
from gis_service.analysis.sites import METHODS as SITE_METHODS
from gis_service.analysis.travel import MAX_MINUTES, METHODS, MODES, AnalysisSettings
from gis_service.api.deps import RUNS_ANALYSIS, ConnectionDep, SettingsDep
from gis_service.api.edits import BodyDep
from gis_service.api.openapi import GEOJSON, error_responses
from gis_service.errors import InvalidInputError
from gis_service.io.boundary_export import SELECTION_PATTERNS
from gis_service.io.csv_cells import csv_text
from gis_service.layers import FACILITY_LAYERS
from gis_service.layers.base import POPULATIONS
from gis_service.limits import BODY_LIMITS_DOC

router = APIRouter(prefix="/analysis", tags=["analysis"])
#: What an analysis answers besides its result: 400 for a bad parameter; 503 when the database gives up, the
#: analysis runs out of time (GIS_ANALYSIS_TIMEOUT_S) or too many analyses wait (see ``RUNS_ANALYSIS``).
ERRORS = error_responses(400, 503)
#: The analyses along the roads: also 409 while the roads layer is empty.
NETWORK_ERRORS = error_responses(400, 409, 503)

#: What to ask for instead when an analysis runs out of time (GIS_ANALYSIS_TIMEOUT_S).
LESS_TRAVEL = "fewer minutes, a slower mode, or one kind of facility"

#: A comma-separated list of candidate sources.
CANDIDATES_PATTERN = f"^(?:{'|'.join(CANDIDATE_SOURCES)})(?:,(?:{'|'.join(CANDIDATE_SOURCES)}))*$"

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
MinutesQuery = Annotated[float | None, Query(description=f"Travel time limit in minutes, more than 0 and at most "
                                                  f"{MAX_MINUTES}. Empty: the kind's default (community_station and "
                                                  "rural_happiness_home 15, township_home 30; travel_chosen says).",
                                      json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_MINUTES})]
PopulationQuery = Annotated[str | None, Query(
    description="Whose households count: everyone, urban_communities (settlements of urban 社区), rural_villages "
    "(of rural 村) or own_township (everyone, served only by a facility of their own township). Empty: those the "
    "kind is planned for (community_station: urban_communities; rural_happiness_home: rural_villages; "
    "township_home: own_township; other kinds, and every kind at once: everyone). The answer's "
    "served_population says which.", json_schema_extra={"enum": ["", *POPULATIONS]})]
CountyQuery = Annotated[str | None, Query(
    description="A county's 6-digit code (e.g. 500241): that county's settlements and facilities only, in a database "
    "holding several counties. Empty: every county in the database.",
    json_schema_extra={"pattern": "^([0-9]{6}(000000)?)?$"})]
ModeQuery = Annotated[str | None, Query(description="walk (4.8 km/h by default: 15 min = 1,200 m), cycle (12 km/h) or "
                                             "drive (speed by road class). Speeds are settings (GIS_WALK_SPEED_KMH, "
                                             "GIS_CYCLE_SPEED_KMH, GIS_DRIVE_SPEEDS_KMH). Empty: the kind's default "
                                             "(township_home drive, others walk; travel_chosen says).",
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
    layer: LayerQuery = "elder_care", kind: KindQuery = None, minutes: MinutesQuery = None, mode: ModeQuery = None,
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
            "connector counts. Only the households the kind is planned for count (`served_population`: community "
            "stations serve urban communities, rural happiness homes rural villages; `population` names others). "
            "The answer states method, mode, speed_kmh, minutes and limit_m.",
            responses=NETWORK_ERRORS, dependencies=RUNS_ANALYSIS)
def get_coverage(
    conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
    layer: LayerQuery = "elder_care", kind: KindQuery = None, minutes: MinutesQuery = None, mode: ModeQuery = None,
    group_by: Annotated[str, Query(description="county, township or village.",
                                   json_schema_extra={"enum": list(GROUP_BY)})] = "township",
    method: Annotated[str, Query(description="network (along the roads) or euclidean (straight line, "
                                             "for comparison).",
                                 json_schema_extra={"enum": list(METHODS)})] = "network",
    population: PopulationQuery = None,
    county: CountyQuery = None,
) -> dict:
    with time_budget(settings.analysis_timeout_s, advice=LESS_TRAVEL):
        return coverage(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, group_by=group_by, method=method,
                        county=county, measure_srid=settings.measure_srid, settings=analysis_settings,
                        population=population)


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


@router.get("/site-suggestions", summary="Where k new facilities would serve the most households, proven optimal",
            description="method=max_cover (default): the k candidate sites that bring the most households not "
            "served today within the time limit, as an integer programme solved by HiGHS after a Lagrangian bound; "
            "method=p_median: the k sites that lower the household-weighted travel time to the nearest facility "
            "most (each household's time counted up to the limit); method=greedy: each step the site adding most. "
            "The answer states `optimal` (proven) or the `optimality_gap` left at the time limit, the `objective`, "
            "and under `greedy` what greedy would have given on the same candidates. The households that count are "
            "those the kind is planned for (`served_population`; `population` names others). Candidate sites: those "
            "households' settlements, the sites of existing facilities of every layer in their villages, road "
            "junctions, or only the unserved settlements (`candidates`).",
            responses=NETWORK_ERRORS, dependencies=RUNS_ANALYSIS)
def get_site_suggestions(
    conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
    layer: LayerQuery = "elder_care", kind: KindQuery = None, minutes: MinutesQuery = None, mode: ModeQuery = None,
    k: Annotated[int, Query(description=f"Number of new sites, 1 to {MAX_K}.",
                            json_schema_extra={"minimum": 1, "maximum": MAX_K})] = 3,
    method: Annotated[str, Query(description="max_cover (most households newly served), p_median (least "
                                             "household-weighted travel time) or greedy.",
                                 json_schema_extra={"enum": list(SITE_METHODS)})] = "max_cover",
    candidates: Annotated[str, Query(description="Where a new facility may stand, comma-separated: settlements, "
                                                 "facility_sites (existing facilities of every layer), road_nodes "
                                                 "(road junctions; slower), unserved_settlements.",
                                     json_schema_extra={"pattern": CANDIDATES_PATTERN})] = ",".join(
        DEFAULT_CANDIDATES),
    time_limit_s: Annotated[float, Query(description=f"Seconds the solver may take, more than 0 and at most "
                                                     f"{MAX_TIME_LIMIT_S:g} (GIS_ANALYSIS_TIMEOUT_S also bounds it); "
                                                     "past it the answer states the gap left.",
                                         json_schema_extra={"exclusiveMinimum": 0,
                                                            "maximum": MAX_TIME_LIMIT_S})] = DEFAULT_TIME_LIMIT_S,
    max_candidates: Annotated[int, Query(description=f"Most candidate sites tried (facility sites first, then "
                                                     f"settlements by households, then road junctions), 1 to "
                                                     f"{MAX_CANDIDATES}.",
                                         json_schema_extra={"minimum": 1, "maximum": MAX_CANDIDATES})] = (
        DEFAULT_MAX_CANDIDATES),
    population: PopulationQuery = None,
    county: CountyQuery = None,
) -> dict:
    with time_budget(settings.analysis_timeout_s, advice=f"fewer candidates, {LESS_TRAVEL}"):
        return site_suggestions(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, k=k, method=method,
                                candidates=candidates, time_limit_s=time_limit_s, max_candidates=max_candidates,
                                county=county, measure_srid=settings.measure_srid, settings=analysis_settings,
                                population=population)


SCENARIO_BODY = {"requestBody": {"required": True, "description": "Hypothetical facilities and what to measure. "
                                 + BODY_LIMITS_DOC, "content": {"application/json": {"schema": {
    "type": "object", "required": ["facilities"], "additionalProperties": False,
    "properties": {
        "layer": {"type": "string", "enum": list(FACILITY_LAYERS), "default": "elder_care"},
        "kind": {"type": "string", "enum": FACILITY_KINDS,
                 "description": "The kind measured; every facility must be of it. Absent: every kind of the layer."},
        "minutes": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_MINUTES,
                    "description": "Empty: the kind's default (township_home 30, others 15)."},
        "mode": {"type": "string", "enum": list(MODES),
                 "description": "Empty: the kind's default (township_home drive, others walk)."},
        "group_by": {"type": "string", "enum": list(GROUP_BY), "default": "township"},
        "facilities": {"type": "array", "minItems": 1, "maxItems": MAX_FACILITIES, "items": {
            "type": "object", "required": ["lon", "lat"], "additionalProperties": False,
            "properties": {"lon": {"type": "number", "description": "Longitude, EPSG:4326; inside the county."},
                           "lat": {"type": "number", "description": "Latitude, EPSG:4326."},
                           "kind": {"type": "string", "enum": FACILITY_KINDS,
                                    "description": "Default: the body's kind."},
                           "name": {"type": "string", "minLength": 1, "maxLength": 100}}}},
    }}}}}}


@router.post("/scenario", summary="Coverage before and after hypothetical facilities (writes nothing)",
             description="Post points where facilities might be built, with their kinds: the answer gives coverage "
             "with the existing facilities and with these added (totals and per unit of group_by), the settlements "
             "they newly serve, and what each would newly serve alone. Points join the roads as existing "
             "facilities do. Nothing is stored: `written` is false. Points outside the county, kinds not of the "
             "layer, more than " f"{MAX_FACILITIES} facilities or an unknown field are refused with 400.",
             responses=error_responses(400, 409, 413, 415, 503), dependencies=RUNS_ANALYSIS,
             openapi_extra=SCENARIO_BODY)
def post_scenario(conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
                  body: BodyDep) -> dict:
    with time_budget(settings.analysis_timeout_s, advice=f"fewer facilities, {LESS_TRAVEL}"):
        return scenario(conn, body, county_code=settings.county_code, measure_srid=settings.measure_srid,
                        settings=analysis_settings)


def _day(text: str | None) -> dt.date | None:
    """A YYYY-MM-DD date (a plain 400 otherwise; pydantic would take a number as seconds since 1970)."""
    if not text:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidInputError(f"as_of must be a date written YYYY-MM-DD, e.g. 2026-10-21; got {text[:20]!r}")


@router.get("/inspections-due", summary="Boundary markers due for inspection, per line and township",
            description="Every boundary marker with the years since its last inspection and its condition, most "
            "overdue first, then worst condition (缺失, 移位, 损坏, 完好); counts per line and per township (a marker "
            "on a township line counts for both townships, one on a county line for the township whose part of the "
            "line it stands on, as in the township's field package). A marker is overdue when its last inspection "
            "(or, never inspected, its setting) is more than GIS_INSPECTION_INTERVAL_YEARS (default 5) before "
            "`as_of`. `format=csv` gives the markers as a CSV file.",
            response_class=Response,
            responses={200: {"description": "JSON, or CSV with format=csv.",
                             "content": {"application/json": {"schema": {"type": "object"}},
                                         "text/csv": {"schema": {"type": "string"}}}},
                       **error_responses(400, 404, 503)})
def get_inspections_due(
    conn: ConnectionDep, settings: SettingsDep,
    township: Annotated[str | None, Query(description="Only the markers patrolled from this township (9- or "
                                                      "12-digit code).",
                                          json_schema_extra={"pattern": SELECTION_PATTERNS["township"]})] = None,
    line: Annotated[str | None, Query(description="Only the markers of this boundary line (its code).",
                                      json_schema_extra={"pattern": SELECTION_PATTERNS["line"]})] = None,
    overdue_only: Annotated[bool, Query(description="List only overdue markers (the counts stay whole).")] = False,
    as_of: Annotated[str | None, Query(description="The day to count from (YYYY-MM-DD), default today; a later "
                                                   "day shows what will be due by then.",
                                       json_schema_extra={"pattern": r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2})?$"})
                     ] = None,
    format: Annotated[str, Query(description="json or csv.", json_schema_extra={"enum": ["json", "csv"]})] = "json",
) -> Response:
    if format not in ("json", "csv"):
        raise InvalidInputError(f"format must be json or csv; got {format[:20]!r}")
    answer = inspections_due(conn, interval_years=settings.inspection_interval_years, as_of=_day(as_of),
                             township=township or None, line=line or None, overdue_only=overdue_only,
                             measure_srid=settings.measure_srid)
    if format == "json":
        return JSONResponse(answer)
    header, rows = csv_rows(answer)
    return Response(csv_text(header, rows).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="inspections_due_{answer["as_of"]}.csv"'})
