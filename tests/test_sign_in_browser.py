"""A closed deployment (GIS_READ_REQUIRES_TOKEN=true) in headless Chromium: a browser is sent to sign in, signs in
once, and then opens the portal, the pages, a map (its tiles and search box) and the layer browser, with no request
carrying the token; an inspector records an inspection through the 界线界桩 form and the API has it; a refused one
shows the API's message and changes nothing. The service commits, so it runs over a database of its own."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from gis_service.auth import create_token
from gis_service.db import migrate
from gis_service.db.engine import create_db_engine
from gis_service.io.load_demo import load_frames
from gis_service.layers import get_layer
from gis_service.settings import Settings

from .harness.browser import Chromium, Page
from .harness.devserver import service
from .helpers import SEAT_LAT, SEAT_LON, create_database, drop_database, tile_of

DATABASE = "gis_sign_in_test"


@dataclass(frozen=True)
class Closed:
    url: str
    engine: sa.Engine
    tokens: dict[str, str]  # role -> token


@pytest.fixture(scope="module")
def closed(engine: sa.Engine, database_url: str, admin_url: str, settings: Settings,
           demo_frames: dict) -> Iterator[Closed]:
    """The service with reading closed, over a database of its own holding the demo county, and a committed token
    of an inspector and of the place-name office (which may not record inspections)."""
    url = create_database(admin_url, database_url, DATABASE)
    migrate.upgrade(url)
    own = create_db_engine(url)
    load_frames(own, demo_frames, county_code=settings.county_code, measure_srid=settings.measure_srid)
    with own.begin() as conn:
        tokens = {role: create_token(conn, role=role, name=name)[1]
                  for role, name in (("inspector", "检查员甲"), ("placename", "地名办乙"))}
    try:
        with service(url, ready_path="/health", GIS_READ_REQUIRES_TOKEN="true", GIS_WARM_UP="false") as base:
            yield Closed(base, own, tokens)
    finally:
        own.dispose()
        drop_database(admin_url, DATABASE)


@pytest.fixture()
def browser() -> Iterator[Chromium]:
    """A browser of its own (a fresh profile: no session cookie from another test)."""
    with Chromium() as chromium:
        yield chromium


def check_clean(page: Page, server: Closed, *, icon_missing: bool = False) -> None:
    """No request to another host or carrying a token, no console error, no failed load. ``icon_missing``: the
    layer browser's f=html pages link no icon, so Chromium asks for /favicon.ico and logs its 404."""
    host = urlsplit(server.url).netloc
    elsewhere = [u for u in page.requests if not (urlsplit(u).scheme == "data" or urlsplit(u).netloc == host)]
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    errors = [e for e in page.console_errors if not (icon_missing and e.endswith(f"{server.url}/favicon.ico"))]
    assert errors == [], page.console_errors
    assert page.failed == [], page.failed
    carrying = [u for u in page.requests if any(token in u for token in server.tokens.values())]
    assert carrying == [], f"a URL carried a token: {carrying}"


