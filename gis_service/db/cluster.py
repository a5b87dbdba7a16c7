"""The embedded PostgreSQL + PostGIS cluster the service runs when no database URL is configured.

Layout of the data folder::

    DATA_DIR/pgdata/     the cluster (initdb --encoding=UTF8 --locale=C.UTF-8)
    DATA_DIR/run/        its unix socket (no TCP port is opened)
    DATA_DIR/log/        postgresql.log
    DATA_DIR/serve.lock  held by a running ``gis-service serve``

PostgreSQL refuses to run as root, so when this process is root the server binaries run as the
``postgres`` user through ``runuser`` and the cluster folders belong to that user.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gis_service.errors import ClusterBusyError, SetupError

DATABASE_NAME = "gis"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file; nothing listens on TCP
REQUIRED_EXTENSIONS = ("postgis", "pgrouting", "pg_trgm", "fuzzystrmatch")
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


@dataclass
class EmbeddedCluster:
    """A private PostgreSQL cluster in ``data_dir``; see the module docstring for its layout."""

    data_dir: Path
    bin_dir: Path | None = None

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

    def url(self, database: str = DATABASE_NAME) -> str:
        """SQLAlchemy URL of the cluster, over its unix socket."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def conninfo(self, database: str = DATABASE_NAME) -> str:
        return f"dbname={database} user={SUPERUSER} host={self.socket_dir} port={PORT}"

    # -- running the server binaries ------------------------------------------------------------
    @property
    def _as_postgres(self) -> bool:
        return os.geteuid() == 0

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise SetupError(f"{tool} failed (exit {result.returncode}): {detail}")
        return result

    def _prepare_folders(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.pgdata, self.socket_dir, self.log_file.parent):
            folder.mkdir(exist_ok=True)
        if self._as_postgres:
            try:
                user = pwd.getpwnam(SUPERUSER)
            except KeyError as exc:
                raise SetupError(f"running as root needs the '{SUPERUSER}' user; install it: {INSTALL_HINT}") from exc
            self.data_dir.chmod(0o755)
            self._check_reachable_by_postgres()
            for folder in (self.pgdata, self.socket_dir, self.log_file.parent):
                os.chown(folder, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)

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

    def initialise(self) -> None:
        """initdb (first run only)."""
        self._prepare_folders()
        if self.initialised:
            return
        self._run(
            "initdb", "-D", str(self.pgdata), "--encoding=UTF8", "--locale=C.UTF-8",
            f"--username={SUPERUSER}", "--auth=trust",
        )
        config = SERVER_CONFIG.format(socket_dir=self.socket_dir, port=PORT)
        conf_path = self.pgdata / "postgresql.conf"
        if self._as_postgres:
            subprocess.run(["runuser", "-u", SUPERUSER, "--", "tee", "-a", str(conf_path)],
                           input=config, capture_output=True, text=True, check=True)
        else:
            with conf_path.open("a") as conf:
                conf.write(config)

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    def start(self) -> bool:
        """Start the cluster (initialising it first if needed). Returns False if it was already running."""
        with self._lifecycle_lock():
            self.initialise()
            if self.is_running():
                return False
            self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60")
            self._create_database()
            return True

    def stop(self) -> bool:
        """Stop the cluster. Returns False if it was not running."""
        with self._lifecycle_lock():
            if not self.is_running():
                return False
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60")
            return True

    def _create_database(self) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}" ENCODING UTF8 TEMPLATE template0 '
                             f"LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'")

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
