"""What HTTP clients expect of any server: gzip, HEAD wherever GET is, OPTIONS saying what may be done, CORS.

- :class:`Compression` gzips JSON, GeoJSON, HTML and Mapbox Vector Tile answers for clients that accept gzip (one
  middleware for the whole service: pages and maps rely on it). Bodies under ``MIN_SIZE`` go as they are (gzip's
  header would outweigh the saving); a streamed answer is compressed chunk by chunk, each flushed, so that it still
  streams.
- :class:`HeadAsGet` answers HEAD as the GET of the same URL would, without the body (GDAL's /vsicurl/ asks HEAD
  before reading a tile or an export).
- ``OPTIONS`` is a route (:func:`options`): ``Allow`` lists the methods of the path, writes only for a token whose
  role may change that collection.
- CORS is off unless ``GIS_CORS_ORIGINS`` lists the origins (intranet hosts of web maps) allowed to read.
"""

from __future__ import annotations

import gzip
import zlib

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.api.deps import ConnectionDep
from gis_service.api.middleware import _allowed_methods
from gis_service.auth import authenticate
from gis_service.errors import NotFoundError
from gis_service.layers import LAYERS
from gis_service.ogc.tilecache import accepts_gzip
from gis_service.settings import Settings

#: Answers worth compressing: text and vector tiles (PNG, XLSX and ZIP are compressed already).
COMPRESSIBLE = ("application/json", "application/geo+json", "application/schema+json", "text/html",
                "application/vnd.oai.openapi+json", "application/vnd.mapbox-vector-tile", "text/csv",
                "application/javascript", "text/javascript", "text/css", "image/svg+xml", "text/plain")
MIN_SIZE = 1024
LEVEL = 5  # zlib's 5 is within 5 % of 9's size at about half its time on GeoJSON


class Compression:
    """gzip for the answers in :data:`COMPRESSIBLE` the client accepts it for (pure ASGI: streaming-safe)."""

    def __init__(self, app: ASGIApp, *, minimum_size: int = MIN_SIZE) -> None:
        self.app = app
        self.minimum_size = minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(Headers(scope=scope).get("accept-encoding")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        compressor = None
        passing = False

        async def compressing_send(message: Message) -> None:
            nonlocal start, compressor, passing
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or passing:
                await send(message)
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            if compressor is None:
                headers = MutableHeaders(raw=start["headers"])
                media = headers.get("content-type", "").split(";")[0].strip().lower()
                # "content-encoding" set: compressed already (the tile cache sends its gzip copy as it is)
                if (media not in COMPRESSIBLE or "content-encoding" in headers or start["status"] < 200
                        or (not more and len(body) < self.minimum_size)):
                    passing = True
                    await send(start)
                    await send(message)
                    return
                headers["Content-Encoding"] = "gzip"
                headers.add_vary_header("Accept-Encoding")
                if not more:
                    data = gzip.compress(body, compresslevel=LEVEL, mtime=0)
                    headers["Content-Length"] = str(len(data))
                    await send(start)
                    await send({"type": "http.response.body", "body": data})
                    return
                del headers["Content-Length"]
                compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
                await send(start)
            data = compressor.compress(body) + (compressor.flush(zlib.Z_SYNC_FLUSH) if more else compressor.flush())
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await self.app(scope, receive, compressing_send)


class HeadAsGet:
    """HEAD answered as GET without the body: the same status and headers (Content-Length of the GET's body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def headless_send(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
            elif not ended:
                ended = True
                await send({"type": "http.response.body", "body": b""})

        await self.app({**scope, "method": "GET"}, receive, headless_send)


WRITES = ("POST", "PUT", "PATCH", "DELETE")
router = APIRouter(include_in_schema=False)


@router.options("/{path:path}")
def options(request: Request, conn: ConnectionDep) -> Response:
    """``Allow``: the methods of the path (HEAD with GET). Writes only with a bearer token whose role may change
    the collection the path is in (so a client learns from it whether a layer is editable by it)."""
    documented = {m.strip() for m in _allowed_methods(request, fallback="").split(",") if m.strip()}
    if not documented:
        raise NotFoundError(f"there is nothing at {request.url.path}; the API is described at /api")
    allowed = {m for m in documented if m not in WRITES}
    writes = documented & set(WRITES)
    if writes and request.headers.get("authorization"):
        who = authenticate(conn, request.headers["authorization"])
        parts = request.url.path.strip("/").split("/")
        layer = LAYERS.get(parts[1]) if len(parts) > 1 and parts[0] == "collections" else None
        if layer is None or who.may_change(layer):
            allowed |= writes
    if "GET" in allowed:
        allowed.add("HEAD")
    allowed.add("OPTIONS")
    return Response(status_code=204, headers={"Allow": ", ".join(sorted(allowed))})


def install_interop(app: FastAPI, settings: Settings) -> None:
    """Compression and HEAD inside the request context (their answers carry its id and headers); CORS outside
    everything, so that a preflight is answered and every answer, errors too, carries the CORS headers."""
    app.add_middleware(Compression)
    app.add_middleware(HeadAsGet)


def install_cors(app: FastAPI, settings: Settings) -> None:
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "HEAD", "OPTIONS"],
                           allow_headers=["Authorization", "Accept", "Accept-Encoding", "If-None-Match"],
                           expose_headers=["ETag", "Content-Crs", "X-Request-ID", "Link"], max_age=600)
