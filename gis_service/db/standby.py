"""Hot standbys of the database, made with PostgreSQL's own streaming replication (``pg_basebackup -R``).

A standby is a cluster folder like the embedded cluster's (``pgdata/``, ``run/``, ``log/``, ``pgpass``), started and
stopped the same way (:class:`~gis_service.db.cluster.EmbeddedCluster` knows it by its ``standby.signal``). Its
roles, passwords and ``pg_hba.conf`` are its primary's (they are in the copied catalog and folder), so the service
connects to it as it does to the primary, with the same password file.

The primary lets the replication role (:data:`~gis_service.db.cluster.REPLICATION_ROLE`, REPLICATION and LOGIN,
nothing else) in over its socket, and over TCP from GIS_CLUSTER_CLIENTS; :func:`allow_replication` makes the role
and its password (kept in the primary's password file) on the embedded cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from gis_service.db import roles
from gis_service.db.cluster import REPLICATION_ROLE, SUPERUSER, EmbeddedCluster, write_private_file
from gis_service.errors import InvalidInputError, SetupError

#: Settings a standby runs with: queries on it hold back the cleanup of rows they still read (no query cancelled
#: because the primary removed them), and a long query delays replay by at most this long.
STANDBY_CONFIG = """
# --- gis-service: hot standby ---
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = 30s
"""
#: The file, inside the standby's own folder, holding the replication role's password for its server.
REPLICATION_PASSFILE = "replication.pgpass"


def allow_replication(primary: EmbeddedCluster) -> str:
    """On the running embedded ``primary``: the replication role, with a password kept in the primary's password
    file (made once). Returns the password."""
    passwords = primary._passwords()
    password = passwords.get(REPLICATION_ROLE)
    if password is None:
        password = secrets.token_urlsafe(32)
        text = primary.password_file.read_text().rstrip("\n") + f"\n*:*:*:{REPLICATION_ROLE}:{password}\n"
        write_private_file(primary.password_file, text)
    with psycopg.connect(primary.conninfo("postgres", role=SUPERUSER), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATION_ROLE,)).fetchone():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE")
                          .format(sql.Identifier(REPLICATION_ROLE)))
        roles.set_password(admin, REPLICATION_ROLE, password)
    return password


def create_standby(folder: Path, *, source: str, password: str, password_file: Path | None,
                   bin_dir: Path | None = None) -> EmbeddedCluster:
    """Make a hot standby of the primary at ``source`` (libpq connection string of the replication role) in
    ``folder``: ``pg_basebackup -R`` (the WAL streamed alongside, a fast checkpoint), then the standby's own
    settings and the replication password where its server reads it. ``password_file``: the primary's password
    file (the service's roles), copied into the folder; None when the operator copies it there. Not started."""
    standby = EmbeddedCluster(Path(folder), bin_dir)
    if standby.initialised or (standby.pgdata.exists() and any(standby.pgdata.iterdir())):
        raise InvalidInputError(f"{standby.pgdata} already holds a cluster; give an empty folder")
    standby._prepare_folders()
    result = standby._run("pg_basebackup", "--pgdata", str(standby.pgdata), "--write-recovery-conf",
                          "--wal-method=stream", "--checkpoint=fast", "--no-password", "--dbname", source,
                          check=False, env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"})
    if result.returncode != 0:
        shutil.rmtree(standby.pgdata, ignore_errors=True)
        standby.pgdata.mkdir()
        raise SetupError(f"pg_basebackup could not copy the primary ({(result.stderr or result.stdout).strip()}); "
                         "the primary must let the replication role in (gis-service db replica create without "
                         "--from does that for the embedded cluster; GIS_CLUSTER_CLIENTS for other machines)")
    conf = standby.pgdata / "postgresql.conf"
    standby._write_server_file(conf, conf.read_text() + STANDBY_CONFIG)
    # the streaming connection: the one pg_basebackup -R wrote, its password in a file of the standby's own
    passfile = standby.pgdata / REPLICATION_PASSFILE
    standby._write_server_file(passfile, f"*:*:*:{REPLICATION_ROLE}:{password}\n")
    parts = psycopg.conninfo.conninfo_to_dict(source)
    parts.pop("password", None)
    parts.update(passfile=str(passfile), application_name=f"gis-standby-{standby.data_dir.name}")
    auto = standby.pgdata / "postgresql.auto.conf"
    kept = [line for line in auto.read_text().splitlines() if not line.startswith("primary_conninfo")]
    connection = psycopg.conninfo.make_conninfo(**parts).replace("'", "''")
    standby._write_server_file(auto, "\n".join(kept + [f"primary_conninfo = '{connection}'"]) + "\n")
    if password_file is not None:
        write_private_file(standby.password_file, password_file.read_text())
    return standby


def source_from_url(url: str) -> tuple[str, str]:
    """The libpq connection string and password of ``--from URL`` (a role allowed to replicate)."""
    parts = make_url(url.replace("postgresql+psycopg://", "postgresql://", 1))
    if not parts.password:
        raise InvalidInputError("--from must name the replication role's password: "
                                "postgresql://gis_replicator:PASSWORD@HOST:PORT/gis")
    conninfo = psycopg.conninfo.make_conninfo(
        host=parts.host or "", port=str(parts.port or 5432), user=parts.username or REPLICATION_ROLE,
        dbname=parts.database or "gis", **{k: (v if isinstance(v, str) else v[-1]) for k, v in parts.query.items()})
    return conninfo, parts.password
