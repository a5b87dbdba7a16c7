"""Backing up the whole database to one file and restoring it (pg_dump and pg_restore, custom format).

A backup is one ``pg_dump --format=custom`` archive of the database: the schema and its alembic revision, every
layer, the inspection records, the place-name history, the audit trail and the tokens' hashes. It is an ordinary
archive (``pg_restore --list FILE`` reads it without this service), written with the ``pg_dump`` of the
PostgreSQL the embedded cluster uses (``GIS_PG_BIN_DIR``, or the newest one with PostGIS), for the embedded
cluster and for a server named by ``GIS_DATABASE_URL`` alike, as the service role.

The per-table checksums a backup reports (:func:`checksums`) are computed in the very snapshot ``pg_dump``
reads (an exported snapshot of a read-only repeatable-read transaction), so they describe exactly the data in
the file, even while the service keeps writing.

**The manifest.** Beside the archive, ``FILE.manifest`` (JSON) says what it holds: the database's schema revision,
the tables whose rows it carries, each table's rows and checksums (the tokens' included), the archive's size and
sha256, and an HMAC-SHA256 signature by a key kept in the data folder (``backup.key``, 0600), never in a backup.
Beside rather than inside: the archive stays a plain pg_dump file that PostgreSQL's own tools read in an emergency,
and pg_dump's format has no place for our own data. Signed, because anyone who can change the archive can change a
manifest next to it; an unsigned one would only catch accidents.

**What a restore takes from the file: rows, nothing else.** A crafted archive can hold any SQL: a function that runs
``COPY ... TO PROGRAM``, a trigger, an event trigger, a table of its own, or SQL in place of a real object's
definition. So the schema is never taken from the archive. A restore:

1. checks the manifest's signature and the archive's sha256 (or, with ``without_manifest``, takes the file as it is:
   for backups written before manifests existed);
2. makes a fresh database beside the live one (a superuser's work: the database, the extensions) and builds the
   schema there with this version's own migrations, as the service role, up to the archive's revision;
3. compares the archive's table of contents (``pg_restore --list``) with that of this fresh database, dumped the
   same way: any entry more (a function, trigger, event trigger, table, COPY into another table) or fewer is
   refused. Privileges (ACL entries) are left out of the comparison: they are never applied;
4. loads the rows: ``pg_restore --data-only --no-owner --no-privileges`` prints the COPY blocks of the known tables,
   which are parsed here and written through COPY statements built here, as the service role; a line that is not
   a known COPY header, a row, a sequence position or pg_restore's own preamble is refused. No SQL from the file
   ever reaches the server;
5. compares every table's checksums with the manifest's: a token, audit entry or feature the manifest does not
   account for is refused;
6. upgrades the copy to this version's schema, seals its audit log, and only then gives it the live database's
   name.

Restoring into a fresh database rather than ``pg_restore --clean`` into the live one:

- a file that turns out to be bad half-way (truncated, corrupt, written by a newer schema) fails while the live
  database is untouched, and the half-restored copy is dropped;
- the swap is two renames in one transaction: the service sees the old data or the new, never a mix, and does
  not wait on the restore's locks while it runs;
- the database as it was before is kept under another name (``<name>_before_restore_<UTC time>``) until someone
  drops it, so a mistaken restore can be undone.

The price: set-up work needs a role that may create databases and extensions (the embedded cluster's superuser;
``GIS_ADMIN_DATABASE_URL`` on another server), the server needs room for two copies for a moment, and the open
connections to the live database are closed at the swap (the service's pool reconnects, to the restored data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import graphlib
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from gis_service import __version__
from gis_service.db import migrate, roles
from gis_service.db.cluster import find_bin_dir, write_private_file
from gis_service.db.engine import connect, create_db_engine, libpq_params
from gis_service.errors import BackupFileError, InvalidInputError, SetupError
from gis_service.layers import LAYERS

#: Tables beside the layers whose rows a backup must carry unchanged (checked like the layers, without geometry).
RECORD_TABLES = ("marker_inspections", "place_name_events", "audit_log", "api_tokens")
#: Databases to connect to for creating, renaming and dropping the others.
MAINTENANCE_DATABASES = ("postgres", "template1")
#: How long the swap keeps trying to close the live database's connections.
SWAP_TIMEOUT_S = 30
MANIFEST_FORMAT = "gis-service backup manifest 1"
#: The signing key's file in the data folder.
KEY_FILE = "backup.key"
NOTHING_CHANGED = "Nothing was changed."


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


# -- the signing key and the manifest ---------------------------------------------------------------------------

def backup_key(data_dir: Path, *, create: bool = False) -> bytes | None:
    """The key manifests are signed with, from ``data_dir/backup.key``; made (random, 0600) when ``create`` and there
    is none yet. None when there is none."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError), os.fdopen(
                os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def manifest_path(archive_path: Path) -> Path:
    """Where the manifest of a backup file is: beside it, ``FILE.manifest``."""
    archive_path = Path(archive_path)
    return archive_path.with_name(archive_path.name + ".manifest")


