"""Where a request's token comes from: the ``Authorization`` header, or the browser's session cookie.

A browser cannot add a header to a page it navigates to, nor to the tiles and scripts a page loads, so a person signs
in once (/pages/sign-in) and the service answers with a session cookie that the browser sends with every request to
this service until it is closed. The cookie holds the token itself, not a session id: every worker checks it as it
checks the header (a revoked or expired token stops working at once), with no session table or signing secret to
share between workers. It is ``HttpOnly`` (no page script reads it), ``SameSite=Strict`` (no other site's page makes
the browser send it), ``Secure`` when the service is served over https, and has no ``Max-Age`` (it ends with the
browser session). It is never in a URL (the middleware refuses tokens there).

Reads take it as they take the header. Changes take it only from this service's own pages: the browser must say the
request is same-origin (``Sec-Fetch-Site``, or ``Origin`` for browsers that do not send it), so that no other site
can make a signed-in browser write (CSRF), even through a browser that ignores ``SameSite``.
"""

from __future__ import annotations

from urllib.parse import quote

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from gis_service.auth import Principal, authenticate
from gis_service.errors import AuthenticationRequired, SignInNeeded

#: The session cookie's name (a name, not a token: nothing token-shaped).
SESSION_COOKIE = "gis_session"
#: Paths a closed deployment answers without a token: /health, the sign-in page and the files it links, and
#: signing out (which only removes the cookie, also one whose token has meanwhile been revoked).
OPEN_PATHS = ("/health", "/pages/sign-in", "/pages/sign-out")
OPEN_PREFIXES = ("/pages/static/",)


def open_to_all(route_path: str) -> bool:
    """Whether ``route_path`` (without the root path) is answered without a token in a closed deployment."""
    return route_path in OPEN_PATHS or route_path.startswith(OPEN_PREFIXES)


def cookie_token(request: Request) -> str | None:
    """The token the session cookie holds, or None."""
    return request.cookies.get(SESSION_COOKIE) or None


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from a page of this service: ``Sec-Fetch-Site: same-origin``, or,
    from a browser that does not send it, an ``Origin`` equal to the service's own (``request.url`` is the public
    address). Neither (a client that is not a browser): False."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    return origin is not None and origin == f"{request.url.scheme}://{request.url.netloc}"


def authorization(request: Request, *, writing: bool = False) -> str | None:
    """The ``Authorization`` header, or else ``Bearer <token>`` from the session cookie (for a change only from a
    page of this service; a cookie from anywhere else is refused with 401 saying so), or None."""
    header = request.headers.get("authorization")
    token = cookie_token(request)
    if header or token is None:
        return header
    if writing and not same_origin(request):
        raise AuthenticationRequired(
            "the sign-in cookie is accepted for changes only from this service's own pages; other clients send "
            "'Authorization: Bearer <token>'")
    return f"Bearer {token}"


def start_session(response: Response, token: str, *, https: bool, path: str) -> None:
    """Set the session cookie on ``response`` (see the module's docstring for its attributes)."""
    response.set_cookie(SESSION_COOKIE, token, path=path, secure=https, httponly=True, samesite="strict")


def end_session(response: Response, *, https: bool, path: str) -> None:
    response.delete_cookie(SESSION_COOKIE, path=path, secure=https, httponly=True, samesite="strict")


def signed_in(request: Request, conn: sa.Connection) -> Principal | None:
    """The holder of the session cookie's token when it is valid, else None (a page shows its sign-in link)."""
    token = cookie_token(request)
    if token is None:
        return None
    try:
        return authenticate(conn, f"Bearer {token}")
    except AuthenticationRequired:
        return None


def sign_in_url(request: Request) -> str:
    """/pages/sign-in with ``next``: the path and query the browser asked for (on this service)."""
    asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{request.scope.get('root_path', '').rstrip('/')}/pages/sign-in?next={quote(asked, safe='/')}"


def sign_in_needed(request: Request) -> SignInNeeded:
    """What to raise when a browser opens a page that needs a token without a session: a 303 to the sign-in page,
    which sends it back afterwards (the handler is :func:`gis_service.api.signin.install_sign_in`)."""
    return SignInNeeded(sign_in_url(request))
