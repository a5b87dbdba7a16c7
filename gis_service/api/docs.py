"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), working with no internet.

FastAPI's own pages load both from jsDelivr and ReDoc's fonts from Google; here they load the copies the
``fastapi-offline`` package ships (Swagger UI 5 and ReDoc 2 bundles, kept up to date by that package: MIT, with
Swagger UI under Apache-2.0 and ReDoc under MIT), served from ``/docs/static``, and ReDoc is told not to ask for
Google Fonts (``with_google_fonts=False``). One request to another host remains in ReDoc's bundle, its
attribution's logo (cdn.redoc.ly, with no option to turn it off): the bundle is served with that address replaced
by an empty image, so offline the page neither asks the internet nor breaks its Content-Security-Policy.

FastAPI's page functions are used as they are, so the pages stay what FastAPI makes. The routes are added as FastAPI
adds its own (plain routes, outside the OpenAPI document and the app's dependencies), so closing reads with a token
changes for /docs exactly what it changed before.
"""

from __future__ import annotations

import functools
import importlib.resources
import mimetypes
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from gis_service.errors import NotFoundError

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
STATIC_URL = "/docs/static"


#: The one address on another host in ReDoc's bundle (the attribution's logo), and what is served in its place.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
NO_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"


@functools.cache
def _redoc_bundle() -> bytes:
    """ReDoc's bundle with its logo's address replaced (see the module docstring)."""
    return _assets()["redoc.standalone.js"].read_bytes().replace(REDOC_LOGO.encode(), NO_IMAGE.encode())


@functools.cache
def _assets() -> dict[str, Path]:
    """The files of Swagger UI and ReDoc that fastapi-offline ships, by name."""
    folder = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    return {p.name: p for p in folder.iterdir() if p.is_file()}


def install_docs(app: FastAPI) -> list[str]:
    """Add /docs, /docs/oauth2-redirect, /redoc and their files to ``app`` (made with ``docs_url=None,
    redoc_url=None``); returns the paths of the HTML pages (for their Content-Security-Policy)."""

    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(openapi_url=base + app.openapi_url, title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=base + OAUTH2_REDIRECT_URL,
                                   swagger_js_url=f"{base}{STATIC_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{base}{STATIC_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{base}{STATIC_URL}/favicon.png",
                                   swagger_ui_parameters=app.swagger_ui_parameters)

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(openapi_url=base + app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{base}{STATIC_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{base}{STATIC_URL}/favicon.png", with_google_fonts=False)

    async def asset(request: Request):
        name = request.path_params["name"]
        path = _assets().get(name)  # only the package's files: no request path reaches the file system
        if path is None:
            raise NotFoundError(f"no documentation asset {name[:100]!r}")
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = {"Cache-Control": "public, max-age=86400"}
        if name == "redoc.standalone.js":
            return Response(_redoc_bundle(), media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
    app.add_route(STATIC_URL + "/{name}", asset, include_in_schema=False)
    return [DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL]
