"""What every request goes through: a request id, a size limit on bodies, one structured log line, and errors
in one shape.

Every answer carries ``X-Request-ID`` (the client's own when it sends a sane one, else a new one), every error
body is ``{"code", "description", "request_id"}`` (the OGC API exception shape plus the id), and every request
is logged as one JSON line on the ``gis_service.access`` logger with the same id, so that a user who quotes the
id of an error lets the operator find it in the log.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid

import psycopg.errors
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.errors import GisServiceError

access_log = logging.getLogger("gis_service.access")
error_log = logging.getLogger("gis_service.errors")

#: A client's X-Request-ID is kept when it is this sane; otherwise the service makes one.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def error_response(request: Request, status_code: int, code: str, description: str,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse(status_code=status_code, headers=headers,
                        content={"code": code, "description": description, "request_id": request_id(request)})


class RequestContext:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed answers and cost a task per
    request): assigns the request id, refuses bodies over ``max_body_bytes`` with 413 before the endpoint reads
    them (both by Content-Length and by counting a chunked body), and writes the access log line."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int):  # GIS_MAX_BODY_BYTES
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(send_with_id, rid, int(declared))
                return
            received = 0

            async def counted_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise BodyTooLarge(received)
                return message

            try:
                await self.app(scope, counted_receive, send_with_id)
            except BodyTooLarge as exc:
                await self._too_large(send_with_id, rid, exc.size, at_least=True)
            except Exception as exc:
                # the last resort: a bug. Logged with its traceback under the id the user is shown.
                error_log.error("request %s failed: %s %s", rid, scope["method"], scope["path"], exc_info=exc)
                if status["started"]:
                    raise
                await _send_json(send_with_id, 500, {
                    "code": "ServerError", "request_id": rid,
                    "description": f"the service failed to answer; the error is logged under request id {rid}: "
                                   "please quote it when you report this"})
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps({
                    "request_id": rid, "method": scope["method"], "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1")[:500], "status": status["code"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": (scope.get("client") or ("", 0))[0],
                }, ensure_ascii=False))

    async def _too_large(self, send: Send, rid: str, size: int, *, at_least: bool = False) -> None:
        what = f"more than {self.max_body_bytes:,}" if at_least else f"{size:,}"
        await _send_json(send, 413, {
            "code": "PayloadTooLarge", "request_id": rid,
            "description": f"the request body is {what} bytes; at most {self.max_body_bytes:,} are accepted. "
                           "Send one feature per request, or import large files with `gis-service import`."})


async def _send_json(send: Send, status_code: int, content: dict) -> None:
    body = json.dumps(content, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


def _describe_validation(exc: RequestValidationError) -> str:
    """FastAPI's list of parameter problems in one plain sentence: ``limit (query): Input should be a valid
    integer, got 'abc'``."""
    problems = []
    for error in exc.errors():
        where, *name = [str(p) for p in error.get("loc", ())] or ["request"]
        field = ".".join(name) or where
        if error.get("type") == "missing":
            problems.append(f"{field} ({where}) is required")
            continue
        given = error.get("input")
        shown = f", got {str(given)[:80]!r}" if isinstance(given, str | int | float) else ""
        problems.append(f"{field} ({where}): {error.get('msg', 'invalid')}{shown}")
    return "; ".join(problems) or "the request is not valid"


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API document lists for the request's path. (Starlette's 405 names only the methods of the
    first route that matched: /collections/{id}/items/{featureId} is read by one router and changed by another.)"""
    path = get_route_path(request.scope)
    methods = {method.upper() for template, operations in request.app.openapi().get("paths", {}).items()
               if _template(template).fullmatch(path) for method in operations}
    return ", ".join(sorted(methods)) or fallback


@functools.lru_cache(maxsize=256)
def _template(path_template: str) -> re.Pattern:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path_template)))


def install_error_handlers(app: FastAPI, *, statement_timeout_s: float) -> None:
    """Map every failure to a status and a message in one shape (the OGC API exception JSON)."""

    @app.exception_handler(GisServiceError)
    async def _service_error(request: Request, exc: GisServiceError) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return error_response(request, exc.status_code, type(exc).__name__, str(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 400, "InvalidParameterValue", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            description = (f"there is nothing at {request.url.path}; the API is described at /api "
                           "(and /docs), the collections are listed at /collections")
            return error_response(request, 404, "NotFound", description)
        if exc.status_code == 405:
            given = exc.headers or {}
            allowed = _allowed_methods(request, fallback=given.get("Allow") or given.get("allow", ""))
            description = f"{request.method} is not allowed on {request.url.path}" + \
                (f"; use {allowed}" if allowed else "")
            return error_response(request, 405, "MethodNotAllowed", description, headers={"Allow": allowed})
        return error_response(request, exc.status_code, "HTTPError", str(exc.detail), headers=exc.headers)

    @app.exception_handler(sa.exc.DBAPIError)
    async def _database_error(request: Request, exc: sa.exc.DBAPIError) -> JSONResponse:
        if isinstance(exc.orig, psycopg.errors.QueryCanceled):
            return error_response(
                request, 503, "QueryTimeout",
                f"the database stopped this request after {statement_timeout_s:g} s; ask for less at once "
                "(a bbox, a smaller limit, a filter, a township instead of the county) and try again",
                headers={"Retry-After": "1"})
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected |
                      psycopg.errors.SerializationFailure):
            return error_response(request, 503, "Busy", "the feature is being changed by another request; "
                                  "try again", headers={"Retry-After": "1"})
        if database_away(exc):
            return _database_away_response(request)
        raise exc

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # the client, or the server's body deadline (GIS_BODY_TIMEOUT_S), closed the connection before the body
        # arrived: no one to answer and no bug to log (this answer is only what the access log records)
        return error_response(request, 400, "ClientDisconnected",
                              "the connection was closed before the request body arrived")

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    async def _driver_error(request: Request, exc: psycopg.Error) -> JSONResponse:
        # raised by psycopg itself where the service uses the driver's connection (COPY in writes)
        if database_away(exc):
            return _database_away_response(request)
        raise exc

    @app.exception_handler(sa.exc.TimeoutError)
    async def _pool_exhausted(request: Request, exc: sa.exc.TimeoutError) -> JSONResponse:
        return error_response(request, 503, "Busy", "the service is answering as many requests as it can; "
                              "try again in a moment", headers={"Retry-After": "1"})


#: SQLSTATEs of a server that is shutting down, crashed or still starting (an absent server has none).
_SERVER_GOING_OR_COMING = {"57P01", "57P02", "57P03"}
#: Seconds a client is told to wait while the database is away (the embedded cluster's watchdog looks every 2 s).
DATABASE_AWAY_RETRY_S = 5


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, the connection lost), as opposed
    to a statement that failed: the request can succeed unchanged once the database is back."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SERVER_GOING_OR_COMING


def _database_away_response(request: Request) -> JSONResponse:
    """503 while the database is away: every pooled connection is checked before use (pool_pre_ping), so the
    service answers again by itself as soon as the database is back, without a restart."""
    return error_response(
        request, 503, "DatabaseUnavailable",
        "the database cannot be reached just now (it is stopped or restarting); the service answers again by "
        f"itself once the database is back: try again in {DATABASE_AWAY_RETRY_S} seconds",
        headers={"Retry-After": str(DATABASE_AWAY_RETRY_S)})
