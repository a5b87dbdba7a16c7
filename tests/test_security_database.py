"""No local user reaches the database, and a restore takes only what a backup should hold (issue 18, findings 2 and 4).

The embedded cluster admits the service only: other users cannot enter its socket's folder, every connection needs
its role's password, the service's role is no superuser, and the audit log is append-only for it; a data folder made
by the earlier version (trust, everything the superuser's) is closed on its next start. A restore refuses any
archive holding more than a gis-service backup (a function running a shell command, a trigger, an event trigger, a
table of its own, SQL in place of rows, a planted token, a tampered manifest) with the live database unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gis_service.auth import create_token
from gis_service.db import backup, migrate
from gis_service.db.cluster import DATABASE_NAME, SERVER_CONFIG, SUPERUSER, EmbeddedCluster
from gis_service.db.engine import connect, create_db_engine
from gis_service.db.roles import AUDIT_OWNER, SERVICE_ROLE
from gis_service.errors import BackupFileError
from gis_service.settings import Settings

from .helpers import REPO, create_database, drop_database, load_small_county

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root (as CI runs)")
#: Where a shell command run by a crafted backup would leave its mark.
MARKER = Path(tempfile.gettempdir()) / "gis-security-test-pwned"


def _as_nobody(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=60,
                          cwd="/")


def _psql(cluster: EmbeddedCluster, role: str, *, user: str | None = None,
          **conninfo: str) -> subprocess.CompletedProcess:
    """psql as ``role`` over the cluster's socket, run by the OS user ``user`` (default: this process's)."""
    target = psycopg.conninfo.make_conninfo(host=str(cluster.socket_dir), port="5432", dbname=DATABASE_NAME,
                                            user=role, **conninfo)
    command = ["psql", "--no-password", target, "-c", "SELECT token_hash FROM api_tokens"]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/",
                          env={**os.environ, "PGPASSFILE": "/nonexistent"})


#: One audit entry for each token, as a change through the API would write it.
AUDIT_ENTRY_PER_TOKEN = sa.text("INSERT INTO audit_log (token_id, actor, role, layer, feature_id, action) "
                                "SELECT id, name, role, 'elder_care', 1, 'update' FROM api_tokens")


def _small_county_with_an_admin(url: str, name: str, settings: Settings, demo_frames: dict) -> None:
    """Migrate the empty database at ``url`` and put in the small county, an admin token and its audit entry."""
    load_small_county(url, settings, demo_frames)
    engine = create_db_engine(url)
    with engine.begin() as conn:
        create_token(conn, role="admin", name=name)
        conn.execute(AUDIT_ENTRY_PER_TOKEN)
    engine.dispose()


# -- the embedded cluster admits the service only -------------------------------------------------------------

@needs_root
@pytest.mark.parametrize("role", [SUPERUSER, SERVICE_ROLE])
def test_another_local_user_cannot_connect_to_the_cluster(test_cluster: EmbeddedCluster, role: str) -> None:
    refused = _psql(test_cluster, role, user="nobody")
    assert refused.returncode == 2
    assert "Permission denied" in refused.stderr  # the socket's folder is closed to it: no password is even asked
    assert "token_hash" not in refused.stdout


@needs_root
@pytest.mark.parametrize("what", ["pgpass", "pgdata/pg_hba.conf", "log/postgresql.log", "run/.s.PGSQL.5432.lock"])
def test_another_local_user_cannot_read_the_clusters_files(test_cluster: EmbeddedCluster, what: str) -> None:
    refused = _as_nobody("cat", str(test_cluster.data_dir / what))
    assert refused.returncode == 1 and "Permission denied" in refused.stderr
    assert refused.stdout == ""


@needs_root
def test_the_clusters_folders_and_password_file_are_their_owners_only(test_cluster: EmbeddedCluster) -> None:
    modes = {path.name: path.stat().st_mode & 0o777 for path in (
        test_cluster.data_dir, test_cluster.pgdata, test_cluster.socket_dir, test_cluster.log_file.parent,
        test_cluster.password_file)}
    # root's data folder may only be passed through (the postgres user runs the server in it)
    assert modes == {"data": 0o711, "pgdata": 0o700, "run": 0o700, "log": 0o700, "pgpass": 0o600}
    assert (test_cluster.socket_dir / ".s.PGSQL.5432").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("role", [SUPERUSER, SERVICE_ROLE])
@pytest.mark.parametrize("password", [None, "guessed"])
def test_every_connection_needs_its_roles_password(test_cluster: EmbeddedCluster, role: str,
                                                   password: str | None) -> None:
    # as this process's user, who can reach the socket: the server itself still asks for the password
    refused = _psql(test_cluster, role, **({"password": password} if password else {}))
    assert refused.returncode == 2
    expected = "password authentication failed" if password else "no password supplied"
    assert expected in refused.stderr and "token_hash" not in refused.stdout
    assert "scram-sha-256" in (test_cluster.pgdata / "pg_hba.conf").read_text()
    assert "trust" not in (test_cluster.pgdata / "pg_hba.conf").read_text()


def test_db_url_names_the_password_file_and_never_a_password(test_cluster: EmbeddedCluster) -> None:
    env = {**os.environ, "GIS_DATA_DIR": str(test_cluster.data_dir)}
    env.pop("GIS_DATABASE_URL", None)
    printed = subprocess.run([sys.executable, "-m", "gis_service.cli", "db", "url"], capture_output=True, text=True,
                             env=env, cwd=REPO, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == test_cluster.url()
    assert f"passfile={test_cluster.password_file}" in printed.stdout
    assert f"The password is in {test_cluster.password_file}" in printed.stderr
    passwords = [line.rsplit(":", 1)[1] for line in test_cluster.password_file.read_text().splitlines()
                 if not line.startswith("#")]
    assert len(passwords) == 2 and not any(p in printed.stdout + printed.stderr for p in passwords)


def test_the_service_connects_as_a_role_that_is_no_superuser(conn: sa.Connection) -> None:
    role, superuser, create_db, create_role = conn.execute(sa.text(
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")).one()
    assert (role, superuser, create_db, create_role) == (SERVICE_ROLE, False, False, False)


@pytest.mark.parametrize(("statement", "refusal"), [
    ("COPY (SELECT 1) TO PROGRAM 'touch {marker}'", "must be superuser or have privileges of the "
                                                    "pg_execute_server_program role"),
    ("SELECT pg_read_file('{pgpass}')", "permission denied for function pg_read_file"),
    ("COPY api_tokens FROM '/etc/passwd'", "must be superuser or have privileges of the pg_read_server_files"),
    ("CREATE ROLE intruder LOGIN", "permission denied to create role"),
    ("ALTER ROLE gis SUPERUSER", "must be superuser to alter superuser roles"),
    ("CREATE DATABASE intruder", "permission denied to create database"),
    ("CREATE FUNCTION intruder() RETURNS int LANGUAGE c AS '/tmp/x.so', 'f'", "permission denied for language c"),
    ("CREATE EXTENSION adminpack", "permission denied to create extension"),
    ("ALTER SYSTEM SET listen_addresses = '*'", "permission denied to set parameter"),
    ("DROP SCHEMA public CASCADE", "must be owner of schema public"),
])
def test_the_service_role_may_not_do_what_only_a_superuser_may(
        engine: sa.Engine, test_cluster: EmbeddedCluster, statement: str, refusal: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # some refuse transactions
        with pytest.raises(sa.exc.DBAPIError) as refused:
            conn.execute(sa.text(statement.format(marker=MARKER, pgpass=test_cluster.password_file)))
    assert refusal in str(refused.value.orig)
    assert not MARKER.exists()


def _owners(conn: sa.Connection) -> dict[str, str]:
    """The owner of every table and sequence of schema public, but PostGIS's spatial_ref_sys."""
    return dict(conn.execute(sa.text(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind IN ('r', 'S') AND relname <> 'spatial_ref_sys'")).all())


def test_the_service_role_owns_every_table_but_the_audit_log_and_neither_the_schema_nor_the_database(
        conn: sa.Connection) -> None:
    owners = _owners(conn)
    assert {"roads", "api_tokens", "alembic_version", "data_version_seq"} <= set(owners)
    assert owners.pop("audit_log") == owners.pop("audit_log_id_seq") == AUDIT_OWNER
    assert set(owners.values()) == {SERVICE_ROLE}
    owns_schema, database_owner, may_create = conn.execute(sa.text(
        "SELECT pg_has_role(current_user, nspowner, 'USAGE'), (SELECT pg_get_userbyid(datdba) FROM pg_database "
        "WHERE datname = current_database()), has_schema_privilege('public', 'CREATE') "
        "FROM pg_namespace WHERE nspname = 'public'")).one()
    # either would let it drop the audit log; it may create its tables in the schema
    assert (owns_schema, database_owner, may_create) == (False, SUPERUSER, True)


@pytest.mark.parametrize(("statement", "refusal"), [
    ("UPDATE audit_log SET actor = '无名氏'", "permission denied for table audit_log"),
    ("DELETE FROM audit_log", "permission denied for table audit_log"),
    ("TRUNCATE audit_log", "permission denied for table audit_log"),
    ("TRUNCATE api_tokens CASCADE", "permission denied for table audit_log"),
    ("DELETE FROM api_tokens", "violates foreign key constraint"),
    ("DROP TABLE audit_log", "must be owner of table audit_log"),
    ("ALTER TABLE audit_log RENAME TO old_audit_log", "must be owner of table audit_log"),
    ("ALTER TABLE audit_log OWNER TO gis", "must be owner of table audit_log"),
    ("CREATE RULE keep_nothing AS ON INSERT TO audit_log DO INSTEAD NOTHING", "must be owner of table audit_log"),
    ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner of table audit_log"),
    ("SET ROLE gis_audit", "permission denied to set role"),
])
def test_the_audit_log_is_append_only_for_the_service(
        conn: sa.Connection, tokens: dict[str, str], statement: str, refusal: str) -> None:
    conn.execute(AUDIT_ENTRY_PER_TOKEN)
    before = conn.execute(sa.text("SELECT id, actor FROM audit_log ORDER BY id")).all()
    assert len(before) >= 4  # the service appends and reads
    with pytest.raises(sa.exc.DBAPIError) as refused, conn.begin_nested():
        conn.execute(sa.text(statement))
    assert refusal in str(refused.value.orig)
    assert conn.execute(sa.text("SELECT id, actor FROM audit_log ORDER BY id")).all() == before


# -- a data folder made by the earlier version -------------------------------------------------------------------

@pytest.fixture()
def earlier_cluster(demo_frames: dict, settings: Settings) -> Iterator[EmbeddedCluster]:
    """A cluster made as the earlier version made it: initdb --auth=trust, the socket's folder open to all, the schema
    and the data the superuser's; with a token and an audit entry. Stopped."""
    folder = Path(tempfile.mkdtemp(prefix="gis-earlier-"))
    folder.chmod(0o755)  # as root the cluster runs as postgres, which must be able to enter the folder
    cluster = EmbeddedCluster(folder / "data")
    try:
        cluster._prepare_folders()
        cluster._run("initdb", "-D", str(cluster.pgdata), "--encoding=UTF8", "--locale=C.UTF-8",
                     f"--username={SUPERUSER}", "--auth=trust")
        cluster._write_server_file(cluster.pgdata / "postgresql.conf", (cluster.pgdata / "postgresql.conf").read_text()
                                   + SERVER_CONFIG.format(socket_dir=cluster.socket_dir, port=5432))
        for folder_of_all in (cluster.data_dir, cluster.socket_dir, cluster.log_file.parent):
            folder_of_all.chmod(0o755)
        cluster._run("pg_ctl", "start", "-D", str(cluster.pgdata), "-l", str(cluster.log_file), "-w")
        trust = f"host={cluster.socket_dir} port=5432 user={SUPERUSER}"
        with psycopg.connect(f"{trust} dbname=postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE_NAME} TEMPLATE template0 LC_COLLATE 'C.UTF-8' "
                          "LC_CTYPE 'C.UTF-8'")
        earlier_url = f"postgresql+psycopg://{SUPERUSER}@/{DATABASE_NAME}?host={cluster.socket_dir}&port=5432"
        _small_county_with_an_admin(earlier_url, "旧管理员", settings, demo_frames)
        if os.geteuid() == 0:  # the hole this closes: any local user is the superuser
            opened = _as_nobody("psql", f"{trust} dbname={DATABASE_NAME}", "-Atc", "SELECT count(*) FROM api_tokens")
            assert opened.returncode == 0 and opened.stdout.strip() == "1", opened.stderr
        cluster._run("pg_ctl", "stop", "-D", str(cluster.pgdata), "-m", "fast", "-w")
        yield cluster
    finally:
        cluster._run("pg_ctl", "stop", "-D", str(cluster.pgdata), "-m", "fast", "-w", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_data_folder_of_the_earlier_version_is_closed_on_its_next_start(earlier_cluster: EmbeddedCluster) -> None:
    assert not earlier_cluster.password_file.exists()
    with earlier_cluster.running():
        migrate.upgrade(earlier_cluster.url())
        earlier_cluster.seal_audit_log()
        engine = create_db_engine(earlier_cluster.url())  # the service role, with the password just made
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_user")).scalar_one() == SERVICE_ROLE
                assert conn.execute(sa.text("SELECT name FROM api_tokens")).scalar_one() == "旧管理员"
                assert conn.execute(sa.text("SELECT count(*) FROM elder_care")).scalar_one() > 100
                owners = _owners(conn)
                assert owners.pop("audit_log") == owners.pop("audit_log_id_seq") == AUDIT_OWNER
                assert set(owners.values()) == {SERVICE_ROLE}
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table audit_log"):
                    conn.execute(sa.text("DELETE FROM audit_log"))
        finally:
            engine.dispose()
        assert "trust" not in (earlier_cluster.pgdata / "pg_hba.conf").read_text()
        assert earlier_cluster.password_file.stat().st_mode & 0o777 == 0o600
        if os.geteuid() == 0:
            refused = _psql(earlier_cluster, SUPERUSER, user="nobody")
            assert refused.returncode == 2 and "Permission denied" in refused.stderr
        refused = _psql(earlier_cluster, SUPERUSER)
        assert refused.returncode == 2 and "no password supplied" in refused.stderr


def _nobody_can_run_this_package() -> bool:
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    probe = ["env", f"PYTHONPATH={REPO}:{site}", f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",
             "-c", "import psycopg, gis_service.db.cluster"]
    return os.geteuid() == 0 and _as_nobody(*probe).returncode == 0


@pytest.mark.skipif(not _nobody_can_run_this_package(),
                    reason="needs root, and the system's Python of this version able to read the package")
def test_a_users_own_cluster_is_closed_to_other_users() -> None:
    """Run by an ordinary user (nobody), the cluster is its own: folders 0700, and another user (daemon) cannot
    connect."""
    folder = Path(tempfile.mkdtemp(prefix="gis-own-"))
    folder.chmod(0o755)  # others may enter it: the cluster's own folder must keep them out
    shutil.chown(folder, "nobody")
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    script = ("import sys; from pathlib import Path; from gis_service.db.cluster import EmbeddedCluster; "
              f"c = EmbeddedCluster(Path({str(folder / 'data')!r})); c.start(); print(c.socket_dir)")
    try:
        started = _as_nobody("env", f"PYTHONPATH={REPO}:{site}", f"HOME={folder}",
                             f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}", "-c", script)
        assert started.returncode == 0, started.stderr
        cluster_dir = folder / "data"
        assert {path.name: (path.owner(), path.stat().st_mode & 0o777) for path in (
            cluster_dir, cluster_dir / "run", cluster_dir / "pgpass")} == {
            "data": ("nobody", 0o700), "run": ("nobody", 0o700), "pgpass": ("nobody", 0o600)}
        other = subprocess.run(["runuser", "-u", "daemon", "--", "psql", f"host={cluster_dir / 'run'} port=5432 "
                                f"user={SUPERUSER} dbname=postgres", "-c", "SELECT 1"],
                               capture_output=True, text=True, timeout=60, cwd="/")
        assert other.returncode == 2 and "Permission denied" in other.stderr
    finally:
        _as_nobody(f"/usr/lib/postgresql/{_major()}/bin/pg_ctl", "stop", "-D", str(folder / "data" / "pgdata"),
                   "-m", "fast", "-w")
        shutil.rmtree(folder, ignore_errors=True)


def _major() -> str:
    from gis_service.db.cluster import find_bin_dir

    return find_bin_dir().parent.name


# -- restore only what a backup should hold ------------------------------------------------------------------------

SOURCE = "gis_security_source"
CRAFTED = "gis_security_crafted"


@pytest.fixture(scope="module")
def source(admin_url: str, database_url: str, settings: Settings, demo_frames: dict) -> Iterator[str]:
    """A database holding the small county, an admin token and one audit entry: what the genuine backup holds."""
    url = create_database(admin_url, database_url, SOURCE)
    _small_county_with_an_admin(url, "局管理员", settings, demo_frames)
    yield url
    drop_database(admin_url, SOURCE)


@pytest.fixture(scope="module")
def genuine(source: str, backup_key: bytes, tmp_path_factory: pytest.TempPathFactory) -> backup.BackupResult:
    return backup.backup(source, tmp_path_factory.mktemp("genuine") / "county.backup", key=backup_key)


@pytest.fixture()
def crafted(source: str, admin_url: str) -> Iterator[str]:
    """A copy of the source database, as its superuser: to be made into what an attacker would back up."""
    with connect(admin_url, "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {CRAFTED} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {CRAFTED} TEMPLATE {SOURCE}")
    yield make_url(admin_url).set(database=CRAFTED).render_as_string(hide_password=False)
    drop_database(admin_url, CRAFTED)


def _state(url: str) -> tuple:
    """What a refused restore must leave as it was: the live data's checksums, its functions, and the databases."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            functions = set(conn.execute(sa.text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE pronamespace = 'public'::regnamespace AND NOT "
                "EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')")).scalars())
            databases = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
            return backup.checksums(conn), functions, databases, conn.execute(sa.text(
                "SELECT count(*) FROM pg_event_trigger")).scalar_one()
    finally:
        engine.dispose()


def _refused(live: str, admin_url: str, archive_path: Path, key: bytes, *, without_manifest: bool = False) -> str:
    """Restore ``archive_path`` over ``live``, which must be refused with everything as it was; the message."""
    before = _state(live)
    with pytest.raises(BackupFileError) as refused:
        archive = backup.open_archive(archive_path, key=key, without_manifest=without_manifest)
        backup.restore(live, archive, admin_url=admin_url, audit_owner=AUDIT_OWNER, keep_previous=False)
    assert _state(live) == before
    assert not MARKER.exists()
    assert "Nothing was changed" in str(refused.value)
    return str(refused.value)


CRAFTED_OBJECTS = {
    "a function that runs a shell command": (
        f"CREATE FUNCTION public.refresh_cache() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
        f"COPY (SELECT 1) TO PROGRAM 'touch {MARKER}'; END $$",
        "FUNCTION public refresh_cache()"),
    "a trigger that runs it on every write": (
        f"CREATE FUNCTION public.on_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"COPY (SELECT 1) TO PROGRAM 'touch {MARKER}'; RETURN NEW; END $$; "
        "CREATE TRIGGER elder_care_on_write AFTER INSERT ON elder_care FOR EACH ROW EXECUTE FUNCTION on_write()",
        "TRIGGER public elder_care elder_care_on_write"),
    "an event trigger": (
        f"CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"COPY (SELECT 1) TO PROGRAM 'touch {MARKER}'; END $$; "
        "CREATE EVENT TRIGGER on_ddl ON ddl_command_end EXECUTE FUNCTION on_ddl()",
        "EVENT TRIGGER - on_ddl"),
    "a table of its own, with rows": (
        "CREATE TABLE public.commands (line text); INSERT INTO commands VALUES ('rm -rf /')",
        "TABLE DATA public commands"),
    "a rule that swallows the audit trail": (
        "CREATE RULE forget AS ON INSERT TO audit_log DO INSTEAD NOTHING", "RULE public audit_log forget"),
    "default privileges for everyone": (
        "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC", "DEFAULT ACL"),
}


@pytest.mark.parametrize("case", list(CRAFTED_OBJECTS))
def test_a_backup_holding_objects_a_backup_does_not_hold_is_refused(
        case: str, crafted: str, small_county: str, admin_url: str, backup_key: bytes, tmp_path: Path) -> None:
    statements, entry = CRAFTED_OBJECTS[case]
    with connect(crafted) as admin:
        admin.execute(statements)
    # even signed by this installation (a backup of a database someone had changed, or a stolen key)
    made = backup.backup(crafted, tmp_path / "crafted.backup", key=backup_key)
    assert entry in " ".join(made.archive.entries)
    message = _refused(small_county, admin_url, made.archive.path, backup_key)
    assert "is not a gis-service backup of schema" in message and entry in message


def test_sql_in_place_of_a_tables_rows_is_never_run(
        genuine: backup.BackupResult, small_county: str, admin_url: str, backup_key: bytes, tmp_path: Path) -> None:
    """pg_restore runs the COPY statement an archive holds for each table: a crafted one, the same length, runs a
    shell command and deletes the audit trail. Even restored without a manifest, nothing of it runs."""
    content = genuine.archive.path.read_bytes()
    copy = content[content.index(b"COPY public.api_tokens ("):]
    copy = copy[:copy.index(b"FROM stdin;") + len(b"FROM stdin;")]
    evil = f"COPY (SELECT 1) TO PROGRAM 'touch {MARKER}'; DELETE FROM audit_log;".encode()
    assert len(evil) < len(copy)
    patched = tmp_path / "patched.backup"
    patched.write_bytes(content.replace(copy, evil.ljust(len(copy) - 2) + b"--"))
    message = _refused(small_county, admin_url, patched, backup_key, without_manifest=True)
    assert "holds SQL where a backup holds only rows" in message and "TO PROGRAM" in message


@pytest.fixture()
def planted(genuine: backup.BackupResult, crafted: str, tmp_path: Path) -> Path:
    """An archive with a planted admin token, and the genuine backup's manifest beside it."""
    path = _planted_token_archive(crafted, tmp_path)
    shutil.copy(backup.manifest_path(genuine.archive.path), backup.manifest_path(path))
    return path


def test_a_planted_token_is_refused_with_the_genuine_manifest_beside_it(
        planted: Path, small_county: str, admin_url: str, backup_key: bytes) -> None:
    message = _refused(small_county, admin_url, planted, backup_key)
    assert "is not the file its manifest describes" in message


def test_a_planted_token_the_signed_manifest_does_not_account_for_is_refused(
        genuine: backup.BackupResult, crafted: str, small_county: str, admin_url: str, backup_key: bytes,
        tmp_path: Path) -> None:
    """A manifest signed for this very file, whose rows are still the genuine backup's: the row check refuses it."""
    planted = _planted_token_archive(crafted, tmp_path)
    size, digest = backup._sha256(planted)
    manifest = dataclasses.replace(genuine.archive.manifest, size_bytes=size, sha256=digest)
    backup.write_manifest(backup.manifest_path(planted), manifest, backup_key)
    message = _refused(small_county, admin_url, planted, backup_key)
    assert "holds rows its manifest does not account for: api_tokens: 2 rows instead of 1" in message


def _planted_token_archive(crafted: str, folder: Path) -> Path:
    """The genuine data with one more admin token, whose secret the attacker knows, dumped as pg_dump would."""
    engine = create_db_engine(crafted)
    with engine.begin() as conn:
        create_token(conn, role="admin", name="局管理员")
    engine.dispose()
    path = folder / "planted.backup"
    conninfo, env = backup.libpq_params(crafted)
    subprocess.run([str(backup.pg_tool("pg_dump")), "--format=custom", f"--file={path}", f"--dbname={conninfo}"],
                   env=env, check=True)
    return path


@pytest.mark.parametrize("tampering", ["more tokens", "another file", "no signature", "another key"])
def test_a_tampered_manifest_is_refused(
        tampering: str, genuine: backup.BackupResult, small_county: str, admin_url: str, backup_key: bytes,
        tmp_path: Path) -> None:
    archive = tmp_path / "county.backup"
    shutil.copy(genuine.archive.path, archive)
    document = json.loads(backup.manifest_path(genuine.archive.path).read_text())
    if tampering == "more tokens":
        document["tables"]["api_tokens"]["rows"] = 2
    elif tampering == "another file":
        document["archive"]["sha256"] = "0" * 64
    elif tampering == "no signature":
        del document["signature"]
    backup.manifest_path(archive).write_text(json.dumps(document))
    key = os.urandom(32) if tampering == "another key" else backup_key
    message = _refused(small_county, admin_url, archive, key)
    expected = "is not a readable backup manifest" if tampering == "no signature" else "its signature does not match"
    assert expected in message


def test_a_backup_without_its_manifest_is_refused_with_the_way_out(
        genuine: backup.BackupResult, small_county: str, admin_url: str, backup_key: bytes, tmp_path: Path) -> None:
    archive = tmp_path / "county.backup"
    shutil.copy(genuine.archive.path, archive)
    message = _refused(small_county, admin_url, archive, backup_key)
    assert "has no manifest (county.backup.manifest beside it)" in message and "--without-manifest" in message


def test_the_command_refuses_a_planted_token_with_exit_code_2(
        planted: Path, small_county: str, admin_url: str, settings: Settings) -> None:
    before = _state(small_county)
    env = {**os.environ, "GIS_DATABASE_URL": small_county, "GIS_ADMIN_DATABASE_URL": admin_url,
           "GIS_DATA_DIR": str(settings.data_dir)}
    refused = subprocess.run([sys.executable, "-m", "gis_service.cli", "db", "restore", str(planted)], env=env,
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert "planted.backup is not the file its manifest describes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _state(small_county) == before


def test_a_genuine_backup_restores_as_the_service_role_with_the_audit_log_sealed(
        genuine: backup.BackupResult, small_county: str, admin_url: str, backup_key: bytes) -> None:
    archive = backup.open_archive(genuine.archive.path, key=backup_key)
    result = backup.restore(small_county, archive, admin_url=admin_url, audit_owner=AUDIT_OWNER,
                            keep_previous=False)
    assert result.checksums == genuine.checksums  # the token and the audit entry too
    assert result.checksums["api_tokens"].rows == result.checksums["audit_log"].rows == 1
    engine = create_db_engine(small_county)
    try:
        with engine.connect() as conn:
            owners = _owners(conn)
            assert owners.pop("audit_log") == owners.pop("audit_log_id_seq") == AUDIT_OWNER
            assert set(owners.values()) == {SERVICE_ROLE}  # loaded by the service role, not the superuser
            assert conn.execute(sa.text("SELECT name FROM api_tokens")).scalar_one() == "局管理员"
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table audit_log"):
                conn.execute(sa.text("DELETE FROM audit_log"))
    finally:
        engine.dispose()