@dataclass(frozen=True)
class Manifest:
    """What ``db backup`` says a backup file holds."""

    database: str
    #: When the backup was taken (UTC, ISO 8601).
    created: str
    revision: str
    size_bytes: int
    sha256: str
    #: Every table whose rows the archive holds (its TABLE DATA entries).
    data: tuple[str, ...]
    #: Rows and checksums of the layers and the record tables (tokens, audit trail, ...).
    checksums: dict[str, TableChecksum]

    def body(self) -> dict:
        return {"format": MANIFEST_FORMAT, "gis_service": __version__, "database": self.database,
                "created": self.created, "revision": self.revision,
                "archive": {"bytes": self.size_bytes, "sha256": self.sha256}, "data": list(self.data),
                "tables": {name: dataclasses.asdict(sums) for name, sums in self.checksums.items()}}


def _signature(body: dict, key: bytes) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return "hmac-sha256:" + hmac.new(key, canonical, hashlib.sha256).hexdigest()


def write_manifest(path: Path, manifest: Manifest, key: bytes) -> None:
    """Write the signed manifest to ``path`` (mode 0600: it names the tables and their sizes)."""
    body = manifest.body()
    write_private_file(path, json.dumps({**body, "signature": _signature(body, key)}, indent=1,
                                        ensure_ascii=False) + "\n")


