"""``/pages``: the bureau's browser pages (issue 13) and the portal ``/`` shows browsers.

The pages are Jinja2 templates (gis_service/pages/templates) with their own script files: they read the JSON API
of this service with ``fetch``, so a page holds no data of its own beyond what it renders, and every label comes
from the layer registry.
"""

from __future__ import annotations

import functools
import json
import mimetypes
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse

from gis_service import __version__
from gis_service.api.deps import ConnectionDep
from gis_service.api.openapi import error_responses
from gis_service.errors import NotFoundError
from gis_service.layers.registry import DIVISIONS, GAZETTEER
from gis_service.pages import STATIC_DIR, render
from gis_service.search import queries

router = APIRouter(prefix="/pages", tags=["pages"])

_HTML = {200: {"content": {"text/html": {"schema": {"type": "string"}}}}}
#: The pages' scripts come from this service only; they call its API (connect-src 'self').
PAGES_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
#: The cards of the portal: (path below the root, title, what it is for).
PORTAL_CARDS = (
    ("pages/placenames", "地名查询", "按名称、拼音首字母或曾用名查找地名，在地图上查看并导出结果。"),
    ("maps", "专题地图", "行政区划、养老服务覆盖等专题地图。"),
    ("collections?f=html", "图层浏览", "逐个图层浏览要素、字段与属性。"),
    ("docs", "接口文档", "程序接口（OpenAPI）说明与在线调试。"),
)
#: How the 地名查询 page names the search's status filter (the search API's STATUSES).
SEARCH_STATUS_LABELS = {"current": "现用地名（曾用名指向现名）", "historical": "仅历史地名", "all": "全部记录"}


def root_of(request: Request) -> str:
    """The relative path from this page to the service root, so links work behind any path prefix."""
    depth = request.url.path.count("/") - 1
    return "../" * depth if depth else "./"


def page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": PAGES_POLICY})


def prefers_html(request: Request) -> bool:
    """True when the Accept header puts text/html before JSON (a browser), false for API clients and no header."""
    accept = request.headers.get("accept", "")
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            return True
        if media in ("application/json", "application/geo+json", "*/*"):
            return False
    return False


def portal(request: Request) -> HTMLResponse:
    cards = [{"path": path, "title": title, "text": text} for path, title, text in PORTAL_CARDS]
    return page(render("portal.html", title="首页", root=root_of(request), cards=cards, version=__version__,
                       description="县民政局地理信息服务：行政区划、界线界桩、道路街巷、地名、居民点与服务设施。"))


@router.get("/placenames", summary="地名查询: the place-name search page", responses=_HTML,
            response_class=HTMLResponse)
def placenames_page(request: Request) -> HTMLResponse:
    category = GAZETTEER.field_named("category")
    return page(render("placenames.html", title="地名查询", root=root_of(request),
                       categories=[(code, category.label_of(code)) for code in queries.CATEGORIES],
                       labels=json.dumps({"category": {c: category.label_of(c) for c in queries.CATEGORIES},
                                          "status": {v.code: v.label_zh
                                                     for v in GAZETTEER.field_named("status").values},
                                          "columns": [GAZETTEER.field_named(n).title_zh
                                                      for n in ("name", "pinyin", "category", "status")]},
                                         ensure_ascii=False),
                       statuses=list(SEARCH_STATUS_LABELS.items())))


@router.get("/placenames/{place_name_id}", summary="One place name's page", response_class=HTMLResponse,
            responses={**_HTML, **error_responses(400, 404, 503)})
def placename_page(request: Request, conn: ConnectionDep,
                   place_name_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> HTMLResponse:
    detail = queries.place_name_detail(conn, place_name_id)
    props = detail["properties"]
    label = functools.partial(_label, props)
    rows = [label("name"), label("pinyin"), label("category", coded=True),
            (f"所属{DIVISIONS.title_zh}", props["division_name"] or ""),
            label("status", coded=True), label("meaning"), label("origin"), label("history"),
            label("heritage_listed")]
    if props["former_names"]:
        rows.append(("曾用名", "、".join(f["name"] for f in props["former_names"])))
    if props["successor"]:
        rows.append((GAZETTEER.field_named("successor_id").title_zh, props["successor"]["name"]))
    return page(render("placename.html", title=props["name"], root=root_of(request), id=place_name_id,
                       rows=[(k, v) for k, v in rows if v not in ("", None)],
                       geometry=json.dumps(detail["geometry"])))


def _label(props: dict, name: str, *, coded: bool = False) -> tuple[str, str]:
    field = GAZETTEER.field_named(name)
    value = props.get(name)
    if isinstance(value, bool):
        return field.title_zh, "是" if value else "否"
    return field.title_zh, field.label_of(value) if coded else (value or "")


@functools.cache
def _assets() -> dict[str, str]:
    return {p.name: mimetypes.guess_type(p.name)[0] or "application/octet-stream"
            for p in STATIC_DIR.iterdir() if p.is_file()}


@router.get("/static/{name}", summary="The pages' scripts and style sheet", responses=error_responses(404))
def pages_static(name: str) -> FileResponse:
    if name not in _assets():
        raise NotFoundError(f"no file {name!r} among the pages' files ({', '.join(sorted(_assets()))})")
    return FileResponse(STATIC_DIR / name, media_type=_assets()[name], headers={"Cache-Control": "max-age=3600"})
