"""The embedded PostgreSQL + PostGIS cluster the service runs when no database URL is configured.

Layout of the data folder::

    DATA_DIR/pgdata/     the cluster (initdb --encoding=UTF8 --locale=C.UTF-8)
    DATA_DIR/run/        its unix socket (no TCP port is opened)
    DATA_DIR/log/        postgresql.log
    DATA_DIR/pgpass      the roles' passwords (a libpq password file, mode 0600)
    DATA_DIR/serve.lock  held by a running ``gis-service serve``

PostgreSQL refuses to run as root, so when this process is root the server binaries run as the
``postgres`` user through ``runuser`` and the cluster folders belong to that user.

Only the service's user gets in: ``run/``, ``log/`` and ``pgdata/`` are 0700 and belong to the server's user (the
service's own user, or ``postgres`` when the service is root, which passes any permission), the socket is 0700,
and every connection needs its role's password (SCRAM-SHA-256), kept in ``pgpass``, which only the service's user
can read. The service connects as the role ``gis``, which is not a superuser (see :mod:`gis_service.db.roles`); the
superuser ``postgres`` is for set-up work only. A data folder made by an earlier version (``initdb --auth=trust``,
the objects the superuser's) is brought to this on its next start: see :meth:`EmbeddedCluster.grant_access`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gis_service.db import roles
from gis_service.db.roles import REQUIRED_EXTENSIONS, SERVICE_ROLE
from gis_service.errors import ClusterBusyError, SetupError

DATABASE_NAME = "gis"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; nothing listens on TCP
INSTALL_HINT = "apt-get install -y postgresql-15-postgis-3 postgresql-15-pgrouting"

# Appended to postgresql.conf once, after initdb.
SERVER_CONFIG = """
# --- gis-service embedded cluster ---
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
port = {port}
shared_buffers = 256MB
work_mem = 32MB
maintenance_work_mem = 256MB
max_connections = 100
fsync = on
synchronous_commit = on
jit = off
"""
# Appended too; to a cluster made before passwords, when access is granted (taking effect at its next restart; until
# then the socket's folder, 0700, keeps others out).
ACCESS_CONFIG = """
# --- gis-service: access ---
unix_socket_permissions = 0700
password_encryption = scram-sha-256
"""
#: Where the network settings of GIS_CLUSTER_LISTEN live (included by postgresql.conf; rewritten at each start).
NETWORK_CONF = "gis-network.conf"
# Appended too: the TCP addresses and networks of a primary serving other machines (GIS_CLUSTER_LISTEN).
NETWORK_INCLUDE = f"""
# --- gis-service: network (GIS_CLUSTER_LISTEN; written at each start) ---
include_if_exists = '{NETWORK_CONF}'
"""
HBA_CONF = """# gis-service: connections over the unix socket only (nothing listens on TCP), each with its role's
# password (SCRAM-SHA-256). The passwords are in ../pgpass, which only the service's user can read.
local all all scram-sha-256
# a hot standby on this machine (gis-service db replica create) streams the WAL as the replication role
local replication gis_replicator scram-sha-256
"""
#: The role a standby streams the WAL as (REPLICATION, nothing else), made by ``gis-service db replica create``.
REPLICATION_ROLE = "gis_replicator"
#: Appended to HBA_CONF for each network of GIS_CLUSTER_CLIENTS: API hosts (as the service role) and standbys.
HBA_NETWORK_LINES = """host {database} {service} {network} scram-sha-256
host replication {replication} {network} scram-sha-256
"""



def find_bin_dir(explicit: Path | None = None) -> Path:
    """The folder holding initdb and pg_ctl for the newest PostgreSQL that has PostGIS.

    Raises SetupError naming the package to install when there is none.
    """
    candidates: list[Path] = []
    if explicit:  # a configured folder is the only one tried
        candidates.append(Path(explicit))
    else:
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config and not explicit:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
            candidates.append(Path(out.strip()))
    with_server = [c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()]
    if not with_server:
        where = f" in {explicit}" if explicit else ""
        raise SetupError(f"PostgreSQL server binaries (initdb, pg_ctl) were not found{where}. "
                         f"Install them: {INSTALL_HINT}")
    for bin_dir in with_server:
        if not missing_extensions(bin_dir):
            return bin_dir
    missing = ", ".join(missing_extensions(with_server[0]))
    raise SetupError(
        f"PostgreSQL in {with_server[0]} lacks the extensions {missing}. Install them: {INSTALL_HINT}"
    )


def write_private_file(path: Path, text: str, *, owner: tuple[int, int] | None = None) -> None:
    """Write ``path`` whole, readable by its owner only (0600; ``owner``: uid and gid to give it), replacing any
    file there at once: a reader sees the old file or the new one, never part of one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(partial, *owner)
    partial.replace(path)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


