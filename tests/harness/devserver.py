"""The service (or another ASGI app) in a uvicorn subprocess on a free loopback port: for tests that need a real
HTTP server (GDAL, a browser) and for the benchmark scripts. A thread would not do: GDAL and the browser drivers
hold the GIL while they wait for answers. And many clients at once against it, for the load test and its smoke
test."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RunningServer:
    """A started server: its base URL and its process (to watch its memory or CPU, or for tests that kill it)."""

    url: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def uvicorn_server(app: str = "gis_service.app:create_app", *, env: dict[str, str] | None = None,
                   ready_path: str = "/conformance", python: Path | str = sys.executable,
                   factory: bool = True, timeout_s: float = 60) -> Iterator[str]:
    """Start ``app`` with one uvicorn worker, wait until ``ready_path`` answers 200, yield the base URL, stop it."""
    with uvicorn_process(app, env=env, ready_path=ready_path, python=python, factory=factory,
                         timeout_s=timeout_s) as server:
        yield server.url


@contextlib.contextmanager
def uvicorn_process(app: str = "gis_service.app:create_app", *, env: dict[str, str] | None = None,
                    ready_path: str = "/conformance", python: Path | str = sys.executable,
                    factory: bool = True, timeout_s: float = 60, workers: int = 1) -> Iterator[RunningServer]:
    """As :func:`uvicorn_server`, yielding the URL and the process id; ``workers`` processes under uvicorn's
    supervisor, as ``serve`` runs them."""
    port = free_port()
    command = [str(python), "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-proxy-headers"]  # as `serve`: GIS_TRUSTED_PROXIES decides
    if factory:
        command.append("--factory")
    if workers > 1:
        command += ["--workers", str(workers)]
    with _data_folder({**os.environ, **(env or {})}) as environment:
        # cwd: a neutral folder, so that no stray .env file is read
        process = subprocess.Popen(command, env=environment, cwd=tempfile.gettempdir())
        with _stopped_afterwards(process):
            yield _ready(RunningServer(f"http://127.0.0.1:{port}", process), ready_path, timeout_s)


@contextlib.contextmanager
def _data_folder(environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """``environment`` with a GIS_DATA_DIR of its own (a temporary folder, removed afterwards) unless it names one:
    the server keeps its road graph and tiles there, never in the user's data folder."""
    if environment.get("GIS_DATA_DIR"):
        yield environment
        return
    with tempfile.TemporaryDirectory(prefix="gis-server-data-") as folder:
        yield {**environment, "GIS_DATA_DIR": folder}


def _ready(server: RunningServer, ready_path: str, timeout_s: float) -> RunningServer:
    """``server`` once ``ready_path`` answers 200; RuntimeError when it exits or does not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{server.url}{ready_path}", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start (exit code {server.process.poll()})")
        time.sleep(0.2)


@contextlib.contextmanager
def _stopped_afterwards(process: subprocess.Popen) -> Iterator[None]:
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def serve_workers(serve_pid: int) -> list[int]:
    """The worker processes of a `gis-service serve`: the children of its fork server (not the fork server
    itself, nor multiprocessing's resource tracker)."""
    workers = []
    for pid in process_tree(serve_pid)[1:]:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent != serve_pid:
            workers.append(pid)
    return workers


def service(database_url: str, *, ready_path: str = "/conformance",
            **extra_env: str) -> contextlib.AbstractContextManager[str]:
    """gis-service over ``database_url`` (no demo loading), with extra GIS_* settings."""
    return uvicorn_server(env=service_env(database_url, **extra_env), ready_path=ready_path)


def service_process(database_url: str, *, ready_path: str = "/conformance",
                    **extra_env: str) -> contextlib.AbstractContextManager[RunningServer]:
    """gis-service over ``database_url`` (no demo loading), with extra GIS_* settings, and its process."""
    return uvicorn_process(env=service_env(database_url, **extra_env), ready_path=ready_path)


def service_env(database_url: str, **extra_env: str) -> dict[str, str]:
    """The environment of gis-service over ``database_url``: no demo loading, and the extra GIS_* settings."""
    return {"GIS_DATABASE_URL": database_url, "GIS_LOAD_DEMO": "false", **extra_env}


# -- many clients at once ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadKind:
    """One kind of request of a load test: its weight in the mix and the paths (with query) it draws from."""

    name: str
    weight: int
    paths: list[str]


@dataclass
class LoadOutcome:
    """What the clients saw: (kind, seconds since the start, latency in seconds) per request, and the errors (any
    answer but 2xx, a connection error or a time-out) with the second each was sent at."""

    requests: list[tuple[str, float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_times: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def run_clients(base_url: str, mix: list[LoadKind], *, clients: int, seconds: float, seed: int = 0,
                timeout_s: float = 30.0, on_tick: Callable[[float], None] | None = None) -> LoadOutcome:
    """``clients`` threads, each with its own keep-alive connection, sending GETs one after the other, without
    pause, until ``seconds`` have passed: exactly ``clients`` requests are in flight at any time. Each request is a
    kind drawn by weight, then one of its paths. ``on_tick(elapsed_s)`` is called once a second and at the end.

    The client is the standard library's ``http.client``: on this project's 2-core machine it spends 0.3 to 0.6 ms
    of CPU per request where httpx spent 2 ms (threads) to 9 ms (asyncio, one pool of 50 connections): with httpx
    the client, not the server, was the bottleneck.
    """
    outcome = LoadOutcome()
    weights = [kind.weight for kind in mix]
    where = urlsplit(base_url)
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout_s)
        while time.perf_counter() < deadline:
            kind = rng.choices(mix, weights)[0]
            path = rng.choice(kind.paths)
            sent = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                failure = None if 200 <= response.status < 300 else f"{response.status} {body[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                connection.close()  # the next request opens a new connection
            done = time.perf_counter()
            with lock:
                outcome.requests.append((kind.name, sent - started, done - sent))
                if failure is not None:
                    outcome.errors.append(f"{kind.name} {path}: {failure}")
                    outcome.error_times.append(sent - started)
        connection.close()

    stop = threading.Event()

    def ticker() -> None:
        while on_tick is not None:
            on_tick(time.perf_counter() - started)
            if stop.wait(1.0):
                return

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    ticking = threading.Thread(target=ticker, daemon=True)
    for thread in [*threads, ticking]:
        thread.start()
    for thread in threads:
        thread.join()
    outcome.wall_s = time.perf_counter() - started
    stop.set()
    ticking.join()
    if on_tick is not None:
        on_tick(outcome.wall_s)
    return outcome
