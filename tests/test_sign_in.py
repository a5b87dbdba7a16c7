"""Sign-in for browsers (issue 13): one sign-in per browser session, a session cookie that never leaves the service
or a URL, API clients answered 401 JSON as before, and no change made with the cookie from another site."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.api.session import SESSION_COOKIE
from gis_service.auth import create_token

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture()
def committed_token(engine: sa.Engine) -> Iterator[str]:
    """An inspector's token committed (a closed deployment checks readers on a connection of its own)."""
    with engine.begin() as committed:
        token_id, token = create_token(committed, role="inspector", name="登录测试员")
    yield token
    with engine.begin() as committed:
        committed.execute(sa.text("DELETE FROM api_tokens WHERE id = :id"), {"id": token_id})


@pytest.fixture()
def closed(client_with: Callable[..., TestClient]) -> TestClient:
    return client_with(read_requires_token=True)


def sign_in(client: TestClient, token: str, next_path: str = "/", **headers: str):
    return client.post("/pages/sign-in", data={"token": token, "next": next_path},
                       headers={**SAME_ORIGIN, **headers}, follow_redirects=False)


def marker_state(conn: sa.Connection, marker: int) -> tuple:
    """What an inspection changes: the marker's condition and date, its inspections, the audit trail."""
    return (*conn.execute(sa.text("SELECT condition, last_inspected FROM boundary_markers WHERE id = :id"),
                          {"id": marker}).one(),
            conn.execute(sa.text("SELECT count(*) FROM marker_inspections WHERE marker_id = :id"),
                         {"id": marker}).scalar_one(),
            conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one())


def first_marker(conn: sa.Connection) -> int:
    return conn.execute(sa.text("SELECT min(id) FROM boundary_markers")).scalar_one()


@pytest.mark.parametrize("path", ["/collections/roads/items?limit=1", "/maps/overview", "/pages/boundaries", "/"])
@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_api_clients_still_get_401_json(closed: TestClient, path: str, accept: str | None) -> None:
    answer = closed.get(path, headers={"Accept": accept} if accept else {}, follow_redirects=False)
    assert answer.status_code == 401
    assert answer.json()["code"] == "AuthenticationRequired" and "set-cookie" not in answer.headers


