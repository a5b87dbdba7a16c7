"""The five maps: each builder reads the data and analyses its recipe names and hands them to the renderer.

``build_map(conn, name, ...)`` is what ``/maps/{name}`` and ``gis-service map build`` both call, so the served page
and the built file show the same thing; only where Leaflet comes from differs (served or inlined). The analyses
are the ones of :mod:`gis_service.analysis` (same parameters, same answers as ``/analysis/...``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa

from gis_service.analysis import network as net
from gis_service.analysis.network import LRU
from gis_service.analysis.sites import check_k
from gis_service.analysis.travel import MODE_LABELS_ZH, AnalysisSettings, check_facilities, check_minutes, check_mode
from gis_service.errors import InvalidInputError
from gis_service.layers import FACILITY_LAYERS
from gis_service.layers.base import POPULATIONS
from gis_service.maps import data, markup
from gis_service.maps.basemap import basemap_sources
from gis_service.maps.jobs import DRAWING_ZH, step
from gis_service.maps.recipes import MapRecipe, load_recipe, recipes_dir
from gis_service.maps.render import MapContent, fmt, render
from gis_service.store import inspections

#: Service areas are drawn simplified by this many metres (they are roads grown by 50 m: 20 m hardly shows).
SERVICE_AREA_TOLERANCE_M = 20.0


@dataclass(frozen=True)
class MapParameters:
    """The analysis parameters of the coverage and site-suggestion maps (ignored by the others)."""

    layer: str | None = None
    kind: str | None = None
    minutes: float | None = None
    mode: str | None = None
    k: int | None = None
    #: A county's 6-digit code: that county only, in a database holding several (every map takes it).
    county: str | None = None

    def resolved(self, recipe: MapRecipe) -> MapParameters:
        """Missing values from the recipe's defaults, every value checked (InvalidInputError naming it); the layer
        follows from the kind when only a kind is given (rural_happiness_home → elder_care)."""
        defaults = recipe.parameters
        kind = self.kind or None
        layer = self.layer
        if layer is None and kind:
            layer = next((lid for lid, facilities in FACILITY_LAYERS.items() if kind in facilities.kinds), None)
            if layer is None:
                known = sorted(k for facilities in FACILITY_LAYERS.values() for k in facilities.kinds)
                raise InvalidInputError(f"kind must be one of {', '.join(known)}; got {kind!r}")
        if layer is None:
            layer = defaults.get("layer", "elder_care")
            kind = kind or defaults.get("kind") or None
        spec, _ = check_facilities(layer, kind)
        # a kind's own default travel (the registry's: township homes drive 30 min), else the recipe's
        reach = {"minutes": spec.network.reach(kind).minutes, "mode": spec.network.reach(kind).mode} if kind else {}
        defaults = {**defaults, **reach}
        minutes = check_minutes(float(defaults.get("minutes", 15) if self.minutes is None else self.minutes))
        mode = check_mode(defaults.get("mode", "walk") if self.mode is None else self.mode)
        k = check_k(int(defaults.get("k", 5) if self.k is None else self.k))
        return MapParameters(layer=layer, kind=kind, minutes=minutes, mode=mode, k=k, county=self.county)


def _common(conn: sa.Connection, measure_srid: int, county: str | None) -> dict[str, list[dict]]:
    return {"county": data.divisions(conn, level="county", measure_srid=measure_srid, county=county),
            "townships": data.divisions(conn, level="township", measure_srid=measure_srid, county=county)}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _kind_zh(layer_id: str, kind: str | None) -> str:
    """The Chinese name of a facility kind, or of the layer when it has one kind (or none is asked for)."""
    layer = FACILITY_LAYERS[layer_id]
    return layer.field_named(layer.network.kind).label_of(kind) if kind and layer.network.kind else layer.title_zh


#: The maps that take the analysis parameters, and the end of their titles (which start with the mode and minutes).
PARAMETRISED = {"coverage": "生活圈覆盖", "site_suggestions": "生活圈新建设施选址建议"}


def _title_zh(params: MapParameters, title: str) -> str:
    """A parametrised map's title with the minutes, mode and kind asked for, e.g. 骑行24分钟生活圈覆盖（农村幸福院）."""
    what = _kind_zh(params.layer, params.kind) if params.kind else FACILITY_LAYERS[params.layer].title_zh
    return f"{MODE_LABELS_ZH[params.mode]}{fmt(params.minutes)}分钟{title}（{what}）"


