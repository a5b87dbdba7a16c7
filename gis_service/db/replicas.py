"""Reads from hot standbys: PostgreSQL's own streaming replication, the service only choosing where to read.

``GIS_DATABASE_READ_URLS`` lists standbys (made with ``pg_basebackup -R``: :func:`create_standby`,
``gis-service db replica create``). :class:`ReadRouter` sends a read to the primary or to a standby, taking turns,
and skips a standby that is down or has not caught up with the primary for more than ``GIS_REPLICA_MAX_LAG_S``.

How the lag is known: a thread samples the primary's WAL position every :data:`CHECK_EVERY_S` and each standby's
replayed position; a standby is as old as the newest primary sample it has replayed (so the lag of an idle pair is
0, and of a busy pair the time its replay trails by, at the resolution of the samples). A standby that does not
answer is down until it answers again.

What must see a write reads from the primary:

- the write itself, its answer and the ``If-Match`` check (a write's session is the primary's);
- the reads listed in :data:`PRIMARY_READS` (a feature and its ETag, read to be changed; histories, inspections
  and change logs, read after a change);
- every read of this host, after a write made through it, until the standbys have replayed past that write: each
  commit notes the time (in this process and in a file every worker of the host sees, ``DATA_DIR/last-write``),
  and a standby is used again only once a sample taken after it shows the standby caught up. So a client reads its
  own change at once through the host it wrote through (behind a proxy, ``ip_hash`` keeps a client on one host);
  a change made through another host is seen within ``GIS_REPLICA_MAX_LAG_S``.

A read sent to a standby that fails because the standby went away (killed, stopped, unreachable) is sent again to
the primary (:class:`RetryOnPrimary`, and the fast reads' runner), so stopping a standby loses no request.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

log = logging.getLogger("gis_service.replicas")

#: Seconds between two samples of the primary's and the standbys' WAL positions.
CHECK_EVERY_S = 0.25
#: A standby's status check gives up after this long (an unreachable host must not stall the samples).
CHECK_TIMEOUT_S = 2
#: Reads of a feature, and of what is read after a change, by route: from the primary.
PRIMARY_READS = frozenset({
    "/collections/{collectionId}/items/{featureId}",
    "/collections/{collectionId}/items/{featureId}/history",
    "/collections/boundary_markers/items/{featureId}/inspections",
    "/placenames/{place_name_id}/changes",
    "/health",
})


def standby_name(url: str) -> str:
    """How a standby is named in logs and /health: host (or socket folder), port and database; never a password."""
    parts = make_url(url)
    host = parts.host or parts.query.get("host") or "localhost"
    return f"{host if isinstance(host, str) else host[-1]}:{parts.port or parts.query.get('port') or 5432}/" \
           f"{parts.database}"


def lsn_number(text: str) -> int:
    """A WAL position (``16/B374D848``) as a number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class Standby:
    """One standby: its engine and what the last samples said."""

    name: str
    engine: sa.Engine
    up: bool = False
    #: When the newest primary sample this standby had replayed was taken (time.time()), None before any.
    caught_up_at: float | None = None
    reads: int = 0
    error: str | None = None

    def lag_s(self, now: float) -> float | None:
        return None if self.caught_up_at is None else max(0.0, now - self.caught_up_at)


