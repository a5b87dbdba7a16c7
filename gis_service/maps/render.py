"""Drawing a recipe with folium: overlays, tooltips and popups, the legend, panels, basemap and offline assets.

Every value a tooltip or popup shows is escaped here (HTML, and braces, so nothing reads as a template); the page
keeps one list of labels per layer and assembles the table when the tooltip opens, so it stays small. Each drawn
feature carries the CSS class ``gis-<layer key>`` (SVG paths and div icons alike), which is
what the browser tests count. The page needs nothing from the internet: Leaflet is served by the service under
``/maps/static`` or inlined (``assets="inline"``); with ``basemap="none"`` no tile is requested at all.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from markupsafe import Markup

from gis_service.errors import InvalidInputError
from gis_service.layers.registry import ROADS
from gis_service.maps import markup
from gis_service.maps.basemap import labels_script, road_style
from gis_service.maps.data import label_zh
from gis_service.maps.recipes import LayerRecipe, MapRecipe

STATIC_DIR = Path(__file__).resolve().parent / "static"
LEAFLET_DIR = STATIC_DIR / "leaflet"
BASEMAPS = ("none", "tianditu", "osm", "amap")
FONT_STACK = ('"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "Source Han Sans SC", '
              '"WenQuanYi Micro Hei", "WenQuanYi Zen Hei", sans-serif')
_ASSETS_MARK = "<!--gis-map-assets-->"
_PANELS_MARK = "<!--gis-map-panels-->"


@dataclass
class MapContent:
    """What a builder hands to :func:`render`: the sources the recipe names and the texts around the map."""

    sources: dict[str, list[dict]]
    #: legend lines under each layer's entries: {layer key: [text, ...]} (plain text, escaped when drawn).
    legend_notes: dict[str, list[str]] = field(default_factory=dict)
    #: extra panels as (title_zh, rows) where rows are lists of cells (plain text), first row the header.
    tables: list[tuple[str, list[list[str]]]] = field(default_factory=list)
    #: a line under the title stating the parameters (plain text).
    subtitle_zh: str = ""
    #: the sources the map opens on (their bounds).
    bounds_sources: tuple[str, ...] = ("county",)
    #: the title when the parameters change it (e.g. the minutes asked for); empty: the recipe's.
    title_zh: str = ""
    #: the basemap drawn from the service's data: {"roads": [...], "labels": [[name, lat, lon, kind], ...]}.
    basemap: dict = field(default_factory=dict)


# -- formatting -------------------------------------------------------------------------------------------------

def fmt(value: object) -> str:
    """A value as a planner reads it: thousands separators, 是/否, — for unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        whole = value.is_integer() or abs(value) >= 100
        return f"{value:,.0f}" if whole else f"{value:,.1f}"
    return str(value)


def _value(layer: LayerRecipe, props: dict, name: str) -> str:
    value = props.get(name)
    group = layer.value_labels.get(name)
    if group and value is not None:
        return label_zh(group, value)
    if value is not None and name == layer.color_by.get("field") and "labels" in layer.color_by:
        return _category_label(layer, _category_color(layer, props)[1])
    return fmt(value)


def _text(value: str) -> str:
    """Text for the page: HTML-escaped, and braces as entities so that no value can read as a template."""
    return escape(value).replace("{", "&#123;").replace("}", "&#125;")


def _cells(layer: LayerRecipe, props: dict, rows: Iterable[tuple]) -> list[str]:
    """The escaped values of a tooltip's or popup's rows (an ``html:`` field is a fragment built and escaped by
    the builder); the labels are sent once per layer, not per feature."""
    cells = []
    for pair in rows:
        name = pair[0]
        if name.startswith("html:"):
            cells.append(props.get(name[5:]) or "—")
        else:
            cells.append(_text(_value(layer, props, name)))
    return cells


# -- symbols ----------------------------------------------------------------------------------------------------