def asked(name: str, params: MapParameters) -> tuple:
    """What identifies the page of map ``name`` asked with ``params`` (checked: InvalidInputError, UnknownMapError):
    the resolved parameters for the maps that take them, the county for the others."""
    recipe = load_recipe(name)
    resolved = params.resolved(recipe)  # checked for every map: a wrong value is a 400 even where it is not used
    return (name, resolved if name in PARAMETRISED else params.county)


def describe_zh(name: str, params: MapParameters) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The title of map ``name`` asked with ``params`` and what was asked, in words: (label, value) pairs."""
    recipe = load_recipe(name)
    if name not in PARAMETRISED:
        return recipe.title_zh, ()
    p = params.resolved(recipe)
    facilities = _kind_zh(p.layer, p.kind) if p.kind else FACILITY_LAYERS[p.layer].title_zh
    pairs = [("方式", MODE_LABELS_ZH[p.mode]), ("时间", f"{fmt(p.minutes)} 分钟"), ("设施", facilities)]
    if name == "site_suggestions":
        pairs.append(("新址", f"{p.k} 处"))
    return _title_zh(p, PARAMETRISED[name]), tuple(pairs)


def _existing_facilities(conn: sa.Connection, p: MapParameters) -> list[dict]:
    """The existing facilities of the asked layer and kind, with their kind's Chinese name."""
    found = [f for f in data.facilities(conn, p.layer, p.county) if f["properties"].get("status") == "existing"
             and (p.kind is None or f["properties"].get("kind") == p.kind)]
    for feature in found:
        feature["properties"]["kind_zh"] = _kind_zh(p.layer, feature["properties"].get("kind"))
    return found


def _travel_zh(params: MapParameters, answer: dict) -> str:
    what = FACILITY_LAYERS[params.layer].title_zh
    if params.kind:
        what += "·" + _kind_zh(params.layer, params.kind)
    return (f"{what}；{MODE_LABELS_ZH[answer['mode']]} {fmt(answer['minutes'])} 分钟"
            f"（{fmt(answer['speed_kmh'])} 千米/时，约 {fmt(round(answer['limit_m']))} 米，沿道路计）")


# -- the builders ---------------------------------------------------------------------------------------------

def overview(conn: sa.Connection, recipe: MapRecipe, params: MapParameters, *, measure_srid: int,
             analysis_settings: AnalysisSettings) -> MapContent:
    county = params.county
    sources = _common(conn, measure_srid, county)
    sources.update(villages=data.divisions(conn, level="village", measure_srid=measure_srid, county=county),
                   roads=data.roads(conn, measure_srid=measure_srid, county=county),
                   **{layer_id: data.facilities(conn, layer_id, county) for layer_id in FACILITY_LAYERS})
    county = sources["county"][0]["properties"] if sources["county"] else {}
    notes = {"townships": [f"{len(sources['townships'])} 个乡镇（街道），{len(sources['villages'])} 个村（社区）；"
                           f"全县 {fmt(county.get('households'))} 户，{fmt(county.get('population'))} 人"]}
    return MapContent(sources=sources, legend_notes=notes)


