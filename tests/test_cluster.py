"""The embedded cluster: created with the right encoding and locale, extensions present, one server per folder,
and a clear message when PostgreSQL or PostGIS is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gis_service.db.cluster import EmbeddedCluster, find_bin_dir
from gis_service.errors import ClusterBusyError, SetupError

from .helpers import REPO

CLI = [sys.executable, "-m", "gis_service.cli"]


def test_database_is_utf8_with_a_locale_that_lets_pg_trgm_index_chinese(conn: sa.Connection) -> None:
    encoding, ctype = conn.execute(sa.text(
        "SELECT pg_encoding_to_char(encoding), datctype FROM pg_database WHERE datname = current_database()"
    )).one()
    assert encoding == "UTF8"
    assert ctype.lower().replace("-", "") in ("c.utf8", "en_us.utf8")
    # Under LC_CTYPE=C pg_trgm drops every Chinese character and this similarity would be 0.
    assert conn.execute(sa.text("SELECT similarity('石堤镇', '石堤')")).scalar() > 0.3


def test_required_extensions_are_installed(conn: sa.Connection) -> None:
    installed = set(conn.execute(sa.text("SELECT extname FROM pg_extension")).scalars())
    assert {"postgis", "pgrouting", "pg_trgm", "fuzzystrmatch"} <= installed


def test_a_second_serve_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    cluster = EmbeddedCluster(tmp_path / "data")
    with cluster.serve_lock_held():
        assert cluster.serving_pid() == os.getpid()
        with pytest.raises(ClusterBusyError, match="already serving"):
            with EmbeddedCluster(tmp_path / "data").serve_lock_held():
                pass
    assert cluster.serving_pid() is None


def test_a_folder_without_postgresql_is_named_with_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="apt-get install -y postgresql-15-postgis-3"):
        find_bin_dir(tmp_path)


def _fake_postgres_without_postgis(folder: Path) -> Path:
    """A bin folder with initdb and pg_ctl whose share folder has no PostGIS."""
    bin_dir = folder / "bin"
    share = folder / "share" / "extension"
    bin_dir.mkdir(parents=True)
    share.mkdir(parents=True)
    (share / "pg_trgm.control").write_text("")
    for tool in ("initdb", "pg_ctl"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "pg_config").write_text(f"#!/bin/sh\necho {folder / 'share'}\n")
    (bin_dir / "pg_config").chmod(0o755)
    return bin_dir


def test_missing_postgis_is_one_plain_message_and_exit_code_2(tmp_path: Path) -> None:
    env = {**os.environ, "GIS_DATA_DIR": str(tmp_path / "data"),
           "GIS_PG_BIN_DIR": str(_fake_postgres_without_postgis(tmp_path))}
    env.pop("GIS_DATABASE_URL", None)
    result = subprocess.run([*CLI, "db", "start"], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 2
    assert "lacks the extensions postgis" in result.stderr
    assert "postgresql-15-postgis-3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
