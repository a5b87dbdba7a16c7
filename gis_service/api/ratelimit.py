"""Writes per token are limited (a token bucket per token, kept in PostgreSQL): a runaway script with an editor's
token cannot flood the audit trail or starve the other editors. Reads are not limited here.

The bucket lives in the ``write_allowance`` table rather than in each process, so that ``serve --workers N`` (or N
API hosts) allow the rate once, not N times. Counting a write is one statement (an upsert that refills the bucket
for the time since it was last counted and takes one write if a whole one is left), run in the write's own
transaction: the row's lock orders concurrent writes of one token, and a write that fails (a 422, a 412) gives
its allowance back with everything else it did. The clock is the database's (``clock_timestamp()``), the one
clock every worker and host shares.
"""

from __future__ import annotations

import sqlalchemy as sa

from gis_service.errors import TooManyWrites
from gis_service.store.tokens import spend_write


class WriteRateLimiter:
    """Up to ``per_minute`` writes per token in any minute, in bursts of at most ``per_minute``; refilled
    continuously. ``per_minute=0`` turns the limit off."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute

    def spend(self, conn: sa.Connection, token_id: int) -> None:
        """Count one write by ``token_id`` in ``conn``'s transaction; TooManyWrites (429, with Retry-After) when
        its bucket holds less than one write."""
        if self.per_minute <= 0:
            return
        per_s = self.per_minute / 60
        allowed, left = spend_write(conn, token_id, burst=float(self.per_minute), per_s=per_s)
        if not allowed:
            raise TooManyWrites(self.per_minute, (1 - left) / per_s)
