"""Reads from a real hot standby that the tests make from a throwaway embedded cluster with `gis-service db replica
create` (pg_basebackup -R: the replication role, its password and the socket's pg_hba line included):

- the standby follows the primary, and reads are spread over the primary and the standby;
- a write is read back at once through the API (its item, a filtered list, its history);
- a standby lagging more than GIS_REPLICA_MAX_LAG_S is skipped, and used again once caught up;
- `db backup` taken from the standby holds the primary's data;
- stopping the standby at once (`pg_ctl stop -m immediate`, or SIGKILL to its postmaster) while clients read
  through the API, after they were spread over the primary and the standby, loses no request.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.db import backup
from gis_service.db.cluster import REPLICATION_ROLE, SUPERUSER, EmbeddedCluster
from gis_service.db.engine import connect, create_db_engine
from gis_service.settings import Settings

from .harness.devserver import free_port, service
from .helpers import CLI, REPO, bearer, private_cluster, station, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def primary(demo_frames: dict, settings: Settings) -> Iterator[EmbeddedCluster]:
    frames = {name: demo_frames[name] for name in ("admin_divisions", "elder_care", "settlements")}
    with private_cluster("gis-primary-test-", frames, settings) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def standby(primary: EmbeddedCluster) -> Iterator[EmbeddedCluster]:
    """A hot standby of ``primary`` made and started by the commands an operator runs."""
    folder = Path(tempfile.mkdtemp(prefix="gis-standby-test-"))
    folder.chmod(0o755)  # as root the standby runs as postgres, which must be able to enter the folder
    environment = {**os.environ, "GIS_DATA_DIR": str(primary.data_dir), "GIS_DATABASE_URL": ""}
    try:
        made = subprocess.run([*CLI, "db", "replica", "create", str(folder / "data")], env=environment, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr
        assert "GIS_DATABASE_READ_URLS=postgresql+psycopg://gis@" in made.stdout.replace("\n", "")
        started = subprocess.run([*CLI, "db", "replica", "start", str(folder / "data")], env=environment, cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        cluster = EmbeddedCluster(folder / "data")
        assert cluster.is_standby
        yield cluster
    finally:
        EmbeddedCluster(folder / "data").stop()
        shutil.rmtree(folder, ignore_errors=True)


def _on(cluster: EmbeddedCluster, sql: str, *, role: str = "gis") -> object:
    with connect(cluster.url(role=role)) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture()
def replicated_app(primary: EmbeddedCluster, standby: EmbeddedCluster, settings: Settings,
                   tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """The API over the primary, reading from the standby too (max lag 1 s), and a planner's token."""
    engine = create_db_engine(primary.url())
    own = settings.model_copy(update={"database_url": primary.url(), "database_read_urls": (standby.url(),),
                                      "replica_max_lag_s": 1.0, "data_dir": tmp_path})
    with engine.begin() as conn:
        _, token = create_token(conn, role="planner", name="测试复制")
    app = create_app(own, engine)
    try:
        with TestClient(app) as client:
            wait_for(lambda: app.state.read_router.usable(), timeout_s=30, what="the standby was caught up")
            yield client, token
    finally:
        engine.dispose()


def test_the_standby_follows_the_primary_and_refuses_writes(primary: EmbeddedCluster,
                                                             standby: EmbeddedCluster) -> None:
    assert _on(standby, "SELECT pg_is_in_recovery()") is True
    assert _on(primary, "SELECT pg_is_in_recovery()") is False
    with connect(primary.url()) as conn:
        conn.execute("UPDATE elder_care SET beds = beds + 1 WHERE id = (SELECT min(id) FROM elder_care)")
    target = _on(primary, "SELECT beds FROM elder_care ORDER BY id LIMIT 1")
    wait_for(lambda: _on(standby, "SELECT beds FROM elder_care ORDER BY id LIMIT 1") == target, timeout_s=10,
             what="the standby replayed the change")
    with pytest.raises(Exception, match="read-only"), connect(standby.url()) as conn:
        conn.execute("DELETE FROM elder_care")


def test_reads_are_spread_over_the_primary_and_the_standby(replicated_app: tuple[TestClient, str]) -> None:
    client, _ = replicated_app
    router = client.app.state.read_router
    before = (router.primary_reads, router.standbys[0].reads)
    for _ in range(20):
        assert client.get("/collections/settlements/items", params={"limit": 3}).status_code == 200
        assert client.get("/placenames/autocomplete", params={"q": "xs"}).status_code == 200
    primary_reads, standby_reads = router.primary_reads - before[0], router.standbys[0].reads - before[1]
    assert primary_reads + standby_reads == 40 and primary_reads >= 10 and standby_reads >= 10
    [described] = client.get("/health").json()["replicas"]
    assert described["up"] and described["used_for_reads"] and described["lag_s"] < 1.0


