"""Slow clients cannot take the server: a deadline for each request head, and a cap on open connections.

About 20,000 connections that sent their headers a byte at a time made the service unreachable: uvicorn (0.54)
closes a connection that is idle *after* a response (``timeout_keep_alive``), but sets no deadline for a request
head that never completes, so every such connection held a socket and a file descriptor until the process had none
left. Its ``limit_concurrency`` does not help: it answers 503 to the *complete* requests that arrive while the
slow connections hold the count, so it turns the attack away from nobody but the real clients.

:class:`GuardedHttpProtocol` is uvicorn's own ``httptools`` protocol with two additions, passed to uvicorn as its
``http=`` protocol (the one place uvicorn lets a server decide per connection, so everything else, the workers,
signals and graceful shutdown, stays uvicorn's):

- **head deadline** (``GIS_HEADER_TIMEOUT_S``): a connection must deliver a request's whole head (request line and
  headers) within that time of connecting, or of the first byte of its next request on a kept-alive connection;
  otherwise it is answered 408 (when it sent something) and closed.
- **body deadline** (``GIS_BODY_TIMEOUT_S``): a request's body must have arrived within that time of its head
  (408 and closed otherwise); bodies are small (``GIS_MAX_BODY_BYTES``), and a body sent a byte at a time would
  otherwise hold a connection as busy as a slow head does. The answer is not timed here (nginx times it).
- **connection cap** (``GIS_MAX_CONNECTIONS``, per worker): a connection beyond the cap pushes out the connection
  that has waited longest for a request (idle between requests, or still sending its head), which is what a slow
  client is; a real client sends its head in milliseconds, so it is never the oldest. When none waits, it pushes
  out the one that has been sending its body longest. Only when every connection is busy with a request the app
  is answering is the new one refused, with 503 and ``Retry-After``. Accepting and closing costs microseconds,
  so the cap also keeps file descriptors free, which refusing in the kernel's backlog would not.

Connections closed for either reason are counted and logged at most once per :data:`LOG_INTERVAL_S` per worker
(logger ``gis_service.connections``), never one line per connection: an attack must not fill the disk either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("gis_service.connections")

#: At most one summary line per worker in this many seconds.
LOG_INTERVAL_S = 10.0
#: File descriptors a worker keeps for itself beyond client connections: its database pool (at most 42
#: connections, see gis_service.db.engine), log and data files, the supervisor's pipes, imports.
RESERVED_FDS = 200

_REASONS = {
    "slow_head": "closed {n:,} that did not send a complete request head within {timeout:g} s",
    "slow_body": "closed {n:,} that did not send a request body within {body_timeout:g} s",
    "pushed_out": "closed {n:,} that waited longest for a request or body, to stay within {cap:,} open connections",
    "refused": "refused {n:,} with 503 because all {cap:,} open connections were busy with requests",
}


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (workers inherit it); return the soft
    limit now in force. Debian's default soft limit, 1024, is what 20,000 slow connections exhausted."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit; connection_cap() fits the cap inside it
    return soft


def connection_cap(requested: int, fd_limit: int) -> int:
    """The cap a worker can keep with ``fd_limit`` open files: ``requested``, or less when the files run short."""
    return max(1, min(requested, fd_limit - RESERVED_FDS))


@dataclass
class ConnectionGuard:
    """One worker's view of its connections: which wait for a request (oldest first) and what was closed.

    It is made in the ``serve`` parent and pickled into each worker with uvicorn's config, so each worker has
    its own, empty, before its first connection.
    """

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    #: Connections waiting for a request (idle, or sending a head), in the order they started waiting.
    waiting: dict[Any, None] = field(default_factory=dict)
    #: Connections whose request's body is still arriving, in the order their heads arrived.
    reading_body: dict[Any, None] = field(default_factory=dict)
    closed: Counter = field(default_factory=Counter)
    _flush: asyncio.TimerHandle | None = None

    def count(self, reason: str, loop: asyncio.AbstractEventLoop, connections: set) -> None:
        """Count a connection closed for ``reason``; the summary is logged once per LOG_INTERVAL_S."""
        self.closed[reason] += 1
        if self._flush is None:
            self._flush = loop.call_later(LOG_INTERVAL_S, self._log, connections)

    def _log(self, connections: set) -> None:
        self._flush = None
        counts, self.closed = self.closed, Counter()
        parts = [_REASONS[reason].format(n=n, timeout=self.header_timeout_s, body_timeout=self.body_timeout_s,
                                         cap=self.max_connections) for reason, n in counts.items()]
        log.warning(json.dumps({
            "message": f"slow or surplus connections in the last {LOG_INTERVAL_S:g} s: " + "; ".join(parts),
            **{f"connections_{reason}": n for reason, n in counts.items()},
            "open_connections": len(connections),
        }))

    def first_to_push_out(self) -> Any | None:
        """The connection waiting longest for a request, else the one sending its body longest, else None."""
        return next(iter(self.waiting), None) or next(iter(self.reading_body), None)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head and the worker's connection cap
    (see the module docstring). ``guard`` is the worker's :class:`ConnectionGuard`."""

    def __init__(self, config, server_state, app_state, _loop=None, *, guard: ConnectionGuard) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False
        self._body_deadline: asyncio.TimerHandle | None = None

    # -- the connection cap -------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.guard.max_connections:
            oldest = self.guard.first_to_push_out()
            if oldest is None:
                self._refuse()
                return
            oldest._close("pushed_out")
        self._wait_for_request()
        self._arm_head_deadline()

    def _refuse(self) -> None:
        message = b"the service has as many connections as it takes; try again in a moment\n"
        self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(message), message))
        self._close("refused")

    def _close(self, reason: str) -> None:
        self._stop_waiting()
        self._body_arrived()
        self.guard.count(reason, self.loop, self.connections)
        self.transport.close()

    def _wait_for_request(self) -> None:
        self.guard.waiting.pop(self, None)
        self.guard.waiting[self] = None

    def _stop_waiting(self) -> None:
        self.guard.waiting.pop(self, None)
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _body_arrived(self) -> None:
        self.guard.reading_body.pop(self, None)
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    # -- the head deadline ---------------------------------------------------------------------------------------
    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_started = False
            self._head_deadline = self.loop.call_later(self.guard.header_timeout_s, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self._head_started:
            self._time_out(f"the request head (request line and headers) did not arrive within "
                           f"{self.guard.header_timeout_s:g} s")
        self._close("slow_head")

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        if not self.cycle.response_started:  # else the app has answered already (a 413, a 401): just close
            self._time_out(f"the request body did not arrive within {self.guard.body_timeout_s:g} s")
        self._close("slow_body")

    def _time_out(self, message: str) -> None:
        body = f"{message}\n".encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:  # between requests: this is a head arriving
            self._arm_head_deadline()  # (uvicorn's keep-alive timer stops at the first byte; this one does not)
            self._head_started = True
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._arm_head_deadline()  # a pipelined request's head
        self._head_started = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()
        # on_message_complete follows at once for a request without a body
        self.guard.reading_body[self] = None
        self._body_deadline = self.loop.call_later(self.guard.body_timeout_s, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._body_arrived()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle, kept alive for the next request
            self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self._body_arrived()
        super().connection_lost(exc)
