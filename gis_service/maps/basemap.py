"""The basemap every map draws from the service's own data, offline: roads by class and the names written on the map.

Names are permanent labels (Leaflet div icons in a pane of their own, never hover tooltips): township names from
county zoom, major road names and village names from zoom 12, the other road names from zoom 14. In the page a
collision pass places them in order of rank and leaves out any label that would overlap one already placed, again
after every zoom and pan (``templates/labels.js``). An intranet tile service (``GIS_MAP_TILE_URL``) can be drawn
under it.
"""

from __future__ import annotations

import json
from html import escape

import sqlalchemy as sa

from gis_service.layers.registry import ROADS
from gis_service.maps import data, markup

#: Line width (pixels) of each road class: wider for the higher classes (their colours are the Values' colours).
ROAD_WEIGHTS = {"urban_arterial": 4.0, "county": 4.0, "urban_secondary": 3.0, "township": 2.6,
                "urban_branch": 2.0, "village": 1.6, "path": 0.8}
#: Road classes whose names are written from zoom 12 (the others from zoom 14).
MAJOR_ROADS = ("urban_arterial", "county", "urban_secondary", "township")
#: Label kinds in the order they are placed (a township name wins over a road name) and the zoom they start at.
LABEL_ZOOMS = {"township": 0, "natural": 10, "major_road": 12, "village": 12, "road": 14}
#: Where the county opens (the coverage map's settlements and the villages' labels separate from zoom 12).
DETAIL_ZOOM = 12


def road_style(road_class: str) -> dict:
    """The Leaflet style of a road of ``road_class``: the class's colour (from the registry), its width."""
    color = next((v.color for v in ROADS.field_named("road_class").values if v.code == road_class), None)
    return {"color": color or "#9e9e9e", "weight": ROAD_WEIGHTS.get(road_class, 1.2), "opacity": 0.9,
            "lineCap": "round", "lineJoin": "round"}


def _label_point(geometry: dict) -> tuple[float, float] | None:
    """Where a feature's name is written (lat, lon): inside a polygon, at the middle of a line's longest part."""
    import shapely.geometry

    shape = shapely.geometry.shape(geometry)
    if shape.is_empty:
        return None
    if shape.geom_type in ("LineString", "MultiLineString"):
        parts = getattr(shape, "geoms", [shape])
        longest = max(parts, key=lambda part: part.length)
        point = longest.interpolate(0.5, normalized=True)
    else:
        point = shape.representative_point()
    return round(point.y, 5), round(point.x, 5)


def labels(townships: list[dict], villages: list[dict], roads: list[dict], natural: list[dict]) -> list[list]:
    """``[name, lat, lon, kind]`` for every name the map may write, in the order the collision pass places them."""
    found: list[list] = []
    for kind, features in (("township", townships), ("village", villages), ("natural", natural)):
        for feature in features:
            point = _label_point(feature["geometry"])
            if point and feature["properties"].get("name"):
                found.append([feature["properties"]["name"], *point, kind])
    for feature in sorted(roads, key=lambda f: -(f["properties"].get("length_m") or 0)):
        props = feature["properties"]
        point = _label_point(feature["geometry"]) if props.get("name") else None
        if point:
            found.append([props["name"], *point, "major_road" if props.get("road_class") in MAJOR_ROADS else "road"])
    rank = list(LABEL_ZOOMS)
    return sorted(found, key=lambda label: rank.index(label[3]))


def basemap_sources(conn: sa.Connection, sources: dict[str, list[dict]], *, measure_srid: int) -> dict:
    """The basemap's roads and labels, reusing what the map's builder has read already (townships, villages,
    roads). The demo data has no river lines: rivers and mountains are named where their place names stand."""
    townships = sources.get("townships") or data.divisions(conn, level="township", measure_srid=measure_srid)
    villages = sources.get("villages") or data.divisions(conn, level="village", measure_srid=measure_srid)
    roads = sources.get("roads") or data.roads(conn, measure_srid=measure_srid)
    natural = data.natural_names(conn)
    return {"roads": roads, "labels": labels(townships, villages, roads, natural)}


def labels_script(found: list[list]) -> str:
    """The page's collision pass over ``found`` (templates/labels.js; names HTML-escaped here, so the data cannot
    become markup)."""
    rows = [[escape(name).replace("{", "&#123;").replace("}", "&#125;"), lat, lon, kind]
            for name, lat, lon, kind in found]
    return markup.render("labels.js", labels=markup.json_for_script(rows), zooms=json.dumps(LABEL_ZOOMS))