def coverage_map(conn: sa.Connection, recipe: MapRecipe, params: MapParameters, *, measure_srid: int,
                 analysis_settings: AnalysisSettings) -> MapContent:
    from gis_service.analysis.coverage import coverage
    from gis_service.analysis.service_areas import served_area

    p = params.resolved(recipe)
    common = dict(layer=p.layer, kind=p.kind, minutes=p.minutes, mode=p.mode, county=p.county,
                  measure_srid=measure_srid, settings=analysis_settings)
    step("计算生活圈覆盖（各乡镇户数覆盖率）")
    by_township = coverage(conn, group_by="township", **common)
    unserved = {row["id"]: row for row in by_township["unserved"]}
    sources = _common(conn, measure_srid, p.county)
    rates = {row["code"]: row for row in by_township["units"]}
    for feature in sources["townships"]:
        row = rates.get(feature["properties"]["code"], {})
        feature["properties"].update(
            coverage_percent=row.get("coverage_percent"), served_households=row.get("served_households"),
            unserved_households=row.get("unserved_households"), settlement_households=row.get("households"))
    population = by_township["served_population"]
    counted = POPULATIONS[population["code"]].urban_rural
    settlements = [f for f in data.settlements(conn, p.county)
                   if counted is None or f["properties"]["urban_rural"] == counted]
    for feature in settlements:
        props = feature["properties"]
        miss = unserved.get(props["id"])
        props["served"] = "unserved" if miss else "served"
        if miss:
            props["distance_m"] = miss["distance_m"]
            props["travel_minutes"] = miss["travel_minutes"]
    sources["settlements"] = settlements
    step("计算服务范围（沿道路可达的道路）")
    # one area, the union of every facility's: drawn per facility, 24 minutes by bicycle was 10 MB and 19 s
    area = served_area(conn, **common)
    reached = area["properties"]
    sources["service_areas"] = data.simplify_lonlat(
        [{"type": "Feature", "id": 1, "geometry": area["geometry"],
          "properties": {"facilities": reached["facilities"], "reached_road_km": reached["reached_road_m"] / 1000,
                         "area_km2": reached["area_m2"] / 1e6}}] if area["geometry"] else [],
        tolerance_m=SERVICE_AREA_TOLERANCE_M, measure_srid=measure_srid, preserve_topology=False)
    sources["facilities"] = _existing_facilities(conn, p)
    totals = by_township["totals"]
    notes = {
        "settlements": [f"已覆盖 {fmt(totals['served_households'])} 户，"
                        f"未覆盖 {fmt(totals['unserved_households'])} 户；"
                        f"户数覆盖率 {_pct(totals['coverage_percent'])}",
                        f"计入：{population['label_zh']}（该类设施的服务对象）",
                        "圆点大小表示户数；未覆盖的为橙色黑边圆点；放大到第 12 级起显示居民点",
                        "距离沿道路计算（含接入道路的连接段），不是直线距离"],
        "service_areas": [f"{fmt(reached['facilities'])} 处设施沿道路{MODE_LABELS_ZH[p.mode]} {fmt(p.minutes)} "
                          f"分钟可达的道路（共 {fmt(reached['reached_road_m'] / 1000)} 千米），"
                          f"两侧各 {fmt(area['parameters']['buffer_m'])} 米；河流无桥处不跨越"],
    }
    rows = [["乡镇（街道）", "户数", "已覆盖户", "覆盖率"]]
    for row in sorted(by_township["units"], key=lambda r: (r["coverage_percent"] is None,
                                                           r["coverage_percent"] or 0)):
        rows.append([row["name"], fmt(row["households"]), fmt(row["served_households"]),
                     _pct(row["coverage_percent"])])
    rows.append(["全县", fmt(totals["households"]), fmt(totals["served_households"]),
                 _pct(totals["coverage_percent"])])
    return MapContent(sources=sources, legend_notes=notes, tables=[("各乡镇覆盖情况（覆盖率由低到高）", rows)],
                      subtitle_zh=_travel_zh(p, by_township), title_zh=_title_zh(p, PARAMETRISED["coverage"]))


def facility_area_map(conn: sa.Connection, recipe: MapRecipe, params: MapParameters, *, measure_srid: int,
                      analysis_settings: AnalysisSettings) -> MapContent:
    from gis_service.analysis.facility_area import facility_area

    county = params.county
    answer = facility_area(conn, level="village", county=county)
    target = answer["target_m2_per_100_households"]
    by_code = {row["code"]: row for row in answer["units"]}
    sources = _common(conn, measure_srid, county)
    villages = data.divisions(conn, level="village", measure_srid=measure_srid, county=county)
    for feature in villages:
        row = by_code.get(feature["properties"]["code"], {})
        feature["properties"].update({k: row.get(k) for k in ("floor_area_m2", "m2_per_100_households",
                                                              "shortfall_m2", "meets_target", "centres")})
        feature["properties"]["households"] = row.get("households", feature["properties"].get("households"))
    sources["villages"] = villages
    sources["community_centres"] = [f for f in data.facilities(conn, "community_centres", county)
                                    if f["properties"].get("status") == "existing"]
    totals = answer["totals"]
    notes = {"villages": [f"目标：每百户不少于 {fmt(target)} 平方米（“十四五”规划专栏1）",
                          f"达标 {totals['units_meeting_target']} 个，未达标 {totals['units_below_target']} 个；"
                          f"缺口合计 {fmt(totals['shortfall_m2'])} 平方米"]}
    worst = sorted((r for r in answer["units"] if r.get("meets_target") is False),
                   key=lambda r: -(r.get("shortfall_m2") or 0))[:30]
    rows = [["村（社区）", "户数", "每百户（平方米）", "缺口（平方米）"]]
    rows += [[r["name"], fmt(r.get("households")), fmt(r.get("m2_per_100_households")), fmt(r.get("shortfall_m2"))]
             for r in worst]
    return MapContent(sources=sources, legend_notes=notes, tables=[("缺口最大的村（社区）", rows)])


