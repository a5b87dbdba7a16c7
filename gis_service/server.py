"""``gis-service serve``'s HTTP server: worker processes under uvicorn's supervisor, which replaces one that dies.

The ``serve`` process prepares the database (see :func:`gis_service.cli.serve.serve`), binds the listening socket and
then only supervises: uvicorn's ``Multiprocess`` starts ``GIS_WORKERS`` workers, pings each every half second, and
starts a new one in place of a worker that exited or stopped answering (killed, out of memory, a crash in a C
library), even with a single worker. The socket stays open in the parent, so while a worker is replaced new
connections wait in the kernel's backlog instead of being refused. Each worker builds the app itself
(:func:`served_app`, the app factory) and connects to the database the parent prepared.

Workers are forked from a fork server that imported the app once (multiprocessing's ``forkserver``), not started
as fresh interpreters (uvicorn's ``spawn``): a killed worker answered again after 0.4-0.8 s instead of 2.5-4.4 s
(importing the app takes 2-6 s on this machine, and over 10 s when it is busy), and two workers took 411 MB
instead of 539 MB (proportional set size of every process of ``serve``; one worker: 382 MB instead of 350 MB).
The fork server is a fresh process with no threads or connections, so forking it is safe; if it dies,
multiprocessing starts another, the workers are replaced, and the old ones stop (:func:`_end_with_fork_server`).

uvicorn's supervisor rather than gunicorn's: it is already installed and pinned and runs the HTTP protocol of
:mod:`gis_service.connections` as it is, where gunicorn would add two packages (itself and its uvicorn worker
class) for the same process model; the fork server gives what gunicorn's ``--preload`` would.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
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
#: prctl(2) option: the signal a process gets when its parent dies (Linux).
PR_SET_PDEATHSIG = 1


def served_app(settings: Settings, database_url: str) -> FastAPI:
    """The app of one worker: the parent has provisioned and migrated the database at ``database_url``, so the
    worker only opens its engine (statements stopped after GIS_STATEMENT_TIMEOUT_S) and disposes of it on exit."""
    from gis_service.app import create_app
    from gis_service.db.engine import create_db_engine

    _end_with_fork_server()
    engine = create_db_engine(database_url, statement_timeout_s=settings.statement_timeout_s)
    return create_app(settings, engine, owns_engine=True)


def _end_with_fork_server() -> None:
    """Have this worker stopped (SIGTERM: it finishes its requests) when its parent, the fork server, dies.

    multiprocessing signals a worker through the fork server; were the fork server killed (the out-of-memory
    killer, ``kill -9``), the supervisor would take its workers for dead and start new ones through a new fork
    server, while the old ones went on serving, unsupervised, and outlived ``serve`` with its socket (seen).
    """
    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning("this worker cannot follow its fork server (prctl failed: errno %d)", ctypes.get_errno())
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def fork_server() -> multiprocessing.context.ForkServerContext:
    """multiprocessing's fork-server context, its server importing the app before it forks the first worker."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["gis_service.app"])
    return context


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
    import uvicorn._subprocess

    from gis_service.logs import log_config

    fd_limit = raise_fd_limit()
    cap = connection_cap(settings.max_connections, fd_limit)
    guard = ConnectionGuard(header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s,
                            max_connections=cap)
    # The app and the protocol are given as picklable callables: each worker gets them, with the settings and the
    # database URL, through multiprocessing's pipe (not the environment, which pg_dump and any other program the
    # service starts would inherit).
    config = uvicorn.Config(
        functools.partial(served_app, settings, database_url), factory=True, host=host, port=port,
        workers=workers, http=functools.partial(GuardedHttpProtocol, guard=guard),
        timeout_keep_alive=settings.keep_alive_timeout_s, timeout_worker_healthcheck=WORKER_PING_TIMEOUT_S,
        timeout_graceful_shutdown=GRACEFUL_STOP_S, lifespan="on", log_level=settings.log_level,
        log_config=log_config(settings.log_level), access_log=False,  # the app writes its own access log
        # proxy_headers off: uvicorn would believe X-Forwarded-For from any local process; the app reads
        # forwarded headers itself, from trusted proxies only
        proxy_headers=False)
    if cap < settings.max_connections:
        log.warning("only %d open files are allowed (ulimit -n): at most %d connections per worker instead of "
                    "GIS_MAX_CONNECTIONS=%d", fd_limit, cap, settings.max_connections)
    # uvicorn starts workers with the multiprocessing context it keeps in uvicorn._subprocess.spawn and has no
    # option for another: this line reaches into it (uvicorn is pinned in requirements.lock)
    uvicorn._subprocess.spawn = fork_server()
    sock = config.bind_socket()
    try:
        with alongside:
            Supervisor(config, sockets=[sock]).run()
    finally:
        sock.close()