@dataclass
class ReadRouter:
    """Chooses the engine of each read (see the module docstring). With no standbys every read is the primary's."""

    primary: sa.Engine
    standbys: list[Standby] = field(default_factory=list)
    max_lag_s: float = 5.0
    #: A file every worker of the host touches after a write (its change time is the write's).
    fence_file: Path | None = None
    primary_reads: int = 0
    _last_write: float = 0.0
    _turn: itertools.count = field(default_factory=itertools.count)
    _samples: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_urls(cls, primary: sa.Engine, urls: tuple[str, ...], *, max_lag_s: float, fence_file: Path | None,
                  engine_factory) -> ReadRouter:
        standbys = [Standby(standby_name(url), engine_factory(url)) for url in urls]
        return cls(primary, standbys, max_lag_s=max_lag_s, fence_file=fence_file)

    # -- choosing --------------------------------------------------------------------------------------------
    def last_write(self) -> float:
        """When this host last wrote (time.time())."""
        written = self._last_write
        if self.fence_file is not None:
            with contextlib.suppress(OSError):
                written = max(written, self.fence_file.stat().st_mtime)
        return written

    def usable(self, now: float | None = None) -> list[Standby]:
        """The standbys a read may go to now: up, not lagging beyond the limit, past this host's last write."""
        if not self.standbys:
            return []
        now = time.time() if now is None else now
        written = self.last_write()
        return [s for s in self.standbys if s.up and s.caught_up_at is not None
                and now - s.caught_up_at <= self.max_lag_s and s.caught_up_at > written]

    def engine_for_read(self) -> tuple[sa.Engine, Standby | None]:
        """The engine of the next read (the primary and the usable standbys in turn), and the standby it is."""
        choices = [None, *self.usable()]
        standby = choices[next(self._turn) % len(choices)]
        if standby is None:
            self.primary_reads += 1
            return self.primary, None
        standby.reads += 1
        return standby.engine, standby

    def mark_down(self, standby: Standby, reason: str) -> None:
        """Take ``standby`` out of the turns until a sample finds it up again."""
        if standby.up:
            log.warning("standby %s is not used for reads until it answers again: %s", standby.name, reason)
        standby.up = False
        standby.error = reason

    def note_write(self) -> None:
        """A write was committed through this host: its reads go to the primary until the standbys replayed it."""
        if not self.standbys:
            return
        self._last_write = time.time()
        if self.fence_file is not None:
            with contextlib.suppress(OSError):
                self.fence_file.touch()

    # -- sampling --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start sampling (a daemon thread); nothing to do without standbys."""
        if self.standbys and self._thread is None:
            self.sample()
            self._thread = threading.Thread(target=self._run, name="replica-check", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CHECK_TIMEOUT_S * 2)
        for standby in self.standbys:
            standby.engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            try:
                self.sample()
            except Exception:  # sampling must go on; the next one will say what is wrong
                log.exception("sampling the standbys failed")

    def sample(self) -> None:
        """One sample: the primary's WAL position now, then each standby's replayed position."""
        taken = time.time()
        try:
            with self.primary.connect() as conn:
                position = lsn_number(conn.execute(sa.text("SELECT pg_current_wal_lsn()::text")).scalar())
            self._samples.append((taken, position))
        except sa.exc.DBAPIError:
            pass  # the primary is away: the standbys' replay is measured against the samples already taken
        horizon = taken - 2 * max(self.max_lag_s, 1.0)
        while self._samples and self._samples[0][0] < horizon and len(self._samples) > 1:
            self._samples.popleft()
        for standby in self.standbys:
            try:
                with standby.engine.connect() as conn:
                    in_recovery, replayed = conn.execute(sa.text(
                        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")).one()
            except sa.exc.DBAPIError as exc:
                self.mark_down(standby, str(exc.orig).splitlines()[0] if exc.orig else str(exc))
                continue
            if not in_recovery or replayed is None:  # promoted, or a primary listed by mistake: up to date
                standby.caught_up_at = time.time()
            else:
                replayed_at = [t for t, lsn in self._samples if lsn <= lsn_number(replayed)]
                if replayed_at:
                    standby.caught_up_at = max(standby.caught_up_at or 0.0, max(replayed_at))
            if not standby.up:
                log.info("standby %s answers: used for reads again once caught up", standby.name)
            standby.up, standby.error = True, None

    def describe(self) -> list[dict]:
        """Each standby's state, for /health."""
        now = time.time()
        usable = self.usable(now)
        return [{"name": s.name, "up": s.up, "lag_s": None if (lag := s.lag_s(now)) is None else round(lag, 3),
                 "used_for_reads": s in usable, "reads": s.reads, "error": s.error} for s in self.standbys]


class RetryOnPrimary:
    """Pure ASGI middleware: a GET or HEAD that a standby answered with 503 (it went away during the request) is
    answered again from the primary, the standby taken out of the turns; the client sees one answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        held: list = []

        async def hold_a_standby_503(message) -> None:
            if held or (message["type"] == "http.response.start" and message["status"] == 503
                        and state.get("read_from_standby") is not None):
                held.append(message)
                return
            await send(message)

        await self.app(scope, receive, hold_a_standby_503)
        if not held:
            return
        standby = state.pop("read_from_standby")
        router: ReadRouter | None = state.get("read_router")
        if router is not None:
            router.mark_down(standby, "it failed a read (answered again from the primary)")
        state["primary_only"] = True
        await self.app(scope, receive, send)


def fence_file(data_dir: Path) -> Path:
    """The file every worker of a host touches after a write (``DATA_DIR/last-write``)."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return Path(data_dir) / "last-write"

