"""Dependencies shared by the routers."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import sqlalchemy as sa
from fastapi import Depends, Request, Response
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from gis_service.analysis.limits import TRIM_AFTER_GROWTH_MB, give_memory_back, resident_mb
from gis_service.api import session
from gis_service.auth import Principal, authenticate
from gis_service.db.engine import FAST_READS, MAX_SESSIONS, TILE_READS
from gis_service.db.replicas import PRIMARY_READS, ReadRouter
from gis_service.errors import AnalysesBusyError, NetworkBuildingError, NoNetworkError
from gis_service.settings import Settings


async def get_settings(request: Request) -> Settings:
    # async: a plain attribute read, not worth a trip through the thread pool
    return request.app.state.settings


def read_engine(request: Request) -> sa.Engine:
    """The engine of this request: the primary for writes, for the reads that must see a write
    (:data:`~gis_service.db.replicas.PRIMARY_READS`) and for a read sent again after a standby failed it; else the
    primary or a standby, in turn (:class:`~gis_service.db.replicas.ReadRouter`)."""
    router: ReadRouter = request.app.state.read_router
    state = request.scope.setdefault("state", {})
    route = request.scope.get("route")
    if (request.method not in ("GET", "HEAD") or state.get("primary_only") or not router.standbys
            or (route is not None and route.path in PRIMARY_READS)):
        return router.primary
    engine, standby = router.engine_for_read()
    if standby is not None:
        state["read_from_standby"], state["read_router"] = standby, router
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """A session per request, on :func:`read_engine`'s engine. Writes call ``session.commit()`` before answering
    (which sends this host's reads to the primary until the standbys have it); anything not committed is rolled
    back when the request ends. (Tests bind it to their own transaction with savepoints.)"""
    session = Session(read_engine(request))
    session.info["read_router"] = request.app.state.read_router
    try:
        yield session
    finally:
        try:
            session.close()
        except sa.exc.DBAPIError as exc:
            # the database went away after the answer was made (a standby killed, a restart): the connection is
            # gone with it, and the answer must not be lost to a failed ROLLBACK (the pool replaces the connection)
            from gis_service.api.middleware import database_away

            if not database_away(exc):
                raise


@sa.event.listens_for(Session, "after_commit")
def _note_write(session: Session) -> None:
    router = session.info.get("read_router")
    if router is not None:
        router.note_write()


#: At most MAX_SESSIONS requests hold a session (and its connection) at once; the pool is sized for them
#: (see create_db_engine). The others wait here, in the event loop, without a thread or a connection.
SessionDep = Annotated[Session, Depends(get_session, max_concurrency=MAX_SESSIONS)]


def get_connection(session: SessionDep) -> sa.Connection:
    """The request's connection, inside the session's transaction."""
    return session.connection()


#: ``await read(work, transaction=False)``: ``work(conn)`` in a worker thread (see :func:`get_read_runner`).
ReadRunner = Callable[..., Awaitable[Any]]


def _limiter(app, name: str, limit: int) -> anyio.CapacityLimiter:
    limiter = getattr(app.state, name, None)
    if limiter is None:  # made in the event loop, on first use
        limiter = anyio.CapacityLimiter(limit)
        setattr(app.state, name, limiter)
    return limiter


def _read_runner(request: Request, limiter: anyio.CapacityLimiter) -> ReadRunner:
    router: ReadRouter = request.app.state.read_router
    primary_only = request.scope.get("state", {}).get("primary_only", False)

    async def read(work: Callable[[sa.Connection], Any], *, transaction: bool = False) -> Any:
        def run(engine: sa.Engine) -> Any:
            if transaction:
                with engine.connect() as conn, conn.begin():
                    return work(conn)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return work(conn)

        def in_thread() -> Any:
            engine, standby = (router.primary, None) if primary_only else router.engine_for_read()
            try:
                return run(engine)
            except sa.exc.DBAPIError as exc:
                from gis_service.api.middleware import database_away

                if standby is None or not database_away(exc):
                    raise
                router.mark_down(standby, "it failed a read (answered again from the primary)")
                return run(router.primary)

        return await anyio.to_thread.run_sync(in_thread, limiter=limiter)

    return read


async def get_read_runner(request: Request) -> ReadRunner:
    """For the hottest reads (search, type-ahead): ``await read(work)`` runs ``work(conn)`` in one worker thread
    with a connection of its own. A session dependency costs three thread-pool hops (open, connection, close),
    about 2 ms of type-ahead's 10 ms budget, and waits behind slow requests for one of the MAX_SESSIONS
    sessions. At most FAST_READS run at once; the pool keeps a connection for each. ``work`` gets a connection
    without a transaction (no BEGIN and ROLLBACK round trips: for statements that need no ``SET LOCAL`` and no
    consistency between them), or with ``transaction=True`` one inside a transaction that is rolled back.
    Tests replace it with their own transaction."""
    return _read_runner(request, _limiter(request.app, "fast_read_limiter", FAST_READS))


async def get_tile_runner(request: Request) -> ReadRunner:
    """For vector tiles: the same as :func:`get_read_runner`, with TILE_READS turns of their own, so that tiles
    being rendered do not hold up type-ahead, nor type-ahead tiles. Tests replace it with their own transaction."""
    return _read_runner(request, _limiter(request.app, "tile_limiter", TILE_READS))


async def get_analysis_runner(request: Request) -> ReadRunner:
    """For analyses computed in the background (a map being computed outlives the request that asked for it, so it
    cannot use the request's session): the same as :func:`get_read_runner`, with ANALYSES turns of their own (the
    connections come from the pool's overflow, as many as analyses compute at once). Tests replace it with their
    own transaction."""
    return _read_runner(request, _limiter(request.app, "analysis_limiter", ANALYSES))


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[sa.Connection, Depends(get_connection)]
ReadRunnerDep = Annotated[ReadRunner, Depends(get_read_runner)]
TileRunnerDep = Annotated[ReadRunner, Depends(get_tile_runner)]
AnalysisRunnerDep = Annotated[ReadRunner, Depends(get_analysis_runner)]

#: Documents the bearer token (the ``bearer`` security scheme) on the operations that depend on it; the token
#: itself is checked by :func:`gis_service.auth.authenticate`, whose messages say what is wrong with it.
bearer_token = HTTPBearer(scheme_name="bearer", auto_error=False,
                          description="A token from `gis-service token create --role ROLE --name NAME`: "
                          "`Authorization: Bearer gis_...`.")


def staff_reader(request: Request, response: Response, conn: ConnectionDep,
                 _: Annotated[object, Depends(bearer_token)]) -> Principal:
    """Whoever holds a valid token, of any role: for the records that name the bureau's staff or keep copies of
    what was deleted (a feature's history, inspections, the place-name change log). Their answers are not kept
    by caches (``Cache-Control: no-store``). A browser signed in (/pages/sign-in) sends its session cookie instead."""
    who = authenticate(conn, session.authorization(request))
    response.headers["Cache-Control"] = "no-store"
    return who


#: ``dependencies=`` of the reads that need a token of any role (see :func:`staff_reader`).
NEEDS_TOKEN = [Depends(staff_reader)]


#: How long a request that needs the road network waits for a build before it is answered 503 with Retry-After:
#: a build at demo scale 1 (2 s) is waited for; one at scale 10 (30 s) or of a province is not, so that no client
#: waits past its own time-out (30 s for many) for an answer that would come too late.
NETWORK_WAIT_S = 10


async def wait_for_network_build(request: Request) -> None:
    """Before a request that needs the road network takes a session: if the roads changed since the network was
    built, or this process has not yet mapped the graph, start building or loading it in the background (one
    thread per process; the tables themselves are built once, by whichever process takes the database's advisory
    lock first), and wait for it at most NETWORK_WAIT_S, without a session, so that every other request goes on
    being answered; then 503 with Retry-After. Use it in a route's ``dependencies``: FastAPI solves those before
    the endpoint's own."""
    await wait_for_network(request.app)


async def wait_for_network(app, *, while_building: Callable[[], None] | None = None) -> None:
    """What :func:`wait_for_network_build` does, for work not tied to one request (a map computed in the
    background); ``while_building`` is called when there is a build to wait for."""
    from gis_service.analysis.network import BUILD_GATE

    builder = _network_builder(app)
    last_build_s = await builder.start_unless_ready()
    waited = 0.0
    BUILD_GATE.waiting += 1
    try:
        while BUILD_GATE.busy:
            if while_building is not None:
                while_building()
            if waited >= NETWORK_WAIT_S:
                raise NetworkBuildingError(max(5.0, last_build_s - waited))
            await anyio.sleep(0.1)
            waited += 0.1
    finally:
        BUILD_GATE.waiting -= 1


#: A network found ready is taken as ready for this long without asking the database again (at most one query a
#: second however many analyses arrive). A change to the roads within it is built by the analysis itself.
READY_RECHECK_S = 1.0


@dataclass
class _NetworkBuilder:
    """Builds (or loads) the road network in a background thread of this process, one build at a time."""

    engine: sa.Engine
    settings: Settings
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    checking: anyio.Lock | None = None
    ready_at: float = -math.inf
    last_build_s: float = 0.0

    async def start_unless_ready(self) -> float:
        """Start a build unless one runs or the network is :meth:`ready` (asked by one request at a time, and
        remembered for READY_RECHECK_S); return how long the last build took (seconds)."""
        from gis_service.analysis.network import BUILD_GATE

        if not BUILD_GATE.busy and time.monotonic() - self.ready_at < READY_RECHECK_S:
            return self.last_build_s  # no await: under load every switch to another task costs milliseconds
        if self.checking is None:  # made in the event loop, on first use
            self.checking = anyio.Lock()
        async with self.checking:
            if BUILD_GATE.busy or time.monotonic() - self.ready_at < READY_RECHECK_S:
                return self.last_build_s
            ready, self.last_build_s = await anyio.to_thread.run_sync(self.ready)
            if ready:
                self.ready_at = time.monotonic()
            else:
                self.start()
            return self.last_build_s

    def _analysis_settings(self):
        from gis_service.analysis.travel import AnalysisSettings

        return AnalysisSettings()

    def ready(self) -> tuple[bool, float]:
        from gis_service.analysis.network import network_ready

        with self.engine.connect() as conn:
            return network_ready(conn, measure_srid=self.settings.measure_srid, settings=self._analysis_settings())

    def start(self) -> None:
        from gis_service.analysis.network import BUILD_GATE

        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            BUILD_GATE.begin()  # busy from now on, before the thread runs
            self.thread = threading.Thread(target=self._build, name="network-build", daemon=True)
            self.thread.start()

    def _build(self) -> None:
        from gis_service.analysis.network import BUILD_GATE, ensure_network

        try:
            with self.engine.connect() as conn:
                ensure_network(conn, measure_srid=self.settings.measure_srid, settings=self._analysis_settings())
                conn.commit()
        except NoNetworkError:
            pass  # the analysis itself says so (409)
        except Exception:  # the analysis that follows meets the same failure and answers it
            logging.getLogger(__name__).exception("building the road network failed")
        finally:
            BUILD_GATE.end()


def _network_builder(app) -> _NetworkBuilder:
    builder = getattr(app.state, "network_builder", None)
    if builder is None:
        builder = app.state.network_builder = _NetworkBuilder(app.state.engine, app.state.settings)
    return builder


#: ``dependencies=`` of the routes that measure along the roads (the analyses, the maps that show them).
NEEDS_NETWORK = [Depends(wait_for_network_build)]


# -- the analyses' own limit ----------------------------------------------------------------------------------------
#: Analyses computed at once in this process. Each holds a session and keeps a core busy, so on two cores more would
#: only share the CPU; the others wait for their turn in the event loop, without a thread or a session, and at
#: least MAX_SESSIONS - ANALYSES sessions stay for every other request (twenty analyses at once once took all ten).
ANALYSES = 2
#: Analyses that may wait for their turn (each for at most GIS_ANALYSIS_TIMEOUT_S) is GIS_ANALYSIS_QUEUE (64 by
#: default: the load test's 50 clients overflowed 32 with coverage requests); more get 503 at once.


@dataclass
class _AnalysisTurns:
    turns: anyio.Semaphore = field(default_factory=lambda: anyio.Semaphore(ANALYSES))
    waiting: int = 0
    #: The process's resident set after the heap was last trimmed (MB).
    trimmed_at_mb: float = field(default_factory=resident_mb)

    @property
    def idle(self) -> bool:
        """No analysis computes or waits."""
        return self.waiting == 0 and self.turns.value == ANALYSES


def _analysis_turns(app) -> _AnalysisTurns:
    turns = getattr(app.state, "analysis_turns", None)
    if turns is None:  # made in the event loop, on first use
        turns = app.state.analysis_turns = _AnalysisTurns()
    return turns


async def take_analysis_turn(request: Request) -> AsyncIterator[None]:
    """Wait (at most GIS_ANALYSIS_TIMEOUT_S, behind at most GIS_ANALYSIS_QUEUE others) until fewer than ANALYSES
    analyses run, and hold the turn until the endpoint returns; 503 with Retry-After otherwise."""
    async with analysis_turn(request.app):
        yield


@contextlib.asynccontextmanager
async def analysis_turn(app) -> AsyncIterator[None]:
    """One of the ANALYSES turns, held for the block (see :func:`take_analysis_turn`); AnalysesBusyError (503)
    when the queue is full or the wait was longer than GIS_ANALYSIS_TIMEOUT_S."""
    turns = _analysis_turns(app)
    settings = app.state.settings
    wait_s, queue = settings.analysis_timeout_s, settings.analysis_queue
    busy = (f"the service is computing as many analyses as it can ({ANALYSES} at once, {queue} more "
            "waiting their turn); try again in a few seconds. Answers already computed come back at once")
    if turns.waiting >= queue:
        raise AnalysesBusyError(busy)
    turns.waiting += 1
    try:
        with anyio.move_on_after(wait_s) as waited:
            await turns.turns.acquire()
    finally:
        turns.waiting -= 1
    if waited.cancelled_caught:
        raise AnalysesBusyError(f"this analysis waited {wait_s:g} s for its turn: {busy}")
    try:
        yield
    finally:
        turns.turns.release()


async def give_memory_back_afterwards(request: Request) -> AsyncIterator[None]:
    """After the answer is sent, when no other analysis computes or waits and the process grew by more than
    TRIM_AFTER_GROWTH_MB since the heap was last trimmed: return the heap's free memory to the system (in a worker
    thread: a large heap takes milliseconds to walk). Only the last analysis out trims: memory that analyses still
    running hold cannot be returned, and a trim after each one left what the last ones freed (+114 MB after twenty
    at once). While analyses keep coming, the heap they free is reused by the next ones."""
    try:
        yield
    finally:  # also after an analysis stopped by its budget: its work is freed too
        await give_memory_back_if_idle(request.app)


async def give_memory_back_if_idle(app) -> None:
    """What :func:`give_memory_back_afterwards` does once an analysis has ended."""
    turns = _analysis_turns(app)
    if turns.idle and resident_mb() - turns.trimmed_at_mb > TRIM_AFTER_GROWTH_MB:
        await anyio.to_thread.run_sync(give_memory_back)
        turns.trimmed_at_mb = resident_mb()


#: ``dependencies=`` of the routes that compute an analysis along the roads, and of the map pages (the coverage and
#: site maps compute analyses; drawing any map is seconds of Python when not cached): wait for the network, then
#: for a turn among the analyses (released when the endpoint returns, so a client slow to read its answer does not
#: hold it), then give memory back once the answer is sent. FastAPI solves these in this order and before the
#: endpoint's own, so no session is taken while waiting.
RUNS_ANALYSIS = [*NEEDS_NETWORK, Depends(take_analysis_turn, scope="function"),
                 Depends(give_memory_back_afterwards, scope="request")]