def boundaries_map(conn: sa.Connection, recipe: MapRecipe, params: MapParameters, *, measure_srid: int,
                   analysis_settings: AnalysisSettings, service_url: str = "") -> MapContent:
    sources = _common(conn, measure_srid, params.county)
    lines = data.boundary_lines(conn, measure_srid=measure_srid, county=params.county)
    base = service_url.rstrip("/")

    def export_links(line_code: str) -> str:
        """Links to the inspectors' export of one line (its markers included), escaped."""
        return markup.render("export_links.html", links=[
            (f"{base}/exports/boundaries?{urlencode({'line': line_code, 'format': f})}", label)
            for f, label in (("geojson", "GeoJSON"), ("kml", "KML"), ("gpx", "GPX"))])

    for feature in lines:
        props = feature["properties"]
        props["export_links"] = export_links(props["code"])
        props["sides"] = f"{props['left_name']} — {props['right_name']}"
    sources["county_lines"] = [f for f in lines if f["properties"]["level"] == "county"]
    sources["township_lines"] = [f for f in lines if f["properties"]["level"] == "township"]
    markers = data.boundary_markers(conn, params.county)
    for feature in markers:
        feature["properties"]["export_links"] = export_links(feature["properties"]["line_code"])
    sources["boundary_markers"] = markers
    dates = sorted(str(f["properties"]["last_inspected"]) for f in markers if f["properties"]["last_inspected"])
    bad = sum(1 for f in markers if f["properties"]["condition"] != "intact")
    notes = {"boundary_markers": [f"界桩 {len(markers)} 个，其中需处理（损坏、缺失、移位）{bad} 个",
                                  f"最近检查：{dates[0]} 至 {dates[-1]}" if dates else "尚无检查记录"],
             "county_lines": [f"县级界线 {len(sources['county_lines'])} 段，共 "
                              f"{fmt(sum(f['properties']['length_m'] or 0 for f in sources['county_lines']) / 1000)}"
                              " 千米；点击界线可下载该段的 GeoJSON/KML/GPX"]}
    return MapContent(sources=sources, legend_notes=notes)


def site_suggestions_map(conn: sa.Connection, recipe: MapRecipe, params: MapParameters, *, measure_srid: int,
                         analysis_settings: AnalysisSettings) -> MapContent:
    from gis_service.analysis.sites import site_suggestions

    p = params.resolved(recipe)
    step("计算新建设施选址")
    answer = site_suggestions(conn, layer=p.layer, kind=p.kind, minutes=p.minutes, mode=p.mode, k=p.k,
                              county=p.county, measure_srid=measure_srid, settings=analysis_settings)
    newly = {sid: site["rank"] for site in answer["sites"] for sid in site["newly_served_settlement_ids"]}
    sources = _common(conn, measure_srid, p.county)
    sites = []
    for site in answer["sites"]:
        sites.append({"type": "Feature", "id": site["rank"],
                      "geometry": {"type": "Point", "coordinates": [site["lon"], site["lat"]]},
                      "properties": {**{k: v for k, v in site.items() if k != "newly_served_settlement_ids"},
                                     "rank_key": str(site["rank"]), "_label": str(site["rank"]), "_size": 24}})
    from gis_service.analysis.coverage import coverage

    step("计算生活圈覆盖（各乡镇户数覆盖率）")
    before = coverage(conn, layer=p.layer, kind=p.kind, minutes=p.minutes, mode=p.mode, group_by="county",
                      county=p.county, measure_srid=measure_srid, settings=analysis_settings)
    unserved_ids = {row["id"] for row in before["unserved"]}
    settlements, still_unserved = [], []
    for feature in data.settlements(conn, p.county):
        sid = feature["properties"]["id"]
        if sid in newly:
            feature["properties"].update(rank=newly[sid], rank_key=str(newly[sid]))
            settlements.append(feature)
        elif sid in unserved_ids:
            still_unserved.append(feature)
    sources.update(sites=sites, newly_served=settlements, still_unserved=still_unserved,
                   facilities=_existing_facilities(conn, p))
    proof = ("已证明为最优解" if answer["optimal"] else
             f"与最优解相差至多 {answer['optimality_gap'] * 100:.2f}%（上界 "
             f"{fmt(answer['bound']['upper_bound_households'])} 户）")
    notes = {"sites": [f"{p.k} 处建议新址（最大覆盖选址）共可新覆盖 {fmt(answer['newly_served_households'])} 户；"
                       f"未覆盖户数由 {fmt(answer['unserved_households_before'])} 降至 "
                       f"{fmt(answer['unserved_households_after'])}",
                       f"{proof}；贪心算法可新覆盖 {fmt(answer['greedy']['newly_served_households'])} 户"]}
    rows = [["序号", "建议位置", "新覆盖户", "新覆盖居民点", "累计户"]]
    rows += [[str(s["rank"]), s["at_name"], fmt(s["newly_served_households"]),
              fmt(s["newly_served_settlements"]), fmt(s["cumulative_households"])] for s in answer["sites"]]
    return MapContent(sources=sources, legend_notes=notes, tables=[("建议新址", rows)],
                      subtitle_zh=_travel_zh(p, answer), bounds_sources=("sites", "newly_served"),
                      title_zh=_title_zh(p, PARAMETRISED["site_suggestions"]))


