"""Load test: many concurrent clients over a mix of reads, against the service in a uvicorn subprocess.

    .venv/bin/python scripts/bench_load.py [--clients 50] [--seconds 60] [--scale 1] [--database-url URL]
                                           [--workers 1 2]

The demo county (``--scale``, 1 by default) is loaded into a throwaway embedded PostGIS cluster in a temporary
folder (or ``--database-url`` names a database that already holds it). The service runs as ``uvicorn
gis_service.app:create_app --factory`` in a subprocess (:func:`tests.harness.devserver.uvicorn_process`): the same
app, engine (``create_db_engine``) and workers (``--workers``, 1 by default; several counts are run one after the
other on the same database and their requests per second compared) as ``gis-service serve``, with the start-up
warm-up on. One difference makes it the harder case: ``serve`` builds the road network before it listens, while
here the warm-up builds it in the background as the first requests arrive. Access logging is off (log level warning).

Then ``--clients`` clients each send one request after another, without pause, for ``--seconds`` seconds: a closed
loop, so exactly that many requests are in flight at any time. Each request is drawn from this mix (weight, what):

- 30 vector tiles of roads, settlements and divisions at zoom 10, 12 and 14 around settlements (204 when empty);
- 20 place-name type-ahead (``/placenames/autocomplete``) and 10 search (``/placenames/search``), with the
  queries of ``bench_search.py`` (names, short names, pinyin, initials, typos);
- 15 items in a bbox of about 2 km around a settlement (roads, settlements, place names; limit 100);
- 10 items with a CQL2 filter (households and S_INTERSECTS around a settlement; elder-care kind and beds);
- 5 items pages (elder-care facilities, community centres, divisions);
- 7 coverage along the road network (``/analysis/coverage``: 3 layers x 3 time limits x 2 modes x 3 groupings,
  54 combinations, more than the 32 answers the service caches, so some are computed again) and 3 community
  floor area (``/analysis/facility-area``);
- 1 the status page (``/health``), as a monitor polls it.

It prints requests per second, p50/p95/p99 latency overall and per kind and per 10 s of the run, the errors (any
answer other than 2xx, a connection error or a time-out of 30 s; the first five are shown), the server's memory
(resident set of the uvicorn process and its children, sampled every second: at start, after the warm phase,
peak, at the end), its database connections, and where the CPU time went.

The client is not the bottleneck, and the script shows it: the clients are threads with the standard library's
``http.client`` (:func:`tests.harness.devserver.run_clients`), which spend about 0.6 ms of CPU per request here,
against about 8 ms in the server; httpx spent 2 ms (threads) to 9 ms (asyncio, one pool of 50 connections) per
request on this machine, more than the server itself. The client, the server and PostgreSQL share the 2 cores, as
does any other work on the machine (printed as "other work").

Memory bound: after the first 10 s (the warm phase, in which the road graph, the point joins, the answers and the
query plans are first cached), the server's resident set may grow by at most 64 MB for the rest of the run. At
scale 1 the cache that goes on filling is the analyses' answers (at most 32 answers and 64 MB, kept pickled; a
coverage answer takes about 0.4 MB), which the mix's 54 coverage combinations fill and keep turning over; a leak
of a few kilobytes per request over the 6,000 requests of a minute would exceed the bound. The bound is for scale 1:
at scale 10 building the network alone outlasts the warm phase.

Exit status: 0 when no request failed and the memory bound held; 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from _bench import DEMO_SEED, demo_database, query_lists

from tests.harness.devserver import LoadKind, LoadOutcome, process_tree, run_clients, service_env, uvicorn_process

WARM_S = 10.0
WINDOW_S = 10
RSS_GROWTH_BOUND_MB = 64.0
REQUEST_TIMEOUT_S = 30.0
ERRORS_SHOWN = 5
TILE_ZOOMS = (10, 12, 14)
TILE_LAYERS = ("roads", "settlements", "admin_divisions")
COVERAGE_LAYERS = ("elder_care", "community_centres", "cemeteries")


# -- the request mix -------------------------------------------------------------------------------------------
def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The WebMercatorQuad column and row (from the top) holding lon, lat (EPSG:4326) at zoom z."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def box(lon: float, lat: float, half_deg: float) -> tuple[float, float, float, float]:
    return lon - half_deg, lat - half_deg, lon + half_deg, lat + half_deg


def request_mix(url: str, *, seed: int) -> list[LoadKind]:
    """The kinds of request with their paths, drawn from the data in the database at ``url``."""
    rng = random.Random(seed)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        points = conn.execute(sa.text(
            "SELECT ST_X(geom), ST_Y(geom) FROM settlements ORDER BY id")).all()
        elder_kinds = [k for (k,) in conn.execute(sa.text("SELECT DISTINCT kind FROM elder_care ORDER BY kind"))]
        divisions = conn.execute(sa.text("SELECT count(*) FROM admin_divisions")).scalar_one()
    engine.dispose()
    search, complete = query_lists(url, seed=seed)
    places = rng.sample(points, min(300, len(points)))

    tiles = sorted({f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                    for lon, lat in places for z in TILE_ZOOMS for layer in TILE_LAYERS
                    for x, y in [tile_of(lon, lat, z)]})
    bbox_items = []
    for i, (lon, lat) in enumerate(places):
        layer = ("roads", "settlements", "place_names")[i % 3]
        bbox_items.append(f"/collections/{layer}/items?" + urlencode(
            {"bbox": ",".join(f"{v:.4f}" for v in box(lon, lat, 0.01)), "limit": 100}))
    filtered = []
    for i, (lon, lat) in enumerate(places):
        if i % 3 == 2:
            cql = f"kind = '{rng.choice(elder_kinds)}' AND beds >= {rng.choice((0, 10, 30))}"
            filtered.append("/collections/elder_care/items?limit=100&filter=" + quote(cql))
            continue
        w, s, e, n = box(lon, lat, 0.015)
        cql = (f"households > {rng.choice((10, 30, 50))} AND S_INTERSECTS(geometry, POLYGON(({w:.4f} {s:.4f},"
               f"{e:.4f} {s:.4f},{e:.4f} {n:.4f},{w:.4f} {n:.4f},{w:.4f} {s:.4f})))")
        filtered.append("/collections/settlements/items?limit=100&filter=" + quote(cql))
    pages = (["/collections/elder_care/items?limit=200", "/collections/community_centres/items?limit=100"]
             + [f"/collections/admin_divisions/items?limit=20&offset={o}" for o in range(0, divisions, 20)])
    coverage = [f"/analysis/coverage?layer={layer}&minutes={minutes}&mode={mode}&group_by={group_by}"
                for layer in COVERAGE_LAYERS for minutes in (10, 15, 20) for mode in ("walk", "cycle")
                for group_by in ("county", "township", "village")]
    facility_area = [f"/analysis/facility-area?level={level}" for level in ("village", "township", "county")]
    return [
        LoadKind("tile", 30, tiles),
        LoadKind("autocomplete", 20, ["/placenames/autocomplete?q=" + quote(q) for q in complete]),
        LoadKind("search", 10, ["/placenames/search?q=" + quote(q) for q in search]),
        LoadKind("items bbox", 15, bbox_items),
        LoadKind("items CQL2", 10, filtered),
        LoadKind("items page", 5, pages),
        LoadKind("coverage", 7, coverage),
        LoadKind("facility area", 3, facility_area),
        LoadKind("health", 1, ["/health"]),
    ]


# -- the server's memory and CPU, from /proc ----------------------------------------------------------------------
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    """Resident set of ``pid`` and its descendants, MB."""
    total = 0
    for member in process_tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except OSError:
            pass
    return total * PAGE_BYTES / 2**20


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its living descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def postmaster_pid(url: str) -> int | None:
    """The process id of the PostgreSQL server at ``url`` when it runs on this machine (the parent of a backend)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        try:
            stat = Path(f"/proc/{backend}/stat").read_text()
        except OSError:  # another machine
            stat = None
    engine.dispose()
    return int(stat[stat.rindex(")") + 2:].split()[1]) if stat else None