def _polygon_points(shape: str, s: int, c: float) -> str:
    """The corners of a polygon symbol of ``size`` s (SVG ``points``)."""
    if shape == "triangle":
        return f"{c},1.5 {s - 1.5},{s - 1.5} 1.5,{s - 1.5}"
    if shape == "diamond":
        return f"{c},1 {s - 1},{c} {c},{s - 1} 1,{c}"
    if shape == "cross":
        return (f"{s * .35},1 {s * .65},1 {s * .65},{s * .35} {s - 1},{s * .35} {s - 1},{s * .65} "
                f"{s * .65},{s * .65} {s * .65},{s - 1} {s * .35},{s - 1} {s * .35},{s * .65} 1,{s * .65} "
                f"1,{s * .35} {s * .35},{s * .35}")
    return " ".join(  # star
        f"{c + (c - 1) * (1 if i % 2 == 0 else 0.45) * math.sin(i * math.pi / 5):.1f},"
        f"{c - (c - 1) * (1 if i % 2 == 0 else 0.45) * math.cos(i * math.pi / 5):.1f}" for i in range(10))


SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")


def shape_svg(shape: str, color: str, size: int, *, stroke: str = "#ffffff", text: str = "") -> str:
    """An inline SVG symbol (no icon font, no image file): circle, square, triangle, diamond, star or cross."""
    if shape not in SHAPES:
        raise InvalidInputError(f"unknown symbol shape {shape!r}; use one of {', '.join(SHAPES)}")
    c = size / 2
    points = "" if shape in ("circle", "square") else _polygon_points(shape, size, c)
    return markup.render("symbol.svg", shape=shape, color=color, stroke=stroke, s=size, c=c, points=points,
                         text=text, text_y=f"{c + size * 0.17:.1f}", font_size=f"{size * 0.45:.0f}")


def _category_color(layer: LayerRecipe, props: dict) -> tuple[str | None, str]:
    """The colour of a feature by ``color_by`` and the legend category it falls in."""
    spec = layer.color_by
    if not spec:
        return None, ""
    value = props.get(spec["field"])
    if "bins" in spec:
        if value is None:
            return spec.get("none_color", "#cccccc"), "none"
        for i, (low, high, color, _label) in enumerate(spec["bins"]):
            if low <= value < high:
                return color, str(i)
        return spec["bins"][-1][2], str(len(spec["bins"]) - 1)
    key = str(value).lower() if isinstance(value, bool) else str(value)
    return spec["colors"].get(key, spec.get("other_color", "#9e9e9e")), key


def _category_label(layer: LayerRecipe, key: str) -> str:
    spec = layer.color_by
    if "bins" in spec:
        return spec.get("none_label", "无数据") if key == "none" else spec["bins"][int(key)][3]
    if "labels" in spec and key in spec["labels"]:
        return spec["labels"][key]
    if "labels_group" in spec:
        return label_zh(spec["labels_group"], key)
    return key


def _categories(layer: LayerRecipe) -> list[str]:
    spec = layer.color_by
    if "bins" in spec:
        return [str(i) for i in range(len(spec["bins"]))] + ["none"]
    return list(spec.get("colors", {}))


def _radius(layer: LayerRecipe, props: dict, scale_max: float) -> float:
    spec = layer.radius_by
    base = float(layer.style.get("radius", 4))
    if not spec:
        return base
    value = max(float(props.get(spec["field"]) or 0), 0.0)
    low, high = float(spec.get("min", 2)), float(spec.get("max", 12))
    return round(low + (high - low) * math.sqrt(value / scale_max), 1) if scale_max > 0 else low


# -- the overlays -----------------------------------------------------------------------------------------------

