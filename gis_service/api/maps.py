"""``/maps``: the web maps for planners (an index, one page per map) and the files they need (``/maps/static``).

Pages link Leaflet relative to themselves (``static/...``), so they work behind any path prefix, and nothing is
loaded from the internet. Building a page is :func:`gis_service.maps.builders.build_map`, the same call
``gis-service map build`` makes.
"""

from __future__ import annotations

import functools
import mimetypes
from html import escape
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, HTMLResponse

from gis_service.analysis.limits import time_budget
from gis_service.analysis.sites import MAX_K
from gis_service.analysis.travel import MAX_MINUTES, MODE_LABELS_ZH, MODES
from gis_service.api.analysis import FACILITY_KINDS, LESS_TRAVEL, AnalysisSettingsDep, CountyQuery
from gis_service.api.deps import RUNS_ANALYSIS, ConnectionDep, SettingsDep
from gis_service.api.openapi import error_responses
from gis_service.api.security import MAP_REFERRER_POLICY, map_policy
from gis_service.errors import NotFoundError
from gis_service.layers import FACILITY_LAYERS
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


_INDEX = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>专题地图</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif;
  margin: 2em auto; max-width: 760px; color: #222; padding: 0 1em; }}
li {{ margin: .8em 0; }} a {{ font-size: 1.1em; }} p.d {{ margin: .2em 0; color: #555; }}
form {{ margin-top: .4em; font-size: .9em; }} label {{ margin-right: .8em; }}
</style></head><body>
<h1>专题地图</h1>
<p>各图均由本服务提供，不访问互联网；也可用 <code>gis-service map build 名称 --out 文件.html</code> 导出为单个文件。</p>
<ul>{items}</ul>
</body></html>"""

_COVERAGE_FORM = """<form action="{href}" method="get">
<label>设施类型 <select name="kind"><option value="">全部{default_layer}</option>
{kinds}</select></label>
<label>分钟 <input name="minutes" type="number" min="1" max="120" value="15" style="width:4em"></label>
<label>方式 <select name="mode">{modes}</select></label><button type="submit">打开</button></form>"""


def _coverage_form(href: str) -> str:
    """The coverage map's form: every facility kind (by layer) and travel mode, with their Chinese names."""
    kinds = "".join(
        f'<optgroup label="{escape(layer.title_zh)}">' + "".join(
            f'<option value="{escape(code)}">{escape(layer.field_named(layer.network.kind).label_of(code))}</option>'
            for code in layer.kinds) + "</optgroup>"
        for layer in FACILITY_LAYERS.values() if layer.kinds)
    modes = "".join(f'<option value="{mode}">{escape(label)}</option>' for mode, label in MODE_LABELS_ZH.items())
    default_layer = FACILITY_LAYERS[load_recipe("coverage").parameters.get("layer", "elder_care")].title_zh
    return _COVERAGE_FORM.format(href=href, kinds=kinds, modes=modes, default_layer=escape(default_layer))


def map_page(html: str, *, basemap: str, tile_url: str | None = None) -> HTMLResponse:
    """A page of the maps, with the security policy its inline scripts and basemap tiles need."""
    return HTMLResponse(html, headers={"Content-Security-Policy": map_policy(basemap, tile_url),
                                       "Referrer-Policy": MAP_REFERRER_POLICY})


@router.get("", response_class=HTMLResponse, summary="Index of the web maps")
def maps_index(settings: SettingsDep) -> HTMLResponse:
    items = []
    for name in MAP_NAMES:
        recipe = load_recipe(name)
        href = f"maps/{name}"
        form = _coverage_form(href) if name == "coverage" else ""
        items.append(f'<li><a href="{href}">{escape(recipe.title_zh)}</a><p class="d">'
                     f"{escape(recipe.description_zh)}</p>{form}</li>")
    return map_page(_INDEX.format(items="".join(items)), basemap=settings.map_basemap)


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


@router.get("/{name}", response_class=HTMLResponse, summary="One web map",
            description="overview, coverage, facility_area, boundaries or site_suggestions. The coverage and "
            "site-suggestion maps take the analysis parameters; the others check and ignore them.",
            responses=error_responses(400, 404, 409, 503), dependencies=RUNS_ANALYSIS)
def get_map(
    name: Annotated[str, Path(description="The map.", json_schema_extra={"enum": list(MAP_NAMES)})],
    conn: ConnectionDep, settings: SettingsDep, analysis_settings: AnalysisSettingsDep,
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
    from gis_service.maps.builders import MapParameters, build_map

    params = MapParameters(layer=layer, kind=kind or None, minutes=minutes, mode=mode, k=k,
                           county=check_county(county, conn))
    params.resolved(load_recipe(name))  # 404 for a name that is not a map, 400 for a bad parameter, before any work
    with time_budget(settings.analysis_timeout_s, advice=LESS_TRAVEL):
        html = build_map(conn, name, params=params,
                         measure_srid=settings.measure_srid, analysis_settings=analysis_settings,
                         basemap=settings.map_basemap, tianditu_key=settings.tianditu_key, assets="served",
                         static_url="static", service_url="..", tile_url=settings.map_tile_url,
                         tile_attribution=settings.map_tile_attribution, organisation=settings.map_organisation,
                         search_url="../placenames/search")
    return map_page(html, basemap=settings.map_basemap, tile_url=settings.map_tile_url)