def share_dir(bin_dir: Path) -> Path:
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            return Path(subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True,
                                       check=True).stdout.strip())
    return Path("/usr/share/postgresql") / bin_dir.parent.name


def missing_extensions(bin_dir: Path) -> list[str]:
    extension_dir = share_dir(bin_dir) / "extension"
    return [name for name in REQUIRED_EXTENSIONS if not (extension_dir / f"{name}.control").exists()]


def embedded_cluster(settings) -> EmbeddedCluster:
    """The embedded cluster of ``settings`` (a :class:`~gis_service.settings.Settings`): its folder, binaries and
    network access."""
    return EmbeddedCluster(settings.data_dir, settings.pg_bin_dir, listen=settings.cluster_listen,
                           clients=settings.cluster_clients, tcp_port=settings.cluster_port)


@dataclass
class EmbeddedCluster:
    """A private PostgreSQL cluster in ``data_dir``; see the module docstring for its layout.

    ``listen``: TCP addresses to listen on as well (GIS_CLUSTER_LISTEN, e.g. ``10.0.0.5``), and ``clients``: the
    networks allowed in over TCP (GIS_CLUSTER_CLIENTS, CIDR), as the service role and as the replication role: for a
    primary serving API hosts and standbys on other machines. Empty: the unix socket only."""

    data_dir: Path
    bin_dir: Path | None = None
    listen: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    tcp_port: int = 5432

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.bin_dir = find_bin_dir(self.bin_dir)

    # -- paths -------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "log" / "postgresql.log"

    @property
    def serve_lock(self) -> Path:
        return self.data_dir / "serve.lock"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "pgpass"

    @property
    def port(self) -> int:
        """The server's port: its TCP port when it listens on TCP, which also names its socket file."""
        return self.tcp_port if self.listen else PORT

    def url(self, database: str = DATABASE_NAME, *, role: str = SERVICE_ROLE) -> str:
        """SQLAlchemy URL of the cluster as the service role (``role=SUPERUSER`` for set-up work), over its unix
        socket. It names the password file rather than holding a password, so it can be printed."""
        return (f"postgresql+psycopg://{role}@/{database}?host={self.socket_dir}&port={self.port}"
                f"&passfile={self.password_file}")

    def admin_url(self, database: str = DATABASE_NAME) -> str:
        """SQLAlchemy URL of the superuser, for set-up work only (creating databases and extensions)."""
        return self.url(database, role=SUPERUSER)

    def conninfo(self, database: str = DATABASE_NAME, *, role: str = SERVICE_ROLE) -> str:
        return psycopg.conninfo.make_conninfo(dbname=database, user=role, host=str(self.socket_dir), port=self.port,
                                              passfile=str(self.password_file))

    # -- running the server binaries ------------------------------------------------------------
    @property
    def _as_postgres(self) -> bool:
        return os.geteuid() == 0

    def _run(self, tool: str, *args: str, check: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise SetupError(f"{tool} failed (exit {result.returncode}): {detail}")
        return result

    def _prepare_folders(self) -> None:
        """The folders, each open to the server's user only; as root the data folder itself may only be entered
        (the postgres user must pass through it), otherwise it is the user's own."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server_folders = (self.pgdata, self.socket_dir, self.log_file.parent)
        for folder in server_folders:
            folder.mkdir(exist_ok=True)
        self.data_dir.chmod(0o711 if self._as_postgres else 0o700)
        if self._as_postgres:
            self._check_reachable_by_postgres()
            user = self._postgres_user()
            for folder in server_folders:
                os.chown(folder, user.pw_uid, user.pw_gid)
        for folder in server_folders:
            folder.chmod(0o700)

    def _postgres_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise SetupError(f"running as root needs the '{SUPERUSER}' user; install it: {INSTALL_HINT}") from exc

    def _write_server_file(self, path: Path, text: str) -> None:
        """Write a file the server reads (mode 0600, the server's user's), replacing it whole."""
        user = self._postgres_user() if self._as_postgres else None
        write_private_file(path, text, owner=(user.pw_uid, user.pw_gid) if user else None)

    def _check_reachable_by_postgres(self) -> None:
        for parent in self.data_dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise SetupError(
                    f"the postgres user cannot enter {parent}, so it cannot run a cluster in {self.data_dir}. "
                    f"Set GIS_DATA_DIR to a folder outside it (for example /var/lib/gis-service)."
                )

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def is_standby(self) -> bool:
        """A hot standby (``pg_basebackup -R`` left ``standby.signal``): read-only, its roles the primary's."""
        return (self.pgdata / "standby.signal").exists()

    def hba(self) -> str:
        """The ``pg_hba.conf`` this cluster runs with: the socket, and the networks of ``clients``."""
        return HBA_CONF + "".join(HBA_NETWORK_LINES.format(database=DATABASE_NAME, service=SERVICE_ROLE,
                                                           replication=REPLICATION_ROLE, network=network)
                                  for network in self.clients)

    def _write_network_config(self) -> None:
        """TCP addresses and port from ``listen`` (none: the socket only) and this folder's socket (a standby's
        copy of its primary's configuration names the primary's), in NETWORK_CONF, included by postgresql.conf;
        read at the start that follows."""
        conf_path = self.pgdata / "postgresql.conf"
        if NETWORK_INCLUDE.strip() not in conf_path.read_text():
            self._write_server_file(conf_path, conf_path.read_text() + NETWORK_INCLUDE)
        addresses = ",".join(self.listen)
        self._write_server_file(self.pgdata / NETWORK_CONF, f"listen_addresses = '{addresses}'\n"
                                                            f"port = {self.port}\n"
                                                            f"unix_socket_directories = '{self.socket_dir}'\n")

    def initialise(self) -> None:
        """initdb (first run only), with the superuser's password from the password file."""
        self._prepare_folders()
        if self.initialised:
            return
        password_file = self.socket_dir / ".initdb-password"  # where the server's user can read it, briefly
        self._write_server_file(password_file, self._passwords()[SUPERUSER] + "\n")
        try:
            self._run("initdb", "-D", str(self.pgdata), "--encoding=UTF8", "--locale=C.UTF-8",
                      f"--username={SUPERUSER}", "--auth=scram-sha-256", f"--pwfile={password_file}")
        finally:
            password_file.unlink(missing_ok=True)
        conf_path = self.pgdata / "postgresql.conf"
        self._write_server_file(conf_path, conf_path.read_text()
                                + SERVER_CONFIG.format(socket_dir=self.socket_dir, port=PORT) + ACCESS_CONFIG)

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    def start(self) -> bool:
        """Start the cluster (initialising it first if needed) and make sure only the service gets in (see
        :meth:`grant_access`). Returns False if it was already running."""
        with self._lifecycle_lock():
            self.initialise()
            started = not self.is_running()
            if started:
                self._write_network_config()
                self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60")
            try:
                if not self.is_standby:  # a standby takes its roles and access from its primary
                    self.grant_access()
            except BaseException:
                if started:
                    self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", check=False)
                raise
            return started

    def stop(self, *, mode: str = "fast") -> bool:
        """Stop the cluster (``mode``: pg_ctl's; ``immediate`` is a crash, recovered from the WAL at the next
        start). Returns False if it was not running."""
        with self._lifecycle_lock():
            if not self.is_running():
                return False
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60")
            return True

    # -- access -----------------------------------------------------------------------------------------
    def grant_access(self) -> None:
        """Let in the service only, on the running cluster: passwords required, the service role and the database
        made, the extensions created, the database's objects the service role's and the audit log sealed.

        Idempotent and quick when done (two connections). A cluster whose ``pg_hba.conf`` is not this module's
        (one just made by initdb, or by an earlier version with ``--auth=trust``) first gets its passwords, then
        the configuration that requires them; its socket's folder is already private at that point.
        """
        passwords = self._passwords()
        if self._read_hba() != self.hba():
            with self._admin("postgres") as admin:  # trust, or the superuser's password (initdb)
                roles.set_password(admin, SUPERUSER, passwords[SUPERUSER])
                if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SERVICE_ROLE,)).fetchone():
                    roles.set_password(admin, SERVICE_ROLE, passwords[SERVICE_ROLE])
            conf_path = self.pgdata / "postgresql.conf"
            if ACCESS_CONFIG.strip() not in conf_path.read_text():
                self._write_server_file(conf_path, conf_path.read_text() + ACCESS_CONFIG)
            self._write_server_file(self.pgdata / "pg_hba.conf", self.hba())
            self._run("pg_ctl", "reload", "-D", str(self.pgdata))
        with self._admin("postgres") as admin:
            roles.ensure_roles(admin, service_password=passwords[SERVICE_ROLE])
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{DATABASE_NAME}" ENCODING UTF8 TEMPLATE template0 '
                              f"LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'")
        with self._admin(DATABASE_NAME) as admin:
            roles.prepare_database(admin, service_role=SERVICE_ROLE)
            roles.hand_over_objects(admin, to_role=SERVICE_ROLE)
            roles.seal_audit_log(admin, service_role=SERVICE_ROLE)

    def seal_audit_log(self, database: str = DATABASE_NAME) -> None:
        """Make ``audit_log`` append-only for the service role (after migrations made it; see :mod:`roles`)."""
        with self._admin(database) as admin:
            roles.seal_audit_log(admin, service_role=SERVICE_ROLE)

    def unseal_audit_log(self, database: str = DATABASE_NAME) -> None:
        """Give ``audit_log`` back to the service role, for a downgrade that drops it."""
        with self._admin(database) as admin:
            roles.unseal_audit_log(admin, service_role=SERVICE_ROLE)

    @contextlib.contextmanager
    def _admin(self, database: str) -> Iterator[psycopg.Connection]:
        """An autocommit connection as the superuser."""
        with psycopg.connect(self.conninfo(database, role=SUPERUSER), autocommit=True) as conn:
            yield conn

    def _read_hba(self) -> str:
        path = self.pgdata / "pg_hba.conf"
        return path.read_text() if path.exists() else ""

    def _passwords(self) -> dict[str, str]:
        """The superuser's and the service role's passwords, from the password file; made (random, 0600) the first
        time. Raises SetupError when the cluster already requires passwords and the file is gone."""
        if not self.password_file.exists():
            if "local all all scram-sha-256" in self._read_hba():
                raise SetupError(
                    f"the passwords of the cluster in {self.data_dir} are gone ({self.password_file} is missing), so "
                    f"nothing can connect to it. To set new ones: stop the cluster, write 'local all all trust' "
                    f"into {self.pgdata / 'pg_hba.conf'}, and start gis-service again.")
            lines = [f"*:*:*:{role}:{secrets.token_urlsafe(32)}" for role in (SUPERUSER, SERVICE_ROLE)]
            write_private_file(self.password_file, "# gis-service: passwords of the embedded cluster's roles "
                                                   "(libpq password file)\n" + "\n".join(lines) + "\n")
        self.password_file.chmod(0o600)
        passwords = {}
        for line in self.password_file.read_text().splitlines():
            if line and not line.startswith("#"):
                *_, role, password = line.split(":", 4)
                passwords[role] = password
        return passwords

    @contextlib.contextmanager
    def _lifecycle_lock(self) -> Iterator[None]:
        """Serialises start/stop between processes sharing the data folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "cluster.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def running(self) -> Iterator[EmbeddedCluster]:
        """Use the cluster for a block: start it if needed, and stop it afterwards only if this block started it."""
        started = self.start()
        try:
            yield self
        finally:
            if started:
                self.stop()

    def status(self) -> dict:
        return {
            "data_dir": str(self.data_dir),
            "initialised": self.initialised,
            "running": self.is_running(),
            "served_by_pid": self.serving_pid(),
            "url": self.url(),
            "passwords": str(self.password_file),
            "postgres_bin": str(self.bin_dir),
        }

    # -- one service per data folder --------------------------------------------------------------
    @contextlib.contextmanager
    def serve_lock_held(self) -> Iterator[None]:
        """Held by ``gis-service serve`` for its lifetime; a second one on the same folder is refused."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.serve_lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            pid = self.serving_pid()
            raise ClusterBusyError(
                f"another gis-service (pid {pid or 'unknown'}) is already serving from {self.data_dir}. "
                f"Stop it first, or set GIS_DATA_DIR to another folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def serving_pid(self) -> int | None:
        """PID of the ``serve`` process holding the data folder, or None."""
        if not self.serve_lock.exists():
            return None
        with open(self.serve_lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                text = handle.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
