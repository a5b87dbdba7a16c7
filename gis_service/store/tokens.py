"""The rows of ``api_tokens``: a token's hash, role, holder and dates (never the token itself)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gis_service.store.tables import api_tokens, write_allowance

c = api_tokens.c


def insert_token(conn: sa.Connection, *, name: str, role: str, token_hash: str, expires_at: dt.datetime | None,
                 if_match_required: bool = True) -> int:
    """Store a new token's hash; its id."""
    return conn.execute(sa.insert(api_tokens).values(name=name, role=role, token_hash=token_hash,
                                                     expires_at=expires_at, if_match_required=if_match_required)
                        .returning(c.id)).scalar_one()


def list_tokens(conn: sa.Connection) -> list[dict]:
    rows = conn.execute(sa.select(c.id, c.name, c.role, c.created_at, c.expires_at, c.revoked_at, c.last_used_at,
                                  c.if_match_required)
                        .order_by(c.id))
    return [dict(row._mapping) for row in rows]


def revoke(conn: sa.Connection, token_id: int) -> bool:
    """Mark the token revoked now; False when there is no such token not already revoked."""
    return conn.execute(sa.update(api_tokens).where(c.id == token_id, c.revoked_at.is_(None))
                        .values(revoked_at=sa.func.now()).returning(c.id)).scalar() is not None


def token_exists(conn: sa.Connection, token_id: int) -> bool:
    return conn.execute(sa.select(c.id).where(c.id == token_id)).scalar() is not None


def find_by_hash(conn: sa.Connection, token_hash: str) -> sa.Row | None:
    """The token with this hash (id, name, role, revoked_at, expires_at, and ``recent``: used in the last
    minute), or None."""
    recent = c.last_used_at >= sa.func.now() - sa.text("interval '1 minute'")
    return conn.execute(sa.select(c.id, c.name, c.role, c.revoked_at, c.expires_at, c.if_match_required,
                                  recent.label("recent"))
                        .where(c.token_hash == token_hash)).one_or_none()


def mark_used(conn: sa.Connection, token_id: int) -> None:
    conn.execute(sa.update(api_tokens).where(c.id == token_id).values(last_used_at=sa.func.now()))


#: Refill since the last count, capped at a full bucket (``:burst``); ``b`` is the row as it was.
_REFILLED = "LEAST(:burst, b.writes_left + extract(epoch FROM clock_timestamp() - b.counted_at) * :per_s)"
_SPEND = sa.text(f"""
    INSERT INTO {write_allowance.name} AS b (token_id, writes_left, counted_at, allowed)
    VALUES (:token, :burst - 1, clock_timestamp(), true)
    ON CONFLICT (token_id) DO UPDATE SET
        writes_left = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END,
        counted_at = clock_timestamp(),
        allowed = {_REFILLED} >= 1
    RETURNING allowed, writes_left
""")


def spend_write(conn: sa.Connection, token_id: int, *, burst: float, per_s: float) -> tuple[bool, float]:
    """Take one write from ``token_id``'s bucket (refilled by ``per_s`` writes a second since it was last counted,
    up to ``burst``) in ``conn``'s transaction, if a whole one is left: whether it was, and what is left. One
    upsert: the row's lock orders concurrent writes of one token; the clock is the database's."""
    allowed, left = conn.execute(_SPEND, {"token": token_id, "burst": burst, "per_s": per_s}).one()
    return bool(allowed), float(left)
