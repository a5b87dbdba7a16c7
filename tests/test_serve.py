"""`gis-service serve` end to end, as a user runs it: the embedded cluster is created, started, shared with
other commands, refused to a second server, stopped with the service, and keeps its data across restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import REPO

CLI = [sys.executable, "-m", "gis_service.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def env() -> Iterator[dict]:
    # Not under pytest's tmp_path: as root the cluster runs as postgres, which must be able to enter the folder.
    folder = Path(tempfile.mkdtemp(prefix="gis-serve-test-"))
    folder.chmod(0o755)
    environment = {**os.environ, "GIS_DATA_DIR": str(folder / "data"), "GIS_LOAD_DEMO": "false"}
    environment.pop("GIS_DATABASE_URL", None)
    yield environment
    subprocess.run([*CLI, "db", "stop"], env=environment, cwd=REPO, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def _start(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("serve did not answer /health within 90 s")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


@pytest.fixture()
def county_file(tmp_path: Path) -> Path:
    outline = json.loads((REPO / "layers" / "xiushan" / "xiushan_county_amap_wgs84.geojson").read_text())
    feature = outline["features"][0]
    feature["properties"] = {"code": "500241000000", "name": "秀山土家族苗族自治县", "short_name": "秀山",
                             "level": "county", "kind": "县", "population": 496194}
    path = tmp_path / "county.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False))
    return path


def test_serve_creates_shares_stops_and_keeps_the_cluster(env: dict, county_file: Path) -> None:
    port = _free_port()
    server = _start(env, port)
    try:
        second = subprocess.run([*CLI, "serve", "--port", str(_free_port())], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "already serving" in second.stderr and "Traceback" not in second.stderr

        imported = subprocess.run([*CLI, "import", "admin_divisions", str(county_file)], env=env, cwd=REPO,
                                  capture_output=True, text=True, timeout=120)
        assert imported.returncode == 0, imported.stderr
        assert "imported: 1 rows into admin_divisions" in imported.stdout
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["layers"]["admin_divisions"] == 1
    finally:
        _stop(server)
    status = subprocess.run([*CLI, "db", "status"], env=env, cwd=REPO, capture_output=True, text=True)
    assert json.loads(status.stdout)["running"] is False

    server = _start(env, port)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["layers"]["admin_divisions"] == 1
    finally:
        _stop(server)


def test_a_rejected_import_prints_the_bad_rows_and_exits_1(env: dict, county_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    document = json.loads(county_file.read_text())
    document["features"][0]["properties"]["kind"] = "州"
    bad.write_text(json.dumps(document, ensure_ascii=False))
    result = subprocess.run([*CLI, "import", "admin_divisions", str(bad)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "row 1, kind: '州' is not one of: 县, 街道, 镇, 乡, 社区, 村" in result.stderr
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    status = json.loads(subprocess.run([*CLI, "db", "status"], env=env, cwd=REPO, capture_output=True,
                                       text=True).stdout)
    assert status["running"] is False  # the command started the cluster for its duration only
