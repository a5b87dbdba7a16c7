"""``/pages/sign-in`` and ``/pages/sign-out``: a browser signs in once per browser session with a token.

The token is posted in a form's body (never in a URL), checked as the API checks a bearer token, and kept in the
session cookie of :mod:`gis_service.api.session`. In a closed deployment (GIS_READ_REQUIRES_TOKEN) a browser that
opens a page or a map without a session is sent here (303) and back afterwards; API clients still get 401 JSON.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.api import session
from gis_service.api.deps import ConnectionDep
from gis_service.api.pages import page, prefers_html
from gis_service.auth import Principal, authenticate
from gis_service.errors import AuthenticationRequired, SignInNeeded

#: Forms for browsers, not operations for clients: left out of the API document.
router = APIRouter(prefix="/pages", tags=["pages"], include_in_schema=False)


def wants_page(request: Request) -> bool:
    """Whether a browser is opening a page (GET or HEAD preferring HTML): it is sent to sign in, not answered 401."""
    return request.method in ("GET", "HEAD") and prefers_html(request.headers.get("accept"))


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _local(next_path: str | None, root: str) -> str:
    """``next_path`` when it is a path on this service, else the portal: never a redirect to another site."""
    if next_path and next_path.startswith("/") and not next_path.startswith("//") and "\\" not in next_path \
            and not any(ord(c) < 0x20 for c in next_path):
        return next_path
    return f"{root}/"


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (the first value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


FormDep = Annotated[dict[str, str], Depends(form_fields)]
NextQuery = Annotated[str | None, Query(alias="next", max_length=2000,
                                        description="Where to go after signing in: a path on this service.")]


def _form(request: Request, *, status: int = 200, who: Principal | None = None, next_path: str,
          error: str | None = None) -> HTMLResponse:
    answer = page("sign-in.html", request, who=who, next=next_path, error=error)
    answer.status_code = status
    return answer


@router.get("/sign-in", response_class=HTMLResponse, summary="登录: sign in with a token for this browser session")
def sign_in_page(request: Request, conn: ConnectionDep, next_path: NextQuery = None) -> HTMLResponse:
    who = session.signed_in(request, conn)
    ended = session.cookie_token(request) is not None and who is None
    answer = _form(request, who=who, next_path=_local(next_path, _root(request)),
                   error="登录已失效（令牌已过期、被撤销或不正确），请重新输入令牌。" if ended else None)
    if ended:
        session.end_session(answer, https=_https(request), path=f"{_root(request)}/")
    return answer


@router.post("/sign-in", response_class=HTMLResponse, summary="登录: check the token and start the session",
             status_code=303)
def sign_in(request: Request, conn: ConnectionDep, form: FormDep) -> Response:
    root = _root(request)
    target = _local(form.get("next"), root)
    if not session.same_origin(request):
        return _form(request, status=403, next_path=target, error="只能在本服务的登录页上登录。")
    token = form.get("token", "").strip()
    try:
        authenticate(conn, f"Bearer {token}" if token else None)
    except AuthenticationRequired as refused:
        return _form(request, status=401, next_path=target,
                     error=f"令牌不正确，未登录（{refused}）。" if token else "请输入令牌。")
    answer = RedirectResponse(target, status_code=303)
    session.start_session(answer, token, https=_https(request), path=f"{root}/")
    return answer


@router.post("/sign-out", summary="退出: end this browser's session", status_code=303)
def sign_out(request: Request) -> Response:
    answer = RedirectResponse(f"{_root(request)}/pages/sign-in", status_code=303)
    if session.same_origin(request):  # another site cannot sign a browser out either
        session.end_session(answer, https=_https(request), path=f"{_root(request)}/")
    return answer


def install_sign_in(app: FastAPI) -> None:
    """The sign-in pages, and the redirect of :class:`~gis_service.errors.SignInNeeded`."""

    @app.exception_handler(SignInNeeded)
    async def _to_sign_in(request: Request, exc: SignInNeeded) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=303, headers={"Cache-Control": "no-store"})

    app.include_router(router)
