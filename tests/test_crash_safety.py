"""Crash safety: an import or a batch of API writes killed with SIGKILL half-way leaves no partial data, the cluster
recovers after its own processes are killed, and the work can simply be done again.

Every test here runs against a private embedded cluster in a temporary folder (holding the demo county's
divisions and elder-care facilities), so that killing it harms nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import sqlalchemy as sa

from gis_service.auth import create_token
from gis_service.db.cluster import EmbeddedCluster
from gis_service.db.engine import create_db_engine
from gis_service.io.layers_io import import_file
from gis_service.settings import Settings

from .harness import devserver
from .helpers import REPO, private_cluster

CLI = [sys.executable, "-m", "gis_service.cli"]
#: Place names in the import that is killed: their COPY takes a few seconds (search keys and GIN indexes per row).
IMPORT_ROWS = 4000


@pytest.fixture(scope="module")
def crash_cluster(demo_frames: dict, settings: Settings) -> Iterator[EmbeddedCluster]:
    """A private cluster holding the demo county's divisions and elder-care facilities."""
    with private_cluster("gis-crash-", {name: demo_frames[name] for name in ("admin_divisions", "elder_care")},
                         settings) as cluster:
        yield cluster


@pytest.fixture()
def crash_db(crash_cluster: EmbeddedCluster) -> Iterator[sa.Engine]:
    engine = create_db_engine(crash_cluster.url())
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def place_names_file(demo_frames: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GeoPackage of demo place names (current ones, without ids), as a bureau would import them."""
    names = demo_frames["place_names"]
    names = names[names["status"] == "current"].drop(columns=["id", "successor_id"]).head(IMPORT_ROWS)
    path = tmp_path_factory.mktemp("crash") / "place_names.gpkg"
    gpd.GeoDataFrame(names, geometry="geom", crs=4490).to_file(path, driver="GPKG")
    return path


def _start_import(cluster: EmbeddedCluster, file: Path, log: Path) -> subprocess.Popen:
    """``gis-service import place_names FILE`` in a subprocess, on the private cluster."""
    env = {**os.environ, "GIS_DATA_DIR": str(cluster.data_dir), "GIS_LOAD_DEMO": "false"}
    env.pop("GIS_DATABASE_URL", None)
    with log.open("w") as output:
        return subprocess.Popen([*CLI, "import", "place_names", str(file)], env=env, cwd=REPO, stdout=output,
                                stderr=subprocess.STDOUT)


def _wait_until_copy_is_underway(engine: sa.Engine, process: subprocess.Popen, *, rows: int) -> int:
    """Wait until the import's COPY has sent ``rows`` rows to the server; return the server process serving it."""
    deadline = time.monotonic() + 120
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while True:
            row = conn.execute(sa.text(
                "SELECT a.pid, p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) "
                "WHERE p.relid = 'place_names'::regclass AND p.command = 'COPY FROM'")).one_or_none()
            if row is not None and row.tuples_processed >= rows:
                return row.pid
            assert process.poll() is None, "the import ended before its COPY was seen"
            assert time.monotonic() < deadline, "the import's COPY did not start within 120 s"
            time.sleep(0.02)


def _wait_until_gone(engine: sa.Engine, backend_pid: int) -> None:
    deadline = time.monotonic() + 30
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while conn.execute(sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": backend_pid}).scalar():
            assert time.monotonic() < deadline, "the server kept the killed import's session"
            time.sleep(0.05)


def _place_names(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM place_names")).scalar_one()


def _import_again(cluster: EmbeddedCluster, file: Path) -> int:
    settings = Settings(database_url=cluster.url(), data_dir=cluster.data_dir, load_demo=False, warm_up=False,
                        _env_file=None)
    engine = create_db_engine(cluster.url())
    try:
        result, _ = import_file(engine, settings, "place_names", file)
    finally:
        engine.dispose()
    return result.rows_written


def test_an_import_killed_during_its_copy_leaves_no_rows_and_can_be_run_again(
        crash_cluster: EmbeddedCluster, crash_db: sa.Engine, place_names_file: Path, tmp_path: Path) -> None:
    before = _place_names(crash_db)
    importing = _start_import(crash_cluster, place_names_file, tmp_path / "import.log")
    backend = _wait_until_copy_is_underway(crash_db, importing, rows=IMPORT_ROWS // 4)

    importing.send_signal(signal.SIGKILL)
    importing.wait()
    _wait_until_gone(crash_db, backend)

    assert _place_names(crash_db) == before  # a quarter had reached the server; none of it is visible
    log = crash_cluster.log_file.read_text(errors="replace")
    assert "unexpected EOF on client connection with an open transaction" in log
    assert _import_again(crash_cluster, place_names_file) == IMPORT_ROWS
    assert _place_names(crash_db) == before + IMPORT_ROWS


def _cluster_processes(cluster: EmbeddedCluster) -> list[int]:
    """The postmaster and every process it started."""
    postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def _exists(pid: int) -> bool:
    """True while the process exists, as a zombie too: a zombie postmaster still makes pg_ctl refuse to start."""
    return Path(f"/proc/{pid}").exists()


def test_the_cluster_killed_during_an_import_recovers_without_the_rows_and_the_import_can_be_run_again(
        crash_cluster: EmbeddedCluster, crash_db: sa.Engine, place_names_file: Path, tmp_path: Path) -> None:
    before = _place_names(crash_db)
    importing = _start_import(crash_cluster, place_names_file, tmp_path / "import.log")
    _wait_until_copy_is_underway(crash_db, importing, rows=IMPORT_ROWS // 4)
    crash_db.dispose()
    log_before = crash_cluster.log_file.stat().st_size

    processes = _cluster_processes(crash_cluster)  # a power cut: the server first, with its rows in the WAL
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):  # a backend that was ending anyway (a set-up connection)
            os.kill(pid, signal.SIGKILL)
    importing.send_signal(signal.SIGKILL)
    importing.wait()
    deadline = time.monotonic() + 30
    while any(_exists(pid) for pid in processes):
        assert time.monotonic() < deadline, "the cluster's processes outlived SIGKILL (or no one reaped them)"
        time.sleep(0.05)
    assert not crash_cluster.is_running()

    assert crash_cluster.start()  # pg_ctl start: crash recovery from the WAL
    with crash_cluster.log_file.open(errors="replace") as log:
        log.seek(log_before)
        recovery = log.read()
    assert "database system was not properly shut down; automatic recovery in progress" in recovery
    assert "database system is ready to accept connections" in recovery
    assert _place_names(crash_db) == before
    assert _import_again(crash_cluster, place_names_file) == IMPORT_ROWS
    assert _place_names(crash_db) == before + IMPORT_ROWS
    superuser = create_db_engine(crash_cluster.admin_url())  # amcheck is for superusers
    try:
        with superuser.begin() as conn:  # every B-tree index the killed COPY was filling holds exactly its rows
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            checked = conn.execute(sa.text(
                "SELECT count(bt_index_check(index => i.indexrelid, heapallindexed => true)) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                "WHERE i.indrelid = 'place_names'::regclass AND am.amname = 'btree'")).scalar_one()
    finally:
        superuser.dispose()
    assert checked >= 5


def test_the_server_killed_during_a_batch_of_writes_keeps_every_committed_write_whole(
        crash_cluster: EmbeddedCluster, crash_db: sa.Engine) -> None:
    writers = 4
    with crash_db.begin() as conn:
        tokens = [create_token(conn, role="planner", name=f"批量{n}")[1] for n in range(writers)]
        stations = conn.execute(sa.text("SELECT id FROM elder_care ORDER BY id LIMIT :n"),
                                {"n": writers * 3}).scalars().all()
    seen: list[tuple[int, int, str]] = []  # (station, version, request id) of every write answered 200
    refused: list[str] = []
    stop = threading.Event()

    def write(n: int, base: str) -> None:
        """Writer n changes its own three stations in turn, each change setting the name and beds together."""
        own = stations[n::writers]
        headers = {"Authorization": f"Bearer {tokens[n]}", "Content-Type": "application/geo+json"}
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(1, 100_000):
                if stop.is_set():
                    return
                url = f"/collections/elder_care/items/{own[i % len(own)]}"
                try:
                    etag = client.get(url).headers["ETag"]
                    body = {"type": "Feature", "properties": {"name": f"批量写入{n}-{i}", "beds": 1000 + i}}
                    answer = client.patch(url, json=body, headers={**headers, "If-Match": etag})
                except httpx.TransportError:
                    return
                if answer.status_code != 200:
                    refused.append(answer.text)
                    return
                # the audit trail keeps the service's request id, which the answer carries
                seen.append((own[i % len(own)], int(answer.headers["ETag"].strip('"').rsplit(".v", 1)[1]),
                             answer.headers["X-Request-ID"]))

    with devserver.service_process(crash_cluster.url(), GIS_WARM_UP="false") as server:
        threads = [threading.Thread(target=write, args=(n, server.url)) for n in range(writers)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(seen) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert len(seen) >= 30 and not refused

    with crash_db.connect() as conn:
        for station in stations:
            name, beds, version = conn.execute(sa.text("SELECT name, beds, version FROM elder_care WHERE id = :id"),
                                               {"id": station}).one()
            history = conn.execute(sa.text(
                "SELECT version, after ->> 'name', (after ->> 'beds')::int, request_id FROM audit_log "
                "WHERE layer = 'elder_care' AND feature_id = :id AND action = 'update' ORDER BY id"),
                {"id": station}).all()
            # one audit entry per committed version, the last one equal to the feature as stored
            assert [h[0] for h in history] == list(range(2, version + 1)), station
            if history:
                assert (history[-1][1], history[-1][2]) == (name, beds)
                assert name.startswith("批量写入") and beds == 1000 + int(name.rsplit("-", 1)[1])  # never half a write
            answered = {(v, rid) for s, v, rid in seen if s == station}
            assert answered <= {(h[0], h[3]) for h in history}  # every write a client saw succeed is there