@pytest.mark.parametrize("path", ["/maps/overview", "/pages/boundaries?condition=missing", "/collections?f=html", "/"])
def test_a_browser_is_sent_to_sign_in_and_back(closed: TestClient, committed_token: str, path: str) -> None:
    sent = closed.get(path, headers=BROWSER, follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/pages/sign-in?next={quote(path, safe='/')}"
    form = closed.get(sent.headers["location"], headers=BROWSER)  # the sign-in page needs no token
    assert form.status_code == 200 and f'name="next" value="{path}"' in form.text.replace("&amp;", "&")
    assert closed.get("/pages/static/pages.css").status_code == 200  # nor its style sheet
    signed = sign_in(closed, committed_token, path)
    assert signed.status_code == 303 and signed.headers["location"] == path
    back = closed.get(path, headers=BROWSER, follow_redirects=False)
    assert back.status_code == 200 and back.headers["content-type"].startswith("text/html")


def test_the_session_cookie_is_httponly_strict_and_ends_with_the_browser(client: TestClient,
                                                                         tokens: dict[str, str]) -> None:
    cookie = sign_in(client, tokens["inspector"]).headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith(f"{SESSION_COOKIE}={tokens['inspector']};")
    assert "httponly" in attributes and "samesite=strict" in cookie.lower()
    assert not attributes & {"max-age", "expires", "secure", "domain"}  # served over http here


def test_the_session_cookie_is_secure_over_https(client_with: Callable[..., TestClient],
                                                 tokens: dict[str, str]) -> None:
    served = client_with(public_url="https://gis.example.gov.cn")
    cookie = sign_in(served, tokens["inspector"], Origin="https://gis.example.gov.cn").headers["set-cookie"]
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


@pytest.mark.parametrize(("token", "message"), [
    ("", "请输入令牌"), ("gis_" + "x" * 43, "令牌不正确，未登录（the bearer token is not known）"),
])
def test_a_wrong_token_signs_nobody_in(client: TestClient, token: str, message: str) -> None:
    answer = sign_in(client, token)
    assert answer.status_code == 401 and message in answer.text and "set-cookie" not in answer.headers


def test_a_revoked_token_signs_nobody_in_and_ends_its_sessions(client: TestClient, conn: sa.Connection) -> None:
    token_id, token = create_token(conn, role="inspector", name="将被撤销")
    assert sign_in(client, token).status_code == 303
    marker = first_marker(conn)
    assert client.get(f"/pages/boundaries/markers/{marker}", headers=BROWSER, follow_redirects=False).status_code \
        == 200
    conn.execute(sa.text("UPDATE api_tokens SET revoked_at = now() WHERE id = :id"), {"id": token_id})
    history = client.get(f"/pages/boundaries/markers/{marker}", headers=BROWSER, follow_redirects=False)
    assert history.status_code == 303 and history.headers["location"].startswith("/pages/sign-in?next=")
    assert "登录已失效" in client.get("/pages/sign-in").text
    assert "has been revoked" in sign_in(client, token).text


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Sec-Fetch-Site": "none"}, {"Origin": "http://elsewhere.example"}])
def test_signing_in_from_another_site_is_refused(client: TestClient, tokens: dict[str, str],
                                                 headers: dict[str, str]) -> None:
    answer = client.post("/pages/sign-in", data={"token": tokens["inspector"], "next": "/"}, headers=headers,
                         follow_redirects=False)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


@pytest.mark.parametrize(("asked", "sent_to"), [
    ("/pages/boundaries?years=5", "/pages/boundaries?years=5"), ("//elsewhere.example/x", "/"),
    ("https://elsewhere.example/", "/"), ("/\\elsewhere.example", "/"), ("", "/"),
])
def test_after_sign_in_the_browser_stays_on_this_service(client: TestClient, tokens: dict[str, str], asked: str,
                                                         sent_to: str) -> None:
    assert sign_in(client, tokens["inspector"], asked).headers["location"] == sent_to


def test_sign_out_ends_the_session(client: TestClient, tokens: dict[str, str], conn: sa.Connection) -> None:
    sign_in(client, tokens["inspector"])
    out = client.post("/pages/sign-out", headers=SAME_ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/pages/sign-in"
    assert out.headers["set-cookie"].startswith(f'{SESSION_COOKIE}="";') and "max-age=0" in out.headers[
        "set-cookie"].lower()
    client.cookies.clear()
    history = client.get(f"/pages/boundaries/markers/{first_marker(conn)}", headers=BROWSER, follow_redirects=False)
    assert history.status_code == 303


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "http://elsewhere.example"}, {"Origin": "null"}])
def test_a_cookie_without_same_origin_cannot_write(client: TestClient, tokens: dict[str, str], conn: sa.Connection,
                                                   headers: dict[str, str]) -> None:
    marker = first_marker(conn)
    before = marker_state(conn, marker)
    client.cookies.set(SESSION_COOKIE, tokens["inspector"])
    answer = client.post(f"/collections/boundary_markers/items/{marker}/inspections", headers=headers,
                         json={"inspected_on": "2026-01-05", "condition": "damaged"})
    assert answer.status_code == 401
    assert "accepted for changes only from this service's own pages" in answer.json()["description"]
    assert marker_state(conn, marker) == before


@pytest.mark.parametrize("headers", [SAME_ORIGIN, {"Origin": "http://testserver"}])
def test_a_cookie_from_the_services_own_page_writes_as_its_holder(client: TestClient, tokens: dict[str, str],
                                                                 conn: sa.Connection, headers: dict[str, str]) -> None:
    marker = first_marker(conn)
    client.cookies.set(SESSION_COOKIE, tokens["inspector"])
    answer = client.post(f"/collections/boundary_markers/items/{marker}/inspections", headers=headers,
                         json={"inspected_on": "2026-01-05", "condition": "damaged", "notes": "基座松动"})
    assert answer.status_code == 201 and answer.json()["inspector"] == "测试inspector"
    history = client.get(f"/pages/boundaries/markers/{marker}", headers=BROWSER)
    assert "2026-01-05" in history.text and "基座松动" in history.text and "测试inspector" in history.text


def test_marker_history_page_sends_a_browser_without_a_session_to_sign_in(client: TestClient,
                                                                          conn: sa.Connection) -> None:
    marker = first_marker(conn)
    answer = client.get(f"/pages/boundaries/markers/{marker}", headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/pages/sign-in?next=/pages/boundaries/markers/{marker}"


def test_signing_out_of_a_closed_deployment_needs_no_valid_session(closed: TestClient) -> None:
    closed.cookies.set(SESSION_COOKIE, "gis_" + "r" * 43)  # a token revoked since
    out = closed.post("/pages/sign-out", headers=SAME_ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()
