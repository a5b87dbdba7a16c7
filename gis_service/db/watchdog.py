"""The embedded cluster's watchdog: ``gis-service serve`` starts PostgreSQL again when it is gone.

Before, a PostgreSQL killed (the out-of-memory killer, ``kill -9``, a crash) left the service answering 500 until
someone restarted it by hand. Now a thread of the ``serve`` process checks every :data:`CHECK_INTERVAL_S` that the
postmaster runs (its pid file and /proc) and, when it does not, starts the cluster again with
:meth:`EmbeddedCluster.start`; PostgreSQL replays its WAL, so nothing committed is lost. Meanwhile the workers
answer 503 with ``Retry-After``, and their pooled connections reconnect on their own once it is back (SQLAlchemy's
``pool_pre_ping`` notices the dead connections and discards the whole pool's generation).

A start that fails (the killed postmaster's backends may hold its shared memory for a moment) is tried again at
the next check; failures are logged once per :data:`FAILURE_LOG_INTERVAL_S`, not once per check.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import TracebackType

from gis_service.db.cluster import EmbeddedCluster

log = logging.getLogger("gis_service.watchdog")

CHECK_INTERVAL_S = 2.0
FAILURE_LOG_INTERVAL_S = 60.0


class ClusterWatchdog:
    """``with ClusterWatchdog(cluster):`` keeps ``cluster`` running for the block (a thread; see the module)."""

    def __init__(self, cluster: EmbeddedCluster, *, interval_s: float = CHECK_INTERVAL_S) -> None:
        self.cluster = cluster
        self.interval_s = interval_s
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cluster-watchdog", daemon=True)
        self._down_since: float | None = None
        self._failure_logged_at = float("-inf")

    def __enter__(self) -> ClusterWatchdog:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()  # before the block that started the cluster stops it, so it is not started again
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # the watchdog must outlive any surprise; the next check tries again
                log.exception("checking the embedded PostgreSQL cluster failed")

    def postmaster_alive(self) -> bool:
        """Whether the process named in ``postmaster.pid`` is a living ``postgres``: read from /proc, without
        ``pg_ctl status``, which as root runs through ``runuser`` and would log a PAM session every check."""
        try:
            pid = int((self.cluster.pgdata / "postmaster.pid").read_text().split()[0])
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError, IndexError):
            return False
        name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:][:1]
        return name == "postgres" and state not in ("Z", "X")  # a zombie or a reused pid is no postmaster

    def check(self) -> None:
        """Start the cluster if its postmaster is gone."""
        if self.postmaster_alive():
            return
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.warning("the embedded PostgreSQL cluster in %s is not running; starting it again "
                        "(the service answers 503 until it is back)", self.cluster.pgdata)
        try:
            self.cluster.start()
        except Exception as exc:
            if now - self._failure_logged_at >= FAILURE_LOG_INTERVAL_S:
                self._failure_logged_at = now
                log.error("the embedded PostgreSQL cluster could not be started again (trying every %g s): %s; "
                          "its log: %s", self.interval_s, exc, self.cluster.log_file)
            return
        self.restarts += 1
        log.warning("the embedded PostgreSQL cluster is running again, %.1f s after it was found stopped",
                    time.monotonic() - self._down_since)
        self._down_since = None
        self._failure_logged_at = float("-inf")
