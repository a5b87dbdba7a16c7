"""``/pages``: the bureau's pages (地名查询, 界线界桩, 规划指标) and the portal ``/`` gives a browser.

Rendered from Jinja2 templates (:mod:`gis_service.pages`) with the same functions the API answers with; the
place-name page's type-ahead fetches /placenames/autocomplete and /placenames/search from the browser. Labels come
from the layer registry. Scripts are files under /pages/static (no inline script), Leaflet is the maps' copy.
"""

from __future__ import annotations

import datetime as dt
import functools
import mimetypes
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from gis_service.analysis.indicators import indicators
from gis_service.analysis.inspections import inspections_due, years_before
from gis_service.api.analysis import AnalysisSettingsDep
from gis_service.api.deps import ConnectionDep, SettingsDep
from gis_service.api.openapi import error_responses
from gis_service.api.placenames import PlaceNameId
from gis_service.errors import InvalidInputError, NotFoundError
from gis_service.io.boundary_export import FORMATS
from gis_service.layers import get_layer
from gis_service.layers.registry import DIVISIONS, GAZETTEER
from gis_service.pages import STATIC_DIR, render
from gis_service.search import queries
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
                labels={"category": category.title_zh, "status": status.title_zh})


@router.get("/placenames/{place_name_id}", response_class=HTMLResponse, summary="地名查询: one place name",
            responses=error_responses(400, 404, 503))
def placename_page(request: Request, conn: ConnectionDep, place_name_id: PlaceNameId) -> HTMLResponse:
    record = queries.place_name_detail(conn, place_name_id)
    props = record["properties"]
    field = GAZETTEER.field_named
    rows = [(field("name").title_zh, props["name"]), (field("pinyin").title_zh, props["pinyin"]),
            (field("category").title_zh, field("category").label_of(props["category"])),
            (field("division_code").title_zh, f'{props["division_name"] or ""}（{props["division_code"] or ""}）'),
            (field("status").title_zh, field("status").label_of(props["status"])),
            (field("heritage_listed").title_zh, "是" if props["heritage_listed"] else "否")]
    texts = [(field(name).title_zh, props[name]) for name in ("meaning", "origin", "history")]
    return page("placename.html", request, record=record, props=props, rows=rows, texts=texts,
                lon=record["geometry"]["coordinates"][0], lat=record["geometry"]["coordinates"][1],
                former_title="曾用名", successor_title=field("successor_id").title_zh)


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
    shown = [{"number": m["number"], "line_code": m["line_code"], "condition": m["condition_zh"],
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
                marker_field=markers_layer.field_named)


@router.get("/indicators", response_class=HTMLResponse, summary="规划指标: the plan's indicators",
            responses=error_responses(503))
def indicators_page(request: Request, conn: ConnectionDep, settings: SettingsDep,
                    analysis_settings: AnalysisSettingsDep) -> HTMLResponse:
    answer = indicators(conn, measure_srid=settings.measure_srid, settings=analysis_settings)
    return page("indicators.html", request, items=answer["indicators"])
