"""Benchmark: a repeated vector tile, gis-service against tipg on the same PostGIS table, in one run (issue 17's
target: at least 5x tipg's throughput for the same tile).

The demo county at ``--scale`` (1 by default) in a throwaway embedded cluster; both servers in uvicorn subprocesses
with one worker each on free 127.0.0.1 ports, over the same database:

- gis-service (``gis_service.app:create_app``) with its tile cache on (``GIS_TILE_CACHE_MB``, default 512, in a
  throwaway data folder): the first request renders the tile and keeps it gzip-compressed, the repeats are read
  from the page cache;
- tipg 1.6.1 (developmentseed) from its own virtualenv ``.venv-tipg/``, made by ``scripts/bench_ogc.py``'s
  :func:`tipg_python` on first use (never a dependency of the service), restricted to our layers' tables, its tile
  buffer set to ours and its per-tile feature cap lifted. tipg keeps no tiles: each request renders.

For each tile (roads at z10, z12 and z14 over the county seat) ``--clients`` clients ask the same tile again and
again, ``--requests`` times each per server, in ``--rounds`` rounds in which the two servers take turns (who goes
first alternates), so the noise of a shared machine falls on both alike. Clients send ``Accept-Encoding: gzip``,
as browsers and map libraries do (tipg then compresses each answer; ours sends the stored bytes); with
``--identity`` they ask for uncompressed answers instead (ours decompresses the kept tile). Before timing, the
script checks that both answers hold the same layer and at least as many features from ours (ours also keeps
the roads in the tile's buffer), and that a second request to ours with ``If-None-Match`` gets 304.

Prints per tile and server requests per second and p50/p95 latency, and ours/tipg: the throughput ratio.
Run: ``.venv/bin/python scripts/bench_tiles.py [--scale 1] [--clients 4] [--requests 200] [--rounds 4]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

import httpx
import mapbox_vector_tile
from bench_ogc import SERVERS, Timings, run_threads, servers

#: WebMercatorQuad tiles over the county seat (108.99 E, 28.45 N), roads.
TILES = ((10, 822, 427), (12, 3288, 1710), (14, 13152, 6840))


def tile_paths(z: int, x: int, y: int) -> dict[str, str]:
    return {"ours": f"/collections/roads/tiles/WebMercatorQuad/{z}/{x}/{y}",
            "tipg": f"/collections/public.roads/tiles/WebMercatorQuad/{z}/{x}/{y}"}


def check(urls: dict[str, str], paths: dict[str, str], headers: dict[str, str]) -> str:
    """Both servers answer the tile with a roads layer, ours with at least tipg's features, and ours revalidates
    with 304. Returns the features as ``ours/tipg``."""
    counts = {}
    with httpx.Client(timeout=120, headers=headers) as http:
        for server in SERVERS:
            response = http.get(urls[server] + paths[server])
            if response.status_code != 200:
                raise RuntimeError(f"{server} {paths[server]}: {response.status_code} {response.text[:300]}")
            layers = mapbox_vector_tile.decode(response.content)
            counts[server] = sum(len(layer["features"]) for layer in layers.values())
            if server == "ours":
                again = http.get(urls[server] + paths[server], headers={"If-None-Match": response.headers["ETag"]})
                if again.status_code != 304:
                    raise RuntimeError(f"ours did not revalidate {paths[server]}: {again.status_code}")
    if not 0 < counts["tipg"] <= counts["ours"]:
        raise RuntimeError(f"{paths['ours']}: the tiles disagree: {counts}")
    return f"{counts['ours']}/{counts['tipg']}"


def hammer(base: str, path: str, headers: dict[str, str], *, clients: int, requests_per_client: int,
           into: Timings) -> None:
    """``clients`` threads, each with its own keep-alive ``http.client`` connection, GET ``path`` one after the
    other; adds latencies and wall time to ``into``. http.client, not httpx: httpx spends 1-2 ms of CPU per request
    itself (see tests/harness/devserver.run_clients), which capped both servers at the client's speed."""
    where = urlsplit(base)
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
        try:
            for _ in range(requests_per_client):
                started = time.perf_counter()
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    into.latencies_s.append(elapsed)
                    if response.status != 200:
                        errors.append(f"{base}{path}: {response.status}")
        finally:
            connection.close()

    into.wall_s += run_threads([threading.Thread(target=client) for _ in range(clients)])
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")


def compare(urls: dict[str, str], paths: dict[str, str], headers: dict[str, str], *, clients: int,
            requests_per_client: int, rounds: int) -> dict[str, Timings]:
    timings = {server: Timings() for server in SERVERS}
    per_round = max(1, requests_per_client // rounds)
    for server in SERVERS:  # warm-up: each server opens the database connections it will use
        hammer(urls[server], paths[server], headers, clients=clients, requests_per_client=3, into=Timings())
    for round_no in range(rounds):
        for server in SERVERS if round_no % 2 == 0 else SERVERS[::-1]:
            hammer(urls[server], paths[server], headers, clients=clients, requests_per_client=per_round,
                   into=timings[server])
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="Demo county scale.")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="Requests per client, tile and server.")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--identity", action="store_true", help="Ask for uncompressed tiles (default: gzip).")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a plain kill still stops servers and cluster
    headers = {"Accept-Encoding": "identity" if args.identity else "gzip"}
    with servers(args.scale) as (urls, _):
        per_round = max(1, args.requests // args.rounds)
        load = os.getloadavg()
        print(f"demo scale {args.scale}; {args.clients} clients x {per_round * args.rounds} requests of the "
              f"same tile per server, {args.rounds} alternating rounds; Accept-Encoding: "
              f"{headers['Accept-Encoding']}; {os.cpu_count()} CPUs, load average {load[0]:.1f}")
        print(f"{'roads tile':16s} {'features':>9s} | {'ours req/s':>10s} {'p50 ms':>7s} {'p95 ms':>7s} | "
              f"{'tipg req/s':>10s} {'p50 ms':>7s} {'p95 ms':>7s} | {'ours/tipg':>9s}")
        for z, x, y in TILES:
            paths = tile_paths(z, x, y)
            features = check(urls, paths, headers)
            timings = compare(urls, paths, headers, clients=args.clients,
                              requests_per_client=args.requests, rounds=args.rounds)
            a, b = timings["ours"], timings["tipg"]
            print(f"{f'{z}/{x}/{y}':16s} {features:>9s} | {a.rps:10.1f} {a.percentile_ms(50):7.1f} "
                  f"{a.percentile_ms(95):7.1f} | {b.rps:10.1f} {b.percentile_ms(50):7.1f} "
                  f"{b.percentile_ms(95):7.1f} | {a.rps / b.rps:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