def machine_busy_s() -> float:
    """CPU seconds all cores of the machine have spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def sessions_opened(conn: sa.Connection) -> int:
    """Sessions established in this database since its statistics were reset (PostgreSQL 14 and later)."""
    opened = conn.execute(sa.text(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")).scalar_one()
    conn.rollback()
    return opened


def cpu_now(server_pid: int, postgres_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by this client, the server, PostgreSQL (0 when not on this machine) and the
    whole machine."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {"client": used.ru_utime + used.ru_stime, "server": tree_cpu_s(server_pid),
            "postgres": tree_cpu_s(postgres_pid) if postgres_pid else 0.0, "machine": machine_busy_s()}


@dataclass
class ServerSamples:
    """Once a second: seconds since the start, the server's RSS (MB) and its open database connections."""

    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)
    #: Database sessions the server opened during the run (a pool that closes and reopens connections opens many).
    sessions_opened: int = 0

    def rss_at(self, t: float) -> float:
        return self.rss_mb[min(range(len(self.seconds)), key=lambda i: abs(self.seconds[i] - t))]

    def rss_from(self, t: float) -> list[float]:
        return [rss for when, rss in zip(self.seconds, self.rss_mb) if when >= t]


# -- the report ----------------------------------------------------------------------------------------------------
def percentile_ms(latencies: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``latencies`` (seconds), in milliseconds."""
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def latency_row(name: str, latencies: list[float], wall_s: float, total: int) -> str:
    if not latencies:
        return f"{name:<14} {0:>6} {'':>6}"
    return (f"{name:<14} {len(latencies):>6,} {len(latencies) / total:>6.0%} {len(latencies) / wall_s:>7.1f} "
            f"{percentile_ms(latencies, 50):>7.0f} {percentile_ms(latencies, 95):>7.0f} "
            f"{percentile_ms(latencies, 99):>7.0f} {1000 * max(latencies):>7.0f}")


def report(outcome: LoadOutcome, samples: ServerSamples, cpu: dict[str, float], mix: list[LoadKind], *,
           clients: int, scale: int, load: tuple[float, float, float]) -> bool:
    """Print the figures; True when there were no errors and the memory bound held. ``load``: the load average
    before the run."""
    total = len(outcome.requests)
    wall = outcome.wall_s
    print(f"\n{clients} clients for {wall:.1f} s, demo scale {scale}, {os.cpu_count()} CPUs shared by "
          f"client, server and PostgreSQL (load average before the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    print(f"requests: {total:,}, {total / wall:.1f} per second; errors: {len(outcome.errors)}")
    print(f"\n{'kind':<14} {'n':>6} {'share':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7}")
    for kind in mix:
        print(latency_row(kind.name, [lat for name, _, lat in outcome.requests if name == kind.name], wall, total))
    print(latency_row("all", [lat for _, _, lat in outcome.requests], wall, total))
    print(f"\n{'seconds':<14} {'n':>6} {'errors':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'RSS MB':>7} {'db conn':>7}")
    for start in range(0, math.ceil(wall), WINDOW_S):
        end = min(start + WINDOW_S, wall)
        window = [lat for _, sent, lat in outcome.requests if start <= sent < end]
        failed = sum(1 for sent in outcome.error_times if start <= sent < end)
        watched = [i for i, t in enumerate(samples.seconds) if start <= t <= end]
        if not window:
            continue
        print(f"{f'{start}-{end:.0f}':<14} {len(window):>6,} {failed:>6} {len(window) / (end - start):>7.1f} "
              f"{percentile_ms(window, 50):>7.0f} {percentile_ms(window, 95):>7.0f} {percentile_ms(window, 99):>7.0f} "
              f"{max(samples.rss_mb[i] for i in watched):>7.0f} {max(samples.connections[i] for i in watched):>7}")
    for error in outcome.errors[:ERRORS_SHOWN]:
        print(f"  error: {error}")
    if len(outcome.errors) > ERRORS_SHOWN:
        print(f"  ... and {len(outcome.errors) - ERRORS_SHOWN} more")

    start, warm, end = samples.rss_mb[0], samples.rss_at(WARM_S), samples.rss_mb[-1]
    growth = max(samples.rss_from(WARM_S), default=warm) - warm
    held = growth <= RSS_GROWTH_BOUND_MB
    print(f"\nserver memory (RSS of uvicorn and its children, sampled every second): start {start:.0f} MB, "
          f"after the {WARM_S:.0f} s warm phase {warm:.0f} MB, peak {max(samples.rss_mb):.0f} MB, end {end:.0f} MB")
    print(f"growth after the warm phase: {growth:+.0f} MB (bound {RSS_GROWTH_BOUND_MB:.0f} MB: "
          f"{'held' if held else 'EXCEEDED'})")
    print(f"database connections of the server: at most {max(samples.connections)} open at once, "
          f"{samples.sessions_opened} opened during the run")
    cores = os.cpu_count() or 1
    print(f"CPU over the run (cores busy on average, of {cores}): client {cpu['client'] / wall:.2f} "
          f"({1000 * cpu['client'] / max(total, 1):.2f} ms per request), server {cpu['server'] / wall:.2f} "
          f"({1000 * cpu['server'] / max(total, 1):.2f} ms per request), PostgreSQL {cpu['postgres'] / wall:.2f}, "
          f"other work on the machine {(cpu['machine'] - cpu['client'] - cpu['server'] - cpu['postgres']) / wall:.2f}"
          f"; whole machine {cpu['machine'] / wall:.2f}")
    ok = not outcome.errors and held
    print(f"\nresult: {'PASS' if ok else 'FAIL'} ({len(outcome.errors)} errors; memory bound "
          f"{'held' if held else 'exceeded'})")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients (connections).")
    parser.add_argument("--seconds", type=float, default=60, help="How long the clients send requests.")
    parser.add_argument("--scale", type=int, default=1, help="Demo county scale (ignored with --database-url).")
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--database-url", help="A database that already holds the demo county.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="Worker processes of the server; several counts (--workers 1 2) are run one after the "
                        "other on the same database, and compared.")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= WARM_S:
        parser.error(f"--clients must be at least 1 and --seconds more than the {WARM_S:.0f} s warm phase")
    # A plain kill must still stop the server and the throwaway cluster: turn SIGTERM into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with demo_database(args.database_url, scale=args.scale) as url:
        mix = request_mix(url, seed=args.seed)
        runs = {}
        for workers in args.workers:
            print(f"\n== {workers} worker{'s' if workers > 1 else ''} ==")
            runs[workers] = run(url, mix, args, workers)
    for workers, (_, outcome) in runs.items():
        after = [latency for _, when, latency in outcome.requests if when >= WARM_S]
        print(f"workers {workers}: {len(outcome.requests) / outcome.wall_s:.1f} requests/s, after the first "
              f"{WARM_S:.0f} s {len(after) / (outcome.wall_s - WARM_S):.1f} requests/s, p50 / p95 "
              f"{percentile_ms(after, 50):.0f} / {percentile_ms(after, 95):.0f} ms, {len(outcome.errors)} errors")
    first, *others = runs
    for workers in others:
        ratio = len(runs[workers][1].requests) / runs[workers][1].wall_s / (
            len(runs[first][1].requests) / runs[first][1].wall_s)
        print(f"workers {workers} / workers {first}: {ratio:.2f}x the requests per second")
    sys.exit(0 if all(ok for ok, _ in runs.values()) else 1)


def run(url: str, mix: list[LoadKind], args: argparse.Namespace, workers: int) -> tuple[bool, LoadOutcome]:
    """One load run against a fresh server of ``workers`` processes; whether it passed, and what the clients saw."""
    env = service_env(url, GIS_WARM_UP="true")
    with uvicorn_process(env=env, ready_path="/conformance", workers=workers) as server:
        samples = ServerSamples()
        postgres = postmaster_pid(url)
        load = os.getloadavg()
        before = cpu_now(server.pid, postgres)
        engine = sa.create_engine(url, poolclass=sa.pool.StaticPool)
        with engine.connect() as watcher:
            sessions_before = sessions_opened(watcher)

            def sample(elapsed_s: float) -> None:
                samples.seconds.append(elapsed_s)
                samples.rss_mb.append(tree_rss_mb(server.pid))
                samples.connections.append(watcher.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")).scalar_one())
                watcher.rollback()

            outcome = run_clients(server.url, mix, clients=args.clients, seconds=args.seconds, seed=args.seed,
                                  timeout_s=REQUEST_TIMEOUT_S, on_tick=sample)
            samples.sessions_opened = max(0, sessions_opened(watcher) - sessions_before - 1)  # not the watcher
        engine.dispose()
        cpu = {key: value - before[key] for key, value in cpu_now(server.pid, postgres).items()}
    return report(outcome, samples, cpu, mix, clients=args.clients, scale=args.scale, load=load), outcome


if __name__ == "__main__":
    main()
