"""What the maps draw, read through :mod:`gis_service.store.features`: GeoJSON features in EPSG:4326 (lon, lat),
simplified for display, and the Chinese labels of coded values, from the layer registry.

Polygons and lines are simplified in metres in the county's Gauss-Krüger zone (``measure_srid``), never in
degrees; coordinates keep 5 decimals (about 1 m). Roads are merged as their layer's map style says (per standard
name and class), so the page holds a few thousand lines, not 17,752 segments.
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa

from gis_service.layers import LAYERS, Layer, get_layer
from gis_service.layers.registry import DEMAND_LAYER, DIVISIONS, ROADS
from gis_service.store import features, inspections

#: Display tolerances in metres.
COUNTY_TOLERANCE_M = 30.0
TOWNSHIP_TOLERANCE_M = 20.0
VILLAGE_TOLERANCE_M = 15.0
ROAD_TOLERANCE_M = 8.0
LINE_TOLERANCE_M = 5.0
DECIMALS = 5
#: Facilities a map leaves out (by status): the closed ones.
NOT_SHOWN = {"status": ("closed",)}


def label_zh(group: str, value: object) -> str:
    """The Chinese label of a coded value; ``group`` names the field, ``layer.field`` (the value itself when the
    field has no such value; empty for None)."""
    if value is None:
        return ""
    layer_id, _, name = group.partition(".")
    layer = LAYERS.get(layer_id)
    spec = layer.get_field(name) if layer is not None else None
    return spec.label_of(value) if spec is not None else str(value)


def divisions(conn: sa.Connection, *, level: str, measure_srid: int, county: str | None = None) -> list[dict]:
    """Current divisions of ``level`` (county, township or village; of ``county`` when given), simplified for
    display."""
    tolerance = {"county": COUNTY_TOLERANCE_M, "township": TOWNSHIP_TOLERANCE_M,
                 "village": VILLAGE_TOLERANCE_M}[level]
    return features.display_features(
        conn, DIVISIONS, ("code", "name", "kind", "parent_code", "households", "population", "urban_rural"),
        equals={"level": level}, order_by=("code",), key="code", simplify_m=tolerance, measure_srid=measure_srid,
        decimals=DECIMALS, county=county, county_by="code")


def roads(conn: sa.Connection, *, measure_srid: int, county: str | None = None) -> list[dict]:
    """Roads merged per (standard name, class): one feature per named road, lengths in metres. Paths (小路) are
    merged per class into one feature: thousands of short named tracks would make the page slow to draw."""
    return features.merged_display_lines(conn, ROADS, simplify_m=ROAD_TOLERANCE_M, measure_srid=measure_srid,
                                         decimals=DECIMALS, county=county)


def natural_names(conn: sa.Connection) -> list[dict]:
    """Current place names of natural features (rivers, mountains): points the basemap writes the names at."""
    return features.display_features(conn, get_layer("place_names"), ("name",),
                                     equals={"category": "natural", "status": "current"}, decimals=DECIMALS)


def _division_names(conn: sa.Connection) -> dict[str, dict]:
    """Name, parent code and urban or rural of every current division, by code."""
    return {row["code"]: row for row in features.read_records(conn, DIVISIONS, ("code", "name", "parent_code",
                                                                                  "urban_rural"))}


def settlements(conn: sa.Connection, county: str | None = None) -> list[dict]:
    """Every settlement (of ``county``): name, households, population, village and township codes, and whether its
    village is urban or rural."""
    layer = DEMAND_LAYER
    village = layer.network.village
    found = features.display_features(conn, layer, ("id", "name", "households", "population", village),
                                      decimals=DECIMALS, county=county, county_by=village)
    names = _division_names(conn)
    for feature in found:
        props = feature["properties"]
        unit = names.get(props[village], {})
        props.update(village_name=unit.get("name"), township_code=unit.get("parent_code"),
                     urban_rural=unit.get("urban_rural"))
    return found


def facilities(conn: sa.Connection, layer: Layer | str, county: str | None = None) -> list[dict]:
    """The facilities of ``layer`` a map shows (all but closed ones; of ``county``, by place): their fields, and
    the name of the division
    each serves (``<field>_name`` beside a field naming a division, e.g. ``division_name``)."""
    layer = get_layer(layer) if isinstance(layer, str) else layer
    shown = ["id", *(f.name for f in layer.fields if f.name != "data_source")]
    found = features.display_features(conn, layer, shown, excluding=NOT_SHOWN, decimals=DECIMALS, county=county)
    named = [f.name for f in layer.fields if f.references is not None and f.references.layer == DIVISIONS.id]
    if named:
        names = _division_names(conn)
        for feature in found:
            props = feature["properties"]
            for name in named:
                props[name.removesuffix("_code") + "_name"] = names.get(props[name], {}).get("name")
    return found


def boundary_lines(conn: sa.Connection, *, measure_srid: int, county: str | None = None) -> list[dict]:
    """Boundary lines (of ``county``, by place) with their marker counts, lengths in whole metres."""
    lines = get_layer("boundary_lines")
    found = features.display_features(
        conn, lines, ("code", "name", "level", "left_name", "right_name", "length_m", "status", "last_inspected"),
        order_by=("level", "code"), key="code", simplify_m=LINE_TOLERANCE_M, measure_srid=measure_srid,
        decimals=DECIMALS, county=county)
    markers = features.counts_by(conn, get_layer("boundary_markers"), "line_code")
    for feature in found:
        props = feature["properties"]
        props["length_m"] = float(math.floor(props["length_m"] + 0.5))  # as PostgreSQL's round(): halves up
        props["markers"] = markers.get(props["code"], 0)
    return found


def boundary_markers(conn: sa.Connection, county: str | None = None) -> list[dict]:
    """Boundary markers with their condition and their last inspection (date, notes). Not the inspector: the
    maps are open to anyone (and their files are passed around), and staff names are read with a token
    (GET .../inspections)."""
    found = features.display_features(
        conn, get_layer("boundary_markers"),
        ("number", "marker_type", "line_code", "material", "set_on", "condition", "last_inspected"),
        order_by=("number",), decimals=6, county=county)
    latest = inspections.latest_per_marker(conn)
    for feature in found:
        props = feature["properties"]
        inspection = latest.get(feature["id"], {})
        props["last_inspected"] = inspection.get("inspected_on") or props["last_inspected"]
        props["notes"] = inspection.get("notes")
    return found


def simplify_lonlat(features: list[dict], *, tolerance_m: float, measure_srid: int,
                    preserve_topology: bool = True) -> list[dict]:
    """Copies of GeoJSON features (EPSG:4326) simplified by ``tolerance_m`` metres in EPSG:``measure_srid`` (never
    in degrees), coordinates rounded to 5 decimals (about 1 m). Without ``preserve_topology`` (Douglas-Peucker,
    three times fewer vertices on buffered roads) a polygon may self-touch: fine for drawing, not for measuring."""
    import numpy as np
    import shapely
    import shapely.geometry
    from pyproj import Transformer

    if not features:
        return []
    forward = Transformer.from_crs(4326, measure_srid, always_xy=True)
    back = Transformer.from_crs(measure_srid, 4326, always_xy=True)

    def project(transformer: Transformer):
        def apply(xy: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])
        return apply

    geoms = np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object)
    simple = shapely.simplify(shapely.transform(geoms, project(forward)), tolerance_m,
                              preserve_topology=preserve_topology)
    lonlat = shapely.set_precision(shapely.transform(simple, project(back)), 10 ** -DECIMALS)
    return [{**f, "geometry": json.loads(shapely.to_geojson(g))} for f, g in zip(features, lonlat)
            if g is not None and not g.is_empty]
