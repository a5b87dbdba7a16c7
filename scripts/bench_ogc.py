"""Benchmark: the OGC API - Features endpoints and vector tiles, side by side with tipg on the same tables.

For the demo county at scale 1 and at ``--scale`` (default 10), each in a throwaway embedded cluster, two servers
(uvicorn, one worker each, in subprocesses on free 127.0.0.1 ports) answer from the same database:

- gis-service (``gis_service.app:create_app``);
- tipg (developmentseed, ``tipg.main:app``), restricted to the ``public`` tables of our layers, installed by this
  script into its own virtualenv (``.venv-tipg/``, created on first use with pip) so that its starlette, FastAPI,
  pydantic and asyncpg never touch the service's pinned environment.

For each request kind, ``--clients`` threads send the same requests to both servers: a warm-up first (one request
per path, then two per client concurrently, so that each server has opened its database connections: a fresh
PostgreSQL backend spends some 170 ms on its first ST_Transform, loading PostGIS and PROJ), then
``--rounds`` rounds in which each server gets ``--requests / --rounds`` requests per client, the two servers taking
turns (who goes first alternates), so that the noise of a shared machine falls on both alike. The kinds:

- items with limit=1000 (roads), from offsets spread over the layer;
- items in a small bbox (about 2 km around the county seat, roads, limit=100 on both: tipg's default is 10);
- a filtered query: the same CQL2 text on both (settlements with more than 50 households in a 3 km box around
  the county seat: a comparison and S_INTERSECTS; tipg has no S_DWITHIN);
- a z12 vector tile of roads over the county seat (tipg's cap of 10,000 features per tile is lifted and its tile
  buffer set to ours, 64 units). Ours also holds the roads that lie only in the buffer (tipg selects by the
  tile's own bounds), so a map draws lines across tile edges; the features column shows ours/tipg.

Both are asked for uncompressed answers (``Accept-Encoding: identity``: tipg would gzip, we do not), so the figures
compare the work of answering, not a compression choice. The script checks that both servers return the same
number of features for each items request before it times anything, and prints per kind and server requests per
second and p50/p95 latency in milliseconds, and the ratio of our throughput to tipg's (above 1: we are faster).
Traffic goes to the loopback address only, and every loop is bounded.

With ``--baseline CHECKOUT`` the second server is not tipg but gis-service from another checkout of this
repository (an earlier commit: ``git worktree add /tmp/before COMMIT``), run with its code first on PYTHONPATH and
asked the same paths: a before/after comparison of a change in one run, the ratio above 1 when the change is faster.

Run: ``.venv/bin/python scripts/bench_ogc.py [--scale 10] [--clients 4] [--requests 48] [--rounds 4]
[--baseline CHECKOUT]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import _bench  # noqa: F401  (puts the repository on sys.path, for tests.harness)
import httpx
import mapbox_vector_tile
import sqlalchemy as sa

from gis_service.db import migrate
from gis_service.db.cluster import DATABASE_NAME, PORT, EmbeddedCluster
from gis_service.db.roles import SERVICE_ROLE
from gis_service.demo.build import build_demo
from gis_service.io.load_demo import load_frames
from gis_service.layers import LAYERS
from tests.harness.devserver import uvicorn_server

REPO = Path(__file__).resolve().parents[1]
TIPG_VENV = REPO / ".venv-tipg"
#: What pip installs into TIPG_VENV; the version the README's figures were measured with.
TIPG_REQUIREMENTS = ("tipg==1.6.1", "uvicorn")
SEAT = (108.9916, 28.4482)
Z12_SEAT_TILE = (12, 3288, 1710)
HEADERS = {"Accept-Encoding": "identity"}
SERVERS = ("ours", "tipg")


# -- the request kinds -----------------------------------------------------------------------------------------
@dataclass
class RequestKind:
    """One kind of request: the paths to cycle through on each server (same order, same meaning)."""

    name: str
    ours: list[str]
    tipg: list[str]
    tile: bool = False


def request_kinds(road_count: int) -> list[RequestKind]:
    offsets = [int(road_count * i / 10) for i in range(10)]
    lon, lat = SEAT
    bbox = f"{lon - 0.01:.4f},{lat - 0.01:.4f},{lon + 0.01:.4f},{lat + 0.01:.4f}"
    w, s, e, n = lon - 0.015, lat - 0.015, lon + 0.015, lat + 0.015
    cql = quote(f"households > 50 AND S_INTERSECTS(geom, POLYGON(({w:.4f} {s:.4f},{e:.4f} {s:.4f},"
                f"{e:.4f} {n:.4f},{w:.4f} {n:.4f},{w:.4f} {s:.4f})))")
    z, x, y = Z12_SEAT_TILE
    return [
        RequestKind("items limit=1000",
                    [f"/collections/roads/items?limit=1000&offset={o}" for o in offsets],
                    [f"/collections/public.roads/items?limit=1000&offset={o}" for o in offsets]),
        RequestKind("items small bbox",
                    [f"/collections/roads/items?bbox={bbox}&limit=100"],
                    [f"/collections/public.roads/items?bbox={bbox}&limit=100"]),
        RequestKind("filtered (CQL2)",
                    [f"/collections/settlements/items?filter={cql}&limit=100"],
                    [f"/collections/public.settlements/items?filter={cql}&limit=100"]),
        RequestKind("z12 tile (roads)",
                    [f"/collections/roads/tiles/WebMercatorQuad/{z}/{x}/{y}"],
                    [f"/collections/public.roads/tiles/WebMercatorQuad/{z}/{x}/{y}"], tile=True),
    ]


def features_in(response: httpx.Response, *, tile: bool) -> int:
    """Features in an answer: numberReturned of a FeatureCollection, or the features of a tile's one layer."""
    if tile:
        layers = mapbox_vector_tile.decode(response.content)
        return sum(len(layer["features"]) for layer in layers.values())
    return json.loads(response.content)["numberReturned"]


