"""Slow clients against the server: thousands of connections sending their request head a line at a time
(slowloris), and how fast `/health` answers meanwhile.

    .venv/bin/python scripts/bench_slow_clients.py [--connections 10000] [--seconds 30] [--fd-limit 4096]
                                                   [--sending head|body] [--unguarded] [--database-url URL]

The server is `gis-service serve` as deployed (one worker; GIS_HEADER_TIMEOUT_S 10 s, GIS_MAX_CONNECTIONS 1000, the
defaults) over an empty migrated database (a throwaway embedded cluster, or ``--database-url``), with its open
files limited to ``--fd-limit`` (soft and hard, as a service manager sets them; the issue's 20,000 connections
exhausted a limit like this). ``--unguarded`` runs, in the same run and under the same limit, what ``serve`` ran
before: the app under plain uvicorn (its httptools protocol, no head deadline, no connection cap).

For ``--seconds`` an attacker process holds ``--connections`` connections open: each sends half a request head,
then one more header line every ``--trickle-s`` seconds (or, with ``--sending body``, a whole head announcing a
100 kB body and then one byte of it every ``--trickle-s`` seconds), and opens a new connection as soon as the
server closes one. Meanwhile a probe opens a new connection every 0.25 s and asks for `/health` (time-out 5 s).
It prints, per server: the probe's latency (p50, p95, max) quiet and under attack, its failures, the most sockets
the server held, and the connections the attacker saw closed. Exit status 1 when a probe against `serve` failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _bench  # noqa: F401  (puts the repository on sys.path, for tests.harness)

from gis_service.db import migrate
from gis_service.db.cluster import EmbeddedCluster
from tests.harness.devserver import free_port, process_tree

PROBE_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 5.0
QUIET_PROBES = 20
#: What a slow client sends first, and then a piece of every --trickle-s seconds: a head, or a body.
SLOW = {
    "head": (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n", b"X-Slow: 1\r\n"),
    "body": (b"POST /collections/elder_care/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n{", b" "),
}


# -- the attacker (a process of its own, so that its event loop does not slow the probe) --------------------------
def attack(port: int, connections: int, seconds: float, trickle_s: float, sending: str,
           results: multiprocessing.Queue) -> None:
    first, then = SLOW[sending]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = {"opened": 0, "closed_by_server": 0, "connect_failed": 0, "open": 0, "peak_open": 0,
             "seconds_to_peak": None, "last_error": None}
    started = time.monotonic()

    async def slow_client(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError as exc:
                stats["connect_failed"] += 1
                stats["last_error"] = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(1)
                continue
            stats["opened"] += 1
            stats["open"] += 1
            if stats["open"] > stats["peak_open"]:
                stats["peak_open"], stats["seconds_to_peak"] = stats["open"], time.monotonic() - started
            try:
                writer.write(first)
                while not stop.is_set():
                    try:
                        if not await asyncio.wait_for(reader.read(4096), timeout=trickle_s):
                            stats["closed_by_server"] += 1
                            break
                    except TimeoutError:
                        writer.write(then)
            except OSError:
                stats["closed_by_server"] += 1
            finally:
                stats["open"] -= 1
                writer.close()

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(slow_client(stop)) for _ in range(connections)]
        await asyncio.sleep(seconds)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    results.put(stats)


# -- the probe ------------------------------------------------------------------------------------------------------
def probe(port: int) -> float | None:
    """Seconds for GET /health on a new connection, or None when it failed or took over PROBE_TIMEOUT_S."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return time.perf_counter() - started if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def sockets_held(pid: int) -> int:
    """Sockets open in ``pid`` and its descendants."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total += sum(1 for fd in Path(f"/proc/{member}/fd").iterdir() if os.readlink(fd).startswith("socket:"))
    return total


# -- the servers ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def server(kind: str, database_url: str, fd_limit: int, log: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    port = free_port()
    env = {**os.environ, "GIS_DATABASE_URL": database_url, "GIS_LOAD_DEMO": "false", "GIS_WARM_UP": "false",
           "GIS_LOG_LEVEL": "warning"}
    if kind == "serve":
        command = [sys.executable, "-m", "gis_service.cli", "serve", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "uvicorn", "gis_service.app:create_app", "--factory", "--port", str(port),
                   "--log-level", "warning"]

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, cwd=tempfile.gettempdir(), stdout=output,
                                   stderr=subprocess.STDOUT, preexec_fn=limit_files)
    try:
        deadline = time.monotonic() + 120
        while probe(port) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{kind} did not start; its log: {log}")
            time.sleep(0.3)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def measure(kind: str, database_url: str, args: argparse.Namespace, folder: Path) -> dict:
    log = folder / f"{kind}.log"
    with server(kind, database_url, args.fd_limit, log) as (port, process):
        quiet = [probe(port) for _ in range(QUIET_PROBES)]
        results: multiprocessing.Queue = multiprocessing.Queue()
        attacker = multiprocessing.Process(target=attack, args=(port, args.connections, args.seconds,
                                                                args.trickle_s, args.sending, results))
        attacker.start()
        probes: list[float | None] = []
        peak_sockets = 0
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            probes.append(probe(port))
            peak_sockets = max(peak_sockets, sockets_held(process.pid))
            time.sleep(PROBE_INTERVAL_S)
        stats = results.get(timeout=120)
        attacker.join()
        after = probe(port)
    answered = [p for p in probes if p is not None]
    summaries = [line for line in log.read_text(errors="replace").splitlines() if "connections_" in line]
    return {"kind": kind, "quiet": [p for p in quiet if p is not None], "answered": answered,
            "failed": len(probes) - len(answered), "probes": len(probes), "peak_sockets": peak_sockets,
            "after": after, "attacker": stats, "log_lines": len(summaries)}


def report(result: dict, args: argparse.Namespace) -> None:
    name = "gis-service serve" if result["kind"] == "serve" else "plain uvicorn (before)"
    quiet, answered, stats = result["quiet"], result["answered"], result["attacker"]
    print(f"\n{name}, open files limited to {args.fd_limit:,}")
    print(f"  /health quiet:        p50 {percentile_ms(quiet, 0.5):7.1f} ms  p95 {percentile_ms(quiet, 0.95):7.1f} ms")
    print(f"  /health under attack: p50 {percentile_ms(answered, 0.5):7.1f} ms  p95 "
          f"{percentile_ms(answered, 0.95):7.1f} ms  max {percentile_ms(answered, 1.0):7.1f} ms; "
          f"{result['failed']} of {result['probes']} probes failed (no 200 within {PROBE_TIMEOUT_S:g} s)")
    after = "failed" if result["after"] is None else f"{result['after'] * 1000:.1f} ms"
    print(f"  /health after the attack: {after}")
    print(f"  attacker: {stats['opened']:,} connections opened ({stats['opened'] / args.seconds:,.0f}/s), "
          f"{stats['closed_by_server']:,} closed by the server, at most {stats['peak_open']:,} open at once "
          f"(after {stats['seconds_to_peak'] or 0:.1f} s), {stats['connect_failed']:,} connection attempts failed"
          + (f" (last: {stats['last_error']})" if stats["last_error"] else ""))
    print(f"  server: at most {result['peak_sockets']:,} sockets held; {result['log_lines']} summary lines logged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--trickle-s", type=float, default=5, help="seconds between a slow client's pieces")
    parser.add_argument("--sending", choices=sorted(SLOW), default="head",
                        help="head: a request head a line at a time; body: a whole head, then its body a byte at "
                        "a time")
    parser.add_argument("--fd-limit", type=int, default=4096, help="open files the server may hold")
    parser.add_argument("--unguarded", action="store_true", help="also measure plain uvicorn (what serve ran before)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and args.connections + 100 > hard:
        raise SystemExit(f"--connections {args.connections} needs more open files than the limit here ({hard}); "
                         f"use at most {hard - 100}")
    with tempfile.TemporaryDirectory(prefix="gis-bench-slow-") as folder:
        Path(folder).chmod(0o755)  # as root the cluster runs as postgres, which must enter the folder
        cluster = contextlib.nullcontext() if args.database_url else EmbeddedCluster(Path(folder) / "data").running()
        with cluster as running:
            url = args.database_url or running.url()
            migrate.upgrade(url)
            piece = "header line" if args.sending == "head" else "byte of body"
            print(f"{args.connections:,} slow connections for {args.seconds:g} s, a {piece} every "
                  f"{args.trickle_s:g} s each; /health probed every {PROBE_INTERVAL_S} s")
            results = [measure("serve", url, args, Path(folder))]
            if args.unguarded:
                results.append(measure("uvicorn", url, args, Path(folder)))
    for result in results:
        report(result, args)
    sys.exit(1 if results[0]["failed"] else 0)


if __name__ == "__main__":
    main()
