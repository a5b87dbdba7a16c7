"""Analyses bounded in time and memory: one very large analysis, then twenty at once, against the service in a
uvicorn subprocess.

    .venv/bin/python scripts/bench_analysis_limits.py [--scale 1] [--database-url URL] [--timeout-s 120]

The demo county (``--scale``) is loaded into a throwaway embedded PostGIS cluster (or ``--database-url`` names a
database that already holds it). Each part runs against a fresh server (``uvicorn gis_service.app:create_app
--factory``, one worker, warm-up on, as ``scripts/bench_load.py`` does), so that neither sees the other's cached
answers or left-over work. Before each part the script waits for the road network and computes two small analyses
(one coverage, one service area), so that the road graph and the point joins are loaded: the server's resident set
(RSS) then is "the start".

1. **The large one**: ``/analysis/service-areas?mode=drive&minutes=10&buffer_m=500`` (every elder-care facility,
   10 minutes by car, 500 m strips), alone. Target: answered or refused within 30 s.
2. **Twenty at once**: twenty analyses (service areas and coverage with varied layers, kinds, modes, minutes,
   buffers and groupings) sent together, each on a connection of its own; meanwhile one client reads ``/health``
   and another a page of settlements, one request after another. Target: ``/health`` under 1 s, every time.
3. **Memory**: in both parts, the RSS at the start, its peak (sampled every 0.2 s), right after the last answer
   and 3 s later. Target: within 100 MB of the start 3 s after the last answer.

It also prints the database sessions the server held in a transaction at once (sampled with the RSS). A request
that gets no answer within ``--timeout-s`` counts as unanswered (its server is stopped afterwards). Exit status: 0
when every target was met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import sqlalchemy as sa
from _bench import demo_database
from bench_load import percentile_ms, tree_rss_mb

from tests.harness.devserver import RunningServer, service_env, uvicorn_process

LARGE = "/analysis/service-areas?mode=drive&minutes=10&buffer_m=500"
TWENTY = [
    "/analysis/service-areas?minutes=15&buffer_m=50&kind=community_station",
    "/analysis/service-areas?minutes=20&buffer_m=100",
    "/analysis/service-areas?layer=community_centres&minutes=30&buffer_m=50",
    "/analysis/service-areas?mode=cycle&minutes=10&buffer_m=100",
    "/analysis/service-areas?mode=cycle&minutes=15&buffer_m=200&kind=township_home",
    "/analysis/service-areas?layer=cemeteries&mode=drive&minutes=5&buffer_m=100",
    "/analysis/service-areas?mode=drive&minutes=5&buffer_m=300&kind=rural_happiness_home",
    "/analysis/service-areas?layer=cemeteries&minutes=15&buffer_m=25",
    "/analysis/service-areas?mode=cycle&minutes=20&buffer_m=50&kind=welfare_institution",
    "/analysis/service-areas?mode=drive&minutes=8&buffer_m=200&kind=community_station",
    "/analysis/coverage?minutes=10&group_by=village",
    "/analysis/coverage?minutes=20&mode=cycle&group_by=township",
    "/analysis/coverage?layer=cemeteries&mode=drive&minutes=30&group_by=county",
    "/analysis/coverage?layer=community_centres&minutes=15&group_by=village",
    "/analysis/coverage?kind=rural_happiness_home&minutes=25&group_by=township",
    "/analysis/coverage?mode=drive&minutes=12&group_by=village",
    "/analysis/coverage?layer=cemeteries&kind=burial_point&mode=cycle&minutes=30&group_by=township",
    "/analysis/coverage?minutes=15&method=euclidean&group_by=village",
    "/analysis/coverage?kind=community_station&mode=cycle&minutes=5&group_by=county",
    "/analysis/coverage?layer=community_centres&mode=drive&minutes=3&group_by=township",
]
WARM_UP = ["/analysis/coverage?group_by=county", "/analysis/service-areas?kind=welfare_institution&minutes=5"]
READS = {"health": "/health", "items": "/collections/settlements/items?limit=10"}
LARGE_TARGET_S = 30.0
HEALTH_TARGET_S = 1.0
RSS_TARGET_MB = 100.0
SETTLE_S = 3.0


@dataclass
class Answer:
    path: str
    status: int | None  # None: no answer within the time-out
    seconds: float
    description: str = ""


def get(base_url: str, path: str, timeout_s: float) -> Answer:
    """One GET on a connection of its own."""
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout_s)
    started = time.perf_counter()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        description = ""
        if response.status >= 400:
            try:
                description = json.loads(body).get("description", "")
            except ValueError:
                description = body[:200].decode("utf-8", "replace")
        return Answer(path, response.status, time.perf_counter() - started, description)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(path, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()


@dataclass
class Watch:
    """The server's RSS (MB) and its sessions in a transaction, every 0.2 s, from a thread of its own."""

    server: RunningServer
    url: str
    rss_mb: list[float] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        engine = sa.create_engine(self.url, poolclass=sa.pool.StaticPool)
        with engine.connect() as watcher:
            while not self._stop.wait(0.2):
                self.rss_mb.append(tree_rss_mb(self.server.pid))
                self.sessions.append(watcher.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = "
                    "'client backend' AND state <> 'idle' AND pid <> pg_backend_pid()")).scalar_one())
                watcher.rollback()
        engine.dispose()