def test_a_write_is_read_back_at_once_through_the_api(replicated_app: tuple[TestClient, str]) -> None:
    client, token = replicated_app
    for n in range(10):
        name = f"测试复制站{n}-{time.monotonic_ns()}"
        made = client.post("/collections/elder_care/items", json=station(name), headers=bearer(token))
        assert made.status_code == 201, made.text
        fid = made.json()["id"]
        listed = client.get("/collections/elder_care/items", params={"name": name})
        assert [f["id"] for f in listed.json()["features"]] == [fid]
        item = client.get(f"/collections/elder_care/items/{fid}")
        assert item.json()["properties"]["name"] == name and item.headers["ETag"] == made.headers["ETag"]
        changed = client.patch(f"/collections/elder_care/items/{fid}",
                               json={"type": "Feature", "properties": {"beds": 30 + n}},
                               headers=bearer(token, **{"If-Match": item.headers["ETag"]}))
        assert changed.status_code == 200, changed.text
        history = client.get(f"/collections/elder_care/items/{fid}/history",
                                     headers={"Authorization": f"Bearer {token}"})
        assert [c["action"] for c in history.json()["changes"]] == ["create", "update"]
        assert client.get("/collections/elder_care/items", params={"name": name}).json()[
            "features"][0]["properties"]["beds"] == 30 + n


def test_a_lagging_standby_is_skipped_until_it_catches_up(replicated_app: tuple[TestClient, str],
                                                          primary: EmbeddedCluster, standby: EmbeddedCluster) -> None:
    client, _ = replicated_app
    router = client.app.state.read_router
    _on(standby, "SELECT pg_wal_replay_pause()::text", role=SUPERUSER)
    try:
        with connect(primary.url()) as conn:
            conn.execute("UPDATE settlements SET households = households + 1 WHERE id = (SELECT min(id) FROM "
                         "settlements)")
        wait_for(lambda: not router.usable(), timeout_s=10, what="the lagging standby was left out")
        [described] = client.get("/health").json()["replicas"]
        assert described["up"] and not described["used_for_reads"] and described["lag_s"] > 1.0
        reads = router.standbys[0].reads
        fresh = _on(primary, "SELECT households FROM settlements ORDER BY id LIMIT 1")
        for _ in range(5):
            first = client.get("/collections/settlements/items", params={"limit": 1, "sortby": "id"})
            assert first.json()["features"][0]["properties"]["households"] == fresh
        assert router.standbys[0].reads == reads  # all from the primary
    finally:
        _on(standby, "SELECT pg_wal_replay_resume()::text", role=SUPERUSER)
    wait_for(lambda: router.usable(), timeout_s=10, what="the standby caught up and was used again")


