"""The service (or another ASGI app) in a uvicorn subprocess on a free loopback port: for tests that need a real
HTTP server (GDAL, a browser) and for the benchmark scripts. A thread would not do: GDAL and the browser drivers
hold the GIL while they wait for answers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RunningServer:
    """A started server: its base URL and its process (for tests that must kill it)."""

    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def uvicorn_process(app: str = "gis_service.app:create_app", *, env: dict[str, str] | None = None,
                    ready_path: str = "/conformance", python: Path | str = sys.executable,
                    factory: bool = True, timeout_s: float = 60) -> Iterator[RunningServer]:
    """Start ``app`` with one uvicorn worker, wait until ``ready_path`` answers 200, yield it, stop it."""
    port = free_port()
    command = [str(python), "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
    if factory:
        command.append("--factory")
    # cwd: a neutral folder, so that no stray .env file is read
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, cwd=tempfile.gettempdir())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{url}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit code {process.poll()})")
            time.sleep(0.2)
        yield RunningServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def uvicorn_server(app: str = "gis_service.app:create_app", **options) -> Iterator[str]:
    """:func:`uvicorn_process`, yielding only the base URL."""
    with uvicorn_process(app, **options) as server:
        yield server.url


def service_process(database_url: str, *, ready_path: str = "/conformance",
                    **extra_env: str) -> contextlib.AbstractContextManager[RunningServer]:
    """gis-service over ``database_url`` (no demo loading), with extra GIS_* settings, and its process."""
    env = {"GIS_DATABASE_URL": database_url, "GIS_LOAD_DEMO": "false", **extra_env}
    return uvicorn_process(env=env, ready_path=ready_path)


@contextlib.contextmanager
def service(database_url: str, *, ready_path: str = "/conformance", **extra_env: str) -> Iterator[str]:
    """gis-service over ``database_url`` (no demo loading), with extra GIS_* settings: its base URL."""
    with service_process(database_url, ready_path=ready_path, **extra_env) as server:
        yield server.url
