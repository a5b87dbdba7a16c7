"""Backing up the whole database to one file and restoring it (pg_dump and pg_restore, custom format).

A backup is one ``pg_dump --format=custom`` archive of the database: the schema and its alembic revision, every
layer, the inspection records, the place-name history, the audit trail and the tokens' hashes. It is an ordinary
archive (``pg_restore --list FILE`` reads it without this service), written with the ``pg_dump`` of the
PostgreSQL the embedded cluster uses (``GIS_PG_BIN_DIR``, or the newest one with PostGIS), for the embedded
cluster and for a server named by ``GIS_DATABASE_URL`` alike.

The per-table checksums a backup reports (:func:`checksums`) are computed in the very snapshot ``pg_dump``
reads (an exported snapshot of a read-only repeatable-read transaction), so they describe exactly the data in
the file, even while the service keeps writing.

Restoring goes into a fresh database beside the live one, which then takes the live one's name, rather than
``pg_restore --clean`` into the live database:

- a file that turns out to be bad half-way (truncated, corrupt, written by a newer schema) fails while the live
  database is untouched, and the half-restored copy is dropped;
- the restored copy is brought to this version's schema and checked before it goes live;
- the swap is two renames in one transaction: the service sees the old data or the new, never a mix, and does
  not wait on the restore's locks while it runs;
- the database as it was before is kept under another name (``<name>_before_restore_<UTC time>``) until someone
  drops it, so a mistaken restore can be undone;
- ``--clean`` would leave in place the objects the archive does not know (a newer migration's tables, which can
  then refuse the drops), and would drop and re-create PostGIS under a running service.

The price: the role must be allowed to create databases and extensions (the embedded cluster's is; on another
server, restore with a superuser's URL), the server needs room for two copies for a moment, and the open
connections to the live database are closed at the swap (the service's pool reconnects, to the restored data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from gis_service.db import migrate
from gis_service.db.cluster import find_bin_dir
from gis_service.db.engine import create_db_engine
from gis_service.errors import BackupFileError, InvalidInputError, SetupError
from gis_service.layers import LAYERS

#: Tables beside the layers whose rows a backup must carry unchanged (checked like the layers, without geometry).
RECORD_TABLES = ("marker_inspections", "place_name_events", "audit_log", "api_tokens")
#: Databases to connect to for creating, renaming and dropping the others.
MAINTENANCE_DATABASES = ("postgres", "template1")
#: How long the swap keeps trying to close the live database's connections.
SWAP_TIMEOUT_S = 30


@dataclass(frozen=True)
class TableChecksum:
    """One table's fingerprint: its rows, and md5 digests over them in id order."""

    rows: int
    #: md5 over the md5 of each row's geometry as WKB (``ST_AsBinary``); None for a table without geometry.
    geometry_md5: str | None
    #: md5 over the md5 of each whole row's text form: every column, geometry included.
    rows_md5: str


def checksums(conn: sa.Connection) -> dict[str, TableChecksum]:
    """Rows and checksums of every layer (by layer id) and of the record tables, as ``conn``'s transaction sees them.

    Equal checksums mean equal data: the same rows with the same ids, values and geometries, bit for bit. Tables
    the database's schema does not have yet are left out. Sets the transaction's time zone to UTC, so that
    timestamps read the same in every session.
    """
    conn.execute(sa.text("SET LOCAL TimeZone = 'UTC'"))
    tables = [(layer.id, layer.table, True) for layer in LAYERS.values()]
    tables += [(table, table, False) for table in RECORD_TABLES]
    found: dict[str, TableChecksum] = {}
    for name, table, has_geometry in tables:
        if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
            continue
        geometry = ("md5(coalesce(string_agg(md5(ST_AsBinary(t.geom)), '' ORDER BY t.id), ''))"
                    if has_geometry else "NULL")
        rows, geometry_md5, rows_md5 = conn.execute(sa.text(
            f"SELECT count(*), {geometry}, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) "
            f"FROM {table} t")).one()
        found[name] = TableChecksum(rows, geometry_md5, rows_md5)
    return found


def differences(expected: dict[str, TableChecksum], found: dict[str, TableChecksum]) -> list[str]:
    """What differs between two sets of checksums, one plain sentence per table; empty when they are equal."""
    lines = []
    for name in sorted(set(expected) | set(found)):
        want, got = expected.get(name), found.get(name)
        if want == got:
            continue
        if want is None or got is None:
            lines.append(f"{name}: {'missing' if got is None else 'not expected'}")
        elif want.rows != got.rows:
            lines.append(f"{name}: {got.rows:,} rows instead of {want.rows:,}")
        elif want.geometry_md5 != got.geometry_md5:
            lines.append(f"{name}: the geometries differ")
        else:
            lines.append(f"{name}: the attribute values differ")
    return lines