def read_manifest(archive_path: Path, key: bytes | None) -> Manifest:
    """The manifest of ``archive_path``, checked: signed with ``key``, and describing this very file (size and
    sha256). Raises BackupFileError saying what is wrong."""
    path = manifest_path(archive_path)
    if not path.is_file():
        raise BackupFileError(
            f"{archive_path} has no manifest ({path.name} beside it), so what it holds cannot be checked. Keep the "
            f"manifest `gis-service db backup` writes with the file; for a backup written before manifests existed, "
            f"and whose origin you know, restore with --without-manifest. {NOTHING_CHANGED}")
    if key is None:
        raise BackupFileError(f"this installation has no backup key ({KEY_FILE} in the data folder), so the manifest "
                              f"of {archive_path} cannot be checked: copy the key of the installation that wrote the "
                              f"backup into the data folder (GIS_DATA_DIR). {NOTHING_CHANGED}")
    try:
        document = json.loads(path.read_text())
        signature = document.pop("signature")
        manifest = Manifest(
            database=document["database"], created=document["created"], revision=document["revision"],
            size_bytes=int(document["archive"]["bytes"]), sha256=document["archive"]["sha256"],
            data=tuple(document["data"]),
            checksums={name: TableChecksum(**sums) for name, sums in document["tables"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupFileError(f"{path} is not a readable backup manifest ({exc}). {NOTHING_CHANGED}") from None
    if document.get("format") != MANIFEST_FORMAT or not hmac.compare_digest(str(signature),
                                                                          _signature(manifest.body(), key)):
        raise BackupFileError(
            f"the manifest {path} was not written by this installation's `db backup`, or was changed since: its "
            f"signature does not match ({KEY_FILE} in the data folder). {NOTHING_CHANGED}")
    size, digest = _sha256(archive_path)
    if (size, digest) != (manifest.size_bytes, manifest.sha256):
        raise BackupFileError(f"{archive_path} is not the file its manifest describes ({size:,} bytes, sha256 "
                              f"{digest[:12]}… instead of {manifest.size_bytes:,} bytes, {manifest.sha256[:12]}…): it "
                              f"was changed or damaged after the backup. {NOTHING_CHANGED}")
    return manifest


def _sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# -- the archive -----------------------------------------------------------------------------------------

#: One line of ``pg_restore --list``: ``id; catalog-oid oid TYPE SCHEMA NAME OWNER``.
TOC_LINE = re.compile(r"^(\d+); \d+ \d+ (.*)$")


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
    #: Its table of contents: entry ("TABLE DATA public roads", "FUNCTION public f()", ...) -> dump id.
    entries: dict[str, int]
    #: Schema revision of the database it holds.
    revision: str
    #: What ``db backup`` said it holds; None for a backup restored ``without_manifest``.
    manifest: Manifest | None


def open_archive(path: Path, *, key: bytes | None = None, without_manifest: bool = False,
                 bin_dir: Path | None = None) -> Archive:
    """Check that ``path`` is a gis-service backup, described by its manifest, and say what it holds; nothing is
    changed.

    Raises BackupFileError when the file is missing, its manifest is missing, unsigned or does not describe it (unless
    ``without_manifest``), it is not a pg_dump custom-format archive, or holds another database. Damage further in (a
    truncated or corrupted data section), a schema newer than this version's, and objects a backup does not hold
    are refused when restoring, which then fails without changing the live database.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupFileError(f"{path} does not exist or is not a file; give the path of a file written by "
                              "`gis-service db backup`")
    manifest = None if without_manifest else read_manifest(path, key)  # before pg_restore reads a byte of it
    result = _run(pg_tool("pg_restore", bin_dir), "--list", str(path))
    if result.returncode != 0:
        raise BackupFileError(f"{path} is not a backup that pg_restore can read ({_tool_message(result)}); "
                              f"give a file written by `gis-service db backup`. {NOTHING_CHANGED}")
    listing = result.stdout
    entries: dict[str, int] = {}
    for line in listing.splitlines():
        if match := TOC_LINE.match(line):
            entry = match.group(2).rsplit(" ", 1)[0]  # without the owner
            if entry in entries:
                raise BackupFileError(f"{path} holds {entry} twice: it is not a gis-service backup. {NOTHING_CHANGED}")
            entries[entry] = int(match.group(1))
    tables = frozenset(name.removeprefix("TABLE DATA public ") for name in entries
                       if name.startswith("TABLE DATA public "))
    missing = sorted({"alembic_version", *(layer.table for layer in LAYERS.values())} - tables)
    if missing:
        raise BackupFileError(f"{path} is a PostgreSQL archive but not a gis-service backup: it holds no "
                              f"{', '.join(missing)}. {NOTHING_CHANGED}")
    if manifest is not None and set(manifest.data) != tables:
        raise BackupFileError(f"{path} holds the rows of other tables than its manifest lists. {NOTHING_CHANGED}")
    revision = _archived_revision(path, entries, bin_dir)
    if manifest is not None and manifest.revision != revision:
        raise BackupFileError(f"{path} holds schema {revision}, its manifest says {manifest.revision}. "
                              f"{NOTHING_CHANGED}")
    database = re.search(r"^;\s+dbname: (.*)$", listing, re.MULTILINE)
    created = re.search(r"^; Archive created at (.*)$", listing, re.MULTILINE)
    return Archive(path=path, database=database.group(1).strip() if database else "",
                   created=created.group(1).strip() if created else "", tables=tables, entries=entries,
                   revision=revision, manifest=manifest)


def _archived_revision(path: Path, entries: dict[str, int], bin_dir: Path | None) -> str:
    """The schema revision in the archive's alembic_version rows."""
    found: list[bytes] = []

    def keep(table: str, columns: list[str], rows: Iterator[bytes]) -> None:
        found.extend(rows)

    _read_data(path, [entries["TABLE DATA public alembic_version"]], bin_dir, on_rows=keep, on_sequence=None)
    revisions = [row.decode(errors="replace").strip() for row in found]
    if len(revisions) != 1 or not re.fullmatch(r"[0-9a-z_]{1,64}", revisions[0]):
        raise BackupFileError(f"{path} holds no schema revision (alembic_version holds {len(revisions)} rows): it "
                              f"is not a gis-service backup. {NOTHING_CHANGED}")
    return revisions[0]


def _check_revision(archive: Archive) -> None:
    if not migrate.is_known_revision(archive.revision):
        raise BackupFileError(f"{archive.path} was written by a newer gis-service (schema {archive.revision}); "
                              f"upgrade gis-service before restoring it. {NOTHING_CHANGED}")


# -- reading the rows out of an archive -----------------------------------------------------------------------------

#: The lines of pg_restore's SQL output that carry no data and are skipped: comments, its session settings, and
#: the \restrict lines of PostgreSQL 15.14 and later. ``SET client_encoding`` is checked apart.
PREAMBLE = re.compile(rb"--.*|SET (?!client_encoding\b)\w+ = [\w'.-]*;|"
                      rb"SELECT pg_catalog\.set_config\('search_path', '', false\);|\\(un)?restrict \w+|")
COPY_HEADER = re.compile(rb"COPY public\.(\w+) \(((?:\w+|\"[^\"]+\")(?:, (?:\w+|\"[^\"]+\"))*)\) FROM stdin;")
SEQUENCE_POSITION = re.compile(rb"SELECT pg_catalog\.setval\('public\.(\w+)', (\d+), (true|false)\);")
END_OF_ROWS = b"\\.\n"

RowsCallback = Callable[[str, list[str], Iterator[bytes]], None]
SequenceCallback = Callable[[str, int, bool], None]


def _read_data(path: Path, dump_ids: list[int], bin_dir: Path | None, *, on_rows: RowsCallback,
               on_sequence: SequenceCallback | None) -> None:
    """Read the rows and sequence positions of the archive's entries ``dump_ids`` (TABLE DATA, SEQUENCE SET), in that
    order, without running any of it: ``on_rows(table, columns, rows)`` gets each table's rows as COPY text lines
    (``rows`` must be used up), ``on_sequence(name, value, is_called)`` each sequence's position.

    Raises BackupFileError for anything else in pg_restore's output (the archive's own SQL in place of a COPY
    header), and when pg_restore fails (a damaged or truncated file).
    """
    with tempfile.NamedTemporaryFile("w", prefix="gis-restore-", suffix=".list") as listing, \
            tempfile.TemporaryFile() as errors:
        listing.write("".join(f"{dump_id};\n" for dump_id in dump_ids))
        listing.flush()
        process = subprocess.Popen(
            [str(pg_tool("pg_restore", bin_dir)), "--data-only", "--no-owner", "--no-privileges",
             f"--use-list={listing.name}", "--file=-", str(path)], stdout=subprocess.PIPE, stderr=errors)
        failure: Exception | None = None
        try:
            _parse_data_script(path, process.stdout, on_rows=on_rows, on_sequence=on_sequence)
        except (psycopg.Error, BackupFileError) as exc:  # let pg_restore finish, to hear if the file is damaged
            failure = exc
            while process.stdout.read(1 << 20):
                pass
        except BaseException:
            process.kill()
            raise
        finally:
            process.stdout.close()
            process.wait()
        if process.returncode != 0:
            errors.seek(0)
            message = _tool_message(subprocess.CompletedProcess([], process.returncode, "",
                                                                errors.read().decode(errors="replace")))
            raise BackupFileError(f"{path} could not be restored ({message}); it may be damaged or truncated. "
                                  f"{NOTHING_CHANGED}")
        if isinstance(failure, psycopg.Error):
            raise BackupFileError(f"{path} holds rows the tables refuse ({failure}); it may be damaged. "
                                  f"{NOTHING_CHANGED}")
        if failure is not None:
            raise failure


def _parse_data_script(path: Path, lines: Iterator[bytes], *, on_rows: RowsCallback,
                       on_sequence: SequenceCallback | None) -> None:
    def refuse(what: bytes) -> BackupFileError:
        shown = what.decode(errors="replace").strip()[:80]
        return BackupFileError(f"{path} holds SQL where a backup holds only rows ({shown!r}): it is not a "
                               f"gis-service backup. {NOTHING_CHANGED}")

    for line in lines:
        text = line.rstrip(b"\n")
        if header := COPY_HEADER.fullmatch(text):
            columns = [_unquote(column) for column in header.group(2).decode().split(", ")]
            rows = _rows_until_end(path, lines)
            on_rows(header.group(1).decode(), columns, rows)
            if next(rows, None) is not None:
                raise AssertionError("on_rows must read every row")
        elif (position := SEQUENCE_POSITION.fullmatch(text)) and on_sequence is not None:
            on_sequence(position.group(1).decode(), int(position.group(2)), position.group(3) == b"true")
        elif text.startswith(b"SET client_encoding = "):
            if text != b"SET client_encoding = 'UTF8';":
                raise BackupFileError(f"{path} is not in UTF8 ({text.decode(errors='replace')}). {NOTHING_CHANGED}")
        elif not PREAMBLE.fullmatch(text):
            raise refuse(text)


def _rows_until_end(path: Path, lines: Iterator[bytes]) -> Iterator[bytes]:
    for line in lines:
        if line == END_OF_ROWS:
            return
        yield line
    raise BackupFileError(f"{path} ends in the middle of a table's rows; it may be truncated. {NOTHING_CHANGED}")


def _unquote(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


# -- backup -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupResult:
    """A written backup: its archive, size in bytes, the seconds it took, and the checksums of the data in it."""

    archive: Archive
    size_bytes: int
    seconds: float
    checksums: dict[str, TableChecksum]


def backup(url: str, path: Path, *, key: bytes, bin_dir: Path | None = None) -> BackupResult:
    """Write the whole database at ``url`` to ``path``, and its manifest signed with ``key`` beside it
    (:func:`manifest_path`); return the checksums of the data written.

    The files appear only when complete: pg_dump writes to a temporary name beside it, which is read back
    (:func:`open_archive`) and then renamed, so a failed backup leaves an older file of the same name as it was.
    The files are readable by their owner only: they hold the audit trail and the tokens' hashes.
    """
    path = Path(path).absolute()
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; give the path of the backup file to write, e.g. "
                                f"{path / 'gis.backup'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial_manifest = manifest_path(partial)
    started = time.perf_counter()
    engine = create_db_engine(url)
    try:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with engine.connect().execution_options(**options) as conn:
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            sums = checksums(conn)
            partial.touch(mode=0o600)
            partial.chmod(0o600)
            result = _pg_dump(url, partial, f"--snapshot={snapshot}")
            conn.rollback()
        if result.returncode != 0:
            raise SetupError(f"pg_dump could not back up the database: {_tool_message(result)}")
        archive = open_archive(partial, without_manifest=True, bin_dir=bin_dir)
        size, digest = _sha256(partial)
        manifest = Manifest(database=make_url(url).database or "", revision=archive.revision,
                            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), size_bytes=size,
                            sha256=digest, data=tuple(sorted(archive.tables)), checksums=sums)
        write_manifest(partial_manifest, manifest, key)
        partial.replace(path)
        partial_manifest.replace(manifest_path(path))
    except BaseException:
        partial.unlink(missing_ok=True)
        partial_manifest.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    return BackupResult(archive=dataclasses.replace(archive, path=path, manifest=manifest), size_bytes=size,
                        seconds=time.perf_counter() - started, checksums=sums)


def verify_backup(url: str, archive: Archive, expected: dict[str, TableChecksum], *, admin_url: str | None = None,
                  bin_dir: Path | None = None) -> dict[str, TableChecksum]:
    """Restore ``archive`` (with every check a restore makes) into a throwaway database beside ``url``'s, compare its
    checksums with ``expected``, drop it, and return the checksums found. Raises BackupFileError naming every table
    that differs. ``admin_url``: the role that creates and drops the database (default: ``url``'s)."""
    _check_revision(archive)
    admin_url = admin_url or url
    live = make_url(url).database
    scratch = f"{live[:40]}_verify_{os.getpid()}"
    with admin_connection(admin_url) as admin:
        like = _database_options(admin, live)
        _drop_database(admin, scratch)
        _create_database(admin, scratch, like)
        try:
            _prepare_database(admin_url, scratch, service_role=make_url(url).username)
            found = _restore_into(_url_of(url, scratch), archive, bin_dir)
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


def restore(url: str, archive: Archive, *, admin_url: str | None = None, audit_owner: str | None = None,
            bin_dir: Path | None = None, keep_previous: bool = True) -> RestoreResult:
    """Replace the database at ``url`` with the rows of ``archive``; see the module docstring for how and why.

    The rows are written as ``url``'s role, which owns the restored tables; ``admin_url``'s role (default: the same)
    creates, renames and drops the databases and creates the extensions. ``audit_owner``: the role the restored
    ``audit_log`` is handed to (default: its owner in the live database, when that is not ``url``'s role).

    Until the final swap nothing about the live database changes: any failure (a damaged file, objects a backup
    does not hold, rows the manifest does not account for, a server refusing) drops the half-restored copy and
    raises, BackupFileError for the file's faults. ``keep_previous=False`` drops the replaced database after the swap.
    """
    started = time.perf_counter()
    _check_revision(archive)
    admin_url = admin_url or url
    live = make_url(url).database
    service_role = make_url(url).username
    if not live or live in MAINTENANCE_DATABASES:
        raise InvalidInputError(f"cannot restore into the database {live!r}: name the service's own database")
    staging = f"{live[:40]}_restoring"
    with admin_connection(admin_url) as admin:
        like = _database_options(admin, live)
        beyond = _data_version_in_use(url) if like is not None else 0
        if audit_owner is None and like is not None:
            with connect(admin_url, live) as live_admin:
                owner = roles.audit_log_owner(live_admin)
            audit_owner = owner if owner not in (None, service_role) else None
        _drop_database(admin, staging)  # left by a restore that was interrupted
        _create_database(admin, staging, like)
        try:
            _prepare_database(admin_url, staging, service_role=service_role)
            staging_url = _url_of(url, staging)
            loaded = _restore_into(staging_url, archive, bin_dir)
            sums = _prepare_restored(staging_url, data_versions_beyond=beyond,
                                     unchanged=loaded if archive.revision == migrate.head_revision() else None)
            if audit_owner is not None:
                with connect(admin_url, staging) as staging_admin:
                    roles.seal_audit_log(staging_admin, service_role=service_role, owner=audit_owner)
            previous = _swap(admin, live=live, staging=staging, exists=like is not None)
        except BaseException:
            _drop_database(admin, staging)
            raise
        if previous is not None and not keep_previous:
            _drop_database(admin, previous)
            previous = None
    return RestoreResult(database=live, previous=previous, revision=archive.revision,
                         seconds=time.perf_counter() - started, checksums=sums)


def _restore_into(url: str, archive: Archive, bin_dir: Path | None) -> dict[str, TableChecksum]:
    """Into the empty database at ``url`` (its extensions made): build the schema at the archive's revision with the
    migrations, check the archive's table of contents against it, load the rows, check them against the manifest.
    Returns the checksums of the rows loaded."""
    migrate.upgrade(url, archive.revision)
    _check_contents(url, archive, bin_dir)
    with connect(url, autocommit=False) as conn:  # one transaction, committed at the end of the block
        _load_rows(conn, archive, bin_dir)
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            sums = checksums(conn)
    finally:
        engine.dispose()
    if archive.manifest is not None:
        problems = differences(archive.manifest.checksums, sums)
        if problems:
            raise BackupFileError(f"{archive.path} holds rows its manifest does not account for: "
                                  f"{'; '.join(problems)}. {NOTHING_CHANGED}")
    return sums


def _check_contents(url: str, archive: Archive, bin_dir: Path | None) -> None:
    """Refuse an archive whose table of contents differs from that of the database at ``url`` (this version's
    schema at the archive's revision, dumped the same way); privileges are left out: they are never applied."""
    with tempfile.TemporaryDirectory(prefix="gis-restore-") as folder:
        reference = Path(folder) / "reference.backup"
        result = _pg_dump(url, reference)
        if result.returncode != 0:
            raise SetupError(f"pg_dump could not dump the new database: {_tool_message(result)}")
        expected = open_archive(reference, without_manifest=True, bin_dir=bin_dir).entries
    extra = sorted(entry for entry in set(archive.entries) - set(expected) if not entry.startswith("ACL "))
    missing = sorted(entry for entry in set(expected) - set(archive.entries) if not entry.startswith("ACL "))
    if extra or missing:
        said = [f"{len(extra)} object(s) a gis-service backup does not hold ({'; '.join(extra[:5])})"] if extra else []
        said += [f"lacks {len(missing)} it does hold ({'; '.join(missing[:5])})"] if missing else []
        raise BackupFileError(f"{archive.path} is not a gis-service backup of schema {archive.revision}: it holds "
                              f"{' and '.join(said)}. {NOTHING_CHANGED}")


def _load_rows(conn: psycopg.Connection, archive: Archive, bin_dir: Path | None) -> None:
    """Load the archive's rows into the tables at its revision, in ``conn``'s transaction, as ``conn``'s role.

    The rows the migrations put in (data versions, the revision, pinyin readings) are cleared first; user triggers
    are off while loading (the rows are as they were: search keys, versions and change history included), and the
    tables are filled in the order of their foreign keys, which stay on. A table the role does not own (PostGIS's
    spatial_ref_sys) must have no rows in the archive.
    """
    cursor = conn.cursor()
    cursor.execute("SET LOCAL client_encoding = 'UTF8'")
    owned = cursor.execute("""
        SELECT c.relname, array_agg(a.attname ORDER BY a.attnum)
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                                 AND a.attgenerated = ''
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relowner = to_regrole(current_user)
        GROUP BY c.relname""").fetchall()
    columns_of = dict(owned)
    references = cursor.execute("""
        SELECT c.relname, r.relname FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
        WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace""").fetchall()
    sequences = {row[0] for row in cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'S' "
                                                  "AND relnamespace = 'public'::regnamespace")}
    graph: dict[str, set[str]] = {table: set() for table in archive.tables}  # table -> the tables it refers to
    for table, referenced in references:
        if table in graph and referenced in graph and referenced != table:
            graph[table].add(referenced)
    order = list(graphlib.TopologicalSorter(graph).static_order())
    loaded = [table for table in order if table in columns_of]
    for table in loaded:
        cursor.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier("public", table)))
    cursor.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier("public", t) for t in loaded)))
    # indexes are built after the rows, as pg_restore does (one place_names row costs 13 index insertions)
    indexes = cursor.execute("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""", (loaded,)).fetchall()
    for name, _ in indexes:
        cursor.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    expected = {table: columns_of.get(table) for table in order}

    def copy_rows(table: str, columns: list[str], rows: Iterator[bytes]) -> None:
        if table not in expected:
            raise BackupFileError(f"{archive.path} holds rows for the table {table}, which a gis-service backup does "
                                  f"not have. {NOTHING_CHANGED}")
        known = expected.pop(table)
        if known is None:  # a table the service does not own: no rows of its own in a backup
            if next(rows, None) is not None:
                raise BackupFileError(f"{archive.path} holds rows for {table}, which a gis-service backup leaves "
                                      f"empty. {NOTHING_CHANGED}")
            return
        if sorted(columns) != sorted(known):
            raise BackupFileError(f"{archive.path} holds rows of {table} with other columns ({', '.join(columns)}) "
                                  f"than schema {archive.revision} has. {NOTHING_CHANGED}")
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier("public", table),
                                                              sql.SQL(", ").join(map(sql.Identifier, columns)))
        with cursor.copy(statement) as copy:
            batch = bytearray()
            for row in rows:
                batch += row
                if len(batch) > 1 << 20:
                    copy.write(batch)
                    batch.clear()
            copy.write(batch)

    def set_sequence(name: str, value: int, is_called: bool) -> None:
        if name not in sequences:
            raise BackupFileError(f"{archive.path} sets a sequence {name}, which a gis-service backup does not "
                                  f"have. {NOTHING_CHANGED}")
        cursor.execute("SELECT setval(%s::regclass, %s, %s)", (sql.Identifier("public", name).as_string(conn),
                                                                 value, is_called))

    positions = [dump_id for entry, dump_id in archive.entries.items() if entry.startswith("SEQUENCE SET public ")]
    _read_data(archive.path, [archive.entries[f"TABLE DATA public {table}"] for table in order] + positions, bin_dir,
               on_rows=copy_rows, on_sequence=set_sequence)
    for _, definition in indexes:
        cursor.execute(definition)
    for table in loaded:
        cursor.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.Identifier("public", table)))


