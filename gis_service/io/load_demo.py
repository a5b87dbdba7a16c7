"""Putting the demo county (or any set of layer frames) into an empty database, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import sqlalchemy as sa

from gis_service.errors import InvalidInputError
from gis_service.io.layers_io import write_frame
from gis_service.layers import LAYERS
from gis_service.store import features, inspections
from gis_service.store.features import RowCallback
from gis_service.store.tables import marker_inspections

#: Tables cleared by a replace, besides the layers.
SIDE_TABLES = (marker_inspections,)


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
            features.clear(conn, SIDE_TABLES)
        elif not features.database_is_empty(conn):
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
        records = frames.get("marker_inspections")
        if records is not None and len(records):
            if on_step:
                on_step("marker_inspections", len(records))
            written["marker_inspections"] = inspections.copy_inspections(conn, records)
            if on_rows:
                on_rows(len(records))
        features.analyze(conn, [LAYERS[name].table if name in LAYERS else name for name in written])
    return written