def test_a_backup_taken_from_the_standby_holds_the_primarys_data(primary: EmbeddedCluster,
                                                                  standby: EmbeddedCluster, tmp_path: Path) -> None:
    """`db backup` with GIS_DATABASE_URL naming the standby: pg_dump and the checksums read a snapshot exported on
    the standby (read-only), so the primary does none of the work, and the file is the primary's data."""
    with connect(primary.url()) as conn:
        conn.execute("UPDATE elder_care SET beds = beds + 1 WHERE id = (SELECT max(id) FROM elder_care)")
        written = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    wait_for(lambda: _on(standby, f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn"), timeout_s=10,
             what="the standby replayed the last write")
    file = tmp_path / "from-standby.backup"
    environment = {**os.environ, "GIS_DATABASE_URL": standby.url(), "GIS_DATA_DIR": str(tmp_path / "data")}
    made = subprocess.run([*CLI, "db", "backup", str(file)], env=environment, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    key = backup.backup_key(tmp_path / "data")
    engine = create_db_engine(primary.url())
    try:
        with engine.connect() as conn:
            on_primary = backup.checksums(conn)
    finally:
        engine.dispose()
    assert backup.read_manifest(file, key).checksums == on_primary
    assert on_primary["elder_care"].rows > 0


def test_replica_allow_prepares_the_primary_for_standbys_on_other_machines(primary: EmbeddedCluster) -> None:
    environment = {**os.environ, "GIS_DATA_DIR": str(primary.data_dir), "GIS_DATABASE_URL": ""}
    allowed = subprocess.run([*CLI, "db", "replica", "allow"], env=environment, cwd=REPO, capture_output=True,
                             text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    [password] = [line.rsplit(":", 1)[1] for line in primary.password_file.read_text().splitlines()
                  if line.split(":")[3:4] == [REPLICATION_ROLE]]
    assert password and password not in allowed.stdout  # named where it is, never printed
    assert _on(primary, f"SELECT rolreplication AND rolcanlogin AND NOT rolsuper FROM pg_roles "
                        f"WHERE rolname = '{REPLICATION_ROLE}'", role=SUPERUSER) is True


def test_a_standby_started_for_other_machines_listens_on_tcp(standby: EmbeddedCluster) -> None:
    """`db replica start` with GIS_CLUSTER_LISTEN: API hosts on other machines reach the standby over TCP, let in
    as the primary's pg_hba.conf (copied) says; here the primary lets in no network, so the refusal is its."""
    port = free_port()
    environment = {**os.environ, "GIS_CLUSTER_LISTEN": "127.0.0.1", "GIS_CLUSTER_PORT": str(port)}
    standby.stop()
    try:
        started = subprocess.run([*CLI, "db", "replica", "start", str(standby.data_dir)], env=environment, cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        listening = EmbeddedCluster(standby.data_dir, listen=("127.0.0.1",), tcp_port=port)
        assert f"port={port}" in started.stdout.replace("\n", "")
        assert _on(listening, "SELECT pg_is_in_recovery()") is True
        with pytest.raises(psycopg.OperationalError, match='no pg_hba.conf entry for host "127.0.0.1"'):
            psycopg.connect(host="127.0.0.1", port=port, dbname="gis", user="gis", password="x", connect_timeout=5)
    finally:
        EmbeddedCluster(standby.data_dir, listen=("127.0.0.1",), tcp_port=port).stop()
        standby.start()  # as the other tests use it: on its socket only


def _stop_immediately(cluster: EmbeddedCluster) -> None:
    """``pg_ctl stop -m immediate``: every server process quits at once, without a checkpoint, as in a crash."""
    cluster.stop(mode="immediate")


def _kill_postmaster(cluster: EmbeddedCluster) -> None:
    """SIGKILL to the postmaster: it dies at once, its backends notice and quit on their own."""
    os.kill(int((cluster.pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)


@pytest.mark.parametrize("kill", [_stop_immediately, _kill_postmaster], ids=["pg_ctl stop -m immediate", "kill -9"])
def test_killing_the_standby_while_clients_read_loses_no_request(primary: EmbeddedCluster,
                                                                standby: EmbeddedCluster, tmp_path: Path,
                                                                kill) -> None:
    wait_for(lambda: _restart(standby), timeout_s=60, what="the standby runs")  # the previous case killed it
    paths = ["/collections/settlements/items?limit=5", "/placenames/autocomplete?q=xs",
             "/collections/elder_care/items?limit=20", "/analysis/facility-area?level=township"]
    answers: list[tuple[str, int]] = []
    running = threading.Event()
    running.set()

    def reader(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            i = offset
            while running.is_set():
                path = paths[i % len(paths)]
                try:
                    answers.append((path, client.get(path).status_code))
                except httpx.HTTPError as exc:
                    answers.append((path, repr(exc)))
                i += 1

    def reads() -> tuple[int, int]:
        """Reads the service sent to the primary and to the standby so far."""
        health = httpx.get(f"{url}/health").json()
        return health["primary_reads"], health["replicas"][0]["reads"]

    with service(primary.url(), GIS_DATABASE_READ_URLS=standby.url(), GIS_DATA_DIR=str(tmp_path),
                 GIS_REPLICA_MAX_LAG_S="5") as url:
        wait_for(lambda: httpx.get(f"{url}/health").json()["replicas"][0]["used_for_reads"], timeout_s=30,
                 what="the service read from the standby")
        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        before = reads()
        for thread in threads:
            thread.start()
        try:
            # before the kill the reads are spread: each of the primary and the standby answers its share
            wait_for(lambda: min(now - then for now, then in zip(reads(), before)) >= 20, timeout_s=30,
                     what="reads went to both the primary and the standby")
            kill(standby)
            killed_at = len(answers)
            wait_for(lambda: len(answers) >= killed_at + 40, timeout_s=60, what="reads went on")
        finally:
            running.clear()
            for thread in threads:
                thread.join()
        [described] = httpx.get(f"{url}/health").json()["replicas"]
    failed = [(path, status) for path, status in answers if status != 200]
    assert not failed and len(answers) >= 60, failed[:5]
    assert not described["up"] and not described["used_for_reads"]
    # the standby starts again (it recovers from its own WAL and follows the primary again)
    wait_for(lambda: _restart(standby), timeout_s=60, what="the standby started again")
    assert _on(standby, "SELECT pg_is_in_recovery()") is True


def _restart(cluster: EmbeddedCluster) -> bool:
    """Start the cluster and connect to it; False while the killed postmaster is not yet reaped (pg_ctl takes its
    pid for a running server) or its children still hold its shared memory."""
    try:
        cluster.start()
        _on(cluster, "SELECT 1")
        return True
    except Exception:
        time.sleep(1)
        return False
