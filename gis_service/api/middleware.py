"""What every request goes through: a request id, the client's address and the service's public address, a
refusal of tokens in URLs, a size limit on bodies, security headers, one structured log line, and errors in one
shape.

Every answer carries ``X-Request-ID``, the service's own id for the request, and every error body is
``{"code", "description", "request_id"}`` (the OGC API exception shape plus the id); every request is logged as
one JSON line on the ``gis_service.access`` logger with the same id, so that a user who quotes the id of an error
lets the operator find it in the log. The id in the log and the audit trail is always made here: one a client
chose could pass a change off as part of another request, or send log searches to the wrong lines. A client's own
``X-Request-ID`` (when sane) is written beside it in the log line, as ``client_request_id``, so that the client can
still find its request there. See :mod:`gis_service.api.security` for what a request may say about itself.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from urllib.parse import unquote

import psycopg.errors
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.api import security
from gis_service.errors import (
    HTTP_ERROR_CODE,
    Busy,
    ClientDisconnected,
    DatabaseUnavailable,
    GisServiceError,
    InvalidInputError,
    MethodNotAllowed,
    NotFoundError,
    PayloadTooLarge,
    QueryTimeout,
    TokenInUrl,
)
from gis_service.settings import Settings

access_log = logging.getLogger("gis_service.access")
error_log = logging.getLogger("gis_service.errors")

#: A client's X-Request-ID is logged beside the service's id when it is this sane.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
#: Addresses a server listens on that are no address to link to.
_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def error_response(request: Request, error: GisServiceError) -> JSONResponse:
    """The answer of ``error``: its status and headers, and ``{"code", "description", "request_id"}``."""
    return JSONResponse(status_code=error.status_code, headers=error.headers, content=_error_body(error, request_id(
        request)))


def _error_body(error: GisServiceError, rid: str | None) -> dict:
    return {"code": error.code, "description": str(error), "request_id": rid}


class RequestContext:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed answers and cost a task per
    request): assigns the request id, finds the client's address, presents the request to the app as the public
    sees it (:meth:`_as_public`), refuses a token in the query string with 400 and bodies over
    ``GIS_MAX_BODY_BYTES`` with 413 before the endpoint reads them (both by Content-Length and by counting a
    chunked body), adds the security headers to every answer, and writes the access log line.

    ``html_policies``: the Content-Security-Policy of HTML pages at these paths (FastAPI's /docs and /redoc);
    other HTML gets :data:`security.PAGE_POLICY` unless its router sets one (/maps does)."""

    def __init__(self, app: ASGIApp, *, settings: Settings, html_policies: dict[str, str] | None = None):
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.trusted = security.networks(settings.trusted_proxies)
        self.public = security.PublicAddress.parse(settings.public_url) if settings.public_url else None
        self.https = self.public is not None and self.public.scheme == "https"
        host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
        self.configured_netloc = f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"
        self.html_policies = html_policies or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = uuid.uuid4().hex
        peer = (scope.get("client") or ("", 0))[0]
        client = security.client_address(peer, headers, self.trusted)
        logged = {"path": security.without_tokens(scope["path"]),
                  "query": security.without_tokens(scope.get("query_string", b"").decode("latin-1")[:500])}
        html_policy = self.html_policies.get(get_route_path(scope), security.PAGE_POLICY)
        scope = self._as_public(scope, client)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                given = list(message.get("headers", []))
                message["headers"] = [*given, (b"x-request-id", rid.encode()), *security.security_headers(
                    given, https=self.https, policy_for_html=html_policy)]
            await send(message)

        try:
            holder = security.token_in_query(scope.get("query_string", b""))
            if holder is not None:
                logged["query"] = "[withheld: it held a token]"
                await _send_error(send_with_id, rid, TokenInUrl(
                    f"the query parameter {security.without_tokens(holder)!r} holds a token; tokens in URLs end up "
                    "in logs, browser history and Referer headers, so they are refused: send it as a header, "
                    "'Authorization: Bearer <token>' (and revoke a token that was sent in a URL: "
                    "`gis-service token revoke ID`)"))
                return
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await _send_error(send_with_id, rid, self._too_large(int(declared)))
                return
            received = 0

            async def counted_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        # the app's handler for service errors answers it, or the except below when it escapes
                        raise self._too_large(received, at_least=True)
                return message

            try:
                await self.app(scope, counted_receive, send_with_id)
            except PayloadTooLarge as exc:
                await _send_error(send_with_id, rid, exc)
            except Exception as exc:
                # the last resort: a bug. Logged with its traceback under the id the user is shown.
                error_log.error("request %s failed: %s %s", rid, scope["method"], logged["path"], exc_info=exc)
                if status["started"]:
                    raise
                await _send_error(send_with_id, rid, GisServiceError(
                    f"the service failed to answer; the error is logged under request id {rid}: please quote it "
                    "when you report this"))
        finally:
            if access_log.isEnabledFor(logging.INFO):
                entry = {"request_id": rid, "method": scope["method"], **logged, "status": status["code"],
                         "duration_ms": round((time.perf_counter() - started) * 1000, 1), "client": client}
                if client != peer:
                    entry["proxy"] = peer
                given_id = headers.get("x-request-id", "")
                if _CLIENT_ID.fullmatch(given_id):
                    entry["client_request_id"] = given_id
                access_log.info(json.dumps(entry, ensure_ascii=False))

    def _as_public(self, scope: Scope, client: str) -> Scope:
        """A copy of ``scope`` describing the request as the public sees it, so that every ``request.url`` and
        ``request.base_url`` in the app (the links of every answer) names the service's own address:
        GIS_PUBLIC_URL's scheme, host and path prefix (as the ASGI ``root_path``; the proxy may or may not strip
        it from the path), or else the address and port the request reached. The Host header a client sends is
        never used. ``client``: the client's address, as :func:`security.client_address` found it."""
        scope = dict(scope)
        if self.public is not None:
            scope["scheme"], netloc, prefix = self.public.scheme, self.public.netloc, self.public.prefix
            if prefix:
                path = unquote(prefix)
                if not (scope["path"] == path or scope["path"].startswith(path + "/")):
                    scope["path"] = path + scope["path"]
                    if scope.get("raw_path") is not None:
                        scope["raw_path"] = prefix.encode("latin-1") + scope["raw_path"]
                scope["root_path"] = path
        else:
            netloc = security.socket_netloc(scope.get("server"), scope.get("scheme", "http"), self.configured_netloc)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"] + [
            (b"host", netloc.encode("latin-1"))]
        if scope.get("client") and scope["client"][0] != client:
            scope["client"] = (client, 0)
        return scope

    def _too_large(self, size: int, *, at_least: bool = False) -> PayloadTooLarge:
        what = f"more than {self.max_body_bytes:,}" if at_least else f"{size:,}"
        return PayloadTooLarge(f"the request body is {what} bytes; at most {self.max_body_bytes:,} are accepted. "
                               "Send one feature per request, or import large files with `gis-service import`.")


