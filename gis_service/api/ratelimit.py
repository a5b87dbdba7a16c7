"""Writes per token are limited (a token bucket per token, in this process): a runaway script with an editor's
token cannot flood the audit trail or starve the other editors. Reads are not limited here."""

from __future__ import annotations

import threading
import time

from gis_service.errors import TooManyWrites


class WriteRateLimiter:
    """Up to ``per_minute`` writes per token in any minute, in bursts of at most ``per_minute``; refilled
    continuously. ``per_minute=0`` turns the limit off. With several worker processes each keeps its own count."""

    def __init__(self, per_minute: int, *, clock=time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # token id -> (tokens left, when counted)
        self._lock = threading.Lock()

    def spend(self, token_id: int) -> None:
        """Count one write by ``token_id``; TooManyWrites (429, with Retry-After) when its bucket is empty."""
        if self.per_minute <= 0:
            return
        rate_per_s = self.per_minute / 60
        now = self._clock()
        with self._lock:
            left, then = self._buckets.get(token_id, (float(self.per_minute), now))
            left = min(float(self.per_minute), left + (now - then) * rate_per_s)
            if left < 1:
                self._buckets[token_id] = (left, now)
                raise TooManyWrites(self.per_minute, (1 - left) / rate_per_s)
            self._buckets[token_id] = (left - 1, now)