def _prepare_restored(url: str, *, data_versions_beyond: int,
                      unchanged: dict[str, TableChecksum] | None) -> dict[str, TableChecksum]:
    """Upgrade the restored copy to this version's head, renumber its data versions and gather planner statistics;
    return the copy's checksums (``unchanged`` when the copy was at the head already: nothing then changed them)."""
    migrate.upgrade(url)
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            _renumber_data_versions(conn, beyond=data_versions_beyond)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))  # the loaded tables have no statistics yet
        if unchanged is not None:
            return unchanged
        with engine.connect() as conn:
            return checksums(conn)
    finally:
        engine.dispose()


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


def _pg_dump(url: str, file: Path, *options: str, bin_dir: Path | None = None) -> subprocess.CompletedProcess:
    conninfo, env = libpq_params(url)
    return _run(pg_tool("pg_dump", bin_dir), "--format=custom", "--no-password", *options, f"--file={file}",
                f"--dbname={conninfo}", env=env)


@contextlib.contextmanager
def admin_connection(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the server's maintenance database (postgres, else template1)."""
    failure: psycopg.OperationalError | None = None
    for database in MAINTENANCE_DATABASES:
        try:
            connection = connect(url, database)
            conn = connection.__enter__()
        except psycopg.OperationalError as exc:
            failure = exc
            continue
        try:
            yield conn
        finally:
            connection.__exit__(None, None, None)
        return
    raise SetupError(f"cannot connect to the server's postgres or template1 database to create, rename and drop "
                     f"databases: {failure}")


def _prepare_database(admin_url: str, name: str, *, service_role: str) -> None:
    """The extensions in the new database ``name``, and the service role's right to create its tables there."""
    try:
        with connect(admin_url, name) as admin:
            roles.prepare_database(admin, service_role=service_role)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SetupError(f"this role may not create the extensions in the database {name} that a restore is made "
                         f"in: {exc.diag.message_primary}; set GIS_ADMIN_DATABASE_URL to a superuser's URL") from None


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
                         f"{exc.diag.message_primary}; set GIS_ADMIN_DATABASE_URL to a superuser's URL") from None


def _drop_database(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _run(program: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), *args], capture_output=True, text=True, env=env)


def _tool_message(result: subprocess.CompletedProcess) -> str:
    """The last lines pg_dump or pg_restore printed about a failure, without their 'pg_restore: error:' prefix."""
    lines = [re.sub(r"^pg_\w+: (error: |detail: )?", "", line) for line in result.stderr.strip().splitlines()]
    return "; ".join(lines[-3:]) or f"exit code {result.returncode}"