def fresh_server(url: str):
    """A server over ``url`` with the start-up warm-up on, as ``gis-service serve`` runs."""
    return uvicorn_process(env=service_env(url, GIS_WARM_UP="true"), ready_path="/conformance")


def warm_up(server: RunningServer, timeout_s: float) -> None:
    """Wait for the road network and load the graph and the point joins (two small analyses)."""
    for path in WARM_UP:
        answer = get(server.url, path, timeout_s)
        if answer.status != 200:
            raise SystemExit(f"warm-up {path} answered {answer.status}: {answer.description}")
    time.sleep(1.0)


def memory_line(start: float, watch: Watch, right_after: float, settled: float) -> tuple[str, bool]:
    held = settled - start <= RSS_TARGET_MB
    return (f"server RSS: start {start:.0f} MB, peak {max(watch.rss_mb, default=start):.0f} MB, right after the "
            f"last answer {right_after:.0f} MB, {SETTLE_S:.0f} s later {settled:.0f} MB ({settled - start:+.0f} MB; "
            f"target within {RSS_TARGET_MB:.0f} MB: {'met' if held else 'MISSED'})"), held


def the_large_one(url: str, timeout_s: float) -> bool:
    with fresh_server(url) as server:
        warm_up(server, timeout_s)
        start = tree_rss_mb(server.pid)
        with Watch(server, url) as watch:
            answer = get(server.url, LARGE, timeout_s)
            right_after = tree_rss_mb(server.pid)
            time.sleep(SETTLE_S)
            settled = tree_rss_mb(server.pid)
    in_time = answer.status is not None and answer.seconds <= LARGE_TARGET_S
    what = f"status {answer.status}" if answer.status else f"no answer within {timeout_s:g} s"
    print(f"\n1. {LARGE} alone")
    print(f"   {what} after {answer.seconds:.1f} s (target: answered or refused within {LARGE_TARGET_S:.0f} s: "
          f"{'met' if in_time else 'MISSED'})")
    if answer.description:
        print(f"   message: {answer.description}")
    line, held = memory_line(start, watch, right_after, settled)
    print(f"   {line}")
    return in_time and held


def twenty_at_once(url: str, timeout_s: float) -> bool:
    with fresh_server(url) as server:
        warm_up(server, timeout_s)
        start = tree_rss_mb(server.pid)
        answers: list[Answer] = []
        reads: dict[str, list[Answer]] = {name: [] for name in READS}
        done = threading.Event()

        def analysis(path: str) -> None:
            answers.append(get(server.url, path, timeout_s))

        def reader(name: str) -> None:
            while not done.is_set():
                reads[name].append(get(server.url, READS[name], timeout_s))
                done.wait(0.1)

        with Watch(server, url) as watch:
            readers = [threading.Thread(target=reader, args=(name,)) for name in READS]
            senders = [threading.Thread(target=analysis, args=(path,)) for path in TWENTY]
            began = time.perf_counter()
            for thread in readers + senders:
                thread.start()
            for thread in senders:
                thread.join()
            wall = time.perf_counter() - began
            right_after = tree_rss_mb(server.pid)
            done.set()
            for thread in readers:
                thread.join()
            time.sleep(SETTLE_S)
            settled = tree_rss_mb(server.pid)
    print(f"\n2. {len(TWENTY)} analyses at once (all sent together; the last answered after {wall:.1f} s)")
    by_status: dict[str, list[float]] = {}
    for answer in answers:
        by_status.setdefault(str(answer.status or "no answer"), []).append(answer.seconds)
    for status, seconds in sorted(by_status.items()):
        print(f"   status {status}: {len(seconds)}, answered after {min(seconds):.1f}-{max(seconds):.1f} s")
    for answer in answers:
        if answer.status != 200:
            print(f"   e.g. {answer.path}: {answer.status} {answer.description[:300]}")
            break
    health_ok = True
    for name, got in reads.items():
        seconds = [a.seconds for a in got]
        failed = sum(1 for a in got if a.status != 200)
        worst = max(seconds, default=float("inf"))
        if name == "health":
            health_ok = failed == 0 and worst < HEALTH_TARGET_S
        target = (f" (target under {HEALTH_TARGET_S:.0f} s every time: {'met' if health_ok else 'MISSED'})"
                  if name == "health" else "")
        print(f"   {READS[name]} during them: {len(got)} requests, {failed} failed, p50 "
              f"{percentile_ms(seconds, 50):.0f} ms, p100 {1000 * worst:.0f} ms{target}")
    print(f"   database sessions the server held in a transaction at once: at most {max(watch.sessions, default=0)}")
    line, held = memory_line(start, watch, right_after, settled)
    print(f"   {line}")
    return health_ok and held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="Demo county scale (ignored with --database-url).")
    parser.add_argument("--database-url", help="A database that already holds the demo county.")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="How long a client waits for an answer.")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a plain kill still stops the servers and the cluster
    with demo_database(args.database_url, scale=args.scale) as url:
        large_ok = the_large_one(url, args.timeout_s)
        twenty_ok = twenty_at_once(url, args.timeout_s)
    ok = large_ok and twenty_ok
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
