"""Putting the demo county (or any set of layer frames) into an empty database, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import sqlalchemy as sa

from gis_service.errors import InvalidInputError
from gis_service.io.store import RowCallback, write_frame
from gis_service.layers import LAYERS

#: Tables cleared by a replace, besides the layers.
SIDE_TABLES = ("marker_inspections",)


def database_is_empty(conn: sa.Connection) -> bool:
    return all(conn.execute(sa.text(f"SELECT NOT EXISTS (SELECT 1 FROM {layer.table})")).scalar()
               for layer in LAYERS.values())


def layer_counts(conn: sa.Connection) -> dict[str, int]:
    """Features per layer, counting current features only where a layer keeps history."""
    counts = {}
    for layer in LAYERS.values():
        where = f" WHERE {layer.current_condition}" if layer.current_condition else ""
        counts[layer.id] = conn.execute(sa.text(f"SELECT count(*) FROM {layer.table}{where}")).scalar_one()
    return counts


def load_frames(engine: sa.Engine, frames: Mapping[str, pd.DataFrame], *, county_code: str, measure_srid: int,
                replace: bool = False, on_step: Callable[[str, int], None] | None = None,
                on_rows: RowCallback | None = None) -> dict[str, int]:
    """Check and write every layer in ``frames`` (keys: layer ids, plus ``marker_inspections``).

    All or nothing: one transaction. Refuses a database that already holds data unless ``replace``.
    Returns the rows written per table.
    """
    written: dict[str, int] = {}
    with engine.begin() as conn:
        if replace:
            tables = ", ".join([layer.table for layer in LAYERS.values()] + list(SIDE_TABLES))
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        elif not database_is_empty(conn):
            raise InvalidInputError("the database already holds data; load the demo with --replace to clear it first")
        for layer in LAYERS.values():
            frame = frames.get(layer.id)
            if frame is None:
                continue
            if on_step:
                on_step(layer.id, len(frame))
            result = write_frame(conn, layer, frame, county_code=county_code, measure_srid=measure_srid,
                                 on_rows=on_rows)
            written[layer.id] = result.rows_written
        inspections = frames.get("marker_inspections")
        if inspections is not None and len(inspections):
            if on_step:
                on_step("marker_inspections", len(inspections))
            written["marker_inspections"] = _copy_inspections(conn, inspections)
            if on_rows:
                on_rows(len(inspections))
        # fresh statistics, so that the first queries after a bulk load get good plans
        for table in written:
            conn.execute(sa.text(f"ANALYZE {table}"))
    return written


def _copy_inspections(conn: sa.Connection, inspections: pd.DataFrame) -> int:
    columns = ["id", "marker_id", "inspected_on", "inspector", "condition", "notes"]
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY marker_inspections ({', '.join(columns)}) FROM STDIN") as copy:
        for row in inspections[columns].itertuples(index=False):
            copy.write_row([None if (isinstance(v, float) and pd.isna(v)) else v for v in row])
    conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('marker_inspections', 'id'), "
                         "(SELECT coalesce(max(id), 1) FROM marker_inspections))"))
    return len(inspections)
