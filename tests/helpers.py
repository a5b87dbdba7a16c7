"""Helpers the tests share: places in the demo county, request headers and bodies, what a refused input must not
change, databases and clusters of their own. Fixtures are in conftest.py; no test module imports another."""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from gis_service.db import migrate
from gis_service.db.cluster import EmbeddedCluster
from gis_service.db.engine import connect, create_db_engine
from gis_service.db.roles import prepare_database
from gis_service.errors import SetupError
from gis_service.layers import LAYERS
from gis_service.settings import Settings

from .harness.devserver import serve_workers

REPO = Path(__file__).resolve().parents[1]
#: The command line as a user runs it.
CLI = [sys.executable, "-m", "gis_service.cli"]

NEAR_SEAT = [108.9930, 28.4490]  # inside 中和街道, near the county seat

GEOJSON = {"Content-Type": "application/geo+json"}

#: The county seat (中和街道), where the demo has the most features.
SEAT_LON, SEAT_LAT = 108.9916, 28.4482


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The WebMercatorQuad tile (x, y from the top) holding lon, lat at zoom ``z``."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def create_database(admin_url: str, service_url: str, name: str) -> str:
    """A new empty database ``name`` (dropped first if it exists) with the extensions, in which the service role of
    ``service_url`` may create its tables; returns its URL as that role."""
    with connect(admin_url, "postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with connect(admin_url, name) as admin:
        prepare_database(admin, service_role=make_url(service_url).username)
    return make_url(service_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    with connect(admin_url, "postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def load_small_county(url: str, settings: Settings, demo_frames: dict) -> None:
    """Migrate the empty database at ``url`` and load the demo county's divisions and elder-care facilities only."""
    from gis_service.io.load_demo import load_frames

    migrate.upgrade(url)
    small = create_db_engine(url)
    try:
        load_frames(small, {name: demo_frames[name] for name in ("admin_divisions", "elder_care")},
                    county_code=settings.county_code, measure_srid=settings.measure_srid)
    finally:
        small.dispose()


@contextlib.contextmanager
def private_cluster(prefix: str, frames: dict, settings: Settings) -> Iterator[EmbeddedCluster]:
    """A throwaway embedded cluster in a folder of its own under /tmp, migrated and holding ``frames`` (layers of
    the demo county), for tests that kill it; stopped and removed afterwards."""
    from gis_service.io.load_demo import load_frames

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)  # as root the cluster runs as postgres, which must be able to enter the folder
    cluster = EmbeddedCluster(folder / "data")
    cluster.start()
    try:
        migrate.upgrade(cluster.url())
        cluster.seal_audit_log()
        engine = create_db_engine(cluster.url())
        load_frames(engine, frames, county_code=settings.county_code, measure_srid=settings.measure_srid)
        engine.dispose()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def bearer(token: str, **extra: str) -> dict:
    """Headers of a write: GeoJSON body, the bearer token, and any others (``**{"If-Match": etag}``)."""
    return {**GEOJSON, "Authorization": f"Bearer {token}", **extra}


def station(name: str = "测试养老服务站") -> dict:
    """A valid new elder_care feature (a community station near the county seat), as a planner would send it."""
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": NEAR_SEAT},
            "properties": {"name": name, "kind": "community_station", "beds": 20, "nursing_beds": 8,
                           "operator": "public_private", "division_code": "500241001001"}}


def fingerprint(conn: sa.Connection) -> dict[str, tuple]:
    """What a refused input must not change: per layer table its rows, the sum of their versions (every update
    bumps one) and the largest id; the rows of the audit trail, the inspections and the place-name events."""
    parts = [f"SELECT '{layer.table}', count(*), coalesce(sum(version), 0), max(id) FROM {layer.table}"
             for layer in LAYERS.values()]
    parts += [f"SELECT '{table}', count(*), 0, max(id) FROM {table}"
              for table in ("audit_log", "marker_inspections", "place_name_events")]
    return {name: tuple(rest) for name, *rest in conn.execute(sa.text(" UNION ALL ".join(parts)))}


def ring_area(ring: list) -> float:
    """Signed area by the shoelace formula: positive for counter-clockwise rings (lon/lat)."""
    return sum(x1 * y2 - x2 * y1 for (x1, y1, *_), (x2, y2, *_) in zip(ring, ring[1:])) / 2


def assert_rfc7946(document: dict) -> None:
    """A FeatureCollection or Feature is RFC 7946: lon/lat within the county's reach, closed rings wound
    right-hand (exterior counter-clockwise, holes clockwise), no ``crs`` member anywhere."""
    features = document["features"] if document["type"] == "FeatureCollection" else [document]
    assert "crs" not in document
    for feature in features:
        assert feature["type"] == "Feature" and "crs" not in feature
        geometry = feature["geometry"]
        assert "crs" not in geometry
        polygons = {"Polygon": [geometry["coordinates"]],
                    "MultiPolygon": geometry["coordinates"]}.get(geometry["type"], [])
        for polygon in polygons:
            for i, ring in enumerate(polygon):
                assert ring[0] == ring[-1], feature["id"]
                area = ring_area(ring)
                assert (area > 0) if i == 0 else (area < 0), (feature["id"], i, area)
        for lon, lat in _positions(geometry["coordinates"]):
            assert 107.5 < lon < 110.0 and 27.5 < lat < 29.5, (feature["id"], lon, lat)


def _positions(coords):
    if isinstance(coords[0], (int, float)):
        yield coords[0], coords[1]
        return
    for item in coords:
        yield from _positions(item)


def current_count(conn: sa.Connection, layer_id: str, where: str = "TRUE") -> int:
    layer = LAYERS[layer_id]
    current = layer.current_condition or "TRUE"
    return conn.execute(sa.text(f"SELECT count(*) FROM {layer.table} WHERE {current} AND ({where})")).scalar_one()


def ids(document: dict) -> list[int]:
    return [f["id"] for f in document["features"]]


def sql_ids(conn: sa.Connection, layer_id: str, where: str, params: dict | None = None) -> list[int]:
    layer = LAYERS[layer_id]
    current = layer.current_condition or "TRUE"
    return list(conn.execute(sa.text(f"SELECT id FROM {layer.table} WHERE {current} AND ({where}) ORDER BY id"),
                             params or {}).scalars())


# -- `gis-service serve` in a subprocess (the ``serve`` fixture starts it) -----------------------------------------
@dataclass
class Served:
    """A running `gis-service serve`: its URL, process and log (stdout and stderr)."""

    url: str
    process: subprocess.Popen
    log: Path

    def workers(self) -> list[int]:
        return serve_workers(self.process.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(condition: Callable[[], object], *, timeout_s: float, what: str, interval_s: float = 0.1) -> object:
    """The first true value of ``condition()``; fails the test when there is none within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(interval_s)


def health_status(url: str, timeout_s: float = 2) -> int | None:
    """The status of ``url``/health, or None when nothing answers."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout_s).status_code
    except httpx.TransportError:
        return None


def open_map(client, path: str, params: dict | None = None, *, timeout_s: float = 300) -> httpx.Response:
    """A map page as a browser ends up with it: while the map is computed the service answers 202 正在计算… (a page
    that asks again), and each request waits a few seconds for the map; so ask again until the map or an error
    comes. ``client``: a TestClient or an httpx.Client with a base_url."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(path, params=params)
        if answer.status_code != 202:
            return answer
        assert time.monotonic() < deadline, f"{path} {params}: still computing after {timeout_s} s"
        time.sleep(0.1)


def nginx_check(site: str, folder: Path) -> tuple[int, str]:
    """``nginx -t`` on a site file (the text of one of scripts/deploy/'s), with its certificate paths pointed at a
    throwaway self-signed certificate (also used as the hosts' CA) and its cache folders inside ``folder``:
    (exit code, what nginx said)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is not installed; bash scripts/setup.sh installs it (Debian: nginx)"
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=gis.example.gov.cn"], check=True, capture_output=True)
    site = (site.replace("/etc/ssl/gis-service/fullchain.pem", str(cert))
            .replace("/etc/ssl/gis-service/hosts-ca.pem", str(cert))
            .replace("/etc/ssl/gis-service/privkey.pem", str(key))
            .replace("/var/lib/nginx/", f"{folder}/"))
    (folder / "site.conf").write_text(site)
    (folder / "nginx.conf").write_text(f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
                                       f"events {{}}\nhttp {{\n    include {folder}/site.conf;\n}}\n")
    checked = subprocess.run([nginx, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf"),
                              "-e", str(folder / "error.log")], capture_output=True, text=True)
    return checked.returncode, checked.stderr


@contextlib.contextmanager
def chromium_or_fail(**size: int) -> Iterator:
    """A headless Chromium (tests/harness/browser.py) of ``size`` (width, height) for a fixture; without one the test
    fails and says to run scripts/setup.sh (browser tests are never skipped)."""
    import pytest

    from .harness.browser import Chromium

    try:
        browser = Chromium(**size)
        browser.__enter__()
    except SetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield browser
    finally:
        browser.__exit__(None, None, None)


# -- pages in headless Chromium (tests/harness/browser.py) -------------------------------------------------------

#: JavaScript: resolves with the value of ``check()`` once it is truthy, or null after ``seconds``.
WAIT_JS = """new Promise(function (resolve) {{
  var until = Date.now() + {ms};
  (function poll() {{ var v = ({check})(); if (v || Date.now() > until) {{ resolve(v || null); }}
                     else {{ setTimeout(poll, 50); }} }})(); }})"""


def open_page(chromium, url: str, server_url: str):
    """A new tab of ``chromium`` (the fixture) opened at ``url``, having asked nothing of any host but
    ``server_url``'s, logged no console error and had no request fail."""
    page = chromium.new_page()
    page.goto(url, timeout_s=180)
    host = urlsplit(server_url).netloc
    elsewhere = [u for u in page.requests if not (urlsplit(u).scheme == "data" or
                                                   (urlsplit(u).scheme == "http" and urlsplit(u).netloc == host))]
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    assert page.console_errors == [], page.console_errors
    assert page.failed == [], page.failed
    return page


def wait_in_page(page, check: str, *, seconds: float = 20):
    """The value of the JavaScript function ``check`` once it is truthy in ``page``, or None after ``seconds``."""
    return page.evaluate(WAIT_JS.format(ms=int(seconds * 1000), check=check), timeout_s=seconds + 10)
