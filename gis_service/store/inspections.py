"""Boundary-marker inspections (``marker_inspections``) and what they change on their marker."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from gis_service.layers.base import Layer
from gis_service.layers.registry import DIVISIONS
from gis_service.store.boundary_parts import LINES, MARKERS, marker_townships_sql, parts_cte, parts_params
from gis_service.store.features import copy_into, restart_ids_after
from gis_service.store.tables import layer_table, marker_inspections

c = marker_inspections.c


def record_inspection(conn: sa.Connection, *, marker_id: int, inspected_on: dt.date, inspector: str,
                      condition: str, notes: str | None) -> int:
    """Store an inspection record; its id."""
    return conn.execute(sa.insert(marker_inspections).values(
        marker_id=marker_id, inspected_on=inspected_on, inspector=inspector, condition=condition, notes=notes)
        .returning(c.id)).scalar_one()


def apply_to_marker(conn: sa.Connection, markers: Layer, marker_id: int, *, inspected_on: dt.date,
                    condition: str) -> int:
    """The marker takes the inspection's condition and date, unless a later inspection is already recorded on it
    (an older inspection entered late does not overwrite a newer one's findings); its new version."""
    m = layer_table(markers).c
    newer_or_none = sa.or_(m.last_inspected.is_(None), m.last_inspected <= inspected_on)
    return conn.execute(sa.update(layer_table(markers)).where(m.id == marker_id).values(
        condition=sa.case((newer_or_none, condition), else_=m.condition),
        last_inspected=sa.func.greatest(m.last_inspected, inspected_on)).returning(m.version)).scalar_one()


def for_marker(conn: sa.Connection, marker_id: int) -> list[dict]:
    """The inspections of a marker, newest first."""
    rows = conn.execute(sa.select(c.id, c.inspected_on, c.inspector, c.condition, c.notes)
                        .where(c.marker_id == marker_id).order_by(c.inspected_on.desc(), c.id.desc()))
    return [dict(row) for row in rows.mappings()]


def latest_per_marker(conn: sa.Connection) -> dict[int, dict]:
    """The latest inspection (``inspected_on``, ``notes``) of each inspected marker, by marker id."""
    rows = conn.execute(sa.select(c.marker_id, c.inspected_on, c.notes).ext(pg.distinct_on(c.marker_id))
                        .order_by(c.marker_id, c.inspected_on.desc(), c.id.desc()))
    return {row.marker_id: {"inspected_on": row.inspected_on, "notes": row.notes} for row in rows}


def state(conn: sa.Connection) -> tuple[int, int | None]:
    """How many inspections there are and the last id: they have no data version, and maps drawn from them are
    kept until either changes."""
    count, last = conn.execute(sa.select(sa.func.count(), sa.func.max(c.id))).one()
    return count, last


COLUMNS = ("id", "marker_id", "inspected_on", "inspector", "condition", "notes")


def copy_inspections(conn: sa.Connection, inspections: pd.DataFrame) -> int:
    """COPY inspection records (the columns of :data:`COLUMNS`, ids given) in; how many."""
    data = {name: [None if (isinstance(v, float) and pd.isna(v)) else v for v in inspections[name].tolist()]
            for name in COLUMNS}
    copy_into(conn, marker_inspections, data, len(inspections))
    restart_ids_after(conn, marker_inspections)
    return len(inspections)


def markers_by_township(conn: sa.Connection, *, measure_srid: int) -> list[sa.RowMapping]:
    """Every boundary marker with its line (name, level), condition, dates, lon/lat (EPSG:4326), the county-line
    part it stands on (``part_code``) and the 9-digit codes of the townships it is patrolled from (``townships``;
    see :mod:`gis_service.store.boundary_parts`), by number."""
    return conn.execute(sa.text(f"""
        WITH {parts_cte()}, {marker_townships_sql()}
        SELECT m.id, m.number, m.line_code, l.name AS line_name, l.level AS line_level, m.condition, m.set_on,
               m.last_inspected, ST_X(ST_Transform(m.geom, 4326)) AS lon, ST_Y(ST_Transform(m.geom, 4326)) AS lat,
               max(t.part_code) AS part_code,
               array_agg(t.township_code ORDER BY t.township_code) FILTER (WHERE t.township_code IS NOT NULL)
                   AS townships
        FROM {MARKERS.name} m
        JOIN {LINES.name} l ON l.code = m.line_code
        LEFT JOIN marker_townships t ON t.marker_id = m.id
        GROUP BY m.id, l.name, l.level
        ORDER BY m.number"""), parts_params(measure_srid)).mappings().all()


def township_names(conn: sa.Connection) -> dict[str, str]:
    """The current townships' names by 9-digit code."""
    return dict(conn.execute(sa.text(
        f"SELECT left(code, 9), name FROM {DIVISIONS.table} WHERE level = 'township' "
        f"AND {DIVISIONS.current_condition}")).all())
