"""The layer browser (图层浏览): what the OGC API's HTML pages show, in Chinese, from the layer registry.

The routers of :mod:`gis_service.api.ogc` build their JSON answer as always; for ``f=html`` (or a browser's
``Accept: text/html``) they hand it to these functions, which turn codes into what a person reads: each field
under its Chinese title, enumerated codes as their labels (:meth:`Field.label_of`), booleans as 是/否, lists
joined, references as links to what they name. The templates are ``templates/layers/*.html``. Pure: no database
access.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from gis_service.io.labels import NO, YES
from gis_service.layers.base import Field, Layer

#: A field's type as the queryables page names it.
TYPE_NAMES = {"text": "文本", "integer": "整数", "number": "数值", "boolean": "是/否", "date": "日期",
              "text_list": "文本列表"}
#: A layer's geometry type as the pages name it.
GEOMETRY_NAMES = {"Point": "点", "LineString": "线", "MultiLineString": "线（多段）", "MultiPolygon": "面"}
#: What the landing page's links are, by their relation (OGC API - Features, Tiles).
LINK_TITLES = {"service-desc": "API 定义（OpenAPI 3.0）", "service-doc": "接口文档", "conformance": "符合性声明",
               "data": "图层", "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes": "瓦片矩阵集"}


def shown(spec: Field, value: object) -> str:
    """``value`` of ``spec`` as a person reads it: an enumerated code as its Chinese label, 是/否, a list joined
    with 、, a number with thousands separators; empty for no value."""
    if value is None:
        return ""
    if spec.values is not None:
        return spec.label_of(value)
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def reference_href(spec: Field, value: object, base: str) -> str | None:
    """The page of what ``value`` names when ``spec`` refers to another layer's feature (a marker's line, a
    place name's successor), or None."""
    ref = spec.references
    if ref is None or value is None:
        return None
    if ref.field == "id":
        return f"{base}/collections/{ref.layer}/items/{value}?f=html"
    return f"{base}/collections/{ref.layer}/items?{urlencode({ref.field: value, 'f': 'html'})}"


@dataclass(frozen=True)
class Cell:
    """One value as shown: its text and, for a reference, the page it links to."""

    text: str
    href: str | None = None


def cells(layer: Layer, properties: dict, names: Iterable[str], base: str) -> list[Cell]:
    """The values of ``names`` in a feature's ``properties``, as shown."""
    out = []
    for name in names:
        spec, value = layer.field_named(name), properties.get(name)
        out.append(Cell(shown(spec, value), reference_href(spec, value, base)))
    return out


def table_names(layer: Layer, features: list[dict]) -> list[str]:
    """The properties an items table has a column for: those the features carry (all unless ``properties``
    chose), long texts (含义, 历史沿革) left to the feature's own page."""
    names = list(features[0]["properties"]) if features else list(layer.field_names)
    return [n for n in names if not layer.field_named(n).multiline]


def headings(layer: Layer, names: Iterable[str]) -> list[str]:
    return [layer.field_named(n).title_zh or n for n in names]


def link(links: list[dict], rel: str) -> str | None:
    """The href of the first link of relation ``rel``, or None."""
    return next((item["href"] for item in links if item["rel"] == rel), None)


def feature_href(base: str, layer: Layer, feature_id: object) -> str:
    return f"{base}/collections/{layer.id}/items/{feature_id}?f=html"


def map_style(layer: Layer) -> str:
    """How the preview map draws ``layer`` (JSON for a data attribute): its colour, the field that colours it by
    value and those values' colours, the field a feature is labelled by."""
    style = layer.map_style
    colours = {}
    if style.by:
        colours = {v.code: v.color for v in layer.field_named(style.by).values or () if v.color}
    return json.dumps({"color": style.color, "by": style.by, "colors": colours, "label": layer.label_field},
                      ensure_ascii=False)


def geojson_block(features: list[dict]) -> str:
    """The page's features as a FeatureCollection to embed in ``<script type="application/geo+json">``: ``<``
    escaped so that no text in a property can close the element."""
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False,
                      separators=(",", ":"))
    return text.replace("<", "\\u003c")


def items_context(layer: Layer, features: list[dict], meta: dict, base: str) -> dict:
    """What ``layers/items.html`` shows: the table (Chinese headings, values as shown, ids linking to each
    feature's page), the counts, paging from the page's ``next``/``prev`` links, the map's data."""
    names = table_names(layer, features)
    rows = [(feature["id"], feature_href(base, layer, feature["id"]), cells(layer, feature["properties"], names, base))
            for feature in features]
    return {"layer": layer, "headings": headings(layer, names), "rows": rows,
            "matched": meta["numberMatched"], "returned": meta["numberReturned"],
            "next": link(meta["links"], "next"), "prev": link(meta["links"], "prev"),
            "json_href": link(meta["links"], "alternate"), "collection_href": f"{base}/collections/{layer.id}?f=html",
            "feature_base": f"{base}/collections/{layer.id}/items/", "style": map_style(layer),
            "geojson": geojson_block(features)}


def feature_context(layer: Layer, feature: dict, links: list[dict], base: str) -> dict:
    """What ``layers/feature.html`` shows: every property under its Chinese title, the map, the links."""
    names = list(feature["properties"])
    fields = list(zip(headings(layer, names), cells(layer, feature["properties"], names, base), strict=True))
    label = feature["properties"].get(layer.label_field)
    return {"layer": layer, "feature": feature, "fields": fields, "label": label or f"要素 {feature['id']}",
            "json_href": link(links, "alternate"), "items_href": f"{base}/collections/{layer.id}/items?f=html",
            "collection_href": f"{base}/collections/{layer.id}?f=html", "feature_base": "",
            "style": map_style(layer), "geojson": geojson_block([feature])}


def queryables_rows(layer: Layer) -> list[dict]:
    """One row per queryable of ``layer``: name, Chinese title, type, the values it takes, description."""
    rows = [{"name": "geometry", "title": "几何", "type": GEOMETRY_NAMES[layer.geometry_type], "values": [],
             "description": "空间过滤（CQL2 S_INTERSECTS 等）"},
            {"name": "id", "title": "要素编号", "type": TYPE_NAMES["integer"], "values": [],
             "description": "Feature id."}]
    for spec in layer.fields:
        rows.append({"name": spec.name, "title": spec.title_zh or spec.name, "type": TYPE_NAMES[spec.type],
                     "values": _values_text(spec), "description": spec.description})
    return rows


def _values_text(spec: Field) -> list[str]:
    """What ``spec`` takes, one line each: its enumerated values (code and label), or its bounds."""
    if spec.values is not None:
        return [f"{v.code}（{v.label_zh}）" if v.label_zh != v.code else v.code for v in spec.values]
    parts = []
    if spec.minimum is not None:
        parts.append(f"≥ {spec.minimum:g}")
    if spec.maximum is not None:
        parts.append(f"≤ {spec.maximum:g}")
    if spec.max_length is not None:
        parts.append(f"至多 {spec.max_length} 字")
    if spec.pattern:
        parts.append(f"格式 {spec.pattern}")
    return parts
