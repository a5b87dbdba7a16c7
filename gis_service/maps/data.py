"""What the maps draw, read from PostGIS: GeoJSON features in EPSG:4326 (lon, lat), simplified for display.

Polygons and lines are simplified in metres in the county's Gauss-Krüger zone (``measure_srid``) with
ST_SimplifyPreserveTopology, never in degrees; coordinates keep 5 decimals (about 1 m). Roads are merged per
standard name and class, so the page holds a few thousand lines, not 17,752 segments. Identifiers in the SQL are
fixed here; every value is a bound parameter.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

#: Display tolerances in metres.
COUNTY_TOLERANCE_M = 30.0
TOWNSHIP_TOLERANCE_M = 20.0
VILLAGE_TOLERANCE_M = 15.0
ROAD_TOLERANCE_M = 8.0
LINE_TOLERANCE_M = 5.0
DECIMALS = 5

#: Chinese labels of the coded values the maps show.
LABELS_ZH: dict[str, dict[str, str]] = {
    "elder_care.kind": {"welfare_institution": "社会福利机构", "township_home": "敬老院",
                        "community_station": "社区养老服务站", "rural_happiness_home": "农村幸福院"},
    "cemeteries.kind": {"public_welfare_cemetery": "公益性公墓", "burial_point": "集中安葬点",
                        "funeral_home": "殡仪馆", "funeral_service_station": "殡葬服务站",
                        "commercial_cemetery": "经营性公墓"},
    "operator": {"government": "公办", "private": "民办", "public_private": "公建民营"},
    "status": {"existing": "现有", "planned": "规划", "closed": "已关闭"},
    "road_class": {"urban_arterial": "城市主干路", "urban_secondary": "城市次干路", "urban_branch": "城市支路",
                   "county": "县道", "township": "乡道", "village": "村道", "path": "小路"},
    "condition": {"intact": "完好", "damaged": "损坏", "missing": "缺失", "displaced": "移位"},
    "line_level": {"county": "县级界线", "township": "乡级界线"},
    "line_status": {"agreed": "已勘定", "disputed": "有争议", "under_survey": "勘界中"},
    "material": {"granite": "花岗岩", "concrete": "混凝土", "steel": "钢质", "plastic": "塑料"},
    "mode": {"walk": "步行", "cycle": "骑行", "drive": "驾车"},
    "facility_layer": {"elder_care": "养老服务设施", "community_centres": "城乡社区综合服务设施",
                       "cemeteries": "殡葬设施"},
}


def label_zh(group: str, value: object) -> str:
    """The Chinese label of a coded value (the value itself when there is none)."""
    if value is None:
        return ""
    return LABELS_ZH.get(group, {}).get(str(value), str(value))


def _features(conn: sa.Connection, sql: str, params: dict) -> list[dict]:
    """Rows with a ``geojson`` column become features: ``{"id", "geometry", "properties"}``."""
    features = []
    for row in conn.execute(sa.text(sql), params).mappings():
        props = {k: v for k, v in row.items() if k not in ("geojson", "fid")}
        features.append({"type": "Feature", "id": row["fid"], "geometry": json.loads(row["geojson"]),
                         "properties": props})
    return features


def _in_county(county: str | None, *, code: str | None = None, geom: str = "geom") -> str:
    """SQL condition: in ``county`` (6 digits; bound as ``:county``): by a statistical ``code`` column (the county's
    six digits first), or for what has none by lying in the county's bounding box (the GiST index serves it: what
    a map of the county shows); TRUE for every county."""
    if county is None:
        return "TRUE"
    if code is not None:
        return f"left({code}, 6) = :county"
    return (f"{geom} && (SELECT c.geom FROM admin_divisions c WHERE c.code = :county || '000000' "
            f"AND c.valid_to IS NULL AND c.level = 'county')")


def _display(column: str, tolerance_param: str) -> str:
    """SQL: ``column`` simplified by ``:tolerance_param`` metres in EPSG:``:srid``, as GeoJSON in EPSG:4326."""
    return (f"ST_AsGeoJSON(ST_Transform(ST_SimplifyPreserveTopology(ST_Transform({column}, :srid), "
            f":{tolerance_param}), 4326), {DECIMALS}) AS geojson")


def divisions(conn: sa.Connection, *, level: str, measure_srid: int, county: str | None = None) -> list[dict]:
    """Current divisions of ``level`` (county, township or village; of ``county`` when given), simplified for
    display."""
    tolerance = {"county": COUNTY_TOLERANCE_M, "township": TOWNSHIP_TOLERANCE_M,
                 "village": VILLAGE_TOLERANCE_M}[level]
    return _features(conn, f"""
        SELECT code AS fid, code, name, kind, parent_code, households, population, urban_rural,
               {_display('geom', 'tol')}
        FROM admin_divisions WHERE valid_to IS NULL AND level = :level AND {_in_county(county, code='code')}
        ORDER BY code""", {"level": level, "srid": measure_srid, "tol": tolerance, "county": county})


def roads(conn: sa.Connection, *, measure_srid: int, county: str | None = None) -> list[dict]:
    """Roads merged per (standard name, class): one feature per named road, lengths in metres. Paths (小路) are
    merged per class into one feature: thousands of short named tracks would make the page slow to draw."""
    return _features(conn, f"""
        WITH merged AS (
            SELECT CASE WHEN road_class = 'path' THEN NULL ELSE name END AS name, road_class,
                   sum(length_m) AS length_m, count(*) AS segments, ST_LineMerge(ST_Collect(geom)) AS geom
            FROM roads WHERE {_in_county(county)} GROUP BY 1, road_class)
        SELECT row_number() OVER (ORDER BY road_class, name) AS fid, name, road_class,
               round(length_m::numeric)::float AS length_m, segments, {_display('geom', 'tol')}
        FROM merged ORDER BY road_class, name""", {"srid": measure_srid, "tol": ROAD_TOLERANCE_M, "county": county})


def settlements(conn: sa.Connection, county: str | None = None) -> list[dict]:
    """Every settlement (of ``county``): name, households, population, village and township codes."""
    return _features(conn, f"""
        SELECT s.id AS fid, s.id, s.name, s.households, s.population, s.village_code,
               v.name AS village_name, v.parent_code AS township_code,
               ST_AsGeoJSON(ST_Transform(s.geom, 4326), {DECIMALS}) AS geojson
        FROM settlements s LEFT JOIN admin_divisions v ON v.code = s.village_code AND v.valid_to IS NULL
        WHERE {_in_county(county, code='s.village_code')} ORDER BY s.id""", {"county": county})


def elder_care(conn: sa.Connection, county: str | None = None) -> list[dict]:
    return _features(conn, f"""
        SELECT id AS fid, id, name, kind, beds, nursing_beds, operator, comprehensive, rating, status,
               ST_AsGeoJSON(ST_Transform(geom, 4326), {DECIMALS}) AS geojson
        FROM elder_care WHERE status <> 'closed' AND {_in_county(county)} ORDER BY id""", {"county": county})


def cemeteries(conn: sa.Connection, county: str | None = None) -> list[dict]:
    return _features(conn, f"""
        SELECT id AS fid, id, name, kind, urban_rural, public_welfare, capacity, graves_used, status,
               ST_AsGeoJSON(ST_Transform(geom, 4326), {DECIMALS}) AS geojson
        FROM cemeteries WHERE status <> 'closed' AND {_in_county(county)} ORDER BY id""", {"county": county})


def community_centres(conn: sa.Connection, county: str | None = None) -> list[dict]:
    return _features(conn, f"""
        SELECT c.id AS fid, c.id, c.name, c.floor_area_m2, c.volunteer_point, c.minor_protection_station,
               c.division_code, v.name AS division_name, c.status,
               ST_AsGeoJSON(ST_Transform(c.geom, 4326), {DECIMALS}) AS geojson
        FROM community_centres c
        LEFT JOIN admin_divisions v ON v.code = c.division_code AND v.valid_to IS NULL
        WHERE c.status <> 'closed' AND {_in_county(county, geom='c.geom')} ORDER BY c.id""", {"county": county})


def boundary_lines(conn: sa.Connection, *, measure_srid: int, county: str | None = None) -> list[dict]:
    """Boundary lines with their marker counts and the latest inspection of any of their markers."""
    return _features(conn, f"""
        SELECT l.code AS fid, l.code, l.name, l.level, l.left_name, l.right_name, round(l.length_m)::float AS length_m,
               l.status, l.last_inspected,
               (SELECT count(*) FROM boundary_markers m WHERE m.line_code = l.code) AS markers,
               {_display('l.geom', 'tol')}
        FROM boundary_lines l WHERE {_in_county(county, geom='l.geom')} ORDER BY l.level, l.code""",
                     {"srid": measure_srid, "tol": LINE_TOLERANCE_M, "county": county})


def boundary_markers(conn: sa.Connection, county: str | None = None) -> list[dict]:
    """Boundary markers with their condition and their last inspection (date, notes). Not the inspector: the
    maps are open to anyone (and their files are passed around), and staff names are read with a token
    (GET .../inspections)."""
    return _features(conn, f"""
        SELECT m.id AS fid, m.number, m.marker_type, m.line_code, m.material, m.set_on, m.condition,
               coalesce(i.inspected_on, m.last_inspected) AS last_inspected, i.notes,
               ST_AsGeoJSON(ST_Transform(m.geom, 4326), 6) AS geojson
        FROM boundary_markers m
        LEFT JOIN LATERAL (SELECT inspected_on, notes FROM marker_inspections mi
                           WHERE mi.marker_id = m.id ORDER BY inspected_on DESC, id DESC LIMIT 1) i ON true
        WHERE {_in_county(county, geom='m.geom')} ORDER BY m.number""", {"county": county})


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