BUILDERS: dict[str, Callable[..., MapContent]] = {
    "overview": overview,
    "coverage": coverage_map,
    "facility_area": facility_area_map,
    "boundaries": boundaries_map,
    "site_suggestions": site_suggestions_map,
}


#: Built pages by what they depend on: a page is built again only when a table it reads has changed.
PAGES = LRU(16)


def _data_state(conn: sa.Connection) -> tuple:
    """Which database, and the state of every table a map reads (data versions come from a sequence, so a
    rolled-back change never reuses a version; inspections are not versioned: their count and last id are)."""
    versions = tuple(sorted(net.data_versions(conn).items()))
    return (net.database_instance(conn),), versions, inspections.state(conn)


def build_map(conn: sa.Connection, name: str, *, params: MapParameters | None = None, measure_srid: int = 4545,
              analysis_settings: AnalysisSettings | None = None, basemap: str = "none",
              tianditu_key: str | None = None, assets: str = "served", static_url: str = "/maps/static",
              service_url: str = "", use_cache: bool = True, tile_url: str | None = None,
              tile_attribution: str = "", organisation: str = "", search_url: str = "",
              cached_only: bool = False) -> str | None:
    """Map ``name`` as one HTML page (str). ``assets="inline"`` makes it self-contained (for a file);
    ``service_url`` prefixes the export links of the boundaries map (empty: relative to the page's server);
    ``search_url``: the place-name search the search box asks (empty: the names written on the map).
    ``cached_only``: the page if it is kept already, else None (nothing computed)."""
    recipe = load_recipe(name)
    params = params or MapParameters()
    analysis_settings = analysis_settings or AnalysisSettings()
    key = None
    if use_cache or cached_only:
        key = (asked(name, params), measure_srid, analysis_settings.model_dump_json(), basemap, tianditu_key, assets,
               static_url, service_url, tile_url, tile_attribution, organisation, search_url,
               datetime.date.today(),  # the print layout's date
               (recipes_dir() / f"{name}.toml").stat().st_mtime_ns, _data_state(conn))
        page = PAGES.get(key)
        if page is not None or cached_only:
            return page
    extra = {"service_url": service_url} if name == "boundaries" else {}
    content = BUILDERS[name](conn, recipe, params, measure_srid=measure_srid, analysis_settings=analysis_settings,
                             **extra)
    step(DRAWING_ZH)
    content.basemap = basemap_sources(conn, content.sources, measure_srid=measure_srid)
    page = render(recipe, content, basemap=basemap, tianditu_key=tianditu_key, assets=assets, static_url=static_url,
                  tile_url=tile_url, tile_attribution=tile_attribution, organisation=organisation,
                  search_url=search_url)
    if key is not None:
        PAGES.put(key, page)
    return page