async def _send_error(send: Send, rid: str, error: GisServiceError) -> None:
    """Answer ``error`` straight from the middleware (outside the app's exception handlers)."""
    body = json.dumps(_error_body(error, rid), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, InvalidInputError(_describe_validation(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        given = exc.headers or {}
        only_options = exc.status_code == 405 and (given.get("Allow") or given.get("allow", "")) == "OPTIONS"
        if exc.status_code == 404 or (only_options and not _allowed_methods(request, fallback="")):
            # a path only the catch-all OPTIONS route (api/interop.py) matches is a path with nothing at it
            return error_response(request, NotFoundError(
                f"there is nothing at {request.url.path}; the API is described at /api (and /docs), the "
                "collections are listed at /collections"))
        if exc.status_code == 405:
            allowed = _allowed_methods(request, fallback=given.get("Allow") or given.get("allow", ""))
            refused = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"
                                       + (f"; use {allowed}" if allowed else ""))
            refused.headers = {"Allow": allowed}
            return error_response(request, refused)
        return JSONResponse(status_code=exc.status_code, headers=exc.headers, content={
            "code": HTTP_ERROR_CODE, "description": str(exc.detail), "request_id": request_id(request)})

    @app.exception_handler(sa.exc.DBAPIError)
    async def _database_error(request: Request, exc: sa.exc.DBAPIError) -> JSONResponse:
        if isinstance(exc.orig, psycopg.errors.QueryCanceled):
            return error_response(request, QueryTimeout(
                f"the database stopped this request after {statement_timeout_s:g} s; ask for less at once "
                "(a bbox, a smaller limit, a filter, a township instead of the county) and try again"))
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected |
                      psycopg.errors.SerializationFailure):
            return error_response(request, Busy("the feature is being changed by another request; try again"))
        if database_away(exc):
            return _database_away_response(request)
        raise exc

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # the client, or the server's body deadline (GIS_BODY_TIMEOUT_S), closed the connection before the body
        # arrived: no one to answer and no bug to log (this answer is only what the access log records)
        return error_response(request, ClientDisconnected("the connection was closed before the request body "
                                                          "arrived"))

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    async def _driver_error(request: Request, exc: psycopg.Error) -> JSONResponse:
        # raised by psycopg itself where the service uses the driver's connection (COPY in writes)
        if database_away(exc):
            return _database_away_response(request)
        raise exc

    @app.exception_handler(sa.exc.TimeoutError)
    async def _pool_exhausted(request: Request, exc: sa.exc.TimeoutError) -> JSONResponse:
        return error_response(request, Busy("the service is answering as many requests as it can; try again in a "
                                            "moment"))


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
    return error_response(request, DatabaseUnavailable(
        "the database cannot be reached just now (it is stopped or restarting); the service answers again by "
        f"itself once the database is back: try again in {DATABASE_AWAY_RETRY_S} seconds",
        retry_after_s=DATABASE_AWAY_RETRY_S))