def _overlay(folium, layer: LayerRecipe, title: str, features: list[dict], *, scale_max: float):
    """One folium GeoJson overlay; each feature keeps only its id, tooltip and popup HTML."""
    styles: dict[object, dict] = {}
    slim = []
    for feature in features:
        props = feature["properties"]
        color, _ = _category_color(layer, props)
        style = dict(layer.style)
        style.pop("radius", None)
        if layer.geometry == "point" and layer.symbol == "icon":
            shape = layer.shape
            shape_by = layer.style.get("shape_by")
            if shape_by:
                shape = layer.style.get("shapes", {}).get(str(props.get(shape_by)), shape)
            size = int(props.get("_size", layer.size))
            style = {"html": shape_svg(shape, color or layer.style.get("fillColor", "#1565c0"), size,
                                       text=str(props.get("_label", ""))),
                     "className": f"gis-icon gis-{layer.key}", "iconSize": [size, size],
                     "iconAnchor": [size / 2, size / 2]}
        else:
            for k in ("shape_by", "shapes"):
                style.pop(k, None)
            if color:
                style["fillColor" if layer.geometry != "line" else "color"] = color
                if layer.geometry == "point":
                    style.setdefault("color", "#ffffff")
            style.update(layer.color_by.get("styles", {}).get(_category_color(layer, props)[1], {}))
            if layer.layer == ROADS.id:
                style.update(road_style(props.get("road_class")))
            if layer.geometry == "point":
                style["radius"] = _radius(layer, props, scale_max)
                style["fill"] = True  # folium's circle markers default to no fill
            style["className"] = f"gis-{layer.key}"
        styles[feature["id"]] = style
        slim_props = {}
        if layer.tooltip:
            slim_props["t"] = _cells(layer, props, layer.tooltip)
        if layer.popup:
            slim_props["p"] = _cells(layer, props, layer.popup)
        slim.append({"type": "Feature", "id": feature["id"], "geometry": feature["geometry"], "properties": slim_props})
    marker = None
    if layer.geometry == "point":
        if layer.symbol == "icon":
            marker = folium.Marker(icon=folium.DivIcon(html="", icon_size=(layer.size, layer.size)))
        else:
            marker = folium.CircleMarker(radius=float(layer.style.get("radius", 4)))
    script = markup.render("on_each_feature.js",
                           tooltip=json.dumps([_text(pair[1]) for pair in layer.tooltip], ensure_ascii=False),
                           popup=json.dumps([_text(pair[1]) for pair in layer.popup], ensure_ascii=False),
                           sticky="true" if layer.geometry == "polygon" else "false")
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": slim}, name=title, show=layer.show, marker=marker,
        style_function=lambda f: styles[f["id"]], on_each_feature=folium.JsCode(script),
        overlay=True, control=True, zoom_on_click=False, embed=True,
    )