def wait_until(page: Page, check: str, *, seconds: float = 60):
    """The value of the JavaScript expression ``check`` once truthy, evaluated again across navigations."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = page.evaluate(check, timeout_s=10)
        except (RuntimeError, TimeoutError):  # the page is navigating
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{check} did not become true within {seconds} s")


def sign_in_through(page: Page, server: Closed, path: str, role: str = "inspector") -> None:
    """Open ``path``, be sent to the sign-in page, sign in there with the token of ``role``, and be back."""
    page.goto(server.url + path, timeout_s=180)
    assert page.evaluate("location.pathname") == "/pages/sign-in"
    assert page.evaluate("document.querySelector('input[name=next]').value") == path
    check_clean(page, server)
    page.evaluate(f"""(function () {{ document.querySelector('input[name=token]').value =
        {json.dumps(server.tokens[role])}; document.querySelector('#sign-in button').click(); }})()""")
    wait_until(page, f"location.pathname + location.search === {json.dumps(path)} && "
                     "document.readyState === 'complete'", seconds=180)
    check_clean(page, server)


def test_one_sign_in_opens_every_page_map_and_layer(browser: Chromium, closed: Closed) -> None:
    page = browser.new_page()
    sign_in_through(page, closed, "/pages/indicators")
    assert page.evaluate("document.querySelector('h1').innerText") == "规划指标"
    for path, heading in (("/", "民政地理信息服务"), ("/pages/placenames", "地名查询"),
                          ("/pages/boundaries", "界线界桩")):
        page.goto(closed.url + path, timeout_s=120)
        assert page.evaluate("location.pathname") == path
        assert page.evaluate("document.querySelector('h1').innerText") == heading
        check_clean(page, closed)

    page.goto(closed.url + "/maps/overview", timeout_s=180)
    assert page.evaluate("location.pathname") == "/maps/overview"
    assert page.count("path.gis-villages") > 0
    x, y = tile_of(SEAT_LON, SEAT_LAT, 12)
    statuses = page.evaluate(f"""Promise.all([
        fetch('/collections/roads/tiles/WebMercatorQuad/12/{x}/{y}').then(r => r.status),
        fetch('/placenames/search?q=' + encodeURIComponent('中和') + '&limit=1').then(r => r.status)])""")
    assert statuses == [200, 200]
    page.evaluate("""(function () { var input = document.querySelector('.gis-search input');
        input.value = '中和'; input.dispatchEvent(new Event('input')); })()""")
    assert wait_until(page, "(document.querySelector('.gis-search li') || {}).textContent", seconds=30)
    check_clean(page, closed)

    with closed.engine.connect() as conn:
        number = conn.execute(sa.text("SELECT number FROM boundary_markers ORDER BY id LIMIT 1")).scalar_one()
    page.goto(closed.url + "/collections?f=html", timeout_s=120)
    assert page.evaluate("location.pathname") == "/collections"
    text = page.evaluate("document.body.innerText")  # the layer's id or its Chinese title (either browser)
    assert "boundary_markers" in text or get_layer("boundary_markers").title_zh in text
    check_clean(page, closed, icon_missing=True)
    page.goto(closed.url + "/collections/boundary_markers/items?f=html&limit=5", timeout_s=120)
    assert page.evaluate("location.pathname") == "/collections/boundary_markers/items"
    assert number in page.evaluate("document.body.innerText")
    check_clean(page, closed, icon_missing=True)


def test_an_api_client_without_a_token_is_still_refused(closed: Closed) -> None:
    answer = httpx.get(f"{closed.url}/collections/roads/items?limit=1")
    assert answer.status_code == 401 and answer.json()["code"] == "AuthenticationRequired"


def marker_state(server: Closed, marker: int) -> tuple:
    with server.engine.connect() as conn:
        return (*conn.execute(sa.text("SELECT condition, last_inspected FROM boundary_markers WHERE id = :id"),
                              {"id": marker}).one(),
                conn.execute(sa.text("SELECT count(*) FROM marker_inspections")).scalar_one(),
                conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one())


def a_marker(server: Closed, condition: str) -> tuple[int, str]:
    """The marker with the lowest id that is not in ``condition``, and its number."""
    with server.engine.connect() as conn:
        return tuple(conn.execute(sa.text("SELECT id, number FROM boundary_markers WHERE condition <> :c "
                                          "ORDER BY id LIMIT 1"), {"c": condition}).one())


def fill_inspection(page: Page, marker: int, *, date: str, condition: str, notes: str) -> str:
    """Fill and send the inspection form; the text it shows once the API has answered."""
    page.evaluate(f"""(function () {{ var form = document.getElementById('inspection'), select = form.elements.marker;
        if (!select.querySelector('option[value="{marker}"]')) {{ select.add(new Option('?', '{marker}')); }}
        select.value = '{marker}'; form.elements.inspected_on.value = {json.dumps(date)};
        form.elements.condition.value = {json.dumps(condition)}; form.elements.notes.value = {json.dumps(notes)};
        form.querySelector('button').click(); }})()""")
    return wait_until(page, "(function () { var r = document.getElementById('inspection-result');"
                            " return /^(已记录|没有保存|检查记录|未登录|当前令牌|没有这个)/.test(r.textContent)"
                            " && r.className + '|' + r.textContent; })()", seconds=60)


def test_an_inspection_recorded_through_the_form_is_in_the_markers_history(browser: Chromium,
                                                                            closed: Closed) -> None:
    marker, number = a_marker(closed, "damaged")
    today = dt.date.today().isoformat()
    page = browser.new_page()
    sign_in_through(page, closed, "/pages/boundaries")
    shown = fill_inspection(page, marker, date=today, condition="damaged", notes="界桩倾斜，需扶正")
    damaged = get_layer("boundary_markers").field_named("condition").label_of("damaged")
    assert shown == f"ok|已记录：界桩 {number}，{today}，{damaged}。"
    row = wait_until(page, f"""(function () {{ var row = document.querySelector('tr.marker[data-id="{marker}"]');
        return row && row.querySelector('.inspected').textContent === {json.dumps(today)} && row.innerText; }})()""")
    assert damaged in row
    check_clean(page, closed)

    records = httpx.get(f"{closed.url}/collections/boundary_markers/items/{marker}/inspections",
                        headers={"Authorization": f"Bearer {closed.tokens['placename']}"}).json()["inspections"]
    assert {k: records[0][k] for k in ("inspected_on", "condition", "notes", "inspector")} == {
        "inspected_on": today, "condition": "damaged", "notes": "界桩倾斜，需扶正", "inspector": "检查员甲"}

    page.evaluate(f"document.querySelector('tr.marker[data-id=\"{marker}\"] a').click()")
    wait_until(page, f"location.pathname === '/pages/boundaries/markers/{marker}' && "
                     "document.readyState === 'complete'")
    assert "界桩倾斜，需扶正" in page.evaluate("document.querySelector('tr.inspection').innerText")
    check_clean(page, closed)


@pytest.mark.parametrize(("role", "case", "lead"), [
    ("inspector", "future", "检查记录未通过检查，没有保存："),
    ("inspector", "unknown marker", "没有这个界桩（可能已被删除），没有保存："),
    ("placename", "read-only token", "当前令牌的角色不能记录界桩检查"),
])
def test_a_refused_inspection_shows_the_apis_message_and_changes_nothing(browser: Chromium, closed: Closed,
                                                                         role: str, case: str, lead: str) -> None:
    marker, _ = a_marker(closed, "missing")
    date = (dt.date.today() + dt.timedelta(days=30 if case == "future" else 0)).isoformat()
    target = 99_999_999 if case == "unknown marker" else marker
    body = {"inspected_on": date, "condition": "missing", "notes": "测试"}
    before = marker_state(closed, marker)
    page = browser.new_page()
    sign_in_through(page, closed, "/pages/boundaries", role=role)
    shown = fill_inspection(page, target, date=date, condition="missing", notes="测试")
    assert marker_state(closed, marker) == before
    # what the API answers a client sending the same inspection with the same token (refused too)
    api = httpx.post(f"{closed.url}/collections/boundary_markers/items/{target}/inspections", json=body,
                     headers={"Authorization": f"Bearer {closed.tokens[role]}"})
    assert api.status_code in (400, 403, 404)
    assert shown.startswith("error|" + lead) and shown.endswith(api.json()["description"])
    assert marker_state(closed, marker) == before
    # the only console entry: Chromium's own line for the refused request (a page cannot silence it)
    assert all(e.startswith("log: Failed to load resource") and e.endswith(f"/items/{target}/inspections")
               for e in page.console_errors), page.console_errors
