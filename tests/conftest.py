"""Test fixtures: a real PostGIS database (a throwaway embedded cluster, or GIS_TEST_DATABASE_URL), migrated and
holding the demo county, and per-test transactions that are rolled back.

There is no skipping: if PostgreSQL or PostGIS is missing, the session fails with the setup message.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.concurrency import run_in_threadpool
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gis_service.api.deps import get_analysis_runner, get_read_runner, get_session, get_tile_runner
from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.db import migrate
from gis_service.db.cluster import EmbeddedCluster
from gis_service.db.engine import check_server, create_db_engine
from gis_service.settings import Settings

from .harness.devserver import free_port
from .helpers import CLI, REPO, Served, create_database, drop_database, health_status, load_small_county, wait_for


@pytest.fixture(scope="session")
def cluster_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="gis-test-"))
    folder.chmod(0o755)  # as root the cluster runs as postgres, which must be able to enter the folder
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def test_cluster(cluster_dir: Path) -> Iterator[EmbeddedCluster | None]:
    """The throwaway embedded cluster of the session; None with GIS_TEST_DATABASE_URL."""
    if os.environ.get("GIS_TEST_DATABASE_URL"):
        yield None
        return
    cluster = EmbeddedCluster(cluster_dir / "data")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def database_url(test_cluster: EmbeddedCluster | None) -> str:
    """URL of an empty, migrated test database, as the service role (on the cluster, with the audit log sealed as
    in production). GIS_TEST_DATABASE_URL must name a throwaway database."""
    if test_cluster is None:
        external = os.environ["GIS_TEST_DATABASE_URL"]
        check_server(external)
        migrate.downgrade(external, "base")
        migrate.upgrade(external)
        return external
    migrate.upgrade(test_cluster.url())
    test_cluster.seal_audit_log()
    return test_cluster.url()


@pytest.fixture(scope="session")
def admin_url(test_cluster: EmbeddedCluster | None, database_url: str) -> str:
    """URL of the role for set-up work (creating databases and extensions): the cluster's superuser, or
    GIS_TEST_DATABASE_URL's own role."""
    return test_cluster.admin_url() if test_cluster is not None else database_url


@pytest.fixture(scope="session")
def settings(cluster_dir: Path, database_url: str) -> Settings:
    # no background warm-up: it would build the network beside the tests' own transactions
    return Settings(database_url=database_url, data_dir=cluster_dir / "data", load_demo=False, warm_up=False,
                    _env_file=None)


@pytest.fixture(scope="session")
def backup_key(settings: Settings) -> bytes:
    """The key the session's backups are signed with (made in the test cluster's data folder)."""
    from gis_service.db.backup import backup_key

    return backup_key(settings.data_dir, create=True)


@pytest.fixture(scope="session")
def demo_frames(settings: Settings) -> dict:
    from gis_service.demo.build import build_demo

    return build_demo(scale=1, seed=settings.demo_seed)


@pytest.fixture(scope="session")
def engine(database_url: str, settings: Settings, demo_frames: dict) -> Iterator[sa.Engine]:
    """The test database holding the demo county (scale 1), loaded once per session."""
    from gis_service.io.load_demo import load_frames

    engine = create_db_engine(database_url)
    load_frames(engine, demo_frames, county_code=settings.county_code, measure_srid=settings.measure_srid,
                replace=True)
    yield engine
    engine.dispose()


@pytest.fixture()
def scratch_url(engine: sa.Engine, database_url: str, admin_url: str) -> Iterator[str]:
    """An empty database beside the test database (for migration tests), with the extensions, as the service role;
    dropped afterwards."""
    name = "gis_scratch_test"
    yield create_database(admin_url, database_url, name)
    drop_database(admin_url, name)


@pytest.fixture()
def small_county(scratch_url: str, settings: Settings, demo_frames: dict) -> str:
    """The scratch database holding the demo county's divisions and elder-care facilities only: a live database to
    restore over, quick to back up and restore."""
    load_small_county(scratch_url, settings, demo_frames)
    return scratch_url


@pytest.fixture()
def conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside a transaction that is rolled back after the test: tests never leave data behind."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture()
def client_with(settings: Settings, engine: sa.Engine, conn: sa.Connection) -> Iterator[Callable[..., TestClient]]:
    """``client_with(**settings)``: the API with some settings changed (``max_body_bytes=2048``), answering from
    the test's own transaction: a request's commit only releases a savepoint, and everything is rolled back
    after the test."""
    started: list[TestClient] = []

    def session_in_test_transaction() -> Iterator[Session]:
        with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
            yield session

    def make(**changed) -> TestClient:
        app = create_app(settings.model_copy(update=changed), engine)
        app.dependency_overrides[get_session] = session_in_test_transaction
        app.dependency_overrides[get_read_runner] = lambda: (lambda work, **_: run_in_threadpool(work, conn))
        app.dependency_overrides[get_tile_runner] = app.dependency_overrides[get_read_runner]
        app.dependency_overrides[get_analysis_runner] = app.dependency_overrides[get_read_runner]
        test_client = TestClient(app)
        test_client.__enter__()
        started.append(test_client)
        return test_client

    yield make
    for test_client in started:
        test_client.__exit__(None, None, None)


@pytest.fixture()
def client(client_with: Callable[..., TestClient]) -> TestClient:
    """The API with the test settings, answering from the test's own transaction (see ``client_with``)."""
    return client_with()


@pytest.fixture()
def tokens(conn: sa.Connection) -> dict[str, str]:
    """A bearer token of each role, made in the test's transaction."""
    return {role: create_token(conn, role=role, name=f"测试{role}")[1]
            for role in ("inspector", "placename", "planner", "admin")}


@pytest.fixture()
def runner(engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Runs ``gis-service`` commands (typer's CliRunner) against the test database holding the demo county. What a
    command commits stays: use it for commands that only read, dry runs and refusals."""
    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    return CliRunner()



# -- `gis-service serve` in a subprocess ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Served]]:
    """``serve(env, *args)``: start `gis-service serve` and wait until /health answers 200; stopped afterwards. Its
    data folder (GIS_DATA_DIR, where it keeps the road graph) is a temporary one unless ``env`` names one."""
    started: list[Served] = []

    def start(env: dict[str, str], *args: str) -> Served:
        port = free_port()
        folder = tmp_path_factory.mktemp("serve")
        log = folder / "serve.log"
        environment = {**os.environ, "GIS_LOAD_DEMO": "false", "GIS_WARM_UP": "false",
                       "GIS_DATA_DIR": str(folder / "data"), **env}
        with log.open("w") as output:
            process = subprocess.Popen([*CLI, "serve", "--port", str(port), *args], env=environment, cwd=REPO,
                                       stdout=output, stderr=subprocess.STDOUT)
        served = Served(f"http://127.0.0.1:{port}", process, log)
        started.append(served)
        wait_for(lambda: process.poll() is not None or health_status(served.url) == 200, timeout_s=120,
                 what="serve answered /health", interval_s=0.3)
        assert process.poll() is None, f"serve exited: {served.log_text()[-3000:]}"
        return served

    yield start
    for served in started:
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium for the browser tests (tests/harness/browser.py); fails, never skips, without it."""
    from .helpers import chromium_or_fail

    with chromium_or_fail() as browser:
        yield browser


@pytest.fixture(scope="module")
def phone():
    """Headless Chromium 360 px wide: the narrowest phone the pages must serve."""
    from .helpers import chromium_or_fail

    with chromium_or_fail(width=360, height=740) as browser:
        yield browser
