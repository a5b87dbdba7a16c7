"""Exposure (issue #18, finding 11), in the bad-input catalogue's style: each case is answered with the status and
the words a user sees, and changes nothing.

- records that name the bureau's staff (a feature's history, a marker's inspections, a place name's change log)
  need a token of any role; the open reads and maps name nobody;
- a token in a URL is refused and never reaches the access log;
- forwarded headers are believed only from GIS_TRUSTED_PROXIES, and the request id in the audit trail and the log
  is the service's own;
- links come from GIS_PUBLIC_URL (or the address the request reached), never from the Host header;
- every answer carries the security headers, with a policy that lets its kind of page work (Chromium checks the
  documentation pages; tests/test_maps_browser.py the maps);
- tokens expire (a year unless told otherwise) and an expired one is refused with the way to a new one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gis_service.api import security
from gis_service.api.pages import PAGES_POLICY
from gis_service.auth import create_token
from gis_service.cli import app as cli_app
from gis_service.errors import GisServiceError
from gis_service.layers import LAYERS
from gis_service.search import records

from .helpers import bearer, fingerprint, open_map, station

ACCESS_LOG = "gis_service.access"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOG]


def peer_client(client: TestClient, address: str) -> TestClient:
    """The same app (and test transaction) as ``client``, reached from ``address``."""
    return TestClient(client.app, client=(address, 40000))


# -- records that name staff need a token ----------------------------------------------------------------------

@dataclass(frozen=True)
class StaffRecord:
    """A read whose answer names a person: ``prepare`` makes sure it does and returns (URL, the name)."""

    prepare: Callable[[TestClient, sa.Connection, dict], tuple[str, str]]


def _history(client: TestClient, conn: sa.Connection, tokens: dict) -> tuple[str, str]:
    made = client.post("/collections/elder_care/items", json=station(), headers=bearer(tokens["planner"]))
    assert made.status_code == 201
    return f"/collections/elder_care/items/{made.json()['id']}/history", "测试planner"


def _inspections(client: TestClient, conn: sa.Connection, tokens: dict) -> tuple[str, str]:
    marker, inspector = conn.execute(sa.text(
        "SELECT marker_id, inspector FROM marker_inspections ORDER BY inspected_on DESC, id DESC LIMIT 1")).one()
    return f"/collections/boundary_markers/items/{marker}/inspections", inspector


def _place_name_changes(client: TestClient, conn: sa.Connection, tokens: dict) -> tuple[str, str]:
    place = conn.execute(sa.text("SELECT min(id) FROM place_names WHERE category = 'road' AND status = 'current'"
                                 )).scalar_one()
    records.rename_place_name(conn, place, "凤鸣大道", changed_by="地名办 张三")
    return f"/placenames/{place}/changes", "地名办 张三"


STAFF_RECORDS = {"feature history": _history, "marker inspections": _inspections,
                 "place-name change log": _place_name_changes}


@pytest.mark.parametrize("case", list(STAFF_RECORDS))
def test_a_record_that_names_staff_needs_a_token(case: str, client: TestClient, conn: sa.Connection,
                                                  tokens: dict) -> None:
    url, person = STAFF_RECORDS[case](client, conn, tokens)
    before = fingerprint(conn)
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert "this request needs a bearer token: send 'Authorization: Bearer <token>'" in anonymous.json()["description"]
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="gis-service"'
    assert person not in anonymous.text
    unknown = client.get(url, headers={"Authorization": "Bearer gis_" + "x" * 43})
    assert unknown.status_code == 401 and "the bearer token is not known" in unknown.json()["description"]
    assert unknown.headers["WWW-Authenticate"] == 'Bearer realm="gis-service", error="invalid_token"'
    assert fingerprint(conn) == before
    for role in ("inspector", "placename", "planner", "admin"):  # any role reads them
        answer = client.get(url, headers={"Authorization": f"Bearer {tokens[role]}"})
        assert answer.status_code == 200, (role, answer.text[:300])
        assert person in answer.text
        assert answer.headers["Cache-Control"] == "no-store"


def test_open_reads_and_maps_name_no_staff(client: TestClient, conn: sa.Connection) -> None:
    place = conn.execute(sa.text("SELECT min(id) FROM place_names WHERE category = 'road' AND status = 'current'"
                                 )).scalar_one()
    records.rename_place_name(conn, place, "凤鸣大道", changed_by="地名办 张三")
    detail = client.get(f"/placenames/{place}")
    assert detail.status_code == 200 and detail.json()["properties"]["name"] == "凤鸣大道"
    assert "张三" not in detail.text and "changes" not in detail.json()["properties"]
    inspectors = set(conn.execute(sa.text("SELECT DISTINCT inspector FROM marker_inspections")).scalars())
    page = open_map(client, "/maps/boundaries")
    assert page.status_code == 200 and "界桩编号" in page.text  # the markers' popups are there
    assert "检查人" not in page.text and not [name for name in inspectors if name in page.text]


# -- tokens never in URLs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InUrl:
    method: str
    path: str
    params: Callable[[str], dict]


TOKENS_IN_URLS = {
    "token": InUrl("GET", "/collections/elder_care/items", lambda t: {"token": t}),
    "access_token on a token-only read": InUrl("GET", "/collections/elder_care/items/1/history",
                                               lambda t: {"access_token": t}),
    "api_key beside a search": InUrl("GET", "/placenames/search", lambda t: {"q": "石堤", "api_key": t}),
    "authorization": InUrl("GET", "/collections", lambda t: {"authorization": f"Bearer {t}"}),
    "Access-Token, spelled otherwise": InUrl("GET", "/", lambda t: {"Access-Token": t}),
    "an empty token parameter": InUrl("GET", "/collections", lambda t: {"token": ""}),
    "a token searched for": InUrl("GET", "/placenames/search", lambda t: {"q": t}),
    "a token inside a filter": InUrl("GET", "/collections/elder_care/items", lambda t: {"filter": f"name = '{t}'"}),
    "a token as a parameter's name": InUrl("GET", "/collections", lambda t: {t: "1"}),
    "a write carrying its token in the URL": InUrl("POST", "/collections/elder_care/items",
                                                   lambda t: {"access_token": t}),
}


@pytest.mark.parametrize("case", list(TOKENS_IN_URLS))
def test_a_token_in_the_url_is_refused_and_not_logged(case: str, client: TestClient, conn: sa.Connection,
                                                      tokens: dict, caplog: pytest.LogCaptureFixture) -> None:
    sent = TOKENS_IN_URLS[case]
    token = tokens["admin"]
    before = fingerprint(conn)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG):
        answer = client.request(sent.method, sent.path, params=sent.params(token),
                                json=station() if sent.method == "POST" else None)
    assert answer.status_code == 400, answer.text[:300]
    body = answer.json()
    assert body["code"] == "TokenInUrl"
    assert "send it as a header, 'Authorization: Bearer <token>'" in body["description"]
    assert token not in answer.text
    assert fingerprint(conn) == before
    line = access_lines(caplog)[-1]
    assert line["status"] == 400 and line["query"] == "[withheld: it held a token]"
    assert not [r for r in caplog.records if token in r.getMessage()]


def test_a_token_in_the_path_is_cut_from_the_log(client: TestClient, tokens: dict,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG):
        answer = client.get(f"/collections/{tokens['admin']}")
    assert answer.status_code == 404
    assert access_lines(caplog)[-1]["path"] == "/collections/gis_[redacted]"
    assert not [r for r in caplog.records if tokens["admin"] in r.getMessage()]


def test_no_layer_field_is_named_like_a_credential() -> None:
    """The names refused in query strings must never be property filters of a layer."""
    fields = {f.lower().replace("-", "_") for layer in LAYERS.values() for f in layer.field_names}
    assert fields & security.TOKEN_PARAMETERS == set()


# -- forwarded headers and request ids -------------------------------------------------------------------------

PROXIES = ("10.0.0.0/24", "2001:db8:ffff::1/128")  # as Settings holds GIS_TRUSTED_PROXIES=10.0.0.0/24,2001:db8:ffff::1
FORWARDED = {  # name: (peer, headers, the client the log must name)
    "X-Forwarded-For from a stranger": ("203.0.113.9", {"X-Forwarded-For": "198.51.100.1"}, "203.0.113.9"),
    "Forwarded from a stranger": ("203.0.113.9", {"Forwarded": "for=198.51.100.1"}, "203.0.113.9"),
    "X-Forwarded-For from a local process": ("127.0.0.1", {"X-Forwarded-For": "198.51.100.1"}, "127.0.0.1"),
    "the trusted proxy's client": ("10.0.0.2", {"X-Forwarded-For": "198.51.100.1"}, "198.51.100.1"),
    "what the client wrote before the proxy": ("10.0.0.2", {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"},
                                               "198.51.100.1"),
    "two trusted proxies": ("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, 10.0.0.7"}, "198.51.100.1"),
    "Forwarded with IPv6 and a port": ("10.0.0.2", {"Forwarded": 'for="[2001:db8::5]:4711";proto=https'},
                                       "2001:db8::5"),
    "a hop that is not an address": ("10.0.0.2", {"X-Forwarded-For": "<script>"}, "10.0.0.2"),
    "a trusted proxy that names nobody": ("10.0.0.2", {}, "10.0.0.2"),
}


@pytest.mark.parametrize("case", list(FORWARDED))
def test_forwarded_headers_are_believed_only_from_trusted_proxies(
        case: str, client_with, caplog: pytest.LogCaptureFixture) -> None:
    peer, headers, expected = FORWARDED[case]
    reached = peer_client(client_with(trusted_proxies=PROXIES), peer)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG):
        assert reached.get("/conformance", headers=headers).status_code == 200
    line = access_lines(caplog)[-1]
    assert line["client"] == expected
    assert line.get("proxy") == (peer if expected != peer else None)


def test_a_client_chosen_request_id_never_reaches_the_audit_trail(
        client_with, conn: sa.Connection, tokens: dict, caplog: pytest.LogCaptureFixture) -> None:
    # not even through a trusted proxy: the audit trail's ids are the service's own
    proxied = peer_client(client_with(trusted_proxies=PROXIES), "10.0.0.2")
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG):
        made = proxied.post("/collections/elder_care/items", json=station(),
                            headers=bearer(tokens["planner"], **{"X-Request-ID": "someone-elses-change-42"}))
    assert made.status_code == 201
    rid = made.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    audited = conn.execute(sa.text("SELECT request_id FROM audit_log WHERE feature_id = :id AND layer = "
                                   "'elder_care'"), {"id": made.json()["id"]}).scalar_one()
    assert audited == rid
    line = access_lines(caplog)[-1]
    assert (line["request_id"], line["client_request_id"]) == (rid, "someone-elses-change-42")


# -- links ------------------------------------------------------------------------------------------------------

FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
          "X-Forwarded-For": "198.51.100.1"}
PUBLIC = "https://gis.example.gov.cn/gis"


def _links(answer) -> list[str]:
    """Every URL an answer gives: hrefs, TileJSON tile templates, a schema's $id, the Location header."""
    found = [answer.headers["Location"]] if "Location" in answer.headers else []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("href", "$id") and isinstance(value, str):
                    found.append(value)
                elif key == "tiles" and isinstance(value, list):
                    found.extend(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    if answer.headers.get("content-type", "").startswith(("application/json", "application/geo+json",
                                                          "application/schema+json")):
        walk(answer.json())
    return found


LINKED = {
    "landing page": lambda c, t: c.get("/", headers=FORGED),
    "collections": lambda c, t: c.get("/collections", headers=FORGED),
    "a page of items": lambda c, t: c.get("/collections/elder_care/items", params={"limit": 2, "offset": 2},
                                          headers=FORGED),
    "one feature": lambda c, t: c.get("/collections/elder_care/items/1", headers=FORGED),
    "queryables": lambda c, t: c.get("/collections/elder_care/queryables", headers=FORGED),
    "tilesets": lambda c, t: c.get("/collections/roads/tiles", headers=FORGED),
    "TileJSON": lambda c, t: c.get("/collections/roads/tiles/WebMercatorQuad", headers=FORGED),
    "the API as HTML (a redirect)": lambda c, t: c.get("/api", params={"f": "html"}, headers=FORGED,
                                                       follow_redirects=False),
    "a created feature's Location": lambda c, t: c.post("/collections/elder_care/items", json=station(),
                                                        headers={**bearer(t["planner"]), **FORGED}),
}


@pytest.mark.parametrize("case", list(LINKED))
@pytest.mark.parametrize(("public_url", "expected"), [(PUBLIC, PUBLIC + "/"), (None, "http://testserver/")])
def test_links_never_follow_a_forged_host(case: str, public_url: str | None, expected: str, client_with,
                                          tokens: dict) -> None:
    answer = LINKED[case](client_with(public_url=public_url), tokens)
    assert answer.status_code < 400, answer.text[:300]
    links = _links(answer)
    assert links, "the answer gives no link"
    assert [link for link in links if not link.startswith(expected)] == []
    assert "evil.example" not in answer.text and "evil.example" not in str(answer.headers)


@pytest.mark.parametrize("path", ["/collections", "/gis/collections"])
def test_behind_a_path_prefix_the_routes_answer_whether_the_proxy_strips_it_or_not(path: str, client_with) -> None:
    answer = client_with(public_url=PUBLIC).get(path, headers=FORGED)
    assert answer.status_code == 200
    assert answer.json()["links"][0]["href"] == f"{PUBLIC}/collections"
    docs = client_with(public_url=PUBLIC).get(path.replace("collections", "docs"))
    assert docs.status_code == 200 and "/gis/openapi.json" in docs.text


def test_a_public_url_with_a_query_is_refused() -> None:
    from pydantic import ValidationError

    from gis_service.settings import Settings

    with pytest.raises(ValidationError, match="GIS_PUBLIC_URL must be http"):
        Settings(_env_file=None, public_url="https://gis.example.gov.cn/?x=1")
    with pytest.raises(ValidationError, match="GIS_TRUSTED_PROXIES must list IP addresses"):
        Settings(_env_file=None, trusted_proxies="proxy.example")


# -- security headers -------------------------------------------------------------------------------------------

ANSWERS = {  # name: (request, the Content-Security-Policy it must carry)
    "JSON": (lambda c: c.get("/collections"), security.API_POLICY),
    "GeoJSON": (lambda c: c.get("/collections/elder_care/items", params={"limit": 1}), security.API_POLICY),
    "a vector tile": (lambda c: c.get("/collections/roads/tiles/WebMercatorQuad/12/3318/1714"), security.API_POLICY),
    "an HTML view": (lambda c: c.get("/collections", params={"f": "html"}), PAGES_POLICY),
    "the maps' index": (lambda c: c.get("/maps"), security.map_policy("none")),
    "a map's script": (lambda c: c.get("/maps/static/leaflet/leaflet.js"), security.API_POLICY),
    "Swagger UI": (lambda c: c.get("/docs"), security.DOCS_POLICY),
    "ReDoc": (lambda c: c.get("/redoc"), security.DOCS_POLICY),
    "a 404": (lambda c: c.get("/no/such/page"), security.API_POLICY),
    "a 400 from the middleware": (lambda c: c.get("/", params={"token": "x"}), security.API_POLICY),
    "a 413 from the middleware": (lambda c: c.post("/collections/elder_care/items", content=b"x" * 6_000_000),
                                  security.API_POLICY),
}


@pytest.mark.parametrize("case", list(ANSWERS))
def test_every_answer_carries_the_security_headers(case: str, client: TestClient) -> None:
    send, policy = ANSWERS[case]
    answer = send(client)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Content-Security-Policy"] == policy
    assert "frame-ancestors 'none'" in policy
    expected_referrer = security.MAP_REFERRER_POLICY if case == "the maps' index" else "no-referrer"
    assert answer.headers["Referrer-Policy"] == expected_referrer
    assert "Strict-Transport-Security" not in answer.headers  # no https address configured


@pytest.mark.parametrize(("public_url", "hsts"), [(None, None), ("http://10.0.0.5:8000", None),
                                                  (PUBLIC, "max-age=31536000")])
def test_hsts_only_when_the_public_address_is_https(public_url: str | None, hsts: str | None, client_with) -> None:
    answer = client_with(public_url=public_url).get("/conformance")
    assert answer.headers.get("Strict-Transport-Security") == hsts


@pytest.mark.parametrize("basemap", ["osm", "tianditu", "amap"])
def test_a_maps_policy_admits_the_tiles_of_its_basemap_and_no_other_host(basemap: str) -> None:
    import folium

    from gis_service.maps.render import add_basemap

    fmap = folium.Map(tiles=None)
    add_basemap(folium, fmap, basemap, "key")
    templates = re.findall(r'L\.tileLayer\(\s*"([^"]+)"', fmap.get_root().render())
    img_src = next(d for d in security.map_policy(basemap).split("; ") if d.startswith("img-src")).split()[1:]
    others = [s for s in img_src if s.startswith("https://")]
    assert templates and len(others) == 1
    for template in templates:
        host = urlsplit(template).hostname
        assert host == others[0].removeprefix("https://") or (
            others[0].startswith("https://*.") and host.endswith(others[0].removeprefix("https://*"))), (host, others)


@pytest.fixture(scope="module")
def live_server(engine: sa.Engine, database_url: str) -> Iterator[str]:
    """The service under uvicorn (as `serve` runs it: no proxy headers of uvicorn's own), on a loopback port."""
    from .harness.devserver import service

    with service(database_url, ready_path="/conformance") as url:
        yield url


def test_a_real_server_links_to_the_address_it_was_reached_at(live_server: str) -> None:
    import httpx

    answer = httpx.get(f"{live_server}/collections", headers=FORGED, timeout=30)
    assert answer.status_code == 200
    assert [link for link in _links(answer) if not link.startswith(live_server + "/")] == []
    assert "evil.example" not in answer.text


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/maps"])
def test_the_pages_break_no_rule_of_their_policy_in_chromium(path: str, live_server: str) -> None:
    """Offline, the documentation pages cannot fetch Swagger UI and ReDoc from their CDN; what must not appear is
    a load or a script that the page's own Content-Security-Policy blocks."""
    from .harness.browser import Chromium

    with Chromium() as chromium:
        page = chromium.new_page()
        page.send("Page.navigate", {"url": live_server + path})
        page.evaluate("new Promise(r => document.readyState === 'complete' ? r() : addEventListener('load', r))",
                      timeout_s=60)
        blocked = [e for e in page.console_errors if "Content Security Policy" in e]
    assert blocked == []
    assert page.requests and page.requests[0] == live_server + path


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_documentation_pages_load_only_what_their_policy_admits(path: str, client: TestClient) -> None:
    answer = client.get(path)
    policy = dict(d.split(" ", 1) for d in answer.headers["Content-Security-Policy"].split("; "))
    loaded = {"script-src": re.findall(r'<script[^>]+src="([^"]+)"', answer.text),
              "style-src": re.findall(r'<link[^>]+rel="stylesheet"[^>]*href="([^"]+)"|'
                                      r'<link[^>]+href="([^"]+)"[^>]*rel="stylesheet"', answer.text),
              "img-src": re.findall(r'<link[^>]+rel="shortcut icon"[^>]*href="([^"]+)"', answer.text)}
    loaded["style-src"] = [a or b for a, b in loaded["style-src"]]
    assert loaded["script-src"] and loaded["img-src"]
    for directive, urls in loaded.items():
        for url in urls:  # all from this service: a path, which the policy admits as 'self'
            assert url.startswith("/") and not url.startswith("//"), (directive, url)
            assert "'self'" in policy[directive].split(), (directive, url)
            assert client.get(url).status_code == 200, url


# -- tokens expire ----------------------------------------------------------------------------------------------

@pytest.fixture()
def cli(engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The command line over the test database; the tokens it makes (named 过期测试…) are deleted afterwards."""
    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    yield CliRunner()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_tokens WHERE name LIKE '过期测试%'"))


def _expires_at(engine: sa.Engine, name: str) -> list[dt.datetime | None]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT expires_at FROM api_tokens WHERE name = :n"), {"n": name}).scalars())


@pytest.mark.parametrize(("options", "days"), [([], 365), (["--expires", "90d"], 90), (["--expires", "30"], 30),
                                               (["--expires", "never", "--allow-never"], None)])
def test_a_token_expires_after_a_year_unless_told_otherwise(options: list[str], days: int | None, cli: CliRunner,
                                                            engine: sa.Engine) -> None:
    made = cli.invoke(cli_app, ["token", "create", "--role", "planner", "--name", "过期测试甲", *options])
    assert made.exit_code == 0, made.output
    [expires] = _expires_at(engine, "过期测试甲")
    if days is None:
        assert expires is None
    else:
        left = expires - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=days, minutes=-5) < left <= dt.timedelta(days=days)
    listed = cli.invoke(cli_app, ["token", "list"])
    line = next(row for row in listed.output.splitlines() if "过期测试甲" in row)
    assert "active" in line
    assert (f"expires {expires:%Y-%m-%d}" if expires else "expires never") in line


@pytest.mark.parametrize(("expires", "words"), [
    ("never", "--expires never makes a token that works until it is revoked; confirm with --allow-never"),
    ("0d", "--expires must be a number of days from 1d to 3650d, e.g. 90d, or never; got '0d'"),
    ("4000d", "--expires must be a number of days from 1d to 3650d"),
    ("1y", "--expires must be a number of days from 1d to 3650d"),
    ("-5d", "--expires must be a number of days from 1d to 3650d"),
])
def test_a_token_life_that_is_not_days_is_refused(expires: str, words: str, cli: CliRunner,
                                                 engine: sa.Engine) -> None:
    made = cli.invoke(cli_app, ["token", "create", "--role", "planner", "--name", "过期测试乙", "--expires", expires])
    assert isinstance(made.exception, GisServiceError), made.output
    assert words in str(made.exception)
    assert _expires_at(engine, "过期测试乙") == []  # nothing created


def test_token_list_says_which_tokens_have_expired(cli: CliRunner, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        token_id = create_token(conn, role="inspector", name="过期测试丙")[0]
        conn.execute(sa.text("UPDATE api_tokens SET expires_at = '2026-01-02 03:04Z' WHERE id = :id"),
                     {"id": token_id})
    listed = cli.invoke(cli_app, ["token", "list"])
    line = next(row for row in listed.output.splitlines() if "过期测试丙" in row)
    assert "expired" in line and "expires 2026-01-02" in line


def test_an_expired_token_is_refused_with_the_way_to_a_new_one(client: TestClient, conn: sa.Connection) -> None:
    token_id, token = create_token(conn, role="planner", name="过期")
    conn.execute(sa.text("UPDATE api_tokens SET expires_at = '2026-01-02 03:04Z' WHERE id = :id"), {"id": token_id})
    before = fingerprint(conn)
    answer = client.post("/collections/elder_care/items", json=station(), headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["description"] == (
        "the bearer token has expired (on 2026-01-02 03:04 UTC); ask an administrator for a new one: "
        "`gis-service token create --role ROLE --name NAME --expires 365d`")
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="gis-service", error="invalid_token"'
    assert fingerprint(conn) == before
