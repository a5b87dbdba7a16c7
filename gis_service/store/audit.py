"""The audit trail: every accepted change, written in the same transaction as the change, and a feature's history.

``audit_log`` is append-only for the service role once sealed (:mod:`gis_service.db.roles`): rows are inserted and
read here, never changed.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from gis_service.store.tables import audit_log


def name_the_writer(conn: sa.Connection, name: str) -> None:
    """Name the person in the transaction (the setting ``gis.user``), for the database's own change logs
    (place_name_events)."""
    conn.execute(sa.select(sa.func.set_config("gis.user", name, True)))


def record_change(conn: sa.Connection, *, token_id: int, actor: str, role: str, layer_id: str, feature_id: int,
                  action: str, version: int | None, before: dict | None, after: dict | None,
                  request_id: str | None) -> None:
    """One row of the audit trail: who changed which feature how, and the feature before and after."""
    conn.execute(sa.insert(audit_log).values(
        token_id=token_id, actor=actor, role=role, layer=layer_id, feature_id=feature_id, action=action,
        version=version, before=_jsonb(before), after=_jsonb(after), request_id=request_id))


def _jsonb(value: dict | None) -> sa.ColumnElement | None:
    if value is None:
        return None
    return sa.cast(sa.literal(json.dumps(value, ensure_ascii=False, default=str), sa.Text), pg.JSONB)


def feature_history(conn: sa.Connection, layer_id: str, feature_id: int) -> list[dict]:
    """Every recorded change of a feature, oldest first (``changed_at`` as a datetime)."""
    c = audit_log.c
    rows = conn.execute(sa.select(c.id, c.changed_at, c.actor, c.role, c.action, c.version, c.before, c.after,
                                  c.request_id).where(c.layer == layer_id, c.feature_id == feature_id)
                        .order_by(c.id))
    return [dict(row._mapping) for row in rows]
