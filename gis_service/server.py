"""``gis-service serve``'s HTTP server: worker processes under uvicorn's supervisor, which replaces one that dies.

The ``serve`` process prepares the database (see :func:`gis_service.cli.serve`), binds the listening socket and
then only supervises: uvicorn's ``Multiprocess`` starts ``GIS_WORKERS`` workers (fresh interpreters, ``spawn``),
pings each every half second, and starts a new one in place of a worker that exited or stopped answering (killed,
out of memory, a crash in a C library), even with a single worker. The socket stays open in the parent, so while a
worker is replaced new connections wait in the kernel's backlog instead of being refused. Each worker builds the
app itself (:func:`served_app`, the app factory) and connects to the database the parent prepared.

uvicorn's supervisor rather than gunicorn's: it is already installed and pinned (gunicorn would add a package and
its uvicorn worker class for the same process model), it shares the HTTP protocol these workers use
(:mod:`gis_service.connections`), and it stops instead of looping when a worker cannot start at all.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING

from uvicorn.supervisors.multiprocess import Multiprocess

from gis_service.connections import ConnectionGuard, GuardedHttpProtocol, connection_cap, raise_fd_limit
from gis_service.settings import Settings

if TYPE_CHECKING:  # a worker imports this module before it can answer the supervisor's pings: keep it light
    from fastapi import FastAPI

log = logging.getLogger("gis_service.server")

#: A worker that does not answer the supervisor's ping for this long is killed and replaced. (A request's Python
#: work does not stop the ping thread; only a C call that holds the interpreter this long would.)
WORKER_PING_TIMEOUT_S = 10
#: On stop (SIGTERM, Ctrl-C), requests in flight get this long to finish before they are cancelled.
GRACEFUL_STOP_S = 30


def served_app(settings: Settings, database_url: str) -> FastAPI:
    """The app of one worker: the parent has provisioned and migrated the database at ``database_url``, so the
    worker only opens its engine (statements stopped after GIS_STATEMENT_TIMEOUT_S) and disposes of it on exit."""
    from gis_service.app import create_app
    from gis_service.db.engine import create_db_engine

    engine = create_db_engine(database_url, statement_timeout_s=settings.statement_timeout_s)
    return create_app(settings, engine, owns_engine=True)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, noticing a killed worker at once.

    uvicorn pings each worker over a pipe and keeps the parent's copy of the worker's end of it open, so a ping
    sent just before the worker dies waits out the whole ping time-out (10 s measured, one kill in five on a
    loaded machine) instead of seeing the pipe close. The worker holds its own copy from the moment it starts, so
    the parent closes its copy: a dead worker's pipe then ends at once and it is replaced at the next check.
    """

    def keep_subprocess_alive(self) -> None:
        for process in self.processes:
            process.child_conn.close()  # idempotent
        super().keep_subprocess_alive()


def run(settings: Settings, database_url: str, *, host: str, port: int, workers: int,
        alongside: contextlib.AbstractContextManager = contextlib.nullcontext()) -> None:
    """Serve until SIGTERM or SIGINT with ``workers`` supervised worker processes; ``alongside`` (the cluster's
    watchdog) runs in this process for as long as they do."""
    import uvicorn

    from gis_service.logs import log_config

    fd_limit = raise_fd_limit()
    cap = connection_cap(settings.max_connections, fd_limit)
    guard = ConnectionGuard(header_timeout_s=settings.header_timeout_s, max_connections=cap)
    # The app and the protocol are given as picklable callables: each worker gets them, with the settings and the
    # database URL, through the supervisor's pipe (not the environment, where other local users could read them).
    config = uvicorn.Config(
        functools.partial(served_app, settings, database_url), factory=True, host=host, port=port,
        workers=workers, http=functools.partial(GuardedHttpProtocol, guard=guard),
        timeout_keep_alive=settings.keep_alive_timeout_s, timeout_worker_healthcheck=WORKER_PING_TIMEOUT_S,
        timeout_graceful_shutdown=GRACEFUL_STOP_S, lifespan="on", log_level=settings.log_level,
        log_config=log_config(settings.log_level), access_log=False)  # the app writes its own access log
    if cap < settings.max_connections:
        log.warning("only %d open files are allowed (ulimit -n): at most %d connections per worker instead of "
                    "GIS_MAX_CONNECTIONS=%d", fd_limit, cap, settings.max_connections)
    sock = config.bind_socket()
    try:
        with alongside:
            Supervisor(config, sockets=[sock]).run()
    finally:
        sock.close()
