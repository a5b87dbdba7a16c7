"""``/pages``: the bureau's pages (地名查询, 命名核查, 界线界桩, 规划指标) and the portal ``/`` gives a browser.

Rendered from Jinja2 templates (:mod:`gis_service.pages`) with the same functions the API answers with; the
place-name page's type-ahead fetches /placenames/autocomplete and /placenames/search from the browser. Labels come
from the layer registry. Scripts are files under /pages/static (no inline script), Leaflet is the maps' copy.
The result list's download and a place name's page use the gazetteer export (io/placenames_export.py: the national
database's fields and order); 命名核查 calls the check API's function (queries.check_name).
"""

from __future__ import annotations

import datetime as dt
import functools
import mimetypes
from typing import Annotated, Literal
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from gis_service import edits
from gis_service.analysis import columns
from gis_service.analysis.indicators import indicators
from gis_service.analysis.inspections import inspections_due, years_before
from gis_service.api import session
from gis_service.api.analysis import AnalysisSettingsDep
from gis_service.api.deps import ConnectionDep, SettingsDep
from gis_service.api.edits import FeatureId
from gis_service.api.openapi import error_responses
from gis_service.api.placenames import PlaceNameId, QueryText, SearchMode
from gis_service.edits import FINDING, INSPECTED
from gis_service.errors import InvalidInputError, NotFoundError
from gis_service.io import placenames_export as national
from gis_service.io.boundary_export import FORMATS
from gis_service.layers import get_layer
from gis_service.layers.registry import DIVISIONS, GAZETTEER
from gis_service.pages import STATIC_DIR, render
from gis_service.search import naming, queries
from gis_service.search.normalize import MAX_QUERY_LENGTH
from gis_service.store import exports, features

router = APIRouter(prefix="/pages", tags=["pages"])

