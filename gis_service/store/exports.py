"""The reads behind the exports: the boundary field package (lines of a selection and their markers) and the
gazetteer in the national order. Their statements join and select as only these exports do, so they are written
as SQL text; identifiers come from the tables, values are bound."""

from __future__ import annotations

import geopandas as gpd
import sqlalchemy as sa

from gis_service.layers.registry import DIVISIONS, GAZETTEER
from gis_service.settings import STORAGE_SRID
from gis_service.store.boundary_parts import LINES, MARKERS, marker_townships_sql, parts_cte, parts_params
from gis_service.store.tables import marker_inspections


def _lines_condition(*, line: str | None, neighbour: str | None) -> tuple[str, dict]:
    """SQL condition on boundary lines (alias l) for a line code or a neighbouring county's code, and its
    parameters."""
    if line:
        return "l.code = :code", {"code": line}
    return "l.level = 'county' AND (l.right_code = :code OR l.left_code = :code)", {"code": neighbour}


_LINE_COLUMNS = ("l.code, l.name, l.level, l.left_code, l.left_name, l.right_code, l.right_name, "
                 "round(l.length_m::numeric, 1)::float AS length_m, l.status, l.last_inspected")
_LAST_NOTES = (f"(SELECT i.notes FROM {marker_inspections.name} i WHERE i.marker_id = m.id "
               "ORDER BY i.inspected_on DESC, i.id DESC LIMIT 1) AS last_notes")


def selected_lines(conn: sa.Connection, *, line: str | None, neighbour: str | None) -> gpd.GeoDataFrame:
    """One line (by code) or the county lines shared with a neighbouring county, whole, lengths to 0.1 m, in
    EPSG:4490."""
    condition, params = _lines_condition(line=line, neighbour=neighbour)
    return gpd.read_postgis(sa.text(
        f"SELECT {_LINE_COLUMNS}, l.geom FROM {LINES.name} l WHERE {condition} ORDER BY l.code"), conn,
        geom_col="geom", params=params, crs=STORAGE_SRID)


def township_lines(conn: sa.Connection, code9: str, *, measure_srid: int) -> gpd.GeoDataFrame:
    """A township's lines (EPSG:4490): its township lines whole, and the parts of the county lines that bound it
    (:mod:`.boundary_parts`; ``part_of`` names the county line, the name says the township's 段)."""
    return gpd.read_postgis(sa.text(f"""
        WITH {parts_cte()}
        SELECT {_LINE_COLUMNS}, NULL::text AS part_of, l.geom
        FROM {LINES.name} l WHERE l.level = 'township' AND (l.left_code = :code9 OR l.right_code = :code9)
        UNION ALL
        SELECT p.code, l.name || '（' || p.township_name || '段）', l.level, l.left_code, l.left_name, l.right_code,
               l.right_name, round(p.length_m::numeric, 1)::float, l.status, l.last_inspected, l.code,
               ST_Transform(p.geom_m, {STORAGE_SRID})
        FROM county_line_parts p JOIN {LINES.name} l ON l.code = p.line_code WHERE p.township_code = :code9
        ORDER BY 1"""), conn, geom_col="geom", params={**parts_params(measure_srid), "code9": code9},
        crs=STORAGE_SRID)


def township_markers(conn: sa.Connection, code9: str, *, measure_srid: int) -> gpd.GeoDataFrame:
    """The markers patrolled from a township (on its township lines and its parts of county lines), each with
    the ``part_code`` of the county-line part it stands on, and its latest inspection's notes, in EPSG:4490."""
    return gpd.read_postgis(sa.text(f"""
        WITH {parts_cte()}, {marker_townships_sql()}
        SELECT m.number, m.marker_type, m.line_code, t.part_code, m.material, m.set_on, m.condition,
               m.last_inspected, {_LAST_NOTES}, m.geom
        FROM {MARKERS.name} m JOIN marker_townships t ON t.marker_id = m.id AND t.township_code = :code9
        ORDER BY m.number"""), conn, geom_col="geom", params={**parts_params(measure_srid), "code9": code9},
        crs=STORAGE_SRID)


def markers_of_lines(conn: sa.Connection, codes: list[str]) -> gpd.GeoDataFrame:
    """The markers of the lines ``codes``, with the notes of each one's latest inspection, in EPSG:4490."""
    return gpd.read_postgis(sa.text(
        "SELECT m.number, m.marker_type, m.line_code, m.material, m.set_on, m.condition, m.last_inspected, "
        f"{_LAST_NOTES}, m.geom FROM {MARKERS.name} m WHERE m.line_code = ANY(:codes) ORDER BY m.number"),
        conn, geom_col="geom", params={"codes": codes}, crs=STORAGE_SRID)


def county_neighbours(conn: sa.Connection) -> list[str]:
    """``code name`` of every county the county lines border."""
    return conn.execute(sa.text(
        f"SELECT DISTINCT right_code || ' ' || right_name FROM {LINES.name} WHERE level = 'county' "
        "ORDER BY 1")).scalars().all()


def gazetteer_rows(conn: sa.Connection, ids: list[int] | None = None) -> sa.CursorResult:
    """Every place name (current, historical and cancelled), or those of ``ids``, with its spelling (the office's
    where set), the division written out from the county down (秀山土家族苗族自治县石堤镇高桥村, from its code), the
    names it replaced, and lon/lat in EPSG:4326; ordered by division, category and name."""
    current = DIVISIONS.current_condition
    chosen = "" if ids is None else "WHERE p.id = ANY(CAST(:ids AS bigint[]))"
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
        {chosen}
        ORDER BY p.division_code NULLS LAST, p.category, p.name, p.id"""), {"ids": list(ids or ())})
