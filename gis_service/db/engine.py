"""Connecting to the database: the embedded cluster or the configured server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from gis_service.db.cluster import embedded_cluster
from gis_service.db.roles import REQUIRED_EXTENSIONS
from gis_service.errors import SetupError
from gis_service.settings import Settings

#: Requests that may hold a database session at the same time (the limit of ``SessionDep``). The others wait for a
#: session without holding a worker thread. On two cores more would only queue in PostgreSQL and the GIL.
MAX_SESSIONS = 10
#: Searches and type-ahead at the same time (each takes a connection of its own, outside the sessions, so that a
#: keystroke does not wait behind a slow tile or analysis; see ``get_read_runner``).
FAST_READS = 6
#: Vector tiles at the same time, each on a connection of its own outside the sessions: a kept tile costs one
#: look-up of its layer's version, and rendering one must not make a keystroke wait either.
TILE_READS = 6
#: Reader-token checks (GIS_READ_REQUIRES_TOKEN) at the same time; each takes a connection of its own.
READER_CHECKS = 4
#: Connections beyond the sessions': one more per session (``ensure_network`` reads the committed roads version and
#: rebuilds the network in a transaction of its own), two for the start-up warm-up, one per reader-token check.
EXTRA_CONNECTIONS = MAX_SESSIONS + 2 + READER_CHECKS
#: Seconds to wait for the database to accept a connection.
CONNECT_TIMEOUT_S = 5


def create_db_engine(url: str, *, statement_timeout_s: float | None = None, **kwargs) -> Engine:
    """An engine whose pool always has a connection for whoever asks; with ``statement_timeout_s`` (the service's
    engine) PostgreSQL stops any statement that runs longer, so that no request holds a worker indefinitely.

    A request checks its connection out in one worker thread (``get_connection``) and uses it in another (the
    endpoint). With FastAPI's 40 threads and a pool of 15 (SQLAlchemy's default), 40 threads could wait for a
    connection held by requests that were waiting for a thread: at 100 clients the service stood still and answered
    500 after 30 s (``QueuePool limit ... reached``). Now at most ``MAX_SESSIONS`` requests hold a session and at
    most ``FAST_READS`` searches a connection of their own; the pool keeps that many connections open and may add
    every extra one they and the background work may take, so a check-out never waits for another request.
    """
    kwargs.setdefault("pool_size", MAX_SESSIONS + FAST_READS + TILE_READS)
    kwargs.setdefault("max_overflow", EXTRA_CONNECTIONS)
    # a server that does not answer (its host down) fails a request after this long (503) instead of holding it
    kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    if statement_timeout_s:
        options = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "options": options}
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


@contextlib.contextmanager
def provisioned(settings: Settings) -> Iterator[str]:
    """Yield the database URL to use for the duration of a block: the service role's.

    Embedded mode: the private cluster is started if it is not running and stopped again afterwards
    only if this block started it. External mode: the server is checked for the extensions, which are
    created where the role may.
    """
    if settings.embedded:
        cluster = embedded_cluster(settings)
        with cluster.running():
            yield cluster.url()
    else:
        check_server(settings.database_url)
        yield settings.database_url


def admin_url(settings: Settings) -> str | None:
    """URL of the role for set-up work the service role may not do (creating, renaming and dropping databases,
    creating extensions): the embedded cluster's superuser, or GIS_ADMIN_DATABASE_URL (None when unset)."""
    if settings.embedded:
        return embedded_cluster(settings).admin_url()
    return settings.admin_database_url


def upgrade_schema(settings: Settings, url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` as the service role; on the embedded cluster, then seal the audit log
    (hand it to its owner, a superuser's work), which a migration may just have made."""
    from gis_service.db import migrate

    migrate.upgrade(url, revision)
    if settings.embedded:
        embedded_cluster(settings).seal_audit_log()


def downgrade_schema(settings: Settings, url: str, revision: str) -> None:
    """Undo migrations down to ``revision``; on the embedded cluster the audit log is the service role's meanwhile,
    so that a downgrade may drop it, and sealed again if it is still there."""
    from gis_service.db import migrate

    if not settings.embedded:
        migrate.downgrade(url, revision)
        return
    cluster = embedded_cluster(settings)
    cluster.unseal_audit_log()
    try:
        migrate.downgrade(url, revision)
    finally:
        cluster.seal_audit_log()


def libpq_params(url: str, database: str | None = None) -> tuple[str, dict[str, str]]:
    """The libpq connection string of a SQLAlchemy URL (its query's host, port and passfile included), and an
    environment carrying its password, if it has one (kept off the command line, where any user could read it)."""
    parts = make_url(url)
    params = {"dbname": database or parts.database, "user": parts.username, "host": parts.host, "port": parts.port}
    for key, value in parts.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    conninfo = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if parts.password:
        env["PGPASSWORD"] = parts.password
    return conninfo, env


@contextlib.contextmanager
def connect(url: str, database: str | None = None, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
    """A psycopg connection to ``url`` (or to another ``database`` on its server); without ``autocommit``, its
    transaction is committed at the end of the block, or rolled back on an exception."""
    conninfo, _ = libpq_params(url, database)
    with psycopg.connect(conninfo, password=make_url(url).password, autocommit=autocommit,
                         connect_timeout=10) as conn:
        yield conn


def check_server(url: str) -> None:
    """Connect to an external server and make sure the required extensions exist (creating them if allowed)."""
    sa_url = make_url(url)
    try:
        with connect(url) as conn:
            available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
            missing = [name for name in REQUIRED_EXTENSIONS if name not in available]
            if missing:
                raise SetupError(
                    f"the server at {sa_url.host or 'the socket'} lacks the extensions {', '.join(missing)}; "
                    "install them there (Debian: apt-get install -y postgresql-15-postgis-3 postgresql-15-pgrouting)"
                )
            installed = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
            for name in REQUIRED_EXTENSIONS:
                if name in installed:
                    continue
                try:
                    conn.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise SetupError(
                        f"extension {name} is not installed in database {sa_url.database} and this role may not "
                        f"create it; ask the administrator to run: CREATE EXTENSION {name};"
                    ) from exc
    except psycopg.OperationalError as exc:
        raise SetupError(f"cannot connect to GIS_DATABASE_URL ({sa_url.render_as_string()}): {exc}") from exc