#: Scripts only from this service (Leaflet from /maps/static), fetches only to it, no inline script.
PAGES_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def page(template: str, request: Request, *, headers: dict | None = None, **context) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(render(template, root=root, **context),
                        headers={**(headers or {}), "Content-Security-Policy": PAGES_POLICY})


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above JSON (a browser's does; a client's default does not)."""
    ranks: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranks[media.lower()] = max(q, ranks.get(media.lower(), 0.0))
    html = ranks.get("text/html", 0.0)
    json_rank = max(ranks.get("application/json", 0.0), ranks.get("application/*", 0.0), ranks.get("*/*", 0.0))
    return html > 0 and html > json_rank


def portal(request: Request) -> HTMLResponse:
    return page("portal.html", request)


@functools.cache
def static_assets() -> dict[str, str]:
    return {p.relative_to(STATIC_DIR).as_posix(): mimetypes.guess_type(p.name)[0] or "application/octet-stream"
            for p in sorted(STATIC_DIR.rglob("*")) if p.is_file()}


@router.get("/static/{asset_path:path}", summary="Style sheet and scripts of the pages", response_class=FileResponse,
            responses=error_responses(404))
def pages_static(asset_path: str) -> FileResponse:
    if asset_path not in static_assets():  # only the listed files: no request path reaches the file system
        raise NotFoundError(f"no page asset {asset_path[:100]!r}")
    return FileResponse(STATIC_DIR / asset_path, media_type=static_assets()[asset_path],
                        headers={"Cache-Control": "public, max-age=3600"})


def _townships(conn: sa.Connection) -> list[dict]:
    return features.read_records(conn, DIVISIONS, ("code", "name"), equals={"level": "township"}, order_by=("code",))


@router.get("/placenames", response_class=HTMLResponse, summary="地名查询: search page")
def placenames_page(request: Request, conn: ConnectionDep) -> HTMLResponse:
    category = GAZETTEER.field_named("category")
    status = GAZETTEER.field_named("status")
    statuses = [(code, status.label_of(code)) for code in queries.STATUSES if code in status.codes]
    return page("placenames.html", request, townships=_townships(conn),
                categories=[(v.code, v.label_zh) for v in category.values], statuses=statuses,
                labels={"category": category.title_zh, "status": status.title_zh},
                max_limit=queries.MAX_LIMIT, formats=national.TABLE_FORMATS)


#: The type of each table download of the 地名查询 page.
TABLE_MEDIA = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


#: The most rows a download of 地名查询 holds (a "contains" search can match most of the gazetteer).
MAX_EXPORT_ROWS = 10_000


@router.get("/placenames/export", summary="地名查询: the result list as a file", response_class=Response,
            description="Every place name the search answers for q and the filters, in its order: the ranked "
            f"search's best {queries.MAX_LIMIT} (its largest limit), or with mode=contains every name holding q "
            f"(at most {MAX_EXPORT_ROWS:,}: more is a 400 asking to narrow the search). The page shows the same "
            "number. Written with the national database's Chinese headers and values (标准名称, 罗马字母拼写, 类别 …), "
            "as CSV (UTF-8 with a byte-order mark, no cell a spreadsheet would run) or XLSX.",
            responses={200: {"content": {media: {"schema": {"type": "string", "format": "binary"}}
                                         for media in TABLE_MEDIA.values()}, "description": "the file"},
                       **error_responses(400, 404, 503)})
def placenames_export(
    conn: ConnectionDep, settings: SettingsDep, q: QueryText,
    category: Annotated[str | None, Query(description="Only this category (as /placenames/search).",
                                          json_schema_extra={"enum": ["", *queries.CATEGORIES]})] = None,
    division: Annotated[str | None, Query(description="Only inside this division (6-, 9- or 12-digit code).",
                                          json_schema_extra={"pattern": queries.DIVISION_CODE_PATTERN})] = None,
    status: Annotated[str | None, Query(description="current, historical or all (as /placenames/search).",
                                        json_schema_extra={"enum": list(queries.STATUSES)})] = "current",
    mode: Annotated[SearchMode, Query(description="ranked or contains (as /placenames/search).")] = "ranked",
    format: Annotated[Literal["csv", "xlsx"], Query(description="File format.")] = "csv",
) -> Response:
    filters = queries.check_filters(conn, category=category, division=division, near=None, radius_m=None,
                                    status=status, measure_srid=settings.measure_srid)
    if mode == "contains":
        ids = queries.contains_ids(conn, q, filters, measure_srid=settings.measure_srid, maximum=MAX_EXPORT_ROWS)
    else:
        found = queries.search(conn, q, filters, measure_srid=settings.measure_srid, limit=queries.MAX_LIMIT)
        ids = [f["id"] for f in found["features"]]
    records = national.place_name_records(conn, ids)
    filename = f"地名查询_{q.strip()[:30]}.{format}"
    return Response(national.place_names_file(records, fmt=format), media_type=TABLE_MEDIA[format], headers={
        "Content-Disposition": f"attachment; filename=\"placenames.{format}\"; filename*=UTF-8''{quote(filename)}",
        "X-Total-Count": str(len(records))})


@router.get("/placenames/{place_name_id}", response_class=HTMLResponse, summary="地名查询: one place name",
            responses=error_responses(400, 404, 503))
def placename_page(request: Request, conn: ConnectionDep, place_name_id: PlaceNameId) -> HTMLResponse:
    record = queries.place_name_detail(conn, place_name_id)
    props = record["properties"]
    record_zh = national.place_name_records(conn, [place_name_id])[0]
    rows = [(header, record_zh[name]) for name, header in NATIONAL_ROWS]
    return page("placename.html", request, record=record, props=props, rows=rows, texts=[
                    (header, record_zh[name]) for name, header in NATIONAL_TEXTS],
                lon=record["geometry"]["coordinates"][0], lat=record["geometry"]["coordinates"][1],
                former_title="曾用名", successor_title=GAZETTEER.field_named("successor_id").title_zh)


#: A place name's page: the national database's fields (io/placenames_export.py), short ones in the table ...
NATIONAL_ROWS = tuple((n, h) for n, h in national.NATIONAL_FIELDS + national.EXTRA_FIELDS
                      if n not in ("meaning", "origin", "history", "former_names", "lon", "lat"))
#: ... and the texts below it.
NATIONAL_TEXTS = tuple((n, h) for n, h in national.NATIONAL_FIELDS if n in ("meaning", "origin", "history"))


@router.get("/naming-check", response_class=HTMLResponse, summary="命名核查: would a proposed name be refused",
            description="The form, and with `name` the answer of /placenames/check in Chinese; a name the check "
            "cannot take (no Chinese character) is shown beside the form with the reason. A kind or division the form "
            "does not offer is 400 or 404.", responses=error_responses(400, 404, 503))
def naming_check_page(
    request: Request, conn: ConnectionDep,
    name: Annotated[str | None, Query(description="The proposed standard name (as /placenames/check).",
                                      max_length=MAX_QUERY_LENGTH)] = None,
    kind: Annotated[str | None, Query(description="township, village, road, residential or other; empty: read "
                                      "from the name.", json_schema_extra={"enum": ["", *naming.KINDS]})] = None,
    division: Annotated[str | None, Query(description="Code of the division the name is for.",
                                          json_schema_extra={"pattern": queries.DIVISION_CODE_PATTERN})] = None,
) -> HTMLResponse:
    if kind and kind not in naming.KINDS:  # the form offers only these, and only divisions that exist
        raise InvalidInputError(f"kind must be one of {', '.join(naming.KINDS)}; got {kind[:20]!r}")
    queries.division_prefix(conn, division or None)
    answer, error = None, None
    if name:
        try:
            answer = queries.check_name(conn, name, division=division or None, kind=kind or None)
        except InvalidInputError as exc:  # what was typed: said beside the form, which keeps it
            error = str(exc)
    field = GAZETTEER.field_named
    clashes = [] if answer is None else [{
        "id": f["id"], "name": f["properties"]["name"], "pinyin": f["properties"]["pinyin"],
        "category": field("category").label_of(f["properties"]["category"]),
        "status": field("status").label_of(f["properties"]["status"]),
        "division": f["properties"]["division_name"] or "", "grade": naming.GRADES_ZH[f["properties"]["grade"]],
        "scope": naming.SCOPES_ZH[f["properties"]["scope"]], "refused": f["properties"]["refused"],
        "rule": f["properties"]["rule"]} for f in answer["clashes"]["features"]]
    return page("naming_check.html", request, answer=answer, error=error, clashes=clashes,
                asked={"name": name or "", "kind": kind or "", "division": division or ""},
                kinds=list(naming.KINDS_ZH.items()), townships=_townships(conn), kind_zh=naming.KINDS_ZH)


@router.get("/boundaries", response_class=HTMLResponse, summary="界线界桩: packages and markers",
            responses=error_responses(400, 503))
def boundaries_page(
    request: Request, conn: ConnectionDep, settings: SettingsDep,
    condition: Annotated[str | None, Query(description="Only markers in this condition.")] = None,
    years: Annotated[int | None, Query(description="Only markers last inspected at least this many years ago.",
                                       ge=0, le=100)] = None,
) -> HTMLResponse:
    lines_layer, markers_layer = get_layer("boundary_lines"), get_layer("boundary_markers")
    conditions = markers_layer.field_named("condition")
    if condition and condition not in conditions.codes:
        raise InvalidInputError(f"unknown condition {condition!r}; use one of {', '.join(conditions.codes)}")
    lines = features.read_records(conn, lines_layer, ("code", "name", "level"), order_by=("level", "code"))
    neighbours = [dict(zip(("code", "name"), text.split(" ", 1))) for text in exports.county_neighbours(conn)]
    interval = settings.inspection_interval_years
    due = inspections_due(conn, interval_years=interval, measure_srid=settings.measure_srid)
    cutoff = years_before(dt.date.today(), years) if years is not None else None
    marker_ids = {r["number"]: r["id"] for r in features.read_records(conn, markers_layer, ("id", "number"))}
    shown = [{"id": marker_ids[m["number"]], "number": m["number"], "line_code": m["line_code"],
              "condition_code": m["condition"], "condition": m["condition_zh"], "lon": m["lon"], "lat": m["lat"],
              "inspected": m["last_inspected"], "years": m["years_since_inspection"], "overdue": m["overdue"]}
             for m in sorted(due["markers"], key=lambda m: m["number"])
             if (not condition or m["condition"] == condition)
             and (cutoff is None or m["last_inspected"] is None
                  or dt.date.fromisoformat(m["last_inspected"]) <= cutoff)]
    return page("boundaries.html", request, lines=lines, townships=_townships(conn), neighbours=neighbours,
                formats=list(FORMATS), markers=shown, conditions=[(v.code, v.label_zh) for v in conditions.values],
                condition=condition or "", years=years, interval=interval,
                line_title=lines_layer.title_zh, marker_title=markers_layer.title_zh,
                level_label=lines_layer.field_named("level").label_of,
                marker_field=markers_layer.field_named,
                colours={v.code: v.color for v in conditions.values},
                inspector=session.signed_in(request, conn), today=dt.date.today().isoformat(),
                all_markers=sorted(marker_ids.items()))


@router.get("/boundaries/markers/{featureId}", response_class=HTMLResponse, summary="界线界桩: a marker's inspections",
            responses=error_responses(400, 404, 503))
def marker_history_page(request: Request, conn: ConnectionDep, featureId: FeatureId) -> HTMLResponse:  # noqa: N803
    """The marker and its inspections, newest first: for a signed-in browser (the inspectors' names are the staff
    records the API gives only to a token's holder); others are sent to sign in."""
    if session.signed_in(request, conn) is None:
        raise session.sign_in_needed(request)
    layer = get_layer(INSPECTED)
    records = edits.list_inspections(conn, featureId)  # 404 for a marker that does not exist
    marker = features.read_records(conn, layer, ("number", "line_code", FINDING, "last_inspected"),
                                   equals={"id": featureId})[0]
    finding = layer.field_named(FINDING)
    return page("marker.html", request, marker=marker, records=records, condition_label=finding.label_of,
                field=layer.field_named)


@router.get("/indicators", response_class=HTMLResponse, summary="规划指标: the plan's indicators",
            responses=error_responses(503))
def indicators_page(request: Request, conn: ConnectionDep, settings: SettingsDep,
                    analysis_settings: AnalysisSettingsDep) -> HTMLResponse:
    answer = indicators(conn, measure_srid=settings.measure_srid, settings=analysis_settings)
    rows = [{**item, "basis": _basis(item["counts"]), "map": INDICATOR_MAPS.get(item["id"])}
            for item in answer["indicators"]]
    return page("indicators.html", request, items=rows)


#: The map that explains each indicator (a path under /maps with its query string).
INDICATOR_MAPS = {
    "community_floor_area_per_100_households": "facility_area",
    "fifteen_minute_elder_care_circle": "coverage?kind=community_station",
    "rural_villages_with_happiness_home": "coverage?kind=rural_happiness_home",
    "township_homes_per_township": "coverage?kind=township_home",
    "burial_facility_coverage": "coverage?layer=cemeteries&mode=drive&minutes=30",
    "townships_with_comprehensive_elder_care": "overview",
    "volunteer_points_in_centres": "facility_area",
    "townships_with_minor_protection_station": "facility_area",
    "nursing_beds_share": "overview",
    "government_operated_beds_share": "overview",
}

def _basis(counts: dict) -> list[tuple[str, str]]:
    """The counts behind an indicator as (Chinese title, value) pairs, the titles the analyses' tables use (counts
    with none are not shown), whole numbers with thousands separators."""
    shown = []
    for key, value in counts.items():
        title = columns.title_zh(key)
        if title != key and isinstance(value, int | float) and not isinstance(value, bool):
            shown.append((title, f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"))
    lacking = counts.get("townships_without_home") or []
    if lacking:
        shown.append(("无敬老院的", "、".join(t["name"] for t in lacking)))
    return shown