# -- the archive -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Archive:
    """A backup file that pg_restore can read and that holds a gis-service database."""

    path: Path
    #: Name of the database it was dumped from.
    database: str
    #: When pg_dump wrote it, as pg_restore reports it (e.g. ``2026-11-29 07:41:06 UTC``).
    created: str
    #: Tables whose rows it holds.
    tables: frozenset[str]


def open_archive(path: Path, *, bin_dir: Path | None = None) -> Archive:
    """Check that ``path`` is a readable gis-service backup and say what it holds; nothing is changed.

    Raises BackupFileError when the file is missing, is not a pg_dump custom-format archive, or holds another
    database. Damage further in (a truncated or corrupted data section) shows only when restoring, which then
    fails without changing the live database.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupFileError(f"{path} does not exist or is not a file; give the path of a file written by "
                              "`gis-service db backup`")
    result = _run(pg_tool("pg_restore", bin_dir), "--list", str(path))
    if result.returncode != 0:
        raise BackupFileError(f"{path} is not a backup that pg_restore can read ({_tool_message(result)}); "
                              "give a file written by `gis-service db backup`. Nothing was changed.")
    listing = result.stdout
    tables = frozenset(re.findall(r"^\d+; \d+ \d+ TABLE DATA \S+ (\S+) ", listing, re.MULTILINE))
    missing = sorted({"alembic_version", *(layer.table for layer in LAYERS.values())} - tables)
    if missing:
        raise BackupFileError(f"{path} is a PostgreSQL archive but not a gis-service backup: it holds no "
                              f"{', '.join(missing)}. Nothing was changed.")
    database = re.search(r"^;\s+dbname: (.*)$", listing, re.MULTILINE)
    created = re.search(r"^; Archive created at (.*)$", listing, re.MULTILINE)
    return Archive(path=path, database=database.group(1).strip() if database else "",
                   created=created.group(1).strip() if created else "", tables=tables)


# -- backup -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupResult:
    """A written backup: its archive, size in bytes, the seconds it took, and the checksums of the data in it."""

    archive: Archive
    size_bytes: int
    seconds: float
    checksums: dict[str, TableChecksum]


def backup(url: str, path: Path, *, bin_dir: Path | None = None) -> BackupResult:
    """Write the whole database at ``url`` to ``path`` and return the checksums of the data written.

    The file appears only when complete: pg_dump writes to a temporary name beside it, which is read back
    (:func:`open_archive`) and then renamed, so a failed backup leaves an older file of the same name as it was.
    The file is readable by its owner only: it holds the audit trail and the tokens' hashes.
    """
    path = Path(path).absolute()
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; give the path of the backup file to write, e.g. "
                                f"{path / 'gis.backup'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pg_dump = pg_tool("pg_dump", bin_dir)
    started = time.perf_counter()
    engine = create_db_engine(url)
    try:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with engine.connect().execution_options(**options) as conn:
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            sums = checksums(conn)
            conninfo, env = libpq_params(url)
            partial.touch(mode=0o600)
            partial.chmod(0o600)
            result = _run(pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}",
                          f"--file={partial}", f"--dbname={conninfo}", env=env)
            conn.rollback()
        if result.returncode != 0:
            raise SetupError(f"pg_dump could not back up the database: {_tool_message(result)}")
        archive = open_archive(partial, bin_dir=bin_dir)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    return BackupResult(archive=dataclasses.replace(archive, path=path), size_bytes=path.stat().st_size,
                        seconds=time.perf_counter() - started, checksums=sums)


def verify_backup(url: str, archive: Archive, expected: dict[str, TableChecksum], *,
                  bin_dir: Path | None = None) -> dict[str, TableChecksum]:
    """Restore ``archive`` into a throwaway database beside ``url``'s, compare its checksums with ``expected``,
    drop it, and return the checksums found. Raises BackupFileError naming every table that differs."""
    live = make_url(url).database
    scratch = f"{live[:40]}_verify_{os.getpid()}"
    with admin_connection(url) as admin:
        like = _database_options(admin, live)
        _drop_database(admin, scratch)
        _create_database(admin, scratch, like)
        try:
            scratch_url = _url_of(url, scratch)
            _pg_restore(archive, scratch_url, bin_dir)
            engine = create_db_engine(scratch_url)
            try:
                with engine.connect() as conn:
                    found = checksums(conn)
            finally:
                engine.dispose()
        finally:
            _drop_database(admin, scratch)
    problems = differences(expected, found)
    if problems:
        raise BackupFileError(f"{archive.path} does not restore to the data it was made from: "
                              + "; ".join(problems))
    return found


# -- restore ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RestoreResult:
    """A finished restore."""

    #: The database that now holds the restored data.
    database: str
    #: Where the data from before the restore is kept; None when it was dropped or there was none.
    previous: str | None
    #: Schema revision the archive held (the restored database is upgraded to this version's head).
    revision: str
    seconds: float
    checksums: dict[str, TableChecksum]


def restore(url: str, archive: Archive, *, bin_dir: Path | None = None, keep_previous: bool = True) -> RestoreResult:
    """Replace the database at ``url`` with the contents of ``archive``; see the module docstring for how and why.

    Until the final swap nothing about the live database changes: any failure (a damaged file, a backup of a
    newer schema, a server refusing) drops the half-restored copy and raises, BackupFileError for the file's
    faults. ``keep_previous=False`` drops the replaced database after the swap.
    """
    started = time.perf_counter()
    live = make_url(url).database
    if not live or live in MAINTENANCE_DATABASES:
        raise InvalidInputError(f"cannot restore into the database {live!r}: name the service's own database")
    staging = f"{live[:40]}_restoring"
    with admin_connection(url) as admin:
        like = _database_options(admin, live)
        beyond = _data_version_in_use(url) if like is not None else 0
        _drop_database(admin, staging)  # left by a restore that was interrupted
        _create_database(admin, staging, like)
        try:
            staging_url = _url_of(url, staging)
            _pg_restore(archive, staging_url, bin_dir)
            revision, sums = _prepare_restored(staging_url, archive, data_versions_beyond=beyond)
            previous = _swap(admin, live=live, staging=staging, exists=like is not None)
        except BaseException:
            _drop_database(admin, staging)
            raise
        if previous is not None and not keep_previous:
            _drop_database(admin, previous)
            previous = None
    return RestoreResult(database=live, previous=previous, revision=revision,
                         seconds=time.perf_counter() - started, checksums=sums)


def _prepare_restored(url: str, archive: Archive, *, data_versions_beyond: int) -> tuple[str, dict]:
    """Check the restored copy's schema revision, upgrade it to this version's head, renumber its data versions
    and gather planner statistics; return the revision the archive held and the copy's checksums."""
    engine = create_db_engine(url)
    try:
        revision = migrate.current_revision(engine)
        if revision is None:
            raise BackupFileError(f"{archive.path} holds no schema revision (alembic_version is empty): it is not "
                                  "a gis-service backup. Nothing was changed.")
        if not migrate.is_known_revision(revision):
            raise BackupFileError(f"{archive.path} was written by a newer gis-service (schema {revision}); "
                                  "upgrade gis-service before restoring it. Nothing was changed.")
        migrate.upgrade(url)
        with engine.begin() as conn:
            _renumber_data_versions(conn, beyond=data_versions_beyond)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))  # pg_restore leaves the tables without statistics
        with engine.connect() as conn:
            sums = checksums(conn)
    finally:
        engine.dispose()
    return revision, sums