# -- timing ------------------------------------------------------------------------------------------------------
@dataclass
class Timings:
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.wall_s

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        if q == 50:
            return 1000 * statistics.median(ordered)
        return 1000 * ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))]


def run_threads(threads: list[threading.Thread]) -> float:
    """Start the threads, wait for them all; the seconds that took."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def hammer(sessions: list[httpx.Client], paths: list[str], *, requests_per_client: int, into: Timings,
           offset: int = 0) -> None:
    """One thread per session sends ``requests_per_client`` GETs; adds latencies and wall time to ``into``.

    The sessions (one per client, made beforehand and kept between rounds, so their connections stay open) are
    not made inside the timed part: making an httpx client costs tens of milliseconds. Raises on any answer that is
    not 2xx.
    """
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int, http: httpx.Client) -> None:
        for i in range(requests_per_client):
            path = paths[(offset + index + i) % len(paths)]
            started = time.perf_counter()
            response = http.get(path)
            elapsed = time.perf_counter() - started
            with lock:
                if response.status_code >= 300:
                    errors.append(f"{path}: {response.status_code} {response.text[:200]}")
                into.latencies_s.append(elapsed)

    into.wall_s += run_threads([threading.Thread(target=client, args=(i, http)) for i, http in enumerate(sessions)])
    if errors:
        raise RuntimeError(f"{len(errors)} requests to {sessions[0].base_url} failed, e.g. {errors[0]}")


def compare(kind: RequestKind, urls: dict[str, str], *, clients: int, requests_per_client: int,
            rounds: int, baseline: bool = False) -> dict:
    """Check that both servers return as many features, warm both up, then time them in alternating rounds.
    ``baseline``: the second server is gis-service too, asked our paths."""
    kind = RequestKind(kind.name, kind.ours, kind.ours, kind.tile) if baseline else kind
    features = {}
    with httpx.Client(timeout=120, headers=HEADERS) as http:
        for server in SERVERS:
            paths = getattr(kind, server)
            for path in paths:  # warm-up: plans, caches, connections; and every answer must be 2xx
                response = http.get(urls[server] + path)
                if response.status_code != 200:
                    raise RuntimeError(f"{server} {path}: {response.status_code} {response.text[:300]}")
            features[server] = features_in(http.get(urls[server] + paths[0]), tile=kind.tile)
    if features["ours"] != features["tipg"] and not kind.tile:
        raise RuntimeError(f"{kind.name}: the servers disagree on the features: {features}")
    timings = {server: Timings() for server in SERVERS}
    per_round = max(1, requests_per_client // rounds)
    sessions = {server: [httpx.Client(base_url=urls[server], timeout=120, headers=HEADERS) for _ in range(clients)]
                for server in SERVERS}
    try:
        for server in SERVERS:  # concurrent warm-up: each server opens as many database connections as it will use
            hammer(sessions[server], getattr(kind, server), requests_per_client=2, into=Timings())
        for round_no in range(rounds):
            order = SERVERS if round_no % 2 == 0 else SERVERS[::-1]
            for server in order:
                hammer(sessions[server], getattr(kind, server), requests_per_client=per_round,
                       into=timings[server], offset=round_no * per_round)
    finally:
        for http in (http for group in sessions.values() for http in group):
            http.close()
    shown = str(features["ours"]) if features["ours"] == features["tipg"] else f"{features['ours']}/{features['tipg']}"
    return {"features": shown, "timings": timings}


# -- the servers ---------------------------------------------------------------------------------------------------
def tipg_python() -> Path:
    """The interpreter of the tipg virtualenv, created and filled with pip on first use."""
    python = TIPG_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {TIPG_VENV} for tipg (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import tipg, uvicorn"], capture_output=True)
    if probe.returncode != 0:
        print(f"installing {' '.join(TIPG_REQUIREMENTS)} into {TIPG_VENV}", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *TIPG_REQUIREMENTS], check=True)
    return python


def tipg_environment(cluster: EmbeddedCluster) -> dict[str, str]:
    """tipg's settings: our database over the cluster's unix socket, our layers' tables only, no functions.

    asyncpg reads a percent-encoded socket folder as the host (pydantic refuses a URL with an empty host), and the
    service role's password from the cluster's password file (PGPASSFILE), as ours does.
    """
    tables = json.dumps([f"public.{layer.table}" for layer in LAYERS.values()])
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "GIS_"))},
        "DATABASE_URL": f"postgresql://{SERVICE_ROLE}@{quote(str(cluster.socket_dir), safe='')}:{PORT}/"
                        f"{DATABASE_NAME}",
        "PGPASSFILE": str(cluster.password_file),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": tables,
        "TIPG_DB_FUNCTIONS": "[]",
        "TIPG_MAX_FEATURES_PER_TILE": "1000000",
        "TIPG_TILE_BUFFER": "64",  # as ours: both tiles then hold the same features
        "TIPG_CATALOG_TTL": "0",  # the catalog is read once at start, as ours is fixed
    }


@contextlib.contextmanager
def servers(scale: int, *, baseline: Path | None = None) -> Iterator[tuple[dict[str, str], int]]:
    """The demo county at ``scale`` in a throwaway embedded cluster, served by ours and by tipg (or by the baseline
    checkout): yields their base URLs by SERVERS name and the number of roads."""
    tipg = None if baseline else tipg_python()
    with tempfile.TemporaryDirectory(prefix="gis-bench-") as folder:
        Path(folder).chmod(0o755)  # as root the cluster runs as postgres, which must enter the folder
        with EmbeddedCluster(Path(folder) / "data").running() as cluster:
            url = cluster.url()
            migrate.upgrade(url)
            engine = sa.create_engine(url)
            load_frames(engine, build_demo(scale=scale, seed=20261129), county_code="500241", measure_srid=4545,
                        replace=True)
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
                road_count = conn.execute(sa.text("SELECT count(*) FROM roads")).scalar_one()
            engine.dispose()
            ours_env = {**os.environ, "GIS_DATABASE_URL": url, "GIS_LOAD_DEMO": "false"}
            other = (uvicorn_server("gis_service.app:create_app", ready_path="/conformance",
                                    env={**ours_env, "PYTHONPATH": str(baseline.resolve())}) if baseline else
                     uvicorn_server("tipg.main:app", env=tipg_environment(cluster), ready_path="/collections",
                                    python=tipg, factory=False, timeout_s=120))
            with uvicorn_server("gis_service.app:create_app", env=ours_env, ready_path="/conformance") as ours_url, \
                    other as tipg_url:
                yield {"ours": ours_url, "tipg": tipg_url}, road_count


def bench_scale(scale: int, *, clients: int, requests_per_client: int, rounds: int,
                baseline: Path | None = None) -> dict:
    with servers(scale, baseline=baseline) as (urls, road_count):
        results = {kind.name: compare(kind, urls, clients=clients, requests_per_client=requests_per_client,
                                      rounds=rounds, baseline=baseline is not None)
                   for kind in request_kinds(road_count)}
    return {"roads": road_count, "results": results}


def print_table(scale: int, outcome: dict, *, clients: int, requests_per_client: int, rounds: int,
                other: str = "tipg") -> None:
    per_round = max(1, requests_per_client // rounds)
    print(f"\ndemo scale {scale}: {outcome['roads']} roads; {clients} clients x {per_round * rounds} requests per "
          f"kind and server, in {rounds} alternating rounds")
    print(f"{'request':18s} {'features':>11s} | {'ours req/s':>10s} {'p50 ms':>7s} {'p95 ms':>7s} | "
          f"{other + ' req/s':>10s} {'p50 ms':>7s} {'p95 ms':>7s} | {'ours/' + other:>9s}")
    for name, result in outcome["results"].items():
        ours, tipg = result["timings"]["ours"], result["timings"]["tipg"]
        print(f"{name:18s} {result['features']:>11s} | {ours.rps:10.1f} {ours.percentile_ms(50):7.1f} "
              f"{ours.percentile_ms(95):7.1f} | {tipg.rps:10.1f} {tipg.percentile_ms(50):7.1f} "
              f"{tipg.percentile_ms(95):7.1f} | {ours.rps / tipg.rps:8.2f}x")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=10, help="Demo scale of the second run (the first is 1).")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent clients, the same for both servers.")
    parser.add_argument("--requests", type=int, default=48,
                        help="Requests per client, request kind and server (split over the rounds).")
    parser.add_argument("--rounds", type=int, default=4, help="Alternating rounds per request kind.")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="Compare with gis-service from this checkout (an earlier commit) instead of tipg.")
    args = parser.parse_args()
    if args.baseline and not (args.baseline / "gis_service" / "app.py").exists():
        parser.error(f"--baseline {args.baseline} is not a checkout of gis-service (no gis_service/app.py)")
    # A plain kill must still stop the servers and the throwaway cluster: turn SIGTERM into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.clients < 1 or args.requests < args.rounds or args.rounds < 1:
        parser.error("--clients and --rounds must be at least 1, and --requests at least --rounds")
    for scale in sorted({1, args.scale}):
        outcome = bench_scale(scale, clients=args.clients, requests_per_client=args.requests, rounds=args.rounds,
                              baseline=args.baseline)
        print_table(scale, outcome, clients=args.clients, requests_per_client=args.requests, rounds=args.rounds,
                    other="before" if args.baseline else "tipg")


if __name__ == "__main__":
    main()
