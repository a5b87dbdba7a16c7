"""The reads behind the exports: the boundary field package (lines of a selection and their markers) and the
gazetteer in the national order. Their statements join and select as only these exports do, so they are written
as SQL text; identifiers come from the tables, values are bound."""

from __future__ import annotations

import geopandas as gpd
import sqlalchemy as sa

from gis_service.layers import get_layer
from gis_service.layers.registry import DIVISIONS, GAZETTEER
from gis_service.settings import STORAGE_SRID
from gis_service.store.tables import layer_table, marker_inspections

LINES, MARKERS = layer_table(get_layer("boundary_lines")), layer_table(get_layer("boundary_markers"))


def _lines_condition(*, line: str | None, township: str | None, neighbour: str | None) -> tuple[str, dict]:
    """SQL condition on boundary lines (alias l) for exactly one of a line code, a township code or a neighbouring
    county's code, and its parameters. A county line belongs to a township when they share more than
    ``:min_m`` metres of border."""
    if line:
        return "l.code = :code", {"code": line}
    if neighbour:
        return "l.level = 'county' AND (l.right_code = :code OR l.left_code = :code)", {"code": neighbour}
    code12 = township.ljust(12, "0")
    return (
        "((l.level = 'township' AND (l.left_code = :code9 OR l.right_code = :code9)) OR "
        f" (l.level = 'county' AND EXISTS (SELECT 1 FROM {DIVISIONS.table} t WHERE t.code = :code12 "
        f"   AND t.{DIVISIONS.validity[1]} IS NULL AND t.geom && l.geom AND ST_Length(ST_Transform(ST_Intersection("
        "   ST_Boundary(t.geom), ST_Buffer(l.geom, 0.00001)), :measure_srid)) > :min_m)))",
        {"code9": code12[:9], "code12": code12},
    )


def selected_lines(conn: sa.Connection, *, line: str | None, township: str | None, neighbour: str | None,
                   measure_srid: int, township_border_min_m: float) -> gpd.GeoDataFrame:
    """The boundary lines of a selection (see :func:`_lines_condition`), lengths to 0.1 m, in EPSG:4490."""
    condition, params = _lines_condition(line=line, township=township, neighbour=neighbour)
    return gpd.read_postgis(sa.text(
        "SELECT l.code, l.name, l.level, l.left_code, l.left_name, l.right_code, l.right_name, "
        "round(l.length_m::numeric, 1)::float AS length_m, l.status, l.last_inspected, l.geom "
        f"FROM {LINES.name} l WHERE {condition} ORDER BY l.code"), conn, geom_col="geom",
        params={**params, "measure_srid": measure_srid, "min_m": township_border_min_m}, crs=STORAGE_SRID)


def markers_of_lines(conn: sa.Connection, codes: list[str]) -> gpd.GeoDataFrame:
    """The markers of the lines ``codes``, with the notes of each one's latest inspection, in EPSG:4490."""
    return gpd.read_postgis(sa.text(
        "SELECT m.number, m.marker_type, m.line_code, m.material, m.set_on, m.condition, m.last_inspected, "
        f"(SELECT i.notes FROM {marker_inspections.name} i WHERE i.marker_id = m.id "
        " ORDER BY i.inspected_on DESC, i.id DESC LIMIT 1) AS last_notes, m.geom "
        f"FROM {MARKERS.name} m WHERE m.line_code = ANY(:codes) ORDER BY m.number"),
        conn, geom_col="geom", params={"codes": codes}, crs=STORAGE_SRID)


def county_neighbours(conn: sa.Connection) -> list[str]:
    """``code name`` of every county the county lines border."""
    return conn.execute(sa.text(
        f"SELECT DISTINCT right_code || ' ' || right_name FROM {LINES.name} WHERE level = 'county' "
        "ORDER BY 1")).scalars().all()


def gazetteer_rows(conn: sa.Connection) -> sa.CursorResult:
    """Every place name (current, historical and cancelled), with its spelling (the office's where set), the
    division written out from the county down (秀山土家族苗族自治县石堤镇高桥村, from its code), the names it
    replaced, and lon/lat in EPSG:4326; ordered by division, category and name."""
    current = DIVISIONS.current_condition
    return conn.execute(sa.text(f"""
        SELECT p.id, p.name, coalesce(p.pinyin_manual, p.pinyin) AS spelling, p.category, p.division_code,
               p.meaning, p.origin, p.history, p.status, p.heritage_listed,
               concat_ws('', c.name, t.name, v.name) AS division,
               (SELECT string_agg(f.name, '；' ORDER BY f.id) FROM {GAZETTEER.table} f
                WHERE f.successor_id = p.id) AS former_names,
               ST_X(ST_Transform(p.geom, 4326)) AS lon, ST_Y(ST_Transform(p.geom, 4326)) AS lat
        FROM {GAZETTEER.table} p
        LEFT JOIN {DIVISIONS.table} c ON c.code = left(p.division_code, 6) || '000000' AND c.{current}
        LEFT JOIN {DIVISIONS.table} t ON t.code = left(p.division_code, 9) || '000' AND t.code <> c.code
                                     AND t.{current}
        LEFT JOIN {DIVISIONS.table} v ON v.code = p.division_code AND v.code <> left(p.division_code, 9) || '000'
                                     AND v.{current}
        ORDER BY p.division_code NULLS LAST, p.category, p.name, p.id"""))
