"""The bureau's pages (issue 13) in headless Chromium: the portal and 地名查询, served by a running service.

Each page must load with no console error and request nothing from another host; typing pinyin initials or a
former name in the 地名查询 box must list the right places. A screenshot of each page goes to docs/pages/ when
GIS_PAGES_SCREENSHOTS is set (the README shows them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from .harness.browser import Chromium, Page
from .harness.devserver import service
from .helpers import REPO, chromium_or_fail


@pytest.fixture(scope="module")
def phone() -> Iterator[Chromium]:
    """A browser 360 px wide: the narrowest phone the pages must serve."""
    with chromium_or_fail(width=360, height=740) as browser:
        yield browser


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    with service(database_url, ready_path="/pages/placenames", GIS_MAP_BASEMAP="none") as url:
        yield url


def _assert_clean(page: Page, url: str) -> None:
    own = urlsplit(url).netloc
    assert [r for r in page.requests if urlsplit(r).netloc not in (own, "")] == []
    assert page.console_errors == []
    assert page.failed == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "wider than a 360 px phone"


def _screenshot(page: Page, name: str) -> None:
    if os.environ.get("GIS_PAGES_SCREENSHOTS"):
        (REPO / "docs" / "pages").mkdir(parents=True, exist_ok=True)
        page.screenshot(REPO / "docs" / "pages" / f"{name}.png")


def _type(page: Page, text: str) -> list[str]:
    """Type ``text`` into the 地名查询 box as a user would and return the names listed once the answer is in."""
    page.evaluate(f"""(function () {{ var box = document.getElementById("q"); box.value = {json.dumps(text)};
        box.dispatchEvent(new Event("input")); }})()""")
    return page.evaluate("""new Promise(function (resolve) {
        var waited = 0;
        (function poll() {
          var message = document.getElementById("message").textContent;
          if (message || waited > 10000) {
            resolve(Array.from(document.querySelectorAll("#results li a")).map(function (a) { return a.textContent; }));
          } else { waited += 50; setTimeout(poll, 50); }
        })(); })""")


def test_the_portal_is_what_a_browser_gets_and_json_stays_the_default(phone: Chromium, server_url: str) -> None:
    assert httpx.get(f"{server_url}/").json()["title"] == "gis-service"
    page = phone.new_page()
    page.goto(f"{server_url}/")
    _assert_clean(page, server_url)
    assert page.evaluate("Array.from(document.querySelectorAll('.cards a')).map(a => a.textContent)")[:2] == [
        "地名查询", "专题地图"]
    _screenshot(page, "portal")


@pytest.mark.parametrize(("typed", "expected_sql"), [
    ("石堤镇", "SELECT name FROM place_names WHERE name = '石堤镇' AND status = 'current'"),
    ("sdz", "SELECT name FROM place_names WHERE name = '石堤镇' AND status = 'current'"),
    (None, "SELECT s.name FROM place_names f JOIN place_names s ON s.id = f.successor_id "
           "WHERE f.status <> 'current' AND s.status = 'current' ORDER BY f.id LIMIT 1"),
], ids=["name", "pinyin-initials", "former-name"])
def test_typing_in_the_search_box_lists_the_right_place(phone: Chromium, server_url: str, engine: sa.Engine,
                                                        typed: str | None, expected_sql: str) -> None:
    with engine.connect() as conn:
        expected = conn.execute(sa.text(expected_sql)).scalar_one()
        if typed is None:  # a former name: type it, expect the current name that replaced it
            typed = conn.execute(sa.text(
                "SELECT f.name FROM place_names f JOIN place_names s ON s.id = f.successor_id "
                "WHERE f.status <> 'current' AND s.status = 'current' ORDER BY f.id LIMIT 1")).scalar_one()
    page = phone.new_page()
    page.goto(f"{server_url}/pages/placenames")
    listed = _type(page, typed)
    assert expected in listed
    assert page.count("#map path.leaflet-interactive") == len(listed)
    _assert_clean(page, server_url)
    if typed == "sdz":
        _screenshot(page, "placenames")


def test_a_place_names_page_shows_its_labels_and_map(phone: Chromium, server_url: str, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        place_id = conn.execute(sa.text("SELECT id FROM place_names WHERE name = '石堤镇'")).scalar_one()
    page = phone.new_page()
    page.goto(f"{server_url}/pages/placenames/{place_id}")
    _assert_clean(page, server_url)
    headings = page.evaluate("Array.from(document.querySelectorAll('table.fields th')).map(t => t.textContent)")
    assert headings[:3] == ["名称", "罗马字母拼写", "类别"]
    assert page.count("#map path.leaflet-interactive") == 1
    _screenshot(page, "placename")


def test_an_unknown_place_name_page_is_a_clear_404(server_url: str) -> None:
    answer = httpx.get(f"{server_url}/pages/placenames/999999999")
    assert answer.status_code == 404
    assert "999999999" in answer.json()["description"]