def _groups(layer: LayerRecipe, features: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(title, category key, features) per overlay: one, or one per value of ``split_by``."""
    if not layer.split_by:
        return [(layer.title_zh, "", features)]
    by_value: dict[str, list[dict]] = defaultdict(list)
    for feature in features:
        by_value[str(feature["properties"].get(layer.split_by))].append(feature)
    order = [k for k in _categories(layer) if k in by_value] + sorted(k for k in by_value if k not in
                                                                      _categories(layer))
    return [(f"{layer.title_zh} · {_category_label(layer, k)}", k, by_value[k]) for k in order]


# -- legend and panels ------------------------------------------------------------------------------------------

def _swatch(layer: LayerRecipe, color: str | None, key: str = "") -> Markup:
    """The legend's symbol of a category: the point symbol, a stretch of line, or a patch of fill."""
    style = layer.style
    if layer.geometry == "point" and layer.symbol == "icon":
        shape = style.get("shapes", {}).get(key, layer.shape) if style.get("shape_by") else layer.shape
        return Markup(shape_svg(shape, color or style.get("fillColor", "#1565c0"), 14))
    if layer.geometry == "point":
        cue = {**style, **layer.color_by.get("styles", {}).get(key, {})} if layer.color_by else style
        swatch = dict(kind="point", fill=color or style.get("fillColor", "#1565c0"), stroke=cue.get("color", "#fff"),
                      weight=min(cue.get("weight", 1), 2.5))
    elif layer.geometry == "line":
        swatch = dict(kind="line", stroke=color or style.get("color", "#555"), weight=min(style.get("weight", 2), 5),
                      dash=style.get("dashArray"))
    else:
        fill = color or style.get("fillColor", "none")
        opacity = style.get("fillOpacity", 0.5) if fill != "none" else 0
        swatch = dict(kind="polygon", fill=fill, opacity=max(opacity, 0.35) if opacity else 0,
                      stroke=style.get("color", "#555"), weight=min(style.get("weight", 1), 2.5))
    return Markup(markup.render("swatch.svg", **swatch))


def _legend(recipe: MapRecipe, content: MapContent) -> list[dict]:
    """The legend's blocks for panels.html: per layer its title, rows (swatch and text) and notes."""
    blocks = []
    for layer in recipe.layers:
        features = content.sources.get(layer.source, [])
        rows = []
        if layer.color_by:
            counts = Counter(_category_color(layer, f["properties"])[1] for f in features)
            sums: Counter = Counter()
            if layer.legend_sum:
                for f in features:
                    sums[_category_color(layer, f["properties"])[1]] += f["properties"].get(layer.legend_sum) or 0
            for key in _categories(layer):
                if not counts.get(key):
                    continue
                color = (layer.color_by["bins"][int(key)][2] if "bins" in layer.color_by and key != "none" else
                         layer.color_by.get("none_color", "#cccccc") if key == "none" else
                         layer.color_by["colors"][key])
                extra = f" · {fmt(int(sums[key]))} {layer.legend_unit_zh}" if layer.legend_sum else ""
                rows.append({"swatch": _swatch(layer, color, key),
                             "text": f"{_category_label(layer, key)}：{fmt(counts[key])} {layer.count_unit_zh}{extra}"})
        else:
            total = (f"{fmt(int(sum(f['properties'].get(layer.legend_sum) or 0 for f in features)))} "
                     f"{layer.legend_unit_zh}") if layer.legend_sum else ""
            text = (f"{fmt(len(features))} {layer.count_unit_zh}" + (f" · {total}" if total else "")
                    if layer.legend_count else total)
            rows.append({"swatch": _swatch(layer, None), "text": text})
        blocks.append({"key": layer.key, "title": layer.title_zh, "rows": rows,
                       "notes": content.legend_notes.get(layer.key, [])})
    return blocks


def _tables(content: MapContent) -> list[dict]:
    """The tables for panels.html: title, header cells, rows of cells (plain text)."""
    return [{"title": title, "head": rows[0], "body": rows[1:]} for title, rows in content.tables if rows]


# -- assets and basemaps ----------------------------------------------------------------------------------------

def _inline_css() -> str:
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        path = LEAFLET_DIR / match.group(1)
        return f"url(data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"url\((images/[a-z0-9-]+\.png)\)", data_uri, css)


def asset_tags(assets: str, static_url: str, css: str = "") -> str:
    """The Leaflet style sheet and script, links to the service (``served``) or their text (``inline``), and the
    maps' own style sheet ``css``."""
    if assets not in ("served", "inline"):
        raise InvalidInputError(f"assets must be served or inline; got {assets!r}")
    inline = assets == "inline"
    return markup.render(
        "assets.html", inline=inline, static_url=static_url.rstrip("/"), css=Markup(css),
        leaflet_css=Markup(_inline_css()) if inline else "",
        leaflet_js=Markup((LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8").replace("</script", "<\\/script"))
        if inline else "")


def check_basemap(basemap: str, tianditu_key: str | None) -> str:
    if basemap not in BASEMAPS:
        raise InvalidInputError(f"GIS_MAP_BASEMAP must be one of {', '.join(BASEMAPS)}; got {basemap!r}")
    if basemap == "tianditu" and not tianditu_key:
        raise InvalidInputError("GIS_MAP_BASEMAP=tianditu needs a Tianditu key in GIS_TIANDITU_KEY "
                                "(apply at console.tianditu.gov.cn); or use GIS_MAP_BASEMAP=none")
    return basemap


def add_basemap(folium, fmap, basemap: str, tianditu_key: str | None) -> None:
    """Tile layers of the basemap; none adds nothing (the county's own layers on a plain background)."""
    if basemap == "osm":
        folium.TileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", name="OpenStreetMap",
                         attr="© OpenStreetMap contributors", max_zoom=19, control=False).add_to(fmap)
    elif basemap == "tianditu":
        for layer, name in (("vec", "天地图矢量"), ("cva", "天地图注记")):
            folium.TileLayer(
                f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                f"&TILECOL={{x}}&tk={tianditu_key}", name=name, attr="© 天地图 国家地理信息公共服务平台",
                subdomains="01234567", max_zoom=18, control=False).add_to(fmap)
    elif basemap == "amap":
        folium.TileLayer("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                         "&x={x}&y={y}&z={z}", name="高德地图", attr="© 高德地图 (GCJ-02)", subdomains="1234",
                         max_zoom=18, control=False).add_to(fmap)


def to_gcj02(sources: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Copies of the sources with every geometry in GCJ-02, for drawing over AMap tiles."""
    from gis_service.geo.gcj02 import geojson_geometry_to_gcj02

    return {name: [{**f, "geometry": geojson_geometry_to_gcj02(f["geometry"])} for f in features]
            for name, features in sources.items()}


def _basemap_to_gcj02(own: dict) -> dict:
    """The service's basemap (roads, label points) in GCJ-02, for drawing over AMap tiles."""
    from gis_service.geo.gcj02 import wgs84_to_gcj02

    labels = []
    for name, lat, lon, kind in own.get("labels", []):
        x, y = wgs84_to_gcj02(lon, lat)
        labels.append([name, round(float(y), 5), round(float(x), 5), kind])
    return {"roads": to_gcj02({"roads": own.get("roads", [])})["roads"], "labels": labels}


def _bounds(features: list[dict]) -> list[list[float]] | None:
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords) -> None:
        if coords and isinstance(coords[0], (int, float)):
            xs.append(coords[0])
            ys.append(coords[1])
        else:
            for c in coords:
                walk(c)

    for f in features:
        if f.get("geometry"):
            walk(f["geometry"]["coordinates"])
    return [[min(ys), min(xs)], [max(ys), max(xs)]] if xs else None


def _metric_scale_class():
    from branca.element import MacroElement

    class MetricScale(MacroElement):
        """A metric scale bar (folium's shows miles too)."""

        _template = markup.template("scale.js")

    return MetricScale


def _MetricScale():  # noqa: N802 - a class made on first use, so folium/branca load only when drawing
    return _metric_scale_class()()


def _fit_bounds(fmap, bounds: list[list[float]]) -> None:
    """Open on ``bounds`` at once: folium's fit_bounds animates the zoom, and a page that is still zooming
    when it is printed or captured shows circles at the wrong scale."""
    from branca.element import MacroElement

    class FitBounds(MacroElement):
        _template = markup.template("fit_bounds.js")

        def __init__(self) -> None:
            super().__init__()
            self.bounds = bounds

    FitBounds().add_to(fmap)


# -- the page ---------------------------------------------------------------------------------------------------

def _script(fmap, code: str) -> None:
    """A script run once the map exists; ``__MAP__`` in ``code`` names the map's variable."""
    from branca.element import MacroElement

    class Script(MacroElement):
        _template = markup.template("script.js")

        def __init__(self) -> None:
            super().__init__()
            self.code = ""

        def render(self, **kwargs) -> None:
            self.code = code.replace("__MAP__", self._parent.get_name())
            super().render(**kwargs)

    Script().add_to(fmap)


def _basemap_roads(fmap, roads: list[dict]) -> None:
    """The roads under a map that does not draw them as a layer of its own: one style per class, no tooltips."""
    classes = sorted({f["properties"].get("road_class") or "" for f in roads})
    lines = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"], "properties": {"c": f["properties"].get("road_class") or ""}}
        for f in sorted(roads, key=lambda f: -(road_style(f["properties"].get("road_class"))["weight"]))]}
    _script(fmap, markup.render("roads.js", styles=json.dumps({c: {**road_style(c), "opacity": 0.75} for c in classes}),
                                roads=json.dumps(lines, separators=(",", ":"))))