def _data_version_in_use(url: str) -> int:
    """The last data version the live database handed out (0 if it has none)."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass('data_version_seq')")).scalar() is None:
                return 0
            return conn.execute(sa.text("SELECT last_value FROM data_version_seq")).scalar_one()
    finally:
        engine.dispose()


def _renumber_data_versions(conn: sa.Connection, *, beyond: int) -> None:
    """Give every table of the restored data a data version the live database has never used.

    A running service caches collection summaries, road graphs and analysis answers under (table, data version).
    Versions come from a sequence and are never reused within one database, but the restored copy's sequence
    stands where the backup was taken, and the live database has since handed out those numbers for other data:
    without this, a cache could answer for the restored data with results computed from the data it replaced.
    The road network restored with the roads stays valid for them: ``network_state`` follows the roads' new
    version, under a new instance id, instead of forcing a rebuild.
    """
    roads_version = conn.execute(sa.text("SELECT version FROM data_versions WHERE table_name = 'roads'")).scalar()
    network_fresh = conn.execute(sa.text("SELECT roads_version FROM network_state")).scalar() == roads_version
    conn.execute(sa.text("SELECT setval('data_version_seq', greatest(:beyond, "
                         "(SELECT last_value FROM data_version_seq)))"), {"beyond": max(beyond, 1)})
    conn.execute(sa.text("UPDATE data_versions SET version = nextval('data_version_seq')"))
    conn.execute(sa.text(
        "UPDATE network_state SET instance_id = gen_random_uuid(), roads_version = CASE WHEN :fresh "
        "THEN (SELECT version FROM data_versions WHERE table_name = 'roads') ELSE roads_version END"),
        {"fresh": network_fresh})


def _swap(admin: psycopg.Connection, *, live: str, staging: str, exists: bool) -> str | None:
    """Give the restored database the live one's name, in one transaction; return the name the replaced one now
    has (None if there was none).

    A database in use cannot be renamed, so new connections to the live database are refused for the moment of
    the swap and the open ones are closed; the service's pool then reconnects, to the restored database.
    """
    if not exists:
        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(live)))
        return None
    previous = f"{live[:30]}_before_restore_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(live)))
    swapped = False
    try:
        deadline = time.monotonic() + SWAP_TIMEOUT_S
        while not swapped:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (live,))
            try:
                with admin.transaction():
                    admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(live), sql.Identifier(previous)))
                    admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(staging), sql.Identifier(live)))
                swapped = True
            except psycopg.errors.ObjectInUse:  # a closed connection has not quite ended yet
                if time.monotonic() > deadline:
                    raise SetupError(f"the connections to {live} could not be closed within {SWAP_TIMEOUT_S} s "
                                     "(may this role end other sessions?); nothing was changed") from None
                time.sleep(0.1)
    finally:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
            sql.Identifier(previous if swapped else live)))
    return previous


# -- databases and tools -------------------------------------------------------------------------------------

def pg_tool(name: str, bin_dir: Path | None = None) -> Path:
    """Path of a PostgreSQL program (pg_dump, pg_restore) from the installation the embedded cluster uses."""
    path = find_bin_dir(bin_dir) / name
    if not path.exists():
        raise SetupError(f"{name} was not found in {path.parent}; install it: apt-get install -y postgresql-client")
    return path


def libpq_params(url: str, database: str | None = None) -> tuple[str, dict[str, str]]:
    """The libpq connection string of a SQLAlchemy URL, and an environment carrying its password (kept off the
    command line, where any user could read it)."""
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
def admin_connection(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the server's maintenance database (postgres, else template1)."""
    password = make_url(url).password
    failure: psycopg.OperationalError | None = None
    for database in MAINTENANCE_DATABASES:
        conninfo, _ = libpq_params(url, database)
        try:
            conn = psycopg.connect(conninfo, password=password, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            failure = exc
            continue
        with conn:
            yield conn
        return
    raise SetupError(f"cannot connect to the server's postgres or template1 database to create, rename and drop "
                     f"databases: {failure}")


def _url_of(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _database_options(admin: psycopg.Connection, name: str) -> dict | None:
    """Encoding, collation, character type and owner of a database; None if it does not exist."""
    row = admin.execute("SELECT pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba) "
                        "FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if row is None:
        return None
    return dict(zip(("encoding", "lc_collate", "lc_ctype", "owner"), row, strict=True))


def _create_database(admin: psycopg.Connection, name: str, like: dict | None) -> None:
    """Create an empty database; with the encoding, locale and owner of ``like`` when given (else UTF8 and the
    server's locale)."""
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
    if like is not None:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {} "
                            "OWNER {}").format(sql.Identifier(name), sql.Literal(like["encoding"]),
                                               sql.Literal(like["lc_collate"]), sql.Literal(like["lc_ctype"]),
                                               sql.Identifier(like["owner"]))
    try:
        admin.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SetupError(f"this role may not create the database {name} that a restore is made in: "
                         f"{exc.diag.message_primary}; restore with a superuser's GIS_DATABASE_URL") from None


def _drop_database(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pg_restore(archive: Archive, url: str, bin_dir: Path | None) -> None:
    """Restore ``archive`` into the empty database at ``url``, stopping at the first error."""
    conninfo, env = libpq_params(url)
    result = _run(pg_tool("pg_restore", bin_dir), "--exit-on-error", "--no-password", f"--dbname={conninfo}",
                  str(archive.path), env=env)
    if result.returncode != 0:
        raise BackupFileError(f"{archive.path} could not be restored ({_tool_message(result)}); it may be damaged "
                              "or truncated. Nothing was changed.")


def _run(program: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), *args], capture_output=True, text=True, env=env)


def _tool_message(result: subprocess.CompletedProcess) -> str:
    """The last lines pg_dump or pg_restore printed about a failure, without their 'pg_restore: error:' prefix."""
    lines = [re.sub(r"^pg_\w+: (error: |detail: )?", "", line) for line in result.stderr.strip().splitlines()]
    return "; ".join(lines[-3:]) or f"exit code {result.returncode}"
