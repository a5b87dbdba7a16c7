"""The parts of the county lines that bound each township (县级界线的乡镇段), and which township each marker is
patrolled from.

A county line (秀山—酉阳, 85 km) runs along several townships; the inspectors of one township patrol only the part
along their township. A part is the stretch of a county line within :data:`PART_TOLERANCE_M` of a township's
polygon, so it ends where the township boundaries meet the county line (the tri-junctions); its code is
``<county line code>/<9-digit township code>`` (``500241-500242/500241104``), its name the line's name with the
township's (``秀山—酉阳县级界线（溶溪镇段）``), its length measured in the county's Gauss-Krüger zone. A township
touching a county line for less than :data:`MIN_PART_M` (a corner) has no part of it.

**Computed when asked, not stored.** A part follows from two stored geometries, the county line and the current
township polygon, and the divisions change (2021: 清溪场街道 and 龙凤坝镇 replaced three units), so stored parts
would go stale with the next boundary change unless every division edit recomputed them; the county line stays the
statutory object (agreed by both counties, its markers numbered on it: ``500241-500242-012Q`` is cut in the stone),
so parts as rows of ``boundary_lines`` would count every kilometre twice in any total.
Computing all parts of the county takes about 0.1 s.

Markers: a marker on a township line is patrolled from both townships; a marker on a county line from the township
whose part is nearest to it (ties: the lower township code). :func:`marker_townships_sql` gives that for every
marker, for the township packages and for the inspections due.
"""

from __future__ import annotations

from gis_service.layers.registry import DIVISIONS, get_layer
from gis_service.store.tables import layer_table

LINES, MARKERS = layer_table(get_layer("boundary_lines")), layer_table(get_layer("boundary_markers"))

_CURRENT = DIVISIONS.current_condition
#: Metres a county line may lie from a township's polygon and still bound it (the demo's township polygons are cut
#: from the county outline, so they agree to the millimetre; surveyed data agrees within this).
PART_TOLERANCE_M = 1.0
#: A stretch shorter than this is a corner touched, not a part of the line.
MIN_PART_M = 10.0


def parts_cte() -> str:
    """SQL ``WITH`` items (no leading WITH) defining ``county_line_parts``: one row per part of every county line,
    columns ``code``, ``line_code``, ``township_code`` (9 digits), ``township_name``, ``geom_m`` (MultiLineString in
    EPSG:``:srid``) and ``length_m``; parameters from :func:`parts_params`."""
    return f"""
    part_lines AS (
        SELECT code, ST_Transform(geom, :srid) AS g FROM {LINES.name} WHERE level = 'county'),
    part_townships AS (
        SELECT left(d.code, 9) AS code9, d.name, ST_Buffer(ST_Transform(d.geom, :srid), :part_tolerance_m) AS area
        FROM {DIVISIONS.table} d WHERE d.level = 'township' AND d.{_CURRENT}),
    part_pieces AS (
        SELECT l.code AS line_code, t.code9 AS township_code, t.name AS township_name,
               ST_Multi(ST_LineMerge(ST_CollectionExtract(ST_Intersection(l.g, t.area), 2))) AS geom_m
        FROM part_lines l JOIN part_townships t ON ST_Intersects(l.g, t.area)),
    county_line_parts AS (
        SELECT line_code || '/' || township_code AS code, line_code, township_code, township_name, geom_m,
               ST_Length(geom_m) AS length_m
        FROM part_pieces WHERE ST_Length(geom_m) > :min_part_m)"""


def parts_params(measure_srid: int) -> dict:
    return {"srid": measure_srid, "part_tolerance_m": PART_TOLERANCE_M, "min_part_m": MIN_PART_M}


def marker_townships_sql() -> str:
    """SQL ``WITH`` items (after :func:`parts_cte`, which must see every township) defining ``marker_townships``:
    per marker (``marker_id``) each township it is patrolled from (``township_code``, 9 digits) and, on a county
    line, the part it belongs to (``part_code``; NULL on a township line)."""
    return f"""
    marker_parts AS (
        SELECT DISTINCT ON (m.id) m.id AS marker_id, p.township_code, p.code AS part_code
        FROM {MARKERS.name} m JOIN county_line_parts p ON p.line_code = m.line_code
        ORDER BY m.id, ST_Distance(ST_Transform(m.geom, :srid), p.geom_m), p.township_code),
    marker_townships AS (
        SELECT marker_id, township_code, part_code FROM marker_parts
        UNION ALL
        SELECT m.id, side.code, NULL
        FROM {MARKERS.name} m JOIN {LINES.name} l ON l.code = m.line_code AND l.level = 'township'
        CROSS JOIN LATERAL (VALUES (l.left_code), (l.right_code)) AS side(code))"""