def render(recipe: MapRecipe, content: MapContent, *, basemap: str = "none", tianditu_key: str | None = None,
           tile_url: str | None = None, tile_attribution: str = "", organisation: str = "",
           assets: str = "served", static_url: str = "/maps/static", search_url: str = "") -> str:
    """The map as one HTML page (str). ``assets``: served (Leaflet from ``static_url``) or inline. ``tile_url``: an
    intranet XYZ/WMTS template drawn under the service's own basemap; ``search_url``: the place-name search."""
    import datetime

    import folium

    check_basemap(basemap, tianditu_key)
    sources = to_gcj02(content.sources) if basemap == "amap" else content.sources
    own = _basemap_to_gcj02(content.basemap) if basemap == "amap" and content.basemap else content.basemap
    fmap = folium.Map(location=[28.45, 108.99], zoom_start=10, tiles=None, control_scale=False,
                      max_zoom=18, min_zoom=7, zoomSnap=0.25)
    _MetricScale().add_to(fmap)
    fmap.default_js = []
    fmap.default_css = []
    figure = fmap.get_root()
    figure.header.add_child(folium.Element(_ASSETS_MARK), name="gis_assets", index=0)
    title_zh = content.title_zh or recipe.title_zh
    figure.title = title_zh
    add_basemap(folium, fmap, basemap, tianditu_key)
    if tile_url:
        folium.TileLayer(tile_url, name="底图", attr=tile_attribution or "底图", max_zoom=18,
                         control=False).add_to(fmap)
    if own and not any(layer.source == "roads" for layer in recipe.layers):
        _basemap_roads(fmap, own.get("roads", []))
    for layer in recipe.layers:
        features = sources.get(layer.source, [])
        scale_max = max((float(f["properties"].get(layer.radius_by["field"]) or 0) for f in features),
                        default=0.0) if layer.radius_by else 0.0
        for title, _, group in _groups(layer, features):
            overlay = _overlay(folium, layer, f"{title}（{len(group)}）", group, scale_max=scale_max)
            overlay.add_to(fmap)
            if layer.min_zoom:
                _script(fmap, markup.render("min_zoom.js", layer=overlay.get_name(), zoom=layer.min_zoom))
    if own:
        _script(fmap, labels_script(own.get("labels", [])))
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    bounds = _bounds([f for name in content.bounds_sources for f in sources.get(name, [])])
    if bounds:
        _fit_bounds(fmap, bounds)
    _script(fmap, markup.render("controls.js", search_url=json.dumps(search_url), bounds=json.dumps(bounds)))
    figure.html.add_child(folium.Element(_PANELS_MARK))
    figure._template = markup.template("figure.html")  # branca's page layout, in Chinese, from a template
    html = figure.render()
    css = markup.render("map.css", background="#eef1f4" if basemap == "none" and not tile_url else "#dfe6ea",
                        font=FONT_STACK)
    county = next((f["properties"].get("name") for f in sources.get("county", [])), "") or ""
    panels = markup.render("panels.html", title=title_zh, subtitle=content.subtitle_zh or recipe.description_zh,
                           legend=_legend(recipe, content), note=recipe.note_zh, tables=_tables(content),
                           organisation=organisation, made_on=datetime.date.today().isoformat(), county=county,
                           data_source=recipe.source_zh, data_note=recipe.note_zh)
    html = html.replace(_ASSETS_MARK, asset_tags(assets, static_url, css), 1)
    html = html.replace(_PANELS_MARK, panels, 1)
    return html
